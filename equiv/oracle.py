"""Pure-NumPy float64 reference ("oracle") for convolution and pooling.

Every other result in the suite is compared against this module, so it is
written to be read against the definitions below, in the spirit of JAX's
``lax_reference.py``: NumPy only (no torch, tensorflow, jax or scipy), one
function per operation, everything computed in float64.  Inputs of any float
dtype are accepted and converted with ``np.asarray(x, dtype=np.float64)``.

Conventions
-----------
Layouts (the output uses the same layout as the input):

* ``layout="channels_first"`` (PyTorch, ONNX): x is ``(N, C, *spatial)``;
  conv weights are ``(O, C/groups, *kernel)``; transposed-conv weights are
  ``(C_in, C_out/groups, *kernel)``.
* ``layout="channels_last"`` (TensorFlow, Keras): x is ``(N, *spatial, C)``;
  conv weights are ``(*kernel, C/groups, O)``; transposed-conv weights are
  ``(*kernel, C_out/groups, C_in)``.

1-, 2- and 3-D spatial inputs are supported (spatial dims = ``x.ndim - 2``).

Convolution is cross-correlation (no kernel flip), as in every DL framework::

    y[n, o, i] = b[o] + sum_{c in group(o), j} xpad[n, c, i*s + j*d] * w[o, c', j]

Output channel ``o`` belongs to group ``o // (O/groups)`` and reads input
channels ``[g*C/groups, (g+1)*C/groups)``.

Padding (per spatial axis, ``k`` kernel/window size, ``s`` stride,
``d`` dilation, ``L`` input length):

* ``"valid"``: no padding.
* ``"same"`` (TensorFlow, JAX, ONNX SAME_UPPER):
  ``total = max((ceil(L/s) - 1)*s + (k - 1)*d + 1 - L, 0)``,
  ``before = total // 2``, ``after = total - before`` (odd pixel at the END).
* ``"same_lower"`` (ONNX SAME_LOWER): the odd pixel at the START.
* ``"causal"`` (1-D only): ``(k - 1)*d`` before, 0 after.
* ``"full"``: ``(k - 1)*d`` on both sides.
* an int ``p``: ``p`` on both sides of every spatial axis.
* a sequence with one entry per spatial axis, each a ``(before, after)``
  pair (or a single int meaning the same amount on both sides).

Strings are accepted in lowercase only.  ``conv_transpose`` reads an int or
pairs as the amount cropped from each end of its full output (PyTorch/ONNX).

Pools work per channel; ``stride=None`` means stride = window.  Padded cells
never win a max (they are -inf) and count in a mean's divisor only with
``count_include_pad``.  ``ceil_mode`` follows PyTorch: the output length uses
ceil instead of floor, but a last window starting inside the right padding is
dropped; taps past the padded extent are ignored.  ``divisor`` (PyTorch's
``divisor_override``) replaces a mean's divisor for every window.  Adaptive
pools (PyTorch's ``AdaptiveAvgPool``/``AdaptiveMaxPool``) take an output size n
per axis; output i of an axis of length L pools the cells
``[floor(i*L/n), ceil((i+1)*L/n))``: windows of two sizes that overlap where n
does not divide L.

Pad modes (``pad``), for padded cell i of an axis of length L (i < 0 before
the input, i >= L after it), each under its framework names:

* ``"constant"`` (``"zeros"``; torch ``padding_mode="zeros"``, ``tf.pad``
  CONSTANT, NumPy/JAX ``"constant"``): 0.
* ``"reflect"`` (torch, ``tf.pad`` REFLECT, NumPy/JAX): ``x[-i]`` / ``x[2(L-1) - i]``,
  the edge not repeated (``3 2 | 1 2 3 | 2 1``); at most L - 1 cells a side.
* ``"symmetric"`` (``tf.pad`` SYMMETRIC, NumPy/JAX; torch has none):
  ``x[-1 - i]`` / ``x[2L - 1 - i]``, the edge repeated (``2 1 | 1 2 3 | 3 2``);
  at most L cells a side.
* ``"replicate"`` (``"edge"``; torch ``"replicate"``, NumPy/JAX ``"edge"``;
  ``tf.pad`` has none): ``x[clip(i, 0, L - 1)]``, any amount.
* ``"circular"`` (``"wrap"``; torch ``"circular"``, NumPy/JAX ``"wrap"``;
  ``tf.pad`` has none): ``x[i mod L]``; at most L cells a side (torch refuses
  to wrap more than once).

Mode names are lowercase, as every string here (``tf.pad`` takes any case).

Bad arguments raise ``ValueError`` with a message that starts with the function
name and names the argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from itertools import product
from typing import NamedTuple, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "PAD_MODES",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "adaptive_windows",
    "avg_pool",
    "conv",
    "conv_output_shape",
    "conv_params",
    "conv_transpose",
    "conv_transpose_params",
    "conv_vjp",
    "dense",
    "dense_params",
    "flatten",
    "global_avg_pool",
    "global_max_pool",
    "max_pool",
    "pad",
    "padding_pairs",
    "pool_output_shape",
    "relu",
    "same_padding",
    "separable_params",
]

Array = npt.NDArray[np.float64]
IntOrTuple = int | Sequence[int]
PaddingSpec = str | int | Sequence[int | Sequence[int]]

PADDING_STRINGS = ("valid", "same", "same_lower", "causal", "full")
TRANSPOSE_PADDING_STRINGS = ("valid", "same", "same_lower")
LAYOUTS = ("channels_first", "channels_last")
# pad's modes: every framework's name for each (see the module docstring) -> the oracle's own.
PAD_MODES = {
    "constant": "constant", "zeros": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "replicate", "edge": "replicate",
    "circular": "circular", "wrap": "circular",
}


# --------------------------------------------------------------------------
# Argument checking and layout helpers
# --------------------------------------------------------------------------


def _is_int(v: object) -> TypeGuard[int | np.integer]:
    # bool is an int subclass, but padding=True is certainly a mistake.
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _per_axis(fn: str, name: str, value: object, nd: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or one int per spatial axis -> a tuple of ``nd`` ints >= minimum."""
    if _is_int(value):
        vals: tuple[int, ...] = (int(value),) * nd
    else:
        items = list(value) if isinstance(value, Iterable) else []
        if len(items) != nd or not all(_is_int(v) for v in items):
            raise ValueError(
                f"{fn}: {name} must be an int or {nd} ints (one per spatial axis), got {name}={value!r}"
            )
        vals = tuple(int(v) for v in items)
    if any(v < minimum for v in vals):
        raise ValueError(f"{fn}: {name} must be >= {minimum} on every axis, got {name}={value!r}")
    return vals


