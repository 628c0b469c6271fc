"""Deterministic, balanced slices of one run, for machines that each run a part (`--equiv-shard K/N`).

A slice holds whole groups (`group.group_of`: one case's params and dtype, every variant, device and
seed), so each shard computes an oracle answer and a compiled program once, as one process would.
Groups go heaviest first to the lightest slice; ties go by name, so every shard computes the same
assignment.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from equiv.distribute.group import group_of


def recorded_seconds(report: Path) -> dict[str, float]:
    """Item id -> seconds it took (oracle, framework and comparison) in an earlier JSON report."""
    data = json.loads(report.read_text())
    return {r["id"]: float(sum(r.get("seconds", {}).values())) for r in data.get("results", [])}


def weigh(items: Iterable[tuple[str, str]], seconds: Mapping[str, float] | None = None) -> dict[str, float]:
    """Group -> weight from (item id, group) pairs: recorded seconds, else 1 per item.

    An item the durations do not know (a new case) weighs the mean of those they do.
    """
    pairs = list(items)
    known = [seconds[i] for i, _ in pairs if seconds and i in seconds]
    fallback = sum(known) / len(known) if known else 1.0
    weights: dict[str, float] = defaultdict(float)
    for item_id, group in pairs:
        weights[group] += seconds.get(item_id, fallback) if seconds else 1.0
    return dict(weights)


def assign(weights: Mapping[str, float], n: int) -> dict[str, int]:
    """Group -> slice (0-based), greedy: the heaviest group still unplaced to the lightest slice."""
    loads = [0.0] * n
    out: dict[str, int] = {}
    for group in sorted(weights, key=lambda g: (-weights[g], g)):
        k = min(range(n), key=lambda i: (loads[i], i))
        out[group] = k
        loads[k] += weights[group]
    return out


def split(items: list[Any], k: int, n: int,
          seconds: Mapping[str, float] | None = None) -> tuple[list[Any], list[Any]]:
    """(kept, dropped) for slice k (1-based) of n pytest items."""
    groups = [group_of(item.nodeid) or item.nodeid for item in items]
    slices = assign(weigh(((i, g) for item, g in zip(items, groups, strict=True) for i in _ids(item)),
                          seconds), n)
    kept = [item for item, g in zip(items, groups, strict=True) if slices[g] == k - 1]
    dropped = [item for item, g in zip(items, groups, strict=True) if slices[g] != k - 1]
    return kept, dropped


def _ids(item: Any) -> list[str]:
    """The report ids of an item's results: one per framework it runs."""
    specs = getattr(item, "specs", None)
    return [str(s.id) for s in specs] if specs else [str(item.nodeid)]
