"""Merge JSON reports of shards and runs into one report, one matrix and one pairwise table.

    python -m equiv merge reports/*.json [--out merged.json] [--markdown merged.md]

Reports with the same `--equiv-label` are shards of one run: they must not share an item. Reports with
different labels (two GPU types, TensorFlow with oneDNN on and off) ran the same items on purpose: the
matrix shows each label's columns and the pairwise table compares them as it compares frameworks.

Pairs inside one report are taken as that run computed them. Pairs across reports (a framework in one
shard, another framework or label in another) are computed here, the same way, from the outputs and
bounds each run kept with `--equiv-outputs`; a report without them contributes no cross-report pairs,
and the merge says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equiv import compare
from equiv.config import Config
from equiv.distribute import outputs
from equiv.frameworks import DEVICES, NAMES
from equiv.records import BAD, Outcome
from equiv.report import Reporter, dumps, json_safe


class MergeError(Exception):
    """Reports that cannot be merged; the message names the files and what to do."""


@dataclass
class Run:
    path: Path
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.data["environment"].get("label") or "")

    def outputs_path(self) -> Path | None:
        """The --equiv-outputs file, as written or beside the report (artifacts move)."""
        written = self.data.get("outputs")
        if not written:
            return None
        for candidate in (Path(written), self.path.parent / Path(written).name):
            if candidate.is_file():
                return candidate
        return None


def load(path: Path) -> Run:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise MergeError(f"{path}: not a readable JSON report ({e})") from None
    if not isinstance(data, dict) or not {"environment", "results"} <= data.keys():
        raise MergeError(f"{path}: not an equiv report (no environment/results); give --equiv-report files")
    return Run(path, data)


def merge(runs: list[Run]) -> tuple[dict[str, Any], list[str]]:
    """(the merged report, notes to print)."""
    if not runs:
        raise MergeError("no reports to merge")
    notes: list[str] = []
    owner: dict[tuple[str, str], Path] = {}
    results = []
    for run in runs:
        for r in run.data["results"]:
            key = (run.label, r["id"])
            if key in owner:
                raise MergeError(
                    f"{r['id']} is in both {owner[key]} and {run.path}"
                    + (f" (label {run.label!r})" if run.label else "")
                    + ": shards of one run must not overlap. To compare two runs of the same items, "
                    "give them different --equiv-label values."
                )
            owner[key] = run.path
            results.append({**r, "label": run.label})
    pairwise = [p for run in runs for p in run.data.get("pairwise", [])]
    pairwise += _cross_pairs(runs, notes)
    labels = sorted({run.label for run in runs})
    merged = {
        "environment": runs[0].data["environment"],
        "runs": [
            {"path": str(run.path), "label": run.label, "shard": run.data["environment"].get("shard"),
             "environment": run.data["environment"], "timing": run.data.get("timing")}
            for run in runs
        ],
        "labels": labels,
        "results": results,
        "pairwise": pairwise,
    }
    return merged, notes


def _cross_pairs(runs: list[Run], notes: list[str]) -> list[dict[str, Any]]:
    """Pairs of results for the same inputs that sit in different reports."""
    sides: dict[tuple[Any, ...], list[tuple[int, str, str, str]]] = defaultdict(list)
    stored: dict[int, dict[str, outputs.Outputs]] = {}
    for index, run in enumerate(runs):
        path = run.outputs_path()
        if path is None:
            notes.append(f"{run.path}: no outputs file (run with --equiv-outputs): its results are paired "
                         "only with those in the same report")
            continue
        stored[index] = outputs.load(path)
        for r in run.data["results"]:
            if r["id"] in stored[index]:
                key = (r["case"], r["variant"], json.dumps(r["params"], sort_keys=True), r["dtype"],
                       r["device"], r["seed"])
                sides[key].append((index, run.label, r["framework"], r["id"]))
    pairs = []
    for key, found in sides.items():
        for i, (run_a, label_a, fw_a, id_a) in enumerate(found):
            for run_b, label_b, fw_b, id_b in found[i + 1:]:
                if run_a == run_b:
                    continue  # that run paired them itself
                paired = compare.pair(*stored[run_a][id_a], *stored[run_b][id_b])
                if paired is None:
                    continue
                case, variant, params, dtype, device, seed = key
                row = compare.pair_record(case, variant, json.loads(params), dtype, device, seed,
                                          [fw_a, fw_b], paired)
                if label_a != label_b:
                    (fa, la), (fb, lb) = sorted([(fw_a, label_a), (fw_b, label_b)])
                    row.update(frameworks=[fa, fb], labels=[la, lb])
                pairs.append(json_safe(row))
    return pairs


class MergedReporter(Reporter):
    """The terminal and Markdown matrix of a merged report: one column per framework, device, label."""

    def __init__(self, merged: dict[str, Any]) -> None:
        env = merged["environment"]
        frameworks = tuple(f for f in NAMES if any(r["framework"] == f for r in merged["results"]))
        devices = tuple(d for d in DEVICES if any(r["device"] == d for r in merged["results"]))
        seeds = tuple(sorted({int(r["seed"]) for r in merged["results"]})) or (0,)
        super().__init__(Config(frameworks=frameworks, devices=devices, seeds=seeds,
                                precision=env.get("precision_requested", "ieee"),
                                cpu_kernels=env.get("cpu_kernels_requested", "default")))
        self.merged = merged
        self.records = merged["results"]
        self.pairwise = merged["pairwise"]
        self.labels: list[str] = merged["labels"]
        self.fixed_environment = env

    def columns(self) -> list[str]:
        base = super().columns()
        if len(self.labels) < 2:
            return base
        return [f"{c}@{label}" for c in base for label in self.labels]

    def column_of(self, record: dict[str, Any]) -> str:
        base = super().column_of(record)
        return f"{base}@{record['label']}" if len(self.labels) > 1 else base

    def terminal_lines(self) -> list[str]:
        return [*super().terminal_lines(), *self.label_lines()]

    def label_lines(self) -> list[str]:
        """Per case and framework, the worst difference between the same items under two labels."""
        worst: dict[tuple[str, str], dict[str, Any]] = {}
        for p in self.pairwise:
            if p.get("labels") and p["frameworks"][0] == p["frameworks"][1]:
                key = (p["case"], p["frameworks"][0])
                if key not in worst or (p["max_error_ratio"] or 0) > (worst[key]["max_error_ratio"] or 0):
                    worst[key] = p
        if not worst:
            return []
        lines = [f"same framework, {' vs '.join(self.labels)}: worst max_error_ratio per case"]
        width = max(len(case) for case, _ in worst)
        for (case, fw), p in sorted(worst.items()):
            lines.append(f"  {case:{width}s}  {fw:10s}  {p['dtype']:8s}  {p['max_error_ratio']:.2g}"
                         f"  (max |diff| {p['max_abs_diff']:.2g})")
        return lines

    def kernel_lines(self) -> list[str]:
        lines = []
        for run in self.merged["runs"]:
            one = Reporter(Config(cpu_kernels=run["environment"].get("cpu_kernels_requested", "default")))
            one.fixed_environment = run["environment"]
            name = run["label"] or Path(run["path"]).name
            lines += [f"{name}: {line}" for line in one.kernel_lines()]
        return list(dict.fromkeys(lines))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="equiv merge", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports written by --equiv-report")
    parser.add_argument("--out", type=Path, help="write the merged JSON report here")
    parser.add_argument("--markdown", type=Path, help="write the merged matrix as a Markdown table")
    args = parser.parse_args(argv)
    try:
        merged, notes = merge([load(p) for p in args.reports])
    except MergeError as e:
        print(f"equiv merge: {e}", file=sys.stderr)
        return 2
    reporter = MergedReporter(merged)
    print("\n".join([*notes, *reporter.terminal_lines()]))
    for path, text in ((args.out, dumps(merged)),
                       (args.markdown, reporter.markdown() if args.markdown else "")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    bad = [r for r in merged["results"] if r["outcome"] in (*BAD, Outcome.XPASSED)]
    print(f"{len(merged['results'])} items from {len(args.reports)} reports; "
          f"{len(bad)} failed, errored or passed unexpectedly")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
