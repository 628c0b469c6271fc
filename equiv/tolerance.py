"""How far a framework's result may be from the oracle, derived from rounding-error analysis.

An output element y = b + sum_{i=1..K} x_i * w_i, computed in a precision with unit roundoff u in any
summation order (blocked, pairwise, with or without FMA), satisfies (Higham, *Accuracy and Stability
of Numerical Algorithms*, 2nd ed., section 3.1, eq. 3.5)

    |fl(y) - y| <= gamma_K * sum_i |x_i * w_i|,     gamma_K = K*u / (1 - K*u),

plus u_out * |y| when the result is rounded to an output dtype narrower than the accumulator. The
oracle computes on the inputs *already rounded* to the item's dtype, so input rounding never counts;
only accumulation and output rounding do. Per element:

    magnitude M = the case's oracle applied to |inputs|          (= sum |x_i w_i| + |b|)
    terms     K = the case's oracle applied to all-ones inputs   (= how many terms were summed)
    allowed     = gamma_K * M + u_out * |y| + gamma_K(float64) * M + K * eta_acc

gamma_K(float64) * M is the oracle's own rounding: it sums in float64 too, so a float64 result is
compared with a reference that carries the same order of error. K * eta_acc is gradual underflow: a
product or sum below the accumulator's normal range errs by up to half its smallest subnormal eta
(Higham, eq. 2.8), whatever u says; it is negligible unless the values are that small.

With TF32 (`--equiv-precision tf32`) each float32 input of a product is first rounded to a 10-bit
mantissa (u_tf32 = 2**-11), so every product carries up to 2*u_tf32 + u_tf32**2 relative error on top.

The bound is rigorous for direct summation. Winograd or FFT convolution algorithms (cuDNN may pick
them) have a different error model; a result beyond this bound from one of them is reported, never
absorbed. `error_ratio` = max |y - y_ref| / allowed; a result passes when it is <= 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,  # 10 explicit mantissa bits
    "bfloat16": 2.0**-8,
    "float16": 2.0**-11,
}

# The smallest positive (subnormal) number of each dtype: below the normal range a rounding errs by up
# to half of it, whatever u says (float16's is 2**-24 = 6e-8, which a result of 1e-5 meets).
SMALLEST_SUBNORMAL: dict[str, float] = {
    "float64": 2.0**-1074,
    "float32": 2.0**-149,
    "bfloat16": 2.0**-133,
    "float16": 2.0**-24,
}

# (accumulator, output) per item dtype. float32 and float64 accumulate in their own precision in all
# three frameworks on CPU and on CUDA with TF32 off. float16/bfloat16 convs accumulate in float32
# (cuDNN, oneDNN, XLA) and round once at the end: their error is output rounding plus float32 sums.
ACCUMULATION: dict[str, tuple[str, str]] = {
    "float64": ("float64", "float64"),
    "float32": ("float32", "float32"),
    "bfloat16": ("float32", "bfloat16"),
    "float16": ("float32", "float16"),
}


def gamma(k: npt.ArrayLike, u: float) -> Array:
    """Higham's gamma_k = k*u / (1 - k*u); infinite where k*u >= 1 (no bound exists)."""
    ku = np.asarray(k, dtype=np.float64) * u
    with np.errstate(divide="ignore"):
        return np.where(ku < 1.0, ku / (1.0 - ku), np.inf)


@dataclass(frozen=True)
class Bound:
    """A case's tolerance rule. Overrides may only widen the derived bound, and must say why."""

    kind: str = "derived"  # "derived" | "exact" | "one_rounding"
    widen: float = 1.0
    reason: str = ""
    terms: Callable[[Any], float] | None = None  # K when all-ones inputs do not count terms (averages)
    # How many results along the longest path of the claim's variants are stored in the item's dtype:
    # every framework op rounds its result, and a layer is an op then its bias add (TF and JAX store
    # the conv's result before adding the bias), hence 2. Only half precision, which accumulates
    # wider than it stores, pays for it: u_out*M per stored result before the last.
    roundings: int | Callable[[Any], int] = 2

    def __post_init__(self) -> None:
        if self.kind not in ("derived", "exact", "one_rounding"):
            raise ValueError(f"tolerance kind must be derived, exact or one_rounding, got {self.kind!r}")
        if self.widen < 1.0:
            raise ValueError(f"a tolerance override may only widen (widen >= 1), got widen={self.widen}")
        if self.widen > 1.0 and not self.reason:
            raise ValueError(f"widening the bound by {self.widen}x needs a reason= that the report shows")
        if isinstance(self.roundings, int) and self.roundings < 1:
            raise ValueError(f"roundings counts the stored results, at least 1, got {self.roundings}")

    def roundings_at(self, p: Any) -> int:
        """The number of stored results at grid point p."""
        n = self.roundings(p) if callable(self.roundings) else self.roundings
        if n < 1:
            raise ValueError(f"roundings counts the stored results, at least 1, got {n} at {p!r}")
        return int(n)

    @property
    def needs_magnitude(self) -> bool:
        return self.kind == "derived"

    def describe(self) -> str:
        text = {
            "derived": "gamma_K*sum|x||w| + u_out*|y|",
            "exact": "exact equality (data movement only)",
            "one_rounding": "one rounding: u*|y|",
        }[self.kind]
        if self.widen != 1.0:
            text += f", widened {self.widen:g}x: {self.reason}"
        return text


