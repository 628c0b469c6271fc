"""The three frameworks behind one interface, imported lazily.

Each of `equiv.frameworks.torch`, `.tensorflow` and `.jax` defines the same
names (see `Framework`); a framework's spelling of each convention lives only
in its own module. Modules are imported on first use, once per process, so a
run that selects only JAX never pays for importing TensorFlow.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

NAMES: tuple[str, ...] = ("torch", "tensorflow", "jax")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")
HALF: tuple[str, ...] = ("float16", "bfloat16")
PRECISIONS: tuple[str, ...] = ("ieee", "tf32")
# The layers layer_output_shape knows (every framework module spells each its own way).
SHAPE_KINDS: tuple[str, ...] = ("conv", "depthwise", "conv_transpose", "max_pool", "avg_pool", "mnist_cnn")
# The layers sequential_vjp builds a model from, each a tuple: ("conv", w, b), ("relu",),
# ("max_pool", window), ("flatten",) in memory order, ("dense", w, b) with w (in, out). Conv weights
# follow the layout's convention (OIHW for channels_first, HWIO for channels_last), as conv's do.
LAYER_KINDS: tuple[str, ...] = ("conv", "relu", "max_pool", "flatten", "dense")


def check_layers(layers: Sequence[tuple[Any, ...]]) -> None:
    """A model spec every framework module can build, or a ValueError naming the bad layer."""
    arity = {"conv": 3, "relu": 1, "max_pool": 2, "flatten": 1, "dense": 3}
    for i, layer in enumerate(layers):
        if not layer or layer[0] not in arity or len(layer) != arity[layer[0]]:
            raise ValueError(f"sequential_vjp: layer {i} is {layer!r}; each is one of ('conv', w, b), "
                             "('relu',), ('max_pool', window), ('flatten',), ('dense', w, b)")


def kernels_by_dtype(library: Callable[[str], tuple[str, str]]) -> dict[str, dict[str, str]]:
    """{dtype: {"library", "why"}} for the environment block, from a module's (library, why) rule."""
    return {dtype: dict(zip(("library", "why"), library(dtype), strict=True)) for dtype in DTYPES}


# The distribution whose presence decides "installed" (tensorflow-cpu provides tensorflow).
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
    "jax": ("jax",),
}


def per_axis(value: int | Sequence[int], nd: int) -> tuple[int, ...]:
    """An int for every spatial axis, or the per-axis sequence as given (stride, dilation, window)."""
    return (value,) * nd if isinstance(value, int) else tuple(value)


def driver_from_proc(text: str) -> str | None:
    """The version in /proc/driver/nvidia/version's NVRM line (proprietary and open kernel modules)."""
    m = re.search(r"NVRM version:.*?Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return m.group(1) if m else None


def gpu_driver(proc: Path = Path("/proc/driver/nvidia/version")) -> str | None:
    """The machine's NVIDIA driver version (all three frameworks share it), or None without one.

    No framework reports it: read the kernel module's file, else ask nvidia-smi.
    """
    try:
        found = driver_from_proc(proc.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.stdout.strip().splitlines()[:1]
    return first[0].strip() if out.returncode == 0 and first else None


class Unsupported(Exception):
    """The framework cannot run this item; the message, which says why, becomes the skip reason."""


class NotInstalled(Unsupported):
    """The framework's package is not importable in this environment."""


class Framework(Protocol):
    """What every framework module provides (structural: the modules are not classes)."""

    name: str

    def version(self) -> str: ...
    def gpus(self) -> list[str]: ...
    def environment(self) -> dict[str, Any]: ...
    def precision(self, mode: str) -> AbstractContextManager[None]: ...
    def precision_state(self) -> dict[str, Any]: ...
    def cpu_kernels(self, mode: str) -> AbstractContextManager[None]: ...
    def cpu_kernel_state(self) -> dict[str, Any]: ...
    def cpu_kernel_library(self, dtype: str) -> str: ...
    def compile_stats(self) -> dict[str, float]: ...
    def execute(self, fn: Any, key: tuple[Any, ...], arrays: dict[str, Any]) -> Any: ...
    def release(self, key: tuple[Any, ...]) -> None: ...
    def scope(self, device: str) -> AbstractContextManager[None]: ...
    def asarray(self, a: npt.NDArray[Any], device: str) -> Any: ...
    def to_numpy(self, t: Any) -> npt.NDArray[Any]: ...
    def device_of(self, t: Any) -> str: ...
    def conv(
        self,
        x: Any,
        w: Any,
        b: Any = None,
        *,
        stride: int | Sequence[int] = 1,
        padding: Any = "valid",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        layout: str = "channels_first",
    ) -> Any: ...
    def dense(self, x: Any, w: Any, b: Any = None) -> Any: ...
    def pad(self, x: Any, pairs: Sequence[tuple[int, int]]) -> Any: ...
    def transpose(self, x: Any, axes: Sequence[int]) -> Any: ...
    def reshape(self, x: Any, shape: Sequence[int]) -> Any: ...


_loaded: dict[str, Framework] = {}
_import_seconds: dict[str, float] = {}


def is_installed(name: str) -> bool:
    """Whether the framework's package can be imported, without importing it."""
    _check_name(name)
    return importlib.util.find_spec(name) is not None


def installed_version(name: str) -> str | None:
    """The installed distribution's version, read from metadata (no import)."""
    for dist in _DISTRIBUTIONS[name]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def load(name: str) -> Framework:
    """Import equiv's module for `name` once per process; NotInstalled if its package is absent."""
    _check_name(name)
    if name not in _loaded:
        if not is_installed(name):
            raise NotInstalled(f"{name} is not installed (pip install 'equiv[{name}]')")
        # A failure past this point is a real error in the framework or in equiv: let it show.
        start = time.perf_counter()
        _loaded[name] = cast(Framework, importlib.import_module(f"equiv.frameworks.{name}"))
        _import_seconds[name] = time.perf_counter() - start
        # A framework's modules live as long as the process: keep the collector from rescanning
        # their millions of objects (TensorFlow's alone cost seconds of full collections per run).
        gc.freeze()
    return _loaded[name]


def import_seconds() -> dict[str, float]:
    """How long this process took to import each framework it loaded (the benchmark's import time)."""
    return dict(_import_seconds)


def loaded() -> Iterator[Framework]:
    """The frameworks this process has imported so far."""
    return iter(list(_loaded.values()))


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown framework {name!r}; expected one of {', '.join(NAMES)}")


def spatial_axes(ndim: int, layout: str) -> tuple[int, ...]:
    """The spatial axes of an (N, C, *spatial) or (N, *spatial, C) array."""
    return tuple(range(2, ndim)) if layout == "channels_first" else tuple(range(1, ndim - 1))


def numpy_dtype(name: str) -> np.dtype[Any]:
    """NumPy's dtype for an item dtype: bfloat16 is ml_dtypes' (JAX's and TensorFlow's own)."""
    if name == "bfloat16":
        import ml_dtypes

        bf16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
        return bf16
    return np.dtype(name)


def as_float64(a: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(a, dtype=np.float64)
