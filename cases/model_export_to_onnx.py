"""A small CNN exported to ONNX gives the oracle's logits in ONNX Runtime, as in torch.nn, Keras and JAX.

Claim: model_port's MNIST CNN (conv 4x4 -> ReLU -> 2x2 max pool -> conv 4x4 -> ReLU -> 2x2 max pool
-> Flatten -> Dense -> ReLU -> Dense on 28x28x1), from one torch-style set of weights, gives the
oracle's logits within the composition bound (K summed along the path, the magnitude the model on
|inputs|): exported from torch.nn by torch.onnx.export and run in ONNX Runtime; as the same graph
built with onnx.helper from the weights (Conv, Relu, MaxPool, Flatten, Gemm), in both layouts, a
channels_last port Transposed to NCHW at the entry and back before Flatten; and in torch.nn, Keras
and JAX themselves (their forward pass, fw.sequential_vjp's output). A channels_last port transposes
the conv weights to HWIO and permutes the first Dense's rows to (H, W, C) order.
Known non-equivalence: the channels_last ONNX graph without that permutation.
"""

import numpy as np

from equiv import Case, oracle

N, C1, C2, H, OUT, K = 2, 4, 8, 16, 10, 4
S1 = 28 - K + 1  # conv1's output size; pooled to S1 // 2
S2 = S1 // 2 - K + 1  # conv2's; pooled to S2 // 2, flattened to C2 * (S2 // 2) ** 2 features
FLAT = C2 * (S2 // 2) ** 2
# Terms added along the path to the logits: each conv's taps x channels + bias, Dense's inputs + bias.
TERMS = (K * K + 1) + (K * K * C1 + 1) + (FLAT + 1) + (H + 1)
# ONNX Runtime has no float64 Conv kernel (those items skip); half dtypes are model_port's question.
case = Case(grid={"layout": ["channels_first", "channels_last"]}, output_layout="channels_first",
            dtypes=("float32", "float64"))


@case.inputs
def draw(rng, p):
    fan = {"w1": K * K, "w2": K * K * C1, "w3": FLAT, "w4": H}
    shapes = {"x": (N, 1, 28, 28), "w1": (C1, 1, K, K), "b1": (C1,), "w2": (C2, C1, K, K), "b2": (C2,),
              "w3": (FLAT, H), "b3": (H,), "w4": (H, OUT), "b4": (OUT,)}
    return {k: rng.standard_normal(s) / np.sqrt(fan.get(k, 1)) for k, s in shapes.items()}


def _logits(x, w1, b1, w2, b2, w3, b3, w4, b4):
    a = oracle.max_pool(oracle.relu(oracle.conv(x, w1, b1)), 2)
    a = oracle.max_pool(oracle.relu(oracle.conv(a, w2, b2)), 2)
    return oracle.dense(oracle.relu(oracle.dense(oracle.flatten(a, layout="channels_first"), w3, b3)), w4, b4)


@case.oracle
def expected(p, x, **w):
    return {"y": _logits(x, **w)}


@case.magnitude
def error_model(p, x, **w):
    """The model on |inputs| (ReLU and max are 1-Lipschitz: the forward bound composes), K summed."""
    return {"y": _logits(abs(x), **{k: abs(v) for k, v in w.items()})}, {"y": TERMS}


def _layers(fw, p, x, w, permute_rows=True):
    """The torch-style weights as the layout's model takes them (model_port's port)."""
    if p.layout == "channels_last":
        x = fw.transpose(x, (0, 2, 3, 1))
        w = dict(w, w1=fw.transpose(w["w1"], (2, 3, 1, 0)), w2=fw.transpose(w["w2"], (2, 3, 1, 0)))
        if permute_rows:  # Flatten gives (H, W, C) order in channels_last: permute the Dense rows to it
            flat = fw.reshape(w["w3"], (C2, S2 // 2, S2 // 2, H))
            w["w3"] = fw.reshape(fw.transpose(flat, (1, 2, 0, 3)), (-1, H))
    return x, [("conv", w["w1"], w["b1"]), ("relu",), ("max_pool", 2),
               ("conv", w["w2"], w["b2"]), ("relu",), ("max_pool", 2),
               ("flatten",), ("dense", w["w3"], w["b3"]), ("relu",), ("dense", w["w4"], w["b4"])]


@case.variant(frameworks=["onnxruntime"], when=lambda p: p.layout == "channels_first")
def torch_onnx_export(fw, p, x, **w):
    x, layers = _layers(fw, p, x, w)
    return {"y": fw.torch_onnx_export(layers, x)}


@case.variant(frameworks=["onnxruntime"])
def onnx_graph_from_the_weights(fw, p, x, **w):
    x, layers = _layers(fw, p, x, w)
    return {"y": fw.sequential_model(layers, x, layout=p.layout)}


@case.variant(frameworks=["torch", "tensorflow", "jax"])
def in_the_framework(fw, p, x, **w):
    x, layers = _layers(fw, p, x, w)
    g = fw.asarray(np.ones((N, OUT), p.dtype), p.device)  # the backward pass is model_port's claim
    return {"y": fw.sequential_vjp(layers, x, g, layout=p.layout)[0]}


@case.variant(frameworks=["onnxruntime"], when=lambda p: p.layout == "channels_last", expect="differs",
              reason="channels_last Flatten gives (H, W, C) order: torch's (C, H, W) rows must be permuted")
def onnx_graph_without_flatten_fix(fw, p, x, **w):
    x, layers = _layers(fw, p, x, w, permute_rows=False)
    return {"y": fw.sequential_model(layers, x, layout=p.layout)}
