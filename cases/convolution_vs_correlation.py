"""Deep-learning "convolution" is cross-correlation; a true convolution flips the kernel.

Claim: every framework's conv computes y[i] = sum_j x[i + j] * w[j] (no flip). The convolution of
signal processing (numpy.convolve, scipy.signal.convolve: y[i] = sum_j x[i - j] * w[j]), restricted
to the positions where the kernel fits, equals the framework's conv with the kernel reversed on
every spatial axis (and only those: the channel axes keep their order). 1-D and 2-D, both layouts.
Known non-equivalence: feeding the unflipped kernel to conv is a different operation whenever the
kernel is not symmetric.
"""

import numpy as np

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "nd": [1, 2], "k": [2, 3],
                  "padding": ["valid", "full"]},
            values=("normal", "wide"))


def _spatial_axes(p):
    return tuple(range(2, p.nd + 2)) if p.layout == "channels_first" else tuple(range(p.nd))


@case.inputs
def draw(rng, p):
    kernel = [p.k, p.k - 1] if p.nd == 2 else [p.k]  # 2-D: a 3x2 or 2x1 kernel, not symmetric in shape
    spatial = [7, 6][: p.nd]
    return conv_inputs(rng, layout=p.layout, spatial=spatial, kernel=kernel, channels=2, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    # True convolution: the oracle's cross-correlation with the kernel reversed on every spatial axis.
    return oracle.conv(x, np.flip(w, _spatial_axes(p)), b, padding=p.padding, layout=p.layout)


@case.variant
def conv_with_flipped_kernel(fw, p, x, w, b):
    return fw.conv(x, fw.flip(w, _spatial_axes(p)), b, padding=p.padding, layout=p.layout)


@case.variant(expect="differs", reason="framework conv does not flip the kernel: it is cross-correlation")
def conv_without_flip(fw, p, x, w, b):
    return fw.conv(x, w, b, padding=p.padding, layout=p.layout)
