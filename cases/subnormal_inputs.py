"""Subnormal numbers survive a conv in torch and are flushed to zero by TensorFlow and JAX on CPU.

Claim: a conv whose inputs lie below the smallest normal number (float32 1.2e-38, float64 2.2e-308)
equals the oracle's gradual-underflow answer in torch, and in every framework in float16, whose
float32 accumulator holds float16's subnormals as normal numbers. TensorFlow's and XLA:CPU's threads
run with flush-to-zero and denormals-are-zero, so in float32 and float64 they return zeros: a known
non-equivalence, checked as one (jax-ml/jax#16200, "working as intended"; openxla/xla#22858 asks for
a switch). Quirk pinned: a torch model ported to TF or JAX loses every activation that small.
On CUDA no framework's handling has been measured yet: those results skip with that reason.
"""

from equiv import Case, Unsupported, conv_inputs, oracle

# Inputs scaled into each dtype's subnormal range (products with N(0, 1) weights stay there).
SCALE = {"float64": 2.0**-1040, "float32": 2.0**-135, "float16": 2.0**-18}
case = Case(grid={"layout": ["channels_last", "channels_first"], "L": [6, 9]},
            dtypes=("float64", "float32", "float16"))  # bfloat16 has float32's range: no kernel keeps it


@case.inputs
def draw(rng, p):
    xs = conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=3, bias=False)
    return {"x": xs["x"] * SCALE[p.dtype], "w": xs["w"]}


@case.oracle
def expected(p, x, w):
    return oracle.conv(x, w, layout=p.layout)


def _conv(fw, p, x, w):
    if p.device != "cpu":
        raise Unsupported("subnormal handling on CUDA is not measured yet")
    return fw.conv(x, w, layout=p.layout)


@case.variant(when=lambda p: p.dtype == "float16" or p.device != "cpu")
def kept_in_float16(fw, p, x, w):
    return _conv(fw, p, x, w)


@case.variant(frameworks=["torch"], when=lambda p: p.dtype != "float16" and p.device == "cpu")
def kept_by_torch(fw, p, x, w):
    return _conv(fw, p, x, w)


@case.variant(frameworks=["tensorflow", "jax"], when=lambda p: p.dtype != "float16" and p.device == "cpu",
              expect="differs", reason="TensorFlow and XLA:CPU flush subnormals to zero (FTZ/DAZ)")
def flushed_by_tensorflow_and_jax(fw, p, x, w):
    return _conv(fw, p, x, w)
