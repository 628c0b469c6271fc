"""The frameworks behind one interface, registered by entry point and imported lazily.

Each framework's adapter module (`equiv.frameworks.torch`, `.tensorflow`, `.jax`, `.onnxruntime`, or
a plugin's own) defines the same names (see `Framework`); a framework's spelling of each convention
lives only in its own module. Every framework, equiv's own too, is named by an entry point of the
group `equiv.frameworks` whose value is a `Registration` (`torch = "equiv.frameworks:TORCH"`): what
equiv needs to know before importing it. Adapters are imported on first use, once per process, so a
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
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class Registration:
    """A framework as its `equiv.frameworks` entry point names it: all equiv reads before importing it.

    name: the framework's name in options, ids and the matrix (the entry point's name);
    adapter: the module that implements `Framework`, imported on first use;
    imports: the packages that must be importable for it to run (found, never imported here);
    distributions: whose installed version is the framework's (the first found wins);
    install: what to `pip install` to get it, for the skip reason when it is absent;
    problem: why the entry point could not be read (its results then skip with that reason).
    """

    name: str
    adapter: str
    imports: tuple[str, ...]
    distributions: tuple[str, ...]
    install: str
    problem: str = ""


GROUP = "equiv.frameworks"
# equiv's own, registered in its pyproject.toml like any plugin; the first three come first, in this
# order, then every other registered framework by name. The three are held to cover every grid point
# of every claim (Case.problems); another framework skips where no variant names it.
TORCH = Registration("torch", "equiv.frameworks.torch", ("torch",), ("torch",), "equiv[torch]")
TENSORFLOW = Registration("tensorflow", "equiv.frameworks.tensorflow", ("tensorflow",),
                          ("tensorflow", "tensorflow-cpu", "tf-nightly"), "equiv[tensorflow]")
JAX = Registration("jax", "equiv.frameworks.jax", ("jax",), ("jax",), "equiv[jax]")
ONNXRUNTIME = Registration("onnxruntime", "equiv.frameworks.onnxruntime", ("onnx", "onnxruntime"),
                           ("onnxruntime", "onnxruntime-gpu"), "equiv[onnx]")
BUILTIN: tuple[str, ...] = ("torch", "tensorflow", "jax")


def discover() -> dict[str, Registration]:
    """Every framework registered in the `equiv.frameworks` entry-point group, built-ins first.

    Reading a registration imports the module that holds it, never the framework. One that cannot be
    read stays registered with its `problem`, so its column shows why instead of vanishing.
    """
    found: dict[str, Registration] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name in found:
            continue  # the first distribution on sys.path wins, as an import would
        try:
            reg = ep.load()
        except Exception as e:
            reg = _broken(ep.name, f"its entry point {ep.value!r} failed to load: {type(e).__name__}: {e}")
        if not isinstance(reg, Registration) or reg.name != ep.name:
            reg = _broken(ep.name, f"its entry point {ep.value!r} is not a Registration named {ep.name!r}")
        found[ep.name] = reg
    if not any(name in found for name in BUILTIN):
        # equiv's own metadata lacks the group: run from a source tree, or installed before it existed.
        warnings.warn(f"equiv's {GROUP} entry points are not installed; using its own frameworks "
                      "(pip install -e . to register them)", RuntimeWarning, stacklevel=2)
        found.update({r.name: r for r in (TORCH, TENSORFLOW, JAX, ONNXRUNTIME) if r.name not in found})
    order = [n for n in BUILTIN if n in found] + sorted(n for n in found if n not in BUILTIN)
    return {n: found[n] for n in order}


def _broken(name: str, problem: str) -> Registration:
    return Registration(name, "", (), (), name, problem=f"{name} is registered but {problem}")


_registry: dict[str, Registration] = discover()
# The registered frameworks, read at import. `names()` reads them at use; `refresh()` reads the
# entry points again (a plugin installed into this process) and updates both.
NAMES: tuple[str, ...] = tuple(_registry)


def names() -> tuple[str, ...]:
    """The registered frameworks now: what a variant without frameworks= runs in."""
    return tuple(_registry)


def registration(name: str) -> Registration:
    _check_name(name)
    return _registry[name]


def refresh() -> tuple[str, ...]:
    """Read the entry points again; returns the names. Modules already loaded stay loaded."""
    global NAMES, _registry
    _registry = discover()
    NAMES = tuple(_registry)
    return NAMES


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
    """What every framework module provides, with one signature (structural: modules are not classes).

    Arrays are the framework's own (`Any` here). Layouts are "channels_first" (NCHW, OIHW weights) or
    "channels_last" (NHWC, HWIO weights), as in `equiv.oracle`. A framework that cannot do something
    at all raises `Unsupported`, and the result skips with its message. Names only one framework has
    (its layers, its own spellings) are listed in that module's `OWN`; a variant calling one names
    the framework with `frameworks=[...]`. `tests/test_frameworks.py` checks that every module
    defines every name here and nothing undeclared; mypy checks the signatures.
    """

    name: str
    # -- The case API: what variants call -------------------------------------------------------
    def conv(self, x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1,
             padding: Any = "valid", dilation: int | Sequence[int] = 1, groups: int = 1,
             layout: str = "channels_first") -> Any:
        """N-D grouped, strided, dilated cross-correlation plus bias; padding as `oracle.conv` takes it."""
    def conv_transpose(self, x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1,
                       padding: Any = 0, output_padding: int | Sequence[int] = 0,
                       dilation: int | Sequence[int] = 1, groups: int = 1,
                       layout: str = "channels_first") -> Any:
        """Transposed conv; weights (C_in, C_out/groups, *k) channels_first, (*k, C_out/groups, C_in) last."""
    def depthwise_conv(self, x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1,
                       padding: Any = "valid", dilation: int | Sequence[int] = 1,
                       layout: str = "channels_first") -> Any:
        """Depthwise conv with TF's filter layout (*k, C, M): output channel c*M + m uses w[..., c, m]."""
    def conv_vjp(self, x: Any, w: Any, g: Any, *, stride: int | Sequence[int] = 1, padding: Any = "valid",
                 dilation: int | Sequence[int] = 1, groups: int = 1,
                 layout: str = "channels_first") -> tuple[Any, Any, Any]:
        """(dx, dw, db) of sum(conv(x, w, b) * g) by the framework's autodiff."""
    def dense(self, x: Any, w: Any, b: Any = None) -> Any:
        """x (..., in) @ w (in, out) + b."""
    def avg_pool(self, x: Any, window: int | Sequence[int], *, stride: int | Sequence[int] | None = None,
                 padding: Any = "valid", ceil_mode: bool = False, count_include_pad: bool = False,
                 layout: str = "channels_first") -> Any:
        """Mean over each window; the divisor counts real cells unless count_include_pad."""
    def max_pool(self, x: Any, window: int | Sequence[int], *, stride: int | Sequence[int] | None = None,
                 padding: Any = "valid", ceil_mode: bool = False, layout: str = "channels_first") -> Any:
        """Max over each window; padded cells never win."""
    def global_avg_pool(self, x: Any, *, layout: str = "channels_first") -> Any:
        """Mean over every spatial axis, (N, C)."""
    def global_max_pool(self, x: Any, *, layout: str = "channels_first") -> Any:
        """Max over every spatial axis, (N, C)."""
    def mixed_precision_conv(self, x: Any, w: Any, b: Any, *, compute: str,
                             layout: str = "channels_first") -> Any:
        """A conv under the framework's mixed-precision policy computing in `compute` (a half dtype)."""
    def time_distributed_conv(self, x: Any, w: Any, b: Any = None, *, padding: str = "valid") -> Any:
        """A conv applied at every step of (N, T, *spatial, C) as the framework spells it."""
    def sequential_vjp(self, layers: Sequence[tuple[Any, ...]], x: Any, g: Any, *,
                       layout: str = "channels_first") -> tuple[Any, Any, list[tuple[Any, Any]]]:
        """A model of LAYER_KINDS built in the framework: (output, dx, [(dw, db) per weighted layer])."""
    def flatten_layer(self, x: Any) -> Any:
        """The framework's Flatten: axis 0 kept, the rest in memory order."""
    def permute_layer(self, x: Any, dims: Sequence[int]) -> Any:
        """The framework's Permute of the non-batch axes (dims counted from 1, as Keras does)."""
    def layer_output_shape(self, kind: str, input_shape: Sequence[int], *, kernel: int = 3, filters: int = 4,
                           stride: int = 1, padding: Any = "valid", dilation: int = 1) -> tuple[int, ...]:
        """The output shape the framework's layer of SHAPE_KINDS gives, computed without running it."""
    def param_count(self, kind: str, *, nd: int, kernel: int, in_channels: int, out_channels: int,
                    groups: int = 1, depth_multiplier: int = 1, bias: bool = True) -> int:
        """The parameters the framework's layer of `kind` holds, counted by the framework."""
    def pad(self, x: Any, pairs: Sequence[tuple[int, int]]) -> Any:
        """Zero padding, one (before, after) pair per axis."""
    def transpose(self, x: Any, axes: Sequence[int]) -> Any:
        """The axes permuted (numpy.transpose)."""
    def reshape(self, x: Any, shape: Sequence[int]) -> Any:
        """The same elements in a new shape, row-major (numpy.reshape)."""
    def flip(self, x: Any, axes: Sequence[int]) -> Any:
        """The elements reversed along `axes`."""
    def add(self, a: Any, b: Any) -> Any:
        """a + b, broadcasting."""
    def cast(self, x: Any, dtype: str) -> Any:
        """x converted to one of DTYPES."""
    # -- The runtime: what the runner calls ------------------------------------------------------
    def version(self) -> str:
        """The framework's version."""
    def gpus(self) -> list[str]:
        """The CUDA devices it sees."""
    def environment(self) -> dict[str, Any]:
        """Versions and libraries for the report's environment block."""
    def precision(self, mode: str) -> AbstractContextManager[None]:
        """float32 as IEEE, or with TF32 allowed ("tf32"), for the block."""
    def precision_state(self) -> dict[str, Any]:
        """The float32 precision flags in force."""
    def cpu_kernels(self, mode: str) -> AbstractContextManager[None]:
        """The CPU kernel library for the block: default, onednn or reference."""
    def cpu_kernel_state(self) -> dict[str, Any]:
        """The CPU kernel library in force, per dtype, and what decided it."""
    def cpu_kernel_library(self, dtype: str) -> str:
        """The library a conv of `dtype` runs in on the CPU now."""
    def compile_stats(self) -> dict[str, float]:
        """Compilation counts and seconds, for the benchmark."""
    def execute(self, fn: Any, key: tuple[Any, ...], arrays: dict[str, Any]) -> Any:
        """Run a variant on the arrays (compiled once per key where the framework compiles)."""
    def release(self, key: tuple[Any, ...]) -> None:
        """Drop what was kept for `key`."""
    def scope(self, device: str) -> AbstractContextManager[None]:
        """Run the block on `device`."""
    def asarray(self, a: npt.NDArray[Any], device: str) -> Any:
        """A NumPy array as the framework's array on `device`."""
    def to_numpy(self, t: Any) -> npt.NDArray[Any]:
        """The framework's array as NumPy (waits for it)."""
    def device_of(self, t: Any) -> str:
        """Where the array lives: "cpu" or "cuda"."""


