"""Summarize JSON reports from several seeds: failures, and the worst error_ratio per case and dtype.

    python -m equiv.sweep reports/stress-seed*.json

A worst ratio near 1 means the bound is tight for that case: look at the bound, never widen it blindly.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def summarize(paths: list[Path]) -> tuple[list[str], int]:
    worst: dict[tuple[str, str], float] = defaultdict(float)
    failures: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    for path in paths:
        report = json.loads(path.read_text())
        for r in report["results"]:
            counts[r["outcome"]] += 1
            if r["outcome"] in ("failed", "xpassed"):
                failures.append(f"{path.name}: {r['id']}")
            ratio = r.get("error_ratio")
            if r["outcome"] == "passed" and r.get("expect") == "equal" and isinstance(ratio, (int, float)):
                key = (r["case"], r["dtype"])
                worst[key] = max(worst[key], float(ratio))
    lines = [f"{len(paths)} runs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))]
    lines.append(f"{'case':40s} {'dtype':8s} worst error_ratio")
    lines += [f"{c:40s} {d:8s} {v:.3g}" for (c, d), v in sorted(worst.items())]
    lines += [f"FAILED {f}" for f in failures]
    return lines, len(failures)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m equiv.sweep REPORT.json [...]", file=sys.stderr)
        return 2
    lines, failed = summarize([Path(a) for a in argv])
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