def derived(*, widen: float = 1.0, reason: str = "", terms: Callable[[Any], float] | None = None,
            roundings: int | Callable[[Any], int] = 2) -> Bound:
    """The default: the rounding-error bound above."""
    return Bound("derived", widen, reason, terms, roundings)


def exact() -> Bound:
    """For operations that only move data (transpose, reshape, pad, max): no rounding at all."""
    return Bound("exact")


def one_rounding() -> Bound:
    """For a single rounding of the exact value to the item's dtype (a cast, one division)."""
    return Bound("one_rounding")


def allowed(
    bound: Bound,
    dtype: str,
    expected: Array,
    magnitude: Array | None = None,
    terms: Array | float | None = None,
    *,
    precision: str = "ieee",
    roundings: int | None = None,
) -> Array:
    """Per-element allowed |actual - expected| for an item of `dtype` under `bound`; `roundings` is
    bound.roundings_at(p), the results the item's path stores in `dtype` (the bound's own count if
    that is a number)."""
    if roundings is None:
        if callable(bound.roundings):
            raise ValueError("this bound's roundings depend on the grid point: pass "
                             "roundings=bound.roundings_at(p)")
        roundings = bound.roundings_at(None)
    accum, out = ACCUMULATION[dtype]
    u_out = UNIT_ROUNDOFF[out]
    size = np.abs(expected)
    if bound.kind == "exact":
        return np.zeros_like(size)
    if bound.kind == "one_rounding":
        return bound.widen * u_out * size
    if magnitude is None or terms is None:
        raise ValueError("the derived bound needs the magnitude and term count from the oracle")
    u = UNIT_ROUNDOFF[accum]
    # The oracle's float64 sums round too: at float64 its error is as large as the framework's.
    per_element = (gamma(terms, u) + gamma(terms, UNIT_ROUNDOFF["float64"])) * magnitude
    # Gradual underflow in the accumulator: each of the K products and sums that lands below the
    # normal range errs by up to half the subnormal spacing, which no relative bound covers.
    per_element = per_element + np.asarray(terms, dtype=np.float64) * SMALLEST_SUBNORMAL[accum]
    if precision == "tf32" and dtype == "float32":
        t = UNIT_ROUNDOFF["tf32"]
        per_element = per_element + (2 * t + t * t) * (1 + gamma(terms, u)) * magnitude
    if out != accum:
        # The last result rounds once (u_out*|y|); each stored intermediate v rounds too, and its
        # error u_out*|v| <= u_out*M travels to the output through the (linear) rest of the path.
        per_element = per_element + u_out * size + (roundings - 1) * u_out * magnitude
        # Gradual underflow: a stored result in the subnormal range errs by half its spacing.
        per_element = per_element + roundings * SMALLEST_SUBNORMAL[out] / 2
    return bound.widen * np.asarray(per_element, dtype=np.float64)


# The half dtypes whose accumulation in their own precision the diagnostics recognise.
HALF_ACCUMULATION_LEVEL = ("float16", "bfloat16")


def half_accumulation_level(dtype: str, expected: Array, magnitude: Array, terms: Array | float) -> Array:
    """The error of summing K terms in `dtype` itself: gamma_K(u_dtype)*M + u_dtype*|y|, the level a
    kernel without a float32 accumulator reaches (the diagnostics' hint, never a bound)."""
    u = UNIT_ROUNDOFF[dtype]
    m = np.asarray(magnitude, dtype=np.float64)
    # gamma is infinite once K*u >= 1 (256 bfloat16 terms): no level, except where nothing was summed.
    with np.errstate(invalid="ignore"):
        summed = np.where(m == 0, 0.0, gamma(terms, u) * m)
    return np.asarray(summed + u * np.abs(expected), dtype=np.float64)
