"""`equiv new NAME`: start a claim from a case file that already passes in every framework.

The template is a small, true identity (a conv with padding="same" equals the conv of the input
padded by hand) with TODO comments at each piece to change. Run it at once with
`pytest cases/NAME.py --equiv-device cpu`, then make it your claim.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

TEMPLATE = '''"""TODO: the claim, in one sentence: what equals what.

Claim: TODO: state it exactly, with the conditions (layouts, strides, dtypes) it holds under.
Quirk pinned: TODO: the convention a port gets wrong here (this template: padding="same" at stride 1
with an odd kernel pads (k-1)/2 cells at each end).
"""

from equiv import Case, conv_inputs, oracle

# TODO: the parameters the claim varies; each test id names them (e.g. "L7-k3").
case = Case(grid={{"L": [7, 8], "k": [3, 5]}}, output_layout="channels_last")


@case.inputs
def draw(rng, p):
    # TODO: the arrays the claim takes. Each key is passed by name to the oracle and to every variant.
    return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[p.k], channels=2, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    # TODO: the answer, from equiv.oracle (NumPy float64; the inputs already rounded to the dtype).
    return oracle.conv(x, w, b, padding="same", layout="channels_last")


@case.variant
def same_padding(fw, p, x, w, b):
    # TODO: one way a framework computes the claim; fw is the framework's equiv module.
    return fw.conv(x, w, b, padding="same", layout="channels_last")


@case.variant
def padded_by_hand(fw, p, x, w, b):
    # TODO: another way, the one the claim says is the same.
    half = (p.k - 1) // 2  # (N, L, C): pad the length axis only
    return fw.conv(fw.pad(x, [(0, 0), (half, half), (0, 0)]), w, b, layout="channels_last")
'''

NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class ScaffoldError(ValueError):
    """The name cannot be used; the message says why and what to do."""


def new(name: str, cases: Path = Path("cases")) -> Path:
    """Write cases/NAME.py from the template; refuse a name that is taken or not a module name."""
    if not NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"equiv new: {name!r} is not a case name; use lowercase letters, digits and _, "
                            "starting with a letter, named after the claim (e.g. avg_pool_as_depthwise_conv)")
    if not cases.is_dir():
        raise ScaffoldError(f"equiv new: no {cases}/ folder here; run it from the project root")
    path = cases / f"{name}.py"
    if path.exists():
        raise ScaffoldError(f"equiv new: {path} exists; choose another name or edit that file")
    path.write_text(TEMPLATE.format(), encoding="utf-8")
    return path
