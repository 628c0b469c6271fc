"""The run's records: JSON report, terminal matrix, Markdown matrix, environment block."""

from __future__ import annotations

import json
import math
import platform
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from equiv import frameworks, machine
from equiv.config import Config
from equiv.records import Outcome, pairwise_of, results_of


def process_environment(cfg: Config) -> dict[str, dict[str, Any]]:
    """What this process's loaded frameworks report, with the precision pinned as items ran it."""
    out: dict[str, dict[str, Any]] = {}
    for fw in frameworks.loaded():
        if fw.name not in cfg.frameworks:
            continue  # loaded by something else in this process (a test), not run here
        default = fw.precision_state()
        with fw.precision(cfg.precision), fw.cpu_kernels(cfg.cpu_kernels):
            env = fw.environment()
        env["precision_default"] = default
        out[fw.name] = env
    return out


def write_heatmap(path: Path, ratio: Any, layout: str, title: str) -> Path:
    """A PNG of error_ratio per (H, W) position, worst over batch and channels; > 1 is beyond bound."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines
    import matplotlib.pyplot as plt

    channel_axis = 1 if layout == "channels_first" else ratio.ndim - 1
    worst = np.max(np.max(ratio, axis=channel_axis), axis=0)
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(np.log10(np.maximum(worst, 1e-3)), cmap="magma")
    fig.colorbar(image, ax=ax, label="log10 error_ratio (0 = at the bound)")
    ax.set_title(title, fontsize=7)
    ax.set_xlabel("W")
    ax.set_ylabel("H")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def add_counts(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Add `more`'s numbers into `into`, key by key, through nested dicts (per framework, per figure)."""
    for key, value in more.items():
        if isinstance(value, dict):
            add_counts(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


class Reporter:
    """Collects every item's record on the controlling process (xdist workers send theirs)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.records: list[dict[str, Any]] = []
        self.pairwise: list[dict[str, Any]] = []
        self.case_errors: set[str] = set()  # one line each: the case files' own code raised
        self.environments: dict[str, dict[str, Any]] = {}
        self.wall_seconds: float | None = None
        self.fixed_environment: dict[str, Any] | None = None  # a loaded report's, not this process's
        self.timing: dict[str, Any] = {"processes": 0, "tests": 0, "collection_seconds": 0.0,
                                       "import_seconds": {}, "compile": {}}

    def add(self, report: Any) -> None:
        if getattr(report, "equiv_case_error", None):
            self.case_errors.add(report.equiv_case_error)
        records = results_of(report)  # on the call report only
        if not records:
            return
        self.timing["tests"] += 1  # pytest items; each holds one record per framework it ran
        self.records += [dict(r) for r in records]
        self.pairwise += pairwise_of(report)

    def add_environment(self, envs: dict[str, dict[str, Any]]) -> None:
        for name, env in envs.items():
            self.environments.setdefault(name, env)

    def add_timing(self, timing: dict[str, Any]) -> None:
        """Sum one process's times (each xdist worker imports, collects and compiles on its own)."""
        if not timing:
            return
        t = self.timing
        t["processes"] += 1
        t["collection_seconds"] += timing["collection_seconds"]
        t.setdefault("threads", []).append(timing["threads"])  # per process: its thread pools' size
        t.setdefault("peak_rss_mb", []).append(timing.get("peak_rss_mb"))  # per process, at its end
        t.setdefault("cpu_seconds", []).append(timing.get("cpu_seconds"))  # per process, the controller last
        add_counts(t["import_seconds"], timing["import_seconds"])
        add_counts(t["compile"], timing["compile"])

    def environment(self) -> dict[str, Any]:
        if self.fixed_environment is not None:
            return dict(self.fixed_environment)
        block: dict[str, Any] = {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "seed": self.cfg.seeds[0] if len(self.cfg.seeds) == 1 else list(self.cfg.seeds),
            "label": self.cfg.label,
            "shard": "/".join(map(str, self.cfg.shard)) if self.cfg.shard else None,
            "precision_requested": self.cfg.precision,
            "cpu": machine.cpu(),
            "cpu_kernels_requested": self.cfg.cpu_kernels,
            "gpu_driver": frameworks.gpu_driver(),
            "equiv": machine.equiv_version(),
            "libraries": machine.library_versions(),
            "frameworks": {},
        }
        for name in frameworks.NAMES:
            installed = frameworks.is_installed(name)
            env = {"version": frameworks.installed_version(name), "installed": installed}
            if name in self.environments:
                env.update(self.environments[name])
            else:
                env["devices"] = None  # no item of this framework ran in this session
                env["precision"] = f"not loaded; float32 would run as {self.cfg.precision}"
            block["frameworks"][name] = env
        return block

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment(),
            "case_errors": sorted(self.case_errors),
            "results": self.records,
            "pairwise": self.pairwise,
            # Wall time of this pytest process (from configure); the rest is summed over processes.
            "timing": {"wall_seconds": self.wall_seconds, **self.timing},
            "outputs": str(self.cfg.outputs) if self.cfg.outputs else None,
        }

    def write(self) -> None:
        if self.cfg.report:
            self.cfg.report.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.report.write_text(dumps(self.to_json()))
        if self.cfg.markdown:
            self.cfg.markdown.parent.mkdir(parents=True, exist_ok=True)
            self.cfg.markdown.write_text(self.markdown())

    # -- matrix -----------------------------------------------------------------------------
    def columns(self) -> list[str]:
        hidden = self.folded_devices()
        return [f"{f}/{d}" for f in self.cfg.frameworks for d in self.cfg.devices if d not in hidden]

    def column_of(self, record: dict[str, Any]) -> str:
        return f"{record['framework']}/{record['device']}"

    def matrix(self) -> dict[str, dict[str, dict[str, int]]]:
        cells: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        for r in self.records:
            cells[r["case"]][self.column_of(r)][r["outcome"]] += 1
        return cells

    def worst_pairs(self) -> dict[str, dict[str, Any]]:
        worst: dict[str, dict[str, Any]] = {}
        for p in self.pairwise:
            best = worst.get(p["case"])
            if best is None or (p["max_error_ratio"] or 0) > (best["max_error_ratio"] or 0):
                worst[p["case"]] = p
        return worst

    def folded_devices(self) -> dict[str, str]:
        """Per device whose every result skipped (no GPU), the line its columns fold into."""
        lines = {}
        for device in self.cfg.devices:
            mine = [r for r in self.records if r["device"] == device]
            if mine and all(r["outcome"] == Outcome.SKIPPED for r in mine):
                reasons = sorted({r["reason"] for r in mine})
                lines[device] = (f"{device}: all {len(mine)} results skipped ({'; '.join(reasons[:3])}"
                                 + ("; ..." if len(reasons) > 3 else "") + ")")
        return lines

    def known_defect_pairs(self) -> set[tuple[Any, ...]]:
        """Pairwise rows (by case, variant, params, dtype, device, seed) with a side xfailed."""
        return {(r["case"], r["variant"], json.dumps(r["params"], sort_keys=True), r["dtype"], r["device"],
                 r.get("seed"), r["framework"]) for r in self.records if r["outcome"] == Outcome.XFAILED}

    def _pair_cell(self, pair: dict[str, Any] | None, known: set[tuple[Any, ...]]) -> str:
        if not pair:
            return ""
        text = f"{'-'.join(pair_sides(pair))} {pair['dtype']} {pair['max_error_ratio']:.2g}"
        key = (pair["case"], pair["variant"], json.dumps(pair["params"], sort_keys=True), pair["dtype"],
               pair["device"], pair.get("seed"))
        if (pair["max_error_ratio"] or 0) > 1 and any((*key, f) in known for f in pair["frameworks"]):
            text += " (known defect)"
        return text

    def terminal_lines(self) -> list[str]:
        cols, folded = self.columns(), list(self.folded_devices().values())
        cells = self.matrix()
        rows = [["case", *cols, "worst pair (max_error_ratio)"]]
        pairs = self.worst_pairs()
        known = self.known_defect_pairs()
        for case in sorted(cells):
            rows.append([case, *(_cell(cells[case].get(c, {})) for c in cols),
                         self._pair_cell(pairs.get(case), known)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("cells: passed / FAILED / E = framework error / skipped (+ xfailed known defects) "
                     "results, one per framework of each test; '-' = none selected")
        return [*self.kernel_lines(), *lines, *folded, *self.known_lines(), *self.fuzz_lines()]

    def fuzz_lines(self) -> list[str]:
        """How much a fuzz run drew: distinct draws (a claim's point, seed, dtype and value mode), in
        all and per claim, and how many of them each framework ran (not skipped)."""
        draws: dict[str, set[str]] = defaultdict(set)
        ran: dict[str, set[str]] = defaultdict(set)
        for r in self.records:
            if not r.get("fuzzed"):
                continue
            key = json.dumps([r["case"], r["params"], r["seed"], r["device"], r["dtype"], r.get("values")],
                             sort_keys=True, default=str)
            draws[r["case"]].add(key)
            if r["outcome"] != Outcome.SKIPPED:
                ran[r["framework"]].add(key)
        if not draws:
            return []
        total = sum(len(d) for d in draws.values())
        per_claim = ", ".join(f"{c} {len(d):,}" for c, d in sorted(draws.items(), key=lambda kv: -len(kv[1])))
        per_fw = ", ".join(f"{f} {len(ran[f]):,}" for f in self.cfg.frameworks if f in ran)
        return [f"fuzzed: {total:,} draws (point, seed, dtype, values) of {len(draws)} claims; "
                f"ran (not skipped) in {per_fw or 'no framework'}", f"  per claim: {per_claim}"]

    def known_lines(self) -> list[str]:
        """Per known defect that showed: its xfailed results, and which of their outputs showed it
        (the others passed their bounds)."""
        shown: dict[str, Counter[str]] = {}
        results: Counter[str] = Counter()
        for r in self.records:
            if r["outcome"] != Outcome.XFAILED or not r.get("known_defect"):
                continue
            for defect in r["known_defect"].split(", "):
                results[defect] += 1
                shown.setdefault(defect, Counter())
            for output, defect in (r.get("known_outputs") or {}).items():
                shown[defect][output] += 1
        if not results:
            return []
        return ["known defects shown (xfailed results; the outputs that showed each, the rest passed):"] + [
            f"  {d}: {results[d]}" + (" (" + ", ".join(f"{o} {n}" for o, n in sorted(shown[d].items())) + ")"
                                      if shown[d] else "")
            for d in sorted(results)]

    def kernel_lines(self) -> list[str]:
        """Which CPU and CPU kernel libraries produced these results: verdicts depend on them."""
        block = self.environment()
        info = block["cpu"]
        kernels = []
        for name, env in block["frameworks"].items():
            state = env.get("cpu_kernels")
            if isinstance(state, dict):
                # A dtype the library does not take runs elsewhere (TF: Eigen; torch: ATen's kernels).
                apart = [f"{dtype} {d['library']} ({d['why']})"
                         for dtype, d in state.get("by_dtype", {}).items()
                         if d["library"] != state["library"] and dtype in self.cfg.dtypes]
                kernels.append(f"{name} {state['library']} ({state['decided_by']})"
                               + (f", except {', '.join(apart)}" if apart else ""))
        return [
            f"CPU: {info['model']}, {info['cores']} cores; ISA: {' '.join(info['isa']) or 'none of note'}",
            f"CPU kernels (--equiv-cpu-kernels {self.cfg.cpu_kernels}): "
            + ("; ".join(kernels) if kernels else "no framework loaded"),
        ]

    def markdown(self) -> str:
        cols = self.columns()
        cells = self.matrix()
        lines = [
            "| case | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for case in sorted(cells):
            lines.append(f"| {case} | " + " | ".join(_cell(cells[case].get(c, {})) for c in cols) + " |")
        block = self.environment()
        versions = ", ".join(
            f"{n} {e['version']}" for n, e in block["frameworks"].items() if e.get("version")
        )
        versions += f"; NVIDIA driver {block['gpu_driver']}" if block["gpu_driver"] else ""
        lines += ["", f"{_seeds(self.cfg.seeds)}, float32 precision {self.cfg.precision}; {versions}.",
                  "", *(f"{line}." for line in [*self.kernel_lines(), *self.folded_devices().values()]), ""]
        return "\n".join(lines)


def pair_sides(pair: dict[str, Any]) -> list[str]:
    """The two results a pairwise row compares: frameworks, with their runs' labels when these differ."""
    labels = pair.get("labels")
    if labels:
        return [f"{f}@{label}" for f, label in zip(pair["frameworks"], labels, strict=True)]
    return list(pair["frameworks"])


def _seeds(seeds: tuple[int, ...]) -> str:
    return f"Seed {seeds[0]}" if len(seeds) == 1 else f"Seeds {', '.join(map(str, seeds))}"


def _cell(counts: dict[str, int]) -> str:
    if not counts:
        return "-"
    labels = ((Outcome.PASSED, "{} ok"), (Outcome.FAILED, "{} FAILED"), (Outcome.ERROR, "{} E"),
              (Outcome.SKIPPED, "{} skip"), (Outcome.XFAILED, "{} xfail"), (Outcome.XPASSED, "{} XPASS"))
    return " ".join(fmt.format(counts[k]) for k, fmt in labels if counts.get(k))


def json_safe(value: Any) -> Any:
    """NaN/Inf are not JSON: write them as strings so the report stays loadable."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most of a record: no checks
        return value
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else str(f)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


ROWS = ("results", "pairwise")


def dumps(doc: dict[str, Any]) -> str:
    """A report as JSON: each result and pairwise row on a line of its own (grep finds one whole), the
    rest indented."""
    parts = []
    for key, value in doc.items():
        if key in ROWS and isinstance(value, list) and value:
            text = "[\n  " + ",\n  ".join(json.dumps(json_safe(v), allow_nan=False) for v in value) + "\n ]"
        else:
            text = json.dumps(json_safe(value), indent=1, allow_nan=False).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
