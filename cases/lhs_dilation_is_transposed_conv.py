"""A transposed conv is a conv of the input spread by the stride, with the kernel flipped.

Claim: lax.conv_general_dilated(lhs_dilation=s) (how Flax's ConvTranspose and JAX ports spell it), with
the kernel flipped, its in/out axes swapped and padding (k-1)*d - crop at each end (output_padding
more at the end), equals torch's conv_transpose/nn.ConvTranspose, Keras' Conv*DTranspose and each
framework's own transposed conv. So does the same conv of an input spread with zeros built from
reshape and pad, in every framework (no lhs_dilation outside JAX). Pinned: lax.conv_transpose's
transpose_kernel=True is that flip; transpose_kernel=False with the kernel flipped by hand is the same.
Known non-equivalence: lhs_dilation with the kernel not flipped (the usual first port) is the
correlation of the spread input, not the transposed conv, wherever the kernel has two taps.
"""

from equiv import Case, fuzz, oracle

grid = [{"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [2, 3], "k": [3], "d": [1],
         "padding": [0, 1, "same"], "op": [0, 1]},
        {"layout": ["channels_first", "channels_last"], "nd": [1], "s": [2], "k": [2, 3], "d": [2],
         "padding": [0, 1], "op": [0, 1]},
        # found by fuzzing: a crop that leaves no tap (k 2, d 2, one cell): the unflipped kernel cannot show
        {"layout": ["channels_first"], "nd": [1], "s": [1], "k": [(2,)], "d": [2], "padding": [1], "op": [0],
         "L": [(1,)], "C_in": [1], "C_out": [1], "N": [1]}]
LENGTHS = {1: range(1, 33), 2: range(1, 13)}
domain = {"layout": ["channels_first", "channels_last"], "nd": range(1, 3), "s": range(1, 5),
          "k": fuzz.per_axis(range(1, 7)), "d": range(1, 4), "padding": [0, 1, 2, 3, "same"],
          "op": lambda p: [0] if p.padding == "same" else range(0, max(p.s, p.d)),
          "L": lambda p: fuzz.per_axis(LENGTHS[p.nd])(p), "C_in": range(1, 6), "C_out": range(1, 6),
          "N": range(1, 3)}


