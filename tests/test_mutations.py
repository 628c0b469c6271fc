"""Mutation self-test: planted mistakes must turn red, through the machinery the real cases use.

Each mutant is a small case file written into a pytester directory (`cases/mutant_<name>.py`, built
like the files in `cases/`: `Case`, `conv_inputs`, `oracle`), collected and run by the real equiv
plugin in-process. Its oracle states the correct claim; two kinds of variant compute it:

* `correct`: the right computation, which must PASS (so the case file, its oracle and its inputs are
  sound and a red mutant is red because of the mistake, not because the file is broken);
* `mutant...`: a deliberately wrong implementation of a real convention, which must FAIL, with the
  failure kind it should have (numbers beyond the bound, a shape, a non-finite value, an error) and,
  where the diagnostics know the pattern, the hint that names the mistake.

One more mutant breaks a framework mapping instead of a case: the PyTorch module's asymmetric (SAME)
padding is made symmetric and the real `cases/same_padding_with_stride.py` is run, so PyTorch's
items that need an asymmetric pad turn red while JAX's stay green; likewise ONNX Runtime's SAME
spelled auto_pad=SAME_LOWER, on the real `cases/onnx_auto_pad.py`. The other kinds of check are
planted too: a known difference that is not observed, a known refusal that does not raise, a shape
mismatch, and a 1-ulp change under the `exact` tolerance.

`tests/conftest.py` prints "mutation self-test: N of M planted mistakes caught" at the end of a run.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from equiv import frameworks, runner
from equiv.records import results_of

ROOT = Path(__file__).resolve().parents[1]

# Common head of every mutant case file; `_native` brings a NumPy array back into the framework
# (the mutants run on the CPU only), for mistakes no framework-neutral op spells (flip, tile, NaN).
HEADER = '''\
import numpy as np

from equiv import Case, conv_inputs, oracle, tolerance


def _native(fw, a):
    return fw.asarray(np.ascontiguousarray(a), "cpu")
'''

BEYOND = "elements beyond the allowed error"  # CaseFailure text of a numeric mismatch


@dataclass(frozen=True)
class Mutant:
    name: str
    frameworks: tuple[str, ...]
    source: str  # the case file after HEADER; starts with its docstring
    shows: str  # regex every mutant item's failure text must match: the kind of failure
    hint: str | None = None  # substring every mutant item's failure text must contain
    dtype: str = "float32"


def _src(docstring: str, body: str) -> str:
    return f'"""{docstring}"""\n\n{HEADER}\n' + textwrap.dedent(body)


MUTANTS: list[Mutant] = [
    Mutant(
        "torch_conv_weight_reshaped_to_hwio",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a torch OIHW conv weight ported to channels_last as w.reshape(kh, kw, I, O).",
            """
            case = Case(grid={"H": [6]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[p.H, 5], kernel=[3, 3], channels=2,
                                   out_channels=4)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_first")

            def _ported(fw, x, w_hwio, b):
                y = fw.conv(fw.transpose(x, (0, 2, 3, 1)), w_hwio, b, layout="channels_last")
                return fw.transpose(y, (0, 3, 1, 2))

            @case.variant
            def correct(fw, p, x, w, b):
                return _ported(fw, x, fw.transpose(w, (2, 3, 1, 0)), b)

            @case.variant
            def mutant(fw, p, x, w, b):
                return _ported(fw, x, fw.reshape(w, (3, 3, 2, 4)), b)
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "time_folded_into_channels",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a TimeDistributed(Conv1D) port that folds time into the channels, (N, L, T*C).",
            """
            case = Case(grid={"T": [3]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                xs = conv_inputs(rng, layout="channels_last", spatial=[6], kernel=[3], channels=2,
                                 out_channels=4, batch=2 * p.T)
                return {**xs, "x": xs["x"].reshape(2, p.T, 6, 2)}

            @case.oracle
            def expected(p, x, w, b):
                y = oracle.conv(x.reshape(2 * p.T, 6, 2), w, b, layout="channels_last")
                return y.reshape(2, p.T, 4, 4)

            @case.variant
            def correct(fw, p, x, w, b):
                y = fw.conv(fw.reshape(x, (2 * p.T, 6, 2)), w, b, layout="channels_last")
                return fw.reshape(y, (2, p.T, 4, 4))

            @case.variant
            def mutant(fw, p, x, w, b):  # every output sees every step: time summed with the channels
                x_tc = fw.reshape(fw.transpose(x, (0, 2, 1, 3)), (2, 6, p.T * 2))
                w_big = _native(fw, np.tile(fw.to_numpy(w), (1, p.T, p.T)))
                y = fw.conv(x_tc, w_big, _native(fw, np.tile(fw.to_numpy(b), p.T)), layout="channels_last")
                return fw.transpose(fw.reshape(y, (2, 4, p.T, 4)), (0, 2, 1, 3))
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "conv3d_same_padded_symmetrically",
        ("torch", "jax"),
        _src(
            "Mutant: a stride-2 SAME Conv3D ported with the symmetric padding k//2 on every axis.",
            """
            case = Case(grid={"W": [6]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[5, 5, p.W], kernel=[3, 3, 3],
                                   channels=2, out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, stride=2, padding="same", layout="channels_first")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding="same", layout="channels_first")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding=1, layout="channels_first")
            """,
        ),
        shows=BEYOND,
        hint="padding split on the wrong side",
    ),
    Mutant(
        "same_shape_as_symmetric_padding",
        ("torch", "jax"),  # Keras layers take no explicit padding
        _src(
            "Mutant: the shape of a stride-2 SAME conv, k = 4, taken from padding k//2 on both sides.",
            """
            case = Case(grid={"L": [8]}, tolerance=tolerance.exact(), dtypes=("float64",))

            @case.inputs
            def draw(rng, p):
                return {}

            @case.oracle
            def expected(p):
                out = oracle.conv_output_shape([p.L], [4], stride=2, padding="same")
                return np.array([2, *out, 5], float)

            def _shape(fw, p, padding):
                return np.array(fw.layer_output_shape("conv", (2, p.L, 3), kernel=4, filters=5, stride=2,
                                                      padding=padding), float)

            @case.variant
            def correct(fw, p):  # SAME here pads 2 in total: (1, 1)
                return _shape(fw, p, 1)

            @case.variant
            def mutant(fw, p):
                return _shape(fw, p, 2)
            """,
        ),
        shows=r"elements beyond the allowed error \(error_ratio inf; allowed: exact equality",
        dtype="float64",
    ),
    Mutant(
        "separable_counted_with_a_depthwise_bias",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a separable conv counted as a depthwise conv with a bias plus a 1x1 conv.",
            """
            case = Case(grid={"m": [2]}, tolerance=tolerance.exact(), dtypes=("float64",))

            @case.inputs
            def draw(rng, p):
                return {}

            @case.oracle
            def expected(p):
                return np.float64(oracle.separable_params((3, 3), 4, 6, depth_multiplier=p.m))

            def _count(fw, p, *, depthwise_bias):
                dw = fw.param_count("depthwise", nd=2, kernel=3, in_channels=4, out_channels=4 * p.m,
                                    depth_multiplier=p.m, bias=depthwise_bias)
                pw = fw.param_count("conv", nd=2, kernel=1, in_channels=4 * p.m, out_channels=6)
                return np.float64(dw + pw)

            @case.variant
            def correct(fw, p):
                return _count(fw, p, depthwise_bias=False)

            @case.variant
            def mutant(fw, p):
                return _count(fw, p, depthwise_bias=True)
            """,
        ),
        shows=r"elements beyond the allowed error \(error_ratio inf; allowed: exact equality",
        dtype="float64",
    ),
    Mutant(
        "fc_weight_reshaped_not_transposed",
        ("torch", "jax"),  # channels_first: TensorFlow's Eigen CPU kernels refuse NCHW
        _src(
            "Mutant: a Dense (k*k*C, F) ported to a channels_first k x k conv as W.reshape(F, C, k, k).",
            """
            case = Case(grid={"k": [2]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, 3, p.k, p.k)),
                        "w": rng.standard_normal((3 * p.k * p.k, 4)), "b": rng.standard_normal(4)}

            @case.oracle
            def expected(p, x, w, b):
                return oracle.dense(oracle.flatten(x, layout="channels_first"), w, b).reshape(2, 4, 1, 1)

            @case.variant
            def correct(fw, p, x, w, b):
                w_oihw = fw.reshape(fw.transpose(w, (1, 0)), (4, 3, p.k, p.k))
                return fw.conv(x, w_oihw, b, layout="channels_first")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, fw.reshape(w, (4, 3, p.k, p.k)), b, layout="channels_first")
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "dense_rows_not_permuted",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a channels_first Flatten -> Dense ported to channels_last with W's rows kept in "
            "(C, H, W) order.",
            """
            case = Case(grid={"H": [3]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, 2, p.H, 4)), "w": rng.standard_normal((2 * p.H * 4, 5)),
                        "b": rng.standard_normal(5)}

            @case.oracle
            def expected(p, x, w, b):
                return oracle.dense(oracle.flatten(x, layout="channels_first"), w, b)

            @case.variant
            def correct(fw, p, x, w, b):
                w_hwc = fw.reshape(fw.transpose(fw.reshape(w, (2, p.H, 4, 5)), (1, 2, 0, 3)), (-1, 5))
                return fw.dense(fw.flatten_layer(fw.transpose(x, (0, 2, 3, 1))), w_hwc, b)

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.dense(fw.flatten_layer(fw.transpose(x, (0, 2, 3, 1))), w, b)
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "axes_swapped_by_reshape",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: (N, A, B) -> (N, B, A) ported as a reshape instead of a permute.",
            """
            case = Case(grid={"A": [3]}, tolerance=tolerance.exact(), output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, p.A, 5))}

            @case.oracle
            def expected(p, x):
                return np.transpose(x, (0, 2, 1))

            @case.variant
            def correct(fw, p, x):
                return fw.permute_layer(x, (2, 1))

            @case.variant
            def mutant(fw, p, x):
                return fw.reshape(x, (2, 5, p.A))
            """,
        ),
        shows=r"elements beyond the allowed error \(error_ratio inf; allowed: exact equality",
    ),
    Mutant(
        "same_symmetric_stride2",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: SAME at stride 2 ported as the symmetric padding k//2 on both sides.",
            """
            case = Case(grid={"L": [8], "k": [3]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[p.k], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, stride=2, padding="same", layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding="same", layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding=p.k // 2, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="padding split on the wrong side",
    ),
    Mutant(
        "same_odd_pixel_wrong_side",
        ("torch", "jax"),
        _src(
            "Mutant: the odd SAME pixel padded at the start (SAME_LOWER) where SAME is asked, stride 1.",
            """
            case = Case(grid={"L": [8], "k": [2]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[p.k], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, padding="same", layout="channels_last")

            def _padded(fw, p, x, lower):
                pair = oracle.same_padding(p.L, p.k, lower=lower)
                return fw.pad(x, [(0, 0), pair, (0, 0)])

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(_padded(fw, p, x, lower=False), w, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(_padded(fw, p, x, lower=True), w, b, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="shifted by one",
    ),
    Mutant(
        "reshape_not_transpose",
        ("torch", "jax"),
        _src(
            "Mutant: NCHW -> NHWC done with a reshape instead of a transpose.",
            """
            case = Case(grid={"H": [5]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[p.H, 4], kernel=[3, 3], channels=3,
                                   out_channels=4)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_first")

            def _via_channels_last(fw, x_last, w, b):
                y = fw.conv(x_last, fw.transpose(w, (2, 3, 1, 0)), b, layout="channels_last")
                return fw.transpose(y, (0, 3, 1, 2))

            @case.variant
            def correct(fw, p, x, w, b):
                return _via_channels_last(fw, fw.transpose(x, (0, 2, 3, 1)), w, b)

            @case.variant
            def mutant(fw, p, x, w, b):
                return _via_channels_last(fw, fw.reshape(x, (2, p.H, 4, 3)), w, b)
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "weights_oi_swapped_o_ne_i",
        ("torch", "jax"),
        _src(
            "Mutant: OIHW weights passed with O and I swapped, O=4 != I=3: the framework must refuse.",
            """
            case = Case(grid={"H": [5]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[p.H, 4], kernel=[3, 3], channels=3,
                                   out_channels=4)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_first")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_first")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, fw.transpose(w, (1, 0, 2, 3)), b, layout="channels_first")
            """,
        ),
        # The framework's own error, shown: torch "RuntimeError: ... channels", lax "TypeError: ... feature".
        shows=r"(RuntimeError|TypeError|ValueError): .*(channel|feature)",
    ),
    Mutant(
        "weights_oi_swapped_o_eq_i",
        ("torch", "jax"),
        _src(
            "Mutant: OIHW weights passed with O and I swapped, O == I == 3: it runs, and is wrong.",
            """
            case = Case(grid={"H": [5]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[p.H, 4], kernel=[3, 3], channels=3,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_first")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_first")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, fw.transpose(w, (1, 0, 2, 3)), b, layout="channels_first")
            """,
        ),
        shows=BEYOND,
        hint="in/out channel axes swapped",
    ),
    Mutant(
        "kernel_flipped",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: the kernel flipped (a scipy-style convolution) where frameworks cross-correlate.",
            """
            case = Case(grid={"H": [6]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.H, 5], kernel=[3, 3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                flipped = _native(fw, np.flip(fw.to_numpy(w), axis=(0, 1)))
                return fw.conv(x, flipped, b, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="convolution versus cross-correlation",
    ),
    Mutant(
        "kernel_not_flipped",
        ("torch", "jax"),
        _src(
            "Mutant: a true convolution (kernel flipped, as scipy.signal.convolve) computed unflipped.",
            """
            case = Case(grid={"H": [6]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.H, 5], kernel=[3, 3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, np.flip(w, axis=(0, 1)), b, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                flipped = _native(fw, np.flip(fw.to_numpy(w), axis=(0, 1)))
                return fw.conv(x, flipped, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="kernel flipped",
    ),
    Mutant(
        "bias_dropped",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: the bias dropped.",
            """
            case = Case(grid={"H": [6]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.H, 5], kernel=[3, 3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="bias was dropped",
    ),
    Mutant(
        "stride_off_by_one",
        ("torch", "jax"),
        _src(
            "Mutant: stride 2 passed as stride + 1.",
            """
            case = Case(grid={"L": [9], "s": [2]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, stride=p.s, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=p.s, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=p.s + 1, layout="channels_last")
            """,
        ),
        shows=r"shape \(2, 3, 3\) but the oracle's is \(2, 4, 3\)",
        hint="stride",
    ),
    Mutant(
        "dilation_ignored",
        ("torch", "jax"),
        _src(
            "Mutant: dilation 2 dropped (SAME padding, so the shape still matches).",
            """
            case = Case(grid={"L": [9], "d": [2]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, padding="same", dilation=p.d, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, padding="same", dilation=p.d, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, padding="same", layout="channels_last")
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "groups_ignored",
        ("torch", "jax"),
        _src(
            "Mutant: groups=2 ignored: omitted (the framework refuses) or worked around by tiled weights.",
            """
            case = Case(grid={"G": [2]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[7], kernel=[3], channels=4,
                                   out_channels=4, groups=p.G)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, groups=p.G, layout="channels_first")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, groups=p.G, layout="channels_first")

            @case.variant
            def mutant_groups_omitted(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_first")

            @case.variant
            def mutant_weights_tiled(fw, p, x, w, b):
                tiled = _native(fw, np.tile(fw.to_numpy(w), (1, p.G, 1)))  # (O, C/G, k) -> (O, C, k)
                return fw.conv(x, tiled, b, layout="channels_first")  # every output reads every channel
            """,
        ),
        shows=rf"{BEYOND}|(RuntimeError|TypeError|ValueError): .*(channel|feature)",
    ),
    Mutant(
        "hw_swapped_non_square",
        ("torch", "jax"),
        _src(
            "Mutant: a non-square image convolved as (W, H) and not transposed back.",
            """
            case = Case(grid={"H": [5], "W": [7]}, output_layout="channels_first")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_first", spatial=[p.H, p.W], kernel=[3, 3],
                                   channels=3, out_channels=4)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_first")

            def _as_wh(fw, x, w, b):
                return fw.conv(fw.transpose(x, (0, 1, 3, 2)), fw.transpose(w, (0, 1, 3, 2)), b)

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.transpose(_as_wh(fw, x, w, b), (0, 1, 3, 2))

            @case.variant
            def mutant(fw, p, x, w, b):
                return _as_wh(fw, x, w, b)
            """,
        ),
        shows=r"shape \(2, 4, 5, 3\) but the oracle's is \(2, 4, 3, 5\)",
        hint="axis order",
    ),
    Mutant(
        "tf32_inputs_judged_float32",
        ("torch", "jax"),
        _src(
            "Mutant: float32 inputs rounded to TF32 (10-bit mantissa) before the conv, judged as float32.",
            """
            case = Case(grid={"C": [8]}, dtypes=("float32",), output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[6, 6], kernel=[3, 3], channels=p.C,
                                   out_channels=4)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_last")

            def _tf32(fw, a):  # round to nearest even, keeping 10 of float32's 23 mantissa bits
                bits = np.asarray(fw.to_numpy(a), dtype=np.float32).view(np.uint32)
                lsb = (bits >> np.uint32(13)) & np.uint32(1)
                kept = (bits + np.uint32(0x0FFF) + lsb) & np.uint32(0xFFFFE000)
                return _native(fw, kept.view(np.float32))

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(_tf32(fw, x), _tf32(fw, w), b, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="TF32",
    ),
    Mutant(
        "nan_where_oracle_finite",
        ("torch", "jax"),
        _src(
            "Mutant: SAME padding taken from an uninitialised (NaN) buffer instead of zeros.",
            """
            case = Case(grid={"L": [8]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, padding="same", layout="channels_last")

            def _padded(fw, x, value):
                return _native(fw, np.pad(fw.to_numpy(x), [(0, 0), (1, 1), (0, 0)], constant_values=value))

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(_padded(fw, x, 0.0), w, b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(_padded(fw, x, np.nan), w, b, layout="channels_last")
            """,
        ),
        shows=r"non-finite value\(s\) where the oracle differs",
    ),
    # ---- one per claim of the wider family (cases/ beyond the four design claims) ----
    Mutant(
        "true_convolution_flipped_on_one_axis",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: scipy's convolve2d ported as a framework conv with the kernel flipped on H only.",
            """
            case = Case(grid={"H": [6]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.H, 5], kernel=[3, 2], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, np.flip(w, (0, 1)), b, layout="channels_last")  # true convolution

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, fw.flip(w, (0, 1)), b, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, fw.flip(w, (0,)), b, layout="channels_last")  # np.flipud: one axis
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "input_gradient_kernel_not_rotated",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: the input gradient by hand, full correlation of g with the io-swapped kernel, "
            "unrotated.",
            """
            case = Case(grid={"L": [9]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                inputs = conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                     out_channels=3)
                return {**inputs, "g": rng.standard_normal((2, p.L - 2, 3))}

            @case.oracle
            def expected(p, x, w, b, g):
                return oracle.conv_vjp(x, w, g, layout="channels_last")[0]

            @case.variant
            def correct(fw, p, x, w, b, g):  # rotated 180 degrees: flipped along the kernel axis
                return fw.conv(g, fw.flip(fw.transpose(w, (0, 2, 1)), (0,)), padding="full",
                               layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b, g):
                return fw.conv(g, fw.transpose(w, (0, 2, 1)), padding="full", layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="kernel flipped",
    ),
    Mutant(
        "transposed_conv_weight_in_conv_order",
        ("torch", "jax"),
        _src(
            "Mutant: ConvTranspose1d's (C_in, C_out, k) weight filled from a Conv1d's (C_out, C_in, k), "
            "C_in = C_out.",
            """
            case = Case(grid={"L": [5]})

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, 3, p.L)), "w": rng.standard_normal((3, 3, 3)),
                        "b": rng.standard_normal(3)}

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv_transpose(x, w, b, stride=2, padding=1, output_padding=1)

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv_transpose(x, w, b, stride=2, padding=1, output_padding=1)

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv_transpose(x, fw.transpose(w, (1, 0, 2)), b, stride=2, padding=1,
                                         output_padding=1)
            """,
        ),
        shows=BEYOND,
        hint="in/out channel axes swapped",
    ),
    Mutant(
        "channel_sum_bias_in_every_channel",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a conv as the sum of single-channel convs, each one adding the bias.",
            """
            case = Case(grid={"C": [3]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[8], kernel=[3], channels=p.C,
                                   out_channels=2)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_last")

            def _sum(fw, p, x, w, b, bias_each):
                parts = [fw.conv(x[..., c : c + 1], w[:, c : c + 1, :], b if bias_each else None,
                                 layout="channels_last") for c in range(p.C)]
                y = parts[0]
                for part in parts[1:]:
                    y = fw.add(y, part)
                return y if bias_each else fw.add(y, b)

            @case.variant
            def correct(fw, p, x, w, b):
                return _sum(fw, p, x, w, b, bias_each=False)

            @case.variant
            def mutant(fw, p, x, w, b):
                return _sum(fw, p, x, w, b, bias_each=True)
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "depthwise_channels_multiplier_major",
        ("torch", "jax"),
        _src(
            "Mutant: TF's depthwise filter (kh, kw, C, M) reshaped as (M, C): output channel m*C + c.",
            """
            case = Case(grid={"M": [2]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, 6, 5, 3)), "w": rng.standard_normal((3, 3, 3, p.M)),
                        "b": rng.standard_normal(3 * p.M)}

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w.reshape(3, 3, 1, -1), b, groups=3, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, fw.reshape(w, (3, 3, 1, 3 * p.M)), b, groups=3, layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                m_major = fw.reshape(fw.transpose(w, (0, 1, 3, 2)), (3, 3, 1, 3 * p.M))
                return fw.conv(x, m_major, b, groups=3, layout="channels_last")
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "causal_pad_ignores_dilation",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: causal padding of k-1 steps where a dilated kernel needs (k-1)*d.",
            """
            case = Case(grid={"d": [2]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[9], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, padding="causal", dilation=p.d, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(fw.pad(x, [(0, 0), (2 * p.d, 0), (0, 0)]), w, b, dilation=p.d,
                               layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(fw.pad(x, [(0, 0), (2, 0), (0, 0)]), w, b, dilation=p.d,
                               layout="channels_last")
            """,
        ),
        shows=r"shape \(2, 7, 3\) but the oracle's is \(2, 9, 3\)",
        hint="padding amount",
    ),
    Mutant(
        "avg_pool_same_counts_padding",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: Keras AveragePooling1D(3, 1, 'same') ported as torch's AvgPool1d(3, 1, padding=1).",
            """
            case = Case(grid={"L": [7]}, tolerance=tolerance.derived(terms=lambda p: 3 + 2),
                        output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, p.L, 3))}

            @case.oracle
            def expected(p, x):
                return oracle.avg_pool(x, 3, stride=1, padding="same", layout="channels_last")

            @case.variant
            def correct(fw, p, x):
                return fw.avg_pool(x, 3, stride=1, padding="same", layout="channels_last")

            @case.variant
            def mutant(fw, p, x):  # torch's default count_include_pad=True divides border windows by 3
                return fw.avg_pool(x, 3, stride=1, padding=1, count_include_pad=True, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="error only on the borders",
    ),
    Mutant(
        "max_pool_pads_zeros",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: SAME max pooling done as a zero pad, then VALID, on all-negative inputs.",
            """
            case = Case(grid={"L": [12]}, tolerance=tolerance.exact(), output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": -abs(rng.standard_normal((2, p.L, 3))) - 0.1}

            @case.oracle
            def expected(p, x):
                return oracle.max_pool(x, 3, stride=2, padding="same", layout="channels_last")

            @case.variant
            def correct(fw, p, x):
                return fw.max_pool(x, 3, stride=2, padding="same", layout="channels_last")

            @case.variant
            def mutant(fw, p, x):  # SAME pads (0, 1) here: the zero wins the last window
                return fw.max_pool(fw.pad(x, [(0, 0), (0, 1), (0, 0)]), 3, stride=2, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="error only on the borders",
    ),
    Mutant(
        "shortcut_identity_reshaped_not_transposed",
        ("torch", "jax"),
        _src(
            "Mutant: option-A shortcut's identity block (C, C_OUT) reshaped, not transposed, "
            "to (C_OUT, C, 1, 1).",
            """
            case = Case(grid={"before": [2]})
            C, C_OUT = 4, 8

            @case.inputs
            def draw(rng, p):
                eye = np.zeros((C, C_OUT))
                eye[np.arange(C), np.arange(C) + p.before] = 1.0
                return {"x": rng.standard_normal((2, C, 6, 5)), "eye": eye}

            @case.oracle
            def expected(p, x, eye):
                return np.pad(x[:, :, ::2, ::2], [(0, 0), (p.before, C_OUT - C - p.before), (0, 0), (0, 0)])

            @case.variant
            def correct(fw, p, x, eye):
                return fw.conv(x, fw.reshape(fw.transpose(eye, (1, 0)), (C_OUT, C, 1, 1)), stride=2)

            @case.variant
            def mutant(fw, p, x, eye):
                return fw.conv(x, fw.reshape(eye, (C_OUT, C, 1, 1)), stride=2)
            """,
        ),
        shows=BEYOND,
    ),
    Mutant(
        "symmetric_for_reflect",
        ("tensorflow", "jax"),  # torch's F.pad has no symmetric mode to plant
        _src(
            "Mutant: torch's padding_mode='reflect' ported as tf.pad(mode='SYMMETRIC') (jnp.pad "
            "'symmetric'), the edge repeated.",
            """
            case = Case(grid={"L": [7]}, output_layout="channels_last")
            PAIRS = [(0, 0), (1, 1), (0, 0)]

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(oracle.pad(x, PAIRS, "reflect"), w, b, layout="channels_last")

            @case.variant(frameworks=["torch", "tensorflow", "jax"])
            def correct(fw, p, x, w, b):
                return fw.conv(fw.pad_mode(x, PAIRS, "reflect"), w, b, layout="channels_last")

            @case.variant(frameworks=["tensorflow", "jax"])
            def mutant(fw, p, x, w, b):
                return fw.conv(fw.pad_mode(x, PAIRS, "symmetric"), w, b, layout="channels_last")
            """,
        ),
        shows=BEYOND,
        hint="error only on the borders",
    ),
    Mutant(
        "max_pool_skips_nan",
        ("torch", "jax"),  # TF's own MaxPool already drops NaN: the claim records that as a difference
        _src(
            "Mutant: a max pool that reads NaN as missing (NaN set to -inf first, nanmax), where the "
            "claim says NaN propagates.",
            """
            case = Case(grid={"H": [6]}, tolerance=tolerance.exact(), output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                x = rng.standard_normal((2, p.H, 5, 3))
                x[rng.random(x.shape) < 0.15] = np.nan
                return {"x": x}

            @case.oracle
            def expected(p, x):
                return oracle.max_pool(x, 2, stride=1, layout="channels_last")

            @case.variant(frameworks=["torch", "jax"])
            def correct(fw, p, x):
                return fw.max_pool(x, 2, stride=1, layout="channels_last")

            @case.variant(frameworks=["tensorflow"], expect="differs", reason="TF's MaxPool drops NaN")
            def tf_drops_nan(fw, p, x):
                return fw.max_pool(x, 2, stride=1, layout="channels_last")

            @case.variant(frameworks=["torch", "jax"])
            def mutant(fw, p, x):
                return fw.max_pool(_native(fw, np.nan_to_num(fw.to_numpy(x), nan=-np.inf)), 2, stride=1,
                                   layout="channels_last")
            """,
        ),
        shows=r"non-finite value\(s\) where the oracle differs",
    ),
    # ---- the other kinds of check can fail too ----
    Mutant(
        "differs_but_agrees",
        ("torch", "jax"),
        _src(
            "Mutant: symmetric padding declared a known difference from SAME on an odd length: it agrees.",
            """
            case = Case(grid={"L": [7, 8], "k": [3]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[p.k], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, stride=2, padding="same", layout="channels_last")

            # On an even length the difference is real: a `differs` that holds, which passes.
            @case.variant(expect="differs", when=lambda p: p.L % 2 == 0,
                          reason="symmetric k//2 padding is not SAME at stride 2 on an even length")
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding=p.k // 2, layout="channels_last")

            # The `when` forgot the even-length condition: on L=7 SAME pads (1, 1), so they agree.
            @case.variant(expect="differs", when=lambda p: p.L % 2 == 1,
                          reason="symmetric k//2 padding is not SAME at stride 2")
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding=p.k // 2, layout="channels_last")
            """,
        ),
        shows=r"expected the known difference .* but every output agrees with the oracle",
    ),
    Mutant(
        "raises_but_returns",
        ("torch", "jax"),
        _src(
            "Mutant: a refusal declared for a call that does not refuse (equiv resolves SAME at stride 2).",
            """
            case = Case(grid={"L": [8]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, stride=2, padding="same", layout="channels_last")

            # torch.nn.Conv1d(padding="same") does refuse a stride: a `raises` that holds, which passes.
            @case.variant(frameworks=["torch"], raises=ValueError, match="not supported for strided",
                          reason="torch's padding='same' refuses stride > 1")
            def correct(fw, p, x, w, b):
                xf, wf = fw.transpose(x, (0, 2, 1)), fw.transpose(w, (2, 1, 0))
                return fw.conv_layer(xf, wf, b, stride=2, padding="same")

            @case.variant(raises=ValueError, reason="SAME with a stride is refused")
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, stride=2, padding="same", layout="channels_last")
            """,
        ),
        shows=r"expected mutant to raise ValueError .* but it returned a result",
    ),
    Mutant(
        "shape_mismatch",
        ("torch", "jax"),
        _src(
            "Mutant: VALID where SAME is claimed: the output is shorter than the oracle's.",
            """
            case = Case(grid={"L": [8]}, output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, padding="same", layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.conv(x, w, b, padding="same", layout="channels_last")

            @case.variant
            def mutant(fw, p, x, w, b):
                return fw.conv(x, w, b, padding="valid", layout="channels_last")
            """,
        ),
        shows=r"shape \(2, 6, 3\) but the oracle's is \(2, 8, 3\)",
        hint="padding amount",
    ),
    Mutant(
        "exact_one_ulp",
        ("torch", "jax"),
        _src(
            "Mutant: a data-movement op (NCHW -> NHWC) judged exactly, with one element off by 1 ulp.",
            """
            case = Case(grid={"H": [5]}, tolerance=tolerance.exact(), output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.standard_normal((2, 3, p.H, 4))}

            @case.oracle
            def expected(p, x):
                return x.transpose(0, 2, 3, 1)

            @case.variant
            def correct(fw, p, x):
                return fw.transpose(x, (0, 2, 3, 1))

            @case.variant
            def mutant(fw, p, x):
                y = fw.to_numpy(fw.transpose(x, (0, 2, 3, 1))).copy()
                y[1, 2, 3, 1] = np.nextafter(y[1, 2, 3, 1], np.inf)
                return _native(fw, y)
            """,
        ),
        shows=rf"1 of 120 {BEYOND} \(error_ratio inf; allowed: exact equality",
    ),
    Mutant(
        "mixed_precision_policy_forgets_the_cast",
        ("torch", "jax", "tensorflow"),
        _src(
            "Mutant: a mixed-precision port that forgets to cast the policy's output to the claimed type.",
            """
            case = Case(grid={"out": ["half", "float32"]}, dtypes=("bfloat16",),
                        output_layout="channels_last",
                        output_dtype=lambda p: p.dtype if p.out == "half" else "float32")

            @case.inputs
            def draw(rng, p):
                return conv_inputs(rng, layout="channels_last", spatial=[7], kernel=[3], channels=2,
                                   out_channels=3)

            @case.oracle
            def expected(p, x, w, b):
                return oracle.conv(x, w, b, layout="channels_last")

            def _policy(fw, p, x, w, b):
                x, w, b = (fw.cast(a, "float32") for a in (x, w, b))
                return fw.mixed_precision_conv(x, w, b, compute=p.dtype, layout="channels_last")

            @case.variant
            def correct(fw, p, x, w, b):
                return fw.cast(_policy(fw, p, x, w, b), p.dtype if p.out == "half" else "float32")

            # The cast each policy needs: JAX's float32 output to bfloat16, autocast's and Keras'
            # bfloat16 output to float32. Forgotten, the values still pass: only the dtype tells.
            @case.variant(frameworks=["jax"], when=lambda p: p.out == "half")
            def mutant_jax(fw, p, x, w, b):
                return _policy(fw, p, x, w, b)

            @case.variant(frameworks=["torch", "tensorflow"], when=lambda p: p.out == "float32")
            def mutant_half_policies(fw, p, x, w, b):
                return _policy(fw, p, x, w, b)
            """,
        ),
        shows=r"returned the wrong dtype: out is (float32, where the claim says bfloat16|bfloat16, where the "
              r"claim says float32)",
        dtype="bfloat16",
    ),
    Mutant(
        "bfloat16_accumulator",
        ("torch", "jax"),  # TF's own bfloat16 MatMul sums in bfloat16 under Eigen: no sound control there
        _src(
            "Mutant: a bfloat16 dense layer that sums its 256 products in bfloat16, not float32.",
            """
            import ml_dtypes

            case = Case(grid={"N": [4]}, dtypes=("bfloat16",), output_layout="channels_last")

            @case.inputs
            def draw(rng, p):
                return {"x": rng.uniform(0.5, 1.5, (p.N, 256)), "w": rng.uniform(0.5, 1.5, (256, 8))}

            @case.oracle
            def expected(p, x, w):
                return oracle.dense(x, w)

            @case.variant
            def correct(fw, p, x, w):
                return fw.dense(x, w)

            @case.variant
            def mutant(fw, p, x, w):
                bf16 = ml_dtypes.bfloat16
                xs, ws = fw.to_numpy(x).astype(np.float32), fw.to_numpy(w).astype(np.float32)
                acc = np.zeros((p.N, 8), dtype=bf16)
                for k in range(256):  # each partial sum rounded to bfloat16
                    acc = (acc.astype(np.float32) + xs[:, k:k + 1] * ws[k]).astype(bf16)
                return _native(fw, acc)
            """,
        ),
        shows=BEYOND,
        hint="does not accumulate in float32",
        dtype="bfloat16",
    ),
    *(
        Mutant(
            f"model_port_weights_through_float16_{layout}",
            fws,
            # The real claim (its `ported` variant is the control) plus a port whose second conv's
            # weights were copied through float16 (a relative error of up to 2**-11 each), as a
            # converter that saves half-precision checkpoints does: the composition's bound must be tight
            # enough to see it. One layout per mutant, with the frameworks whose layers take it
            # (torch.nn: channels_first only; TF's Eigen kernels: channels_last only).
            (ROOT / "cases" / "model_port.py").read_text(encoding="utf-8") + textwrap.dedent(
                """

                case.grid = {"layout": ["LAYOUT"]}


                @case.variant
                def mutant_conv2_weights_through_float16(fw, p, x, g, **w):
                    w2 = fw.to_numpy(w["w2"]).astype(np.float16).astype(np.float32)
                    return _run(fw, p, x, g, dict(w, w2=fw.asarray(w2, "cpu")))
                """
            ).replace("LAYOUT", layout),
            shows=BEYOND,
        )
        for layout, fws in (("channels_first", ("torch", "jax")), ("channels_last", ("tensorflow", "jax")))
    ),
]


@pytest.fixture(scope="session")
def installed() -> tuple[str, ...]:
    """Import every installed framework (and run one conv) before pytester snapshots sys.modules.

    pytester's in-process runs restore sys.modules afterwards; a framework first imported inside one
    would be dropped and imported again by the next, which torch and TensorFlow do not survive.
    """
    import numpy as np

    names = []
    for name in frameworks.NAMES:
        if not frameworks.is_installed(name):
            continue
        fw = frameworks.load(name)
        x, w = np.ones((1, 4, 2), np.float32), np.ones((3, 2, 2), np.float32)
        with fw.precision("ieee"), fw.scope("cpu"):
            y = fw.conv(fw.asarray(x, "cpu"), fw.asarray(w, "cpu"), padding="same", layout="channels_last")
            fw.to_numpy(y)
        names.append(name)
    return tuple(names)


@dataclass
class Item:
    variant: str
    framework: str
    outcome: str
    text: str


def run_cases(pytester: pytest.Pytester, fws: list[str], dtype: str, *extra: str) -> list[Item]:
    """Run the pytester dir's cases/ through the real plugin in-process; one Item per framework result.

    A pytest item runs every framework on one input; each framework's record carries its outcome and
    its failure text, and a record that failed must fail its pytest item.
    """
    result = pytester.runpytest_inprocess(
        "--equiv-device", "cpu", "--equiv-framework", ",".join(fws), "--equiv-dtype", dtype,
        "-p", "no:cacheprovider", "-q", *extra,
    )
    reprec: Any = result.reprec  # type: ignore[attr-defined]
    broken = reprec.getfailedcollections()
    assert not broken, "a case file failed to collect:\n" + "\n".join(r.longreprtext for r in broken)
    items: list[Item] = []
    for rep in reprec.getreports("pytest_runtest_logreport"):
        records = results_of(rep)
        if not records:
            continue
        for r in records:
            outcome = "failed" if r["outcome"] in ("failed", "error") else r["outcome"]
            text = r["reason"] if outcome != "passed" else ""
            items.append(Item(r["variant"], r["framework"], outcome, text))
            if outcome == "failed":
                assert rep.failed, f"{rep.nodeid}: {r['id']} failed but its pytest item did not"
    assert items, "no case items ran:\n" + result.stdout.str()
    return items


def _fresh(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The oracle cache is per process and keyed by file stem: keep earlier runs' entries out.
    monkeypatch.setattr(runner, "_references", {})
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    return pytester.mkdir("cases")


def _real_claim(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str,
                edit: Any = None) -> None:
    """A fresh pytester cases/ holding the project's own claim `name` (its text passed through
    `edit`, where a test plants its mistake in the case file itself)."""
    cases = _fresh(pytester, monkeypatch)
    source = (ROOT / "cases" / f"{name}.py").read_text(encoding="utf-8")
    (cases / f"{name}.py").write_text(edit(source) if edit else source, encoding="utf-8")


def _hints(item: Item) -> str:
    """The failure's `hint:` lines only (the item's own name must not satisfy a hint check)."""
    return "\n".join(line for line in item.text.splitlines() if line.lstrip().startswith("hint:"))


def _summary(items: list[Item]) -> str:
    return "\n".join(
        f"  {i.variant}[{i.framework}]: {i.outcome}\n{textwrap.indent(i.text, '    ')}" for i in items
    )


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_planted_mistake_is_caught(
    mutant: Mutant,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    fws = [f for f in mutant.frameworks if f in installed]
    if not fws:
        pytest.skip(f"none of {mutant.frameworks} is installed")
    cases = _fresh(pytester, monkeypatch)
    (cases / f"mutant_{mutant.name}.py").write_text(mutant.source, encoding="utf-8")

    items = run_cases(pytester, fws, mutant.dtype)
    planted = [i for i in items if i.variant.startswith("mutant")]
    controls = [i for i in items if not i.variant.startswith("mutant")]
    caught = bool(planted) and all(i.outcome == "failed" for i in planted)
    right_kind = caught and all(re.search(mutant.shows, i.text) for i in planted)
    hint_seen = None if mutant.hint is None else caught and all(mutant.hint in _hints(i) for i in planted)
    sound = all(i.outcome == "passed" for i in controls)
    mutation_record(mutant.name, sound and caught and right_kind, hint_seen)

    assert {i.framework for i in planted} == set(fws), f"mutant {mutant.name}: not run in every framework"
    assert sound, (
        f"mutant {mutant.name}: the correct variant must pass, or the planted file proves nothing:\n"
        + _summary(controls)
    )
    assert caught, f"mutant {mutant.name} was NOT caught (reported as not failed):\n{_summary(planted)}"
    assert right_kind, (
        f"mutant {mutant.name} failed, but not as {mutant.shows!r} (a broken mutant, not a caught one):\n"
        + _summary(planted)
    )
    if mutant.hint is not None:
        assert hint_seen, f"mutant {mutant.name}: hint {mutant.hint!r} missing:\n{_summary(planted)}"


def _symmetric_pad(x: Any, pairs: Any) -> Any:
    """The mistake: torch has only symmetric conv padding, so pad max(before, after) on both sides."""
    import torch.nn.functional as F

    return F.pad(x, [max(pair) for pair in reversed(pairs) for _ in range(2)])


def _symmetric_torch_padding(pairs: list[tuple[int, int]]) -> tuple[list[int], None]:
    return [max(pair) for pair in pairs], None


def test_broken_torch_same_mapping_fails_real_case(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """Symmetric padding in PyTorch's SAME path turns torch's items red on the real case; JAX stays green."""
    if not {"torch", "jax"} <= set(installed):
        pytest.skip("needs torch and jax")
    _real_claim(pytester, monkeypatch, "same_padding_with_stride")
    torch_module = frameworks.load("torch")
    # Both of equiv.frameworks.torch's asymmetric-padding paths: conv's padding resolution
    # (SAME -> pairs -> symmetric padding= plus an F.pad for the rest) and the explicit pad.
    monkeypatch.setattr(torch_module, "_torch_padding", _symmetric_torch_padding)
    monkeypatch.setattr(torch_module, "pad", _symmetric_pad)

    items = run_cases(pytester, ["torch", "jax"], "float32", "-k", "nd1")
    red = [i for i in items if i.outcome != "passed"]
    torch_red = [i for i in red if i.framework == "torch"]
    caught = bool(torch_red) and all(i.framework == "torch" for i in red)
    hint_seen = all("padding" in _hints(i) for i in torch_red)
    mutation_record("torch_same_mapping_symmetric", caught, hint_seen)

    assert not [i for i in red if i.framework == "jax"], "jax items must pass:\n" + _summary(red)
    assert torch_red, "symmetric padding in torch's SAME path was NOT caught by the real case"
    assert {i.outcome for i in torch_red} == {"failed"}, _summary(torch_red)
    # Only items that need an asymmetric pad can go red, and each says padding is the problem.
    assert {i.variant for i in torch_red} == {"explicit_asymmetric_pad"}, _summary(torch_red)
    unexplained = [i for i in torch_red if "padding" not in _hints(i)]
    assert not unexplained, "torch failures with no hint pointing at the padding:\n" + _summary(unexplained)


def _floor_adaptive(x: Any, output_size: Any, layout: str, reduce: Any) -> Any:
    """The mistake: JAX's hand-built adaptive windows end at floor((i+1)*L/n), not ceil: short where n
    does not divide L (and empty where n > L)."""
    import jax.numpy as jnp

    nd = x.ndim - 2
    first = 2 if layout == "channels_first" else 1
    for a, n in enumerate(frameworks.per_axis(output_size, nd)):
        axis, length = first + a, x.shape[first + a]
        windows = [slice(i * length // n, (i + 1) * length // n) for i in range(n)]
        parts = [reduce(x[(slice(None),) * axis + (cells,)], axis=axis, keepdims=True) for cells in windows]
        x = jnp.concatenate(parts, axis)
    return x


def test_floor_for_ceil_in_the_adaptive_window_fails_the_real_claim(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """JAX's hand-built adaptive pool made to end each window at floor((i+1)*L/n) turns exactly its own
    items red on the real adaptive_pooling claim, where n does not divide L; torch stays green."""
    if not {"torch", "jax"} <= set(installed):
        pytest.skip("needs torch and jax")
    _real_claim(pytester, monkeypatch, "adaptive_pooling")
    monkeypatch.setattr(frameworks.load("jax"), "_adaptive", _floor_adaptive)

    items = run_cases(pytester, ["torch", "jax"], "float32", "-k", "native_or_by_hand")
    red = [i for i in items if i.outcome != "passed"]
    # Where n divides L floor and ceil agree: 10 -> 5, 10 -> 1, 7 -> 7 and 14 -> 7 stay green, for both
    # kinds and both layouts; every other JAX item is red.
    jax_green = [i for i in items if i.framework == "jax" and i.outcome == "passed"]
    caught = (bool(red) and all(i.framework == "jax" for i in red)
              and {i.variant for i in red} == {"native_or_by_hand"} and len(jax_green) == 4 * 2 * 2)
    mutation_record("adaptive_window_floor_for_ceil", caught, None)
    assert caught, "floor for ceil in JAX's adaptive windows was NOT caught as expected:\n" + _summary(items)


def test_a_framework_that_drops_the_bias_fails_the_bias_claim(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """The worked example's claim is about the framework's bias: torch's conv made to drop b turns
    exactly the variant that hands b to fw.conv red."""
    if "torch" not in installed:
        pytest.skip("needs torch")
    _real_claim(pytester, monkeypatch, "conv_bias_is_added_per_channel")
    torch_module = frameworks.load("torch")
    real = torch_module.conv
    monkeypatch.setattr(torch_module, "conv", lambda x, w, b=None, **k: real(x, w, None, **k))

    items = run_cases(pytester, ["torch"], "float32")
    red = [i for i in items if i.outcome != "passed"]
    caught = {i.variant for i in red} == {"framework_bias"} and all(i.outcome == "failed" for i in red)
    hint_seen = all("the bias was dropped" in _hints(i) for i in red)
    mutation_record("torch_conv_drops_bias", caught, hint_seen)
    assert caught, "a torch conv that drops its bias was NOT caught by the bias claim:\n" + _summary(items)
    assert hint_seen, _summary(red)


def test_onnx_same_lower_for_same_fails_the_auto_pad_claim(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """ONNX Runtime's SAME spelled auto_pad=SAME_LOWER (the odd pixel at the start) turns ORT's SAME
    items red on the real auto_pad claim, each with the padding hint; JAX, running the same items, stays
    green."""
    if not {"onnxruntime", "jax"} <= set(installed):
        pytest.skip("needs onnxruntime and jax")
    _real_claim(pytester, monkeypatch, "onnx_auto_pad")
    ort_module: Any = frameworks.load("onnxruntime")
    monkeypatch.setitem(ort_module.AUTO_PAD, "same", "SAME_LOWER")  # the adapter's one SAME mapping

    items = run_cases(pytester, ["onnxruntime", "jax"], "float32")
    red = [i for i in items if i.outcome != "passed"]
    caught = bool(red) and {(i.framework, i.variant, i.outcome) for i in red} == {
        ("onnxruntime", "same_upper_and_native_same", "failed")}
    hint_seen = all("padding" in _hints(i) for i in red)
    mutation_record("onnx_same_as_same_lower", caught, hint_seen)
    assert caught, "auto_pad=SAME_LOWER for SAME was NOT caught (or not only there):\n" + _summary(red)
    assert hint_seen, "ORT failures with no hint pointing at the padding:\n" + _summary(red)


def test_an_unflipped_lhs_dilation_kernel_fails_the_real_claim(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """The real lhs_dilation_is_transposed_conv claim with its kernel conversion forgetting the flip (the
    usual first port of a transposed conv to lhs_dilation): its lhs_dilation and zero_stuffed items turn
    red in torch and JAX, the framework's own transposed conv stays green."""
    if not {"torch", "jax"} <= set(installed):
        pytest.skip("needs torch and jax")
    right = "    return fw.flip(w, _taps(p)) if flip else w\n"

    def unflipped(source: str) -> str:
        assert right in source, "the claim's kernel conversion changed: update this planted mistake"
        return source.replace(right, "    return w\n")

    _real_claim(pytester, monkeypatch, "lhs_dilation_is_transposed_conv", unflipped)

    items = run_cases(pytester, ["torch", "jax"], "float32")
    red = [i for i in items if i.outcome != "passed"]
    ported = [i for i in items if i.variant in ("lhs_dilation", "zero_stuffed")]
    # The one grid point whose crop leaves no tap in the output cannot show it (k 2, dilation 2, one
    # input cell, crop 1): zero_stuffed in torch and JAX, lhs_dilation in JAX.
    caught = ({(i.variant, i.framework) for i in red} == {("lhs_dilation", "jax"), ("zero_stuffed", "jax"),
                                                          ("zero_stuffed", "torch")}
              and {i.outcome for i in red} == {"failed"} and len(ported) - len(red) == 3)
    hint_seen = caught and all("kernel flipped" in _hints(i) for i in red)
    mutation_record("lhs_dilation_kernel_not_flipped", caught, hint_seen)
    assert caught, "an unflipped lhs_dilation kernel was NOT caught as expected:\n" + _summary(red)


def test_an_op_that_drops_the_dtype_fails_the_real_claim(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    installed: tuple[str, ...],
    mutation_record: Any,
) -> None:
    """JAX's average pool made to compute in float32 whatever it is given (the values right, the dtype
    not) turns exactly its own items red on the real dtype_is_kept claim, as the wrong dtype; the
    float32 items and every other op stay green."""
    if not {"torch", "jax"} <= set(installed):
        pytest.skip("needs torch and jax")
    import jax.numpy as jnp

    _real_claim(pytester, monkeypatch, "dtype_is_kept")
    jax_module = frameworks.load("jax")
    real = jax_module.avg_pool
    monkeypatch.setattr(jax_module, "avg_pool", lambda x, *a, **k: real(jnp.asarray(x, jnp.float32), *a, **k))

    items = run_cases(pytester, ["torch", "jax"], "float64,float32,float16", "-k", "numpy_in")
    red = [i for i in items if i.outcome != "passed"]
    # avg_pool in 1-D and 2-D, in float64 and float16: four items, each saying the dtype is wrong.
    caught = (len(red) == 4 and all(i.framework == "jax" and "returned the wrong dtype" in i.text
                                    and "first is float32, again is float32" in i.text for i in red))
    mutation_record("dtype_dropped_by_an_op", caught, None)
    assert caught, "an op that drops the dtype was NOT caught as expected:\n" + _summary(red)
