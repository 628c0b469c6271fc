"""A multi-channel conv is the sum over input channels of single-channel convs, plus the bias once.

Claim: y[:, o] = b[o] + sum_c conv(x[:, c], w[o, c]) -- each input channel is correlated with its
own kernel slice and the per-channel maps are summed; nothing is convolved across channels. So a
conv over C channels equals C one-channel convs (x[:, c:c+1] with w[:, c:c+1], output channels kept)
added together, with the bias added once. 1-D and 2-D, stride and SAME, both layouts.
Known non-equivalence: adding the bias in every per-channel conv counts it C times.
"""

import numpy as np

from equiv import Case, conv_inputs, oracle, tolerance

case = Case(grid={"layout": ["channels_last", "channels_first"], "nd": [1, 2], "C": [1, 3], "s": [1, 2],
                  "padding": ["valid", "same"]},
            # In half precision each of the C convs, the C - 1 partial sums and the bias add store a result.
            tolerance=tolerance.derived(roundings=lambda p: p.C + 1))


@case.inputs
def draw(rng, p):
    xs = conv_inputs(rng, layout=p.layout, spatial=[8, 7][: p.nd], kernel=[3] * p.nd, channels=p.C,
                     out_channels=2)
    # |b| >= 1: a bias added C times is off by 2|b|, beyond even bfloat16's bound of C + 1 roundings.
    return {**xs, "b": np.sign(xs["b"]) * (1 + abs(xs["b"]))}


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, stride=p.s, padding=p.padding, layout=p.layout)


def _channel(p, a, c, weight):
    """Slice channel c of x, or input channel c of w (its axis -2 channels_last, 1 channels_first)."""
    if p.layout == "channels_first":
        return a[:, c : c + 1]
    return a[..., c : c + 1, :] if weight else a[..., c : c + 1]


def _per_channel_sum(fw, p, x, w, b, bias_each):
    y = None
    for c in range(p.C):
        part = fw.conv(_channel(p, x, c, False), _channel(p, w, c, True), b if bias_each else None,
                       stride=p.s, padding=p.padding, layout=p.layout)
        y = part if y is None else fw.add(y, part)
    if bias_each:
        return y
    # The bias once, broadcast over the output channel axis.
    shaped = b if p.layout == "channels_last" else fw.reshape(b, (-1,) + (1,) * p.nd)
    return fw.add(y, shaped)


@case.variant
def sum_of_single_channel_convs(fw, p, x, w, b):
    return _per_channel_sum(fw, p, x, w, b, bias_each=False)


@case.variant(expect="differs", when=lambda p: p.C > 1,
              reason="the bias is added once, not once per input channel")
def bias_in_every_channel(fw, p, x, w, b):
    return _per_channel_sum(fw, p, x, w, b, bias_each=True)
