"""equiv sweep: the seed sweep's summary, and its check that every verdict is backed by its number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from equiv.tools import sweep


def _record(outcome: str, expect: str, ratio: Any, reason: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"id": f"c::v[{outcome}-{expect}-{ratio}]", "case": kw.get("case", "c"), "dtype": "float32",
            "outcome": outcome, "expect": expect, "error_ratio": ratio, "reason": reason}


@pytest.mark.parametrize(
    "record",
    [
        _record("passed", "equal", 0.4),
        _record("passed", "equal", 0),
        _record("passed", "differs", 3.0, "known"),
        _record("passed", "differs", "inf", "known"),
        _record("passed", "differs", None, "known non-equivalence observed (error_ratio n/a): shape"),
        _record("passed", "raises", None, "known refusal observed: ValueError"),
        _record("failed", "equal", 2.5, "beyond"),
        _record("failed", "equal", None, "shape (2, 6, 3) but the oracle's is (2, 8, 3)"),
        _record("skipped", "equal", None, "tensorflow: NCHW on CPU"),
    ],
)
def test_sound_verdicts_pass(record: dict[str, Any]) -> None:
    assert sweep.verdict_problem(record) is None


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (_record("passed", "equal", 1.5), "a pass needs a finite ratio <= 1"),
        (_record("passed", "equal", "nan"), "a pass needs a finite ratio <= 1"),
        (_record("passed", "equal", "inf"), "a pass needs a finite ratio <= 1"),
        (_record("passed", "equal", None), "a pass needs a finite ratio <= 1"),
        (_record("passed", "differs", 0.5), "no reason"),
        (_record("failed", "equal", 0.3), "failed with error_ratio 0.3 and no reason"),
    ],
)
def test_unbacked_verdicts_are_caught(record: dict[str, Any], says: str) -> None:
    problem = sweep.verdict_problem(record)
    assert problem is not None and says in problem


def test_summary_worst_ratio_items_and_failures(tmp_path: Path) -> None:
    runs = [
        [
            _record("passed", "equal", 0.25),
            _record("passed", "equal", 0.5, case="d"),
            _record("skipped", "equal", None),
        ],
        [_record("passed", "equal", 0.75), _record("passed", "equal", 1.25, case="d")],
    ]
    paths = []
    for i, results in enumerate(runs):
        paths.append(tmp_path / f"seed{i}.json")
        paths[-1].write_text(json.dumps({"results": results}))
    lines, bad = sweep.summarize(paths)
    assert bad == 1
    rows = {line.split()[0]: line.split() for line in lines[2:] if not line.startswith("VERDICT")}
    assert rows["c"][1:] == ["float32", "1", "0.75"]  # 2 items over 2 runs; worst 0.75
    assert rows["d"][1:] == ["float32", "1", "1.25"]  # shown as seen, and flagged below
    assert any(line.startswith("VERDICT seed1.json") and "1.25" in line for line in lines)
    assert sweep.main([str(p) for p in paths]) == 1


def test_one_report_of_several_seeds_counts_items_per_seed(tmp_path: Path) -> None:
    results = [dict(_record("passed", "equal", r), seed=seed) for seed in (1, 2) for r in (0.25, 0.5)]
    path = tmp_path / "stress.json"
    path.write_text(json.dumps({"results": results}))
    lines, bad = sweep.summarize([path])
    assert bad == 0 and lines[0].startswith("1 reports, 2 seeded runs")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["c"][1:] == ["float32", "2", "0.5"]  # 4 items over 2 seeds


def test_a_framework_error_fails_the_sweep_and_a_known_defect_does_not(tmp_path: Path) -> None:
    path = tmp_path / "seed1.json"
    results = [_record("error", "equal", None, "AbortedError: oneDNN"),
               _record("xfailed", "equal", None, "known defect tf-x: ...")]
    path.write_text(json.dumps({"results": results}))
    lines, bad = sweep.summarize([path])
    assert bad == 1 and any(line.startswith("ERROR seed1.json: c::v[error-") for line in lines)
