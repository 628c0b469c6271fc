"""Fuzzing (equiv.fuzz): a mapping mistake off the grid is found, shrunk, and replayed by one command."""

from __future__ import annotations

import json
import shlex

import pytest

from equiv import fuzz
from equiv.case import Case, Params

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("frameworks_imported_before_pytester")

# A SAME-padding port whose split is wrong only for an odd total padding at stride 3: its grid (strides 1
# and 2) cannot see it; its domain holds it.
PLANTED = '''
"""SAME padding is an explicit pad, total//2 before (a port with a planted mistake at stride 3)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"L": [7, 8], "k": [3], "s": [1, 2]},
            domain={"L": range(1, 17), "k": range(1, 6), "s": range(1, 4)},
            output_layout="channels_last", dtypes=("float64",))


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[p.k], channels=2, out_channels=2)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, stride=p.s, padding="same", layout="channels_last")


@case.variant
def explicit_pad(fw, p, x, w, b):
    total = max((-(-p.L // p.s) - 1) * p.s + p.k - p.L, 0)
    before = total // 2 + (1 if p.s == 3 and total % 2 else 0)  # the planted mistake
    x = fw.pad(x, [(0, 0), (before, total - before), (0, 0)])
    return fw.conv(x, w, b, stride=p.s, padding="valid", layout="channels_last")
'''


@pytest.fixture
def planted(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "planted_same.py").write_text(PLANTED)
    return pytester


def _run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu", "--equiv-framework",
                                 "torch,jax", *args)


