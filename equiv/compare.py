"""Compare a result with the oracle, and explain a failure from the pattern of its error."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from equiv import tolerance

Array = npt.NDArray[Any]
# Re-run the oracle with some inputs replaced; None when the case's oracle cannot (shape errors).
Recompute = Callable[[Mapping[str, Array]], Array | None]

WORST_SHOWN = 3


@dataclass(frozen=True)
class Worst:
    index: tuple[int, ...]  # in the output's own layout
    index_channels_first: tuple[int, ...]
    actual: float
    expected: float
    allowed: float
    ratio: float


@dataclass(frozen=True)
class Comparison:
    """The verdict on one output array; `error_ratio` <= 1 means within the allowed error."""

    what: str
    shape: tuple[int, ...]
    expected_shape: tuple[int, ...]
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    error_ratio: float | None = None
    mismatches: int = 0
    worst: list[Worst] = field(default_factory=list)
    problem: str = ""  # a non-numeric reason (shape, non-finite)
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem and self.error_ratio is not None and self.error_ratio <= 1.0

    @property
    def size(self) -> int:
        return int(np.prod(self.expected_shape))

    def message(self, allowed_rule: str) -> str:
        if self.problem:
            lines = [f"{self.what}: {self.problem}"]
        else:
            lines = [
                f"{self.what}: {self.mismatches} of {self.size} elements beyond the allowed error "
                f"(error_ratio {_fmt(self.error_ratio)}; allowed: {allowed_rule})",
                f"  max abs error {_fmt(self.max_abs_error)}, max rel error {_fmt(self.max_rel_error)}",
            ]
        for w in self.worst:
            lines.append(
                f"  at {w.index} (channels_first {w.index_channels_first}): got {w.actual!r}, "
                f"oracle {w.expected!r}, |diff| {abs(w.actual - w.expected):.3g} > allowed "
                f"{w.allowed:.3g} (ratio {_fmt(w.ratio)})"
            )
        lines += [f"  hint: {h}" for h in self.hints]
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def to_channels_first(index: tuple[int, ...], layout: str) -> tuple[int, ...]:
    if layout != "channels_last" or len(index) < 3:
        return index
    return (index[0], index[-1], *index[1:-1])


def compare(
    actual: Array, expected: Array, allowed: Array, *, what: str, layout: str = "channels_first"
) -> Comparison:
    """Element-wise |actual - expected| against `allowed`; NaN and Inf must match in place and sign."""
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison(
            what, actual.shape, expected.shape,
            problem=f"shape {actual.shape} but the oracle's is {expected.shape}",
            hints=_shape_hints(actual.shape, expected.shape),
        )
    a = actual.astype(np.float64)
    if np.isfinite(a).all() and np.isfinite(expected).all():  # nearly always: half the array passes
        diff = np.abs(a - expected)
        inexact = diff != 0  # an exact answer passes a zero bound
        with np.errstate(divide="ignore"):
            ratio = np.divide(diff, allowed, out=np.zeros(diff.shape), where=inexact)
            rel = np.divide(diff, np.abs(expected), out=np.zeros(diff.shape), where=inexact)
        stray = None
    else:
        same_nonfinite = (np.isnan(a) & np.isnan(expected)) | (np.isinf(expected) & (a == expected))
        finite = np.isfinite(a) & np.isfinite(expected)
        with np.errstate(invalid="ignore"):  # inf - inf; those places are judged by same_nonfinite
            diff = np.where(finite, np.abs(a - expected), np.where(same_nonfinite, 0.0, np.inf))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / allowed)
            rel = np.where(diff == 0, 0.0, diff / np.abs(expected))
        ratio = np.nan_to_num(ratio, nan=np.inf, posinf=np.inf)
        stray = ~finite & ~same_nonfinite
    problem = ""
    if stray is not None and stray.any():
        first = tuple(int(i) for i in np.argwhere(stray)[0])
        problem = (
            f"{int(stray.sum())} non-finite value(s) where the oracle differs, first at {first}: "
            f"got {a[first]!r}, oracle {expected[first]!r}"
        )
    error_ratio = float(ratio.max()) if ratio.size else 0.0
    order: npt.NDArray[np.intp] | list[int] = (  # a full sort only when something is to be shown
        np.argsort(ratio, axis=None)[::-1][:WORST_SHOWN] if error_ratio > 1.0 else []
    )
    worst = []
    for flat in order:
        idx = tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
        if ratio[idx] <= 1.0:
            break
        worst.append(
            Worst(idx, to_channels_first(idx, layout), float(a[idx]), float(expected[idx]),
                  float(allowed[idx]), float(ratio[idx]))
        )
    return Comparison(
        what, actual.shape, expected.shape,
        max_abs_error=float(diff.max()) if diff.size else 0.0,
        max_rel_error=float(rel.max()) if rel.size else 0.0,
        error_ratio=error_ratio,
        mismatches=int((ratio > 1.0).sum()),
        worst=worst,
        problem=problem,
    )


# ---------------------------------------------------------------------------------------------
# Diagnostics: each hint names the convention whose mistake produces the observed error pattern.


def pair(
    a: Mapping[str, Array], a_allowed: Mapping[str, Array], b: Mapping[str, Array],
    b_allowed: Mapping[str, Array],
) -> tuple[float, float] | None:
    """(max |a - b|, max |a - b| / (a's bound + b's bound)) over the outputs both have, shapes equal.

    Each result within its own bound of the oracle gives a ratio <= 1. None when the outputs do not
    pair (other names or shapes, or an item stopped before its bounds: a wrong dtype): that is the
    item's own failure.
    """
    if set(a) != set(b) or not set(a) <= set(a_allowed) & set(b_allowed) or any(
            not a[n].shape == b[n].shape == a_allowed[n].shape == b_allowed[n].shape for n in a):
        return None
    diff_max, ratio_max = 0.0, 0.0
    for n in a:
        x, y = a[n].astype(np.float64), b[n].astype(np.float64)
        bound = a_allowed[n] + b_allowed[n]
        if np.isfinite(x).all() and np.isfinite(y).all():
            diff = np.abs(x - y)
            with np.errstate(divide="ignore"):
                ratio = np.divide(diff, bound, out=np.zeros(diff.shape), where=diff != 0)
        else:
            # The same inf (a float16 overflow in both) or NaN in both places agrees: no difference.
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = np.where(same, 0.0, np.abs(x - y))
                ratio = np.where(diff == 0, 0.0, diff / bound)
            ratio = np.nan_to_num(ratio, nan=np.inf)
        diff_max = max(diff_max, float(np.max(diff, initial=0.0)))
        ratio_max = max(ratio_max, float(ratio.max(initial=0.0)))
    return diff_max, ratio_max


def pair_record(
    case: str, variant: str, params: dict[str, Any], dtype: str, device: str, seed: int,
    frameworks: list[str], paired: tuple[float, float],
) -> dict[str, Any]:
    """One row of the pairwise table: two results for the same inputs, compared with each other."""
    return {
        "case": case, "variant": variant, "params": params, "dtype": dtype, "device": device,
        "seed": seed, "frameworks": sorted(frameworks), "max_abs_diff": paired[0],
        "max_error_ratio": paired[1],
    }


def _shape_hints(got: tuple[int, ...], want: tuple[int, ...]) -> list[str]:
    if len(got) != len(want):
        return ["rank differs: a reshape or a missing squeeze/expand"]
    if sorted(got) == sorted(want):
        return ["same sizes in another order: layout (channels_first vs channels_last) or axis order"]
    off = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    return [f"size differs on axis {off}: padding amount, stride or dilation"]


def _close(a: Array, b: Array) -> bool:
    """Agreement well inside what separates a right result from a wrong one (a loose, relative test)."""
    if a.shape != b.shape or a.size == 0:
        return False
    scale = float(np.linalg.norm(b)) or 1.0
    return float(np.linalg.norm(a - b)) <= 1e-2 * scale


def _spatial(ndim: int, layout: str) -> list[int]:
    return list(range(2, ndim)) if layout == "channels_first" else list(range(1, ndim - 1))


def _shifted(a: Array, b: Array, axis: int, by: int) -> tuple[Array, Array]:
    """Overlap of a and b with b moved `by` positions along `axis`."""
    n = a.shape[axis]
    sa = [slice(None)] * a.ndim
    sb = [slice(None)] * a.ndim
    sa[axis] = slice(by, n) if by > 0 else slice(0, n + by)
    sb[axis] = slice(0, n - by) if by > 0 else slice(-by, n)
    return a[tuple(sa)], b[tuple(sb)]


def _kernel_axes(w: Array, layout: str) -> tuple[list[int], tuple[int, int]]:
    """Spatial axes and the (out, in) pair of a conv weight in the given layout."""
    if layout == "channels_first":
        return list(range(2, w.ndim)), (0, 1)
    return list(range(0, w.ndim - 2)), (w.ndim - 1, w.ndim - 2)


def diagnose(
    actual: Array,
    expected: Array,
    bad: Array,
    *,
    layout: str,
    inputs: Mapping[str, Array] | None = None,
    recompute: Recompute | None = None,
    magnitude: Array | None = None,
    terms: Array | None = None,
    dtype: str = "float32",
    padded: bool | None = None,
) -> list[str]:
    """Hints for a failing same-shape result; `bad` marks the elements beyond the allowed error.
    `padded` is False for an item whose params say it has no padding: no padding hint then."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    hints: list[str] = []
    spatial = _spatial(a.ndim, layout) if a.ndim >= 3 else []

    # Error only near the borders: the interior agrees, so the padding amount or split is off.
    if spatial and bad.any() and padded is not False:
        interior = np.ones_like(bad)
        for ax in spatial:
            n = a.shape[ax]
            if n > 4:
                edge = np.zeros(n, dtype=bool)
                edge[:2] = edge[-2:] = True
                shape = [1] * a.ndim
                shape[ax] = n
                interior &= ~edge.reshape(shape)
            else:
                interior &= False
        if interior.any() and not (bad & interior).any():
            hints.append("error only on the borders: padding (amount, or how it splits before/after)")

    # The output shifted by one position along an axis: the odd SAME pixel is on the wrong side.
    for ax in spatial:
        for by in (1, -1):
            x, y = _shifted(a, e, ax, by)
            if x.size and _close(x, y):
                side = "end" if by > 0 else "start"
                hints.append(
                    f"equals the oracle shifted by one along axis {ax}: the odd SAME padding pixel "
                    f"belongs at the {'start' if side == 'end' else 'end'} (SAME puts it at the end, "
                    "SAME_LOWER at the start)"
                )

    # Two axes swapped: layout or axis order (H and W, or channels moved by a reshape).
    for i in range(a.ndim):
        for j in range(i + 1, a.ndim):
            if a.shape[i] == a.shape[j] and a.shape[i] > 1 and _close(np.swapaxes(a, i, j), e):
                hints.append(f"equals the oracle with axes {i} and {j} swapped: layout or axis order")

    if inputs is not None and recompute is not None:
        hints += _recompute_hints(a, e, inputs, recompute, layout)

    # TF32 rounds each float32 input to 10 mantissa bits: K products each off by ~2**-11 relative,
    # random in sign, sum to ~2**-11 * M / sqrt(K) (M = sum|x||w|), i.e. ~2**13 x u*M/sqrt(K) at
    # u = 2**-24, everywhere. (The first-order level, not the rigorous bound's u*K*M.)
    if magnitude is not None and terms is not None and bad.mean() > 0.5:
        k = np.maximum(np.asarray(terms, dtype=np.float64), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 2.0**-24 * magnitude / np.sqrt(k)
            level = np.abs(a - e) / scale
        level = level[np.isfinite(level) & (scale > 0)]
        if level.size and 2.0**10 <= float(np.median(level)) <= 2.0**16:
            hints.append(
                f"error spread everywhere at ~2**{math.log2(float(np.median(level))):.1f} x "
                "u*sum|x||w|/sqrt(K): float32 computed with TF32 (10-bit mantissa); pin TF32 off "
                "or run with --equiv-precision tf32"
            )
    if magnitude is not None and terms is not None and dtype in tolerance.HALF_ACCUMULATION_LEVEL:
        hints += _half_accumulation_hint(a, e, bad, magnitude, terms, dtype)
    return hints


def _half_accumulation_hint(
    a: Array, e: Array, bad: Array, magnitude: Array, terms: Array, dtype: str
) -> list[str]:
    """A half-precision result beyond float32 accumulation but within half accumulation's own bound.

    Summing in the half dtype (or rounding partial sums to it) errs by up to gamma_K(u_half)*M: about
    K times the one rounding a float32 accumulator leaves. Errors past the derived bound yet inside
    that level, at many elements, are what such a kernel produces.
    """
    level = tolerance.half_accumulation_level(dtype, e, magnitude, terms)
    with np.errstate(invalid="ignore"):
        within = np.abs(a - e) <= level
    if not bad.any() or not bool(within[bad].all()):
        return []
    return [
        f"errors within {dtype} accumulation's gamma_K(u_{dtype})*sum|x||w| but beyond float32 "
        f"accumulation plus one rounding: this kernel does not accumulate in float32 (it sums in "
        f"{dtype} or rounds partial sums to it)"
    ]


def _recompute_hints(
    a: Array, e: Array, inputs: Mapping[str, Array], recompute: Recompute, layout: str
) -> list[str]:
    hints: list[str] = []

    def explains(alt: Array, inside: tuple[slice, ...] = ()) -> bool:
        # Close to the changed oracle, and much closer than to the oracle itself: in half precision a
        # change that hardly moves the result (a small bias, a gradient it does not enter) is no answer.
        got, want, other = a[inside], alt[inside], e[inside]
        if not _close(got, want):
            return False
        return float(np.linalg.norm(got - want)) <= 0.25 * float(np.linalg.norm(got - other))

    def matches(**changes: Array) -> bool:
        try:
            alt = recompute(changes)
        except Exception:  # the oracle rejects the changed inputs: this explanation does not apply
            return False
        return alt is not None and np.shape(alt) == a.shape and explains(np.asarray(alt, dtype=np.float64))

    w = inputs.get("w")
    if w is not None and w.ndim >= 3:
        axes, (o, i) = _kernel_axes(w, layout)
        if matches(w=np.flip(w, axis=tuple(axes))):
            hints.append(
                "equals the oracle with the kernel flipped: convolution versus cross-correlation "
                "(every framework computes cross-correlation)"
            )
        if w.shape[o] == w.shape[i] and matches(w=np.swapaxes(w, o, i)):
            hints.append(
                "equals the oracle with the weights' in/out channel axes swapped: weight permutation"
            )
    b = inputs.get("b")
    if b is not None and matches(b=np.zeros_like(b)):
        hints.append("equals the oracle without the bias: the bias was dropped")
    def matches_inside(ax: int, **changes: Array) -> bool:
        # A shifted input loses one pixel at an end: compare away from both ends of that axis.
        try:
            alt = recompute(changes)
        except Exception:
            return False
        if alt is None or np.shape(alt) != a.shape or ax >= a.ndim or a.shape[ax] < 3:
            return False
        inside = tuple(slice(1, -1) if i == ax else slice(None) for i in range(a.ndim))
        return explains(np.asarray(alt, dtype=np.float64), inside)

    x = inputs.get("x")
    if x is not None and x.ndim >= 3:
        for ax in _spatial(x.ndim, layout):
            for by in (1, -1):
                if (
                    matches_inside(ax, x=np.roll(x, by, axis=ax))
                    or matches_inside(ax, x=_zero_shift(x, ax, by))
                ):
                    hints.append(
                        f"equals the oracle on the input moved by {by} along axis {ax}: padding "
                        "split on the wrong side (e.g. symmetric k//2 where SAME is asymmetric)"
                    )
    return hints


def _zero_shift(x: Array, axis: int, by: int) -> Array:
    out = np.zeros_like(x)
    src, dst = _shifted(x, out, axis, -by)
    dst[...] = src
    return out
