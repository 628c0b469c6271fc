"""Max pooling pads with -inf: a padded cell never wins, whatever the framework's padding spelling.

Claim: TF's tf.nn.max_pool(padding="SAME") and Keras MaxPooling*D, JAX's lax.reduce_window(-inf,
max) with SAME pairs, torch's F.max_pool*d(padding=p) (and an explicit -inf F.pad for SAME's odd
total) and torch's ceil_mode=True (TF and JAX have no ceil_mode: skipped with that reason) all equal
the oracle's max over the window with padding = -inf, exactly (max only moves data). Global max
pooling (a reduce_max over the spatial axes) too. Inputs are all negative, so a border window that
wrongly saw a 0 would be caught.
Known non-equivalence: padding with zeros (F.pad / tf.pad / jnp.pad, then VALID) makes every
all-negative border window return 0.
"""

from equiv import Case, fuzz, oracle, tolerance

window = {"op": ["window"], "layout": ["channels_last", "channels_first"], "nd": [1, 2], "k": [2, 3],
          "s": [1, 2], "padding": ["valid", "same", 1], "ceil": [False]}
ceil = {"op": ["window"], "layout": ["channels_first"], "nd": [1, 2], "k": [2, 3], "s": [2],
        "padding": ["valid", 1], "ceil": [True]}
global_ = {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": [1, 2]}
SPATIAL = [7, 5]
# Off the grid: the window per axis, the input length per axis (L), the channels (C) and the batch
# (N); 1- to 3-D.
LONGEST = {1: 40, 2: 16, 3: 8}  # per axis: modest shapes keep a draw fast


def _window(p):
    return tuple(p.k) if isinstance(p.k, tuple) else (p.k,) * p.nd


def _paddings(p):
    # An int pads both ends; torch refuses more than half the window ("pad should be at most half of
    # effective kernel size"): a window of padding alone has no max.
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
     "k": fuzz.per_axis(range(1, 8)), "s": range(1, 5), "padding": _paddings, "ceil": [False, True],
     "L": _lengths, "C": range(1, 10), "N": range(1, 4)},
    {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": range(1, 4),
     "L": lambda p: fuzz.per_axis(range(1, LONGEST[p.nd] + 1))(p), "C": range(1, 10), "N": range(1, 4)},
]
# Each domain widens the grid space sharing the most parameters with it (fuzz.domains): the global
# domain widens global_, whose parameters window shares too but without window's k, s and padding.
case = Case(grid=[global_, window, ceil], domain=domain, tolerance=tolerance.exact())


@case.inputs
def draw(rng, p):
    spatial, c, n = p.get("L", SPATIAL[: p.nd]), p.get("C", 3), p.get("N", 2)
    shape = (n, *spatial, c) if p.layout == "channels_last" else (n, c, *spatial)
    return {"x": -abs(rng.standard_normal(shape)) - 0.1}  # all negative: a padded 0 would win


@case.oracle
def expected(p, x):
    if p.op == "global":
        return oracle.global_max_pool(x, layout=p.layout)
    return oracle.max_pool(x, _window(p), stride=p.s, padding=p.padding, ceil_mode=p.ceil, layout=p.layout)


def _pooled_3d(p):
    # TensorFlow registers no CPU MaxPool3D for float64 or float16 (NotFoundError, "not in the list of
    # allowed values"), refusals equiv.frameworks.tensorflow does not yet read as a skip: 3-D windows
    # are drawn in float32 and bfloat16 only until it does.
    return p.nd < 3 or p.dtype in ("float32", "bfloat16")


@case.variant(when=lambda p: p.op == "window" and _pooled_3d(p))
def native(fw, p, x):
    return fw.max_pool(x, _window(p), stride=p.s, padding=p.padding, ceil_mode=p.ceil, layout=p.layout)


@case.variant(frameworks=["tensorflow"],
              when=lambda p: p.op == "window" and not p.ceil and isinstance(p.padding, str) and _pooled_3d(p))
def keras_layer(fw, p, x):
    return fw.pool_layer(x, "max", _window(p), stride=p.s, padding=p.padding, layout=p.layout)


@case.variant(when=lambda p: p.op == "global")
def global_max(fw, p, x):
    return fw.global_max_pool(x, layout=p.layout)


def _pairs(p, spatial):
    return oracle.padding_pairs(p.padding, tuple(spatial), _window(p), p.s)


def _zero_pad(fw, p, x):
    spatial = x.shape[1:-1] if p.layout == "channels_last" else x.shape[2:]
    pairs = _pairs(p, spatial)
    return fw.pad(x, [(0, 0), *pairs, (0, 0)] if p.layout == "channels_last" else [(0, 0), (0, 0), *pairs])


def _pads_something(p):
    # SAME's total can be 0 (a 1-cell window, or windows that tile the input), as padding=0 is:
    # then no window holds a padded cell for a 0 to win.
    return any(map(any, _pairs(p, p.get("L", SPATIAL[: p.nd]))))


@case.variant(expect="differs",
              when=lambda p: p.op == "window" and p.padding != "valid" and not p.ceil and _pads_something(p)
              and _pooled_3d(p),
              reason="zero padding lets a padded 0 win the max of an all-negative border window")
def zero_padding_mistake(fw, p, x):
    return fw.max_pool(_zero_pad(fw, p, x), _window(p), stride=p.s, padding="valid", layout=p.layout)
