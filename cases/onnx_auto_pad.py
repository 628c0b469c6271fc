"""ONNX's auto_pad=SAME_UPPER is TensorFlow's SAME; SAME_LOWER puts the odd pixel at the start.

Claim: a Conv, MaxPool or AveragePool (count_include_pad=0) in ONNX Runtime with auto_pad=SAME_UPPER,
which is how equiv spells padding="same" there, equals TF's and JAX's native "SAME" and the oracle:
each axis padded by total = max((ceil(L/s) - 1)*s + k - L, 0), total//2 before and the odd pixel
after, and an average over the real cells only; auto_pad=SAME_LOWER equals JAX's "SAME_LOWER", the
odd pixel before. Every framework also runs the same padding spelled out (ONNX's begin/end `pads`).
Known non-equivalence: SAME_LOWER where TF's SAME was meant, as a hand-built or converted graph may
write it, is a pixel off wherever the total padding is odd.
"""

from equiv import Case, conv_inputs, oracle, tolerance

ONE_D = {"op": ["conv", "max_pool", "avg_pool"], "nd": [1], "L": [7, 8], "k": [2, 3], "s": [1, 2],
         "auto_pad": ["SAME_UPPER", "SAME_LOWER"]}
TWO_D = {**ONE_D, "nd": [2], "L": [8], "k": [3], "s": [2]}
PADDING = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower"}  # equiv's (the oracle's) names for them
C = 2


def _terms(p):
    # A conv sums k**nd * C products and its bias; a mean sums at most k**nd cells and divides (+ 2).
    return p.k**p.nd * C + 1 if p.op == "conv" else p.k**p.nd + 2


# ORT refuses auto_pad with a dilation > 1 (every spelling here has d = 1). A claim about where the
# padding goes: float32 and float16 (ORT has no float64 Conv or AveragePool kernel, and no bfloat16).
case = Case(grid=[ONE_D, TWO_D], output_layout="channels_last", tolerance=tolerance.derived(terms=_terms),
            dtypes=("float32", "float16"))


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout="channels_last", spatial=[p.L, p.L + 1][: p.nd], kernel=[p.k] * p.nd,
                       channels=C, out_channels=3)


def _run(fw_or_oracle, p, x, w, b, padding):
    if p.op == "conv":
        return fw_or_oracle.conv(x, w, b, stride=p.s, padding=padding, layout="channels_last")
    pool = fw_or_oracle.max_pool if p.op == "max_pool" else fw_or_oracle.avg_pool
    return pool(x, p.k, stride=p.s, padding=padding, layout="channels_last")


@case.oracle
def expected(p, x, w, b):
    return _run(oracle, p, x, w, b, PADDING[p.auto_pad])


@case.variant(frameworks=["onnxruntime", "tensorflow", "jax"],
              when=lambda p: p.auto_pad == "SAME_UPPER")
def same_upper_and_native_same(fw, p, x, w, b):
    return _run(fw, p, x, w, b, "same")  # ORT: auto_pad="SAME_UPPER"; tf.nn and lax: "SAME"


@case.variant(frameworks=["onnxruntime", "jax"], when=lambda p: p.auto_pad == "SAME_LOWER")
def same_lower(fw, p, x, w, b):
    return _run(fw, p, x, w, b, "same_lower")  # ORT: auto_pad="SAME_LOWER"; lax: "SAME_LOWER"


@case.variant
def explicit_begin_end_pads(fw, p, x, w, b):
    lower = p.auto_pad == "SAME_LOWER"
    return _run(fw, p, x, w, b, [oracle.same_padding(n, p.k, p.s, lower=lower) for n in x.shape[1:-1]])


def _odd_total(p):
    return any(sum(oracle.same_padding(n, p.k, p.s)) % 2 for n in [p.L, p.L + 1][: p.nd])


@case.variant(frameworks=["onnxruntime", "jax"], expect="differs",
              when=lambda p: p.auto_pad == "SAME_UPPER" and _odd_total(p),
              reason="SAME_LOWER puts the odd pixel of padding at the start, TF's SAME at the end")
def same_lower_where_same_was_meant(fw, p, x, w, b):
    return _run(fw, p, x, w, b, "same_lower")
