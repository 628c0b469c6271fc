"""NCHW/OIHW and NHWC/HWIO compute the same convolution, given the right permutations.

Claim: for 1-, 2- and 3-D, conv(x, w) in channels_first equals moving x (N, C, *s) -> (N, *s, C) and
w (O, I, *k) -> (*k, I, O), convolving in channels_last, and moving the output back.
Quirk pinned: the weight permutation is not the input's: (O, I, *k) -> (*k, I, O) reverses the
channel pair. TensorFlow's Eigen CPU kernels have no NCHW conv (skipped there; oneDNN runs float32
NCHW on CPU, and the GPU runs it); PyTorch's
memory_format=channels_last keeps NCHW shapes and only changes strides (it has had silent CPU bugs).
"""

from equiv import Case, conv_inputs, oracle

case = Case(
    grid={"nd": [1, 2, 3], "stride": [1, 2], "padding": ["valid", "same"]},
    output_layout="channels_first",
    values=("normal", "wide"),
)
SPATIAL = {1: [9], 2: [7, 6], 3: [5, 6, 4]}  # non-square, so swapped axes cannot pass


@case.inputs
def draw(rng, p):
    kernel = [3, 2, 1][: p.nd]
    return conv_inputs(
        rng, layout="channels_first", spatial=SPATIAL[p.nd], kernel=kernel, channels=3, out_channels=4
    )


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, stride=p.stride, padding=p.padding, layout="channels_first")


def _last(p):  # channels_first axis order -> channels_last, for x and for w
    return (0, *range(2, p.nd + 2), 1), (*range(2, p.nd + 2), 1, 0)


@case.variant
def native_channels_first(fw, p, x, w, b):
    return fw.conv(x, w, b, stride=p.stride, padding=p.padding, layout="channels_first")


@case.variant
def permuted_to_channels_last(fw, p, x, w, b):
    x_axes, w_axes = _last(p)
    y = fw.conv(fw.transpose(x, x_axes), fw.transpose(w, w_axes), b, stride=p.stride, padding=p.padding,
                layout="channels_last")
    return fw.transpose(y, (0, p.nd + 1, *range(1, p.nd + 1)))


@case.variant(frameworks=["torch"], when=lambda p: p.nd >= 2)
def torch_memory_format_channels_last(fw, p, x, w, b):
    x_axes, w_axes = _last(p)
    y = fw.conv_channels_last_memory(fw.transpose(x, x_axes), fw.transpose(w, w_axes), b, stride=p.stride,
                                     padding=p.padding)
    return fw.transpose(y, (0, p.nd + 1, *range(1, p.nd + 1)))
