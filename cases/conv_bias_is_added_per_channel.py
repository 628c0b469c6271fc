"""A conv's bias is added once per output channel, at every position.

Claim: conv(x, w, b), with b given to the framework's conv and to its conv layer, equals conv(x, w)
plus b broadcast over the spatial axes, in both layouts; the oracle adds b by hand.
Quirk pinned: channels_first needs b reshaped to (O, 1, ...) before adding by hand; adding (O,)
directly broadcasts against the last spatial axis instead.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [5, 8]})
PER_CHANNEL = {"channels_last": (1, 1, 4), "channels_first": (1, 4, 1)}  # b's shape against y


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=4)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, layout=p.layout) + b.reshape(PER_CHANNEL[p.layout])


@case.variant
def framework_bias(fw, p, x, w, b):
    return fw.conv(x, w, b, layout=p.layout)


@case.variant(frameworks=("torch",), when=lambda p: p.layout == "channels_first")
def torch_layer_bias(fw, p, x, w, b):  # nn.Conv1d(bias=True) with its bias set to b
    return fw.conv_layer(x, w, b)


@case.variant(frameworks=("tensorflow",), when=lambda p: p.layout == "channels_last")
def keras_layer_bias(fw, p, x, w, b):  # keras.layers.Conv1D(use_bias=True) with its bias set to b
    return fw.conv_layer(x, w, b)


@case.variant
def bias_added_after(fw, p, x, w, b):
    return fw.conv(x, w, layout=p.layout) + fw.reshape(b, PER_CHANNEL[p.layout])
