"""Every item's outputs and bounds, kept in one .npz per run (`--equiv-outputs`).

A run pairs frameworks only within one process. Shards on different machines, or the same items under
two GPU types or kernel settings, meet only in `python -m equiv merge`, which pairs them from these
files. Each xdist worker writes its own part; the controlling process joins the parts into one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Outputs = tuple[dict[str, Array], dict[str, Array]]  # (output name -> result, -> allowed error)


class Store:
    """Outputs of this process's items, in the order they ran."""

    def __init__(self) -> None:
        self.items: dict[str, Outputs] = {}

    def add(self, item_id: str, outputs: Mapping[str, Array], allowed: Mapping[str, Array]) -> None:
        # Kept as float64 (exact for every item dtype): .npz cannot store ml_dtypes' bfloat16.
        wide = {n: v.astype(np.float64) if v.dtype.name == "bfloat16" else v for n, v in outputs.items()}
        self.items[item_id] = (wide, dict(allowed))

    def write(self, path: Path, *, parts: bool = False) -> None:
        """Write `path`; with `parts`, join the workers' part files into it and remove them."""
        items = dict(self.items)
        if parts:
            for part_path in sorted(part_files(path)):
                items.update(load(part_path))
                part_path.unlink()
        names: list[str] = []
        arrays: dict[str, Any] = {}
        for item_id, (outs, allowed) in items.items():
            for name, value in outs.items():
                arrays[f"a{len(names)}"] = value
                arrays[f"b{len(names)}"] = allowed[name]
                names.append(f"{item_id}\t{name}")  # ids may hold any character but a tab
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, names=np.array(names, dtype=str), **arrays)


def part(path: Path, worker: str) -> Path:
    return path.with_name(f"{path.stem}.{worker}{path.suffix or '.npz'}")


def part_files(path: Path) -> list[Path]:
    return list(path.parent.glob(f"{path.stem}.gw*{path.suffix or '.npz'}"))


def load(path: Path) -> dict[str, Outputs]:
    """Item id -> (outputs, allowed errors), as the run wrote them."""
    items: dict[str, Outputs] = {}
    with np.load(path, allow_pickle=False) as data:
        for i, key in enumerate(data["names"]):
            item_id, name = str(key).split("\t")
            outs, allowed = items.setdefault(item_id, ({}, {}))
            outs[name] = data[f"a{i}"]
            allowed[name] = data[f"b{i}"]
    return items
