"""Autodiff of conv in each framework is the adjoint the oracle computes in closed form.

Claim: for L = sum(conv(x, w, b) * g), torch autograd, tf.GradientTape and jax.vjp give
dx = the transposed conv of g (a scatter of g @ w back through the padding, which is then cropped),
dw = the correlation of g with the padded input patches, db = g summed over batch and positions;
with stride, dilation, SAME (asymmetric at stride 2), groups, 1-D and 2-D, both layouts.
Quirk pinned: with stride > 1 the input cells that no window reaches (the tail of a VALID conv)
get a zero gradient, and the cells of SAME's asymmetric padding get none at all (they are cropped).
"""

from equiv import Case, conv_inputs, oracle, tolerance

base = {"layout": ["channels_last", "channels_first"], "nd": [1, 2], "s": [1, 2], "d": [1, 2],
        "padding": ["valid", "same"], "groups": [1]}
grouped = {"layout": ["channels_last", "channels_first"], "nd": [1, 2], "s": [1, 2], "d": [1],
           "padding": ["valid"], "groups": [2]}
# Each gradient is one framework op (a conv backprop, or the bias gradient's one reduction): one
# stored result, so half precision allows float32 accumulation and a single rounding.
case = Case(grid=[base, grouped], where=lambda p: not (p.s > 1 and p.d > 1),
            tolerance=tolerance.derived(roundings=1))


@case.inputs
def draw(rng, p):
    spatial = [8, 7][: p.nd]
    xs = conv_inputs(rng, layout=p.layout, spatial=spatial, kernel=[3] * p.nd, channels=4, out_channels=4,
                     groups=p.groups, bias=False)
    out = oracle.conv_output_shape(spatial, [3] * p.nd, stride=p.s, padding=p.padding, dilation=p.d)
    g_shape = (2, 4, *out) if p.layout == "channels_first" else (2, *out, 4)
    return {**xs, "g": rng.standard_normal(g_shape)}


@case.oracle
def expected(p, x, w, g):
    dx, dw, db = oracle.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, groups=p.groups,
                                 layout=p.layout)
    return {"dx": dx, "dw": dw, "db": db}


@case.variant
def autodiff(fw, p, x, w, g):
    dx, dw, db = fw.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, groups=p.groups,
                             layout=p.layout)
    return {"dx": dx, "dw": dw, "db": db}
