"""A Dense layer on a flattened k x k x C map is a k x k VALID conv, and on a larger map the same conv
is that Dense at every window.

Claim (the "fully connected as convolution" of FCNs): a Dense with weight W (k*k*C, F) whose rows
follow the layout's Flatten order equals a VALID conv with kernel k x k x C -> F built from W:
channels_last W.reshape(k, k, C, F) (HWIO), channels_first W.T.reshape(F, C, k, k) (OIHW). On an
H x W map the conv gives, at output (i, j), the Dense applied to the window starting at (i*s, j*s),
with the conv's stride s (1 and 2).
Known non-equivalence: the channels_first weight made by W.reshape(F, C, k, k), a reshape where a
transpose is needed: it mixes the Dense's input and output axes.
"""

import numpy as np

from equiv import Case, oracle

K, C, F = 3, 2, 4
case = Case(grid=[
    {"layout": ["channels_last", "channels_first"], "size": [K], "s": [1]},  # the whole map: one window
    {"layout": ["channels_last", "channels_first"], "size": [7, 8], "s": [1, 2]},
])


def _window(x, p, i, j):
    if p.layout == "channels_last":
        return x[:, i * p.s:i * p.s + K, j * p.s:j * p.s + K, :]
    return x[:, :, i * p.s:i * p.s + K, j * p.s:j * p.s + K]


@case.inputs
def draw(rng, p):
    x = rng.standard_normal((2, p.size, p.size, C) if p.layout == "channels_last" else (2, C, p.size, p.size))
    return {"x": x, "w": rng.standard_normal((K * K * C, F)), "b": rng.standard_normal(F)}


@case.oracle
def expected(p, x, w, b):
    n = (p.size - K) // p.s + 1
    out = np.empty((2, n, n, F))
    for i in range(n):
        for j in range(n):
            out[:, i, j, :] = oracle.dense(oracle.flatten(_window(x, p, i, j), layout=p.layout), w, b)
    return out if p.layout == "channels_last" else out.transpose(0, 3, 1, 2)


def _conv_weight(fw, p, w, *, transpose_first=True):
    if p.layout == "channels_last":
        return fw.reshape(w, (K, K, C, F))
    return fw.reshape(fw.transpose(w, (1, 0)) if transpose_first else w, (F, C, K, K))


@case.variant
def conv_from_dense_weight(fw, p, x, w, b):
    return fw.conv(x, _conv_weight(fw, p, w), b, stride=p.s, padding="valid", layout=p.layout)


@case.variant(when=lambda p: p.size == K)
def dense_on_flattened_map(fw, p, x, w, b):
    y = fw.dense(fw.flatten_layer(x), w, b)
    return fw.reshape(y, (2, 1, 1, F) if p.layout == "channels_last" else (2, F, 1, 1))


@case.variant(when=lambda p: p.layout == "channels_first", expect="differs",
              reason="W.reshape(F, C, k, k) without transposing W mixes its input and output axes")
def reshaped_not_transposed(fw, p, x, w, b):
    return fw.conv(x, _conv_weight(fw, p, w, transpose_first=False), b, stride=p.s, padding="valid",
                   layout=p.layout)
