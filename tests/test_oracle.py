"""Tests of equiv.oracle, the pure-NumPy float64 reference.

Three kinds of checks:

* hand-derived examples whose expected values are literals (the only place in
  the project where literal expected outputs are allowed), each derived in a
  comment;
* agreement with brute-force references written here straight from the
  definitions (explicit Python loops over every output position, padding
  handled by bounds checks rather than np.pad) on seeded random configurations;
* a ValueError for every kind of bad argument, and a check that importing and
  running the oracle pulls in no framework.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import itertools
import math
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    from equiv import oracle
except ImportError:  # pragma: no cover - the tree is not on sys.path
    _spec = importlib.util.spec_from_file_location(
        "equiv_oracle", Path(__file__).resolve().parents[1] / "equiv" / "oracle.py"
    )
    assert _spec is not None and _spec.loader is not None
    oracle = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(oracle)

ORACLE_PATH = Path(__file__).resolve().parents[1] / "equiv" / "oracle.py"

Cfg = dict[str, Any]


def close(actual: np.ndarray, expected: Any) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


# ===========================================================================
# Hand-derived examples
# ===========================================================================

# Most 1-D examples use w = [1, 10, 100] so each output's digits show which
# inputs (and which padded zeros) each tap saw: y[i] = x[i] + 10 x[i+1] + 100 x[i+2].
X5 = [[[1.0, 2.0, 3.0, 4.0, 5.0]]]
W3 = [[[1.0, 10.0, 100.0]]]


class TestPaddingHelpers:
    def test_same_padding(self) -> None:
        # L=5, k=2: total = (5-1)*1 + 2 - 5 = 1 -> SAME (0, 1), SAME_LOWER (1, 0).
        assert oracle.same_padding(5, 2) == (0, 1)
        assert oracle.same_padding(5, 2, lower=True) == (1, 0)
        # L=5, k=3, s=2: out=3, total = 2*2 + 3 - 5 = 2 -> (1, 1).
        assert oracle.same_padding(5, 3, 2) == (1, 1)
        # L=6, k=3, s=2: out=3, total = 2*2 + 3 - 6 = 1 -> odd pixel at the end.
        assert oracle.same_padding(6, 3, 2) == (0, 1)
        assert oracle.same_padding(6, 3, 2, lower=True) == (1, 0)
        # k=3, d=2: dilated kernel 5, total = 4 -> (2, 2).
        assert oracle.same_padding(5, 3, 1, 2) == (2, 2)
        # stride > kernel: L=5, k=2, s=3: out=2, total = 3 + 2 - 5 = 0.
        assert oracle.same_padding(5, 2, 3) == (0, 0)
        # L=7, k=1, s=3: out=3, total = 6 + 1 - 7 = 0.
        assert oracle.same_padding(7, 1, 3) == (0, 0)
        # L=1, k=4: total = 3 -> (1, 2).
        assert oracle.same_padding(1, 4) == (1, 2)

    def test_padding_pairs(self) -> None:
        pp = oracle.padding_pairs
        assert pp("valid", (5, 6), (3, 2), 1, 1) == [(0, 0), (0, 0)]
        assert pp("same", (5, 6), (2, 3), (1, 2), 1) == [(0, 1), (0, 1)]
        assert pp("same_lower", (5, 6), (2, 3), (1, 2), 1) == [(1, 0), (1, 0)]
        # causal: (k-1)*d = 2*2 on the left only.
        assert pp("causal", (5,), (3,), 1, 2) == [(4, 0)]
        # full: (k-1)*d on both sides: 2*1 and 1*2.
        assert pp("full", (5, 6), (3, 2), 1, (1, 2)) == [(2, 2), (2, 2)]
        assert pp(2, (5, 6), (3, 2), 1, 1) == [(2, 2), (2, 2)]
        assert pp([(1, 0), (0, 2)], (5, 6), (3, 2), 1, 1) == [(1, 0), (0, 2)]
        # a bare int entry means that amount on both sides of that axis.
        assert pp([1, (0, 2)], (5, 6), (3, 2), 1, 1) == [(1, 1), (0, 2)]

    def test_output_shapes(self) -> None:
        assert oracle.conv_output_shape((5,), (3,), padding="same", stride=2) == (3,)
        assert oracle.conv_output_shape((8, 8), (3, 3), padding=1, stride=2) == (4, 4)
        # floor((4 + 2 - 2)/3) + 1 = 2; ceil -> 3 but window 3 starts at 6 >= 4 + 1.
        assert oracle.pool_output_shape((4,), 2, stride=3, padding=1) == (2,)
        assert oracle.pool_output_shape((4,), 2, stride=3, padding=1, ceil_mode=True) == (2,)
        # floor((5 - 2)/2) + 1 = 2; ceil(3/2) + 1 = 3, and 2*2 = 4 < 5 is kept.
        assert oracle.pool_output_shape((5,), 2, ceil_mode=True) == (3,)


class TestConvExamples:
    def test_valid_basic(self) -> None:
        # [1,2,3,4] with [1,0,-1]: [1-3, 2-4] = [-2, -2].
        close(oracle.conv([[[1, 2, 3, 4]]], [[[1, 0, -1]]]), [[[-2, -2]]])
        # 1 + 10*2 + 100*3 = 321, then 432, 543.
        close(oracle.conv(X5, W3), [[[321, 432, 543]]])

    def test_bias(self) -> None:
        # [-2, -2] + 0.5.
        close(oracle.conv([[[1, 2, 3, 4]]], [[[1, 0, -1]]], [0.5]), [[[-1.5, -1.5]]])

    def test_stride(self) -> None:
        # valid outputs [321, 432, 543]; stride 2 keeps positions 0 and 2.
        close(oracle.conv(X5, W3, stride=2), [[[321, 543]]])

    def test_dilation(self) -> None:
        # x = 1..6, taps at i, i+2, i+4: 1 + 10*3 + 100*5 = 531; 2 + 40 + 600 = 642.
        close(oracle.conv([[[1, 2, 3, 4, 5, 6]]], W3, dilation=2), [[[531, 642]]])

    def test_same_odd_pixel_at_end(self) -> None:
        # k=2, w=[1,10]: total 1 -> pads (0, 1): xp = [1,2,3,4,5,0]
        # y = [1+20, 2+30, 3+40, 4+50, 5+0] = [21, 32, 43, 54, 5].
        close(oracle.conv(X5, [[[1, 10]]], padding="same"), [[[21, 32, 43, 54, 5]]])

    def test_same_lower_odd_pixel_at_start(self) -> None:
        # pads (1, 0): xp = [0,1,2,3,4,5] -> [0+10, 1+20, 2+30, 3+40, 4+50].
        close(oracle.conv(X5, [[[1, 10]]], padding="same_lower"), [[[10, 21, 32, 43, 54]]])

    def test_same_symmetric(self) -> None:
        # k=3: pads (1, 1): xp = [0,1,2,3,4,5,0]
        # -> [0+10+200, 321, 432, 543, 4+50+0] = [210, 321, 432, 543, 54].
        close(oracle.conv(X5, W3, padding="same"), [[[210, 321, 432, 543, 54]]])
        # an int 1 is the same padding here.
        close(oracle.conv(X5, W3, padding=1), [[[210, 321, 432, 543, 54]]])

    def test_same_with_stride(self) -> None:
        # L=6, k=3, s=2: pads (0, 1): xp = [1..6, 0], positions 0, 2, 4:
        # [1+20+300, 3+40+500, 5+60+0] = [321, 543, 65].
        x6 = [[[1, 2, 3, 4, 5, 6]]]
        close(oracle.conv(x6, W3, stride=2, padding="same"), [[[321, 543, 65]]])
        # same_lower pads (1, 0): xp = [0, 1..6], positions 0, 2, 4:
        # [0+10+200, 2+30+400, 4+50+600] = [210, 432, 654].
        close(oracle.conv(x6, W3, stride=2, padding="same_lower"), [[[210, 432, 654]]])

    def test_causal(self) -> None:
        # pads (2, 0): xp = [0,0,1,2,3,4,5] -> [100, 10+200, 321, 432, 543].
        close(oracle.conv(X5, W3, padding="causal"), [[[100, 210, 321, 432, 543]]])
        # d=2: pads (4, 0): xp = [0,0,0,0,1,2,3,4,5], taps i, i+2, i+4:
        # [100, 200, 10+300, 20+400, 1+30+500] = [100, 200, 310, 420, 531].
        close(
            oracle.conv(X5, W3, padding="causal", dilation=2),
            [[[100, 200, 310, 420, 531]]],
        )
        # explicit pairs give the same.
        close(oracle.conv(X5, W3, padding=[(2, 0)]), [[[100, 210, 321, 432, 543]]])

    def test_full(self) -> None:
        # pads (2, 2): xp = [0,0,1,2,3,4,5,0,0]
        # -> [100, 210, 321, 432, 543, 4+50, 5] = [100, 210, 321, 432, 543, 54, 5].
        close(oracle.conv(X5, W3, padding="full"), [[[100, 210, 321, 432, 543, 54, 5]]])

    def test_groups(self) -> None:
        # channel 0 = [1,2,3], channel 1 = [4,5,6]; groups=2:
        # out 0 = ch0 * [1, 10] = [1+20, 2+30] = [21, 32]
        # out 1 = ch1 * [100, 1000] = [400+5000, 500+6000] = [5400, 6500].
        x = [[[1, 2, 3], [4, 5, 6]]]
        w = [[[1, 10]], [[100, 1000]]]
        close(oracle.conv(x, w, groups=2), [[[21, 32], [5400, 6500]]])
        # with groups=1 and w (1, 2, 2): both channels summed: 21+5400, 32+6500.
        close(oracle.conv(x, [[[1, 10], [100, 1000]]]), [[[5421, 6532]]])

    def test_channels_last(self) -> None:
        # The groups example above in (N, L, C) and (k, C/groups, O).
        x = [[[1, 4], [2, 5], [3, 6]]]
        w = [[[1, 100]], [[10, 1000]]]
        close(
            oracle.conv(x, w, groups=2, layout="channels_last"),
            [[[21, 5400], [32, 6500]]],
        )

    def test_2d(self) -> None:
        # x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,10],[100,1000]]:
        # y00 = 1 + 10*2 + 100*4 + 1000*5 = 5421, y01 = 2 + 30 + 500 + 6000 = 6532,
        # y10 = 4 + 50 + 700 + 8000 = 8754,     y11 = 5 + 60 + 800 + 9000 = 9865.
        x = [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]
        w = [[[[1, 10], [100, 1000]]]]
        close(oracle.conv(x, w), [[[[5421, 6532], [8754, 9865]]]])
        # padding pairs ((0, 0), (1, 0)) adds a zero column on the left:
        # y00 = 0 + 10*1 + 0 + 1000*4 = 4010, y10 = 0 + 10*4 + 0 + 1000*7 = 7040.
        y = oracle.conv(x, w, padding=[(0, 0), (1, 0)])
        close(y, [[[[4010, 5421, 6532], [7040, 8754, 9865]]]])

    def test_low_precision_input(self) -> None:
        # float32 input is converted to float64 before computing.
        y = oracle.conv(np.asarray(X5, np.float32), np.asarray(W3, np.float16))
        close(y, [[[321, 432, 543]]])


    def test_lhs_dilation(self) -> None:
        # x = [1,2,3] spread 2 apart: [1,0,2,0,3], padded (1,1): [0,1,0,2,0,3,0]; with [1,10]:
        # [10, 1, 20, 2, 30, 3].
        close(oracle.conv([[[1, 2, 3]]], [[[1, 10]]], padding=[(1, 1)], lhs_dilation=2),
              [[[10, 1, 20, 2, 30, 3]]])
        # The flipped kernel [10,1] gives [1, 10, 2, 20, 3, 30]: the stride-2 transposed conv of x
        # with [1, 10] (full[2i + j] += x[i] * w[j]).
        close(oracle.conv([[[1, 2, 3]]], [[[10, 1]]], padding=[(1, 1)], lhs_dilation=2),
              [[[1, 10, 2, 20, 3, 30]]])
        close(oracle.conv_transpose([[[1, 2, 3]]], [[[1, 10]]], stride=2), [[[1, 10, 2, 20, 3, 30]]])

    def test_lhs_dilation_takes_only_explicit_padding(self) -> None:
        with pytest.raises(ValueError, match="explicit"):
            oracle.conv([[[1, 2, 3]]], [[[1, 10]]], padding="same", lhs_dilation=2)


class TestDenseExamples:
    def test_dense(self) -> None:
        # [1, 2] @ [[1, 10, 100], [2, 20, 200]] = [1+4, 10+40, 100+400].
        w = [[1, 10, 100], [2, 20, 200]]
        close(oracle.dense([[1, 2]], w), [[5, 50, 500]])
        close(oracle.dense([[1, 2]], w, [1, 2, 3]), [[6, 52, 503]])
        # leading dims are kept: (2, 1, 2) @ (2, 3) -> (2, 1, 3).
        close(oracle.dense([[[1, 2]], [[0, 1]]], w), [[[5, 50, 500]], [[2, 20, 200]]])


class TestConvTransposeExamples:
    def test_stride2(self) -> None:
        # full length (2-1)*2 + 3 = 5; x0=1 lands on 0..2, x1=2 on 2..4:
        # [1,1,1,0,0] + [0,0,2,2,2] = [1,1,3,2,2].
        close(oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2), [[[1, 1, 3, 2, 2]]])
        # w = [1,10,100]: [1,10,100,0,0] + [0,0,2,20,200] = [1,10,102,20,200].
        close(oracle.conv_transpose([[[1, 2]]], W3, stride=2), [[[1, 10, 102, 20, 200]]])

    def test_padding_crops(self) -> None:
        # [1,1,3,2,2] with 1 cropped from each end -> [1,3,2].
        close(oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, padding=1), [[[1, 3, 2]]])
        # pairs (2, 0) crop two at the start only -> [3,2,2].
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, padding=[(2, 0)])
        close(y, [[[3, 2, 2]]])

    def test_output_padding(self) -> None:
        # full [1,1,3,2,2] + one appended zero -> [1,1,3,2,2,0].
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, output_padding=1)
        close(y, [[[1, 1, 3, 2, 2, 0]]])
        # then crop 1 from each end -> [1,3,2,2] (PyTorch: (2-1)*2 - 2 + 3 + 1 = 4).
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, padding=1, output_padding=1)
        close(y, [[[1, 3, 2, 2]]])
        # output_padding 1 < dilation 2 is allowed with stride 1: x=[1], w=[1,1], d=2:
        # full = [1, 0, 1] + one appended zero.
        close(oracle.conv_transpose([[[1]]], [[[1, 1]]], dilation=2, output_padding=1), [[[1, 0, 1, 0]]])

    def test_same(self) -> None:
        # L*s = 4, full 5, total 1: crop 0 at the start and 1 at the end -> [1,1,3,2].
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, padding="same")
        close(y, [[[1, 1, 3, 2]]])
        # same_lower crops the odd cell at the start -> [1,3,2,2].
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1, 1]]], stride=2, padding="same_lower")
        close(y, [[[1, 3, 2, 2]]])
        # stride 3 > kernel 2: full = [1,1,0,2,2] (length 5) < L*s = 6 -> a zero appended.
        y = oracle.conv_transpose([[[1, 2]]], [[[1, 1]]], stride=3, padding="same")
        close(y, [[[1, 1, 0, 2, 2, 0]]])

    def test_dilation(self) -> None:
        # w = [1, 10], d=2: x0=1 lands on 0 and 2, x1=2 on 1 and 3: [1, 2, 10, 20].
        close(oracle.conv_transpose([[[1, 2]]], [[[1, 10]]], dilation=2), [[[1, 2, 10, 20]]])

    def test_groups_bias_layout(self) -> None:
        # x channels [1], [2]; w (2, 1, 2): c0 -> o0 with [1, 10], c1 -> o1 with [100, 1000].
        # o0 = 1*[1, 10] = [1, 10]; o1 = 2*[100, 1000] = [200, 2000]; plus b = [1, -1].
        x = [[[1], [2]]]
        w = [[[1, 10]], [[100, 1000]]]
        close(oracle.conv_transpose(x, w, [1, -1], groups=2), [[[2, 11], [199, 1999]]])
        # channels_last: x (1, 1, 2), w (k=2, C_out/groups=1, C_in=2).
        y = oracle.conv_transpose(
            [[[1, 2]]], [[[1, 100]], [[10, 1000]]], [1, -1], groups=2, layout="channels_last"
        )
        close(y, [[[2, 199], [11, 1999]]])


class TestConvVjpExamples:
    def test_valid(self) -> None:
        # x=[1,2,3], w=[1,10]: y = [x0 + 10 x1, x1 + 10 x2]; g = [1, 2]:
        # sum(y*g) = x0 + 12 x1 + 20 x2 + ... -> dx = [1, 12, 20]
        # dw0 = g0 x0 + g1 x1 = 1 + 4 = 5, dw1 = g0 x1 + g1 x2 = 2 + 6 = 8, db = 1 + 2.
        dx, dw, db = oracle.conv_vjp([[[1, 2, 3]]], [[[1, 10]]], [[[1, 2]]])
        close(dx, [[[1, 12, 20]]])
        close(dw, [[[5, 8]]])
        close(db, [3])

    def test_stride_padding(self) -> None:
        # padding 1, stride 2: xp = [0,1,2,3,0]; outputs at 0 and 2:
        # y0 = 0*w0 + x0*w1 = 10 x0, y1 = x1*w0 + x2*w1 = x1 + 10 x2; g = [1, 2]
        # -> dx = [10, 2, 20]; dw0 = 1*0 + 2*x1 = 4, dw1 = 1*x0 + 2*x2 = 7; db = 3.
        dx, dw, db = oracle.conv_vjp([[[1, 2, 3]]], [[[1, 10]]], [[[1, 2]]], stride=2, padding=1)
        close(dx, [[[10, 2, 20]]])
        close(dw, [[[4, 7]]])
        close(db, [3])

    def test_channels_last(self) -> None:
        # the first example in (N, L, C) and (k, C, O) layouts.
        dx, dw, db = oracle.conv_vjp([[[1], [2], [3]]], [[[1]], [[10]]], [[[1], [2]]], layout="channels_last")
        close(dx, [[[1], [12], [20]]])
        close(dw, [[[5]], [[8]]])
        close(db, [3])


class TestPoolExamples:
    def test_max_same_border_negative(self) -> None:
        # window 2, stride 2, SAME on L=5: out 3, total 1 -> pads (0, 1):
        # windows [-5,-3], [-4,-1], [-2, pad] -> [-3, -1, -2]: the pad is -inf, not 0.
        y = oracle.max_pool([[[-5, -3, -4, -1, -2]]], 2, padding="same")
        close(y, [[[-3, -1, -2]]])
        # explicit padding 1 with window 3 stride 1: [pad,-5,-3] -> -3 (not 0) ...
        y = oracle.max_pool([[[-5, -3, -4, -1, -2]]], 3, stride=1, padding=1)
        close(y, [[[-3, -3, -1, -1, -1]]])

    def test_max_dilation_and_default_stride(self) -> None:
        # window 2, dilation 2, stride 1: (x0,x2), (x1,x3), (x2,x4) of [1,5,2,4,3].
        close(oracle.max_pool([[[1, 5, 2, 4, 3]]], 2, stride=1, dilation=2), [[[2, 5, 3]]])
        # stride defaults to the window: [1,5], [2,4] (3 left over).
        close(oracle.max_pool([[[1, 5, 2, 4, 3]]], 2), [[[5, 4]]])

    def test_max_ceil_mode(self) -> None:
        # L=5, window 2, stride 2: floor -> windows [1,2],[3,4];
        # ceil keeps a third window [5] starting at 4 < 5.
        close(oracle.max_pool([X5[0]], 2), [[[2, 4]]])
        close(oracle.max_pool([X5[0]], 2, ceil_mode=True), [[[2, 4, 5]]])
        # L=4, padding 1, window 2, stride 3: ceil(4/3)+1 = 3 windows, but the third
        # would start at padded index 6 >= L + before = 5, so it is dropped:
        # windows at padded 0 ([pad, 1]) and 3 ([3, 4]) -> [1, 4].
        y = oracle.max_pool([[[1, 2, 3, 4]]], 2, stride=3, padding=1, ceil_mode=True)
        close(y, [[[1, 4]]])

    def test_max_all_padding_window(self) -> None:
        # pads (3, 0), window 2, stride 2 on [1, 2]: windows [pad, pad] and [pad, 1]
        # -> the all-padding window gives -inf (documented; frameworks reject this).
        y = oracle.max_pool([[[1, 2]]], 2, padding=[(3, 0)])
        np.testing.assert_array_equal(y, [[[-np.inf, 1]]])

    def test_avg_count_include_pad(self) -> None:
        # window 3, stride 1, padding 1 on [1,2,3,4,5]:
        # first window [pad,1,2]: (1+2)/2 = 1.5 without, (1+2)/3 = 1 with count_include_pad;
        # last [4,5,pad]: 9/2 = 4.5 vs 9/3 = 3; middle windows 2, 3, 4.
        close(oracle.avg_pool(X5, 3, stride=1, padding=1), [[[1.5, 2, 3, 4, 4.5]]])
        y = oracle.avg_pool(X5, 3, stride=1, padding=1, count_include_pad=True)
        close(y, [[[1, 2, 3, 4, 3]]])

    def test_avg_ceil_mode(self) -> None:
        # L=4, padding 1, window 3, stride 2, ceil: out = ceil(3/2) + 1 = 3 (third
        # starts at 4 < 5, kept); windows [pad,1,2], [2,3,4], [4, pad, beyond]:
        # without count_include_pad: 3/2, 9/3, 4/1; with: 3/3, 9/3, 4/2 (the tap
        # beyond the padded extent never counts).
        x = [[[1, 2, 3, 4]]]
        close(oracle.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True), [[[1.5, 3, 4]]])
        y = oracle.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        close(y, [[[1, 3, 2]]])
        # L=5, window 2, stride 2, no padding: the ceil window [5, beyond] divides by 1.
        y = oracle.avg_pool(X5, 2, ceil_mode=True, count_include_pad=True)
        close(y, [[[1.5, 3.5, 5]]])
        # the dropped-window case: windows [pad, 1] and [3, 4] only.
        y = oracle.avg_pool(x, 2, stride=3, padding=1, ceil_mode=True, count_include_pad=True)
        close(y, [[[0.5, 3.5]]])
        close(oracle.avg_pool(x, 2, stride=3, padding=1, ceil_mode=True), [[[1, 3.5]]])

    def test_pools_2d_channels_last(self) -> None:
        # (1, 2, 2, 2) NHWC; channel 0 = [[1,2],[3,4]], channel 1 = [[5,-6],[7,-8]].
        x = [[[[1, 5], [2, -6]], [[3, 7], [4, -8]]]]
        close(oracle.max_pool(x, 2, layout="channels_last"), [[[[4, 7]]]])
        close(oracle.avg_pool(x, 2, layout="channels_last"), [[[[2.5, -0.5]]]])

    def test_global(self) -> None:
        # channels_first (1, 2, 2): channels [1, 2] and [3, 5].
        x = [[[1, 2], [3, 5]]]
        close(oracle.global_avg_pool(x), [[1.5, 4]])
        close(oracle.global_max_pool(x), [[2, 5]])
        close(oracle.global_avg_pool(x, keepdims=True), [[[1.5], [4]]])
        # channels_last (1, 2, 2): channels are columns [1, 3] and [2, 5].
        close(oracle.global_avg_pool(x, layout="channels_last"), [[2, 3.5]])
        close(oracle.global_max_pool(x, layout="channels_last", keepdims=True), [[[3, 5]]])

    def test_avg_divisor(self) -> None:
        # window 2 on [1..5]: sums 3 and 7, each divided by 4 instead of 2.
        close(oracle.avg_pool(X5, 2, divisor=4), [[[0.75, 1.75]]])
        # window 3, stride 1, padding 1: sums [pad,1,2] = 3, 6, 9, 12, [4,5,pad] = 9, each divided by 3
        # whatever count_include_pad says (torch's divisor_override): [1, 2, 3, 4, 3].
        for cip in (False, True):
            y = oracle.avg_pool(X5, 3, stride=1, padding=1, count_include_pad=cip, divisor=3)
            close(y, [[[1, 2, 3, 4, 3]]])


class TestPadExamples:
    def test_each_mode_and_its_aliases_1d(self) -> None:
        x = [1.0, 2.0, 3.0]
        # two cells each side of [1 2 3]:
        zeros = [0, 0, 1, 2, 3, 0, 0]
        reflect = [3, 2, 1, 2, 3, 2, 1]  # the edge not repeated: x[2], x[1] | ... | x[1], x[0]
        symmetric = [2, 1, 1, 2, 3, 3, 2]  # the edge repeated: x[1], x[0] | ... | x[2], x[1]
        replicate = [1, 1, 1, 2, 3, 3, 3]
        circular = [2, 3, 1, 2, 3, 1, 2]  # x[-2 mod 3] = x[1], x[-1 mod 3] = x[2] | ... | x[0], x[1]
        for modes, want in ((("constant", "zeros"), zeros), (("reflect",), reflect),
                            (("symmetric",), symmetric), (("replicate", "edge"), replicate),
                            (("circular", "wrap"), circular)):
            for mode in modes:
                close(oracle.pad(x, [(2, 2)], mode), want)
        # the default mode is zeros; asymmetric pairs.
        close(oracle.pad(x, [(1, 0)]), [0, 1, 2, 3])
        close(oracle.pad(x, [(0, 1)], "reflect"), [1, 2, 3, 2])
        close(oracle.pad(x, [(1, 0)], "symmetric"), [1, 1, 2, 3])

    def test_the_most_each_mode_pads(self) -> None:
        x = [1.0, 2.0, 3.0]
        # reflect reaches L - 1 = 2 cells (x[2], x[1] before x[0]); symmetric and circular reach L = 3.
        close(oracle.pad(x, [(2, 2)], "reflect"), [3, 2, 1, 2, 3, 2, 1])
        close(oracle.pad(x, [(3, 3)], "symmetric"), [3, 2, 1, 1, 2, 3, 3, 2, 1])
        close(oracle.pad(x, [(3, 3)], "circular"), [1, 2, 3, 1, 2, 3, 1, 2, 3])
        # replicate any amount; a single cell reflects nothing, so reflect pads it 0 cells.
        close(oracle.pad([5.0], [(3, 1)], "replicate"), [5, 5, 5, 5, 5])
        close(oracle.pad([5.0], [(0, 0)], "reflect"), [5])

    def test_2d_axes_are_independent(self) -> None:
        # x = [[1, 2, 3], [4, 5, 6]]; rows padded (1, 0), columns (0, 1).
        x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        # reflect: row -1 copies row 1, column 3 copies column 1.
        close(oracle.pad(x, [(1, 0), (0, 1)], "reflect"), [[4, 5, 6, 5], [1, 2, 3, 2], [4, 5, 6, 5]])
        # circular: row -1 copies row 1 (-1 mod 2), column 3 copies column 0; the corner x[1][0].
        close(oracle.pad(x, [(1, 0), (0, 1)], "circular"), [[4, 5, 6, 4], [1, 2, 3, 1], [4, 5, 6, 4]])
        # replicate: the corner copies x's nearest corner x[0][2] = 3.
        close(oracle.pad(x, [(1, 0), (0, 1)], "replicate"), [[1, 2, 3, 3], [1, 2, 3, 3], [4, 5, 6, 6]])
        # an NCW array padded on its last axis only, as a conv's input is.
        close(oracle.pad([[[1.0, 2.0, 3.0]]], [(0, 0), (0, 0), (1, 1)], "symmetric"), [[[1, 1, 2, 3, 3]]])


class TestAdaptivePoolExamples:
    def test_windows(self) -> None:
        # L=5, n=3: [floor(5i/3), ceil(5(i+1)/3)) = [0, 2), [1, 4), [3, 5): they overlap.
        assert oracle.adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]
        # n divides L: L=6, n=3 tiles by 2.
        assert oracle.adaptive_windows(6, 3) == [(0, 2), (2, 4), (4, 6)]
        # VGG's head, 7 from 13: starts floor(13i/7) = 0 1 3 5 7 9 11,
        # ends ceil(13(i+1)/7) = 2 4 6 8 10 12 13.
        assert oracle.adaptive_windows(13, 7) == [(0, 2), (1, 4), (3, 6), (5, 8), (7, 10), (9, 12), (11, 13)]
        # n > L: L=2, n=3: [0, 1), [0, 2), [1, 2).
        assert oracle.adaptive_windows(2, 3) == [(0, 1), (0, 2), (1, 2)]

    def test_1d(self) -> None:
        # windows [1 2], [2 3 4], [4 5] of [1..5].
        close(oracle.adaptive_avg_pool(X5, 3), [[[1.5, 3, 4.5]]])
        close(oracle.adaptive_max_pool(X5, 3), [[[2, 4, 5]]])
        # n > L: windows [1], [1 3], [3] of [1, 3].
        close(oracle.adaptive_avg_pool([[[1.0, 3.0]]], 3), [[[1, 2, 3]]])
        # n = 1 is the global pool.
        close(oracle.adaptive_avg_pool(X5, 1), [[[3]]])

    def test_2d_channels_last(self) -> None:
        # one channel [[1, 2, 3], [4, 5, 6]] (H=2, W=3) to (1, 2): rows [0, 2), columns [0, 2) and [1, 3):
        # means (1+2+4+5)/4 = 3 and (2+3+5+6)/4 = 4; maxes 5 and 6.
        x = [[[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]]]
        close(oracle.adaptive_avg_pool(x, (1, 2), layout="channels_last"), [[[[3], [4]]]])
        close(oracle.adaptive_max_pool(x, (1, 2), layout="channels_last"), [[[[5], [6]]]])

    def test_max_propagates_nan(self) -> None:
        # NumPy's max: a NaN in a window makes that window NaN; [2, 4, 5] otherwise.
        y = oracle.adaptive_max_pool([[[1.0, 2.0, np.nan, 4.0, 5.0]]], 3)
        np.testing.assert_array_equal(y, [[[2, np.nan, 5]]])


# ===========================================================================
# Brute-force references, straight from the definitions
# ===========================================================================


def ref_pads(padding: Any, L: list[int], k: list[int], s: list[int], d: list[int]) -> list[tuple[int, int]]:
    """The padding rules of the spec, written independently of the oracle."""
    nd = len(L)
    if padding == "valid":
        return [(0, 0)] * nd
    if padding in ("same", "same_lower"):
        pairs = []
        for i in range(nd):
            total = max((math.ceil(L[i] / s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - L[i], 0)
            if padding == "same":
                pairs.append((total // 2, total - total // 2))
            else:
                pairs.append((total - total // 2, total // 2))
        return pairs
    if padding == "causal":
        return [((k[0] - 1) * d[0], 0)]
    if padding == "full":
        return [((k[i] - 1) * d[i], (k[i] - 1) * d[i]) for i in range(nd)]
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else (p[0], p[1]) for p in padding]


def inside(pos: tuple[int, ...], lo: list[int], hi: list[int]) -> bool:
    return all(lo[i] <= pos[i] < hi[i] for i in range(len(pos)))


def brute_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    s: list[int],
    pads: list[tuple[int, int]],
    d: list[int],
    groups: int,
) -> np.ndarray:
    """y[n,o,i] = b[o] + sum_{c,j} x[n, g*Cg + c, i*s + j*d - before] * w[o,c,j]."""
    N, _, *L = x.shape
    n_out, Cg, *K = w.shape
    nd = len(L)
    out = [(L[a] + sum(pads[a]) - (K[a] - 1) * d[a] - 1) // s[a] + 1 for a in range(nd)]
    y = np.zeros((N, n_out, *out))
    for n, o in itertools.product(range(N), range(n_out)):
        g = o // (n_out // groups)
        for i in itertools.product(*map(range, out)):
            acc = 0.0 if b is None else float(b[o])
            for j in itertools.product(*map(range, K)):
                pos = tuple(i[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
                if inside(pos, [0] * nd, L):  # taps on padding contribute zero
                    for c in range(Cg):
                        acc += x[(n, g * Cg + c, *pos)] * w[(o, c, *j)]
            y[(n, o, *i)] = acc
    return y


def brute_conv_vjp(
    x: np.ndarray,
    w: np.ndarray,
    gy: np.ndarray,
    s: list[int],
    pads: list[tuple[int, int]],
    d: list[int],
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d/dx, d/dw, d/db of sum(y * gy): each term x*w of y[n,o,i] sends gy*w to x
    and gy*x to w; b[o] gets every gy[n,o,i]."""
    N, _, *L = x.shape
    n_out, Cg, *K = w.shape
    nd = len(L)
    out = list(gy.shape[2:])
    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(n_out)
    for n, o in itertools.product(range(N), range(n_out)):
        g = o // (n_out // groups)
        for i in itertools.product(*map(range, out)):
            gv = gy[(n, o, *i)]
            db[o] += gv
            for j in itertools.product(*map(range, K)):
                pos = tuple(i[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
                if inside(pos, [0] * nd, L):
                    for c in range(Cg):
                        dx[(n, g * Cg + c, *pos)] += gv * w[(o, c, *j)]
                        dw[(o, c, *j)] += gv * x[(n, g * Cg + c, *pos)]
    return dx, dw, db


def brute_conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    s: list[int],
    padding: Any,
    op: list[int],
    d: list[int],
    groups: int,
) -> np.ndarray:
    """Scatter full[n, o, i*s + j*d] += x[n,c,i] * w[c,o',j], then crop."""
    N, Cin, *L = x.shape
    _, Cog, *K = w.shape
    nd = len(L)
    Cig = Cin // groups
    full = [(L[a] - 1) * s[a] + (K[a] - 1) * d[a] + 1 for a in range(nd)]
    # room for output_padding and for "same" asking for more than full has.
    size = [max(full[a] + op[a], L[a] * s[a]) for a in range(nd)]
    y = np.zeros((N, Cog * groups, *size))
    for n, c in itertools.product(range(N), range(Cin)):
        g = c // Cig
        for i in itertools.product(*map(range, L)):
            for oo in range(Cog):
                for j in itertools.product(*map(range, K)):
                    pos = tuple(i[a] * s[a] + j[a] * d[a] for a in range(nd))
                    y[(n, g * Cog + oo, *pos)] += x[(n, c, *i)] * w[(c, oo, *j)]
    index: list[slice] = [slice(None), slice(None)]
    for a in range(nd):
        if padding in ("same", "same_lower"):
            total = full[a] - L[a] * s[a]
            start = 0 if total < 0 else (total // 2 if padding == "same" else total - total // 2)
            index.append(slice(start, start + L[a] * s[a]))
        else:
            pb, pa = (0, 0) if padding == "valid" else ref_pads(padding, L, K, s, d)[a]
            index.append(slice(pb, full[a] + op[a] - pa))
    y = y[tuple(index)]
    if b is not None:
        y = y + b.reshape(-1, *([1] * nd))
    return y


def pool_out_len(L: int, pb: int, pa: int, k: int, s: int, d: int, ceil_mode: bool) -> int:
    span = L + pb + pa - (k - 1) * d - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= L + pb:
        out -= 1
    return out


def brute_pool(
    x: np.ndarray,
    kind: str,
    k: list[int],
    s: list[int],
    pads: list[tuple[int, int]],
    d: list[int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> tuple[np.ndarray, int]:
    """Max, sum or mean over each window's taps; also the fewest real taps of any window."""
    N, C, *L = x.shape
    nd = len(L)
    out = [pool_out_len(L[a], *pads[a], k[a], s[a], d[a], ceil_mode) for a in range(nd)]
    y = np.zeros((N, C, *out))
    fewest = math.prod(k)
    for n, c in itertools.product(range(N), range(C)):
        for i in itertools.product(*map(range, out)):
            real: list[float] = []
            in_padded_extent = 0
            for j in itertools.product(*map(range, k)):
                pos = tuple(i[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
                if inside(pos, [-p[0] for p in pads], [L[a] + pads[a][1] for a in range(nd)]):
                    in_padded_extent += 1
                if inside(pos, [0] * nd, L):
                    real.append(float(x[(n, c, *pos)]))
            fewest = min(fewest, len(real))
            if not real:
                y[(n, c, *i)] = np.nan
            elif kind == "max":
                y[(n, c, *i)] = max(real)
            elif kind == "sum":
                y[(n, c, *i)] = sum(real)
            else:
                y[(n, c, *i)] = sum(real) / (in_padded_extent if count_include_pad else len(real))
    return y, fewest


# ===========================================================================
# Random configurations
# ===========================================================================

CONV_PADDINGS = ("valid", "same", "same_lower", "causal", "full", "int", "pairs")
CHUNKS = 10


def per_axis(rng: np.random.Generator, lo: int, hi: int, nd: int) -> tuple[int | tuple[int, ...], list[int]]:
    """A random per-axis value, given as an int or a tuple; and its expansion."""
    if rng.random() < 0.5:
        v = int(rng.integers(lo, hi + 1))
        return v, [v] * nd
    vals = [int(v) for v in rng.integers(lo, hi + 1, nd)]
    return tuple(vals), vals


def padding_arg(rng: np.random.Generator, form: str, nd: int) -> Any:
    if form == "int":
        return int(rng.integers(0, 3))
    if form == "pairs":
        # mostly (before, after) pairs; sometimes a bare int for an axis.
        return [
            int(rng.integers(0, 3))
            if rng.random() < 0.2
            else (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
            for _ in range(nd)
        ]
    return form


def draw_nd(rng: np.random.Generator, form: str) -> int:
    return 1 if form == "causal" else int(rng.choice([1, 1, 2, 2, 3]))


def spatial_sizes(rng: np.random.Generator, nd: int) -> tuple[list[int], list[int]]:
    """(input lengths, kernel sizes), small enough for brute force."""
    max_len, max_k = {1: (12, 5), 2: (7, 3), 3: (5, 3)}[nd]
    L = [int(v) for v in rng.integers(1, max_len + 1, nd)]
    k = [int(v) for v in rng.integers(1, max_k + 1, nd)]
    return L, k


def maybe_low_precision(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Sometimes hand the oracle float32 input (the reference uses its float64 value)."""
    return x.astype(np.float32) if rng.random() < 0.15 else x


def conv_config(rng: np.random.Generator, index: int) -> Cfg:
    form = CONV_PADDINGS[index % len(CONV_PADDINGS)]
    while True:
        nd = draw_nd(rng, form)
        L, k = spatial_sizes(rng, nd)
        stride, s = per_axis(rng, 1, 3, nd)
        dilation, d = per_axis(rng, 1, 3, nd)
        padding = padding_arg(rng, form, nd)
        pads = ref_pads(padding, L, k, s, d)
        if all((k[a] - 1) * d[a] + 1 <= L[a] + sum(pads[a]) for a in range(nd)):
            break
    groups = int(rng.choice([1, 1, 2, 3]))
    cfg: Cfg = {
        "nd": nd,
        "L": L,
        "k": k,
        "stride": stride,
        "s": s,
        "dilation": dilation,
        "d": d,
        "padding": padding,
        "pads": pads,
        "groups": groups,
        "N": int(rng.integers(1, 3)),
        "Cg": int(rng.integers(1, 3)),
        "Og": int(rng.integers(1, 3)),
        "bias": bool(rng.random() < 0.5),
        "layout": ("channels_first", "channels_last")[index % 2],
    }
    return cfg


def conv_arrays(rng: np.random.Generator, cfg: Cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    G = cfg["groups"]
    x = rng.standard_normal((cfg["N"], G * cfg["Cg"], *cfg["L"]))
    w = rng.standard_normal((G * cfg["Og"], cfg["Cg"], *cfg["k"]))
    b = rng.standard_normal(G * cfg["Og"]) if cfg["bias"] else None
    return x, w, b


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return x if layout == "channels_first" else np.moveaxis(x, 1, -1)


def from_layout(y: np.ndarray, layout: str) -> np.ndarray:
    return y if layout == "channels_first" else np.moveaxis(y, -1, 1)


def w_to_layout(w: np.ndarray, layout: str) -> np.ndarray:
    """(A, B, *k) -> (*k, B, A) for channels_last."""
    nd = w.ndim - 2
    return w if layout == "channels_first" else w.transpose((*range(2, nd + 2), 1, 0))


def w_from_layout(w: np.ndarray, layout: str) -> np.ndarray:
    nd = w.ndim - 2
    return w if layout == "channels_first" else w.transpose((nd + 1, nd, *range(nd)))


def chunk_configs(make: Any, seed: int, chunk: int, per_chunk: int) -> list[tuple[Cfg, np.random.Generator]]:
    rng = np.random.default_rng([seed, chunk])
    return [(make(rng, chunk * per_chunk + i), rng) for i in range(per_chunk)]


# ---------------------------------------------------------------------------
# conv
# ---------------------------------------------------------------------------

CONV_PER_CHUNK = 60


def all_conv_configs() -> list[Cfg]:
    return [c for chunk in range(CHUNKS) for c, _ in chunk_configs(conv_config, 1, chunk, CONV_PER_CHUNK)]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_conv_matches_brute_force(chunk: int) -> None:
    for cfg, rng in chunk_configs(conv_config, 1, chunk, CONV_PER_CHUNK):
        x, w, b = conv_arrays(rng, cfg)
        lay = cfg["layout"]
        x_in = maybe_low_precision(rng, to_layout(x, lay))
        x = from_layout(np.asarray(x_in, np.float64), lay)
        expected = brute_conv(x, w, b, cfg["s"], cfg["pads"], cfg["d"], cfg["groups"])
        y = oracle.conv(
            x_in,
            w_to_layout(w, lay),
            b,
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            groups=cfg["groups"],
            layout=lay,
        )
        assert y.dtype == np.float64, cfg
        np.testing.assert_allclose(from_layout(y, lay), expected, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))


def test_conv_configs_cover_every_feature() -> None:
    configs = all_conv_configs()
    assert len(configs) >= 600
    assert {str(c["padding"]) for c in configs if isinstance(c["padding"], str)} >= {
        "valid",
        "same",
        "same_lower",
        "causal",
        "full",
    }
    assert any(isinstance(c["padding"], int) for c in configs)
    assert any(isinstance(c["padding"], list) for c in configs)
    assert {c["nd"] for c in configs} == {1, 2, 3}
    assert {c["layout"] for c in configs} == {"channels_first", "channels_last"}
    assert any(c["groups"] > 1 for c in configs) and any(c["groups"] == 1 for c in configs)
    assert {c["bias"] for c in configs} == {True, False}
    assert any(isinstance(c["stride"], tuple) for c in configs)
    assert any(isinstance(c["stride"], int) and c["stride"] > 1 for c in configs)
    assert any(isinstance(c["dilation"], tuple) for c in configs)
    assert any(isinstance(c["dilation"], int) and c["dilation"] > 1 for c in configs)
    for nd in (1, 2, 3):
        forms = {
            c["padding"] if isinstance(c["padding"], str) else type(c["padding"]).__name__
            for c in configs
            if c["nd"] == nd
        }
        assert forms >= {"valid", "same", "same_lower", "full", "int", "list"}, (nd, forms)


# ---------------------------------------------------------------------------
# conv_transpose
# ---------------------------------------------------------------------------

TRANSPOSE_PADDINGS = ("int", "pairs", "valid", "same", "same_lower", "int")
TRANSPOSE_PER_CHUNK = 30


def conv_transpose_config(rng: np.random.Generator, index: int) -> Cfg:
    form = TRANSPOSE_PADDINGS[index % len(TRANSPOSE_PADDINGS)]
    while True:
        nd = int(rng.choice([1, 1, 2, 2, 3]))
        L, k = spatial_sizes(rng, nd)
        L = [min(v, 5) for v in L]
        stride, s = per_axis(rng, 1, 3, nd)
        dilation, d = per_axis(rng, 1, 3, nd)
        if form in ("same", "same_lower"):
            output_padding: int | tuple[int, ...] = 0
            op = [0] * nd
        else:
            op = [int(rng.integers(0, max(s[a], d[a]))) for a in range(nd)]
            output_padding = op[0] if len(set(op)) == 1 and rng.random() < 0.5 else tuple(op)
        padding = padding_arg(rng, form, nd)
        full = [(L[a] - 1) * s[a] + (k[a] - 1) * d[a] + 1 + op[a] for a in range(nd)]
        if form in ("int", "pairs"):
            pads = ref_pads(padding, L, k, s, d)
            if any(full[a] - sum(pads[a]) < 1 for a in range(nd)):
                continue
        break
    return {
        "nd": nd,
        "L": L,
        "k": k,
        "stride": stride,
        "s": s,
        "dilation": dilation,
        "d": d,
        "padding": padding,
        "output_padding": output_padding,
        "op": op,
        "groups": int(rng.choice([1, 1, 2, 3])),
        "N": int(rng.integers(1, 3)),
        "Cig": int(rng.integers(1, 3)),
        "Cog": int(rng.integers(1, 3)),
        "bias": bool(rng.random() < 0.5),
        "layout": ("channels_first", "channels_last")[index % 2],
    }


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_conv_transpose_matches_brute_force(chunk: int) -> None:
    for cfg, rng in chunk_configs(conv_transpose_config, 2, chunk, TRANSPOSE_PER_CHUNK):
        G, lay = cfg["groups"], cfg["layout"]
        x = rng.standard_normal((cfg["N"], G * cfg["Cig"], *cfg["L"]))
        w = rng.standard_normal((G * cfg["Cig"], cfg["Cog"], *cfg["k"]))
        b = rng.standard_normal(G * cfg["Cog"]) if cfg["bias"] else None
        expected = brute_conv_transpose(x, w, b, cfg["s"], cfg["padding"], cfg["op"], cfg["d"], G)
        y = oracle.conv_transpose(
            to_layout(x, lay),
            w_to_layout(w, lay),
            b,
            stride=cfg["stride"],
            padding=cfg["padding"],
            output_padding=cfg["output_padding"],
            dilation=cfg["dilation"],
            groups=G,
            layout=lay,
        )
        assert y.dtype == np.float64, cfg
        np.testing.assert_allclose(from_layout(y, lay), expected, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))


def test_conv_transpose_configs_cover_every_feature() -> None:
    configs = [
        c for ch in range(CHUNKS) for c, _ in chunk_configs(conv_transpose_config, 2, ch, TRANSPOSE_PER_CHUNK)
    ]
    assert len(configs) >= 300
    assert {c["nd"] for c in configs} == {1, 2, 3}
    assert {c["layout"] for c in configs} == {"channels_first", "channels_last"}
    assert any(any(c["op"]) for c in configs)
    assert any(c["groups"] > 1 for c in configs)
    padded = {c["padding"] if isinstance(c["padding"], str) else type(c["padding"]).__name__ for c in configs}
    assert padded == {"valid", "same", "same_lower", "int", "list"}
    # "same" with stride larger than the dilated kernel (zeros appended) occurs.
    assert any(
        c["padding"] == "same"
        and any(s > (k - 1) * d + 1 for s, k, d in zip(c["s"], c["k"], c["d"], strict=True))
        for c in configs
    )


# ---------------------------------------------------------------------------
# conv_vjp
# ---------------------------------------------------------------------------

VJP_PER_CHUNK = 30


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_conv_vjp_matches_brute_force(chunk: int) -> None:
    for cfg, rng in chunk_configs(conv_config, 3, chunk, VJP_PER_CHUNK):
        x, w, _ = conv_arrays(rng, cfg)
        lay = cfg["layout"]
        out = [
            (cfg["L"][a] + sum(cfg["pads"][a]) - (cfg["k"][a] - 1) * cfg["d"][a] - 1) // cfg["s"][a] + 1
            for a in range(cfg["nd"])
        ]
        gy = rng.standard_normal((x.shape[0], w.shape[0], *out))
        edx, edw, edb = brute_conv_vjp(x, w, gy, cfg["s"], cfg["pads"], cfg["d"], cfg["groups"])
        dx, dw, db = oracle.conv_vjp(
            to_layout(x, lay),
            w_to_layout(w, lay),
            to_layout(gy, lay),
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            groups=cfg["groups"],
            layout=lay,
        )
        np.testing.assert_allclose(from_layout(dx, lay), edx, rtol=1e-12, atol=1e-12, err_msg=f"dx {cfg!r}")
        np.testing.assert_allclose(w_from_layout(dw, lay), edw, rtol=1e-12, atol=1e-12, err_msg=f"dw {cfg!r}")
        np.testing.assert_allclose(db, edb, rtol=1e-12, atol=1e-12, err_msg=f"db {cfg!r}")


@pytest.mark.parametrize("index", range(8))
def test_conv_vjp_finite_differences(index: int) -> None:
    """Central differences of sum(conv(x, w, b) * g) (exact up to rounding: conv is linear)."""
    rng = np.random.default_rng([4, index])
    cfg = conv_config(rng, index)
    x, w, _ = conv_arrays(rng, cfg)
    b = rng.standard_normal((w.shape[0],))
    lay = cfg["layout"]
    x, w = to_layout(x, lay), w_to_layout(w, lay)
    kwargs = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups", "layout")}
    gy = rng.standard_normal(oracle.conv(x, w, b, **kwargs).shape)

    def loss(xx: np.ndarray, ww: np.ndarray, bb: np.ndarray) -> float:
        return float(np.sum(oracle.conv(xx, ww, bb, **kwargs) * gy))

    eps = 1e-3
    grads = oracle.conv_vjp(x, w, gy, **kwargs)
    arrays: list[np.ndarray] = [x, w, b]
    for which, arr in enumerate(arrays):
        fd = np.zeros(arr.shape)
        for pos in np.ndindex(arr.shape):
            args = [v.copy() for v in arrays]
            args[which][pos] += eps
            up = loss(*args)
            args[which][pos] -= 2 * eps
            fd[pos] = (up - loss(*args)) / (2 * eps)
        np.testing.assert_allclose(grads[which], fd, rtol=1e-7, atol=1e-7, err_msg=f"{which} {cfg!r}")


# ---------------------------------------------------------------------------
# max_pool / avg_pool
# ---------------------------------------------------------------------------

POOL_PADDINGS = ("valid", "same", "same_lower", "int", "pairs", "valid", "full", "causal")
POOL_PER_CHUNK = 30


def pool_config(rng: np.random.Generator, index: int, kind: str) -> tuple[Cfg, np.ndarray, np.ndarray]:
    """A valid pooling configuration with its input and brute-force output.

    Redrawn until every window has at least one real tap (otherwise max is -inf
    and the mean without count_include_pad is 0/0).
    """
    form = POOL_PADDINGS[index % len(POOL_PADDINGS)]
    while True:
        nd = draw_nd(rng, form)
        L, k = spatial_sizes(rng, nd)
        k = [min(v + int(rng.integers(0, 2)), 3) for v in k]
        window: int | tuple[int, ...] = k[0] if len(set(k)) == 1 and rng.random() < 0.5 else tuple(k)
        if rng.random() < 0.25:
            stride, s = None, list(k)
        else:
            stride, s = per_axis(rng, 1, 3, nd)
        dilation, d = per_axis(rng, 1, 2, nd)
        padding = padding_arg(rng, form, nd)
        pads = ref_pads(padding, L, k, s, d)
        if not all((k[a] - 1) * d[a] + 1 <= L[a] + sum(pads[a]) for a in range(nd)):
            continue
        ceil_mode = bool(rng.random() < 0.5)
        cip = bool(rng.random() < 0.5)
        x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 3)), *L))
        if kind == "max" and rng.random() < 0.3:
            x = -np.abs(x) - 1.0  # all negative: a zero pad winning would show
        x = maybe_low_precision(rng, x)
        expected, fewest = brute_pool(x.astype(np.float64), kind, k, s, pads, d, ceil_mode, cip)
        if fewest > 0:
            break
    cfg: Cfg = {
        "nd": nd,
        "L": L,
        "window": window,
        "stride": stride,
        "dilation": dilation,
        "k": k,
        "s": s,
        "d": d,
        "padding": padding,
        "pads": pads,
        "ceil_mode": ceil_mode,
        "count_include_pad": cip,
        "layout": ("channels_first", "channels_last")[index % 2],
    }
    return cfg, x, expected


def all_pool_configs(kind: str, seed: int) -> list[Cfg]:
    out = []
    for chunk in range(CHUNKS):
        rng = np.random.default_rng([seed, chunk])
        out += [pool_config(rng, chunk * POOL_PER_CHUNK + i, kind)[0] for i in range(POOL_PER_CHUNK)]
    return out


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_max_pool_matches_brute_force(chunk: int) -> None:
    rng = np.random.default_rng([5, chunk])
    for i in range(POOL_PER_CHUNK):
        cfg, x, expected = pool_config(rng, chunk * POOL_PER_CHUNK + i, "max")
        lay = cfg["layout"]
        y = oracle.max_pool(
            to_layout(x, lay),
            cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            ceil_mode=cfg["ceil_mode"],
            layout=lay,
        )
        np.testing.assert_allclose(from_layout(y, lay), expected, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_avg_pool_matches_brute_force(chunk: int) -> None:
    rng = np.random.default_rng([6, chunk])
    for i in range(POOL_PER_CHUNK):
        cfg, x, expected = pool_config(rng, chunk * POOL_PER_CHUNK + i, "avg")
        lay = cfg["layout"]
        y = oracle.avg_pool(
            to_layout(x, lay),
            cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            ceil_mode=cfg["ceil_mode"],
            count_include_pad=cfg["count_include_pad"],
            layout=lay,
        )
        np.testing.assert_allclose(from_layout(y, lay), expected, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))


@pytest.mark.parametrize("chunk", range(3))
def test_avg_pool_divisor_matches_brute_force(chunk: int) -> None:
    rng = np.random.default_rng([9, chunk])
    for i in range(POOL_PER_CHUNK):
        cfg, x, _ = pool_config(rng, chunk * POOL_PER_CHUNK + i, "avg")
        divisor = int(rng.integers(1, 10))
        sums, _ = brute_pool(x.astype(np.float64), "sum", cfg["k"], cfg["s"], cfg["pads"], cfg["d"],
                             cfg["ceil_mode"], cfg["count_include_pad"])
        lay = cfg["layout"]
        y = oracle.avg_pool(
            to_layout(x, lay), cfg["window"], stride=cfg["stride"], padding=cfg["padding"],
            dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"],
            divisor=divisor, layout=lay,
        )
        np.testing.assert_allclose(from_layout(y, lay), sums / divisor, rtol=1e-12, atol=1e-12,
                                   err_msg=repr((cfg, divisor)))


def test_pool_configs_cover_every_feature() -> None:
    for kind, seed in (("max", 5), ("avg", 6)):
        configs = all_pool_configs(kind, seed)
        assert len(configs) >= 300
        assert {c["nd"] for c in configs} == {1, 2, 3}
        assert {c["ceil_mode"] for c in configs} == {True, False}
        assert {c["count_include_pad"] for c in configs} == {True, False}
        assert {c["layout"] for c in configs} == {"channels_first", "channels_last"}
        assert any(c["stride"] is None for c in configs)
        assert any(c["dilation"] != 1 for c in configs)
        forms = {
            c["padding"] if isinstance(c["padding"], str) else type(c["padding"]).__name__ for c in configs
        }
        assert forms == {"valid", "same", "same_lower", "full", "causal", "int", "list"}, forms

        # ceil_mode changes the output length in some configurations, and
        # PyTorch's rule drops a window in others.
        def lengths(c: Cfg, a: int) -> tuple[int, int, int]:
            L, (pb, pa), k, s, d = c["L"][a], c["pads"][a], c["k"][a], c["s"][a], c["d"][a]
            naive_ceil = math.ceil((L + pb + pa - (k - 1) * d - 1) / s) + 1
            floor, ceil = (pool_out_len(L, pb, pa, k, s, d, mode) for mode in (False, True))
            return floor, ceil, naive_ceil

        ceil_axes = [lengths(c, a) for c in configs if c["ceil_mode"] for a in range(c["nd"])]
        assert any(floor < ceil for floor, ceil, _ in ceil_axes)
        assert any(ceil < naive for _, ceil, naive in ceil_axes)


# ---------------------------------------------------------------------------
# global pools
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_global_pools_match_brute_force(chunk: int) -> None:
    rng = np.random.default_rng([7, chunk])
    for i in range(30):
        nd = int(rng.integers(1, 4))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *(int(v) for v in rng.integers(1, 5, nd)))
        x = rng.standard_normal(shape)
        lay = ("channels_first", "channels_last")[i % 2]
        keepdims = bool(rng.random() < 0.5)
        N, C, *L = shape
        mean, top = np.zeros((N, C)), np.full((N, C), -np.inf)
        for n, c in itertools.product(range(N), range(C)):
            total = 0.0
            for pos in itertools.product(*map(range, L)):
                total += x[(n, c, *pos)]
                top[n, c] = max(top[n, c], x[(n, c, *pos)])
            mean[n, c] = total / math.prod(L)
        if keepdims:
            mean, top = mean.reshape(N, C, *[1] * nd), top.reshape(N, C, *[1] * nd)
            mean, top = to_layout(mean, lay), to_layout(top, lay)
        cfg = (shape, lay, keepdims)
        got_mean = oracle.global_avg_pool(to_layout(x, lay), layout=lay, keepdims=keepdims)
        got_max = oracle.global_max_pool(to_layout(x, lay), layout=lay, keepdims=keepdims)
        np.testing.assert_allclose(got_mean, mean, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))
        np.testing.assert_allclose(got_max, top, rtol=1e-12, atol=1e-12, err_msg=repr(cfg))


# ---------------------------------------------------------------------------
# pad with a mode
# ---------------------------------------------------------------------------

# The most cells each mode may add on a side of an axis of length L.
PAD_REACH = {"constant": lambda L: 4, "reflect": lambda L: L - 1, "symmetric": lambda L: L,
             "replicate": lambda L: 4, "circular": lambda L: L}
PAD_NAMES = {"constant": ("constant", "zeros"), "reflect": ("reflect",), "symmetric": ("symmetric",),
             "replicate": ("replicate", "edge"), "circular": ("circular", "wrap")}


def ref_pad_source(mode: str, i: int, L: int) -> int | None:
    """The cell of an axis of length L that padded cell i copies (None: a zero), found by walking:
    reflect bounces off the edge cell, symmetric off the edge itself, circular steps a length."""
    if 0 <= i < L:
        return i
    if mode == "constant":
        return None
    if mode == "replicate":
        return 0 if i < 0 else L - 1
    if mode == "circular":
        while i < 0:
            i += L
        while i >= L:
            i -= L
        return i
    if mode == "reflect":  # the mirror is cell 0 (or L - 1): i cells before it is i cells after it
        return 0 + (0 - i) if i < 0 else (L - 1) - (i - (L - 1))
    # symmetric: the mirror is the boundary at -1/2 (or L - 1/2)
    return -1 - i if i < 0 else L - 1 - (i - L)


def brute_pad(x: np.ndarray, pairs: list[tuple[int, int]], mode: str) -> np.ndarray:
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pairs, strict=True))
    y = np.zeros(shape)
    for pos in itertools.product(*map(range, shape)):
        src = [ref_pad_source(mode, pos[a] - pairs[a][0], x.shape[a]) for a in range(x.ndim)]
        y[pos] = 0.0 if None in src else x[tuple(src)]
    return y


@pytest.mark.parametrize("mode", sorted(PAD_NAMES))
def test_pad_matches_brute_force(mode: str) -> None:
    rng = np.random.default_rng([10, sorted(PAD_NAMES).index(mode)])
    for _ in range(60):
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 6 if ndim < 4 else 4, ndim))
        pairs = []
        for L in shape:  # some axes unpadded, the rest up to the mode's reach
            reach = PAD_REACH[mode](L) if rng.random() < 0.8 else 0
            pairs.append((int(rng.integers(0, reach + 1)), int(rng.integers(0, reach + 1))))
        x = maybe_low_precision(rng, rng.standard_normal(shape))
        name = PAD_NAMES[mode][int(rng.integers(0, len(PAD_NAMES[mode])))]
        expected = brute_pad(x.astype(np.float64), pairs, mode)
        close(oracle.pad(x, pairs, name), expected)


def test_pad_modes_cover_every_name() -> None:
    assert {n for names in PAD_NAMES.values() for n in names} == set(oracle.PAD_MODES)
    assert {oracle.PAD_MODES[n] for names in PAD_NAMES.values() for n in names} == set(PAD_NAMES)


# ---------------------------------------------------------------------------
# adaptive pools
# ---------------------------------------------------------------------------


def brute_adaptive(x: np.ndarray, out: list[int], kind: str) -> np.ndarray:
    """Output i of each axis pools [floor(i*L/n), ceil((i+1)*L/n)), in exact rational arithmetic."""
    N, C, *L = x.shape
    nd = len(L)
    y = np.zeros((N, C, *out))
    for n, c in itertools.product(range(N), range(C)):
        for i in itertools.product(*map(range, out)):
            lo = [math.floor(Fraction(i[a] * L[a], out[a])) for a in range(nd)]
            hi = [math.ceil(Fraction((i[a] + 1) * L[a], out[a])) for a in range(nd)]
            cells = [float(x[(n, c, *pos)]) for pos in itertools.product(*map(range, lo, hi))]
            y[(n, c, *i)] = max(cells) if kind == "max" else sum(cells) / len(cells)
    return y


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pools_match_brute_force(kind: str) -> None:
    rng = np.random.default_rng([11, kind == "max"])
    pool = oracle.adaptive_max_pool if kind == "max" else oracle.adaptive_avg_pool
    sizes = []
    for i in range(120):
        nd = int(rng.integers(1, 4))
        L = [int(v) for v in rng.integers(1, {1: 16, 2: 10, 3: 6}[nd], nd)]
        out = [int(v) for v in rng.integers(1, {1: 16, 2: 10, 3: 6}[nd], nd)]
        sizes += list(zip(L, out, strict=True))
        size: int | tuple[int, ...] = out[0] if len(set(out)) == 1 and rng.random() < 0.5 else tuple(out)
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        x = maybe_low_precision(rng, rng.standard_normal((n, c, *L)))
        lay = ("channels_first", "channels_last")[i % 2]
        y = pool(to_layout(x, lay), size, layout=lay)
        np.testing.assert_allclose(from_layout(y, lay), brute_adaptive(x.astype(np.float64), out, kind),
                                   rtol=1e-12, atol=1e-12, err_msg=repr((L, size, lay)))
    # sizes that divide, that do not, and outputs longer than their input all occurred.
    assert any(L % n == 0 for L, n in sizes) and any(L % n and n < L for L, n in sizes)
    assert any(n > L for L, n in sizes)


@pytest.mark.parametrize("chunk", range(3))
def test_dense_matches_brute_force(chunk: int) -> None:
    rng = np.random.default_rng([8, chunk])
    for _ in range(20):
        lead = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(0, 3))))
        fin, fout = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        x, w = rng.standard_normal((*lead, fin)), rng.standard_normal((fin, fout))
        b = rng.standard_normal(fout) if rng.random() < 0.5 else None
        expected = np.zeros((*lead, fout))
        for pos in np.ndindex(*lead, fout):
            acc = 0.0 if b is None else float(b[pos[-1]])
            for i in range(fin):
                acc += x[(*pos[:-1], i)] * w[i, pos[-1]]
            expected[pos] = acc
        np.testing.assert_allclose(
            oracle.dense(x, w, b), expected, rtol=1e-12, atol=1e-12, err_msg=repr((lead, fin, fout))
        )


# ===========================================================================
# Bad input
# ===========================================================================

X1 = np.zeros((1, 2, 6))
W1 = np.zeros((4, 2, 3))


@contextlib.contextmanager
def raises(fn_name: str, *needles: str) -> Iterator[None]:
    """pytest.raises(ValueError) whose message starts with fn_name and names each needle."""
    with pytest.raises(ValueError, match=rf"^{fn_name}: ") as info:
        yield
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


class TestBadInput:
    def test_stride_and_dilation(self) -> None:
        with pytest.raises(
            ValueError, match=r"^conv: stride must be >= 1 on every axis, got stride=\(2, 0\)$"
        ):
            oracle.conv(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), stride=(2, 0))
        with raises("conv", "stride", "0"):
            oracle.conv(X1, W1, stride=0)
        with raises("conv", "dilation", "-1"):
            oracle.conv(X1, W1, dilation=-1)
        with raises("conv", "stride", "(1, 1)"):
            oracle.conv(X1, W1, stride=(1, 1))  # two values for one spatial axis
        with raises("conv", "dilation", "(1, 1, 1)"):
            oracle.conv(np.zeros((1, 2, 6, 6)), np.zeros((4, 2, 3, 3)), dilation=(1, 1, 1))
        with raises("conv_transpose", "stride"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), stride=0)
        with raises("conv_vjp", "dilation"):
            oracle.conv_vjp(X1, W1, np.zeros((1, 4, 4)), dilation=0)
        with raises("max_pool", "stride"):
            oracle.max_pool(X1, 2, stride=0)
        with raises("avg_pool", "dilation"):
            oracle.avg_pool(X1, 2, dilation=0)
        with raises("max_pool", "window", "0"):
            oracle.max_pool(X1, 0)

    def test_channels(self) -> None:
        with pytest.raises(
            ValueError, match=r"x has 3 channels but w expects 4 \(= w in-channels 2 \* groups 2\)"
        ):
            oracle.conv(np.zeros((1, 3, 6)), np.zeros((4, 2, 3)), groups=2)
        with raises("conv", "x has 2 channels", "w expects 3", "groups 1"):
            oracle.conv(X1, np.zeros((4, 3, 3)))
        # channels_last: x (1, 6, 2) has 2 channels, w (k=3, 3, O=4) expects 3.
        with raises("conv", "x has 2 channels", "w expects 3"):
            oracle.conv(np.zeros((1, 6, 2)), np.zeros((3, 3, 4)), layout="channels_last")
        with raises("conv_transpose", "x has 2 channels", "w expects 3"):
            oracle.conv_transpose(X1, np.zeros((3, 2, 3)))
        with raises("conv_vjp", "x has 2 channels"):
            oracle.conv_vjp(X1, np.zeros((4, 1, 3)), np.zeros((1, 4, 4)))

    def test_groups(self) -> None:
        with raises("conv", "groups", "0"):
            oracle.conv(X1, W1, groups=0)
        # input channels: 3 channels cannot be split in 2 groups.
        with raises("conv", "groups=2", "does not divide the 3 input channels"):
            oracle.conv(np.zeros((1, 3, 6)), np.zeros((4, 1, 3)), groups=2)
        # output channels: w has 3 output channels for groups=2.
        with raises("conv", "groups=2", "3 output channels"):
            oracle.conv(np.zeros((1, 2, 6)), np.zeros((3, 1, 3)), groups=2)
        with raises("conv_transpose", "groups=2", "3 input channels"):
            oracle.conv_transpose(np.zeros((1, 3, 6)), np.zeros((3, 1, 3)), groups=2)
        with raises("conv_transpose", "groups"):
            oracle.conv_transpose(X1, np.zeros((2, 1, 3)), groups=-1)

    def test_kernel_larger_than_padded_input(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"^conv: the dilated kernel \(5\) is larger than the padded input \(4\) on spatial axis 0$",
        ):
            oracle.conv(np.zeros((1, 1, 4)), np.zeros((1, 1, 5)))
        # k=3 dilated by 2 is 5 > 2 + 1 + 1 on axis 1.
        with raises("conv", "(5)", "(4)", "axis 1"):
            oracle.conv(np.zeros((1, 1, 9, 2)), np.zeros((1, 1, 3, 3)), dilation=2, padding=1)
        with raises("conv_vjp", "kernel"):
            oracle.conv_vjp(np.zeros((1, 1, 4)), np.zeros((1, 1, 5)), np.zeros((1, 1, 1)))

    def test_padding_string(self) -> None:
        with raises("conv", "padding", "'SAME'", "'valid'", "'same_lower'", "'causal'", "'full'"):
            oracle.conv(X1, W1, padding="SAME")
        with raises("max_pool", "padding", "'reflect'"):
            oracle.max_pool(X1, 2, padding="reflect")
        with raises("conv_transpose", "padding", "'causal'", "'same'"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), padding="causal")
        with raises("padding_pairs", "padding"):
            oracle.padding_pairs("Same", (5,), (3,), 1, 1)

    def test_causal_needs_1d(self) -> None:
        with raises("conv", "causal", "1-D", "2-D"):
            oracle.conv(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), padding="causal")
        with raises("avg_pool", "causal", "3-D"):
            oracle.avg_pool(np.zeros((1, 1, 4, 4, 4)), 2, padding="causal")

    def test_negative_padding(self) -> None:
        with raises("conv", "padding", ">= 0", "-1"):
            oracle.conv(X1, W1, padding=-1)
        with raises("conv", "padding", ">= 0"):
            oracle.conv(X1, W1, padding=[(1, -1)])
        with raises("conv_transpose", "padding", ">= 0"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), padding=-2)
        with raises("max_pool", "padding"):
            oracle.max_pool(X1, 2, padding=[(-1, 0)])

    def test_padding_pairs_count(self) -> None:
        with raises("conv", "padding", "2 entries", "1 spatial"):
            oracle.conv(X1, W1, padding=[(1, 1), (1, 1)])
        with raises("conv", "padding", "1 entries", "2 spatial"):
            oracle.conv(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), padding=[(1, 1)])
        with raises("conv", "padding", "(before, after)"):
            oracle.conv(X1, W1, padding=[(1, 1, 1)])
        with raises("conv_transpose", "padding", "entries"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), padding=[1, 1])

    def test_layout(self) -> None:
        for call in (
            lambda: oracle.conv(X1, W1, layout="NCW"),
            lambda: oracle.conv_transpose(X1, np.zeros((2, 2, 3)), layout="nhwc"),
            lambda: oracle.conv_vjp(X1, W1, np.zeros((1, 4, 4)), layout="channels-first"),
            lambda: oracle.max_pool(X1, 2, layout="NCHW"),
            lambda: oracle.avg_pool(X1, 2, layout="NHWC"),
            lambda: oracle.global_avg_pool(X1, layout="cf"),
            lambda: oracle.global_max_pool(X1, layout="cl"),
        ):
            with pytest.raises(ValueError, match=r"layout.*channels_first.*channels_last"):
                call()

    def test_x_rank(self) -> None:
        with raises("conv", "x", "(2, 6)"):
            oracle.conv(np.zeros((2, 6)), W1)
        with raises("conv_transpose", "x"):
            oracle.conv_transpose(np.zeros(6), W1)
        with raises("max_pool", "x"):
            oracle.max_pool(np.zeros((2, 6)), 2)
        with raises("avg_pool", "x"):
            oracle.avg_pool(np.zeros((2, 6)), 2)
        with raises("global_avg_pool", "x"):
            oracle.global_avg_pool(np.zeros((2, 6)))
        with raises("global_max_pool", "x"):
            oracle.global_max_pool(np.zeros((2, 6)))
        with raises("conv", "spatial"):
            oracle.conv(np.zeros((1, 1, 2, 2, 2, 2)), np.zeros((1, 1, 1, 1, 1, 1)))
        # w's rank must match x's.
        with raises("conv", "w", "3 dims"):
            oracle.conv(X1, np.zeros((4, 2, 3, 3)))
        with raises("dense", "x"):
            oracle.dense(np.float64(1.0), np.zeros((1, 1)))
        with raises("dense", "w", "2-D"):
            oracle.dense(np.zeros((2, 3)), np.zeros(3))

    def test_bias_shape(self) -> None:
        with raises("conv", "b", "(4,)", "(3,)"):
            oracle.conv(X1, W1, np.zeros(3))
        with raises("conv", "b", "(4,)", "(4, 1)"):
            oracle.conv(X1, W1, np.zeros((4, 1)))
        with raises("conv_transpose", "b", "(2,)"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), np.zeros(4))
        with raises("dense", "b", "(5,)"):
            oracle.dense(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(3))

    def test_dense_features(self) -> None:
        with raises("dense", "x has 3 features", "w expects 4"):
            oracle.dense(np.zeros((2, 3)), np.zeros((4, 5)))

    def test_pool_window_larger_than_padded_input(self) -> None:
        with raises("max_pool", "window (5)", "padded input (4)", "axis 0"):
            oracle.max_pool(np.zeros((1, 1, 4)), 5)
        with raises("avg_pool", "window (5)", "padded input (4)", "axis 1"):
            oracle.avg_pool(np.zeros((1, 1, 9, 2)), 3, dilation=2, padding=1)
        with raises("max_pool", "window", "2 ints", "(2, 2, 2)"):
            oracle.max_pool(np.zeros((1, 1, 4, 4)), (2, 2, 2))

    def test_output_padding(self) -> None:
        with raises("conv_transpose", "output_padding", "stride", "dilation"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), stride=2, output_padding=2)
        with raises("conv_transpose", "output_padding"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), output_padding=1)
        with raises("conv_transpose", "output_padding", ">= 0"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), stride=2, output_padding=-1)
        with raises("conv_transpose", "output_padding", "same"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), stride=2, padding="same", output_padding=1)

    def test_conv_transpose_crop_too_large(self) -> None:
        # full length (6-1)*1 + 3 = 8; cropping 4 + 4 leaves nothing.
        with raises("conv_transpose", "padding", "8"):
            oracle.conv_transpose(X1, np.zeros((2, 2, 3)), padding=4)

    def test_conv_vjp_g_shape(self) -> None:
        with raises("conv_vjp", "g", "(1, 4, 4)", "(1, 4, 5)"):
            oracle.conv_vjp(X1, W1, np.zeros((1, 4, 5)))
        # channels_last wants g as (N, *out, O) = (1, 4, 3), not (1, 3, 4).
        with raises("conv_vjp", "g", "(1, 4, 3)", "(1, 3, 4)"):
            oracle.conv_vjp(
                np.zeros((1, 6, 2)),
                np.zeros((3, 2, 3)),
                np.zeros((1, 3, 4)),
                layout="channels_last",
            )

    def test_pad(self) -> None:
        x = np.zeros((2, 3))
        with raises("pad", "mode", "'REFLECT'", "'reflect'", "'wrap'"):
            oracle.pad(x, [(0, 0), (1, 1)], "REFLECT")  # lowercase only, as every string
        with raises("pad", "pairs", "2"):
            oracle.pad(x, [(1, 1)], "reflect")  # one pair per axis of x, batch and channels too
        with raises("pad", "(before, after)", ">= 0"):
            oracle.pad(x, [(0, 0), (1, -1)])
        with raises("pad", "(before, after)"):
            oracle.pad(x, [(0, 0), 1])
        with raises("pad", "pairs"):
            oracle.pad(x, 1)
        # reflect reaches L - 1 = 2 cells of the length-3 axis; symmetric and circular L = 3.
        with raises("pad", "reflect", "L - 1 = 2", "axis 1", "(0, 3)"):
            oracle.pad(x, [(0, 0), (0, 3)], "reflect")
        with raises("pad", "symmetric", "L = 3", "(4, 0)"):
            oracle.pad(x, [(0, 0), (4, 0)], "symmetric")
        with raises("pad", "wrap", "L = 3"):
            oracle.pad(x, [(0, 0), (1, 4)], "wrap")
        with raises("pad", "edge", "axis 0", "empty"):
            oracle.pad(np.zeros((0, 3)), [(1, 0), (0, 0)], "edge")

    def test_adaptive_pools(self) -> None:
        with raises("adaptive_avg_pool", "output_size", ">= 1"):
            oracle.adaptive_avg_pool(X1, 0)
        with raises("adaptive_max_pool", "output_size", "2 ints"):
            oracle.adaptive_max_pool(np.zeros((1, 1, 4, 4)), (2, 2, 2))
        with raises("adaptive_max_pool", "x"):
            oracle.adaptive_max_pool(np.zeros((2, 6)), 2)
        with raises("adaptive_avg_pool", "cell", "(1, 1, 0)"):
            oracle.adaptive_avg_pool(np.zeros((1, 1, 0)), 2)
        with pytest.raises(ValueError, match=r"layout.*channels_first.*channels_last"):
            oracle.adaptive_avg_pool(X1, 2, layout="NCHW")
        with raises("adaptive_windows", "size", "0"):
            oracle.adaptive_windows(5, 0)
        with raises("adaptive_windows", "length"):
            oracle.adaptive_windows(0, 2)

    def test_avg_pool_divisor(self) -> None:
        with raises("avg_pool", "divisor", "0"):
            oracle.avg_pool(X1, 2, divisor=0)
        with raises("avg_pool", "divisor", "2.0"):
            oracle.avg_pool(X1, 2, divisor=2.0)  # type: ignore[arg-type]

    def test_same_padding_arguments(self) -> None:
        with raises("same_padding", "stride", "0"):
            oracle.same_padding(5, 3, 0)
        with raises("same_padding", "kernel"):
            oracle.same_padding(5, 0)
        with raises("same_padding", "dilation"):
            oracle.same_padding(5, 3, 1, 0)
        with raises("padding_pairs", "stride"):
            oracle.padding_pairs("same", (5, 5), (3, 3), (1, 1, 1), 1)


# ===========================================================================
# Purity: the oracle imports no framework
# ===========================================================================

FRAMEWORKS = ("torch", "tensorflow", "jax", "jaxlib", "keras", "scipy")


def test_imports_no_framework_in_subprocess() -> None:
    code = f"""
import importlib.util, sys
FRAMEWORKS = {FRAMEWORKS!r}
for name in FRAMEWORKS:
    sys.modules[name] = None  # any import of these now raises ImportError
spec = importlib.util.spec_from_file_location("isolated_oracle", {str(ORACLE_PATH)!r})
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
import numpy as np
y = mod.conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), padding="same")
assert y.tolist() == [[[2.0, 2.0, 2.0, 1.0]]], y
mod.conv_transpose(np.ones((1, 1, 4)), np.ones((1, 1, 2)), stride=2)
mod.max_pool(np.ones((1, 1, 4)), 2); mod.avg_pool(np.ones((1, 1, 4)), 2, divisor=3)
mod.pad(np.ones((1, 1, 4)), [(0, 0), (0, 0), (1, 1)], "reflect"); mod.adaptive_avg_pool(np.ones((1, 1, 4)), 3)
loaded = [k for k, v in sys.modules.items()
          if v is not None and k.split(".")[0] in FRAMEWORKS]
assert not loaded, loaded
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_source_imports_only_numpy_and_stdlib() -> None:
    tree = ast.parse(ORACLE_PATH.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    allowed = {"__future__", "numpy", "math", "itertools", "collections", "contextvars", "typing", "types"}
    assert roots <= allowed, roots


# --------------------------------------------------------------------------
# Parameter counts, flatten, relu
# --------------------------------------------------------------------------


def _connections(cin: int, cout: int, groups: int) -> int:
    """Brute force: (input channel, output channel) pairs a grouped layer connects."""
    return sum(1 for c in range(cin) for o in range(cout)
               if c // (cin // groups) == o // (cout // groups))


def _layer_configs(seed: int, n: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        nd = int(rng.integers(1, 4))
        g = int(rng.choice([1, 2, 3]))
        yield {"kernel": tuple(int(k) for k in rng.integers(1, 6, size=nd)) if rng.random() < 0.7
               else int(rng.integers(1, 6)),
               "cin": g * int(rng.integers(1, 5)), "cout": g * int(rng.integers(1, 5)), "groups": g,
               "m": int(rng.integers(1, 4)), "bias": bool(rng.random() < 0.5)}


def test_conv_and_transpose_params_match_a_count_of_connections() -> None:
    for cfg in _layer_configs(11, 300):
        taps = math.prod(cfg["kernel"]) if isinstance(cfg["kernel"], tuple) else cfg["kernel"]
        weights = _connections(cfg["cin"], cfg["cout"], cfg["groups"]) * taps
        bias = cfg["cout"] if cfg["bias"] else 0
        kw = {"groups": cfg["groups"], "bias": cfg["bias"]}
        assert oracle.conv_params(cfg["kernel"], cfg["cin"], cfg["cout"], **kw) == weights + bias, cfg
        # A transposed conv connects the same channel pairs (it is the adjoint), with its own bias.
        assert oracle.conv_transpose_params(cfg["kernel"], cfg["cin"], cfg["cout"], **kw) == weights + bias


def test_separable_and_dense_params_match_a_count_of_connections() -> None:
    for cfg in _layer_configs(12, 300):
        taps = math.prod(cfg["kernel"]) if isinstance(cfg["kernel"], tuple) else cfg["kernel"]
        cin, m, cout = cfg["cin"], cfg["m"], cfg["cout"]
        depthwise = _connections(cin, cin * m, cin) * taps  # channel c feeds its m outputs only
        pointwise = _connections(cin * m, cout, 1)
        bias = cout if cfg["bias"] else 0
        assert oracle.separable_params(cfg["kernel"], cin, cout, depth_multiplier=m,
                                       bias=cfg["bias"]) == depthwise + pointwise + bias, cfg
        assert oracle.dense_params(cin, cout, bias=cfg["bias"]) == _connections(cin, cout, 1) + bias


def test_parameter_counts_by_hand() -> None:
    # Conv2D(32, 3x3) on 3 channels: 3*3*3*32 = 864 weights + 32 biases.
    assert oracle.conv_params((3, 3), 3, 32) == 896
    # Conv1D 4 -> 8 channels, kernel 3, groups=2, no bias: each output channel sees 2 inputs: 3*2*8.
    assert oracle.conv_params(3, 4, 8, groups=2, bias=False) == 48
    # Conv2DTranspose 8 -> 4 channels, 2x2, groups=2: each input channel feeds 2 outputs:
    # 2*2*8*2 = 64 weights + 4 biases.
    assert oracle.conv_transpose_params((2, 2), 8, 4, groups=2) == 68
    # Keras SeparableConv2D(64, 3) on 32 channels: 3*3*32 + 32*64 + 64 = 288 + 2048 + 64.
    assert oracle.separable_params((3, 3), 32, 64) == 2400
    # Dense(10) on 128 features: 1280 + 10.
    assert oracle.dense_params(128, 10) == 1290


@pytest.mark.parametrize(("call", "message"), [
    (lambda: oracle.conv_params(3, 3, 4, groups=2), "divisible by groups=2"),
    (lambda: oracle.conv_params(0, 3, 4), "kernel must be"),
    (lambda: oracle.conv_params((3, 0), 3, 4), "kernel must be"),
    (lambda: oracle.conv_transpose_params(3, 3, 4, bias=1), "bias must be True or False"),
    (lambda: oracle.separable_params(3, 3, 4, depth_multiplier=0), "depth_multiplier must be"),
    (lambda: oracle.dense_params(3.5, 4), "in_features must be"),
    (lambda: oracle.flatten(np.zeros((2, 3)), layout="nhwc"), "layout must be one of"),
    (lambda: oracle.flatten(np.zeros(3), layout="channels_last"), "batch axis"),
])
def test_layer_helpers_reject_bad_arguments(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_flatten_follows_the_layouts_memory_order(layout: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))  # (N, C, H, W) or (N, H, W, C)
    got = oracle.flatten(x, layout=layout)
    n_, a, b, c = x.shape
    for n, i, j, k in itertools.product(range(n_), range(a), range(b), range(c)):
        # Definition: the last stored axis varies fastest, whichever axis holds the channels.
        assert got[n, (i * b + j) * c + k] == x[n, i, j, k]


def test_flatten_of_the_same_map_in_two_layouts_is_a_row_permutation() -> None:
    # A 1x2x2 map (C=2, H=1, W=2) with values c*10 + w: channels_first flattens c-major.
    cf = np.array([[[[0.0, 1.0]], [[10.0, 11.0]]]])
    cl = cf.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(oracle.flatten(cf, layout="channels_first"), [[0.0, 1.0, 10.0, 11.0]])
    np.testing.assert_array_equal(oracle.flatten(cl, layout="channels_last"), [[0.0, 10.0, 1.0, 11.0]])


def test_relu_by_hand() -> None:
    got = oracle.relu([-2.0, -0.0, 0.5, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(got[:5], [0.0, 0.0, 0.5, np.inf, 0.0])
    assert np.isnan(got[5])


# --------------------------------------------------------------------------
# Gradients of the model's other layers: max pool, relu, dense
# --------------------------------------------------------------------------


def test_max_pool_vjp_by_hand() -> None:
    # x = [1, 5, 2, 4, 3], window 2 stride 2: windows [1, 5] and [2, 4]; cell 4 (value 3) is never
    # reached. g = [10, 20] goes to the winners 5 (index 1) and 4 (index 3).
    got = oracle.max_pool_vjp([[[1.0, 5.0, 2.0, 4.0, 3.0]]], 2, [[[10.0, 20.0]]])
    np.testing.assert_array_equal(got, [[[0.0, 10.0, 0.0, 20.0, 0.0]]])
    # Overlapping windows (stride 1) add up: [1, 5], [5, 2], [2, 4], [4, 3] -> 5 wins twice, 4 twice.
    got = oracle.max_pool_vjp([[[1.0, 5.0, 2.0, 4.0, 3.0]]], 2, [[[1.0, 2.0, 3.0, 4.0]]], stride=1)
    np.testing.assert_array_equal(got, [[[0.0, 3.0, 0.0, 7.0, 0.0]]])
    # A tie goes to the first cell; padding (SAME adds one cell after) never wins, even over -9.
    got = oracle.max_pool_vjp([[[7.0, 7.0, -9.0]]], 2, [[[1.0, 2.0]]], padding="same")
    np.testing.assert_array_equal(got, [[[1.0, 0.0, 2.0]]])


def test_max_pool_vjp_channels_last_is_the_transposed_gradient() -> None:
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((2, 3, 3, 3))
    cf = oracle.max_pool_vjp(x, 2, g, layout="channels_first")
    cl = oracle.max_pool_vjp(x.transpose(0, 2, 3, 1), 2, g.transpose(0, 2, 3, 1), layout="channels_last")
    np.testing.assert_array_equal(cl, cf.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("cfg", [dict(window=2), dict(window=3, stride=1),
                                 dict(window=3, stride=2, padding=1),
                                 dict(window=2, stride=2, padding="same", dilation=2)])
def test_max_pool_vjp_finite_differences(cfg: dict[str, Any]) -> None:
    # Max pooling is linear near a tie-free point: a central difference is exact up to rounding.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 7, 6))
    y = oracle.max_pool(x, **cfg)
    g = rng.standard_normal(y.shape)
    grad = oracle.max_pool_vjp(x, cfg["window"], g, **{k: v for k, v in cfg.items() if k != "window"})
    h = 1e-7
    for index in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[index] = h
        fd = ((oracle.max_pool(x + e, **cfg) - oracle.max_pool(x - e, **cfg)) * g).sum() / (2 * h)
        assert abs(fd - grad[index]) < 1e-6, (index, fd, grad[index])


def test_max_pool_vjp_rejects_a_g_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"max_pool_vjp: g must have the pool output shape \(1, 1, 2\)"):
        oracle.max_pool_vjp([[[1.0, 5.0, 2.0, 4.0]]], 2, [[[1.0, 2.0, 3.0]]])


def test_relu_vjp_by_hand() -> None:
    got = oracle.relu_vjp([-2.0, 0.0, 0.5, 3.0], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(got, [0.0, 0.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="relu_vjp: g must have x's shape"):
        oracle.relu_vjp([1.0, 2.0], [1.0])


def test_dense_vjp_by_hand() -> None:
    # y = x @ w with x = [[1, 2]], w = [[1, 0, 2], [0, 1, 3]]; g = [[1, 10, 100]].
    dx, dw, db = oracle.dense_vjp([[1.0, 2.0]], [[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]], [[1.0, 10.0, 100.0]])
    np.testing.assert_array_equal(dx, [[201.0, 310.0]])  # g @ w.T
    np.testing.assert_array_equal(dw, [[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]])  # x.T @ g
    np.testing.assert_array_equal(db, [1.0, 10.0, 100.0])
    with pytest.raises(ValueError, match=r"dense_vjp: needs x \(N, in\)"):
        oracle.dense_vjp([[1.0, 2.0]], [[1.0, 0.0]], [[1.0]])


def test_overflow_by_hand() -> None:
    # float16's largest finite value is 65504; 65520 (halfway to 65536) and beyond round to inf.
    got = oracle.overflow([65504.0, 65519.0, 65520.0, -70000.0, 1.0], "float16")
    np.testing.assert_array_equal(got, [65504.0, 65519.0, np.inf, -np.inf, 1.0])
    # bfloat16 keeps 70000 (its largest is 2**127 * (2 - 2**-7) ~ 3.39e38).
    np.testing.assert_array_equal(oracle.overflow([70000.0, 3.4e38], "bfloat16"), [70000.0, np.inf])
    with pytest.raises(ValueError, match="overflow: dtype must be one of float16, bfloat16, float32"):
        oracle.overflow([1.0], "int8")


def test_overflow_agrees_with_numpy_rounding() -> None:
    import ml_dtypes

    y = np.array([65500.0, 65519.9, 65520.0, 65535.0, -65521.0, 2.0**127 * (2 - 2.0**-8)])
    with np.errstate(over="ignore"):
        want = np.isinf(y[:5].astype(np.float16))
        np.testing.assert_array_equal(np.isinf(oracle.overflow(y[:5], "float16")), want)
        assert np.isinf(oracle.overflow(y[5:], "bfloat16")).tolist() == np.isinf(
            y[5:].astype(ml_dtypes.bfloat16).astype(np.float64)).tolist()


def brute_lhs_dilated_conv(x: np.ndarray, w: np.ndarray, lhs: list[int], pads: list[tuple[int, int]],
                           d: list[int]) -> np.ndarray:
    """y[n,o,i] = sum_{c,j} x[n,c,m] * w[o,c,j] over the taps where i + j*d - before = m*lhs (a cell of x;
    the zeros between cells contribute nothing)."""
    N, _, *L = x.shape
    n_out, C, *K = w.shape
    nd = len(L)
    out = [(L[a] - 1) * lhs[a] + 1 + sum(pads[a]) - (K[a] - 1) * d[a] for a in range(nd)]
    y = np.zeros((N, n_out, *out))
    for n, o in itertools.product(range(N), range(n_out)):
        for i in itertools.product(*map(range, out)):
            for j in itertools.product(*map(range, K)):
                at = [i[a] + j[a] * d[a] - pads[a][0] for a in range(nd)]
                if all(v % lhs[a] == 0 and 0 <= v // lhs[a] < L[a] for a, v in enumerate(at)):
                    m = tuple(v // lhs[a] for a, v in enumerate(at))
                    y[(n, o, *i)] += sum(x[(n, c, *m)] * w[(o, c, *j)] for c in range(C))
    return y


@pytest.mark.parametrize("index", range(40))
def test_lhs_dilation_matches_brute_force_and_is_the_transposed_conv(index: int) -> None:
    """conv(lhs_dilation=s) by brute force; with the kernel flipped and its in/out axes swapped, and
    padding (k-1)*d - crop at each end (output_padding more at the end), it is conv_transpose."""
    rng = np.random.default_rng(4000 + index)
    nd = int(rng.integers(1, 3))
    L = [int(v) for v in rng.integers(1, 5, nd)]
    K = [int(v) for v in rng.integers(1, 4, nd)]
    s = [int(v) for v in rng.integers(1, 4, nd)]
    d = [int(v) for v in rng.integers(1, 3, nd)]
    cin, cout = (int(v) for v in rng.integers(1, 4, 2))
    op = [int(rng.integers(0, max(si, di))) for si, di in zip(s, d, strict=True)]
    full = [(n - 1) * si + (k - 1) * di + 1 for n, k, si, di in zip(L, K, s, d, strict=True)]
    # a crop at most (k-1)*d (no negative padding) that leaves a cell
    crop = [int(rng.integers(0, min((k - 1) * di, (f + o - 1) // 2) + 1))
            for k, di, f, o in zip(K, d, full, op, strict=True)]
    x = rng.standard_normal((2, cin, *L))
    w = rng.standard_normal((cin, cout, *K))  # conv_transpose's (C_in, C_out, *k)
    conv_w = np.flip(w, tuple(range(2, 2 + nd))).swapaxes(0, 1)
    pads = [((k - 1) * di - c, (k - 1) * di - c + o) for k, di, c, o in zip(K, d, crop, op, strict=True)]
    y = oracle.conv(x, conv_w, stride=1, padding=pads, dilation=d, lhs_dilation=s)
    np.testing.assert_allclose(y, brute_lhs_dilated_conv(x, conv_w, s, pads, d), rtol=1e-12, atol=1e-12)
    cropped = [(c, c) for c in crop]
    np.testing.assert_allclose(y, oracle.conv_transpose(x, w, stride=s, padding=cropped, output_padding=op,
                                                        dilation=d), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, brute_conv_transpose(x, w, None, s, cropped, op, d, 1), rtol=1e-12,
                               atol=1e-12)
