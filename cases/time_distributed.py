"""A conv applied at every time step is the conv on time folded into the batch.

Claim: on (N, T, *s, C), Keras' TimeDistributed(Conv1D/Conv2D) (channels_last), jax.vmap of the conv
over the time axis, torch's flatten(0, 1) -> nn.Conv*d -> unflatten (channels_first, (N, T, C, *s))
and a reshape to (N*T, ...), conv, reshape back all equal the oracle's conv of each step, with the
same weights and bias at every step.
Quirk pinned: the fold must keep batch-major order: (N, T) -> N*T is a reshape only because N is
the outer axis; time and channels never mix.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "nd": [1, 2], "padding": ["valid", "same"]})
N, T, C, OUT = 2, 3, 3, 4
SPATIAL, KERNEL = {1: [7], 2: [5, 6]}, {1: [3], 2: [3, 2]}


@case.inputs
def draw(rng, p):
    xs = conv_inputs(rng, layout=p.layout, spatial=SPATIAL[p.nd], kernel=KERNEL[p.nd], channels=C,
                     out_channels=OUT, batch=N * T)
    return {**xs, "x": xs["x"].reshape(N, T, *xs["x"].shape[1:])}


@case.oracle
def expected(p, x, w, b):
    y = oracle.conv(x.reshape(N * T, *x.shape[2:]), w, b, padding=p.padding, layout=p.layout)
    return y.reshape(N, T, *y.shape[1:])


@case.variant
def fold_time_into_batch(fw, p, x, w, b):
    y = fw.conv(fw.reshape(x, (N * T, *x.shape[2:])), w, b, padding=p.padding, layout=p.layout)
    return fw.reshape(y, (N, T, *y.shape[1:]))


@case.variant(frameworks=["tensorflow"], when=lambda p: p.layout == "channels_last")
def keras_time_distributed(fw, p, x, w, b):
    return fw.time_distributed_conv(x, w, b, padding=p.padding)


@case.variant(frameworks=["torch"], when=lambda p: p.layout == "channels_first")
def torch_flatten_unflatten(fw, p, x, w, b):
    return fw.time_distributed_conv(x, w, b, padding=p.padding)


@case.variant(frameworks=["jax"])
def jax_vmap_over_time(fw, p, x, w, b):
    return fw.time_distributed_conv(x, w, b, padding=p.padding, layout=p.layout)
