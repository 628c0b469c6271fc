"""Average pooling with padding: TF's SAME divides by the real cells, torch counts the padding.

Claim: tf.nn.avg_pool(padding="SAME"), Keras AveragePooling*D and a JAX window sum divided by the
window sum of ones (flax's avg_pool) divide each window by the number of cells inside the input
(oracle count_include_pad=False); torch's F.avg_pool*d(padding=p) divides by the whole window,
padding included, by default (count_include_pad=True) and by the real cells with False. TF gets
torch's default by padding zeros explicitly, then a VALID pool; JAX by dividing the window sum by
the window size. torch's ceil_mode=True follows the oracle's rule (a last window starting in the
right padding is dropped; cells past the padding never count). Global average pooling, both layouts.
Known non-equivalence: TF's SAME average differs from torch's default count_include_pad=True at
every border window that contains padding.
"""

import math

from equiv import Case, oracle, tolerance

window = {"op": ["window"], "layout": ["channels_last", "channels_first"], "nd": [1, 2], "k": [2, 3],
          "s": [1, 2], "padding": ["valid", "same", 1], "cip": [False, True], "ceil": [False]}
ceil = {"op": ["window"], "layout": ["channels_first"], "nd": [1, 2], "k": [2, 3], "s": [2],
        "padding": ["valid", 1], "cip": [False, True], "ceil": [True]}
global_ = {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": [1, 2]}
SPATIAL = [7, 5]


def _terms(p):
    # A mean is a sum of at most K cells and a division (torch may multiply by a rounded reciprocal):
    # all-ones inputs give 1, not K, so the count is stated here.
    cells = p.k**p.nd if p.op == "window" else math.prod(SPATIAL[: p.nd])
    return cells + 2


case = Case(grid=[window, ceil, global_], tolerance=tolerance.derived(terms=_terms))


@case.inputs
def draw(rng, p):
    spatial = SPATIAL[: p.nd]
    return {"x": rng.standard_normal((2, *spatial, 3) if p.layout == "channels_last" else (2, 3, *spatial))}


@case.oracle
def expected(p, x):
    if p.op == "global":
        return oracle.global_avg_pool(x, layout=p.layout)
    return oracle.avg_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil, count_include_pad=p.cip,
                           layout=p.layout)


def _pool(fw, p, x, cip):
    return fw.avg_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil, count_include_pad=cip,
                       layout=p.layout)


# TF excludes padding only under SAME and has no ceil_mode, JAX has no ceil_mode, torch has no SAME
# that excludes padding for an odd total: each refusal is a skip with its reason.
@case.variant(when=lambda p: p.op == "window")
def native(fw, p, x):
    return _pool(fw, p, x, p.cip)


@case.variant(
    frameworks=["tensorflow"],
    when=lambda p: p.op == "window" and not p.ceil and (p.padding != 1 and not p.cip),
)
def keras_layer(fw, p, x):
    return fw.pool_layer(x, "avg", p.k, stride=p.s, padding=p.padding, layout=p.layout)


@case.variant(when=lambda p: p.op == "global")
def global_avg(fw, p, x):
    return fw.global_avg_pool(x, layout=p.layout)


@case.variant(frameworks=["tensorflow", "jax"], expect="differs",
              when=lambda p: p.op == "window" and p.padding == "same" and p.cip and not p.ceil,
              reason="SAME average pooling in TF/Keras excludes the padding; torch's default includes it")
def same_excludes_padding(fw, p, x):
    return _pool(fw, p, x, False)
