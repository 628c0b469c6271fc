"""Summarize JSON reports from several seeds: failures, bad verdicts, and the worst error_ratio per case.

    python -m equiv sweep reports/stress.json          (one run of --equiv-seed 1-20)
    python -m equiv sweep reports/stress-seed*.json    (or one report per seed)

A worst ratio near 1 means the bound is tight for that case: look at the bound, never widen it blindly.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from equiv import defects
from equiv.records import BAD, Outcome


def verdict_problem(r: dict[str, Any]) -> str | None:
    """What is wrong with one record's verdict, if anything.

    A pass of an `equal` item needs a finite error_ratio <= 1; an observed difference a ratio > 1 or
    a stated non-numeric reason (a shape); a failure a ratio > 1 or a stated reason.
    """
    outcome, expect, ratio = r["outcome"], r.get("expect"), r.get("error_ratio")
    number = ratio if isinstance(ratio, (int, float)) else None  # the JSON writes inf/nan as strings
    infinite = isinstance(ratio, str) and ratio in ("inf", "nan")
    if outcome == Outcome.PASSED and expect == "equal":
        if number is None or not math.isfinite(number) or number > 1:
            return f"passed with error_ratio {ratio!r}: a pass needs a finite ratio <= 1"
    elif outcome == Outcome.PASSED and expect == "differs":
        if not (infinite or (number is not None and number > 1) or r.get("reason")):
            return f"difference observed with error_ratio {ratio!r} and no reason"
    elif outcome == Outcome.FAILED:
        if not (infinite or (number is not None and number > 1) or r.get("reason")):
            return f"failed with error_ratio {ratio!r} and no reason"
    return None


def summarize(paths: list[Path]) -> tuple[list[str], int]:
    worst: dict[tuple[str, str], float] = defaultdict(float)
    items: dict[tuple[str, str], int] = defaultdict(int)  # items that ran (not skipped), all runs
    failures: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    records: list[dict[str, Any]] = []
    runs: set[tuple[str, Any]] = set()  # (report, seed): a report may hold several seeds
    for path in paths:
        report = json.loads(path.read_text())
        for r in report["results"]:
            runs.add((str(path), r.get("seed")))
            counts[r["outcome"]] += 1
            key = (r["case"], r["dtype"])
            if r["outcome"] != Outcome.SKIPPED:
                items[key] += 1
            if r["outcome"] in (*BAD, Outcome.XPASSED):
                failures.append(f"{r['outcome'].upper()} {path.name}: {r['id']}")
            problem = verdict_problem(r)
            if problem:
                failures.append(f"VERDICT {path.name}: {r['id']}: {problem}")
            records.append(r)
            ratio = r.get("error_ratio")
            passed = r["outcome"] == Outcome.PASSED and r.get("expect") == "equal"
            if passed and isinstance(ratio, (int, float)):
                worst[key] = max(worst[key], float(ratio))
    seeds = max(len(runs), 1)
    lines = [f"{len(paths)} reports, {len(runs)} seeded runs: "
             + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))]
    lines.append(f"{'case':32s} {'dtype':8s} {'items/run':>9s}  worst error_ratio")
    lines += [
        f"{c:32s} {d:8s} {items[(c, d)] / seeds:9.0f}  {worst[(c, d)]:.3g}"
        for c, d in sorted(items)
    ]
    entries = defects.tally(records)
    if entries:
        lines.append(f"{'known defect':44s} {'covered':>8s} {'showed':>7s} {'absorbed':>8s}")
        lines += [f"{e:44s} {c:8d} {sh:7d} {a:8d}" + ("" if a else "  never absorbed: narrow or remove it")
                  for e, (c, sh, a) in sorted(entries.items())]
    lines += failures
    return lines, len(failures)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: equiv sweep REPORT.json [...]  (reports of a many-seed run, e.g. nox -s stress)",
              file=sys.stderr)
        return 0 if argv else 2
    lines, failed = summarize([Path(a) for a in argv])
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