def _check_layout(fn: str, layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(
            f"{fn}: layout must be one of {', '.join(map(repr, LAYOUTS))}, got layout={layout!r}"
        )


def _check_groups(fn: str, groups: object) -> int:
    if not _is_int(groups) or int(groups) < 1:
        raise ValueError(f"{fn}: groups must be an int >= 1, got groups={groups!r}")
    return int(groups)


def _input_cf(fn: str, x: npt.ArrayLike, layout: str) -> Array:
    """x as float64 in channels_first order (a view when possible)."""
    _check_layout(fn, layout)
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim < 3:
        raise ValueError(
            f"{fn}: x must have at least 3 dims (batch, channels and 1-3 spatial "
            f"dims), got x.shape={xa.shape}"
        )
    if xa.ndim > 5:
        raise ValueError(f"{fn}: x must have at most 3 spatial dims, got x.shape={xa.shape}")
    return xa if layout == "channels_first" else np.moveaxis(xa, -1, 1)


def _output_layout(y: Array, layout: str) -> Array:
    # Contiguous, so callers never meet the strides of the internal layout.
    return np.ascontiguousarray(y if layout == "channels_first" else np.moveaxis(y, 1, -1))


def _weight_cf(fn: str, w: npt.ArrayLike, nd: int, layout: str) -> Array:
    """Weights as (A, B, *kernel): channels_last (*kernel, B, A) is transposed."""
    wa = np.asarray(w, dtype=np.float64)
    if wa.ndim != nd + 2:
        raise ValueError(f"{fn}: w must have {nd + 2} dims for {nd}-D input, got w.shape={wa.shape}")
    if layout == "channels_first":
        return wa
    return wa.transpose((nd + 1, nd, *range(nd)))


def _weight_layout(wc: Array, layout: str) -> Array:
    """Inverse of _weight_cf."""
    if layout == "channels_first":
        return wc
    nd = wc.ndim - 2
    return wc.transpose((*range(2, nd + 2), 1, 0))


def _bias(fn: str, b: npt.ArrayLike | None, channels: int) -> Array | None:
    if b is None:
        return None
    ba = np.asarray(b, dtype=np.float64)
    if ba.shape != (channels,):
        raise ValueError(
            f"{fn}: b must have shape ({channels},) (one per output channel), got b.shape={ba.shape}"
        )
    return ba


# --------------------------------------------------------------------------
# Padding rules
# --------------------------------------------------------------------------


def same_padding(
    length: int, kernel: int, stride: int = 1, dilation: int = 1, *, lower: bool = False
) -> tuple[int, int]:
    """(before, after) SAME padding of one axis.

    The output has ceil(length/stride) positions; the odd pixel goes at the end
    (TensorFlow, JAX, ONNX SAME_UPPER) unless ``lower`` (ONNX SAME_LOWER).
    """
    for name, value, minimum in (
        ("length", length, 0),
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        if not _is_int(value) or value < minimum:
            raise ValueError(f"same_padding: {name} must be an int >= {minimum}, got {name}={value!r}")
    out = -(-length // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - length, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def _explicit_pairs(fn: str, padding: object, nd: int) -> list[tuple[int, int]]:
    """An int or per-axis ints/(before, after) pairs -> nd pairs of ints >= 0."""
    if _is_int(padding):
        pairs = [(int(padding), int(padding))] * nd
    else:
        if not isinstance(padding, Iterable):
            raise ValueError(
                f"{fn}: padding must be a string, an int or (before, after) pairs, got padding={padding!r}"
            )
        items = list(padding)
        if len(items) != nd:
            raise ValueError(
                f"{fn}: padding has {len(items)} entries but x has {nd} spatial "
                f"dims (need one (before, after) pair per spatial axis), "
                f"got padding={padding!r}"
            )
        pairs = []
        for item in items:
            if _is_int(item):
                pairs.append((int(item), int(item)))
                continue
            pair = list(item) if isinstance(item, Iterable) else []
            if len(pair) != 2 or not all(_is_int(v) for v in pair):
                raise ValueError(
                    f"{fn}: each padding entry must be an int or a (before, after) "
                    f"pair of ints, got padding={padding!r}"
                )
            pairs.append((int(pair[0]), int(pair[1])))
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"{fn}: padding must be >= 0, got padding={padding!r}")
    return pairs


def _resolve_padding(
    fn: str,
    padding: object,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    nd = len(spatial)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding in ("same", "same_lower"):
            lower = padding == "same_lower"
            return [
                same_padding(L, k, s, d, lower=lower)
                for L, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)
            ]
        if padding == "causal":
            if nd != 1:
                raise ValueError(f"{fn}: padding='causal' is only defined for 1-D input, got {nd}-D input")
            return [((kernel[0] - 1) * dilation[0], 0)]
        if padding == "full":
            return [((k - 1) * d, (k - 1) * d) for k, d in zip(kernel, dilation, strict=True)]
        raise ValueError(
            f"{fn}: unknown padding {padding!r}; accepted strings are "
            f"{', '.join(map(repr, PADDING_STRINGS))} (lowercase), or an int, or "
            f"(before, after) pairs"
        )
    return _explicit_pairs(fn, padding, nd)


def padding_pairs(
    padding: PaddingSpec,
    spatial_shape: Sequence[int],
    kernel_shape: Sequence[int],
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
) -> list[tuple[int, int]]:
    """Resolve any padding argument to one (before, after) pair per spatial axis."""
    nd = len(spatial_shape)
    kernel = _per_axis("padding_pairs", "kernel_shape", tuple(kernel_shape), nd)
    s = _per_axis("padding_pairs", "stride", stride, nd)
    d = _per_axis("padding_pairs", "dilation", dilation, nd)
    spatial = _per_axis("padding_pairs", "spatial_shape", tuple(spatial_shape), nd, 0)
    return _resolve_padding("padding_pairs", padding, spatial, kernel, s, d)


def conv_output_shape(
    spatial_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    stride: IntOrTuple = 1,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
) -> tuple[int, ...]:
    """Spatial output shape of conv: floor((L + before + after - (k-1)*d - 1)/s) + 1."""
    nd = len(spatial_shape)
    kernel = _per_axis("conv_output_shape", "kernel_shape", tuple(kernel_shape), nd)
    s = _per_axis("conv_output_shape", "stride", stride, nd)
    d = _per_axis("conv_output_shape", "dilation", dilation, nd)
    spatial = tuple(int(v) for v in spatial_shape)
    pads = _resolve_padding("conv_output_shape", padding, spatial, kernel, s, d)
    return _valid_out_shape("conv_output_shape", "kernel", spatial, kernel, s, d, pads)


def _valid_out_shape(
    fn: str,
    what: str,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pads: Sequence[tuple[int, int]],
) -> tuple[int, ...]:
    out = []
    for axis, (L, k, s, d, (pb, pa)) in enumerate(zip(spatial, kernel, stride, dilation, pads, strict=True)):
        eff, padded = (k - 1) * d + 1, L + pb + pa
        if eff > padded:
            raise ValueError(
                f"{fn}: the dilated {what} ({eff}) is larger than the padded input "
                f"({padded}) on spatial axis {axis}"
            )
        out.append((padded - eff) // s + 1)
    return tuple(out)


def _pool_out_len(length: int, pads: tuple[int, int], k: int, s: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's rule: a last window must start inside the input or left padding."""
    pb, pa = pads
    span = length + pb + pa - (k - 1) * d - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= length + pb:
        out -= 1
    return out


def pool_output_shape(
    spatial_shape: Sequence[int],
    window: IntOrTuple,
    *,
    stride: IntOrTuple | None = None,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Spatial output shape of max_pool/avg_pool with the same arguments."""
    geom = _pool_geometry(
        "pool_output_shape",
        tuple(spatial_shape),
        window,
        stride,
        padding,
        dilation,
        ceil_mode,
    )
    return geom.out


# --------------------------------------------------------------------------
# Accumulation sites: every sum the oracle computes, named for the kernel that
# computes it in a framework.  Outside an error model each is the plain
# float64 sum below.  A known-defect entry (cases/known_defects.toml) may swap
# one site's sum for an emulation of a defective kernel (equiv.emulation),
# and the case's oracle is then recomputed: that is how a defect's symptom is
# stated as a wrong answer the framework must reproduce, not as a label.
# --------------------------------------------------------------------------

SITES = (
    "conv",  # forward conv: sum over (C/groups, *kernel) per output
    "depthwise_conv",  # a conv with one input channel per group: sum over the kernel taps
    "conv_input_grad",  # dx: over output channels and the taps' scatter; a model sees (taps, channels)
    "conv_weight_grad",  # dw: the sum over batch (outer) and positions (inner)
    "conv_bias_grad",  # db: the sum over batch and positions
    "conv_transpose",  # over input channels and the taps' scatter; a model sees (taps, channels)
    "dense",  # the sum over input features
    "avg_pool",  # the window's sum, before the division
    "global_avg_pool",  # the sum over every spatial position, before the division
)


class Accumulation(Protocol):
    """How one site sums while an error model replaces it (see equiv.emulation)."""

    @property
    def site(self) -> str: ...

    def sum(self, terms: Array, axes: tuple[int, ...]) -> Array:
        """Sum `terms` over `axes`, outermost first, in the order the emulated kernel does."""
        ...


_EMULATED: ContextVar[Accumulation | None] = ContextVar("equiv_oracle_emulated", default=None)


def emulating(model: Accumulation) -> object:
    """Set `model` as the sum of its site until the returned token is passed to `restore`."""
    if model.site not in SITES:
        raise ValueError(f"emulating: unknown site {model.site!r}; sites are {', '.join(SITES)}")
    return _EMULATED.set(model)


def restore(token: object) -> None:
    _EMULATED.reset(token)  # type: ignore[arg-type]


def _model(site: str) -> Accumulation | None:
    model = _EMULATED.get()
    return model if model is not None and model.site == site else None


def _sum(site: str, terms: Array, axes: tuple[int, ...]) -> Array:
    model = _model(site)
    if model is None:
        out: Array = terms.sum(axis=axes)
        return out
    return model.sum(terms, tuple(a % terms.ndim for a in axes))


def _contract(site: str, a: Array, b: Array, split: tuple[int, int] | None = None) -> Array:
    """a (..., M, K) @ b (..., K, N).  Under an error model the K products are summed by it;
    `split` = (outer, inner) names K's structure (batch, positions) for models that need it."""
    model = _model(site)
    if model is None:
        out: Array = np.matmul(a, b)
        return out
    terms = a[..., :, :, None] * b[..., None, :, :]  # (..., M, K, N)
    if split is None:
        return model.sum(terms, (terms.ndim - 2,))
    terms = terms.reshape(*terms.shape[:-2], *split, terms.shape[-1])
    return model.sum(terms, (terms.ndim - 3, terms.ndim - 2))


# --------------------------------------------------------------------------
# Windowing: sliding windows (im2col) and their adjoint (tap scatter)
# --------------------------------------------------------------------------


def _windows(
    xp: Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
) -> Array:
    """View (N, C, *out, *kernel) with v[n, c, i, j] = xp[n, c, i*s + j*d].

    A window of the dilated size (k-1)*d+1 is taken at every position, then the
    window axes are sliced with step d (dilation) and the positions with step
    s (stride); nothing is copied.
    """
    nd = len(kernel)
    eff = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    view = sliding_window_view(xp, eff, axis=tuple(range(2, 2 + nd)))
    index = (
        (slice(None), slice(None))
        + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, stride, strict=True))
        + tuple(slice(None, None, d) for d in dilation)
    )
    windows: Array = view[index]
    return windows


def _im2col(
    xp: Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
    groups: int,
) -> Array:
    """Patches as (groups, N*prod(out), C/groups*prod(kernel)), one copy."""
    n, c = xp.shape[:2]
    nd = len(kernel)
    win = _windows(xp, kernel, stride, dilation, out)
    win = win.reshape(n, groups, c // groups, *out, *kernel)
    # (N, G, Cg, *out, *k) -> (G, N, *out, Cg, *k) so each group is one matrix.
    order = (1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
    return win.transpose(order).reshape(groups, n * math.prod(out), (c // groups) * math.prod(kernel))


def _scatter_taps(
    contrib: Array, full: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    keep_taps: bool = False,
) -> Array:
    """Adjoint of _windows: y[n, c, i*s + j*d] += contrib[n, c, i, j].

    contrib is (N, C, *positions, *kernel, *rest); y is zeros of shape (N, C, *full, *rest), or with
    keep_taps (N, C, *full, taps, *rest), each tap in its own slot (row-major) instead of added.
    One strided slice-add per kernel tap (at most 27 for a 3x3x3 kernel).
    """
    nd = len(full)
    positions = contrib.shape[2 : 2 + nd]
    kernel = contrib.shape[2 + nd : 2 + 2 * nd]
    rest = contrib.shape[2 + 2 * nd :]
    taps = (math.prod(kernel),) if keep_taps else ()
    y = np.zeros(contrib.shape[:2] + tuple(full) + taps + rest, dtype=np.float64)
    for t, tap in enumerate(product(*(range(k) for k in kernel))):
        index = (slice(None), slice(None)) + tuple(
            slice(j * d, j * d + (p - 1) * s + 1, s)
            for j, d, p, s in zip(tap, dilation, positions, stride, strict=True)
        ) + ((t,) if keep_taps else ())
        tap_index = (slice(None),) * (2 + nd) + tap
        y[index] += contrib[tap_index]
    return y


def _arrange(m: Array, groups: int, n: int, positions: Sequence[int], kernel: Sequence[int]) -> Array:
    """(G, N*prod(positions), per_group*prod(kernel), *rest) ->
    (N, G*per_group, *positions, *kernel, *rest)."""
    nd = len(kernel)
    rest = m.shape[3:]
    per_group = m.shape[2] // math.prod(kernel)
    m = m.reshape(groups, n, *positions, per_group, *kernel, *rest)
    order = (1, 0, nd + 2, *range(2, nd + 2), *range(nd + 3, 2 * nd + 3 + len(rest)))
    return m.transpose(order).reshape(n, groups * per_group, *positions, *kernel, *rest)


def _contract_scatter(
    site: str, a: Array, b: Array, n: int, positions: Sequence[int], kernel: Sequence[int],
    full: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
) -> Array:
    """The transposed conv's shape of sum: a (G, N*P, R) @ b (G, R, Q*taps) per position, each
    tap's result scattered to its cell of `full` and added there.  Under an error model the terms
    are kept apart along (taps, R) and the model sums them."""
    model = _model(site)
    if model is None:
        summed = _arrange(np.matmul(a, b), a.shape[0], n, positions, kernel)
        return _scatter_taps(summed, full, stride, dilation)
    terms = np.swapaxes(a[..., :, :, None] * b[..., None, :, :], -1, -2)  # (G, N*P, Q*taps, R)
    kept = _scatter_taps(_arrange(terms, a.shape[0], n, positions, kernel), full, stride, dilation, True)
    return model.sum(kept, (kept.ndim - 2, kept.ndim - 1))


def _crop(y: Array, pads: Sequence[tuple[int, int]]) -> Array:
    index = (slice(None), slice(None)) + tuple(
        slice(pb, y.shape[2 + i] - pa) for i, (pb, pa) in enumerate(pads)
    )
    cropped: Array = y[index]
    return cropped


# --------------------------------------------------------------------------
# Padding with a mode
# --------------------------------------------------------------------------

# The most cells a mode may add on one side of an axis of length L (None: any number).
_PAD_LIMITS = {"reflect": (-1, "L - 1"), "symmetric": (0, "L"), "circular": (0, "L")}


def _pad_index(mode: str, length: int, before: int, after: int) -> npt.NDArray[np.intp]:
    """For padded cells i = -before .. length + after - 1, the cell of x each one copies."""
    i = np.arange(-before, length + after)
    if mode == "reflect":
        return np.where(i < 0, -i, np.where(i >= length, 2 * (length - 1) - i, i))
    if mode == "symmetric":
        return np.where(i < 0, -1 - i, np.where(i >= length, 2 * length - 1 - i, i))
    if mode == "replicate":
        return np.clip(i, 0, length - 1)
    return i % length  # circular


def pad(x: npt.ArrayLike, pairs: Sequence[Sequence[int]], mode: str = "constant") -> Array:
    """x padded by one (before, after) pair per axis of x (every axis, as ``numpy.pad``), in `mode`.

    `mode` is one of PAD_MODES: a padded cell copies the cell of x the module docstring names, or
    is 0 ("constant"). Axes are independent: y[i0, i1, ...] = x[m0(i0), m1(i1), ...] with each
    axis' own map, so a corner copies x's corner (reflect, replicate, circular alike).
    """
    fn = "pad"
    xa = np.asarray(x, dtype=np.float64)
    if not isinstance(mode, str) or mode not in PAD_MODES:
        raise ValueError(f"{fn}: unknown mode {mode!r}; accepted (lowercase): "
                         f"{', '.join(map(repr, PAD_MODES))}")
    canonical = PAD_MODES[mode]
    items = list(pairs) if isinstance(pairs, Iterable) and not isinstance(pairs, str) else None
    if items is None or len(items) != xa.ndim:
        raise ValueError(f"{fn}: pairs must hold one (before, after) pair per axis of x ({xa.ndim}), "
                         f"got pairs={pairs!r}")
    checked: list[tuple[int, int]] = []
    for item in items:
        pair = list(item) if isinstance(item, Iterable) else []
        if len(pair) != 2 or not all(_is_int(v) and int(v) >= 0 for v in pair):
            raise ValueError(f"{fn}: each entry of pairs must be a (before, after) pair of ints >= 0, "
                             f"got pairs={pairs!r}")
        checked.append((int(pair[0]), int(pair[1])))
    if canonical == "constant":
        zeros: Array = np.pad(xa, checked) if checked else xa.copy()
        return zeros
    index = []
    for axis, ((before, after), length) in enumerate(zip(checked, xa.shape, strict=True)):
        if before == after == 0:
            index.append(np.arange(length))
            continue
        if length == 0:
            raise ValueError(f"{fn}: mode={mode!r} copies cells of x, but axis {axis} is empty")
        if canonical in _PAD_LIMITS:
            slack, words = _PAD_LIMITS[canonical]
            if max(before, after) > length + slack:
                raise ValueError(f"{fn}: mode={mode!r} pads at most {words} = {length + slack} cells a side "
                                 f"of axis {axis} (length {length}), got ({before}, {after})")
        index.append(_pad_index(canonical, length, before, after))
    padded: Array = xa[np.ix_(*index)] if index else xa.copy()
    return padded


# --------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------


class _ConvGeometry(NamedTuple):
    x: Array  # (N, C, *spatial), channels_first
    w: Array  # (O, C/groups, *kernel), channels_first
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: list[tuple[int, int]]
    out: tuple[int, ...]
    groups: int


def _conv_geometry(
    fn: str,
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    layout: str,
    lhs_dilation: object = 1,
) -> _ConvGeometry:
    xc = _input_cf(fn, x, layout)
    nd = xc.ndim - 2
    wc = _weight_cf(fn, w, nd, layout)
    lhs = _per_axis(fn, "lhs_dilation", lhs_dilation, nd)
    if any(v > 1 for v in lhs):
        if isinstance(padding, str):
            # As lax: a named padding would be resolved against the undilated length; say the pairs.
            raise ValueError(f"{fn}: padding={padding!r} with lhs_dilation={lhs_dilation!r}; give explicit "
                             "(before, after) pairs per axis, as lax.conv_general_dilated requires")
        xc = _dilate(xc, lhs)
    s = _per_axis(fn, "stride", stride, nd)
    d = _per_axis(fn, "dilation", dilation, nd)
    g = _check_groups(fn, groups)
    c, (o, cg) = xc.shape[1], wc.shape[:2]
    if c != cg * g:
        # When groups does not divide C no w can match x: say that as well.
        note = f"; groups={g} does not divide the {c} input channels" if c % g else ""
        raise ValueError(
            f"{fn}: x has {c} channels but w expects {cg * g} (= w in-channels {cg} * groups {g}){note}"
        )
    if o % g:
        raise ValueError(f"{fn}: groups={g} does not divide the {o} output channels of w")
    kernel = wc.shape[2:]
    pads = _resolve_padding(fn, padding, xc.shape[2:], kernel, s, d)
    out = _valid_out_shape(fn, "kernel", xc.shape[2:], kernel, s, d, pads)
    return _ConvGeometry(xc, wc, s, d, pads, out, g)


def _dilate(xc: Array, factors: Sequence[int]) -> Array:
    """(L - 1) * f + 1 cells per spatial axis: x's cells f apart, zeros between (lax's lhs_dilation)."""
    out = np.zeros(xc.shape[:2] + tuple((n - 1) * f + 1 for n, f in zip(xc.shape[2:], factors, strict=True)))
    out[(slice(None), slice(None), *(slice(None, None, f) for f in factors))] = xc
    return out


def _pad(xc: Array, pads: Sequence[tuple[int, int]], value: float = 0.0) -> Array:
    padded: Array = np.pad(xc, ((0, 0), (0, 0), *pads), constant_values=value)
    return padded


def conv(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: npt.ArrayLike | None = None,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    layout: str = "channels_first",
    lhs_dilation: IntOrTuple = 1,
) -> Array:
    """N-D grouped, strided, dilated cross-correlation plus bias, in float64.

    ``lhs_dilation`` (lax's name) first spreads x's cells that far apart with zeros between, (L-1)*f + 1
    per axis; ``padding`` then pads that (explicit pairs only, as in lax). With a flipped kernel whose
    in/out axes are swapped, it is ``conv_transpose``: padding (k-1)*d - crop at each end.
    """
    geo = _conv_geometry("conv", x, w, stride, padding, dilation, groups, layout, lhs_dilation)
    n, (o, cg), kernel, g = geo.x.shape[0], geo.w.shape[:2], geo.w.shape[2:], geo.groups
    bias = _bias("conv", b, o)
    cols = _im2col(_pad(geo.x, geo.pads), kernel, geo.stride, geo.dilation, geo.out, g)
    wm = geo.w.reshape(g, o // g, cg * math.prod(kernel)).transpose(0, 2, 1)
    # matmul batches over groups and hands each group to BLAS; einsum would
    # not use BLAS with a batch index shared by both operands.
    site = "depthwise_conv" if cg == 1 and g > 1 else "conv"
    y = _contract(site, cols, wm, split=(cg, math.prod(kernel))).reshape(g, n, *geo.out, o // g)
    nd = len(kernel)
    y = y.transpose(1, 0, nd + 2, *range(2, nd + 2)).reshape(n, o, *geo.out)
    if bias is not None:
        y = y + bias.reshape(o, *([1] * nd))
    return _output_layout(y, layout)


def conv_vjp(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    g: npt.ArrayLike,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tuple[Array, Array, Array]:
    """Gradients (dx, dw, db) of sum(conv(x, w, b) * g) w.r.t. x, w and b.

    dx, dw, db have the shapes (and layouts) of x, w and b = (O,).  Since conv
    is linear in x and w, these are the adjoints of the im2col contraction:
    dw = g^T @ patches, dpatches = g @ w, and dx scatters dpatches back.
    """
    geo = _conv_geometry("conv_vjp", x, w, stride, padding, dilation, groups, layout)
    xc, wc, gr = geo.x, geo.w, geo.groups
    n, c = xc.shape[:2]
    o, cg = wc.shape[:2]
    kernel = wc.shape[2:]
    nd = len(kernel)
    gc = np.asarray(g, dtype=np.float64)
    expected = (n, o, *geo.out)
    gcf = gc if layout == "channels_first" or gc.ndim < 2 else np.moveaxis(gc, -1, 1)
    if gcf.shape != expected:
        shown = expected if layout == "channels_first" else (n, *geo.out, o)
        raise ValueError(f"conv_vjp: g must have the conv output shape {shown}, got g.shape={gc.shape}")
    xp = _pad(xc, geo.pads)
    cols = _im2col(xp, kernel, geo.stride, geo.dilation, geo.out, gr)  # (G, NP, CgK)
    npos = n * math.prod(geo.out)
    # (N, G, Og, *out) -> (G, N, *out, Og) -> (G, NP, Og)
    gm = (
        gcf.reshape(n, gr, o // gr, *geo.out).transpose(1, 0, *range(3, 3 + nd), 2).reshape(gr, npos, o // gr)
    )
    wm = wc.reshape(gr, o // gr, cg * math.prod(kernel))
    positions = math.prod(geo.out)
    dw = _contract("conv_weight_grad", gm.transpose(0, 2, 1), cols, split=(n, positions))
    dw = dw.reshape(o, cg, *kernel)
    # dcols = gm @ wm, (G, NP, Cg*k) -> (N, C, *out, *k), scattered back to the padded input
    dxp = _contract_scatter("conv_input_grad", gm, wm, n, geo.out, kernel, xp.shape[2:], geo.stride,
                            geo.dilation)
    dx = _crop(dxp, geo.pads)
    db = _sum("conv_bias_grad", np.moveaxis(gcf, 1, -1), tuple(range(nd + 1)))
    return _output_layout(dx, layout), _weight_layout(dw, layout), db


def conv_transpose(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    b: npt.ArrayLike | None = None,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingSpec = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> Array:
    """Transposed convolution (the adjoint of conv in x), plus bias.

    Scatter definition: full[n, o, i*s + j*d] += x[n, c, i] * w[c, o', j], with
    full length (L-1)*s + (k-1)*d + 1 + output_padding per axis (the
    output_padding cells are appended at the end and get no contributions).
    An int or (before, after) ``padding`` is cropped from the two ends of
    ``full`` (PyTorch/ONNX meaning); ``"valid"`` crops nothing; ``"same"``
    gives length L*s: total = (L-1)*s + (k-1)*d + 1 - L*s, total//2 is cropped
    at the start and the rest at the end (TensorFlow SAME), or zeros are
    appended at the end when total < 0; ``"same_lower"`` crops the odd cell at
    the start.  output_padding must be 0 with "same"/"same_lower" (their
    length is fixed to L*s).
    """
    fn = "conv_transpose"
    xc = _input_cf(fn, x, layout)
    nd = xc.ndim - 2
    wc = _weight_cf(fn, w, nd, layout)  # (C_in, C_out/groups, *kernel)
    s = _per_axis(fn, "stride", stride, nd)
    d = _per_axis(fn, "dilation", dilation, nd)
    op = _per_axis(fn, "output_padding", output_padding, nd, 0)
    gr = _check_groups(fn, groups)
    n, cin = xc.shape[:2]
    if cin != wc.shape[0]:
        side = "first" if layout == "channels_first" else "last"
        raise ValueError(
            f"{fn}: x has {cin} channels but w expects {wc.shape[0]} (w in-channels, the {side} axis of w)"
        )
    if cin % gr:
        raise ValueError(f"{fn}: groups={gr} does not divide the {cin} input channels of x")
    cog, kernel, spatial = wc.shape[1], wc.shape[2:], xc.shape[2:]
    cout = cog * gr
    bias = _bias(fn, b, cout)
    if any(p >= max(si, di) for p, si, di in zip(op, s, d, strict=True)):
        raise ValueError(
            f"{fn}: output_padding must be smaller than stride or dilation on every "
            f"axis, got output_padding={output_padding!r} with stride={stride!r}, "
            f"dilation={dilation!r}"
        )
    full = [(L - 1) * si + (k - 1) * di + 1 for L, k, si, di in zip(spatial, kernel, s, d, strict=True)]

    # crops[axis] = (start, length) into full + output_padding zeros (+ more
    # zeros at the end where "same" asks for more than full has).
    if isinstance(padding, str):
        if padding not in TRANSPOSE_PADDING_STRINGS:
            raise ValueError(
                f"{fn}: unknown padding {padding!r}; accepted strings are "
                f"{', '.join(map(repr, TRANSPOSE_PADDING_STRINGS))} (lowercase), or an "
                f"int, or (before, after) pairs cropped from the full output"
            )
        if padding == "valid":
            crops = [(0, f + p) for f, p in zip(full, op, strict=True)]
        else:
            if any(op):
                raise ValueError(
                    f"{fn}: output_padding must be 0 with padding={padding!r} (the "
                    f"output length is fixed to L*stride), got output_padding="
                    f"{output_padding!r}"
                )
            crops = []
            for f, L, si in zip(full, spatial, s, strict=True):
                total = max(f - L * si, 0)
                start = total // 2 if padding == "same" else total - total // 2
                crops.append((start, L * si))
    else:
        crops = []
        for axis, ((pb, pa), f, p) in enumerate(zip(_explicit_pairs(fn, padding, nd), full, op, strict=True)):
            length = f + p - pb - pa
            if length < 1:
                raise ValueError(
                    f"{fn}: padding={padding!r} crops {pb + pa} cells from the full "
                    f"output of length {f + p} on spatial axis {axis}, leaving nothing"
                )
            crops.append((pb, length))

    # contrib[n, o, i, j] = sum_c x[n, c, i] * w[c, o', j], per group, scattered to i*s + j*d.
    cig = cin // gr
    xm = (
        xc.reshape(n, gr, cig, *spatial)
        .transpose(1, 0, *range(3, 3 + nd), 2)
        .reshape(gr, n * math.prod(spatial), cig)
    )
    wm = wc.reshape(gr, cig, cog * math.prod(kernel))
    extent = [max(start + length, f) for (start, length), f in zip(crops, full, strict=True)]
    y = _contract_scatter("conv_transpose", xm, wm, n, spatial, kernel, extent, s, d)
    y = y[(slice(None), slice(None)) + tuple(slice(start, start + length) for start, length in crops)]
    if bias is not None:
        y = y + bias.reshape(cout, *([1] * nd))
    return _output_layout(y, layout)


def dense(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None) -> Array:
    """x (..., in) @ w (in, out) + b (out,), in float64."""
    xa = np.asarray(x, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    if xa.ndim < 1:
        raise ValueError(f"dense: x must have at least 1 dim, got x.shape={xa.shape}")
    if wa.ndim != 2:
        raise ValueError(f"dense: w must be 2-D (in, out), got w.shape={wa.shape}")
    if xa.shape[-1] != wa.shape[0]:
        raise ValueError(
            f"dense: x has {xa.shape[-1]} features (last axis) but w expects "
            f"{wa.shape[0]} (w.shape={wa.shape})"
        )
    bias = _bias("dense", b, wa.shape[1])
    y = _contract("dense", xa, wa)
    return y if bias is None else y + bias


# --------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------


class _PoolGeometry(NamedTuple):
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: list[tuple[int, int]]
    out: tuple[int, ...]
    extra: tuple[int, ...]  # cells past the padded extent that ceil_mode reaches


def _pool_geometry(
    fn: str,
    spatial: tuple[int, ...],
    window: object,
    stride: object,
    padding: object,
    dilation: object,
    ceil_mode: bool,
) -> _PoolGeometry:
    nd = len(spatial)
    k = _per_axis(fn, "window", window, nd)
    s = k if stride is None else _per_axis(fn, "stride", stride, nd)
    d = _per_axis(fn, "dilation", dilation, nd)
    pads = _resolve_padding(fn, padding, spatial, k, s, d)
    _valid_out_shape(fn, "window", spatial, k, s, d, pads)
    out = tuple(
        _pool_out_len(L, p, ki, si, di, bool(ceil_mode))
        for L, p, ki, si, di in zip(spatial, pads, k, s, d, strict=True)
    )
    extra = tuple(
        max((o - 1) * si + (ki - 1) * di + 1 - (L + pb + pa), 0)
        for o, si, ki, di, L, (pb, pa) in zip(out, s, k, d, spatial, pads, strict=True)
    )
    return _PoolGeometry(k, s, d, pads, out, extra)


def max_pool(
    x: npt.ArrayLike,
    window: IntOrTuple,
    *,
    stride: IntOrTuple | None = None,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    layout: str = "channels_first",
) -> Array:
    """Per-channel max over each (dilated) window; padded cells never win.

    stride=None means stride = window.  With ceil_mode the output length is
    PyTorch's: ceil((L + before + after - (k-1)*d - 1)/s) + 1, minus one if
    the last window would start inside the right padding; taps past the
    padded extent are ignored.  A window made only of padding gives -inf.
    """
    win, _, _, _ = _max_pool_windows("max_pool", x, window, stride, padding, dilation, ceil_mode, layout)
    nd = win.ndim // 2 - 1
    y: Array = win.max(axis=tuple(range(2 + nd, 2 + 2 * nd)))
    return _output_layout(y, layout)


def _max_pool_windows(
    fn: str, x: npt.ArrayLike, window: object, stride: object, padding: object, dilation: object,
    ceil_mode: bool, layout: str,
) -> tuple[Array, Array, list[tuple[int, int]], _PoolGeometry]:
    """(windows (N, C, *out, *window), the padded input, its pads, the geometry), channels_first."""
    xc = _input_cf(fn, x, layout)
    geo = _pool_geometry(fn, xc.shape[2:], window, stride, padding, dilation, ceil_mode)
    pads = [(pb, pa + e) for (pb, pa), e in zip(geo.pads, geo.extra, strict=True)]
    # -inf padding: a padded cell can never be the max of a window.
    xp = _pad(xc, pads, -np.inf)
    return _windows(xp, geo.window, geo.stride, geo.dilation, geo.out), xp, pads, geo


def max_pool_vjp(
    x: npt.ArrayLike,
    window: IntOrTuple,
    g: npt.ArrayLike,
    *,
    stride: IntOrTuple | None = None,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    layout: str = "channels_first",
) -> Array:
    """Gradient of sum(max_pool(x) * g) w.r.t. x: each window's g goes to the cell that won its max.

    Ties go to the first cell in window order (row-major); a gradient at a tie is a subgradient the
    frameworks choose differently, so claims about it draw inputs without ties. Overlapping windows
    add their contributions; padded cells, which never win, are cropped.
    """
    fn = "max_pool_vjp"
    win, xp, pads, geo = _max_pool_windows(fn, x, window, stride, padding, dilation, ceil_mode, layout)
    shape = win.shape[: win.ndim // 2 + 1]  # (N, C, *out)
    gc = _input_cf(fn, g, layout)
    if gc.shape != shape:
        shown = shape if layout == "channels_first" else (shape[0], *shape[2:], shape[1])
        raise ValueError(f"{fn}: g must have the pool output shape {shown}, got g.shape={np.shape(g)}")
    flat = win.reshape(*shape, -1)
    winner = flat.argmax(axis=-1)  # the first maximum, as the docstring says
    onehot = np.arange(flat.shape[-1]) == winner[..., None]
    contrib = (onehot * gc[..., None]).reshape(win.shape)
    dxp = _scatter_taps(contrib, xp.shape[2:], geo.stride, geo.dilation)
    return _output_layout(_crop(dxp, pads), layout)


def avg_pool(
    x: npt.ArrayLike,
    window: IntOrTuple,
    *,
    stride: IntOrTuple | None = None,
    padding: PaddingSpec = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    divisor: int | None = None,
    layout: str = "channels_first",
) -> Array:
    """Per-channel mean over each (dilated) window.

    The divisor counts the taps inside the real input, or with
    count_include_pad the taps inside the padded extent [-before, L + after)
    (PyTorch's rule); taps past the padded extent (ceil_mode) never count.
    An int ``divisor`` (PyTorch's divisor_override) divides every window's sum
    instead, whatever count_include_pad says.
    """
    fn = "avg_pool"
    xc = _input_cf(fn, x, layout)
    spatial = xc.shape[2:]
    geo = _pool_geometry(fn, spatial, window, stride, padding, dilation, ceil_mode)
    if divisor is not None and (not _is_int(divisor) or int(divisor) < 1):
        raise ValueError(f"{fn}: divisor must be None or an int >= 1, got divisor={divisor!r}")
    nd = len(spatial)
    pads = [(pb, pa + e) for (pb, pa), e in zip(geo.pads, geo.extra, strict=True)]
    taps = tuple(range(2 + nd, 2 + 2 * nd))
    sums = _sum("avg_pool", _windows(_pad(xc, pads), geo.window, geo.stride, geo.dilation, geo.out), taps)
    if divisor is not None:
        return _output_layout(sums / int(divisor), layout)
    # The divisor is the window sum of a 0/1 mask of the cells that count.
    mask = np.zeros((1, 1, *(L + pb + pa for L, (pb, pa) in zip(spatial, pads, strict=True))))
    counted = (
        [(pb, pb + L) for L, (pb, _) in zip(spatial, pads, strict=True)]
        if not count_include_pad
        else [(0, pb + L + pa) for L, (pb, pa) in zip(spatial, geo.pads, strict=True)]
    )
    region: tuple[int | slice, ...] = (0, 0, *(slice(lo, hi) for lo, hi in counted))
    mask[region] = 1.0
    counts = _windows(mask, geo.window, geo.stride, geo.dilation, geo.out).sum(axis=taps)
    # A window with no counted tap (only possible with unusual padding) is nan.
    with np.errstate(invalid="ignore", divide="ignore"):
        y: Array = sums / counts
    return _output_layout(y, layout)


def adaptive_windows(length: int, size: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows of one axis: [floor(i*L/n), ceil((i+1)*L/n)) for i < n.

    Each holds ceil(L/n) or ceil(L/n) + 1 cells; they tile the axis when n divides L and overlap
    where it does not (L=5, n=3: [0, 2), [1, 4), [3, 5)); n > L repeats cells.
    """
    for name, value in (("length", length), ("size", size)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"adaptive_windows: {name} must be an int >= 1, got {name}={value!r}")
    return [((i * length) // size, -(-(i + 1) * length // size)) for i in range(size)]


def _adaptive_pool(fn: str, x: npt.ArrayLike, output_size: object, layout: str, reduce: str) -> Array:
    """One axis after another: a window is a box, and the mean (max) over a box is the mean (max) of
    its rows' means (maxes). Each mean's sum is the avg_pool site's, over one axis."""
    xc = _input_cf(fn, x, layout)
    spatial = xc.shape[2:]
    nd = len(spatial)
    out = _per_axis(fn, "output_size", output_size, nd)
    if any(L < 1 for L in spatial):
        raise ValueError(f"{fn}: every spatial axis of x needs a cell to pool, got x.shape={np.shape(x)}")
    y = xc
    for axis, (L, n) in enumerate(zip(spatial, out, strict=True), start=2):
        parts = []
        for lo, hi in adaptive_windows(L, n):
            cells = np.take(y, np.arange(lo, hi), axis=axis)
            if reduce == "max":
                parts.append(cells.max(axis=axis))  # NaN propagates, as NumPy's max does
            else:
                parts.append(_sum("avg_pool", cells, (axis,)) / (hi - lo))
        y = np.stack(parts, axis=axis)
    return _output_layout(y, layout)


def adaptive_avg_pool(x: npt.ArrayLike, output_size: IntOrTuple, *, layout: str = "channels_first") -> Array:
    """PyTorch's AdaptiveAvgPool: the mean over each adaptive window (see adaptive_windows), per axis."""
    return _adaptive_pool("adaptive_avg_pool", x, output_size, layout, "mean")


def adaptive_max_pool(x: npt.ArrayLike, output_size: IntOrTuple, *, layout: str = "channels_first") -> Array:
    """PyTorch's AdaptiveMaxPool: the max over each adaptive window (see adaptive_windows), per axis."""
    return _adaptive_pool("adaptive_max_pool", x, output_size, layout, "max")


def _global_axes(fn: str, x: npt.ArrayLike, layout: str) -> tuple[Array, tuple[int, ...]]:
    _check_layout(fn, layout)
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim < 3:
        raise ValueError(
            f"{fn}: x must have at least 3 dims (batch, channels and spatial dims), got x.shape={xa.shape}"
        )
    first = 2 if layout == "channels_first" else 1
    return xa, tuple(range(first, first + xa.ndim - 2))


def global_avg_pool(x: npt.ArrayLike, *, layout: str = "channels_first", keepdims: bool = False) -> Array:
    """Mean over all spatial axes (kept as size 1 with keepdims)."""
    xa, axes = _global_axes("global_avg_pool", x, layout)
    y = _sum("global_avg_pool", xa, axes) / math.prod(xa.shape[a] for a in axes)
    return np.expand_dims(y, axes) if keepdims else y


def global_max_pool(x: npt.ArrayLike, *, layout: str = "channels_first", keepdims: bool = False) -> Array:
    """Max over all spatial axes (kept as size 1 with keepdims)."""
    xa, axes = _global_axes("global_max_pool", x, layout)
    y: Array = xa.max(axis=axes, keepdims=keepdims)
    return y


# --------------------------------------------------------------------------
# Layers as a model sees them: parameter counts, flatten, activation
# --------------------------------------------------------------------------


def _positive(fn: str, name: str, value: object) -> int:
    if not _is_int(value) or int(value) < 1:
        raise ValueError(f"{fn}: {name} must be an int >= 1, got {name}={value!r}")
    return int(value)


def _kernel_size(fn: str, kernel: IntOrTuple) -> int:
    """Taps in a kernel given as an int (one axis) or one int per spatial axis."""
    sizes = [kernel] if _is_int(kernel) else list(kernel) if isinstance(kernel, Iterable) else []
    if not sizes or not all(_is_int(k) and int(k) >= 1 for k in sizes):
        raise ValueError(f"{fn}: kernel must be an int >= 1 or a sequence of them, got kernel={kernel!r}")
    return math.prod(int(k) for k in sizes)


def _grouped(fn: str, in_channels: object, out_channels: object, groups: object) -> tuple[int, int, int]:
    cin = _positive(fn, "in_channels", in_channels)
    cout = _positive(fn, "out_channels", out_channels)
    g = _check_groups(fn, groups)
    if cin % g or cout % g:
        raise ValueError(f"{fn}: in_channels={cin} and out_channels={cout} must both be divisible by "
                         f"groups={g}")
    return cin, cout, g


def _bias_flag(fn: str, bias: object) -> bool:
    if not isinstance(bias, bool | np.bool_):
        raise ValueError(f"{fn}: bias must be True or False, got bias={bias!r}")
    return bool(bias)


def conv_params(kernel: IntOrTuple, in_channels: int, out_channels: int, *, groups: int = 1,
                bias: bool = True) -> int:
    """Parameters of a conv layer: each output channel sees in_channels/groups channels of taps."""
    taps = _kernel_size("conv_params", kernel)
    cin, cout, g = _grouped("conv_params", in_channels, out_channels, groups)
    return taps * (cin // g) * cout + (cout if _bias_flag("conv_params", bias) else 0)


def conv_transpose_params(kernel: IntOrTuple, in_channels: int, out_channels: int, *, groups: int = 1,
                          bias: bool = True) -> int:
    """Parameters of a transposed conv: the adjoint of a conv from out_channels to in_channels."""
    taps = _kernel_size("conv_transpose_params", kernel)
    cin, cout, g = _grouped("conv_transpose_params", in_channels, out_channels, groups)
    return taps * cin * (cout // g) + (cout if _bias_flag("conv_transpose_params", bias) else 0)


def separable_params(kernel: IntOrTuple, in_channels: int, out_channels: int, *, depth_multiplier: int = 1,
                     bias: bool = True) -> int:
    """Parameters of a separable conv as Keras counts them: a depthwise conv without bias (kernel taps
    per input channel and multiplier), then a 1x1 conv from in_channels * multiplier channels that
    carries the bias."""
    taps = _kernel_size("separable_params", kernel)
    cin = _positive("separable_params", "in_channels", in_channels)
    cout = _positive("separable_params", "out_channels", out_channels)
    m = _positive("separable_params", "depth_multiplier", depth_multiplier)
    return taps * cin * m + cin * m * cout + (cout if _bias_flag("separable_params", bias) else 0)


def dense_params(in_features: int, out_features: int, *, bias: bool = True) -> int:
    """Parameters of a dense layer: an (in, out) matrix and out biases."""
    fin = _positive("dense_params", "in_features", in_features)
    fout = _positive("dense_params", "out_features", out_features)
    return fin * fout + (fout if _bias_flag("dense_params", bias) else 0)


def flatten(x: npt.ArrayLike, *, layout: str) -> Array:
    """(N, ...) -> (N, features) in the order the layout stores them: channels_last flattens
    (*spatial, C), channels_first flattens (C, *spatial). Porting a Dense after Flatten between
    layouts therefore permutes the Dense weight's rows."""
    _check_layout("flatten", layout)
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim < 2:
        raise ValueError(f"flatten: x must have a batch axis and at least one more, got x.shape={xa.shape}")
    return xa.reshape(xa.shape[0], -1)


def relu(x: npt.ArrayLike) -> Array:
    """max(x, 0) elementwise; NaN stays NaN."""
    xa = np.asarray(x, dtype=np.float64)
    return np.where(xa < 0, 0.0, xa)


def relu_vjp(x: npt.ArrayLike, g: npt.ArrayLike) -> Array:
    """Gradient of sum(relu(x) * g) w.r.t. x: g where x > 0, else 0 (the subgradient 0 at x = 0, which
    torch, TensorFlow and JAX all pick)."""
    xa = np.asarray(x, dtype=np.float64)
    ga = np.asarray(g, dtype=np.float64)
    if xa.shape != ga.shape:
        raise ValueError(f"relu_vjp: g must have x's shape {xa.shape}, got g.shape={ga.shape}")
    return np.where(xa > 0, ga, 0.0)


def dense_vjp(x: npt.ArrayLike, w: npt.ArrayLike, g: npt.ArrayLike) -> tuple[Array, Array, Array]:
    """Gradients (dx, dw, db) of sum(dense(x, w, b) * g) for x (N, in), w (in, out), g (N, out)."""
    xa = np.asarray(x, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    ga = np.asarray(g, dtype=np.float64)
    want = (*xa.shape[:-1], wa.shape[1]) if wa.ndim == 2 else None
    if xa.ndim != 2 or wa.ndim != 2 or xa.shape[1] != wa.shape[0] or ga.shape != want:
        raise ValueError(f"dense_vjp: needs x (N, in), w (in, out), g (N, out); got x.shape={xa.shape}, "
                         f"w.shape={wa.shape}, g.shape={ga.shape}")
    return ga @ wa.T, xa.T @ ga, ga.sum(axis=0)


# (largest exponent, unit roundoff): the largest finite value is 2**emax * (2 - 2u).
_DTYPE_RANGE = {"float16": (15, 2.0**-11), "bfloat16": (127, 2.0**-8), "float32": (127, 2.0**-24)}


def overflow(y: npt.ArrayLike, dtype: str) -> Array:
    """y, with +-inf where rounding it to `dtype` overflows: from the midpoint 2**emax * (2 - u)
    between the largest finite value and 2**(emax + 1) on (65520 for float16, whose largest is 65504)."""
    if dtype not in _DTYPE_RANGE:
        raise ValueError(f"overflow: dtype must be one of {', '.join(_DTYPE_RANGE)}, got {dtype!r}")
    ya = np.asarray(y, dtype=np.float64)
    emax, u = _DTYPE_RANGE[dtype]
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(ya) >= 2.0**emax * (2 - u), np.copysign(np.inf, ya), ya)
