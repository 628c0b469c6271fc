"""The --equiv-* options, validated once into a frozen Config."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equiv import frameworks as registry
from equiv.case import VALUE_MODES
from equiv.frameworks import DEVICES, DTYPES, NAMES, PRECISIONS
from equiv.fuzz import PROFILES as FUZZ_PROFILES
from equiv.fuzz import ParamsError, parse_params
from equiv.machine import CPU_KERNELS, JAX_MLIR_CONTEXTS, default_jax_cache

# (option, dest, help, choices) for the repeatable, comma-separable selections. The frameworks are the
# registered ones (the equiv.frameworks entry points), read again when the options are parsed.
SELECTIONS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("--equiv-framework", "equiv_framework", NAMES, "frameworks to run"),
    ("--equiv-device", "equiv_device", DEVICES, "devices to run on"),
    ("--equiv-dtype", "equiv_dtype", DTYPES, "dtypes to run"),
)
VALUES_OPTION = ("--equiv-values", "equiv_values", VALUE_MODES,
                 "input value modes for the claims that declare them (default: normal; fuzzing draws "
                 "every mode a claim declares)")


class OptionError(ValueError):
    """A bad option value; the message names the option and the accepted values."""


@dataclass(frozen=True)
class Config:
    frameworks: tuple[str, ...] = NAMES
    devices: tuple[str, ...] = DEVICES
    dtypes: tuple[str, ...] = DTYPES
    seeds: tuple[int, ...] = (0,)
    precision: str = "ieee"
    cpu_kernels: str = "default"
    jax_cache: Path | None = None
    jax_mlir_context: str = "shared"
    require_device: tuple[str, ...] = ()
    require_framework: tuple[str, ...] = ()
    repeat: int = 1
    require_deterministic: bool = False
    report: Path | None = None
    markdown: Path | None = None
    heatmaps: Path | None = None
    shard: tuple[int, int] | None = None  # (k, n): the k-th (1-based) of n slices of the items
    durations: Path | None = None  # an earlier report whose item times balance the shards
    label: str = ""  # names this run in merged reports (a GPU type, a kernel setting)
    outputs: Path | None = None  # where to keep every output and bound, for cross-shard pairs
    fuzz: int = 0  # draws per claim, device and dtype (0 and no fuzz_minutes: no fuzzing)
    fuzz_minutes: float = 0.0  # a time budget for all fuzz items of this process, instead of draws
    fuzz_profile: str = "local"
    fuzz_db: Path | None = None  # hypothesis's example database (None: none kept)
    params: dict[str, Any] | None = None  # --equiv-params: run this one point instead of the grid
    values: tuple[str, ...] = ("normal",)  # --equiv-values: the value modes grid items run in
    # --equiv-defect-at-any-release ID: apply that known-defect entry whatever its `versions` say (to
    # measure at which releases its symptom shows: nox -s versions -- --defect ID).
    defect_any_release: str | None = None

    @property
    def fuzzing(self) -> bool:
        return bool(self.fuzz or self.fuzz_minutes)


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


def seed_list(value: str) -> tuple[int, ...]:
    """`--equiv-seed` values: 3, 1-20 (inclusive) or 1,5,9, in the order given, without repeats."""
    seeds: list[int] = []
    try:
        for piece in str(value).split(","):
            first, dash, last = piece.strip().partition("-")
            span = range(int(first), int(last) + 1) if dash else [int(first)]
            seeds += [s for s in span if s not in seeds]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise OptionError(f"--equiv-seed: {value!r} is not a seed list; give N, A-B or A,B,C "
                          "(non-negative integers, A <= B)")
    return tuple(seeds)


def shard_of(value: str | None) -> tuple[int, int] | None:
    """`--equiv-shard K/N` -> (K, N), 1 <= K <= N."""
    if value is None:
        return None
    k, slash, n = value.partition("/")
    if not (slash and k.strip().isdigit() and n.strip().isdigit() and 1 <= int(k) <= int(n)):
        raise OptionError(f"--equiv-shard: {value!r} is not K/N with 1 <= K <= N (e.g. 2/4)")
    return int(k), int(n)


def one_of(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"{option}: unknown value {value}; choose from {', '.join(choices)}")
    return value


def from_options(get: Any) -> Config:
    """Build the Config from pytest's `config.getoption`."""
    registered = registry.names()
    selected = {dest: split_choices(opt, get(dest), registered if dest == "equiv_framework" else choices)
                for opt, dest, choices, _ in SELECTIONS}
    precision = one_of("--equiv-precision", get("equiv_precision") or "ieee", PRECISIONS)
    cpu_kernels = one_of("--equiv-cpu-kernels", get("equiv_cpu_kernels") or "default", CPU_KERNELS)
    cache = get("equiv_jax_cache") or os.environ.get("EQUIV_JAX_CACHE")  # "off" from either means off
    jax_cache = None if cache == "off" else Path(cache) if cache else default_jax_cache()
    mlir_context = one_of("--equiv-jax-mlir-context", get("equiv_jax_mlir_context") or "shared",
                          JAX_MLIR_CONTEXTS)
    require = split_choices("--equiv-require-device", get("equiv_require_device"), DEVICES) if get(
        "equiv_require_device"
    ) else ()
    missing = sorted(set(require) - set(selected["equiv_device"]))
    if missing:
        raise OptionError(
            f"--equiv-require-device {','.join(missing)}: that device is not selected by --equiv-device"
        )
    need = get("equiv_require_framework")
    required = split_choices("--equiv-require-framework", need, registered) if need else ()
    unselected = sorted(set(required) - set(selected["equiv_framework"]))
    if unselected:
        raise OptionError(f"--equiv-require-framework {','.join(unselected)}: "
                          "not selected by --equiv-framework")
    repeat = get("equiv_repeat")
    if repeat < 1:
        raise OptionError(f"--equiv-repeat must be >= 1, got {repeat}")
    if get("equiv_require_deterministic") and repeat < 2:
        raise OptionError("--equiv-require-deterministic needs --equiv-repeat N with N >= 2")

    if get("equiv_durations") and not get("equiv_shard"):
        raise OptionError("--equiv-durations balances --equiv-shard: give --equiv-shard K/N too")
    if get("equiv_durations") and not Path(get("equiv_durations")).is_file():
        raise OptionError(f"--equiv-durations: no such report {get('equiv_durations')}; give the JSON "
                          "that --equiv-report wrote on an earlier run")

    if get("equiv_heatmaps") and importlib.util.find_spec("matplotlib") is None:
        raise OptionError("--equiv-heatmaps needs matplotlib: pip install 'equiv[heatmaps]'")

    fuzz, minutes = get("equiv_fuzz") or 0, get("equiv_fuzz_minutes") or 0.0
    profile = one_of("--equiv-fuzz-profile", get("equiv_fuzz_profile") or "local", FUZZ_PROFILES)
    if fuzz < 0 or minutes < 0:
        raise OptionError("--equiv-fuzz and --equiv-fuzz-minutes take a positive number")
    if fuzz and minutes:
        raise OptionError("--equiv-fuzz N (draws) and --equiv-fuzz-minutes M (time) are two budgets: "
                          "give one")
    if minutes and profile == "ci":
        raise OptionError("--equiv-fuzz-profile ci draws a fixed set: give --equiv-fuzz N, not minutes")
    if (fuzz or minutes) and importlib.util.find_spec("hypothesis") is None:
        raise OptionError("--equiv-fuzz needs hypothesis: pip install 'equiv[fuzz]'")
    params = None
    if get("equiv_params"):
        if fuzz or minutes:
            raise OptionError("--equiv-params replays one point; it does not combine with --equiv-fuzz")
        try:
            params = parse_params(get("equiv_params"))
        except ParamsError as e:
            raise OptionError(str(e)) from None
    db = get("equiv_fuzz_db")
    fuzz_db = None if db == "off" else Path(db) if db else Path(".hypothesis") / "equiv"

    def path(dest: str) -> Path | None:
        value = get(dest)
        return Path(value) if value else None

    return Config(
        frameworks=selected["equiv_framework"],
        devices=selected["equiv_device"],
        dtypes=selected["equiv_dtype"],
        seeds=seed_list(get("equiv_seed")),
        precision=precision,
        cpu_kernels=cpu_kernels,
        jax_cache=jax_cache,
        jax_mlir_context=mlir_context,
        require_device=require,
        require_framework=required,
        repeat=repeat,
        require_deterministic=bool(get("equiv_require_deterministic")),
        report=path("equiv_report"),
        markdown=path("equiv_markdown"),
        heatmaps=path("equiv_heatmaps"),
        shard=shard_of(get("equiv_shard")),
        durations=path("equiv_durations"),
        label=get("equiv_label") or "",
        outputs=path("equiv_outputs"),
        fuzz=fuzz,
        fuzz_minutes=minutes,
        fuzz_profile=profile,
        fuzz_db=fuzz_db,
        params=params,
        values=split_choices(VALUES_OPTION[0], get(VALUES_OPTION[1]) or ["normal"], VALUE_MODES),
        defect_any_release=get("equiv_defect_any_release"),
    )
