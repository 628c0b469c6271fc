"""One matrix across framework releases, and each release's diff against the latest:
`equiv versions REPORT.json...` (what `nox -s versions` prints after its lanes); with
`--defect ID`, the releases at which one known-defect entry's symptom shows.

Each report is one lane: one framework at one release (`--equiv-label FRAMEWORK-VERSION`), the CPU
suite run with that framework alone. Rows are cases, columns lanes; a cell counts the lane's results:
passed, FAILED, E (framework error), x (xfailed known defects), skipped. Below it, per framework, each
older release against the latest: outcome changes, known defects that moved, and error_ratio shifts.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from equiv.tools import diff

CELL = (("passed", ""), ("failed", "F"), ("error", "E"), ("xfailed", "x"), ("skipped", "s"))


def lane(report: dict[str, Any]) -> tuple[str, str]:
    """(framework, version) of a lane's report: the one framework that ran in it."""
    ran = {r["framework"] for r in report["results"]}
    if len(ran) != 1:
        raise diff.DiffError(f"{report['_path']}: a lane runs one framework (--equiv-framework), this ran "
                             f"{sorted(ran) or 'none'}")
    name = ran.pop()
    return name, str(report["environment"]["frameworks"][name]["version"])


def _order(version: str) -> Any:
    try:
        return (0, Version(version.split("+")[0]))
    except InvalidVersion:
        return (1, version)


def cell(results: list[dict[str, Any]]) -> str:
    counts = Counter(r["outcome"] for r in results)
    return " ".join(f"{counts[o]}{mark}" for o, mark in CELL if counts[o]) or "-"


def matrix(reports: list[dict[str, Any]]) -> list[str]:
    lanes = sorted(((lane(r), r) for r in reports), key=lambda x: (x[0][0], _order(x[0][1])))
    columns = [f"{fw} {v}" for (fw, v), _ in lanes]
    cases = sorted({r["case"] for _, rep in lanes for r in rep["results"]})
    rows = [["case", *columns]]
    for case in cases:
        rows.append([case, *(cell([r for r in rep["results"] if r["case"] == case]) for _, rep in lanes)])
    rows.append(["all", *(cell(rep["results"]) for _, rep in lanes)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) + 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("cells: passed, F failed, E framework error, x xfailed (known defect), s skipped")
    by_fw: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for (fw, v), rep in lanes:
        by_fw[fw].append((v, rep))
    for fw, runs in by_fw.items():
        latest_version, latest = runs[-1]
        for version, rep in runs[:-1]:
            d = diff.diff(rep, latest)
            s = d.shift_summary
            lines.append(f"{fw} {version} -> {latest_version}: {len(d.outcome_changes)} outcome changes, "
                         f"{len(d.defect_changes)} known-defect changes, {s['beyond']} of {s['compared']} "
                         f"error_ratios shifted beyond {s['threshold']:.0%} (max "
                         f"{'-' if s['max'] is None else format(s['max'], '.1%')})")
            changed = Counter((c["id"].split("::")[0], c["old"], c["new"]) for c in d.outcome_changes)
            lines += [f"  {case}: {n} {old} -> {new}" for (case, old, new), n in sorted(changed.items())]
    return lines


def where_it_shows(entry: str, reports: list[dict[str, Any]]) -> list[str]:
    """Per release, the results entry `entry` covered (run with --equiv-defect-at-any-release): how many
    showed its symptom, passed, or failed otherwise; then the releases where it showed."""
    lanes = sorted(((lane(r), r) for r in reports), key=lambda x: _order(x[0][1]))
    lines, shows = [f"known defect {entry}, per release:"], []
    for (fw, version), rep in lanes:
        covered = [r for r in rep["results"] if entry in (r.get("covered_by") or [])]
        counts = Counter("shows" if r.get("known_defect") == entry
                         or entry in (r.get("known_outputs") or {}).values() else r["outcome"]
                         for r in covered)
        tally = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none covered"
        lines.append(f"  {fw} {version}: {len(covered)} covered: {tally}")
        if counts["shows"]:
            shows.append(version)
    lines.append(f"shows at: {', '.join(shows) if shows else 'none of these releases'}")
    return lines


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0 if argv else 2
    entry = None
    if argv[0] == "--defect" and len(argv) > 2:
        entry, argv = argv[1], argv[2:]
    try:
        reports = [diff.load(Path(a)) for a in argv]
        print("\n".join(where_it_shows(entry, reports) if entry else matrix(reports)))
    except diff.DiffError as e:
        print(f"equiv versions: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
