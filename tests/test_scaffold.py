"""`equiv new NAME` writes a case file that passes at once in every framework, and refuses bad names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from equiv import frameworks, runner, scaffold

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def loaded() -> None:
    """Import the three frameworks before pytester snapshots sys.modules (none survives a re-import)."""
    for name in frameworks.NAMES:
        if not frameworks.is_installed(name):
            pytest.skip(f"{name} is not installed")
        frameworks.load(name)


@pytest.mark.usefixtures("loaded")
def test_the_scaffold_passes_in_every_framework(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_references", {})
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    path = scaffold.new("my_claim", pytester.mkdir("cases"))
    assert path.read_text(encoding="utf-8").count("TODO") >= 6  # every piece says what to change
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu",
                                          "--equiv-dtype", "float32,bfloat16",
                                          "--equiv-require-framework", "torch,tensorflow,jax")
    result.assert_outcomes(passed=16)  # 2 variants x 4 points x 2 dtypes, each run by all three


@pytest.mark.parametrize(("name", "why"), [
    ("Avg-Pool", "is not a case name"), ("2conv", "is not a case name"), ("class", "is not a case name"),
    ("taken", "exists; choose another name"),
])
def test_a_bad_or_taken_name_is_refused(tmp_path: Path, name: str, why: str) -> None:
    (tmp_path / "taken.py").write_text('"""A claim someone wrote."""\n')
    with pytest.raises(scaffold.ScaffoldError, match=why):
        scaffold.new(name, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.py"]


def test_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()
    run = [sys.executable, "-m", "equiv", "new"]
    done = subprocess.run([*run, "pool_claim"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "wrote cases/pool_claim.py" in done.stdout
    again = subprocess.run([*run, "pool_claim"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
    usage = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True)
    assert usage.returncode == 2
    assert "usage: equiv new NAME" in usage.stderr and "equiv readme" in usage.stderr
