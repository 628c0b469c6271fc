"""A group: one case's params and dtype, with every variant, device and seed.

Its variants share the oracle's answer and its seeds share each framework's compiled programs, so a
worker or a shard that holds the whole group computes each once. Pairing frameworks does not depend on
it: an item runs every framework on its input. Read off the item's id, which names it:
`path::variant[device-dtype-params-seedN]` is in group `path[dtype-params]`.
"""

from __future__ import annotations

import re

# An equiv item id: file::variant[device-dtype-params(-seedN)], where only params may hold '-'; xdist
# may append '@group'.
_ITEM = re.compile(r"^(?P<path>[^:]+\.py)::[^\[\]]+\[(?:[^-\]]+)-(?P<rest>[^\]]+?)(?:-seed\d+)?\]"
                   r"(?:@.*)?$")


def group_of(nodeid: str) -> str | None:
    """The group of an equiv item's node id, else None (not one of equiv's items)."""
    m = _ITEM.match(nodeid)
    return f"{m['path']}[{m['rest']}]" if m else None
