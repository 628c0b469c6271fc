"""Half-precision convs, dense layers and reductions accumulate in float32 and round once.

Claim: on float16 and bfloat16 inputs each of these is the exact result on the rounded inputs
within float32 accumulation plus one rounding to the half dtype, gamma_K(2**-24)*sum|x||w| + u*|y|:
a conv summing K = 768 products, a dense layer (K = 1024), a conv's input gradient (768) and weight
gradient (1024), its bias gradient (the sum of 1024 cotangents), a transposed conv with dilation 2
and output_padding 1 (up to 640 terms: torch runs it outside mkldnn), a depthwise conv over 8x8
windows (64 terms per channel), an average pool over 64-cell windows and a global average over 1024
positions. Every
input is positive, so a kernel that sums in the half dtype (or rounds its partial sums to it) drifts
by about K*u/2 of the result and fails at every seed with the accumulation hint, never by chance.
The frameworks that do are known defects (cases/known_defects.toml).
"""

from equiv import Case, oracle, tolerance

TERMS = {"conv": 12 * 64, "dense": 1024, "input_grad": 12 * 64, "weight_grad": 2 * 512, "bias_grad": 2 * 512,
         "dilated_transpose": 64 * 10, "depthwise": 8 * 8, "avg_pool": 64, "global_avg": 32 * 32}
case = Case(grid={"op": list(TERMS)}, dtypes=("float16", "bfloat16"), output_layout="channels_last",
            # One op each, one stored result. A mean is K cells and a division (or a rounded reciprocal).
            tolerance=tolerance.derived(roundings=1, terms=lambda p: TERMS[p.op] + 2))
SHAPES = {"conv": {"x": (2, 16 + 11, 64), "w": (12, 64, 8)}, "dense": {"x": (4, 1024), "w": (1024, 8)},
          "input_grad": {"x": (2, 27, 4), "w": (12, 4, 64), "g": (2, 16, 64)},
          "weight_grad": {"x": (2, 514, 4), "w": (3, 4, 8), "g": (2, 512, 8)},
          "bias_grad": {"x": (2, 514, 4), "w": (3, 4, 8), "g": (2, 512, 8)}, "avg_pool": {"x": (2, 256, 4)},
          "dilated_transpose": {"x": (2, 64, 20), "w": (64, 8, 12)},  # channels_first: (N, C, L), (I, O, k)
          "depthwise": {"x": (2, 15, 15, 4), "w": (8, 8, 4, 1)},  # TF's depthwise filter: (kh, kw, C, M)
          "global_avg": {"x": (2, 32, 32, 4)}}
GRADIENT = {"input_grad": 0, "weight_grad": 1, "bias_grad": 2}  # (dx, dw, db)


@case.inputs
def draw(rng, p):
    return {name: rng.uniform(0.5, 1.5, shape) for name, shape in SHAPES[p.op].items()}


@case.oracle
def expected(p, x, w=None, g=None):
    if p.op == "conv":
        return oracle.conv(x, w, layout="channels_last")
    if p.op == "dense":
        return oracle.dense(x, w)
    if p.op in GRADIENT:
        return oracle.conv_vjp(x, w, g, layout="channels_last")[GRADIENT[p.op]]
    if p.op == "dilated_transpose":
        return oracle.conv_transpose(x, w, dilation=2, output_padding=1, layout="channels_first")
    if p.op == "depthwise":  # groups = C, output channel c uses w[:, :, c, 0]
        return oracle.conv(x, w.reshape(8, 8, 1, 4), groups=4, layout="channels_last")
    if p.op == "avg_pool":
        return oracle.avg_pool(x, 64, layout="channels_last")
    return oracle.global_avg_pool(x, layout="channels_last")


@case.variant(when=lambda p: p.op == "conv")
def conv(fw, p, x, w):
    return fw.conv(x, w, layout="channels_last")


@case.variant(when=lambda p: p.op == "dense")
def dense(fw, p, x, w):
    return fw.dense(x, w)


@case.variant(when=lambda p: p.op in GRADIENT)
def gradient(fw, p, x, w, g):
    return fw.conv_vjp(x, w, g, layout="channels_last")[GRADIENT[p.op]]


@case.variant(when=lambda p: p.op == "dilated_transpose")
def dilated_transpose(fw, p, x, w):
    return fw.conv_transpose(x, w, dilation=2, output_padding=1, layout="channels_first")


@case.variant(when=lambda p: p.op == "depthwise")
def depthwise(fw, p, x, w):
    return fw.depthwise_conv(x, w, layout="channels_last")


@case.variant(when=lambda p: p.op == "avg_pool")
def avg_pool(fw, p, x):
    return fw.avg_pool(x, 64, layout="channels_last")


@case.variant(when=lambda p: p.op == "global_avg")
def global_avg(fw, p, x):
    return fw.global_avg_pool(x, layout="channels_last")
