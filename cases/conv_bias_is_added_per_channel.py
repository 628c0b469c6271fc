"""A conv's bias is added once per output channel, at every position.

Claim: conv(x, w, b) equals conv(x, w) + b broadcast over the spatial axes, in both layouts.
Quirk pinned: channels_first needs b reshaped to (O, 1, ...) before adding; adding (O,) directly
broadcasts against the last spatial axis instead.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [5, 8]})


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=4)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, layout=p.layout)


@case.variant
def bias_added_after(fw, p, x, w, b):
    y = fw.conv(x, w, layout=p.layout)
    shape = (1, 1, 4) if p.layout == "channels_last" else (1, 4, 1)
    return y + fw.reshape(b, shape)
