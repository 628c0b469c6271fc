"""equiv diff: a run against a copy with planted changes shows each change, and only those."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv.distribute import outputs
from equiv.tools import diff, versions

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("frameworks_imported_before_pytester")

CASE = '''
"""A conv with a bias equals the oracle (a small claim for the diff tests)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [5, 6]}, dtypes=("float32",))

@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=3)

@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, layout=p.layout)

@case.variant
def native(fw, p, x, w, b):
    return fw.conv(x, w, b, layout=p.layout)
'''


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real CPU run of the small claim (torch and jax), with its outputs kept."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "cases").mkdir()
    (folder / "cases" / "biased_conv.py").write_text(CASE)
    (folder / "pytest.ini").write_text("[pytest]\nequiv_cases = cases\n")
    import subprocess
    import sys
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--equiv-device", "cpu",
               "--equiv-framework", "torch,jax", "--equiv-report=old.json", "--equiv-outputs=old.npz"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def _planted(folder: Path, edit: Any) -> Path:
    data = json.loads((folder / "old.json").read_text())
    new = copy.deepcopy(data)
    edit(new)
    new["outputs"] = None
    path = folder / f"new-{edit.__name__}.json"
    path.write_text(json.dumps(new))
    return path


def test_the_same_run_has_no_change(real_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = real_run / "old.json"
    assert diff.main([str(old), str(old)]) == 0
    out = capsys.readouterr().out
    assert "outcome changes: 0" in out and "bitwise: 0 of 8 results' outputs changed" in out
    assert "no outcome changed" in out


def test_a_planted_outcome_change_fails_the_diff(real_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def outcome(report: dict[str, Any]) -> None:
        report["results"][2]["outcome"] = "failed"
        report["results"][2]["reason"] = "planted: 3 of 30 elements beyond the allowed error"
    rid = json.loads((real_run / "old.json").read_text())["results"][2]["id"]
    md = real_run / "diff.md"
    assert diff.main([str(real_run / "old.json"), str(_planted(real_run, outcome)), f"--markdown={md}"]) == 1
    out = capsys.readouterr().out
    assert f"{rid}: passed -> failed: planted: 3 of 30" in out and "outcome changes: 1" in out
    assert md.read_text().startswith("## equiv diff: changed: 1 outcome change(s)")


def test_a_defect_that_appeared_is_named_and_a_new_xfail_fails(real_run: Path) -> None:
    def xfail(report: dict[str, Any]) -> None:
        report["results"][0].update(outcome="xfailed", known_defect="some-entry")
    d = diff.diff(diff.load(real_run / "old.json"), diff.load(_planted(real_run, xfail)))
    assert [c["change"] for c in d.defect_changes] == ["appeared"]
    assert d.defect_changes[0]["new"] == "some-entry"
    assert diff.failing(d, None) == ["1 outcome change(s)"]  # even when the new outcome is xfailed


def test_a_ratio_shift_is_listed_and_fails_only_when_asked(real_run: Path, tmp_path: Path) -> None:
    def shifted(report: dict[str, Any]) -> None:
        report["results"][1]["error_ratio"] = report["results"][1]["error_ratio"] * 2 + 0.01
    old, new = real_run / "old.json", _planted(real_run, shifted)
    d = diff.diff(diff.load(old), diff.load(new))
    assert len(d.shifts) == 1 and d.shifts[0]["shift"] > 0.5 and d.shift_summary["compared"] == 8
    assert diff.main([str(old), str(new)]) == 0
    out = tmp_path / "d.json"
    assert diff.main([str(old), str(new), "--fail-on", "ratio:0.3", f"--out={out}"]) == 1
    assert json.loads(out.read_text())["shifts"][0]["id"] == d.shifts[0]["id"]


def test_outputs_that_changed_bitwise_on_the_same_inputs_are_listed(real_run: Path) -> None:
    stored = outputs.load(real_run / "old.npz")
    store = outputs.Store()
    for i, (rid, (outs, allowed)) in enumerate(stored.items()):
        store.add(rid, {n: v + (np.float32(1e-7) * v if i == 0 else 0) for n, v in outs.items()}, allowed)
    store.write(real_run / "moved.npz")
    data = json.loads((real_run / "old.json").read_text())
    data["outputs"] = str(real_run / "moved.npz")
    (real_run / "moved.json").write_text(json.dumps(data))
    d = diff.diff(diff.load(real_run / "old.json"), diff.load(real_run / "moved.json"))
    assert d.bitwise == [next(iter(stored))] and d.bitwise_checked == 8 and not d.outcome_changes


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("{}")
    assert diff.main([str(tmp_path / "x.json"), str(tmp_path / "x.json")]) == 2
    assert "not an equiv report" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        diff.main([str(tmp_path / "x.json"), str(tmp_path / "x.json"), "--fail-on", "ratio"])


def test_the_version_matrix_has_a_column_per_lane(real_run: Path) -> None:
    def one_framework(version: str) -> dict[str, Any]:
        data = diff.load(real_run / "old.json")
        data["results"] = [r for r in data["results"] if r["framework"] == "jax"]
        data["environment"]["frameworks"]["jax"]["version"] = version
        return data

    older, newer = one_framework("0.4.30"), one_framework("0.10.2")
    older["results"][0]["outcome"] = "failed"
    lines = versions.matrix([newer, older])
    assert lines[0].split() == ["case", "jax", "0.4.30", "jax", "0.10.2"]  # oldest first
    assert lines[2].split() == ["biased_conv", "3", "1F", "4"]
    assert any(line.startswith("jax 0.4.30 -> 0.10.2: 1 outcome changes") for line in lines)


def test_where_a_defect_shows_across_releases(real_run: Path) -> None:
    def at(version: str, shows: bool) -> dict[str, Any]:
        data = diff.load(real_run / "old.json")
        data["results"] = [r for r in data["results"] if r["framework"] == "jax"]
        data["environment"]["frameworks"]["jax"]["version"] = version
        for r in data["results"]:
            r["covered_by"] = ["e"]
            r.update(outcome="xfailed", known_defect="e") if shows else None
        return data

    lines = versions.where_it_shows("e", [at("0.7.2", False), at("0.4.33", True), at("0.6.2", True)])
    assert lines[1:] == ["  jax 0.4.33: 4 covered: 4 shows", "  jax 0.6.2: 4 covered: 4 shows",
                         "  jax 0.7.2: 4 covered: 4 passed", "shows at: 0.4.33, 0.6.2"]
