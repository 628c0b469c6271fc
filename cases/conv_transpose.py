"""Transposed convolution is the scatter (adjoint-of-conv) definition in every framework.

Claim: torch's F.conv_transpose*/nn.ConvTranspose*d, tf.nn.conv_transpose/Keras Conv*DTranspose and
jax.lax.conv_transpose(transpose_kernel=True) all compute full[i*s + j*d] += x[i] * w[j] of length
(L-1)*s + (k-1)*d + 1, then torch's padding=p crops p cells from each end and output_padding appends
cells at the end; TF/JAX "SAME" gives length L*s, cropping (full - L*s)//2 at the start (torch spells
it as that crop after a VALID transposed conv). TF users spell output_padding as a larger output_shape:
the extra cells get no contribution, only the bias.
Weights are (C_in, C_out, *k) channels_first and (*k, C_out, C_in) channels_last (TF's filter).
Known non-equivalences: nn.ConvTranspose(k=3, stride=2, padding=1, output_padding=1), the usual
port of Keras' SAME, crops the odd cell at the start instead of the end: a shift by one pixel.
Keras' Conv*DTranspose(padding="valid") is L*s long, not the full output, where the stride exceeds
the dilated kernel (k=1 or 2 at stride 3, ...): the extra cells at the end hold only the bias.
lax.conv_transpose's default transpose_kernel=False neither flips the kernel
nor swaps its in/out axes; it is a conv of the stride-dilated input, not the gradient of conv.
"""

from equiv import Case, fuzz, oracle

cropped = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1, 2], "k": [3], "d": [1],
           "padding": [0, 1], "op": [0, 1]}
dilated = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1], "k": [3], "d": [2],
           "padding": [0, 1], "op": [0, 1]}
named = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1, 2], "k": [2, 3], "d": [1],
         "padding": ["same", "valid"], "op": [0]}
# Off the grid: the kernel per axis, the input length per axis (L), the channels (C_in, C_out) and the
# batch (N). An int padding crops that many cells from each end of the full output; output_padding
# (op) is below max(stride, dilation), as torch requires, and only VALID or a crop takes it (SAME fixes
# the length to L*s).
LENGTHS = {1: range(1, 41), 2: range(1, 17), 3: range(1, 7)}  # modest shapes: a draw stays fast
domain = {"layout": ["channels_first", "channels_last"], "nd": range(1, 4), "s": range(1, 5),
          "k": fuzz.per_axis(range(1, 8)), "d": range(1, 5), "padding": [0, 1, 2, 3, "valid", "same"],
          "op": lambda p: [0] if p.padding == "same" else range(0, max(p.s, p.d)),
          "L": lambda p: fuzz.per_axis(LENGTHS[p.nd])(p), "C_in": range(1, 10), "C_out": range(1, 10),
          "N": range(1, 4)}


def _kernel(p):
    return tuple(p.k) if isinstance(p.k, tuple) else (p.k,) * p.nd


def _spatial(p):
    return tuple(p.get("L", (5, 4)[: p.nd]))


def _holds(p):
    if p.op >= max(p.s, p.d):
        return False  # torch refuses it, and no conv maps that output back to L
    if p.nd == 3 and p.layout == "channels_first":
        # TF's Eigen Conv3DBackpropInputV2 (float64, float16) refuses NCDHW ("only supports NDHWC on
        # the CPU"), words equiv.frameworks.tensorflow does not yet read as a refusal (it knows NHWC):
        # an error, not a skip. Back in the domain once it does.
        return False
    if isinstance(p.padding, str):
        return True
    # A crop that leaves no cell is no transposed conv: torch and the oracle refuse it.
    return all((n - 1) * p.s + (k - 1) * p.d + 1 + p.op - 2 * p.padding >= 1
               for n, k in zip(_spatial(p), _kernel(p), strict=True))


