"""The --equiv-* options, validated once into a frozen Config."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equiv.frameworks import DEVICES, DTYPES, NAMES, PRECISIONS

# (option, dest, help, choices) for the repeatable, comma-separable selections.
SELECTIONS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("--equiv-framework", "equiv_framework", NAMES, "frameworks to run"),
    ("--equiv-device", "equiv_device", DEVICES, "devices to run on"),
    ("--equiv-dtype", "equiv_dtype", DTYPES, "dtypes to run"),
)


class OptionError(ValueError):
    """A bad option value; the message names the option and the accepted values."""


@dataclass(frozen=True)
class Config:
    frameworks: tuple[str, ...] = NAMES
    devices: tuple[str, ...] = DEVICES
    dtypes: tuple[str, ...] = DTYPES
    seed: int = 0
    precision: str = "ieee"
    require_device: tuple[str, ...] = ()
    repeat: int = 1
    require_deterministic: bool = False
    report: Path | None = None
    markdown: Path | None = None
    heatmaps: Path | None = None


def split_choices(option: str, values: Sequence[str] | None, choices: tuple[str, ...]) -> tuple[str, ...]:
    """`--opt a --opt b,c` -> (a, b, c) in the canonical order; unknown values are an error."""
    if not values:
        return choices
    picked = {v.strip() for value in values for v in value.split(",") if v.strip()}
    unknown = sorted(picked - set(choices))
    if unknown:
        raise OptionError(
            f"{option}: unknown value(s) {', '.join(unknown)}; choose from {', '.join(choices)}"
        )
    return tuple(c for c in choices if c in picked)


def from_options(get: Any) -> Config:
    """Build the Config from pytest's `config.getoption`."""
    selected = {dest: split_choices(opt, get(dest), choices) for opt, dest, choices, _ in SELECTIONS}
    precision = get("equiv_precision") or "ieee"
    if precision not in PRECISIONS:
        raise OptionError(
            f"--equiv-precision: unknown value {precision}; choose from {', '.join(PRECISIONS)}"
        )
    require = split_choices("--equiv-require-device", get("equiv_require_device"), DEVICES) if get(
        "equiv_require_device"
    ) else ()
    missing = sorted(set(require) - set(selected["equiv_device"]))
    if missing:
        raise OptionError(
            f"--equiv-require-device {','.join(missing)}: that device is not selected by --equiv-device"
        )
    repeat = get("equiv_repeat")
    if repeat < 1:
        raise OptionError(f"--equiv-repeat must be >= 1, got {repeat}")
    if get("equiv_require_deterministic") and repeat < 2:
        raise OptionError("--equiv-require-deterministic needs --equiv-repeat N with N >= 2")

    if get("equiv_heatmaps") and importlib.util.find_spec("matplotlib") is None:
        raise OptionError("--equiv-heatmaps needs matplotlib: pip install 'equiv[heatmaps]'")

    def path(dest: str) -> Path | None:
        value = get(dest)
        return Path(value) if value else None

    return Config(
        frameworks=selected["equiv_framework"],
        devices=selected["equiv_device"],
        dtypes=selected["equiv_dtype"],
        seed=get("equiv_seed"),
        precision=precision,
        require_device=require,
        repeat=repeat,
        require_deterministic=bool(get("equiv_require_deterministic")),
        report=path("equiv_report"),
        markdown=path("equiv_markdown"),
        heatmaps=path("equiv_heatmaps"),
    )
