"""Error models: NumPy emulations of kernels that do not accumulate in float32.

A known defect of the accumulation kind (`model = "..."` in cases/known_defects.toml) states what
the defective kernel computes. Each order below is one way of summing in a half dtype, measured to
reproduce a real kernel bit for bit (the entries that name it say which, and on which claims). An
entry swaps the oracle's sum at one site (`equiv.oracle.SITES`) for its order and recomputes the
case's own oracle; a result shows the defect when each output that failed its bound, and that the
model changes, lies within the same derived bound of that recomputed answer.

Every addition of a model is computed in float32 and rounded to the half dtype, as the kernels do
(a product of two half values is exact in float32).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt

from equiv import oracle

Array = npt.NDArray[np.float64]

_STORAGE: dict[str, Any] = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}


def rounded(a: npt.ArrayLike, dtype: str) -> Array:
    """a rounded to `dtype` (round to nearest even), back in float64."""
    return np.asarray(a, dtype=np.float64).astype(_STORAGE[dtype]).astype(np.float64)


def add(acc: Array, terms: Array, dtype: str) -> Array:
    """One addition as a half-precision kernel does it: in float32, the sum rounded to `dtype`."""
    return rounded(rounded(acc + terms, "float32"), dtype)


def _fold(terms: Array, axes: tuple[int, ...], step: Callable[[Array, Array], Array]) -> Array:
    """acc = step(acc, term) over the terms along `axes`, row-major, from zeros."""
    moved = np.moveaxis(terms, axes, tuple(range(len(axes))))
    flat = moved.reshape(-1, *moved.shape[len(axes):])
    acc = np.zeros(flat.shape[1:])
    for term in flat:
        acc = step(acc, term)
    return acc


def sequential(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """Sum over `axes` one term at a time (row-major over them), each partial sum rounded to `dtype`."""
    return _fold(terms, axes, lambda acc, term: add(acc, term, dtype))


def float32_sums(terms: Array, axes: tuple[int, ...]) -> Array:
    """Sum over `axes` in float32, one term at a time."""
    return _fold(terms, axes, lambda acc, term: rounded(acc + term, "float32"))


def _outer(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The outer axes once the innermost of `axes` is summed away."""
    return tuple(a if a < axes[-1] else a - 1 for a in axes[:-1])


def col2im(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """The innermost axis summed in float32 and rounded once to `dtype` (an im2col GEMM), then the
    outer axes (a scatter's taps) added one at a time in `dtype`."""
    inner = rounded(float32_sums(terms, axes[-1:]), dtype)
    return sequential(inner, _outer(axes), dtype)


def sequential_inner_first(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """As `sequential`, the innermost summed axis walked as the outermost loop: a conv's channels
    one tap at a time (HWIO patches), a 2-D window column by column."""
    return sequential(terms, axes[::-1], dtype)


def col2im_taps_reversed(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """As `col2im`, the taps added last one first (ATen's channels_last slow conv backward)."""
    return col2im(np.flip(terms, axis=axes[:-1]), axes, dtype)


def per_outer(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """Sum the innermost of `axes` in float32; add those sums over the outer axes in `dtype`.

    ATen's slow conv backward: one float32 GEMM per batch sample, each added to the weight
    gradient stored in the half dtype."""
    return sequential(float32_sums(terms, axes[-1:]), _outer(axes), dtype)


def per_sample(terms: Array, axes: tuple[int, ...], dtype: str) -> Array:
    """The outermost of `axes` (the batch) last: every other axis summed in float32 and rounded once to
    `dtype`, then those per-sample sums added one at a time in `dtype`. ATen's dilated conv backward
    (slow_conv_dilated) for the bias gradient; in 1-D it is `col2im`."""
    inner = rounded(float32_sums(terms, axes[1:]), dtype)
    return sequential(inner, (axes[0] - sum(a < axes[0] for a in axes[1:]),), dtype)


@dataclass(frozen=True)
class Model:
    """One site's sum in one order, for one half dtype: what `oracle.emulating` takes."""

    site: str
    order: str
    dtype: str

    def sum(self, terms: Array, axes: tuple[int, ...]) -> Array:
        return ORDERS[self.order](terms, axes, self.dtype)


# The orders a known-defect entry may name. The axes a site sums, outermost first: conv
# (C/groups, taps); conv_weight_grad (batch, positions); conv_input_grad and conv_transpose (taps,
# channels contracted); every other site's in row-major order.
ORDERS: dict[str, Callable[[Array, tuple[int, ...], str], Array]] = {
    f.__name__: f for f in (sequential, sequential_inner_first, col2im, col2im_taps_reversed, per_outer,
                            per_sample)
}


@contextmanager
def emulating(model: Model) -> Any:
    """Within the block, the oracle's sum at `model.site` is the model's."""
    token = oracle.emulating(model)
    try:
        yield
    finally:
        oracle.restore(token)
