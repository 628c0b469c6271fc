"""A small CNN ported between torch.nn, Keras and JAX from one set of weights computes the same
function and the same gradients.

Claim: conv 4x4 -> ReLU -> 2x2 max pool -> conv 4x4 -> ReLU -> 2x2 max pool -> Flatten -> Dense ->
ReLU -> Dense on 28x28x1 (the common MNIST example), built from torch.nn layers, keras.layers and
lax ops, with the weights of one torch-style set (OIHW convs; Dense rows in torch's (C, H, W)
Flatten order) converted to each framework's layout, gives the oracle's logits, and the gradients
of sum(logits * g) with respect to the input and every weight. A channels_last port transposes the
conv weights to HWIO and permutes the first Dense's rows to (H, W, C) order; its gradients,
converted back, are compared. Bound: K summed along the path (README, Tolerances), the magnitude
and ReLU/pool routing of the real activations. Gradients are claimed away from ReLU's and max's
kinks: a draw with a pre-activation or a pool runner-up closer than the float32 forward bound is
redrawn (deterministically, from the same generator).
Known non-equivalence: the channels_last port without the row permutation.
"""

import numpy as np

from equiv import Case, oracle, tolerance

N, C1, C2, H, OUT, K = 2, 4, 8, 16, 10, 4
# float32 and float64 only: gradients are claimed away from ReLU and max-pool kinks by float32's
# forward bound; bfloat16's (2**-8 per stored result) would put nearly every draw within a kink.
case = Case(grid={"layout": ["channels_first", "channels_last"]}, output_layout="channels_first",
            dtypes=("float32", "float64"))
WEIGHTS = ("w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4")


def _forward(x, w1, b1, w2, b2, w3, b3, w4, b4, relu=oracle.relu):
    """Every activation of the channels_first model: pre-activations z*, pooled a*, hidden h, logits y."""
    z1 = oracle.conv(x, w1, b1)
    a1 = oracle.max_pool(relu(z1), 2)
    z2 = oracle.conv(a1, w2, b2)
    a2 = oracle.max_pool(relu(z2), 2)
    z3 = oracle.dense(oracle.flatten(a2, layout="channels_first"), w3, b3)
    h = relu(z3)
    return {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "z3": z3, "h": h, "y": oracle.dense(h, w4, b4)}


def _backward(act, route, x, w1, w2, w3, w4, g):
    """Gradients by the oracle's VJPs; ReLU masks and pool winners come from `route` (the real forward)."""
    dh, dw4, db4 = oracle.dense_vjp(act["h"], w4, g)
    df, dw3, db3 = oracle.dense_vjp(oracle.flatten(act["a2"], layout="channels_first"), w3,
                                    oracle.relu_vjp(route["z3"], dh))
    da2 = df.reshape(act["a2"].shape)
    dz2 = oracle.relu_vjp(route["z2"], oracle.max_pool_vjp(oracle.relu(route["z2"]), 2, da2))
    da1, dw2, db2 = oracle.conv_vjp(act["a1"], w2, dz2)
    dz1 = oracle.relu_vjp(route["z1"], oracle.max_pool_vjp(oracle.relu(route["z1"]), 2, da1))
    dx, dw1, db1 = oracle.conv_vjp(x, w1, dz1)
    return {"y": act["y"], "dx": dx, "dw1": dw1, "db1": db1, "dw2": dw2, "db2": db2, "dw3": dw3,
            "db3": db3, "dw4": dw4, "db4": db4}


