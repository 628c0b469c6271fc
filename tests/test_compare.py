"""Tolerances, comparison, diagnostics and precision pinning, with hand-derived values."""

from __future__ import annotations

import numpy as np
import pytest

from equiv import compare, frameworks, oracle, tolerance


def test_gamma_matches_highams_definition() -> None:
    # gamma_2 at u = 2**-24: 2u / (1 - 2u) = 2**-23 / (1 - 2**-23).
    assert tolerance.gamma(2, 2.0**-24) == pytest.approx(2.0**-23 / (1 - 2.0**-23), rel=1e-15)
    assert tolerance.gamma(0, 2.0**-24) == 0.0
    assert np.isinf(tolerance.gamma(2**24, 2.0**-24))  # K*u >= 1: no bound exists


def test_derived_bound_per_element() -> None:
    # One element: K = 13 terms, sum|x||w| = 9.0, float32 -> 9 * gamma_13 (the README's example).
    allowed = tolerance.allowed(
        tolerance.derived(), "float32", np.array([1.0]), np.array([9.0]), np.array([13.0])
    )
    g13 = 13 * 2.0**-24 / (1 - 13 * 2.0**-24)
    g13_oracle = 13 * 2.0**-53 / (1 - 13 * 2.0**-53)  # the float64 oracle's own rounding
    assert allowed[0] == pytest.approx(9.0 * (g13 + g13_oracle), rel=1e-15)
    assert allowed[0] == pytest.approx(7.0e-6, rel=1e-2)
    # float16 accumulates in float32 and rounds once at the end: + 2**-11 * |y| (and half float16's
    # smallest subnormal, 2**-25, for a result that underflows).
    half = tolerance.allowed(
        tolerance.derived(roundings=1), "float16", np.array([2.0]), np.array([9.0]), np.array([13.0])
    )
    assert half[0] == pytest.approx(9.0 * (g13 + g13_oracle) + 2.0 * 2.0**-11 + 2.0**-25, rel=1e-15)


def test_half_precision_bound_counts_stored_results_and_underflow() -> None:
    # Three stored results: u*|y| for the last, u*M for each of the two before, and half the
    # smallest subnormal (2**-24 in float16) per stored result for gradual underflow.
    y, m, k = np.array([2.0]), np.array([9.0]), np.array([13.0])
    base = tolerance.allowed(tolerance.derived(), "float32", y, m, k)
    three = tolerance.allowed(tolerance.derived(roundings=3), "float16", np.array([2.0]), np.array([9.0]),
                              np.array([13.0]))
    u = 2.0**-11
    g13_oracle = 13 * 2.0**-53 / (1 - 13 * 2.0**-53)
    assert three[0] == pytest.approx(base[0] + 2.0 * u + 2 * 9.0 * u + 3 * 2.0**-25, rel=1e-12)
    assert base[0] == pytest.approx(9.0 * (13 * 2.0**-24 / (1 - 13 * 2.0**-24) + g13_oracle), rel=1e-15)
    # float32 and float64 store in their accumulator: the count does not change their bound.
    assert tolerance.allowed(tolerance.derived(), "float32", np.array([2.0]), np.array([9.0]),
                             np.array([13.0]), roundings=5)[0] == base[0]
    with pytest.raises(ValueError, match="roundings counts the stored results, at least 1"):
        tolerance.derived(roundings=0)
    with pytest.raises(ValueError, match="at least 1, got 0 at"):
        tolerance.derived(roundings=lambda p: 0).roundings_at({"k": 1})


def test_tf32_bound_adds_input_rounding() -> None:
    ieee = tolerance.allowed(tolerance.derived(), "float32", np.ones(1), np.ones(1), np.ones(1))
    tf32 = tolerance.allowed(
        tolerance.derived(), "float32", np.ones(1), np.ones(1), np.ones(1), precision="tf32"
    )
    t = 2.0**-11
    g1 = 2.0**-24 / (1 - 2.0**-24)
    assert tf32[0] - ieee[0] == pytest.approx((2 * t + t * t) * (1 + g1), rel=1e-12)


def test_exact_and_one_rounding() -> None:
    y = np.array([3.0, -4.0])
    assert not tolerance.allowed(tolerance.exact(), "float32", y).any()
    assert list(tolerance.allowed(tolerance.one_rounding(), "float32", y)) == [3 * 2.0**-24, 4 * 2.0**-24]


def test_overrides_may_only_widen_and_need_a_reason() -> None:
    with pytest.raises(ValueError, match="may only widen"):
        tolerance.derived(widen=0.5, reason="tighter")
    with pytest.raises(ValueError, match="needs a reason"):
        tolerance.derived(widen=2.0)
    assert "widened 2x: Winograd" in tolerance.derived(widen=2.0, reason="Winograd").describe()


