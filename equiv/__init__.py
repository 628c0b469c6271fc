"""equiv: cross-framework equivalence tests for the convolution family.

Case files import what they need from here: `Case` to declare a claim, `oracle` for the NumPy
float64 reference, `tolerance` for the rare case that needs another bound, and `Unsupported` for
a framework that cannot run an item (it becomes a skip with the message as its reason).
"""

from equiv import oracle, tolerance
from equiv.case import Case, Params, conv_inputs
from equiv.frameworks import Unsupported

__all__ = ["Case", "Params", "Unsupported", "conv_inputs", "oracle", "tolerance"]
__version__ = "0.1.0"
