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

from equiv import Case, fuzz, oracle, tolerance

window = {"op": ["window"], "layout": ["channels_last", "channels_first"], "nd": [1, 2], "k": [2, 3],
          "s": [1, 2], "padding": ["valid", "same", 1], "cip": [False, True], "ceil": [False]}
ceil = {"op": ["window"], "layout": ["channels_first"], "nd": [1, 2], "k": [2, 3], "s": [2],
        "padding": ["valid", 1], "cip": [False, True], "ceil": [True]}
global_ = {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": [1, 2]}
SPATIAL = [7, 5]
# Off the grid: the window per axis, the input length per axis (L), the channels (C) and the batch
# (N); 1- to 3-D.
LONGEST = {1: 40, 2: 16, 3: 8}  # per axis: modest shapes keep a draw fast


def _window(p):
    return tuple(p.k) if isinstance(p.k, tuple) else (p.k,) * p.nd


def _spatial(p):
    return p.get("L", SPATIAL[: p.nd])


def _paddings(p):
    # An int pads both ends; torch refuses more than half the window ("pad should be at most half of
    # effective kernel size"): a window of padding alone has no mean of real cells.
    return ["valid", "same", *range(0, min(_window(p)) // 2 + 1)]


def _lengths(p):
    """Each axis up to LONGEST; VALID (or a small int padding) needs the window inside the padded
    input, so that axis draws from there up."""
    from hypothesis import strategies as st  # only a fuzz run draws lengths

    pad = 0 if p.padding == "valid" else p.padding if isinstance(p.padding, int) else None
    lows = [1 if pad is None else max(1, k - 2 * pad) for k in _window(p)]
    return st.tuples(*(st.integers(low, max(low, LONGEST[p.nd])) for low in lows))


domain = [
    {"op": ["window"], "layout": ["channels_last", "channels_first"], "nd": range(1, 4),
     "k": fuzz.per_axis(range(1, 8)), "s": range(1, 5), "padding": _paddings, "cip": [False, True],
     "ceil": [False, True], "L": _lengths, "C": range(1, 10), "N": range(1, 4)},
    {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": range(1, 4),
     "L": lambda p: fuzz.per_axis(range(1, LONGEST[p.nd] + 1))(p), "C": range(1, 10), "N": range(1, 4)},
]


def _terms(p):
    # A mean is a sum of at most K cells and a division (torch may multiply by a rounded reciprocal):
    # all-ones inputs give 1, not K, so the count is stated here.
    cells = math.prod(_window(p)) if p.op == "window" else math.prod(_spatial(p))
    return cells + 2


# Each domain widens the grid space sharing the most parameters with it (fuzz.domains): the global
# domain widens global_, whose parameters window shares too but without window's k, s and padding.
case = Case(grid=[global_, window, ceil], domain=domain, tolerance=tolerance.derived(terms=_terms))


@case.inputs
def draw(rng, p):
    spatial, c, n = _spatial(p), p.get("C", 3), p.get("N", 2)
    return {"x": rng.standard_normal((n, *spatial, c) if p.layout == "channels_last" else (n, c, *spatial))}


@case.oracle
def expected(p, x):
    if p.op == "global":
        return oracle.global_avg_pool(x, layout=p.layout)
    return oracle.avg_pool(x, _window(p), stride=p.s, padding=p.padding, ceil_mode=p.ceil,
                           count_include_pad=p.cip, layout=p.layout)


def _pool(fw, p, x, cip):
    return fw.avg_pool(x, _window(p), stride=p.s, padding=p.padding, ceil_mode=p.ceil, count_include_pad=cip,
                       layout=p.layout)


def _pooled_3d(p):
    # 3-D windows are run in float32 only: TensorFlow registers no CPU AvgPool3D for float64 or
    # float16 (NotFoundError) and torch no CPU avg_pool3d for float16 or bfloat16
    # (NotImplementedError), refusals equiv's framework modules do not yet read as skips.
    return p.nd < 3 or p.dtype == "float32"


# TF excludes padding only under SAME and has no ceil_mode, JAX has no ceil_mode, torch has no SAME
# that excludes padding for an odd total: each refusal is a skip with its reason.
@case.variant(when=lambda p: p.op == "window" and _pooled_3d(p))
def native(fw, p, x):
    return _pool(fw, p, x, p.cip)


@case.variant(
    frameworks=["tensorflow"],
    when=lambda p: p.op == "window" and not p.ceil and isinstance(p.padding, str) and not p.cip
    and _pooled_3d(p),
)
def keras_layer(fw, p, x):
    return fw.pool_layer(x, "avg", _window(p), stride=p.s, padding=p.padding, layout=p.layout)


@case.variant(when=lambda p: p.op == "global")
def global_avg(fw, p, x):
    return fw.global_avg_pool(x, layout=p.layout)


def _pads_something(p):
    # SAME's total can be 0 (a 1-cell window, or windows that tile the input), as padding=0 is:
    # then no window holds a padded cell and both divisors agree.
    return any(map(any, oracle.padding_pairs(p.padding, tuple(_spatial(p)), _window(p), p.s)))


@case.variant(frameworks=["tensorflow", "jax"], expect="differs",
              when=lambda p: p.op == "window" and p.padding == "same" and p.cip and not p.ceil
              and _pads_something(p) and _pooled_3d(p),
              reason="SAME average pooling in TF/Keras excludes the padding; torch's default includes it")
def same_excludes_padding(fw, p, x):
    return _pool(fw, p, x, False)
