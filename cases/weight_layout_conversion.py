"""A weight converted from PyTorch's layout to Keras' (and to JAX's, through dimension_numbers) gives
the same layer output.

Claim: a torch model's conv (OIHW), transposed conv ((I, O, kh, kw)), depthwise conv
((C*M, 1, kh, kw), groups=C) and Linear ((out, in)) port to channels_last as
- conv: w.permute(2, 3, 1, 0) -> HWIO (Keras Conv2D, lax with ("NHWC", "HWIO", "NHWC"));
- transposed: w.permute(2, 3, 1, 0) -> (kh, kw, O, I) (Keras Conv2DTranspose);
- depthwise: w.reshape(C, M, kh, kw).permute(2, 3, 0, 1) -> (kh, kw, C, M) (Keras DepthwiseConv2D);
- Linear: w.T -> (in, out) (Keras Dense),
and the channels_last result, moved back to NCHW, equals the torch model's.
Keras' own layers (Conv2D, Conv2DTranspose, Dense) take the converted weights through set_weights.
Known non-equivalences: a reshape of the weight to the target shape instead of the permute (same
shape, scrambled taps and channels); the depthwise weight reshaped (M, C) instead of (C, M), which
permutes the channels when M > 1.
"""

from equiv import Case, oracle

C, M, OUT, K = 3, 2, 4, 3
case = Case(grid={"kind": ["conv", "conv_transpose", "depthwise", "dense"]}, output_layout="channels_first")
TORCH_SHAPE = {"conv": (OUT, C, K, K), "conv_transpose": (C, OUT, K, K), "depthwise": (C * M, 1, K, K),
               "dense": (OUT, C)}
KERAS_SHAPE = {"conv": (K, K, C, OUT), "conv_transpose": (K, K, OUT, C), "depthwise": (K, K, C, M),
               "dense": (C, OUT)}


@case.inputs
def draw(rng, p):
    x = rng.standard_normal((2, C) if p.kind == "dense" else (2, C, 6, 5))  # the torch model's input
    n_out = C * M if p.kind == "depthwise" else OUT
    return {"x": x, "w": rng.standard_normal(TORCH_SHAPE[p.kind]), "b": rng.standard_normal(n_out)}


@case.oracle
def expected(p, x, w, b):  # the torch model, channels_first
    if p.kind == "conv":
        return oracle.conv(x, w, b, layout="channels_first")
    if p.kind == "conv_transpose":
        return oracle.conv_transpose(x, w, b, stride=2, layout="channels_first")
    if p.kind == "depthwise":
        return oracle.conv(x, w, b, groups=C, layout="channels_first")
    return oracle.dense(x, w.T, b)


def _keras_weight(fw, p, w, *, permute=True, depthwise_order=(C, M)):
    if p.kind == "dense":
        return fw.transpose(w, (1, 0)) if permute else fw.reshape(w, KERAS_SHAPE["dense"])
    if not permute:
        return fw.reshape(w, KERAS_SHAPE[p.kind])
    if p.kind == "depthwise":
        w = fw.reshape(w, (*depthwise_order, K, K))
        return fw.transpose(w, (2, 3, 0, 1)) if depthwise_order == (C, M) else fw.transpose(w, (2, 3, 1, 0))
    return fw.transpose(w, (2, 3, 1, 0))


def _channels_last_model(fw, p, x, w, b):
    if p.kind == "dense":
        return fw.dense(x, w, b)
    x_last = fw.transpose(x, (0, 2, 3, 1))
    if p.kind == "conv":
        y = fw.conv(x_last, w, b, layout="channels_last")
    elif p.kind == "conv_transpose":
        y = fw.conv_transpose(x_last, w, b, stride=2, layout="channels_last")
    else:
        y = fw.depthwise_conv(x_last, w, b, layout="channels_last")
    return fw.transpose(y, (0, 3, 1, 2))


@case.variant
def permuted_to_channels_last(fw, p, x, w, b):
    return _channels_last_model(fw, p, x, _keras_weight(fw, p, w), b)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.kind != "depthwise")
def keras_layer_with_set_weights(fw, p, x, w, b):  # Conv2D / Conv2DTranspose / Dense take these layouts
    wk = _keras_weight(fw, p, w)
    if p.kind == "dense":
        return fw.dense_layer(x, wk, b)
    x_last = fw.transpose(x, (0, 2, 3, 1))
    y = fw.conv_layer(x_last, wk, b) if p.kind == "conv" else fw.conv_transpose_layer(x_last, wk, b, stride=2)
    return fw.transpose(y, (0, 3, 1, 2))


@case.variant(expect="differs", reason="a reshape to the target shape is not the permute")
def reshaped_not_permuted(fw, p, x, w, b):
    return _channels_last_model(fw, p, x, _keras_weight(fw, p, w, permute=False), b)


@case.variant(when=lambda p: p.kind == "depthwise", expect="differs",
              reason="torch's C*M depthwise channels are channel-major: reshaping them (M, C) permutes them")
def depthwise_multiplier_major(fw, p, x, w, b):
    return _channels_last_model(fw, p, x, _keras_weight(fw, p, w, depthwise_order=(M, C)), b)
