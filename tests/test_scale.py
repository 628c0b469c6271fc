"""Running the suite faster and wider: seeds in one session, worker threads, shards and their merge."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv import machine, report
from equiv.config import OptionError, seed_list
from equiv.distribute import group, launcher, merge, outputs, slicing
from equiv.tools import benchmark

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("frameworks_imported_before_pytester")

# Six groups (layout x L, per dtype) so that shards have something to balance.
CASE = '''
"""A conv with a bias equals the oracle (a small claim for the sharding and merge tests)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [5, 6, 7]},
            dtypes=("float32", "float64"))

@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=3)

@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, padding="same", layout=p.layout)

@case.variant
def native(fw, p, x, w, b):
    return fw.conv(x, w, b, padding="same", layout=p.layout)
'''
FRAMEWORKS = "torch,jax"  # both import once per test process (see conftest); TensorFlow would be slow


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "biased_conv.py").write_text(CASE)
    return pytester


def run(p: pytest.Pytester, name: str, *args: str, frameworks: str = FRAMEWORKS) -> dict[str, Any]:
    """Run the CPU suite in process, keeping outputs; return its JSON report."""
    result = p.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu", "--equiv-framework",
                                   frameworks, f"--equiv-report={name}.json", f"--equiv-outputs={name}.npz",
                                   *args)
    assert result.ret == 0, result.stdout.str()
    return dict(json.loads((p.path / f"{name}.json").read_text()))


def comparable(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Results and pairwise rows as sorted JSON, without what may differ between runs (times)."""
    results = sorted(json.dumps({k: v for k, v in r.items() if k not in ("seconds", "label")}, sort_keys=True)
                     for r in report["results"])
    pairs = sorted(json.dumps(p, sort_keys=True) for p in report["pairwise"])
    return results, pairs


# -- seeds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seeds"), [("3", (3,)), ("1-3", (1, 2, 3)), ("1,5,1", (1, 5)),
                                              ("0-1,4", (0, 1, 4))])
def test_seed_lists(text: str, seeds: tuple[int, ...]) -> None:
    assert seed_list(text) == seeds


@pytest.mark.parametrize("text", ["a", "3-1", "", "-2", "1-"])
def test_a_bad_seed_list_names_the_option(text: str) -> None:
    with pytest.raises(OptionError, match="--equiv-seed"):
        seed_list(text)


def test_several_seeds_in_one_session_see_the_inputs_of_separate_runs(suite: pytest.Pytester) -> None:
    both = run(suite, "both", "--equiv-seed", "1-2", "-p", "no:xdist")
    ids = {r["id"] for r in both["results"]}
    assert "biased_conv::native[jax-cpu-float32-channels_last-L5-seed2]" in ids
    assert both["environment"]["seed"] == [1, 2]
    for seed in (1, 2):
        alone = run(suite, f"seed{seed}", "--equiv-seed", str(seed), "-p", "no:xdist")
        mine = [dict(r, id=r["id"].replace(f"-seed{seed}]", "]"))
                for r in both["results"] if r["seed"] == seed]
        assert comparable({"results": mine, "pairwise": []})[0] == comparable(alone)[0]
        assert [p for p in both["pairwise"] if p["seed"] == seed] != []


# -- threads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("count", "cores", "expected"), [
    (None, 2, None),  # one process: the frameworks' own defaults
    ("2", 2, 1), ("2", 8, 4), ("3", 8, 2), ("4", 2, 1),  # more workers than cores: one thread each
])
def test_each_worker_gets_its_share_of_the_cores(count: str | None, cores: int, expected: int | None) -> None:
    env = {"PYTEST_XDIST_WORKER_COUNT": count} if count else {}
    assert machine.worker_threads(env, cores) == expected


def test_workers_size_their_thread_pools_to_their_share(suite: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", *machine.THREAD_VARS):
        monkeypatch.delenv(var, raising=False)  # this test may itself run in an xdist worker
    report = suite.path / "r.json"
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--equiv-device", "cpu",
                                        "--equiv-framework", "torch", "-n", "2", f"--equiv-report={report}")
    assert result.ret == 0, result.stdout.str()
    data = json.loads(report.read_text())
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert data["environment"]["frameworks"]["torch"]["threads"] == share
    assert sorted(data["timing"]["threads"], key=str) == [share, share, None]  # controller: defaults


# -- xdist groups ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("nodeid", "expected"), [
    ("cases/a.py::native[cpu-float32-channels_last-L5]", "cases/a.py[float32-channels_last-L5]"),
    ("cases/a.py::native[cuda-float32-channels_last-L5]", "cases/a.py[float32-channels_last-L5]"),
    ("cases/a.py::other[cpu-float64-k3-seed2]@cases-k3", "cases/a.py[float64-k3]"),  # every seed
    ("cases/a.py::other[cpu-float64-seed12]", "cases/a.py[float64]"),
    ("cases/a.py::native", None),
])
def test_an_items_group_is_read_off_its_id(nodeid: str, expected: str | None) -> None:
    assert group.group_of(nodeid) == expected


def test_every_pair_is_made_whatever_the_schedule(suite: pytest.Pytester) -> None:
    """An item runs every framework on its input, so no schedule can leave a pair out.

    (When each framework was its own item, `--dist load` split them across workers, and so did xdist's
    own loadgroup under pytest 9.2, pytest-dev/pytest-xdist#1386.)
    """
    serial = run(suite, "one", "-p", "no:xdist")
    assert serial["pairwise"]
    for dist in ("loadgroup", "load", "loadgroup"):  # where a split would happen depends on timing
        parallel = run(suite, "two", "-n", "2", "--dist", dist)
        assert comparable(parallel) == comparable(serial)


def test_a_cases_seeds_run_on_one_worker_so_each_program_compiles_once(suite: pytest.Pytester) -> None:
    """xdist deals units round-robin in collection order: seeds, adjacent there, went to both workers."""
    one = run(suite, "one", "-n", "2", frameworks="jax")
    four = run(suite, "four", "--equiv-seed", "1-4", "-n", "2", frameworks="jax")
    assert len(four["results"]) == 4 * len(one["results"]) == 48
    compiles = [r["timing"]["compile"]["jax"]["compiles"] for r in (one, four)]
    assert compiles[0] >= 12 and compiles[1] == compiles[0], compiles  # 2 dtypes x 6 params, per worker


def test_a_program_is_freed_after_its_last_item_and_compiled_once_for_all_seeds(
        suite: pytest.Pytester) -> None:
    """A kept executable holds about 1.4 MB: a run keeps only those that items still to run need."""
    from equiv import frameworks

    jax_fw = frameworks.load("jax")
    programs = jax_fw._programs  # type: ignore[attr-defined]
    compiles = []
    for name, seeds in (("warm", "0"), ("one", "1"), ("two", "1-2")):
        before = jax_fw.compile_stats()["compiles"]
        run(suite, name, "--equiv-seed", seeds, "-p", "no:xdist", frameworks="jax")
        compiles.append(jax_fw.compile_stats()["compiles"] - before)
        assert programs == {}, f"{len(programs)} programs kept after the run with seeds {seeds}"
    assert compiles[1] >= 12 and compiles[2] == compiles[1], compiles  # not once per seed


def _lowered_texts(mode: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], set[int]]:
    """Lower a few of the suite's kinds of program; return their StableHLO and the contexts used."""
    import jax
    import jax.numpy as jnp

    from equiv import frameworks

    fw = frameworks.load("jax")
    monkeypatch.setenv(fw.MLIR_CONTEXT_ENV, mode)  # type: ignore[attr-defined]
    x, w, b = jnp.ones((2, 3, 9, 8)), jnp.ones((4, 3, 3, 3)), jnp.ones(4)
    g = jnp.ones((2, 4, 5, 4))
    programs = [
        (lambda x, w, b: fw.conv(x, w, b, stride=2, padding="same", layout="channels_first"), (x, w, b)),
        (lambda x, w, b: fw.conv_transpose(x, w, b[:3], stride=2, padding=1,
                                           output_padding=1), (g, w, b)),
        (lambda x, w, g: fw.conv_vjp(x, w, g, stride=2, padding="same"), (x, w, g)),
        (lambda x: fw.avg_pool(x.astype(jnp.bfloat16), 3, stride=2, padding="same"), (x,)),
    ]
    lowered = [jax.jit(f).lower(*args) for f, args in programs]  # all alive: no context id is reused
    return [low.as_text() for low in lowered], {id(low.compiler_ir().context) for low in lowered}


def test_a_reused_mlir_context_lowers_the_same_program_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared context saves JAX's per-program setup; what XLA compiles must not change."""
    own, own_contexts = _lowered_texts("per-program", monkeypatch)
    shared, shared_contexts = _lowered_texts("shared", monkeypatch)
    assert len(own_contexts) == 4 and len(shared_contexts) <= 2  # at most one renewal in between
    for mine, theirs in zip(shared, own, strict=True):
        assert mine == theirs


def test_the_shared_mlir_context_is_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A context keeps every type and attribute it interned: it is replaced every CONTEXT_PROGRAMS."""
    from jax._src.interpreters import mlir

    from equiv import frameworks

    fw = frameworks.load("jax")
    monkeypatch.setenv(fw.MLIR_CONTEXT_ENV, "shared")  # type: ignore[attr-defined]
    monkeypatch.setattr(fw, "CONTEXT_PROGRAMS", 3)
    monkeypatch.setitem(fw._context, "current", None)  # type: ignore[attr-defined]
    made = [mlir.make_ir_context() for _ in range(7)]
    assert [len({id(c) for c in made[i:i + 3]}) for i in (0, 3, 6)] == [1, 1, 1]
    assert len({id(c) for c in made}) == 3
    assert "one MLIR context for every 3 programs" in fw.environment()["mlir_context"]
    monkeypatch.setenv(fw.MLIR_CONTEXT_ENV, "per-program")  # type: ignore[attr-defined]
    assert mlir.make_ir_context() is not mlir.make_ir_context()
    assert fw.environment()["mlir_context"] == "per program (JAX's own)"


# -- shards ----------------------------------------------------------------------------------------
def test_assignment_is_deterministic_and_balanced() -> None:
    rng = np.random.default_rng(0)
    weights = {f"g{i}": float(w) for i, w in enumerate(rng.integers(1, 20, size=40))}
    first = slicing.assign(weights, 3)
    assert first == slicing.assign(dict(reversed(list(weights.items()))), 3)  # order does not matter
    assert set(first) == set(weights) and set(first.values()) == {0, 1, 2}
    loads = [sum(w for g, w in weights.items() if first[g] == k) for k in range(3)]
    assert max(loads) - min(loads) <= max(weights.values())  # greedy's guarantee


def test_recorded_durations_weigh_groups_and_new_items_weigh_the_mean() -> None:
    seconds = {"a1": 3.0, "a2": 1.0, "b1": 2.0}
    assert slicing.weigh([("a1", "A"), ("a2", "A"), ("b1", "B"), ("c1", "C")], seconds) == {
        "A": 4.0, "B": 2.0, "C": 2.0}
    assert slicing.weigh([("a1", "A"), ("a2", "A"), ("c1", "C")]) == {"A": 2.0, "C": 1.0}


def test_shards_partition_the_items_in_whole_groups(suite: pytest.Pytester) -> None:
    whole = run(suite, "all", "-p", "no:xdist")
    parts = [run(suite, f"s{k}", "--equiv-shard", f"{k}/3", "-p", "no:xdist") for k in (1, 2, 3)]
    ids = [[r["id"] for r in p["results"]] for p in parts]
    assert all(ids) and sorted(sum(ids, [])) == sorted(r["id"] for r in whole["results"])
    for part in parts:  # every framework of one input in the same shard: pairs stay within it
        groups: dict[tuple[Any, ...], set[str]] = {}
        for r in part["results"]:
            key = (r["params"]["layout"], r["params"]["L"], r["dtype"])
            groups.setdefault(key, set()).add(r["framework"])
        assert all(fws == {"torch", "jax"} for fws in groups.values())
    assert {p["environment"]["shard"] for p in parts} == {"1/3", "2/3", "3/3"}


def test_shards_balance_by_an_earlier_runs_times(suite: pytest.Pytester) -> None:
    whole = run(suite, "all", "-p", "no:xdist")
    # Make one group (both frameworks of one input) as heavy as all the others together.
    heavy = ("channels_first", 7, "float64")
    for r in whole["results"]:
        r["seconds"] = {"framework": 100.0 if (r["params"]["layout"], r["params"]["L"], r["dtype"]) == heavy
                        else 1.0}
    (suite.path / "times.json").write_text(json.dumps(whole))
    parts = [run(suite, f"d{k}", "--equiv-shard", f"{k}/2", "--equiv-durations", "times.json",
                 "-p", "no:xdist") for k in (1, 2)]
    sizes = sorted(len(p["results"]) for p in parts)
    assert sizes == [2, 22]  # the heavy group alone in one slice, the eleven others in the other
    assert slicing.recorded_seconds(suite.path / "times.json")[whole["results"][0]["id"]] in (1.0, 100.0)


def test_durations_without_shards_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("--equiv-durations", "x.json", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--equiv-shard" in result.stderr.str()


@pytest.mark.parametrize("value", ["0/2", "3/2", "2", "a/b"])
def test_a_bad_shard_is_a_usage_error(suite: pytest.Pytester, value: str) -> None:
    result = suite.runpytest_inprocess("--equiv-shard", value, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--equiv-shard" in result.stderr.str()


# -- merge -----------------------------------------------------------------------------------------
def test_merged_shards_equal_the_unsharded_run(suite: pytest.Pytester, capsys: Any) -> None:
    whole = run(suite, "all", "-p", "no:xdist")  # one process: every pair is made
    halves = [(FRAMEWORKS, "--equiv-shard", "1/2"), (FRAMEWORKS, "--equiv-shard", "2/2")]
    for prefix, slices in (("s", halves),
                           ("f", [("torch",), ("jax",)])):  # as the GPU workflow's matrix splits it
        names = [f"{prefix}{i}" for i in range(len(slices))]
        for name, (frameworks, *args) in zip(names, slices, strict=True):
            run(suite, name, *args, "-n", "2", frameworks=frameworks)
        out = suite.path / f"merged-{prefix}.json"
        code = merge.main([str(suite.path / f"{n}.json") for n in names] + ["--out", str(out)])
        assert code == 0, capsys.readouterr().out
        merged = json.loads(out.read_text())
        assert comparable(merged) == comparable(whole), prefix
    assert "jax-torch" in capsys.readouterr().out  # the merged matrix names the worst pair


def test_merging_a_shard_twice_names_both_files(suite: pytest.Pytester, capsys: Any) -> None:
    run(suite, "a", "-p", "no:xdist")
    report = str(suite.path / "a.json")
    assert merge.main([report, report]) == 2
    err = capsys.readouterr().err
    assert "must not overlap" in err and "--equiv-label" in err


def test_labels_compare_two_runs_and_catch_a_planted_difference(suite: pytest.Pytester, capsys: Any) -> None:
    run(suite, "a", "-p", "no:xdist", "--equiv-label", "first")
    run(suite, "b", "-p", "no:xdist", "--equiv-label", "second")
    stored = outputs.load(suite.path / "b.npz")
    item = "biased_conv::native[torch-cpu-float32-channels_first-L6]"
    outs, allowed = stored[item]
    outs["out"] = outs["out"] + 4 * allowed["out"]  # a second machine 4 bounds away from the first
    store = outputs.Store()
    for item_id, (o, a) in stored.items():
        store.add(item_id, o, a)
    store.write(suite.path / "b.npz")
    merged, notes = merge.merge([merge.load(suite.path / "a.json"), merge.load(suite.path / "b.json")])
    assert not notes
    across = [p for p in merged["pairwise"] if p.get("labels")]
    assert {frozenset(p["labels"]) for p in across} == {frozenset({"first", "second"})}
    same_fw = [p for p in across if p["frameworks"] == ["torch", "torch"]]
    planted = [p for p in same_fw if p["params"] == {"layout": "channels_first", "L": 6}
               and p["dtype"] == "float32"]
    assert len(planted) == 1 and planted[0]["max_error_ratio"] == pytest.approx(2.0, rel=1e-6)
    assert all(p["max_error_ratio"] == 0 for p in same_fw if p is not planted[0])  # same CPU, same bits
    lines = merge.MergedReporter(merged).terminal_lines()
    assert any("torch/cpu@first" in line and "torch/cpu@second" in line for line in lines)
    assert any("torch@first-torch@second float32 2" in line for line in lines)
    assert any(line.split()[:4] == ["biased_conv", "torch", "float32", "2"] for line in lines)


def test_a_report_without_outputs_is_paired_only_within_itself(suite: pytest.Pytester) -> None:
    for name, fw in (("t", "torch"), ("j", "jax")):
        result = suite.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu", "-p",
                                           "no:xdist", "--equiv-framework", fw, f"--equiv-report={name}.json")
        assert result.ret == 0
    merged, notes = merge.merge([merge.load(suite.path / "t.json"), merge.load(suite.path / "j.json")])
    assert merged["pairwise"] == [] and len(notes) == 2 and "--equiv-outputs" in notes[0]


def test_merge_rejects_a_file_that_is_no_report(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "x.json").write_text('{"a": 1}')
    assert merge.main([str(tmp_path / "x.json")]) == 2
    assert "not an equiv report" in capsys.readouterr().err


def test_a_report_is_one_json_document_with_a_line_per_row() -> None:
    doc = {"environment": {"path": Path("/x"), "n": np.int64(3)}, "results": [
        {"id": "a", "error_ratio": float("inf"), "params": {"k": (3, 3)}, "seconds": {"f": np.float32(0.5)}},
        {"id": "b", "error_ratio": float("nan"), "params": {}, "seconds": {}}], "pairwise": []}
    text = report.dumps(doc)
    assert json.loads(text) == {"environment": {"path": "/x", "n": 3}, "pairwise": [], "results": [
        {"id": "a", "error_ratio": "inf", "params": {"k": [3, 3]}, "seconds": {"f": 0.5}},
        {"id": "b", "error_ratio": "nan", "params": {}, "seconds": {}}]}
    assert [line.strip() for line in text.splitlines() if '"id"' in line] == [
        '{"id": "a", "error_ratio": "inf", "params": {"k": [3, 3]}, "seconds": {"f": 0.5}},',
        '{"id": "b", "error_ratio": "nan", "params": {}, "seconds": {}}']


def test_outputs_round_trip_any_id(tmp_path: Path) -> None:
    store = outputs.Store()
    store.add("c::v[a/b|c-seed1]", {"dx": np.arange(3.0), "db": np.ones(2, np.float32)},
              {"dx": np.zeros(3), "db": np.ones(2)})
    store.write(tmp_path / "o.npz")
    back = outputs.load(tmp_path / "o.npz")
    assert list(back) == ["c::v[a/b|c-seed1]"]
    assert back["c::v[a/b|c-seed1]"][0]["db"].dtype == np.float32
    np.testing.assert_array_equal(back["c::v[a/b|c-seed1]"][0]["dx"], np.arange(3.0))


def test_bfloat16_outputs_are_kept_exactly(tmp_path: Path) -> None:
    # .npz has no bfloat16 (ml_dtypes'): the store widens it to float64, which holds every value.
    import ml_dtypes

    y = np.array([1.0 + 2.0**-7, -3.5, 65504.0]).astype(ml_dtypes.bfloat16)
    store = outputs.Store()
    store.add("c::v[jax-cpu-bfloat16-p]", {"out": y}, {"out": np.zeros(3)})
    store.write(tmp_path / "o.npz")
    back = outputs.load(tmp_path / "o.npz")["c::v[jax-cpu-bfloat16-p]"][0]["out"]
    np.testing.assert_array_equal(back, y.astype(np.float64))


# -- shard processes side by side ---------------------------------------------------------------------
def test_shard_processes_side_by_side_merge_into_the_unsharded_run(suite: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    whole = run(suite, "whole")
    monkeypatch.chdir(suite.path)
    args = ["-p", "no:cacheprovider", "--equiv-device", "cpu", "--equiv-framework", FRAMEWORKS,
            "--equiv-jax-cache", "off"]
    assert launcher.main(["-n", "2", "--out", "merged.json", "--markdown", "merged.md", "--", *args]) == 0
    merged = json.loads((suite.path / "merged.json").read_text())
    assert sorted(r["id"] for r in merged["results"]) == sorted(r["id"] for r in whole["results"])
    assert {r["outcome"] for r in merged["results"]} == {"passed"}
    logs = sorted((suite.path / "reports" / "shards").glob("shard-*.log"))
    assert [log.name for log in logs] == ["shard-1.log", "shard-2.log"]
    assert "biased_conv" in (suite.path / "merged.md").read_text()


def test_shard_processes_report_a_failure_in_their_exit_status(suite: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = CASE.replace("return fw.conv(x, w, b,", "return fw.conv(x, w, 2 * b,")  # the bias added twice
    (suite.path / "cases" / "biased_conv.py").write_text(wrong)
    monkeypatch.chdir(suite.path)
    code = launcher.main(["-n", "2", "--", "-p", "no:cacheprovider", "--equiv-device", "cpu",
                        "--equiv-framework", "jax", "--equiv-jax-cache", "off"])
    assert code == 1
    merged = json.loads((suite.path / "reports" / "shards.json").read_text())
    assert merged["results"] and {r["outcome"] for r in merged["results"]} == {"failed"}


def test_shard_processes_size_their_pools_to_their_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "usable_cores", lambda: 8)
    assert launcher.environment(2, {})["OMP_NUM_THREADS"] == "4"
    assert launcher.environment(16, {})["TF_NUM_INTRAOP_THREADS"] == "1"
    assert launcher.environment(2, {"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"  # the user's wins


@pytest.mark.parametrize(("args", "message"), [(["-n", "0"], "-n: 0 is not a number of processes"),
                                               (["--", "--equiv-shard=1/2"], "--equiv-shard after --"),
                                               (["--", "-n", "2"], "-n after --")])
def test_shard_processes_reject_bad_arguments(capsys: Any, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        launcher.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# -- benchmark -------------------------------------------------------------------------------------
def test_benchmark_figures_from_a_report() -> None:
    report = {
        "results": [
            {"framework": "jax", "outcome": "passed",
             "seconds": {"oracle": 1.0, "framework": 6.0, "compare": 0.5}},
            {"framework": "torch", "outcome": "passed",
             "seconds": {"oracle": 0.0, "framework": 2.0, "compare": 0.5}},
            {"framework": "torch", "outcome": "skipped", "seconds": {"oracle": 0.0}},
        ],
        "timing": {"collection_seconds": 0.3, "import_seconds": {"jax": 1.0, "torch": 1.0}, "processes": 2,
                   "compile": {"jax": {"compiles": 4, "compile_seconds": 3.0, "cache_hits": 1}},
                   "peak_rss_mb": [300.0, None, 900.0], "cpu_seconds": [10.0, 9.0, 3.0]},
    }
    f = benchmark.figures(report, wall=12.0, workers=2)
    assert f["framework_seconds"] == {"jax": 6.0, "torch": 2.0}
    assert f["oracle_seconds"] == 1.0 and f["compare_seconds"] == 1.0
    assert f["overhead_ratio"] == pytest.approx(12.0 / ((8.0 + 2.0) / 2))
    assert f["results"] == 3 and f["results_per_second"] == pytest.approx(3 / 12.0)
    assert f["outcomes"] == {"passed": 2, "skipped": 1}
    assert f["peak_rss_mb"] == 900.0  # the largest process; one that could not tell is left out
    assert f["cpu_seconds"] == 22.0 and f["controller_cpu_seconds"] == 3.0  # the controller reports last
    assert benchmark.figures(report, wall=12.0, workers=1)["controller_cpu_seconds"] is None
    runs = {"serial-cold": {**f, "wall_seconds": 30.0, "framework_seconds": {"jax": 9.0}},
            "serial-warm": {**f, "wall_seconds": 20.0, "framework_seconds": {"jax": 3.0}},
            "n2": {**f, "wall_seconds": 12.5}}
    assert benchmark.summary(runs) == {"speedup_n2": 1.6, "speedup_nauto": None, "speedup_n2_cold": None,
                                      "jax_warm_share": 3.0 / 9.0, "two_process_ceiling": None,
                                      "speedup_n2_of_ceiling": None, "speedup_n2_at_best": None,
                                      "speedup_shards2": None, "overhead_ratio_at_best": None}
    assert benchmark.summary(runs, ceiling=1.6)["speedup_n2_of_ceiling"] == pytest.approx(1.0)
    # One warm process: 20 s wall, 19 CPU s; xdist costs 6 CPU s more; a second worker imports (2 s)
    # and collects (0.3 s): two busy cores need (19 + 6 + 2.3) / 2 s at least.
    one_core = {**runs, "serial-warm": {**runs["serial-warm"], "cpu_seconds": 19.0}}
    best = benchmark.summary(one_core, xdist_cpu=6.0)["speedup_n2_at_best"]
    assert best == pytest.approx(20.0 / ((19.0 + 6.0 + 2.3) / 2))
    # 22 CPU s in 20 s: its pools' threads worked beside it, so its CPU bounds nothing.
    summed = benchmark.summary(runs, xdist_cpu=6.0)
    assert summed["speedup_n2_at_best"] is None
    assert "kept 1.10 cores busy" in benchmark.table(runs, summed)[-2]
    lines = benchmark.table(runs, benchmark.summary(runs))
    assert any(line.startswith("overhead ratio") for line in lines)
    assert lines[-1].endswith("no-op tests: -")  # no floor measured, no bound
    serial = runs["serial-warm"]
    inside = serial["framework_seconds_total"] + sum(serial["import_seconds"].values())
    needed = serial["oracle_seconds"] + serial["compare_seconds"] + serial["collection_seconds"]
    floor = benchmark.summary(runs, pytest_wall=1.5)["overhead_ratio_at_best"]
    assert floor == pytest.approx((inside + needed + 1.5) / inside) and 1 < floor < serial["overhead_ratio"]
    busy = [line.split()[-3:] for line in lines if line.startswith("cores busy")]
    assert busy == [["0.73", "1.10", "1.76"]]  # 22 CPU s over 30, 20 and 12.5 s of wall


def test_benchmark_rounds_pair_runs_within_a_round() -> None:
    """A drifting machine: the median speed-up of paired runs, not the ratio of unpaired medians."""
    def run(wall: float, jax: float = 1.0) -> dict[str, Any]:
        return {**benchmark.figures({"results": [], "timing": {}}, wall=wall, workers=1),
                "framework_seconds": {"jax": jax}}

    rounds = [{"serial-warm": run(100.0), "n2": run(50.0)},   # slow minutes: 2.0x
              {"serial-warm": run(60.0), "n2": run(40.0)},    # 1.5x
              {"serial-warm": run(80.0), "n2": run(52.0)}]    # 1.54x
    summed = benchmark.summary_of_rounds(rounds)
    assert summed["speedup_n2"] == pytest.approx(80.0 / 52.0)  # the medians' ratio would be 80 / 50
    assert summed["speedup_nauto"] is None
    picked = benchmark.median_round(rounds, "n2")
    assert picked["wall_seconds"] == 50.0 and picked["wall_seconds_all"] == [50.0, 40.0, 52.0]
    two = benchmark.summary_of_rounds(rounds[:2])
    assert two["speedup_n2"] == pytest.approx((2.0 + 1.5) / 2)
    # Each round's speed-up against that round's ceiling: 2.0 / 2.0, 1.5 / 1.5, 1.54 / 1.4.
    shares = benchmark.summary_of_rounds(rounds, [2.0, 1.5, 1.4])
    assert shares["speedup_n2_of_ceiling"] == pytest.approx(1.0)
    assert shares["two_process_ceiling"] == pytest.approx(1.5)
    lines = benchmark.table({"n2": picked}, summed)
    assert any(line.split()[:5] == ["wall", "s,", "fastest", "round", "40.0"] for line in lines), lines


def test_benchmark_runs_the_suite_and_writes_its_figures(suite: pytest.Pytester, capsys: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(suite.path)
    out = suite.path / "reports" / "benchmark.json"
    code = benchmark.main(["--runs", "serial-cold,n2", "--repeat", "2", "--ceiling-loops", "100000",
                           "--out", str(out), "--",
                           "--equiv-framework", "jax"])
    assert code == 0, capsys.readouterr().out
    data = json.loads(out.read_text())
    cold, n2 = data["runs"]["serial-cold"], data["runs"]["n2"]
    assert cold["results"] == n2["results"] == 12 and cold["outcomes"] == {"passed": 12}  # cpu only
    assert cold["tests"] == n2["tests"] == 12  # one framework: a test per result
    assert cold["framework_seconds"]["jax"] > 0 and cold["jax_compile"]["compiles"] >= 12
    assert n2["jax_compile"]["cache_hits"] >= 12  # n2 ran second, on the cache serial-cold filled
    again = data["rounds"][1]["serial-cold"]["jax_compile"]
    assert len(data["rounds"]) == 2 and again["cache_hits"] == 0  # cold again in the second round
    assert len(cold["wall_seconds_all"]) == 2
    assert n2["workers"] == 2 and n2["processes"] == 3
    assert cold["peak_rss_mb"] > 50  # the frameworks alone take more
    assert 0 < n2["controller_cpu_seconds"] < n2["cpu_seconds"] and cold["controller_cpu_seconds"] is None
    assert data["machine"]["cpu"]["cores"] >= 1
    assert len(data["ceilings"]) == 2 and data["summary"]["two_process_ceiling"] > 0
    assert data["floor"] is None  # no serial-warm run to compare with
    printed = capsys.readouterr().out
    assert "overhead ratio" in printed and "jax compiles" in printed
    assert "two processes on this machine do" in printed


def test_benchmark_measures_pytests_own_floor(tmp_path: Path) -> None:
    floor = benchmark.pytest_floor(40, tmp_path / "floor")
    assert floor["items"] == 40 and "range(40)" in (tmp_path / "floor" / "test_noop.py").read_text()
    for run in ("serial", "n2"):
        assert floor[run]["wall_seconds"] > 0 and floor[run]["cpu_seconds"] > 0
    # Three processes (controller and two workers) start Python and pytest where one process does once.
    assert floor["n2"]["cpu_seconds"] > floor["serial"]["cpu_seconds"]


def test_benchmark_floor_without_child_cpu_times_draws_no_bound(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmark, "_children_cpu", lambda: None)  # as on Windows
    floor = benchmark.pytest_floor(5, tmp_path / "floor")
    assert floor["serial"]["cpu_seconds"] is None and floor["n2"]["cpu_seconds"] is None
    assert floor["n2"]["wall_seconds"] > 0


def test_benchmark_measures_two_processes_against_one() -> None:
    got = benchmark.two_process_ceiling(loops=300_000)
    assert len(got["alone_seconds"]) == 2 and len(got["pair_seconds"]) == 2
    assert all(t > 0 for t in got["alone_seconds"] + got["pair_seconds"])
    assert got["ceiling"] == pytest.approx(sum(got["alone_seconds"]) / max(got["pair_seconds"]))


def test_benchmark_runs_shards_side_by_side_and_merges_them(suite: pytest.Pytester, capsys: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(suite.path)
    out = suite.path / "reports" / "benchmark.json"
    code = benchmark.main(["--runs", "shards2", "--ceiling-loops", "1000", "--out", str(out), "--",
                           "--equiv-framework", "jax"])
    assert code == 0, capsys.readouterr().out
    run = json.loads(out.read_text())["runs"]["shards2"]
    assert run["results"] == 12 and run["outcomes"] == {"passed": 12}  # every item once, from two shards
    assert run["workers"] == run["processes"] == 2 and run["controller_cpu_seconds"] is None
    assert run["command"][:4] == ["-m", "equiv", "shards", "-n"]
    merged = json.loads((suite.path / "reports" / "benchmark-shards2.json").read_text())
    assert sorted(r["id"] for r in merged["results"]) == sorted({r["id"] for r in merged["results"]})
    assert "two shard processes and a merge" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [(["--runs", "serial-cold,fast"], "unknown run(s) fast"),
                                               (["--ceiling-loops", "0"], "--ceiling-loops: 0 is not"),
                                               (["--repeat", "0"], "--repeat: 0 is not a number of rounds")])
def test_benchmark_rejects_bad_arguments(capsys: Any, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
