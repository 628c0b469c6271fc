"""An op given a NumPy array of a dtype returns that dtype, on its first call and on every later one.

Claim: conv, transposed conv, depthwise conv, dense, average and max pooling, the global pools and zero
padding, given NumPy arrays as users pass them (straight in to TF's tf.nn ops, JAX's lax and ONNX
Runtime; torch ops take no NumPy, so torch.from_numpy's tensor), and Keras layers built in that
dtype, return float64, float32, float16 or bfloat16 as given, with the values of that computation.
Each is called twice in a row, on two arrays: outputs `first` and `again`. Channels last, 1-D and 2-D.
Known defect: TF's eager MaxPool (tf.nn.max_pool on an NHWC NumPy array) converts the array to
float32 on every call after the first in the process, as its T attribute defaults to float32.
"""

import math

from equiv import Case, oracle, tolerance

OPS = ["conv", "conv_transpose", "depthwise_conv", "dense", "avg_pool", "max_pool", "global_avg_pool",
       "global_max_pool", "pad"]
LAYERS = ["conv", "conv_transpose", "dense", "avg_pool", "max_pool"]  # as Keras layers too
SPATIAL = [6, 5]


def _terms(p):
    """The most terms any output sums (bias included): the K of the derived bound. A mean's all-ones
    oracle gives 1, so each op says it."""
    taps = 3 ** p.nd
    return {"conv": 3 * taps + 1, "conv_transpose": 3 * taps + 1, "depthwise_conv": taps + 1, "dense": 4,
            "avg_pool": 2 ** p.nd, "global_avg_pool": math.prod(SPATIAL[: p.nd])}.get(p.op, 1)


case = Case(grid={"op": OPS, "nd": [1, 2]}, numpy_inputs=True, output_layout="channels_last",
            output_dtype=lambda p: p.dtype, where=lambda p: p.op != "depthwise_conv" or p.nd == 2,
            tolerance=tolerance.derived(terms=_terms))


@case.inputs
def draw(rng, p):
    c, o = 3, (3 if p.op == "depthwise_conv" else 2)
    # (*k, ...) weights, k = 3 per axis; (C, O) for dense; the pools and pad take none (one unused cell)
    weight = {"conv": (c, o), "conv_transpose": (o, c), "depthwise_conv": (c, 1)}
    w = (3,) * p.nd + weight[p.op] if p.op in weight else (c, o) if p.op == "dense" else (1,)
    x = (2, *SPATIAL[: p.nd], c)
    return {"x": rng.standard_normal(x), "x2": rng.standard_normal(x), "w": rng.standard_normal(w),
            "b": rng.standard_normal(o)}


def _apply(api, p, x, w, b):
    """`p.op` through `api`: equiv.oracle and the framework modules spell these alike."""
    last = {"layout": "channels_last"}
    return {"conv": lambda: api.conv(x, w, b, **last),
            "conv_transpose": lambda: api.conv_transpose(x, w, b, stride=2, **last),
            "depthwise_conv": lambda: api.depthwise_conv(x, w, b, **last),
            "dense": lambda: api.dense(x, w, b),
            "avg_pool": lambda: api.avg_pool(x, 2, **last),
            "max_pool": lambda: api.max_pool(x, 2, **last),
            "global_avg_pool": lambda: api.global_avg_pool(x, **last),
            "global_max_pool": lambda: api.global_max_pool(x, **last),
            "pad": lambda: api.pad(x, [(0, 0), *[(1, 2)] * p.nd, (0, 0)])}[p.op]()


class _Depthwise:
    """The oracle's depthwise conv: a conv with one group per channel, (*k, C, 1) read as (*k, 1, C)."""
    def __getattr__(self, name):
        return getattr(oracle, name)

    def depthwise_conv(self, x, w, b, layout):
        return oracle.conv(x, w.reshape(*w.shape[:-2], 1, w.shape[-2]), b, groups=w.shape[-2], layout=layout)


@case.oracle
def expected(p, x, x2, w, b):
    return {"first": _apply(_Depthwise(), p, x, w, b), "again": _apply(_Depthwise(), p, x2, w, b)}


def _as_given(fw, p, a):
    # What a user hands the op: the NumPy array itself, or in torch (whose ops take no NumPy)
    # torch.from_numpy's tensor.
    return fw.asarray(a, p.device) if fw.name == "torch" else a


@case.variant(frameworks=["torch", "tensorflow", "jax", "onnxruntime"])
def numpy_in(fw, p, x, x2, w, b):
    w, b = _as_given(fw, p, w), _as_given(fw, p, b)
    x, x2 = _as_given(fw, p, x), _as_given(fw, p, x2)
    return {"first": _apply(fw, p, x, w, b), "again": _apply(fw, p, x2, w, b)}


def _layer(fw, p, x, w, b):
    return {"conv": lambda: fw.conv_layer(x, w, b), "dense": lambda: fw.dense_layer(x, w, b),
            "conv_transpose": lambda: fw.conv_transpose_layer(x, w, b, stride=2),
            "avg_pool": lambda: fw.pool_layer(x, "avg", 2, layout="channels_last"),
            "max_pool": lambda: fw.pool_layer(x, "max", 2, layout="channels_last")}[p.op]()


@case.variant(frameworks=["tensorflow"], when=lambda p: p.op in LAYERS)
def keras_layer(fw, p, x, x2, w, b):  # built with dtype= the input's, then called on NumPy
    w, b = fw.asarray(w, p.device), fw.asarray(b, p.device)  # set as the layer's weights
    return {"first": _layer(fw, p, x, w, b), "again": _layer(fw, p, x2, w, b)}
