"""Layers give the output shapes the oracle computes, down to the size a Dense after Flatten needs.

Claim: torch.nn modules (run on shapes-only meta tensors), Keras layers' compute_output_shape and
jax.eval_shape of the lax calls give oracle.conv_output_shape / pool_output_shape: conv 1-D/2-D/3-D,
depthwise, transposed (VALID: (L-1)*s + (k-1)*d + 1; SAME: L*s), max and average pools, with stride, dilation
and VALID, SAME or an explicit padding; and the MNIST CNN (conv 4x4 x32, 2x2 max pool, conv 4x4 x64,
2x2 max pool, Flatten) on 28x28x1 gives 4*4*64 = 1024 features.
Quirk pinned: SAME gives ceil(L/s) whatever the kernel and dilation; torch has no SAME with a stride
and no SAME for pools, Keras no explicit padding: those items skip with the framework's reason.
"""

import numpy as np

from equiv import Case, oracle, tolerance

N, L, C, K, FILTERS = 2, 9, 3, 3, 4
case = Case(grid=[
    {"kind": ["conv"], "nd": [1, 2, 3], "s": [1, 2], "d": [1, 2], "padding": ["valid", "same", 1]},
    {"kind": ["depthwise"], "nd": [1, 2, 3], "s": [1, 2], "d": [1], "padding": ["valid", "same"]},
    {"kind": ["conv_transpose"], "nd": [1, 2], "s": [1, 2], "d": [1], "padding": ["valid", "same", 1]},
    {"kind": ["max_pool", "avg_pool"], "nd": [1, 2, 3], "s": [1, 2], "d": [1],
     "padding": ["valid", "same", 1]},
    {"kind": ["mnist_cnn"], "nd": [2], "s": [1], "d": [1], "padding": ["valid"]},
], where=lambda p: not (p.s > 1 and p.d > 1), tolerance=tolerance.exact(), dtypes=("float64",),
    output_layout="channels_last")


def _input_shape(p):
    return (N, 28, 28, 1) if p.kind == "mnist_cnn" else (N, *[L] * p.nd, C)


@case.inputs
def draw(rng, p):
    return {}  # shapes only


@case.oracle
def expected(p):
    spatial = _input_shape(p)[1:-1]
    if p.kind == "mnist_cnn":
        h = oracle.pool_output_shape(oracle.conv_output_shape(spatial, (4, 4)), 2)
        h = oracle.pool_output_shape(oracle.conv_output_shape(h, (4, 4)), 2)
        return np.array([N, int(np.prod(h)) * 64], dtype=np.float64)
    if p.kind == "conv_transpose":  # SAME: L*s; an int crops that many cells from each end of VALID's
        out = [n * p.s if p.padding == "same" else
               (n - 1) * p.s + (K - 1) * p.d + 1 - 2 * (0 if p.padding == "valid" else p.padding)
               for n in spatial]
    elif p.kind in ("max_pool", "avg_pool"):
        out = oracle.pool_output_shape(spatial, K, stride=p.s, padding=p.padding)
    else:
        out = oracle.conv_output_shape(spatial, [K] * p.nd, stride=p.s, padding=p.padding, dilation=p.d)
    channels = C if p.kind in ("depthwise", "max_pool", "avg_pool") else FILTERS
    return np.array([N, *out, channels], dtype=np.float64)


@case.variant
def framework_shape(fw, p):
    shape = fw.layer_output_shape(p.kind, _input_shape(p), kernel=K, filters=FILTERS, stride=p.s,
                                  padding=p.padding, dilation=p.d)
    return np.array(shape, dtype=np.float64)