# The case API: the names above a variant calls (README lists them from here).
CASE_API: tuple[str, ...] = (
    "conv", "conv_transpose", "depthwise_conv", "conv_vjp", "dense", "avg_pool", "max_pool",
    "global_avg_pool", "global_max_pool", "mixed_precision_conv", "time_distributed_conv", "sequential_vjp",
    "flatten_layer", "permute_layer", "layer_output_shape", "param_count", "pad", "transpose", "reshape",
    "flip", "add", "cast",
)

def case_api_lines() -> list[str]:
    """README's list of the case API: each name, its parameters and its line, from the Protocol."""
    import inspect

    lines = []
    for name in CASE_API:
        fn = getattr(Framework, name)
        params = [p.replace(annotation=inspect.Parameter.empty)
                  for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        signature = inspect.Signature(params)
        lines.append(f"- `fw.{name}{signature}`: {inspect.getdoc(fn)}")
    return lines


# Every name some module lists in its OWN (a test checks them): what a known defect's `calls` may name.
OWN_NAMES: tuple[str, ...] = ("conv_layer", "conv_transpose_layer", "dense_layer",
                              "conv_channels_last_memory", "pool_layer", "separable_conv",
                              "conv_transpose_output_shape", "pad_mode", "adaptive_avg_pool",
                              "adaptive_max_pool", "adaptive_pool_layer", "sequential_model",
                              "torch_onnx_export")

if TYPE_CHECKING:  # mypy checks each module against the Protocol
    from equiv.frameworks import jax as _jax
    from equiv.frameworks import onnxruntime as _onnxruntime
    from equiv.frameworks import tensorflow as _tensorflow
    from equiv.frameworks import torch as _torch

    _checked: tuple[Framework, ...] = (_torch, _tensorflow, _jax, _onnxruntime)


_loaded: dict[str, Framework] = {}
_import_seconds: dict[str, float] = {}


def is_installed(name: str) -> bool:
    """Whether the framework's packages can be imported, without importing them."""
    reg = registration(name)
    return not reg.problem and all(importlib.util.find_spec(m) is not None for m in reg.imports)


def installed_version(name: str) -> str | None:
    """The installed distribution's version, read from metadata (no import)."""
    for dist in registration(name).distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def load(name: str) -> Framework:
    """Import the adapter module for `name` once per process; NotInstalled if a package is absent."""
    reg = registration(name)
    if name not in _loaded:
        if reg.problem:
            raise NotInstalled(reg.problem)
        if not is_installed(name):
            absent = [m for m in reg.imports if importlib.util.find_spec(m) is None]
            raise NotInstalled(f"{name} is not installed: no {', '.join(absent)} "
                               f"(pip install '{reg.install}')")
        # A failure past this point is a real error in the framework or in equiv: let it show.
        start = time.perf_counter()
        _loaded[name] = cast(Framework, importlib.import_module(reg.adapter))
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
    if name not in _registry:
        raise ValueError(f"unknown framework {name!r}; expected one of {', '.join(_registry)} (the "
                         f"{GROUP} entry points)")


def numpy_dtype(name: str) -> np.dtype[Any]:
    """NumPy's dtype for an item dtype: bfloat16 is ml_dtypes' (JAX's and TensorFlow's own)."""
    if name == "bfloat16":
        import ml_dtypes

        bf16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
        return bf16
    return np.dtype(name)

