"""What changed between two runs: `equiv diff OLD.json NEW.json [--fail-on ratio:0.3] [--markdown F]
[--out F]`.

Results are matched by id (one case, variant, framework, device, dtype, params, values and seed: the
same inputs on both sides). The diff lists, after each side's environment (so a change is traced to
what moved): results whose outcome changed, with the new reason; known defects that appeared,
disappeared or changed entry; results added or removed; error_ratio shifts beyond a threshold, with
the median and largest shift of all; and, where both runs kept their outputs (`--equiv-outputs`),
results whose outputs changed bitwise. The exit status is 1 when an outcome changed (a new xfail too),
or a shift passed a `--fail-on ratio:X` threshold; 2 for unusable input; else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from equiv.distribute import outputs

SHOWN = 20  # rows per section in the text and Markdown; the JSON holds every one


class DiffError(Exception):
    """Input that cannot be diffed; the message names the file and what to give instead."""


@dataclass
class Diff:
    old_env: dict[str, Any]
    new_env: dict[str, Any]
    outcome_changes: list[dict[str, Any]] = field(default_factory=list)
    defect_changes: list[dict[str, Any]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)  # beyond the threshold
    shift_summary: dict[str, float | int | None] = field(default_factory=dict)
    bitwise: list[str] = field(default_factory=list)  # outputs differ, same inputs
    bitwise_checked: int | None = None  # None: one side kept no outputs

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DiffError(f"{path}: not a readable JSON report ({e})") from None
    if not isinstance(data, dict) or not {"environment", "results"} <= data.keys():
        raise DiffError(f"{path}: not an equiv report (no environment/results); give --equiv-report files")
    data["_path"] = str(path)
    return data


def _ratio(r: dict[str, Any]) -> float | None:
    value = r.get("error_ratio")
    if value in (None, "nan"):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def shift(old: float, new: float) -> float:
    """How far an error_ratio moved, as a share of the larger: 0 the same, 1 from nothing to something."""
    top = max(abs(old), abs(new))
    return 0.0 if top == 0 else abs(new - old) / top


def diff(old: dict[str, Any], new: dict[str, Any], threshold: float = 0.3) -> Diff:
    before = {r["id"]: r for r in old["results"]}
    after = {r["id"]: r for r in new["results"]}
    d = Diff(old["environment"], new["environment"])
    d.added = sorted(set(after) - set(before))
    d.removed = sorted(set(before) - set(after))
    moves: list[float] = []
    for rid in sorted(set(before) & set(after)):
        a, b = before[rid], after[rid]
        if a["outcome"] != b["outcome"]:
            d.outcome_changes.append({"id": rid, "old": a["outcome"], "new": b["outcome"],
                                      "reason": b["reason"]})
        was, now = a.get("known_defect"), b.get("known_defect")
        if was != now:
            kind = "appeared" if was is None else "disappeared" if now is None else "changed entry"
            d.defect_changes.append({"id": rid, "change": kind, "old": was, "new": now})
        ra, rb = _ratio(a), _ratio(b)
        if ra is not None and rb is not None and not (math.isinf(ra) or math.isinf(rb)):
            moved = shift(ra, rb)
            moves.append(moved)
            if moved > threshold:
                d.shifts.append({"id": rid, "old": ra, "new": rb, "shift": moved})
    d.shifts.sort(key=lambda s: -s["shift"])
    d.shift_summary = {"compared": len(moves), "threshold": threshold,
                       "median": statistics.median(moves) if moves else None,
                       "max": max(moves) if moves else None, "beyond": len(d.shifts)}
    d.bitwise, d.bitwise_checked = _bitwise(old, new, set(before) & set(after))
    return d


def _outputs(report: dict[str, Any]) -> dict[str, outputs.Outputs] | None:
    written = report.get("outputs")
    if not written:
        return None
    for candidate in (Path(written), Path(report["_path"]).parent / Path(written).name):
        if candidate.is_file():
            return outputs.load(candidate)
    return None


def _bitwise(old: dict[str, Any], new: dict[str, Any], common: set[str]) -> tuple[list[str], int | None]:
    """Ids whose outputs differ bitwise; both runs drew the same inputs (an id fixes case, params, dtype,
    values and seed, and the inputs depend on nothing else)."""
    a, b = _outputs(old), _outputs(new)
    if a is None or b is None:
        return [], None
    changed, checked = [], 0
    for rid in sorted(common & set(a) & set(b)):
        checked += 1
        outs_a, outs_b = a[rid][0], b[rid][0]
        if outs_a.keys() != outs_b.keys() or any(
                outs_a[n].shape != outs_b[n].shape or not np.array_equal(outs_a[n], outs_b[n], equal_nan=True)
                for n in outs_a):
            changed.append(rid)
    return changed, checked


def environment_lines(env: dict[str, Any]) -> list[str]:
    """One line per thing a result can depend on: frameworks, libraries, kernels, CPU, GPU."""
    lines = []
    for name, fw in env.get("frameworks", {}).items():
        if fw.get("installed"):
            kernels = (fw.get("cpu_kernels") or {}).get("library", "")
            extra = ", ".join(f"{k} {fw[k]}" for k in ("jaxlib", "cuda", "cudnn") if fw.get(k))
            lines.append(f"{name} {fw.get('version')}" + (f" ({extra})" if extra else "")
                         + (f"; CPU kernels {kernels}" if kernels else ""))
    libraries = env.get("libraries") or {}
    if libraries:
        lines.append(", ".join(f"{k} {v}" for k, v in libraries.items() if v))
    cpu = env.get("cpu") or {}
    lines.append(f"CPU {cpu.get('model', '?')}, kernels requested {env.get('cpu_kernels_requested', '?')}; "
                 f"GPU driver {env.get('gpu_driver') or 'none'}")
    own = env.get("equiv") or {}
    if own:
        lines.append(f"equiv {own.get('version')} at {own.get('commit') or 'an unknown commit'}")
    return lines


def text_lines(d: Diff, markdown: bool = False) -> list[str]:
    def head(title: str) -> str:
        return f"### {title}" if markdown else f"== {title}"

    def rows(items: list[str]) -> list[str]:
        shown = [f"- {i}" for i in items[:SHOWN]]
        return shown + ([f"- ... and {len(items) - SHOWN} more (see the JSON)"] if len(items) > SHOWN else [])

    old, new = environment_lines(d.old_env), environment_lines(d.new_env)
    lines = [head("environment (old -> new)")]
    lines += rows([f"{a} -> {b}" if a != b else a for a, b in zip(old, new, strict=False)]
                  + [f"(new only) {b}" for b in new[len(old):]])
    lines.append(head(f"outcome changes: {len(d.outcome_changes)}"))
    lines += rows([f"{c['id']}: {c['old']} -> {c['new']}" + (f": {c['reason'].splitlines()[0]}"
                                                             if c["reason"] else "")
                   for c in d.outcome_changes])
    lines.append(head(f"known defects: {len(d.defect_changes)} changed"))
    lines += rows([f"{c['id']}: {c['change']} ({c['old']} -> {c['new']})" for c in d.defect_changes])
    lines.append(head(f"results added: {len(d.added)}, removed: {len(d.removed)}"))
    lines += rows([f"+ {i}" for i in d.added] + [f"- {i}" for i in d.removed])
    s = d.shift_summary

    def pct(v: Any) -> str:
        return "-" if v is None else f"{v:.1%}"

    lines.append(head(f"error_ratio shifts: {s.get('beyond')} beyond {pct(s.get('threshold'))} of "
                      f"{s.get('compared')} compared (median {pct(s.get('median'))}, "
                      f"max {pct(s.get('max'))})"))
    lines += rows([f"{x['id']}: {x['old']:.3g} -> {x['new']:.3g} ({pct(x['shift'])})" for x in d.shifts])
    if d.bitwise_checked is None:
        lines.append(head("bitwise: not compared (a run kept no outputs; give both --equiv-outputs)"))
    else:
        lines.append(head(f"bitwise: {len(d.bitwise)} of {d.bitwise_checked} results' outputs changed"))
        lines += rows(d.bitwise)
    return lines


def failing(d: Diff, fail_on_ratio: float | None) -> list[str]:
    why = []
    if d.outcome_changes:
        why.append(f"{len(d.outcome_changes)} outcome change(s)")
    if fail_on_ratio is not None:
        over = [x for x in d.shifts if x["shift"] > fail_on_ratio]
        if over:
            why.append(f"{len(over)} error_ratio shift(s) beyond {fail_on_ratio:.0%}")
    return why


def _fail_on(value: str) -> float:
    kind, colon, number = value.partition(":")
    try:
        if kind != "ratio" or not colon or float(number) < 0:
            raise ValueError
        return float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give ratio:X, a share of the larger ratio (e.g. "
                                         "ratio:0.3)") from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="equiv diff", description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the earlier run's --equiv-report")
    parser.add_argument("new", type=Path, help="the later run's --equiv-report")
    parser.add_argument("--threshold", type=float, default=0.3,
                        help="list error_ratio shifts beyond this share of the larger ratio (default 0.3)")
    parser.add_argument("--fail-on", type=_fail_on, metavar="ratio:X",
                        help="also exit 1 when an error_ratio shifts by more than X")
    parser.add_argument("--markdown", type=Path, help="write the diff as Markdown (a CI job summary)")
    parser.add_argument("--out", type=Path, help="write the diff as JSON")
    args = parser.parse_args(argv)
    try:
        d = diff(load(args.old), load(args.new), min(args.threshold, args.fail_on or args.threshold))
    except DiffError as e:
        print(f"equiv diff: {e}", file=sys.stderr)
        return 2
    print(f"equiv diff {args.old} -> {args.new}")
    print("\n".join(text_lines(d)))
    why = failing(d, args.fail_on)
    verdict = f"changed: {'; '.join(why)}" if why else "no outcome changed"
    print(verdict)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join([f"## equiv diff: {verdict}", "", *text_lines(d, markdown=True)])
                                 + "\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**d.to_json(), "verdict": verdict}, indent=1, default=str) + "\n")
    return 1 if why else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
