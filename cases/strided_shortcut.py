"""ResNet's "option A" shortcut is a 1x1 stride-2 conv with identity-block weights.

Claim: the parameter-free shortcut of He et al. (2016) for CIFAR -- keep every second row and column,
x[:, ::2, ::2, :], then zero-pad the channels from C to C_OUT (torch ports:
F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, C_OUT//4, C_OUT//4))) -- equals a VALID 1x1 conv with stride 2
whose weight is 1 at (c, c + before) and 0 elsewhere, and no bias. For an odd size the slice keeps
ceil(H/2) rows, and so does the conv: floor((H - 1)/2) + 1. Both layouts.
Known non-equivalence: slicing from 1 (x[:, 1::2, 1::2]) picks the other pixel of each 2x2 block
(and one row fewer on an odd size).
"""

import numpy as np

from equiv import Case

case = Case(grid={"layout": ["channels_last", "channels_first"], "H": [8, 7], "before": [0, 2]})
C, C_OUT = 4, 8


def _pairs(p):
    ch = (p.before, C_OUT - C - p.before)
    return [(0, 0), (0, 0), (0, 0), ch] if p.layout == "channels_last" else [(0, 0), ch, (0, 0), (0, 0)]


@case.inputs
def draw(rng, p):
    x = rng.standard_normal((2, p.H, p.H + 1, C) if p.layout == "channels_last" else (2, C, p.H, p.H + 1))
    eye = np.zeros((C, C_OUT))
    eye[np.arange(C), np.arange(C) + p.before] = 1.0
    w = eye.reshape(1, 1, C, C_OUT) if p.layout == "channels_last" else eye.T.reshape(C_OUT, C, 1, 1)
    return {"x": x, "w": w}


@case.oracle
def expected(p, x, w):
    sub = x[:, ::2, ::2, :] if p.layout == "channels_last" else x[:, :, ::2, ::2]
    return np.pad(sub, _pairs(p))


@case.variant
def slice_and_pad_channels(fw, p, x, w):
    sub = x[:, ::2, ::2, :] if p.layout == "channels_last" else x[:, :, ::2, ::2]
    return fw.pad(sub, _pairs(p))


@case.variant
def conv_1x1_stride2_identity(fw, p, x, w):
    return fw.conv(x, w, stride=2, padding="valid", layout=p.layout)


@case.variant(expect="differs", reason="x[:, 1::2, 1::2] samples the other pixel of each 2x2 block")
def offset_slice(fw, p, x, w):
    sub = x[:, 1::2, 1::2, :] if p.layout == "channels_last" else x[:, :, 1::2, 1::2]
    return fw.pad(sub, _pairs(p))
