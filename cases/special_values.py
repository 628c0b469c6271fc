"""NaN and ±inf go through conv, average and max pooling as IEEE arithmetic says, except TF's MaxPool.

Claim: with NaN (at random cells, and filling one window) or ±inf (never a whole window of -inf), each
output whose window holds one is NaN or ±inf where float64 arithmetic puts it (inf - inf is NaN) in a
conv, an average pool, a max pool and a global max, whose max propagates NaN (IEEE 754's maximum).
Known non-equivalence: TF's CPU MaxPool (oneDNN, Eigen, every dtype) keeps a running max from the lowest
finite value: NaN never comes out, and a window of NaN (or of -inf, except in bfloat16 under oneDNN)
alone gives that value; tf.reduce_max propagates NaN.
"""

import numpy as np

from equiv import Case, oracle, tolerance

OPS = ["max_pool", "global_max_pool", "avg_pool", "conv"]
# Off the grid, the fuzzer places them: the map (H, W), the window or kernel (k) and the stride (s) of
# the pools and the conv, the channels (C; even: oneDNN's bfloat16 conv with odd C leaks 0 * inf = NaN
# into a neighbour, reported, no entry) and the share of special cells. A 1x1 max pool of -inf alone
# would be TF's lowest-finite case, so windows of inf have two cells at least.
domain = {"op": OPS, "layout": ["channels_last", "channels_first"], "value": ["nan", "inf"],
          "H": range(1, 13), "W": range(1, 13), "k": range(1, 5), "s": range(1, 4), "C": [4, 2, 6, 8],
          "share": [0.12, 0.02, 0.3, 0.6]}


def _geometry(p):
    """(H, W, C, k, s, share): the grid's 6x5 map with 4 channels, 2x2 pools of stride 1 and a 3x3 conv."""
    return (p.get("H", 6), p.get("W", 5), p.get("C", 4), p.get("k", 3 if p.op == "conv" else 2),
            p.get("s", 1), p.get("share", 0.12))


def _terms(p):
    h, w, c, k, s, share = _geometry(p)
    return {"max_pool": 0, "global_max_pool": 0, "avg_pool": k * k + 2, "conv": c * k * k}[p.op]


def _holds(p):
    h, w, c, k, s, share = _geometry(p)
    return k <= min(h, w) and not (p.value == "inf" and k == 1 and p.op == "max_pool")


case = Case(grid={"op": OPS, "layout": ["channels_last", "channels_first"], "value": ["nan", "inf"]},
            domain=domain, where=_holds, tolerance=tolerance.derived(terms=_terms))
MAX_NAN = lambda p: p.op == "max_pool" and p.value == "nan"  # noqa: E731


@case.inputs
def draw(rng, p):  # x on quarters, so no finite average rounds (pooling_avg claims that) in any dtype
    h, w, c, k, s, share = _geometry(p)
    x, special = rng.integers(-8, 9, (2, h, w, c)) / 4, rng.random((2, h, w, c)) < share
    if p.value == "nan":
        x[special], x[0, :k, :k, 0] = np.nan, np.nan  # and a window of NaN alone
    else:  # on cells with h + w even only: no window of two cells or more is -inf alone (see the docstring)
        special &= (np.arange(h)[:, None] + np.arange(w))[None, :, :, None] % 2 == 0
        x[special] = rng.choice([-np.inf, np.inf], special.sum())
    weights, last = rng.standard_normal((k, k, c, 4)), p.layout == "channels_last"
    return {"x": x if last else x.transpose(0, 3, 1, 2),
            "w": weights if last else weights.transpose(3, 2, 0, 1)}


def _run(fw, p, x, w):  # fw: a framework module, or equiv.oracle
    h, w_, c, k, s, share = _geometry(p)
    if p.op in ("max_pool", "avg_pool"):
        return (fw.max_pool if p.op == "max_pool" else fw.avg_pool)(x, k, stride=s, layout=p.layout)
    if p.op == "conv":
        return fw.conv(x, w, stride=s, layout=p.layout)
    return fw.global_max_pool(x, layout=p.layout)


@case.oracle
def expected(p, x, w):
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as the claim says
        return _run(oracle, p, x, w)


@case.variant(frameworks=["torch", "tensorflow", "jax"], when=lambda p: not MAX_NAN(p))
def native(fw, p, x, w):
    return _run(fw, p, x, w)


@case.variant(frameworks=["torch", "jax"], when=MAX_NAN)
def max_pool_propagates_nan(fw, p, x, w):
    return _run(fw, p, x, w)


@case.variant(frameworks=["tensorflow"], expect="differs", when=MAX_NAN,
              reason="tf.nn.max_pool drops NaN: a running max from the lowest finite value (std::max; "
                     "tensorflow/tensorflow#2501; on arm64 it depends on the channel count, #125965)")
def tf_max_pool_drops_nan(fw, p, x, w):
    return _run(fw, p, x, w)
