"""Conv3D agrees across frameworks and layouts, forward and backward, with SAME, a stride, dilation and
a bias.

Claim: a 3-D conv of a (D, H, W) volume with a (3, 2, 3) kernel, bias passed to the framework's
conv, equals the oracle in channels_last (Keras' Conv3D, NDHWC/DHWIO) and channels_first (torch's
nn.Conv3d, NCDHW/OIDHW), with VALID or SAME padding, stride 2 or dilation 2; and autodiff of
sum(conv(x, w, b) * g) gives the oracle's dx, dw and db.
Quirk pinned: SAME at stride 2 pads unevenly on an axis where the total padding is odd (TensorFlow
puts the extra cell at the end): here the depth axis (5 at stride 2, k = 3: 2 cells, even) and the
width axis (6, k = 3: 1 cell, odd) differ.
"""

from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last", "channels_first"], "s": [1, 2], "d": [1, 2],
                  "padding": ["valid", "same"]}, where=lambda p: not (p.s > 1 and p.d > 1),
            values=("normal", "wide"))
SPATIAL, KERNEL = [5, 4, 6], [3, 2, 3]


@case.inputs
def draw(rng, p):
    xs = conv_inputs(rng, layout=p.layout, spatial=SPATIAL, kernel=KERNEL, channels=3, out_channels=4)
    out = oracle.conv_output_shape(SPATIAL, KERNEL, stride=p.s, padding=p.padding, dilation=p.d)
    g_shape = (2, 4, *out) if p.layout == "channels_first" else (2, *out, 4)
    return {**xs, "g": rng.standard_normal(g_shape)}


@case.oracle
def expected(p, x, w, b, g):
    y = oracle.conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    dx, dw, db = oracle.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return {"y": y, "dx": dx, "dw": dw, "db": db}


@case.variant
def conv_and_autodiff(fw, p, x, w, b, g):
    y = fw.conv(x, w, b, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    dx, dw, db = fw.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return {"y": y, "dx": dx, "dw": dw, "db": db}


@case.variant(frameworks=["torch"], when=lambda p: p.layout == "channels_first" and p.padding == "valid")
def torch_conv3d_module(fw, p, x, w, b, g):  # nn.Conv3d refuses padding="same" with a stride
    y = fw.conv_layer(x, w, b, stride=p.s, padding=0, dilation=p.d)
    dx, dw, db = fw.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return {"y": y, "dx": dx, "dw": dw, "db": db}


@case.variant(frameworks=["tensorflow"], when=lambda p: p.layout == "channels_last")
def keras_conv3d_layer(fw, p, x, w, b, g):
    y = fw.conv_layer(x, w, b, stride=p.s, padding=p.padding, dilation=p.d)
    dx, dw, db = fw.conv_vjp(x, w, g, stride=p.s, padding=p.padding, dilation=p.d, layout=p.layout)
    return {"y": y, "dx": dx, "dw": dw, "db": db}
