"""Every framework counts a layer's parameters as the oracle does.

Claim: torch's sum(p.numel() for p in module.parameters()), Keras' count_params() and the total size
of the arrays equiv's JAX function for the layer takes (checked with jax.eval_shape) equal
oracle.conv_params / conv_transpose_params / separable_params / dense_params: conv 1-D/2-D/3-D with
and without bias and grouped, transposed, depthwise with a multiplier, separable and dense.
Quirk pinned: Keras' SeparableConv puts the bias on the pointwise conv only (the depthwise part has
none), and torch, which has no depthwise or separable layer, counts the same with groups=C and a
1x1 conv.
"""

import numpy as np

from equiv import Case, oracle, tolerance

KIND_GRID = {"kernel": [3], "cin": [4], "cout": [6], "bias": [True, False]}
case = Case(grid=[
    {"kind": ["conv", "conv_transpose"], "nd": [1, 2, 3], "groups": [1, 2], "m": [1], **KIND_GRID},
    {"kind": ["depthwise", "separable"], "nd": [1, 2], "groups": [1], "m": [1, 3], **KIND_GRID},
    {"kind": ["dense"], "nd": [0], "groups": [1], "m": [1], **KIND_GRID},
], tolerance=tolerance.exact(), dtypes=("float64",), output_layout="channels_last",
    # Groups divide both channel counts (every framework refuses others); dense has no spatial axes.
    where=lambda p: p.cin % p.groups == 0 and p.cout % p.groups == 0)
SIZES = {"kernel": range(1, 8), "cin": range(1, 10), "cout": range(1, 10), "bias": [True, False]}
case.domain = [
    {"kind": ["conv", "conv_transpose"], "nd": [1, 2, 3], "groups": range(1, 10), "m": [1], **SIZES},
    {"kind": ["depthwise", "separable"], "nd": [1, 2], "groups": [1], "m": range(1, 5), **SIZES},
    {"kind": ["dense"], "nd": [0], "groups": [1], "m": [1], **SIZES},
]


@case.inputs
def draw(rng, p):
    return {}  # a count depends on the configuration only


@case.oracle
def expected(p):
    k, cin, cout = (p.kernel,) * p.nd, p.cin, p.cout
    count = {
        "conv": lambda: oracle.conv_params(k, cin, cout, groups=p.groups, bias=p.bias),
        "conv_transpose": lambda: oracle.conv_transpose_params(k, cin, cout, groups=p.groups, bias=p.bias),
        "depthwise": lambda: oracle.conv_params(k, cin, cin * p.m, groups=cin, bias=p.bias),
        "separable": lambda: oracle.separable_params(k, cin, cout, depth_multiplier=p.m, bias=p.bias),
        "dense": lambda: oracle.dense_params(cin, cout, bias=p.bias),
    }[p.kind]()
    return np.float64(count)


@case.variant
def framework_count(fw, p):
    return np.float64(fw.param_count(p.kind, nd=p.nd, kernel=p.kernel, in_channels=p.cin,
                                     out_channels=p.cout, groups=p.groups, depth_multiplier=p.m,
                                     bias=p.bias))