def check(actual: list[float], expected: list[float], allowed: float = 0.1) -> compare.Comparison:
    e = np.array(expected)
    return compare.compare(np.array(actual), e, np.full(e.shape, allowed), what="t")


def test_compare_ratio_and_worst_element() -> None:
    c = check([1.0, 2.05, 3.3], [1.0, 2.0, 3.0])
    assert c.error_ratio == pytest.approx(3.0) and c.mismatches == 1 and not c.ok
    assert c.worst[0].index == (2,)
    assert "1 of 3 elements beyond the allowed error (error_ratio 3" in c.message("rule")
    assert check([1.0, 2.05], [1.0, 2.0]).ok


def test_a_zero_bound_allows_exactly_the_exact_answer() -> None:
    zero = np.zeros(2)
    assert compare.compare(np.array([1.0, 2.0]), np.array([1.0, 2.0]), zero, what="x").error_ratio == 0.0
    c = compare.compare(np.array([1.0, 2.0 + 2.0**-40]), np.array([1.0, 2.0]), zero, what="x")
    assert c.error_ratio == np.inf and c.mismatches == 1 and not c.ok
    one = {"out": np.array([1.0, 2.0])}
    assert compare.pair(one, {"out": zero}, dict(one), {"out": zero}) == (0.0, 0.0)
    assert compare.pair(one, {"out": zero}, {"out": np.array([1.0, 3.0])}, {"out": zero}) == (1.0, np.inf)
    three, none = np.array(3.0), np.array(0.0)  # 0-d outputs (a parameter count)
    assert compare.compare(three, three, none, what="a count").ok
    assert compare.compare(np.array(4.0), three, np.array(0.5), what="a count").error_ratio == 2
    assert compare.pair({"n": three}, {"n": none}, {"n": three}, {"n": none}) == (0, 0)


@pytest.mark.parametrize(
    ("actual", "expected", "ok"),
    [
        ([np.nan, 1.0], [np.nan, 1.0], True),  # NaN where the oracle has NaN
        ([np.inf, 1.0], [np.inf, 1.0], True),
        ([np.nan, 1.0], [0.5, 1.0], False),  # a NaN never passes by accident
        ([-np.inf, 1.0], [np.inf, 1.0], False),  # Inf of the wrong sign
        ([1.0, 1.0], [np.nan, 1.0], False),  # a finite value where the oracle has NaN
    ],
)
def test_non_finite_must_match_in_place(actual: list[float], expected: list[float], ok: bool) -> None:
    c = check(actual, expected)
    assert c.ok is ok
    if not ok:
        assert "non-finite" in c.problem


def test_shape_mismatch_states_both_shapes() -> None:
    c = compare.compare(np.zeros((2, 7, 3)), np.zeros((2, 6, 3)), np.zeros((2, 6, 3)), what="t")
    assert not c.ok and "shape (2, 7, 3) but the oracle's is (2, 6, 3)" in c.problem
    assert "size differs on axis [1]" in c.hints[0]
    swapped = compare.compare(np.zeros((2, 3, 6)), np.zeros((2, 6, 3)), np.zeros((2, 6, 3)), what="t")
    assert "layout" in swapped.hints[0]


def test_index_is_reported_in_channels_first_order_too() -> None:
    assert compare.to_channels_first((1, 4, 5, 2), "channels_last") == (1, 2, 4, 5)
    assert compare.to_channels_first((1, 2, 4, 5), "channels_first") == (1, 2, 4, 5)


def _conv_problem() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((2, 3, 12, 10)), "w": rng.standard_normal((3, 3, 3, 3)),
              "b": rng.standard_normal(3)}
    return inputs, oracle.conv(inputs["x"], inputs["w"], inputs["b"], padding="same")


def _hints(actual: np.ndarray, inputs: dict[str, np.ndarray], expected: np.ndarray) -> list[str]:
    def recompute(changes: object) -> np.ndarray:
        new = {**inputs, **changes}  # type: ignore[dict-item]
        return oracle.conv(new["x"], new["w"], new["b"], padding="same")

    bad = np.abs(actual - expected) > 1e-9
    return compare.diagnose(
        actual, expected, bad, layout="channels_first", inputs=inputs, recompute=recompute
    )