def _geometry(p):
    """Per axis (L, k, the crop's start, the output's length): the transposed conv as crops of its full
    output (L-1)*s + (k-1)*d + 1 (+ op); SAME keeps L*s, cropping total//2 at the start."""
    spatial = tuple(p.get("L", (5, 4)[: p.nd]))
    kernel = tuple(p.k) if isinstance(p.k, tuple) else (p.k,) * p.nd
    out = []
    for n, k in zip(spatial, kernel, strict=True):
        full = (n - 1) * p.s + (k - 1) * p.d + 1
        start, length = ((max(full - n * p.s, 0) // 2, n * p.s) if p.padding == "same"
                         else (p.padding, full + p.op - 2 * p.padding))
        out.append((n, k, start, length))
    return out


def _pairs(p):
    """The lhs-dilated conv's padding: (k-1)*d - start before; after, what makes the length."""
    return [((k - 1) * p.d - start, length - ((n - 1) * p.s + 1) + start)
            for n, k, start, length in _geometry(p)]


case = Case(grid=grid, domain=domain,
            where=lambda p: p.op < max(p.s, p.d) and not (p.padding == "same" and p.op)
            and all(a >= 0 and b >= 0 and length >= 1
                    for (a, b), (*_, length) in zip(_pairs(p), _geometry(p), strict=True)))


@case.inputs
def draw(rng, p):
    spatial, kernel = [g[0] for g in _geometry(p)], [g[1] for g in _geometry(p)]
    c_in, c_out, n = p.get("C_in", 3), p.get("C_out", 2), p.get("N", 2)
    x, w = (((n, c_in, *spatial), (c_in, c_out, *kernel)) if p.layout == "channels_first"
            else ((n, *spatial, c_in), (*kernel, c_out, c_in)))
    return {"x": rng.standard_normal(x), "w": rng.standard_normal(w), "b": rng.standard_normal(c_out)}


@case.oracle
def expected(p, x, w, b):
    crops = "same" if p.padding == "same" else p.padding
    return oracle.conv_transpose(x, w, b, stride=p.s, padding=crops, output_padding=p.op, dilation=p.d,
                                 layout=p.layout)


def _taps(p):
    return tuple(range(2, 2 + p.nd)) if p.layout == "channels_first" else tuple(range(p.nd))


def _as_conv_kernel(fw, p, w, flip=True):
    """conv_transpose's weights as a conv's: in/out axes swapped, and (the part ports forget) the taps
    reversed. (C_in, C_out, *k) -> (C_out, C_in, *k); (*k, C_out, C_in) -> (*k, C_in, C_out)."""
    nd = p.nd
    order = (1, 0, *range(2, 2 + nd)) if p.layout == "channels_first" else (*range(nd), nd + 1, nd)
    w = fw.transpose(w, order)
    return fw.flip(w, _taps(p)) if flip else w


def _spread(fw, p, x):
    """x's cells s apart, zeros between ((L-1)*s + 1 per axis), from reshape, pad and a slice."""
    n, *rest = (int(v) for v in x.shape)
    spatial, c = (rest[1:], rest[0]) if p.layout == "channels_first" else (rest[:-1], rest[-1])
    cells = [v for n_ in spatial for v in (n_, 1)]
    gaps = [pair for _ in spatial for pair in ((0, 0), (0, p.s - 1))]
    if p.layout == "channels_first":
        y = fw.pad(fw.reshape(x, (n, c, *cells)), [(0, 0), (0, 0), *gaps])
        y = fw.reshape(y, (n, c, *(v * p.s for v in spatial)))
        return y[(slice(None), slice(None), *(slice(0, (v - 1) * p.s + 1) for v in spatial))]
    y = fw.pad(fw.reshape(x, (n, *cells, c)), [(0, 0), *gaps, (0, 0)])
    y = fw.reshape(y, (n, *(v * p.s for v in spatial), c))
    return y[(slice(None), *(slice(0, (v - 1) * p.s + 1) for v in spatial), slice(None))]


@case.variant
def transposed_conv(fw, p, x, w, b):  # the framework's own: F.conv_transpose*, tf.nn.conv_transpose, ...
    return fw.conv_transpose(x, w, b, stride=p.s, padding=p.padding, output_padding=p.op, dilation=p.d,
                             layout=p.layout)


@case.variant(frameworks=["torch"], when=lambda p: p.layout == "channels_first" and p.padding != "same")
def torch_layer(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding=p.padding, output_padding=p.op, dilation=p.d)


# Keras has no output_padding argument here, no crop, and its VALID is the full output only while the
# stride does not pass the dilated kernel (conv_transpose's claim).
@case.variant(frameworks=["tensorflow"], when=lambda p: p.layout == "channels_last" and p.op == 0 and (
    p.padding == "same" or p.padding == 0 and all((k - 1) * p.d + 1 >= p.s for _, k, _, _ in _geometry(p))))
def keras_layer(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding="valid" if p.padding == 0 else "same",
                                   dilation=p.d)


@case.variant(frameworks=["jax"])
def lhs_dilation(fw, p, x, w, b):  # lax.conv_general_dilated(lhs_dilation=s), as Flax ports spell it
    return fw.conv(x, _as_conv_kernel(fw, p, w), b, padding=_pairs(p), dilation=p.d, layout=p.layout,
                   lhs_dilation=p.s)


@case.variant
def zero_stuffed(fw, p, x, w, b):
    return fw.conv(_spread(fw, p, x), _as_conv_kernel(fw, p, w), b, padding=_pairs(p), dilation=p.d,
                   layout=p.layout)


@case.variant(frameworks=["jax"])
def transpose_kernel_false_flipped_by_hand(fw, p, x, w, b):
    return fw.conv_transpose(x, fw.flip(w, _taps(p)), b, stride=p.s,
                             padding=p.padding, output_padding=p.op, dilation=p.d, layout=p.layout,
                             transpose_kernel=False)


def _reads_a_tap_and_its_mirror_apart(p):
    """The output reads some tap j that is not its own mirror k-1-j (a crop can leave only the middle
    tap, or none), so the unflipped kernel shows."""
    taps = [{j for i in range(n) for j in range(k) if start <= i * p.s + j * p.d < start + length}
            for n, k, start, length in _geometry(p)]
    return all(taps) and any(j != k - 1 - j for t, (_, k, _, _) in zip(taps, _geometry(p), strict=True)
                             for j in t)


@case.variant(frameworks=["jax"], expect="differs", when=_reads_a_tap_and_its_mirror_apart,
              reason="lhs_dilation with the kernel not flipped correlates the spread input: taps reversed")
def lhs_dilation_unflipped(fw, p, x, w, b):
    return fw.conv(x, _as_conv_kernel(fw, p, w, flip=False), b, padding=_pairs(p), dilation=p.d,
                   layout=p.layout, lhs_dilation=p.s)
