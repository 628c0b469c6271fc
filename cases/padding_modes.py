"""torch's padding_mode is an explicit pad (reflect, replicate, circular) then a VALID conv.

Claim: nn.Conv*d(padding=p, padding_mode=m) equals a VALID conv of the input padded in mode m: in
TF tf.pad(mode="REFLECT"), and for replicate and circular (tf.pad has neither) slices of the input
concatenated; in JAX jnp.pad with mode "reflect", "edge" (torch's replicate) or "wrap" (circular);
in torch F.pad(mode=m). torch's padding="same" with an even kernel pads one cell more after than
before, in every mode, so the port pads (1, 2) for k=4. 1-D and 2-D, both layouts for the ports.
Known non-equivalence: torch's "reflect" is tf.pad's REFLECT (the edge not repeated), not
SYMMETRIC (the edge repeated): every output that reads the padding differs.
"""

from equiv import Case, conv_inputs, oracle

SPATIAL = [6, 5]
case = Case(grid={"mode": ["reflect", "replicate", "circular"], "layout": ["channels_first", "channels_last"],
                  "nd": [1, 2], "k": [3, 4], "padding": ["same", 2]},
            values=("normal", "wide"))


def _pairs(p):
    """One (before, after) pair per axis of x: torch's padding as a port computes it."""
    spatial = oracle.padding_pairs(p.padding, SPATIAL[: p.nd], [p.k] * p.nd)
    return [(0, 0), *spatial, (0, 0)] if p.layout == "channels_last" else [(0, 0), (0, 0), *spatial]


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=SPATIAL[: p.nd], kernel=[p.k] * p.nd, channels=2,
                       out_channels=3)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(oracle.pad(x, _pairs(p), p.mode), w, b, layout=p.layout)


@case.variant(frameworks=["torch"], when=lambda p: p.layout == "channels_first")
def torch_padding_mode(fw, p, x, w, b):  # nn.Conv*d(padding=..., padding_mode=...) with its weights set
    return fw.conv_layer(x, w, b, padding=p.padding, padding_mode=p.mode)


@case.variant(frameworks=["torch", "tensorflow", "jax"])
def explicit_pad_then_valid(fw, p, x, w, b):
    return fw.conv(fw.pad_mode(x, _pairs(p), p.mode), w, b, padding="valid", layout=p.layout)


@case.variant(frameworks=["tensorflow", "jax"], expect="differs", when=lambda p: p.mode == "reflect",
              reason="torch's reflect leaves the edge out (tf.pad REFLECT); SYMMETRIC repeats it")
def symmetric_is_not_reflect(fw, p, x, w, b):
    return fw.conv(fw.pad_mode(x, _pairs(p), "symmetric"), w, b, padding="valid", layout=p.layout)