def test_fuzzing_finds_a_mistake_the_grid_misses_and_replays_it_in_one_line(planted: pytest.Pytester) -> None:
    assert _run(planted).ret == 0  # the grid stays green

    found = _run(planted, "--equiv-fuzz", "60", "--equiv-fuzz-profile", "ci", "--equiv-report=fuzz.json")
    assert found.ret == 1, found.stdout.str()
    text = found.stdout.str()
    assert "elements beyond the allowed error" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("reproduce: "))
    command = shlex.split(line.removeprefix("reproduce: "))
    point = fuzz.parse_params(command[command.index("--equiv-params") + 1])
    assert point["s"] == 3  # shrunk to the planted mistake's stride, with an odd total padding
    total = max((-(-point["L"] // 3) - 1) * 3 + point["k"] - point["L"], 0)
    assert total % 2 == 1 and point["L"] <= 4 and point["k"] <= 3, point  # and small

    records = json.loads((planted.path / "fuzz.json").read_text())["results"]
    assert records and all(r["fuzzed"] for r in records)
    assert any(r["outcome"] == "failed" and r["params"] == point for r in records)

    assert command[:2] == ["pytest", "cases/planted_same.py"]
    replay = planted.runpytest_inprocess("-p", "no:cacheprovider", *command[2:])
    assert replay.ret == 1, replay.stdout.str()
    replay.assert_outcomes(failed=1)  # one item: no hypothesis, the same point and seed
    assert "elements beyond the allowed error" in replay.stdout.str()


def test_a_correct_claim_fuzzes_green_and_records_its_draws(planted: pytest.Pytester) -> None:
    (planted.path / "cases" / "planted_same.py").write_text(PLANTED.replace(
        "(1 if p.s == 3 and total % 2 else 0)", "0"))
    result = _run(planted, "--equiv-fuzz", "15", "--equiv-fuzz-profile", "ci", "--equiv-report=ok.json")
    assert result.ret == 0, result.stdout.str()
    records = json.loads((planted.path / "ok.json").read_text())["results"]
    draws = {json.dumps(r["params"]) + str(r["seed"]) for r in records}
    assert len(draws) > 5  # distinct draws
    assert all(r["fuzzed"] and r["outcome"] == "passed" for r in records)
    # The run says how much it drew, per claim and per framework that ran the draws.
    result.stdout.fnmatch_lines([f"fuzzed: {len(draws)} draws (point, seed, dtype, values) of 1 claims; ran "
                                 f"(not skipped) in torch {len(draws)}, jax {len(draws)}",
                                 f"  per claim: planted_same {len(draws)}"])


def test_a_draw_that_fails_once_then_passes_is_reported_as_flaky(planted: pytest.Pytester) -> None:
    """A framework answer that changes between runs: hypothesis's replay of the failing draw passes.
    The report is the first failure, its reproduction, and that it is flaky."""
    (planted.path / "cases" / "planted_same.py").write_text(PLANTED.replace(
        "(1 if p.s == 3 and total % 2 else 0)", "0").replace(
        "    return fw.conv(x, w, b,",
        "    CALLS.append(1)\n    b = fw.add(b, 1.0) if len(CALLS) == 5 else b\n    return fw.conv(x, w, b,")
        + "\nCALLS = []\n")
    result = _run(planted, "--equiv-fuzz", "20", "--equiv-fuzz-profile", "ci")
    assert result.ret == 1
    out = result.stdout.str()
    assert "elements beyond the allowed error" in out and "reproduce: pytest cases/planted_same.py" in out
    assert "flaky: this draw passed when hypothesis ran it again" in out
    assert "Traceback" not in out  # the finding, not hypothesis's internals


def test_a_time_budget_runs_batches_until_it_is_spent(planted: pytest.Pytester) -> None:
    (planted.path / "cases" / "planted_same.py").write_text(PLANTED.replace(
        "(1 if p.s == 3 and total % 2 else 0)", "0"))
    result = _run(planted, "--equiv-fuzz-minutes", "0.15", "--equiv-fuzz-db", "off", "--equiv-report=t.json")
    assert result.ret == 0, result.stdout.str()
    records = json.loads((planted.path / "t.json").read_text())["results"]
    assert len({json.dumps(r["params"]) + str(r["seed"]) for r in records}) > 10  # more than one batch


def test_a_domain_point_the_oracle_rejects_is_the_cases_not_a_frameworks(planted: pytest.Pytester) -> None:
    (planted.path / "cases" / "planted_same.py").write_text(PLANTED.replace(
        '"k": range(1, 6)', '"k": range(0, 6)').replace("(1 if p.s == 3 and total % 2 else 0)", "0"))
    result = _run(planted, "--equiv-fuzz", "30", "--equiv-fuzz-profile", "ci")
    assert result.ret == 1
    text = result.stdout.str()
    assert "the case's code rejects: narrow the domain" in text and "k=0" in text


@pytest.mark.parametrize("text", ["nd=2,k=(5,3),padding=same,s=1", "L=7,flag=True,x=1.5,ks=[1,2]"])
def test_params_read_back_to_the_same_point(text: str) -> None:
    p = Params(fuzz.parse_params(text))
    assert fuzz.format_params(p) == text
    assert Params(fuzz.parse_params(fuzz.format_params(p))).id == p.id


def test_a_point_must_name_the_cases_parameters_and_satisfy_where() -> None:
    case = Case(grid={"L": [7], "k": [3]}, where=lambda p: p.k <= p.L)
    assert fuzz.point_of({"k": 3, "L": 9}, case).id == "L9-k3"  # the grid's order, whatever was typed
    with pytest.raises(fuzz.ParamsError, match="this case's parameters are L, k"):
        fuzz.point_of({"L": 7}, case)
    with pytest.raises(fuzz.ParamsError, match="where= rejects"):
        fuzz.point_of({"L": 2, "k": 3}, case)
    with pytest.raises(fuzz.ParamsError, match="NAME=VALUE"):
        fuzz.parse_params("L7")


def test_a_claim_without_a_domain_is_fuzzed_over_its_grids_values_combined() -> None:
    case = Case(grid=[{"nd": [1], "k": [1, 3]}, {"nd": [2], "k": [3, 5]}, {"x": [0]}])
    assert fuzz.domains(case) == [{"nd": [1, 2], "k": [1, 3, 5]}, {"x": [0]}]


def test_a_domain_widens_the_closest_grid_whatever_the_grid_order() -> None:
    window = {"op": ["window"], "nd": [1], "k": [2], "s": [1]}
    global_ = {"op": ["global"], "nd": [1]}
    domain = [{"op": ["window"], "nd": range(1, 4), "k": range(1, 8), "s": range(1, 5)},
              {"op": ["global"], "nd": range(1, 4)}]
    for grid in ([window, global_], [global_, window]):
        spaces = fuzz.domains(Case(grid=grid, domain=domain))
        assert [sorted(sp) for sp in spaces] == [["k", "nd", "op", "s"], ["nd", "op"]]


def test_a_domain_widens_the_grid_it_names_and_keeps_the_rest() -> None:
    case = Case(grid={"layout": ["a", "b"], "k": [3], "s": [1, 2]},
                domain={"s": range(1, 5), "L": range(1, 9)})
    assert fuzz.domains(case) == [{"layout": ["a", "b"], "k": [3], "s": range(1, 5), "L": range(1, 9)}]


@pytest.mark.parametrize(("args", "message"), [
    (["--equiv-fuzz", "5", "--equiv-fuzz-minutes", "1"], "two budgets"),
    (["--equiv-fuzz-minutes", "1", "--equiv-fuzz-profile", "ci"], "fixed set"),
    (["--equiv-fuzz", "5", "--equiv-fuzz-profile", "weekly"], "--equiv-fuzz-profile: unknown value weekly"),
    (["--equiv-fuzz", "5", "--equiv-params", "L=7,k=3,s=1"], "does not combine"),
])
def test_fuzz_options_are_checked(planted: pytest.Pytester, args: list[str], message: str) -> None:
    result = _run(planted, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_wide_values_catch_what_normal_values_cannot(planted: pytest.Pytester) -> None:
    """A port that saturates its input at +-8 (a clipping cast) passes every standard-normal draw."""
    case = PLANTED.replace("(1 if p.s == 3 and total % 2 else 0)", "0").replace(
        'dtypes=("float64",)', 'dtypes=("float64",), values=("normal", "wide")').replace(
        "    x = fw.pad(x,", "    x = fw.asarray(np.clip(fw.to_numpy(x), -8, 8), 'cpu')\n    x = fw.pad(x,")
    case = case.replace("from equiv import Case", "import numpy as np\nfrom equiv import Case")
    (planted.path / "cases" / "planted_same.py").write_text(case)
    assert _run(planted).ret == 0
    found = _run(planted, "--equiv-fuzz", "40", "--equiv-fuzz-profile", "ci")
    assert found.ret == 1, found.stdout.str()
    line = next(ln for ln in found.stdout.str().splitlines() if ln.startswith("reproduce: "))
    assert "--equiv-values wide" in line
    replay = planted.runpytest_inprocess("-p", "no:cacheprovider", *shlex.split(line)[3:])
    replay.assert_outcomes(failed=1)


def test_the_benchmark_counts_draws_per_framework_second() -> None:
    from equiv.tools import benchmark

    def record(fw: str, seed: int, outcome: str = "passed", seconds: float = 0.5) -> dict[str, object]:
        return {"case": "c", "params": {"k": 3}, "seed": seed, "dtype": "float32", "values": "normal",
                "framework": fw, "outcome": outcome, "fuzzed": True, "seconds": {"framework": seconds}}

    report = {"results": [record("jax", 1), record("jax", 2), record("torch", 1),
                          record("torch", 2, "skipped", 0.0)], "timing": {}}
    f = benchmark.figures(report, wall=4.0, workers=1)
    assert f["draws"] == 2 and f["draws_per_second"] == 0.5
    assert f["draws_per_framework_second"] == {"jax": 2.0, "torch": 2.0}  # skips are no draws
    assert benchmark.figures({"results": [], "timing": {}}, wall=1.0, workers=1)["draws"] is None
