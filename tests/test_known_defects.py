"""A known defect absorbs only itself: gross bugs planted on the items the registry covers must fail.

Each test copies the real `cases/half_precision_accumulation.py` and the real
`cases/known_defects.toml` into a pytester directory, wraps one framework adapter function so that it
returns a wrong answer no framework gives (zeros, a dropped bias, a count off by one, a flipped
kernel, a wrong reduction axis, a wrong output next to a defective one), and runs the item through
the real plugin. The planted result must be `failed`, not `xfailed`: its error is not the answer of
the defective kernel's error model. A control run without the plant shows the real defect absorbed
where this machine's kernels have it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv import defects, emulation, frameworks, oracle, runner

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def loaded() -> None:
    """Import the three frameworks before pytester snapshots sys.modules (none survives a re-import)."""
    for name in frameworks.NAMES:
        if not frameworks.is_installed(name):
            pytest.skip(f"{name} is not installed")
        frameworks.load(name)


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setattr(runner, "_references", {})
    pytester.makeini("[pytest]\nequiv_cases = cases\nequiv_known_defects = cases/known_defects.toml\n")
    (pytester.path / "cases").mkdir()
    for name in ("half_precision_accumulation.py", "known_defects.toml"):
        shutil.copy(ROOT / "cases" / name, pytester.path / "cases" / name)
    return pytester


def records(p: pytest.Pytester, fw: str, dtype: str, select: str, *extra: str) -> list[dict[str, Any]]:
    return run(p, fw, dtype, select, *extra)[0]


def run(p: pytest.Pytester, fw: str, dtype: str, select: str,
        *extra: str) -> tuple[list[dict[str, Any]], pytest.RunResult]:
    report = p.path / "report.json"
    result = p.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu",
                                   "--equiv-jax-cache", "off", "--equiv-framework", fw, "--equiv-dtype",
                                   dtype, "-k", select, f"--equiv-report={report}", *extra)
    found: list[dict[str, Any]] = json.loads(report.read_text())["results"]
    assert found, f"no result for -k {select}"
    return found, result


def plant(monkeypatch: pytest.MonkeyPatch, fw: str, name: str, wrong: Callable[..., Any]) -> None:
    """Replace fw's adapter function `name` by `wrong(real, *args, **kwargs)`."""
    module = frameworks.load(fw)
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: wrong(real, *a, **k))


def _native(fw: str, a: Any) -> Any:
    module = frameworks.load(fw)
    return module.asarray(np.ascontiguousarray(a), "cpu")


def _np(fw: str, t: Any) -> Any:
    return np.asarray(frameworks.load(fw).to_numpy(t))


def assert_planted_bug_fails(found: list[dict[str, Any]]) -> None:
    for r in found:
        assert r["outcome"] == "failed", f"{r['id']}: a planted gross bug was {r['outcome']}:\n{r['reason']}"
        assert r["known_defect"] is None
        assert "this is something else" in r["reason"] or "not " in r["reason"], r["reason"]


