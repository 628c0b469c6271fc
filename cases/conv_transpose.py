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
lax.conv_transpose's default transpose_kernel=False neither flips the kernel
nor swaps its in/out axes; it is a conv of the stride-dilated input, not the gradient of conv.
"""

from equiv import Case, oracle

cropped = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1, 2], "k": [3], "d": [1],
           "padding": [0, 1], "op": [0, 1]}
dilated = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1], "k": [3], "d": [2],
           "padding": [0, 1], "op": [0, 1]}
named = {"layout": ["channels_first", "channels_last"], "nd": [1, 2], "s": [1, 2], "k": [2, 3], "d": [1],
         "padding": ["same", "valid"], "op": [0]}
case = Case(grid=[cropped, dilated, named], where=lambda p: p.op < max(p.s, p.d))


@case.inputs
def draw(rng, p):
    spatial, kernel, c_in, c_out = [5, 4][: p.nd], [p.k] * p.nd, 3, 2
    if p.layout == "channels_first":
        x, w = (2, c_in, *spatial), (c_in, c_out, *kernel)
    else:
        x, w = (2, *spatial, c_in), (*kernel, c_out, c_in)
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


@case.variant(frameworks=["tensorflow"],
              when=lambda p: p.layout == "channels_last" and isinstance(p.padding, str))
def keras_layer(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=p.s, padding=p.padding, dilation=p.d)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.padding == 0 and p.op > 0)
def tf_output_shape(fw, p, x, w, b):
    return fw.conv_transpose_output_shape(x, w, b, stride=p.s, output_padding=p.op, dilation=p.d,
                                          layout=p.layout)  # cells past the full output stay 0 (+ b)


@case.variant(frameworks=["jax"], expect="differs", when=lambda p: p.padding == 0 and p.op == 0,
              reason="lax.conv_transpose without transpose_kernel=True does not flip the kernel")
def jax_default_transpose_kernel(fw, p, x, w, b):
    return fw.conv_transpose(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout,
                             transpose_kernel=False)


@case.variant(frameworks=["torch"], expect="differs",
              when=lambda p: p.padding == "same" and (p.k, p.s) == (3, 2) and p.layout == "channels_first",
              reason="padding=1, output_padding=1 crops the odd cell at the start; TF's SAME at the end")
def torch_usual_port_of_same(fw, p, x, w, b):
    return fw.conv_transpose_layer(x, w, b, stride=2, padding=1, output_padding=1)
