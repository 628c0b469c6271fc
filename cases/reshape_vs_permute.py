"""Swapping two axes is a permute, never a reshape.

Claim: Keras Permute((2, 1)), torch's x.permute(0, 2, 1) and jnp.transpose(x, (0, 2, 1)) turn
(N, A, B) into (N, B, A) with out[n, j, i] = x[n, i, j], exactly: they only move data. This is the
swap a port needs between (time, features) and (features, time), e.g. before a Conv1D.
Known non-equivalence: reshape(x, (N, B, A)) gives the same shape but keeps the memory order and cuts
it into rows of length A, so with A != B every element of a sample but the first and the last lands
elsewhere.
"""

import numpy as np

from equiv import Case, tolerance

case = Case(grid={"A": [3, 5], "B": [4, 7]}, tolerance=tolerance.exact(), output_layout="channels_first")


@case.inputs
def draw(rng, p):
    return {"x": rng.standard_normal((2, p.A, p.B))}


@case.oracle
def expected(p, x):
    return np.transpose(x, (0, 2, 1))


@case.variant
def permute_layer(fw, p, x):
    return fw.permute_layer(x, (2, 1))


@case.variant
def transpose(fw, p, x):
    return fw.transpose(x, (0, 2, 1))


@case.variant(expect="differs", reason="a reshape keeps the memory order: it does not swap the axes")
def reshape_instead(fw, p, x):
    return fw.reshape(x, (2, p.B, p.A))
