"""A Conv1D is a Conv2D whose kernel spans every channel.

Claim: Conv1D with kernel k and O filters over (N, L, C) equals Conv2D with kernel (k, C) over the
input viewed as (N, L, C, 1) with one input channel, VALID padding, the (N, L-k+1, 1, O) output
reshaped back to (N, L-k+1, O); for k = 1 the kernel is (1, C). The channels_first counterpart views
(N, C, L) as (N, 1, C, L) with kernel (C, k). It also equals Conv2D on a height-1 image
(N, 1, L, C) with kernel (1, k), the form Keras uses internally.
Quirk pinned: the (k, C) form moves channels into a spatial axis, so the weights must be reshaped
(k, C, O) -> (k, C, 1, O), not transposed; getting it wrong mixes channels and positions.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [7, 8], "k": [1, 3], "C": [1, 4]},
            values=("normal", "wide"))


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[p.k], channels=p.C, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, layout=p.layout)


@case.variant
def native_conv1d(fw, p, x, w, b):
    return fw.conv(x, w, b, layout=p.layout)


@case.variant
def as_conv2d_kernel_spans_channels(fw, p, x, w, b):
    n, o, out = 2, 3, p.L - p.k + 1
    if p.layout == "channels_last":
        y = fw.conv(fw.reshape(x, (n, p.L, p.C, 1)), fw.reshape(w, (p.k, p.C, 1, o)), b, layout=p.layout)
        return fw.reshape(y, (n, out, o))  # (N, L-k+1, 1, O)
    y = fw.conv(fw.reshape(x, (n, 1, p.C, p.L)), fw.reshape(w, (o, 1, p.C, p.k)), b, layout=p.layout)
    return fw.reshape(y, (n, o, out))  # (N, O, 1, L-k+1)


@case.variant
def as_conv2d_height_one(fw, p, x, w, b):
    n, o, out = 2, 3, p.L - p.k + 1
    if p.layout == "channels_last":
        y = fw.conv(fw.reshape(x, (n, 1, p.L, p.C)), fw.reshape(w, (1, p.k, p.C, o)), b, layout=p.layout)
        return fw.reshape(y, (n, out, o))
    y = fw.conv(fw.reshape(x, (n, p.C, 1, p.L)), fw.reshape(w, (o, p.C, 1, p.k)), b, layout=p.layout)
    return fw.reshape(y, (n, o, out))
