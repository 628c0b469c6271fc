"""ONNX's pooling ceil_mode and count_include_pad are torch's: the same windows and the same divisor.

Claim: MaxPool and AveragePool in ONNX Runtime with explicit begin/end `pads`, ceil_mode=1 and
count_include_pad=1 equal torch's F.max_pool*d / F.avg_pool*d with the same arguments and the oracle:
with ceil_mode the output length is ceil((L + pads - k)/s) + 1, less a last window that would start
inside the end padding, and taps past the padded extent never count; count_include_pad=1 divides by
the window's cells inside the padded extent (torch's default), 0 by the real cells only.
Known non-equivalence: AveragePool's count_include_pad defaults to 0 where torch's defaults to True,
so a graph written without the attribute averages a border window over fewer cells.
"""

from equiv import Case, oracle, tolerance

AVG = {"op": ["avg_pool"], "nd": [1, 2], "L": [7, 8], "k": [2, 3], "s": [2], "padding": [0, 1],
       "ceil": [False, True], "cip": [False, True]}
MAX = {**AVG, "op": ["max_pool"], "cip": [False]}


def _terms(p):
    return p.k**p.nd + 2  # a mean sums at most k**nd cells, then divides (a max moves data: exact)


# Window geometry and divisors: float32 and float16 (ORT has no float64 AveragePool kernel, no bfloat16).
case = Case(grid=[AVG, MAX], tolerance=tolerance.derived(terms=_terms), dtypes=("float32", "float16"))


@case.inputs
def draw(rng, p):
    return {"x": rng.standard_normal((2, 3, *[p.L, p.L - 1][: p.nd]))}


def _pool(fw_or_oracle, p, x, count_include_pad):
    if p.op == "max_pool":
        return fw_or_oracle.max_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil)
    return fw_or_oracle.avg_pool(x, p.k, stride=p.s, padding=p.padding, ceil_mode=p.ceil,
                                 count_include_pad=count_include_pad)


@case.oracle
def expected(p, x):
    return _pool(oracle, p, x, p.cip)


# TF and JAX have no ceil_mode (a skip with the reason); ORT's attributes and torch's arguments agree.
@case.variant
def ceil_mode_and_count_include_pad(fw, p, x):
    return _pool(fw, p, x, p.cip)


@case.variant(frameworks=["onnxruntime"], expect="differs",
              when=lambda p: p.op == "avg_pool" and p.cip and p.padding > 0,
              reason="AveragePool's count_include_pad defaults to 0; torch's avg_pool counts the padding")
def onnx_default_count_include_pad(fw, p, x):
    return _pool(fw, p, x, False)
