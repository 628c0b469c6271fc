"""A strided VALID conv is the stride-1 conv sampled every s-th step; SAME is, if its padding before stays.

Claim: conv(x, w, b, stride=s), the framework's own strided conv, equals the framework's stride-1
conv of the same x, w, b with its output sliced [::s] along every spatial axis, in 1-D and 2-D, both
layouts. VALID: always (both keep ceil((L - (k-1)d)/s) positions, window i starting at i*s).
SAME: only where the stride-s padding puts as many cells before as the stride-1 padding does.
Quirk pinned: SAME pads total = max((ceil(L/s) - 1)*s + (k-1)*d + 1 - L, 0), total//2 before; at
stride 1 total is (k-1)*d, but with a stride it shrinks by up to s - 1 (it is (k-1)*d only when
L % s == 1), so the cells before can drop (by up to s//2) and the strided output is the stride-1 output
sliced [off::s], off = (k-1)*d//2 - total//2, not [::s]: e.g. L=8, k=3, s=2 samples 1, 3, 5, 7.
Known non-equivalence, checked as such: SAME sliced [::s] where off > 0.
"""

from equiv import Case, conv_inputs, oracle

one_d = {"layout": ["channels_last", "channels_first"], "nd": [1], "L": [7, 8, 9], "k": [2, 3],
         "s": [2, 3], "d": [1, 2], "padding": ["valid", "same"]}
two_d = {"layout": ["channels_last", "channels_first"], "nd": [2], "L": [7, 8], "k": [3],
         "s": [2, 3], "d": [1], "padding": ["valid", "same"]}
# Off the grid: any length a VALID window fits in, kernel, stride (1 included) and dilation.
domain = {"layout": ["channels_last", "channels_first"], "nd": [1, 2], "padding": ["valid", "same"],
          "L": range(3, 14), "k": range(1, 6), "s": range(1, 5), "d": range(1, 4)}
case = Case(grid=[one_d, two_d], domain=domain, where=lambda p: p.L >= (p.k - 1) * p.d + 1)


def _before(n, k, s, d):
    """Cells SAME puts before axis n (TensorFlow's rule, as the docstring states), by hand."""
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2


def _offsets(p):
    """Per spatial axis, the stride-1 output position the strided output starts at."""
    if p.padding == "valid":
        return [0] * p.nd
    sizes = [p.L, p.L + 1][: p.nd]
    return [_before(n, p.k, 1, p.d) - _before(n, p.k, p.s, p.d) for n in sizes]


def _aligned(p):
    return not any(_offsets(p))


def _sample(p, y, offsets):
    """y[..., off::s, ...] along each spatial axis of the layout."""
    spatial = [slice(o, None, p.s) for o in offsets]
    if p.layout == "channels_last":
        return y[(slice(None), *spatial, slice(None))]
    return y[(slice(None), slice(None), *spatial)]


@case.inputs
def draw(rng, p):
    spatial = [p.L, p.L + 1][: p.nd]
    return conv_inputs(rng, layout=p.layout, spatial=spatial, kernel=[p.k] * p.nd, channels=2, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


@case.variant
def framework_strided(fw, p, x, w, b):
    return fw.conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)


@case.variant(when=_aligned)
def stride_one_sampled(fw, p, x, w, b):
    y = fw.conv(x, w, b, stride=1, padding=p.padding, dilation=p.d, layout=p.layout)
    return _sample(p, y, [0] * p.nd)


@case.variant(when=lambda p: p.padding == "same")
def stride_one_same_sampled_from_offset(fw, p, x, w, b):
    y = fw.conv(x, w, b, stride=1, padding="same", dilation=p.d, layout=p.layout)
    return _sample(p, y, _offsets(p))


@case.variant(expect="differs", when=lambda p: not _aligned(p),
              reason="SAME with a stride pads fewer cells before than at stride 1: sampled from 0, "
                     "the windows sit one cell too far left")
def stride_one_same_sampled_from_zero(fw, p, x, w, b):
    y = fw.conv(x, w, b, stride=1, padding="same", dilation=p.d, layout=p.layout)
    return _sample(p, y, [0] * p.nd)