def test_hint_border_only_error_means_padding() -> None:
    inputs, y = _conv_problem()
    wrong = y.copy()
    wrong[:, :, 0, :] += 1.0  # only the first row is off
    assert any("only on the borders" in h for h in _hints(wrong, inputs, y))
    bad = np.abs(wrong - y) > 1e-9  # an item whose params say VALID: no padding to blame
    quiet = compare.diagnose(wrong, y, bad, layout="channels_first", padded=False)
    assert not any("only on the borders" in h for h in quiet)


def test_hint_flipped_kernel_means_convolution_vs_correlation() -> None:
    inputs, y = _conv_problem()
    wrong = oracle.conv(inputs["x"], np.flip(inputs["w"], (2, 3)), inputs["b"], padding="same")
    assert any("kernel flipped" in h for h in _hints(wrong, inputs, y))


def test_hint_swapped_weight_axes_and_dropped_bias() -> None:
    inputs, y = _conv_problem()
    swapped = oracle.conv(inputs["x"], np.swapaxes(inputs["w"], 0, 1), inputs["b"], padding="same")
    assert any("in/out channel axes swapped" in h for h in _hints(swapped, inputs, y))
    no_bias = oracle.conv(inputs["x"], inputs["w"], padding="same")
    assert any("bias was dropped" in h for h in _hints(no_bias, inputs, y))


def test_hint_output_shift_means_odd_pixel_side() -> None:
    inputs, y = _conv_problem()
    wrong = np.roll(y, 1, axis=3)
    assert any("shifted by one along axis 3" in h for h in _hints(wrong, inputs, y))


def test_hint_swapped_spatial_axes_means_layout() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((2, 3, 5, 5))
    wrong = np.swapaxes(y, 2, 3)
    bad = np.abs(wrong - y) > 0
    assert any("axes 2 and 3 swapped" in h for h in compare.diagnose(wrong, y, bad, layout="channels_first"))


def test_hint_tf32_pattern() -> None:
    inputs, y = _conv_problem()
    x32 = inputs["x"].astype(np.float32)
    w32 = inputs["w"].astype(np.float32)

    def to_tf32(a: np.ndarray) -> np.ndarray:  # round to nearest with 10 mantissa bits
        bits = a.view(np.uint32).astype(np.uint64)
        return ((bits + 0x1000) & 0xFFFFE000).astype(np.uint32).view(np.float32)

    wrong = oracle.conv(to_tf32(x32), to_tf32(w32), inputs["b"], padding="same")
    mag = oracle.conv(np.abs(x32), np.abs(w32), np.abs(inputs["b"]), padding="same")
    terms = oracle.conv(np.ones_like(x32), np.ones_like(w32), np.ones(3), padding="same")
    exact = oracle.conv(x32, w32, inputs["b"], padding="same")
    bad = np.abs(wrong - exact) > tolerance.allowed(tolerance.derived(), "float32", exact, mag, terms)
    hints = compare.diagnose(wrong, exact, bad, layout="channels_first", magnitude=mag, terms=terms)
    assert any("TF32" in h for h in hints)


def test_precision_pins_tf32_off_and_restores() -> None:
    torch_fw = frameworks.load("torch")
    import torch

    torch.backends.cudnn.allow_tf32 = True  # PyTorch's own default for cuDNN convs
    with torch_fw.precision("ieee"):
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is True
    with torch_fw.precision("tf32"):
        assert torch.backends.cudnn.allow_tf32 is True
    jax_fw = frameworks.load("jax")
    from jax import lax

    with jax_fw.precision("tf32"):
        assert jax_fw.precision_state()["conv_and_dot_precision"] == str(lax.Precision.DEFAULT)
    assert jax_fw.precision_state()["conv_and_dot_precision"] == str(lax.Precision.HIGHEST)


def test_tensorflow_precision_pins_and_restores() -> None:
    tf_fw = frameworks.load("tensorflow")
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(True)  # TF's default
    with tf_fw.precision("ieee"):
        assert tf_fw.precision_state() == {"tensor_float_32_execution": False}
    assert tf.config.experimental.tensor_float_32_execution_enabled() is True


def test_a_pair_agrees_where_both_overflow_to_the_same_inf() -> None:
    # Two float16 results that both overflowed agree there; inf against a finite value does not.
    a, b = {"out": np.array([np.inf, 1.0])}, {"out": np.array([np.inf, 1.0 + 2.0**-10])}
    bound = {"out": np.array([np.inf, 2.0**-11])}
    assert compare.pair(a, bound, b, bound) == (2.0**-10, 1.0)
    finite = {"out": np.array([70000.0, 1.0])}
    assert compare.pair(a, bound, finite, {"out": np.array([1.0, 2.0**-11])})[1] == np.inf