S1 = 28 - K + 1  # conv1's output size; pooled to S1 // 2
S2 = S1 // 2 - K + 1  # conv2's; pooled to S2 // 2, flattened to C2 * (S2 // 2) ** 2 features
FORWARD_TERMS = {"z1": K * K + 1}  # taps x input channels, + 1 for the bias, added along the path
FORWARD_TERMS["z2"] = FORWARD_TERMS["z1"] + K * K * C1 + 1
FORWARD_TERMS["z3"] = FORWARD_TERMS["z2"] + C2 * (S2 // 2) ** 2 + 1


def _terms():
    """K per output: the forward terms to each operand plus the backward terms to each gradient."""
    f = FORWARD_TERMS
    dz3 = OUT  # g is exact; dh = g @ w4.T sums OUT terms
    dz2 = dz3 + H  # ReLU masks and (non-overlapping) pool routing add no terms
    dz1 = dz2 + K * K * C2
    return {"y": f["z3"] + H + 1, "dx": dz1 + K * K * C1, "dw1": dz1 + N * S1 * S1, "db1": dz1 + N * S1 * S1,
            "dw2": f["z1"] + dz2 + N * S2 * S2, "db2": dz2 + N * S2 * S2, "dw3": f["z2"] + dz3 + N,
            "db3": dz3 + N, "dw4": f["z3"] + N, "db4": N}


def _pool_windows(a):
    """(N, C, S, S) -> (N, C, S//2, S//2, 4): the cells of each 2x2 window (a VALID pool drops the tail)."""
    n = a.shape[-1] // 2
    return a[..., : 2 * n, : 2 * n].reshape(*a.shape[:2], n, 2, n, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        *a.shape[:2], n, n, 4)


def _clear_of_kinks(inputs):
    """No pre-activation within the float32 forward bound of 0, no pool runner-up within it of the max."""
    act = _forward(**{k: inputs[k] for k in ("x", *WEIGHTS)})
    mag = _forward(**{k: abs(inputs[k]) for k in ("x", *WEIGHTS)})
    for z, k in FORWARD_TERMS.items():
        slack = 4 * tolerance.gamma(k, tolerance.UNIT_ROUNDOFF["float32"]) * mag[z]
        if (abs(act[z]) <= slack).any():
            return False
        if z != "z3":  # the winner of each window must beat the runner-up by both of their bounds
            cells, room = _pool_windows(oracle.relu(act[z])), _pool_windows(slack)
            order = cells.argsort(axis=-1)[..., -2:]
            (second, first), (r2, r1) = (np.moveaxis(np.take_along_axis(a, order, -1), -1, 0)
                                         for a in (cells, room))
            if ((first > 0) & (first - second <= r1 + r2)).any():
                return False
    return True


@case.inputs
def draw(rng, p):
    for _ in range(50):
        fan = {"w1": K * K, "w2": K * K * C1, "w3": C2 * (S2 // 2) ** 2, "w4": H}
        shapes = {"x": (N, 1, 28, 28), "w1": (C1, 1, K, K), "b1": (C1,), "w2": (C2, C1, K, K), "b2": (C2,),
                  "w3": (C2 * (S2 // 2) ** 2, H), "b3": (H,), "w4": (H, OUT), "b4": (OUT,), "g": (N, OUT)}
        out = {k: rng.standard_normal(s) / np.sqrt(fan.get(k, 1)) for k, s in shapes.items()}
        rounded = {k: v.astype(np.float32).astype(np.float64) for k, v in out.items()}
        if _clear_of_kinks(out) and _clear_of_kinks(rounded):
            return out
    raise AssertionError("50 draws in a row came within the float32 bound of a ReLU or max-pool kink")


@case.oracle
def expected(p, x, g, **w):
    act = _forward(x, **w)
    return _backward(act, act, x, w["w1"], w["w2"], w["w3"], w["w4"], g)


@case.magnitude
def error_model(p, x, g, **w):
    """Forward: the model on |inputs|. Backward: |weights| and |g|, routed by the real activations."""
    route = _forward(x, **w)
    mag = _forward(abs(x), **{k: abs(v) for k, v in w.items()})
    return _backward(mag, route, abs(x), *(abs(w[k]) for k in ("w1", "w2", "w3", "w4")), abs(g)), _terms()


def _port(fw, p, x, w, *, permute_rows=True):
    """The torch-style weights as the layout's model takes them, and the way back for gradients."""
    flat = (C2, S2 // 2, S2 // 2, H)
    if p.layout == "channels_first":
        return x, w, lambda name, v: v
    w = dict(w, w1=fw.transpose(w["w1"], (2, 3, 1, 0)), w2=fw.transpose(w["w2"], (2, 3, 1, 0)))
    if permute_rows:  # Flatten gives (H, W, C) order in channels_last: permute the Dense rows to it
        w["w3"] = fw.reshape(fw.transpose(fw.reshape(w["w3"], flat), (1, 2, 0, 3)), (-1, H))

    def back(name, v):
        if name == "dx":
            return fw.transpose(v, (0, 3, 1, 2))
        if name in ("dw1", "dw2"):
            return fw.transpose(v, (3, 2, 0, 1))
        if name == "dw3" and permute_rows:
            return fw.reshape(fw.transpose(fw.reshape(v, (*flat[1:3], C2, H)), (2, 0, 1, 3)), (-1, H))
        return v

    return fw.transpose(x, (0, 2, 3, 1)), w, back


def _run(fw, p, x, g, w, **port):
    x, w, back = _port(fw, p, x, w, **port)
    layers = [("conv", w["w1"], w["b1"]), ("relu",), ("max_pool", 2),
              ("conv", w["w2"], w["b2"]), ("relu",), ("max_pool", 2),
              ("flatten",), ("dense", w["w3"], w["b3"]), ("relu",), ("dense", w["w4"], w["b4"])]
    y, dx, grads = fw.sequential_vjp(layers, x, g, layout=p.layout)
    out = {"y": y, "dx": dx}
    for i, (dw, db) in enumerate(grads, start=1):
        out[f"dw{i}"], out[f"db{i}"] = dw, db
    return {name: back(name, v) for name, v in out.items()}


@case.variant
def ported(fw, p, x, g, **w):
    return _run(fw, p, x, g, w)


@case.variant(when=lambda p: p.layout == "channels_last", expect="differs",
              reason="channels_last Flatten gives (H, W, C) order: torch's (C, H, W) rows must be permuted")
def without_flatten_fix(fw, p, x, g, **w):
    return _run(fw, p, x, g, w, permute_rows=False)
