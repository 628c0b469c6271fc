"""Adaptive pooling's window i of n over L cells is [floor(i*L/n), ceil((i+1)*L/n)), in every port.

Claim: torch's AdaptiveAvgPool/AdaptiveMaxPool (VGG's 7x7 head, ResNet's 1x1) equal Keras' Adaptive
pooling layers and the windows built by hand (slices reduced, concatenated) in TF and JAX, both
layouts, where n divides L, where not (13 -> 7 pools 2 or 3 cells, overlapping) and where n > L.
The pool with stride s = L // n and window k = L - (n-1)*s equals it where its windows are torch's:
n dividing L, and others (10 -> 3). Known non-equivalence: elsewhere (10 -> 4, 13 -> 7) it differs.
"""

from equiv import Case, oracle, tolerance

both = {"kind": ["avg", "max"], "layout": ["channels_first", "channels_last"]}
grid = [{**both, "nd": [1], "L": [10], "n": [5, 4, 3, 1, 12]},
        {**both, "nd": [2], "L": [7, 14, 13], "n": [7]}]
# A mean of <= ceil(L/n) + 1 cells an axis, divided once an axis by the ports; a max only moves data.
case = Case(grid=grid, values=("normal", "wide"), tolerance=tolerance.derived(
    terms=lambda p: 0 if p.kind == "max" else (-(-p.L // p.n) + 1) ** p.nd + p.nd + 1))


def _fixed(p):  # the fixed pool's (window, stride), and whether its windows are torch's
    s = p.L // p.n
    k = p.L - (p.n - 1) * s if s else 0
    return k, s, s > 0 and oracle.adaptive_windows(p.L, p.n) == [(i * s, i * s + k) for i in range(p.n)]


@case.inputs
def draw(rng, p):
    spatial = [p.L] * p.nd
    return {"x": rng.standard_normal((2, *spatial, 3) if p.layout == "channels_last" else (2, 3, *spatial))}


@case.oracle
def expected(p, x):
    pool = oracle.adaptive_avg_pool if p.kind == "avg" else oracle.adaptive_max_pool
    return pool(x, p.n, layout=p.layout)


@case.variant(frameworks=["torch", "tensorflow", "jax"])
def native_or_by_hand(fw, p, x):  # torch's F.adaptive_*_pool*d; TF and JAX build the windows by hand
    return (fw.adaptive_avg_pool if p.kind == "avg" else fw.adaptive_max_pool)(x, p.n, layout=p.layout)


@case.variant(frameworks=["tensorflow"])
def keras_layer(fw, p, x):
    return fw.adaptive_pool_layer(x, p.kind, p.n, layout=p.layout)


# 2-D averages in float32/float64 only: in half, JAX's and TF's CPU pools sum a window in that dtype
# (known defects; pooling_avg) in an order this oracle, one axis at a time like Keras, cannot emulate.
@case.variant(when=lambda p: _fixed(p)[2] and (p.nd == 1 or p.kind == "max" or "16" not in p.dtype))
def fixed_pool_where_windows_agree(fw, p, x):
    k, s, _ = _fixed(p)
    return (fw.avg_pool if p.kind == "avg" else fw.max_pool)(x, k, stride=s, layout=p.layout)


@case.variant(expect="differs", when=lambda p: p.kind == "avg" and _fixed(p)[1] and not _fixed(p)[2],
              reason="avg_pool(k=L-(n-1)*s, stride=s=L//n) pools other windows than torch's adaptive pool")
def fixed_pool_port(fw, p, x):
    k, s, _ = _fixed(p)
    return fw.avg_pool(x, k, stride=s, layout=p.layout)