# Points fuzzing found, each a mapping mistake of this file, fixed (replayed on every run): a 1-tap kernel
# is its own flip (jax_default_transpose_kernel cannot differ), VALID with output_padding (the Keras
# layer is built without it), a stride past a 1-tap kernel (Keras' VALID is L*s long).
found = [{"layout": [layout], "nd": [1], "s": [s], "k": [(1,)], "d": [d], "padding": [padding], "op": [op],
          "L": [(n,)], "C_in": [1], "C_out": [1], "N": [1]}
         for layout, s, d, padding, op, n in [("channels_first", 1, 1, 0, 0, 1),
                                               ("channels_last", 1, 2, "valid", 1, 1),
                                               ("channels_last", 3, 1, "valid", 0, 4)]]
case = Case(grid=[cropped, dilated, named, *found], domain=domain, where=_holds)


@case.inputs
def draw(rng, p):
    spatial, kernel, n = _spatial(p), _kernel(p), p.get("N", 2)
    c_in, c_out = p.get("C_in", 3), p.get("C_out", 2)
    if p.layout == "channels_first":
        x, w = (n, c_in, *spatial), (c_in, c_out, *kernel)
    else:
        x, w = (n, *spatial, c_in), (*kernel, c_out, c_in)
    return {"x": rng.standard_normal(x), "w": rng.standard_normal(w), "b": rng.standard_normal(c_out)}


@case.oracle
def expected(p, x, w, b):
    return oracle.conv_transpose(x, w, b, stride=p.s, padding=p.padding, output_padding=p.op, dilation=p.d,
                                 layout=p.layout)


def _native(fw, p, x, w, b):
    return fw.conv_transpose(x, w, b, stride=p.s, padding=p.padding, output_padding=p.op, dilation=p.d,
                             layout=p.layout)


@case.variant
def native(fw, p, x, w, b):
    return _native(fw, p, x, w, b)  # torch: SAME is an asymmetric crop of the full output


@case.variant(frameworks=["torch"],
              when=lambda p: p.layout == "channels_first" and not isinstance(p.padding, str))
def torch_layer(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding=p.padding, output_padding=p.op, dilation=p.d)


def _keras_valid_is_full(p):
    """Keras' VALID length is L*s + max((k-1)*d + 1 - s, 0): the full output unless the stride
    exceeds the dilated kernel on some axis."""
    return all((k - 1) * p.d + 1 >= p.s for k in _kernel(p))


def _keras(p):
    # The Keras layer is built without output_padding: only points with op = 0 are its.
    return p.layout == "channels_last" and isinstance(p.padding, str) and p.op == 0


@case.variant(frameworks=["tensorflow"],
              when=lambda p: _keras(p) and (p.padding == "same" or _keras_valid_is_full(p)))
def keras_layer(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding=p.padding, dilation=p.d)


@case.variant(frameworks=["tensorflow"], expect="differs",
              when=lambda p: _keras(p) and p.padding == "valid" and not _keras_valid_is_full(p),
              reason="Keras' VALID Conv*DTranspose is L*s long where the stride exceeds the dilated kernel: "
                     "s - (k-1)*d - 1 cells past the full output, holding only the bias")
def keras_valid_stride_past_kernel(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding="valid", dilation=p.d)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.padding == 0 and p.op > 0)
def tf_output_shape(fw, p, x, w, b):
    return fw.conv_transpose_output_shape(x, w, b, stride=p.s, output_padding=p.op, dilation=p.d,
                                          layout=p.layout)  # cells past the full output stay 0 (+ b)


# A kernel of one tap per axis is its own flip: the difference needs a longer one.
@case.variant(frameworks=["jax"], expect="differs",
              when=lambda p: p.padding == 0 and p.op == 0 and max(_kernel(p)) > 1,
              reason="lax.conv_transpose without transpose_kernel=True does not flip the kernel")
def jax_default_transpose_kernel(fw, p, x, w, b):
    return fw.conv_transpose(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout,
                             transpose_kernel=False)


@case.variant(frameworks=["torch"], expect="differs",
              when=lambda p: p.padding == "same" and (_kernel(p), p.s) == ((3,) * p.nd, 2)
              and p.layout == "channels_first",
              reason="padding=1, output_padding=1 crops the odd cell at the start; TF's SAME at the end")
def torch_usual_port_of_same(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=2, padding=1, output_padding=1)
