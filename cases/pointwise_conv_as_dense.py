"""A 1x1 convolution is a dense layer applied at every pixel.

Claim: conv with a 1x1 kernel (C, O) over (N, *s, C) equals x @ W + b at every position, in both
layouts (channels_first needs the channel axis moved last and back). A Conv1D whose kernel spans the
whole length L equals a dense layer on the flattened (L*C) input, the kernel reshaped to (L*C, O).
Quirk pinned: torch.nn.Linear stores (out, in), the transpose of the (in, out) dense convention.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid=[
    {"form": ["pointwise"], "layout": ["channels_last", "channels_first"], "nd": [1, 2]},
    {"form": ["full_length"], "layout": ["channels_last"], "nd": [1]},
    # channels_first flattens (C, L) where the (O, C, k) kernel reshapes to (C*k, O) only after a
    # transpose: that is flatten_order's claim, not this one.
], where=lambda p: p.form == "pointwise" or p.layout == "channels_last")
SPATIAL = {1: [6], 2: [5, 4]}


@case.inputs
def draw(rng, p):
    kernel = [1] * p.nd if p.form == "pointwise" else SPATIAL[p.nd]
    return conv_inputs(rng, layout=p.layout, spatial=SPATIAL[p.nd], kernel=kernel, channels=5, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    if p.form == "full_length":  # conv output (N, 1.., O) is the dense output (N, O) with length-1 axes
        return oracle.dense(x.reshape(2, -1), w.reshape(-1, 3), b).reshape(2, *[1] * p.nd, 3)
    return oracle.conv(x, w, b, layout=p.layout)


@case.variant
def conv(fw, p, x, w, b):
    return fw.conv(x, w, b, layout=p.layout)


def _dense_at_every_pixel(dense, fw, p, x, w, b):
    if p.form == "full_length":
        return fw.reshape(dense(fw.reshape(x, (2, -1)), fw.reshape(w, (-1, 3)), b), (2, *[1] * p.nd, 3))
    if p.layout == "channels_last":
        return dense(x, fw.reshape(w, (5, 3)), b)
    to_last, to_first = (0, *range(2, p.nd + 2), 1), (0, p.nd + 1, *range(1, p.nd + 1))
    w2 = fw.transpose(fw.reshape(w, (3, 5)), (1, 0))  # (O, I, 1..) -> (I, O)
    return fw.transpose(dense(fw.transpose(x, to_last), w2, b), to_first)


@case.variant
def dense(fw, p, x, w, b):
    return _dense_at_every_pixel(fw.dense, fw, p, x, w, b)


@case.variant(frameworks=["torch", "tensorflow"])
def dense_layer(fw, p, x, w, b):
    return _dense_at_every_pixel(fw.dense_layer, fw, p, x, w, b)  # nn.Linear / keras Dense
