"""A depthwise conv is a grouped conv with groups = channels; separable = depthwise, then 1x1.

Claim: with C input channels and channel multiplier M, TF's tf.nn.depthwise_conv2d with filter
(kh, kw, C, M) equals a conv with groups=C (torch groups=, lax feature_group_count=) whose output
channel c*M + m uses filter[:, :, c, m], i.e. the filter reshaped row-major to (kh, kw, 1, C*M)
(torch: permuted to (C*M, 1, kh, kw)). tf.nn.separable_conv2d with pointwise filter (1, 1, C*M, C_OUT)
equals that depthwise conv followed by a 1x1 conv. Both layouts, stride, dilation, SAME.
Known non-equivalence: ordering the output channels m*C + c (reshaping the filter as (M, C), a
common porting slip) permutes the channels whenever M > 1.
"""

from equiv import Case, oracle, tolerance

depthwise = {"op": ["depthwise"], "layout": ["channels_last", "channels_first"], "M": [1, 2], "s": [1, 2],
             "d": [1, 2], "padding": ["valid", "same"]}
separable = {"op": ["separable"], "layout": ["channels_last"], "M": [1, 2], "s": [1, 2], "d": [1, 2],
             "padding": ["valid", "same"]}
# Separable stores three results in half precision: the depthwise output, the pointwise conv's and
# the bias add's.
case = Case(grid=[depthwise, separable], where=lambda p: not (p.s > 1 and p.d > 1),
            tolerance=tolerance.derived(roundings=3))
C, C_OUT = 3, 4


def _grouped(w, layout):
    """(kh, kw, C, M) -> the groups=C conv weight in `layout` (NumPy)."""
    w_last = w.reshape(*w.shape[:2], 1, -1)
    return w_last if layout == "channels_last" else w_last.transpose(3, 2, 0, 1)


@case.inputs
def draw(rng, p):
    x_shape = (2, 8, 7, C) if p.layout == "channels_last" else (2, C, 8, 7)
    inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((3, 3, C, p.M))}
    if p.op == "separable":
        inputs["pw"] = rng.standard_normal((1, 1, C * p.M, C_OUT))
        inputs["b"] = rng.standard_normal(C_OUT)
    else:
        inputs["b"] = rng.standard_normal(C * p.M)
    return inputs


@case.oracle
def expected(p, x, w, b, pw=None):
    if p.op == "depthwise":
        return oracle.conv(x, _grouped(w, p.layout), b, stride=p.s, padding=p.padding, dilation=p.d, groups=C,
                           layout=p.layout)
    mid = oracle.conv(x, _grouped(w, p.layout), stride=p.s, padding=p.padding, dilation=p.d, groups=C,
                      layout=p.layout)
    return oracle.conv(mid, pw, b, layout=p.layout)


@case.variant(when=lambda p: p.op == "depthwise")
def depthwise_conv(fw, p, x, w, b):
    return fw.depthwise_conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


@case.variant(expect="differs", when=lambda p: p.op == "depthwise" and p.M > 1,
              reason="output channel c*M + m, not m*C + c: reshape the filter as (C, M), never (M, C)")
def channel_order_mistake(fw, p, x, w, b):
    swapped = fw.reshape(fw.transpose(w, (0, 1, 3, 2)), (3, 3, C, p.M))  # (kh, kw, M, C) read as (C, M)
    return fw.depthwise_conv(x, swapped, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.op == "separable")
def tf_separable_conv2d(fw, p, x, w, b, pw):
    return fw.separable_conv(x, w, pw, b, stride=p.s, padding=p.padding, dilation=p.d)


@case.variant(when=lambda p: p.op == "separable")
def depthwise_then_pointwise(fw, p, x, w, b, pw):
    mid = fw.depthwise_conv(x, w, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return fw.conv(mid, pw, b, layout=p.layout)
