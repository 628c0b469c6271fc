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

C = 4  # even: oneDNN's bfloat16 conv with odd C leaks 0 * inf = NaN into a neighbour (reported, no entry)
TERMS = {"max_pool": 0, "global_max_pool": 0, "avg_pool": 2 * 2 + 2, "conv": C * 3 * 3}
case = Case(grid={"op": list(TERMS), "layout": ["channels_last", "channels_first"], "value": ["nan", "inf"]},
            tolerance=tolerance.derived(terms=lambda p: TERMS[p.op]))
MAX_NAN = lambda p: p.op == "max_pool" and p.value == "nan"  # noqa: E731


@case.inputs
def draw(rng, p):  # x on quarters, so no finite average rounds (pooling_avg claims that) in any dtype
    x, special = rng.integers(-8, 9, (2, 6, 5, C)) / 4, rng.random((2, 6, 5, C)) < 0.12
    if p.value == "nan":
        x[special], x[0, :2, :2, 0] = np.nan, np.nan  # and a window of NaN alone
    else:  # on cells with h + w even only: no window is -inf alone (see the docstring)
        special &= (np.arange(6)[:, None] + np.arange(5))[None, :, :, None] % 2 == 0
        x[special] = rng.choice([-np.inf, np.inf], special.sum())
    w, last = rng.standard_normal((3, 3, C, 4)), p.layout == "channels_last"
    return {"x": x if last else x.transpose(0, 3, 1, 2), "w": w if last else w.transpose(3, 2, 0, 1)}


def _run(fw, p, x, w):  # fw: a framework module, or equiv.oracle
    if p.op in ("max_pool", "avg_pool"):
        return (fw.max_pool if p.op == "max_pool" else fw.avg_pool)(x, 2, stride=1, layout=p.layout)
    return fw.conv(x, w, layout=p.layout) if p.op == "conv" else fw.global_max_pool(x, layout=p.layout)


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