def test_zeros_on_a_covered_mean_fail(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    control, result = run(suite, "tensorflow", "float16", "global_avg")
    assert {r["outcome"] for r in control} == {"xfailed"}  # tf-half-mean, on every CPU
    assert {r["known_outputs"]["out"] for r in control} == {"tf-half-mean"}
    result.stdout.fnmatch_lines(["known defects shown*", "  tf-half-mean: 1 (out 1)"])
    plant(monkeypatch, "tensorflow", "global_avg_pool", lambda real, x, **k: real(x, **k) * 0)
    assert_planted_bug_fails(records(suite, "tensorflow", "float16", "global_avg"))


def test_a_count_off_by_one_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    control = records(suite, "tensorflow", "float16", "avg_pool")
    assert {r["outcome"] for r in control} == {"xfailed"}
    plant(monkeypatch, "tensorflow", "avg_pool", lambda real, x, window, **k: real(x, window, **k) * 64 / 65)
    assert_planted_bug_fails(records(suite, "tensorflow", "float16", "avg_pool"))


def test_a_wrong_reduction_axis_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    # The mean over H only, read at W = 0: one spatial axis reduced instead of both.
    plant(monkeypatch, "tensorflow", "global_avg_pool",
          lambda real, x, **k: tf.reduce_mean(x, axis=1)[:, 0, :])
    assert_planted_bug_fails(records(suite, "tensorflow", "float16", "global_avg"))


def test_a_flipped_kernel_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    control = records(suite, "torch", "float16,bfloat16", "dilated_transpose")
    assert {r["outcome"] for r in control} == {"xfailed"}  # outside mkldnn on every CPU
    plant(monkeypatch, "torch", "conv_transpose",
          lambda real, x, w, *a, **k: real(x, w.flip(-1), *a, **k))
    assert_planted_bug_fails(records(suite, "torch", "float16,bfloat16", "dilated_transpose"))


def test_a_dropped_bias_fails(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # A depthwise conv with a bias: the Eigen depthwise model covers it wherever TF runs Eigen.
    (suite.path / "cases" / "depthwise_bias.py").write_text('''"""A half depthwise conv adds its bias."""
from equiv import Case, oracle

case = Case(dtypes=("float16", "bfloat16"), output_layout="channels_last")


@case.inputs
def draw(rng, p):
    return {"x": rng.uniform(0.5, 1.5, (2, 15, 15, 4)), "w": rng.uniform(0.5, 1.5, (8, 8, 4, 1)),
            "b": rng.uniform(20, 30, (4,))}


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w.reshape(8, 8, 1, 4), b, groups=4, layout="channels_last")


@case.variant
def depthwise(fw, p, x, w, b):
    return fw.depthwise_conv(x, w, b, layout="channels_last")
''')
    control = records(suite, "tensorflow", "float16,bfloat16", "depthwise_bias")
    for r in control:  # float16 runs Eigen on a CPU without AVX-512 FP16; TF's process keeps its kernels
        assert r["outcome"] == ("xfailed" if r["cpu_kernels"] == "Eigen" else "passed"), r["reason"]
    plant(monkeypatch, "tensorflow", "depthwise_conv", lambda real, x, w, b=None, **k: real(x, w, None, **k))
    assert_planted_bug_fails(records(suite, "tensorflow", "float16,bfloat16", "depthwise_bias"))


def test_a_wrong_output_next_to_a_defective_one_fails(suite: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # dx, dw and db of one conv: TF's bfloat16 bias gradient shows its defect; dx is made wrong.
    (suite.path / "cases" / "all_gradients.py").write_text('''"""A conv's three gradients at once."""
from equiv import Case, oracle

case = Case(grid={"layout": ["channels_last"]}, dtypes=("bfloat16",))


@case.inputs
def draw(rng, p):
    return {"x": rng.uniform(0.5, 1.5, (2, 514, 4)), "w": rng.uniform(0.5, 1.5, (3, 4, 8)),
            "g": rng.uniform(0.5, 1.5, (2, 512, 8))}


@case.oracle
def expected(p, x, w, g):
    return dict(zip(("dx", "dw", "db"), oracle.conv_vjp(x, w, g, layout=p.layout)))


@case.variant
def gradients(fw, p, x, w, g):
    return dict(zip(("dx", "dw", "db"), fw.conv_vjp(x, w, g, layout=p.layout)))
''')
    control = records(suite, "tensorflow", "bfloat16", "all_gradients")
    for r in control:
        if r["cpu_kernels"] == "oneDNN":  # db showed BiasAddGrad's defect; dx and dw passed their bounds
            assert r["outcome"] == "xfailed", r["reason"]
            assert r["known_outputs"] == {"db": "tf-bfloat16-bias-add-grad"}, r["reason"]

    def wrong_dx(real: Any, *a: Any, **k: Any) -> Any:
        dx, dw, db = real(*a, **k)
        return dx * 1.25, dw, db

    plant(monkeypatch, "tensorflow", "conv_vjp", wrong_dx)
    found = records(suite, "tensorflow", "bfloat16", "all_gradients")
    assert_planted_bug_fails(found)
    for r in found:
        assert "dx" in r["reason"]


def test_an_error_model_is_the_kernels_answer_bit_for_bit() -> None:
    """The sequential bfloat16 sum of 1,024 ones stalls at 256: 256 + 1 lies halfway between 256 and
    258, the bfloat16 neighbours there, and rounds to the even 256 (BiasAddGrad's symptom)."""
    g = np.full((2, 512, 8), 1.0)
    model = emulation.Model("conv_bias_grad", "sequential", "bfloat16")
    with emulation.emulating(model):
        _, _, db = oracle.conv_vjp(np.ones((2, 514, 4)), np.ones((3, 4, 8)), g, layout="channels_last")
    assert np.all(db == 256.0)
    _, _, exact = oracle.conv_vjp(np.ones((2, 514, 4)), np.ones((3, 4, 8)), g, layout="channels_last")
    assert np.all(exact == 1024.0)  # outside the block the oracle is itself again


def test_a_flipped_kernel_in_a_banded_gradient_fails(suite: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """conv_gradients' TensorFlow half dx is covered by a band (tf-eigen-half-conv-backprop-input):
    dx computed with the kernel flipped is off by about 1/u half_ulps, far outside it."""
    import tensorflow as tf

    shutil.copy(ROOT / "cases" / "conv_gradients.py", suite.path / "cases" / "conv_gradients.py")
    select = "conv_gradients and nd1-s1-d1-valid-groups1"

    def flipped_dx(real: Any, x: Any, w: Any, g: Any, **k: Any) -> Any:
        axis = 0 if k.get("layout") == "channels_last" else len(w.shape) - 1
        _, dw, db = real(x, w, g, **k)
        return real(x, tf.reverse(w, axis=[axis]), g, **k)[0], dw, db

    plant(monkeypatch, "tensorflow", "conv_vjp", flipped_dx)
    found = [r for r in records(suite, "tensorflow", "float16,bfloat16", select) if r["outcome"] != "skipped"]
    # channels_last in both dtypes; channels_first only where oneDNN runs (Eigen takes no NCHW), which
    # depends on the kernels this test process pinned before (an earlier in-process run may have).
    assert {r["dtype"] for r in found if r["params"]["layout"] == "channels_last"} == {"float16", "bfloat16"}
    assert_planted_bug_fails(found)
    for r in found:
        assert "dx" in r["reason"] and "equals the oracle with the kernel flipped" in r["reason"]


def test_a_model_explains_only_the_outputs_its_kernel_produces() -> None:
    """dw is off by half a rounding of its magnitude, which the model's slack would cover; the bias
    gradient's model leaves dw as the oracle has it, so dw's error is not the defect's."""
    rng = np.random.default_rng(0)
    x, w = rng.uniform(0.5, 1.5, (2, 514, 4)), rng.uniform(0.5, 1.5, (3, 4, 8))
    g = rng.uniform(0.5, 1.5, (2, 512, 8))

    def gradients(model: emulation.Model | None = None) -> dict[str, Any]:
        if model is None:
            grads = oracle.conv_vjp(x, w, g, layout="channels_last")
            return dict(zip(("dx", "dw", "db"), grads, strict=True))
        with emulation.emulating(model):
            return gradients()

    exact, shown = gradients(), gradients(emulation.Model("conv_bias_grad", "sequential", "bfloat16"))
    magnitude = {n: np.abs(v) for n, v in exact.items()}  # positive inputs: sum|x||w| = |y|
    tight = {n: np.full(v.shape, 1e-9) for n, v in exact.items()}
    u = 2.0**-8
    failed = {"db": defects.Output(shown["db"], exact["db"], tight["db"], magnitude["db"]),
              "dw": defects.Output(exact["dw"] + 0.5 * u * magnitude["dw"], exact["dw"], tight["dw"],
                                   magnitude["dw"])}
    entry = defects.Defect(id="bias", framework="tensorflow", upstream="https://example.org", summary="",
                           sites=("conv_bias_grad",), model="sequential", dtypes=("bfloat16",))
    assert set(defects.explain(entry, failed, "bfloat16", gradients)) == {"db"}


# Hand-derived: float16 has 11 significant bits, so between 2048 and 4096 its spacing is 2 and
# 2048 + 1 = 2049 is a tie that rounds to the even 2048.
@pytest.mark.parametrize(("order", "terms", "expected"), [
    ("sequential", [[1.0, 2048.0], [1.0, 0.0]], 2048.0),  # 1, 2049 -> 2048, 2049 -> 2048, 2048
    ("sequential_inner_first", [[1.0, 2048.0], [1.0, 0.0]], 2050.0),  # column by column: 1, 2, 2050
    ("col2im", [[1.0, 0.0], [2048.0, 1.0]], 2048.0),  # rows rounded first: 1 + 2048 = 2049 -> 2048
    ("per_outer", [[1.0, 0.0], [2048.0, 1.0]], 2050.0),  # rows unrounded: 1 + 2049 = 2050
    ("col2im", [[2048.0], [1.0], [1.0]], 2048.0),  # taps in order: each 1 rounds away
    ("col2im_taps_reversed", [[2048.0], [1.0], [1.0]], 2050.0),  # 1 + 1 = 2 first, then 2050
])
def test_each_order_sums_as_it_says(order: str, terms: list[list[float]], expected: float) -> None:
    model = emulation.Model("conv_input_grad", order, "float16")
    assert model.sum(np.array(terms), (0, 1)) == expected


def test_per_sample_rounds_once_per_sample_where_col2im_rounds_per_row() -> None:
    # Sample 0 holds [[2048, 1], [1, 0]]: in float32 2050, which float16 holds. col2im rounds each row:
    # 2049 -> 2048 (a tie, to even), then 2048 + 1 -> 2048 again. Sample 1 is zeros.
    terms = np.array([[[2048.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert emulation.Model("conv_bias_grad", "per_sample", "float16").sum(terms, (0, 1, 2)) == 2050.0
    assert emulation.Model("conv_bias_grad", "col2im", "float16").sum(terms, (0, 1, 2)) == 2048.0



def test_the_matrix_marks_a_pair_apart_because_of_a_known_defect(suite: pytest.Pytester) -> None:
    """torch's float16 mean is right, TensorFlow's is the known defect: the worst pair, far past 1,
    says why; the cuda columns, every result skipped here, fold into one line."""
    if any(frameworks.load(name).gpus() for name in ("torch", "tensorflow")):
        pytest.skip("this machine has a GPU")
    _, result = run(suite, "tensorflow,torch", "float16", "global_avg", "--equiv-device", "cpu,cuda")
    result.stdout.fnmatch_lines(["half_precision_accumulation *1 ok *1 xfail *tensorflow-torch float16 * "
                                 "(known defect)",
                                 "cuda: all 2 results skipped (*sees no GPU*)"])
    assert "torch/cuda" not in result.stdout.str()


AVG_POOL_AS_DEPTHWISE = '''"""An average pool is a depthwise conv with weights 1/k² (from the README)."""
import numpy as np

from equiv import Case, oracle, tolerance

case = Case(grid={"k": [3]}, dtypes=("float16",), output_layout="channels_last",
            tolerance=tolerance.derived(terms=lambda p: p.k**2 + 2))


@case.inputs
def draw(rng, p):
    return {"x": rng.standard_normal((2, 6, 7, 3)), "w": np.full((p.k, p.k, 3, 1), 1.0 / p.k**2)}


@case.oracle
def expected(p, x, w):
    return oracle.avg_pool(x, p.k, stride=p.k, layout="channels_last")


@case.variant
def avg_pool(fw, p, x, w):
    return fw.avg_pool(x, p.k, stride=p.k, layout="channels_last")


@case.variant
def depthwise_conv(fw, p, x, w):
    return fw.depthwise_conv(x, w, stride=p.k, layout="channels_last")
'''


def test_a_defect_is_credited_to_the_kernel_the_variant_called(suite: pytest.Pytester) -> None:
    """A claim whose oracle is an average pool and whose variant is a depthwise conv: TensorFlow's
    Eigen float16 depthwise kernel sums tap by tap in float16, which the avg_pool site can state. The
    depthwise entry (its `calls` name depthwise_conv) explains it; the AvgPool entry, whose kernel the
    variant never called, does not cover it."""
    (suite.path / "cases" / "avg_pool_as_depthwise_conv.py").write_text(AVG_POOL_AS_DEPTHWISE)
    found = records(suite, "tensorflow", "float16", "avg_pool_as_depthwise_conv", "--equiv-seed", "1-6")
    depthwise = [r for r in found if r["variant"] == "depthwise_conv"]
    assert depthwise and all("tf-half-avg-pool" not in r["covered_by"] for r in depthwise)
    for r in depthwise:
        assert r["outcome"] in ("passed", "xfailed"), r["reason"]
        if r["outcome"] == "xfailed":
            assert r["known_outputs"] == {"out": "tf-eigen-half-depthwise"}
    if depthwise[0]["cpu_kernels"] == "Eigen":  # float16 without AVX-512 FP16: the defect shows
        assert all("tf-eigen-half-depthwise" in r["covered_by"] for r in depthwise)
        assert any(r["outcome"] == "xfailed" for r in depthwise)  # seeds 1-6 include draws that show it
    pooled = [r for r in found if r["variant"] == "avg_pool"]
    assert pooled and all("tf-eigen-half-depthwise" not in r["covered_by"] for r in pooled)


def test_calls_narrow_an_entry_to_the_variants_that_reach_its_kernel() -> None:
    entry = defects.Defect(id="d", framework="jax", upstream="https://example.org", summary="",
                           calls=("avg_pool",))
    item = "c::v[jax-cpu-float16-k2]"
    assert entry.covers(item, "jax", "cpu", "float16", frozenset({"avg_pool", "layout"}))
    assert not entry.covers(item, "jax", "cpu", "float16", frozenset({"depthwise_conv"}))


def test_a_returned_dtype_absorbs_only_its_own_dtype_and_computation(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """tf-eager-max-pool-numpy-to-float32 (a `returns` entry): TF's max pool of a float64 NumPy array
    comes back float32 holding the float32 max. A min pool that also comes back float32, or a max
    pool that comes back float16, is something else and fails."""
    import tensorflow as tf

    shutil.copy(ROOT / "cases" / "dtype_is_kept.py", suite.path / "cases" / "dtype_is_kept.py")
    select = "numpy_in and max_pool and nd2 and not global"
    control = records(suite, "tensorflow", "float64", select)
    assert {r["outcome"] for r in control} == {"xfailed"}, [r["reason"] for r in control]
    assert {r["known_defect"] for r in control} == {"tf-eager-max-pool-numpy-to-float32"}
    assert "again came back float32" in control[0]["reason"]
    plant(monkeypatch, "tensorflow", "max_pool", lambda real, x, *a, **k: -real(-x, *a, **k))
    assert_planted_bug_fails(records(suite, "tensorflow", "float64", select))
    plant(monkeypatch, "tensorflow", "max_pool",
          lambda real, x, *a, **k: tf.cast(real(x, *a, **k), tf.float16))
    found = records(suite, "tensorflow", "float64", select)
    assert_planted_bug_fails(found)
    assert all("returned the wrong dtype" in r["reason"] for r in found)
