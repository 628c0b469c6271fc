"""A depthwise conv is a grouped conv with groups = channels; separable = depthwise, then 1x1.

Claim: with C input channels and channel multiplier M, TF's tf.nn.depthwise_conv2d with filter
(kh, kw, C, M) equals a conv with groups=C (torch groups=, lax feature_group_count=) whose output
channel c*M + m uses filter[:, :, c, m], i.e. the filter reshaped row-major to (kh, kw, 1, C*M)
(torch: permuted to (C*M, 1, kh, kw)). tf.nn.separable_conv2d with pointwise filter (1, 1, C*M, C_OUT)
equals that depthwise conv followed by a 1x1 conv. Both layouts, stride, dilation, SAME.
Known non-equivalence: ordering the output channels m*C + c (reshaping the filter as (M, C), a
common porting slip) permutes the channels whenever M > 1.
"""

from equiv import Case, fuzz, oracle, tolerance

depthwise = {"op": ["depthwise"], "layout": ["channels_last", "channels_first"], "M": [1, 2], "s": [1, 2],
             "d": [1, 2], "padding": ["valid", "same"]}
separable = {"op": ["separable"], "layout": ["channels_last"], "M": [1, 2], "s": [1, 2], "d": [1, 2],
             "padding": ["valid", "same"]}
C, C_OUT = 3, 4
# Off the grid: the kernel per axis (k), the input's (H, W) (L), the input channels (C), the pointwise
# conv's outputs (C_OUT) and the batch (N). tf.nn.depthwise_conv2d is 2-D only.
TWO = {"nd": 2}  # fuzz.per_axis reads the number of axes from the point; this claim is 2-D


def _extent(p):
    return [(k - 1) * p.d + 1 for k in p.k]


def _lengths(p):
    """(H, W) up to 16; VALID needs the dilated kernel inside the input, so it draws from there up."""
    from hypothesis import strategies as st  # only a fuzz run draws lengths

    lows = _extent(p) if p.padding == "valid" else [1, 1]
    return st.tuples(*(st.integers(low, max(low, 16)) for low in lows))


def _dilations(p):
    return range(1, 5) if p.s == 1 else [1]  # stride and dilation stay apart: see where= below


domain = [
    {"op": ["depthwise"], "layout": ["channels_last", "channels_first"], "M": range(1, 4), "s": range(1, 5),
     "d": _dilations, "padding": ["valid", "same"], "k": lambda p: fuzz.per_axis(range(1, 8))(TWO),
     "L": _lengths, "C": range(1, 10), "N": range(1, 4)},
    {"op": ["separable"], "layout": ["channels_last"], "M": range(1, 4), "s": range(1, 5),
     "d": _dilations, "padding": ["valid", "same"], "k": lambda p: fuzz.per_axis(range(1, 8))(TWO),
     "L": _lengths, "C": range(1, 10), "C_OUT": range(1, 10), "N": range(1, 4)},
]
# A point fuzzing found, a mistake of this file, fixed (replayed on every run): every tap of the (1, 2)
# kernel dilated by 2 lands in SAME's padding of a 1x1 input, so channel_order_mistake cannot differ.
found = {"op": ["depthwise"], "layout": ["channels_last"], "M": [2], "s": [1], "d": [2], "padding": ["same"],
         "k": [(1, 2)], "L": [(1, 1)], "C": [2], "N": [1]}
# Stride and dilation stay apart: tf.nn.depthwise_conv2d and separable_conv2d given both only warn
# ("all values of strides must be 1") and return a wrong answer, not an error (a TensorFlow defect
# with no known-defect entry yet).
# Separable stores three results in half precision: the depthwise output, the pointwise conv's and
# the bias add's.
case = Case(grid=[depthwise, separable, found], domain=domain, where=lambda p: not (p.s > 1 and p.d > 1),
            tolerance=tolerance.derived(roundings=3))


def _grouped(w, layout):
    """(kh, kw, C, M) -> the groups=C conv weight in `layout` (NumPy)."""
    w_last = w.reshape(*w.shape[:2], 1, -1)
    return w_last if layout == "channels_last" else w_last.transpose(3, 2, 0, 1)


@case.inputs
def draw(rng, p):
    n, (h, w_), c, kernel = p.get("N", 2), p.get("L", (8, 7)), p.get("C", C), p.get("k", (3, 3))
    x_shape = (n, h, w_, c) if p.layout == "channels_last" else (n, c, h, w_)
    inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((*kernel, c, p.M))}
    if p.op == "separable":
        inputs["pw"] = rng.standard_normal((1, 1, c * p.M, p.get("C_OUT", C_OUT)))
        inputs["b"] = rng.standard_normal(p.get("C_OUT", C_OUT))
    else:
        inputs["b"] = rng.standard_normal(c * p.M)
    return inputs


@case.oracle
def expected(p, x, w, b, pw=None):
    c = w.shape[2]
    if p.op == "depthwise":
        return oracle.conv(x, _grouped(w, p.layout), b, stride=p.s, padding=p.padding, dilation=p.d, groups=c,
                           layout=p.layout)
    mid = oracle.conv(x, _grouped(w, p.layout), stride=p.s, padding=p.padding, dilation=p.d, groups=c,
                      layout=p.layout)
    return oracle.conv(mid, pw, b, layout=p.layout)


@case.variant(when=lambda p: p.op == "depthwise")
def depthwise_conv(fw, p, x, w, b):
    return fw.depthwise_conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


def _sees_input(p):
    """Whether some tap of some window lands on the input: under SAME a dilated kernel on a short
    input may see only padding, and then every output is the bias, whatever the filter."""
    for length, k in zip(p.get("L", (8, 7)), p.get("k", (3, 3)), strict=True):
        before = oracle.padding_pairs(p.padding, [length], [k], p.s, p.d)[0][0]
        (out,) = oracle.conv_output_shape([length], [k], stride=p.s, padding=p.padding, dilation=p.d)
        if not any(0 <= i * p.s - before + j * p.d < length for i in range(out) for j in range(k)):
            return False
    return True


# With one input channel the two orders are one order: the mistake needs C > 1 as well as M > 1,
# and a filter tap that reaches the input.
@case.variant(expect="differs",
              when=lambda p: p.op == "depthwise" and p.M > 1 and p.get("C", C) > 1 and _sees_input(p),
              reason="output channel c*M + m, not m*C + c: reshape the filter as (C, M), never (M, C)")
def channel_order_mistake(fw, p, x, w, b):
    kh, kw, c, m = w.shape
    swapped = fw.reshape(fw.transpose(w, (0, 1, 3, 2)), (kh, kw, c, m))  # (kh, kw, M, C) read as (C, M)
    return fw.depthwise_conv(x, swapped, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


@case.variant(frameworks=["tensorflow"], when=lambda p: p.op == "separable")
def tf_separable_conv2d(fw, p, x, w, b, pw):
    return fw.separable_conv(x, w, pw, b, stride=p.s, padding=p.padding, dilation=p.d)


@case.variant(when=lambda p: p.op == "separable")
def depthwise_then_pointwise(fw, p, x, w, b, pw):
    mid = fw.depthwise_conv(x, w, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return fw.conv(mid, pw, b, layout=p.layout)
