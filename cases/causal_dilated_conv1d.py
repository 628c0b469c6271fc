"""Causal (dilated) Conv1D is a left padding of (k-1)*d, and keeps the sequence length.

Claim: Keras Conv1D(padding="causal") (WaveNet/TCN style) equals a VALID conv after padding
(k-1)*d zeros at the start of the time axis and none at the end, so y[t] reads only x[<= t] and the
output has the input's length. In torch, the common idiom nn.Conv1d(padding=(k-1)*d) followed by
dropping the last (k-1)*d outputs is the same thing. Both layouts for the explicit forms.
Known non-equivalence: padding="same" is centred, not causal (it reads the future) whenever k > 1.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [8, 9], "k": [2, 3], "d": [1, 2, 4]},
            values=("normal", "wide"))


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[p.k], channels=2, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    y = oracle.conv(x, w, b, padding="causal", dilation=p.d, layout=p.layout)
    assert y.shape[1 if p.layout == "channels_last" else 2] == p.L  # causal keeps the length
    return y


@case.variant
def left_pad_then_valid(fw, p, x, w, b):
    time = ((p.k - 1) * p.d, 0)
    left = [(0, 0), time, (0, 0)] if p.layout == "channels_last" else [(0, 0), (0, 0), time]
    return fw.conv(fw.pad(x, left), w, b, padding="valid", dilation=p.d, layout=p.layout)


@case.variant
def causal_padding_string(fw, p, x, w, b):
    return fw.conv(x, w, b, padding="causal", dilation=p.d, layout=p.layout)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.layout == "channels_last")
def keras_conv1d_causal(fw, p, x, w, b):
    return fw.conv_layer(x, w, b, padding="causal", dilation=p.d)


@case.variant(frameworks=["torch"], when=lambda p: p.layout == "channels_first")
def torch_symmetric_pad_then_trim(fw, p, x, w, b):
    y = fw.conv_layer(x, w, b, padding=(p.k - 1) * p.d, dilation=p.d)
    return y[..., : p.L]  # drop the (k-1)*d outputs that read the right padding


@case.variant(expect="differs", reason="padding='same' centres the kernel: it reads future steps")
def same_is_not_causal(fw, p, x, w, b):
    return fw.conv(x, w, b, padding="same", dilation=p.d, layout=p.layout)
