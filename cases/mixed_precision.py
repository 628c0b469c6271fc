"""torch autocast, Keras' mixed policies and JAX's preferred_element_type compute a conv layer the
same way in float16 and bfloat16, and differ in the dtype they return.

Claim: from float32 data and weights, each policy casts x, w and b to the compute dtype (the oracle
rounds the inputs there), accumulates the conv in float32 and rounds its result to the compute dtype;
torch.autocast (bfloat16 on CPU, float16 too) and a Keras layer under mixed_float16/mixed_bfloat16
return the compute dtype, JAX (conv with preferred_element_type=float32, the float32 bias added in
float32) returns float32. Ported to one output dtype (`out`), with a cast, all three agree: at
out=half the result is the compute dtype's, so a float16 result beyond 65504 is inf in every
framework (the oracle's too: oracle.overflow), and at out=float32 a float32 array.
Known non-equivalences: autocast's and Keras' output taken as float32 without a cast (it is the
compute dtype); and in float16, the cast up comes after the overflow: inf where JAX's float32 output
(and bfloat16 everywhere) stays finite.
"""

from equiv import Case, conv_inputs, oracle

HALF = ("float16", "bfloat16")
case = Case(grid={"nd": [1, 2], "scale": ["unit", "overflow"], "out": ["half", "float32"]}, dtypes=HALF,
            output_layout="channels_last", output_dtype=lambda p: p.dtype if p.out == "half" else "float32")


def _overflows(p):
    return p.scale == "overflow" and p.dtype == "float16"


@case.inputs
def draw(rng, p):
    xs = conv_inputs(rng, layout="channels_last", spatial=[9, 7][: p.nd], kernel=[3] * p.nd, channels=4,
                     out_channels=4)
    if p.scale == "overflow":  # every product ~1e4, summed 12 or 36 times: past 65504, inside bfloat16
        xs = {k: rng.uniform(80, 120, v.shape) for k, v in xs.items()}
    return xs


@case.oracle
def expected(p, x, w, b):
    y = oracle.conv(x, w, b, layout="channels_last")
    return oracle.overflow(y, p.dtype) if p.out == "half" else y


def _policy(fw, p, x, w, b):
    """The policy's own output, from float32 inputs (the runner hands them over in the item dtype)."""
    x, w, b = (fw.cast(a, "float32") for a in (x, w, b))
    return fw.mixed_precision_conv(x, w, b, compute=p.dtype, layout="channels_last")


@case.variant(when=lambda p: p.out == "half")
def ported_to_half_output(fw, p, x, w, b):
    return fw.cast(_policy(fw, p, x, w, b), p.dtype)


@case.variant(frameworks=["jax"], when=lambda p: p.out == "float32")
def jax_float32_output(fw, p, x, w, b):
    return _policy(fw, p, x, w, b)


@case.variant(frameworks=["torch", "tensorflow"], when=lambda p: p.out == "float32" and not _overflows(p))
def half_output_cast_to_float32(fw, p, x, w, b):
    return fw.cast(_policy(fw, p, x, w, b), "float32")


@case.variant(frameworks=["torch", "tensorflow"], when=_overflows, expect="differs",
              reason="autocast and mixed_float16 round the conv to float16 before any cast up: past 65504 "
                     "it is inf, where JAX's float32 output and bfloat16 stay finite")
def float16_overflow_before_the_cast(fw, p, x, w, b):
    return fw.cast(_policy(fw, p, x, w, b), "float32")


@case.variant(frameworks=["torch", "tensorflow"], when=lambda p: p.out == "float32", expect="differs",
              reason="autocast and Keras' mixed policies return the compute dtype, not float32 as JAX's "
                     "preferred_element_type does: a port that expects float32 needs the cast")
def half_output_taken_as_float32(fw, p, x, w, b):
    return _policy(fw, p, x, w, b)
