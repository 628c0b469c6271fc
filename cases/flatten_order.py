"""A Dense after Flatten ports between layouts only with its rows permuted.

Claim: a channels_first model ends in Flatten -> Dense with weight W (C*H*W, F): torch.nn.Flatten
orders the features (C, H, W). Ported to channels_last (Keras' default), keras.layers.Flatten orders
them (H, W, C), so the same Dense gives the channels_first model's output only when W's rows are
permuted to (H, W, C) order: W.reshape(C, H, W, F).transpose(1, 2, 0, 3).reshape(C*H*W, F).
Quirk pinned: both Flattens keep the memory order of their layout; nothing in either framework
reorders the features for you, and the shapes match with or without the permutation.
Known non-equivalences: the ported model with W's rows left in (C, H, W) order (the classic "agrees
up to Flatten, then diverges"); and keras.layers.Flatten(data_format="channels_first") on the
channels_first input, which moves the channels last before flattening, so even a channels_first
Keras model needs torch's Dense rows permuted.
"""

from equiv import Case, oracle

case = Case(grid={"C": [3], "H": [4, 5], "W": [2, 6], "F": [7]}, output_layout="channels_last")


@case.inputs
def draw(rng, p):
    return {"x": rng.standard_normal((2, p.C, p.H, p.W)),  # the channels_first model's input
            "w": rng.standard_normal((p.C * p.H * p.W, p.F)), "b": rng.standard_normal(p.F)}


@case.oracle
def expected(p, x, w, b):
    return oracle.dense(oracle.flatten(x, layout="channels_first"), w, b)


@case.variant
def channels_first_model(fw, p, x, w, b):
    return fw.dense(fw.flatten_layer(x), w, b)


def _ported(fw, p, x, w, b, *, permute_rows):
    x_last = fw.transpose(x, (0, 2, 3, 1))  # the same image, stored (N, H, W, C)
    if permute_rows:  # rows (c, h, w) -> (h, w, c)
        w = fw.reshape(fw.transpose(fw.reshape(w, (p.C, p.H, p.W, p.F)), (1, 2, 0, 3)), (-1, p.F))
    return fw.dense(fw.flatten_layer(x_last), w, b)


@case.variant
def ported_with_rows_permuted(fw, p, x, w, b):
    return _ported(fw, p, x, w, b, permute_rows=True)


@case.variant(expect="differs", reason="Dense rows left in (C, H, W) order after a channels_last Flatten")
def ported_without_permuting_rows(fw, p, x, w, b):
    return _ported(fw, p, x, w, b, permute_rows=False)


@case.variant(frameworks=["tensorflow"], expect="differs",
              reason="Keras' channels_first Flatten orders the features (H, W, C), not (C, H, W)")
def keras_channels_first_flatten(fw, p, x, w, b):
    return fw.dense(fw.flatten_layer(x, data_format="channels_first"), w, b)
