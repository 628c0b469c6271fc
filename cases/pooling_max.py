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

from equiv import Case, oracle, tolerance

window = {"op": ["window"], "layout": ["channels_last", "channels_first"], "nd": [1, 2], "k": [2, 3],
          "s": [1, 2], "padding": ["valid", "same", 1], "ceil": [False]}
ceil = {"op": ["window"], "layout": ["channels_first"], "nd": [1, 2], "k": [2, 3], "s": [2],
        "padding": ["valid", 1], "ceil": [True]}
global_ = {"op": ["global"], "layout": ["channels_last", "channels_first"], "nd": [1, 2]}
case = Case(grid=[window, ceil, global_], tolerance=tolerance.exact())


@case.inputs
def draw(rng, p):
    spatial = [7, 5][: p.nd]
    shape = (2, *spatial, 3) if p.layout == "channels_last" else (2, 3, *spatial)
    return {"x": -abs(rng.standard_normal(shape)) - 0.1}  # all negative: a padded 0 would win


@case.oracle
def expected(p, x):
    if p.op == "global":
        return oracle.global_max_pool(x, layout=p.layout)
    return oracle.max_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil, layout=p.layout)


@case.variant(when=lambda p: p.op == "window")
def native(fw, p, x):
    return fw.max_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil, layout=p.layout)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.op == "window" and not p.ceil and p.padding != 1)
def keras_layer(fw, p, x):
    return fw.pool_layer(x, "max", p.k, stride=p.s, padding=p.padding, layout=p.layout)


@case.variant(when=lambda p: p.op == "global")
def global_max(fw, p, x):
    return fw.global_max_pool(x, layout=p.layout)


def _zero_pad(fw, p, x):
    spatial = x.shape[1:-1] if p.layout == "channels_last" else x.shape[2:]
    pairs = oracle.padding_pairs(p.padding, tuple(spatial), (p.k,) * p.nd, p.s)
    return fw.pad(x, [(0, 0), *pairs, (0, 0)] if p.layout == "channels_last" else [(0, 0), (0, 0), *pairs])


@case.variant(expect="differs", when=lambda p: p.op == "window" and p.padding != "valid" and not p.ceil,
              reason="zero padding lets a padded 0 win the max of an all-negative border window")
def zero_padding_mistake(fw, p, x):
    return fw.max_pool(_zero_pad(fw, p, x), p.k, stride=p.s, padding="valid", layout=p.layout)
