"""JAX's spelling of the conventions. lax takes any layout through dimension_numbers."""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

# Without it float64 inputs silently become float32.
jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]  # unannotated in jax
# equiv.machine.pin puts the compilation cache into the environment; jax reads it only at its own
# import, so apply it here too in case jax was imported first.
for _option, _convert in (("jax_compilation_cache_dir", str), ("jax_enable_compilation_cache",
                          lambda v: v.lower() in ("1", "true")),
                          ("jax_persistent_cache_min_compile_time_secs", float),
                          ("jax_persistent_cache_min_entry_size_bytes", int)):
    if _option.upper() in os.environ:
        jax.config.update(_option, _convert(os.environ[_option.upper()]))  # type: ignore[no-untyped-call]

import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

try:
    from jax._src.interpreters import mlir as _mlir
except ImportError:  # moved in a later jax: lowering keeps JAX's own context per program
    _mlir = None  # type: ignore[assignment]

from equiv import machine, oracle  # noqa: E402
from equiv.frameworks import SHAPE_KINDS, Unsupported, check_layers, per_axis  # noqa: E402

name = "jax"
# Names only this framework has (its layers, its own spellings), beyond the Framework Protocol.
OWN: tuple[str, ...] = ("pad_mode", "adaptive_avg_pool", "adaptive_max_pool")

_LETTERS = "DHW"
# "highest" is IEEE float32 on GPU; the default lets float32 convs and dots use TF32 there.
_precision: Any = lax.Precision.HIGHEST


def version() -> str:
    return str(jax.__version__)


def _gpu_devices() -> list[Any]:
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # "Unknown backend gpu" when jaxlib has no CUDA plugin
        return []


def gpus() -> list[str]:
    return [str(getattr(d, "device_kind", d)) for d in _gpu_devices()]


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "version": version(),
        "jaxlib": str(getattr(jax.lib, "__version__", None) or _jaxlib_version()),
        "devices": ["cpu", *gpus()],
        "precision": precision_state(),
        "cpu_kernels": cpu_kernel_state(),
        "compilation_cache": _cache_state(),
        "mlir_context": _context_state(),
    }
    gpu = _gpu_devices()
    if gpu:
        env["platform_version"] = str(gpu[0].client.platform_version)
    return env


def _jaxlib_version() -> str:
    import jaxlib

    return str(jaxlib.__version__)  # type: ignore[attr-defined]  # jaxlib does not re-export it


def _cache_state() -> str:
    cfg: Any = jax.config
    if not cfg.jax_enable_compilation_cache or not cfg.jax_compilation_cache_dir:
        return "off"
    return str(cfg.jax_compilation_cache_dir)


# JAX lowers every program into a new MLIR context. Making one (loading every dialect) and freeing
# it took 7 ms of a warm 17 ms item and 2.4 MB while the program lived. A context only interns the
# types and attributes a module uses, so a module lowered into a reused one is the same bytes (the
# persistent cache's keys, a hash of them, still hit); renewing it bounds what it interns.
CONTEXT_PROGRAMS = 256  # programs lowered into one context before a new one
MLIR_CONTEXT_ENV = machine.JAX_MLIR_CONTEXT_ENV  # shared (the default) | per-program; set by machine.pin
_context: dict[str, Any] = {"current": None, "programs": 0}
_jax_context = getattr(_mlir, "make_ir_context", None)


def _sharing() -> bool:
    return os.environ.get(MLIR_CONTEXT_ENV, "shared") == "shared"


def _reused_context() -> Any:
    if not _sharing():
        return _jax_context()  # type: ignore[misc]
    if _context["current"] is None or _context["programs"] >= CONTEXT_PROGRAMS:
        _context.update(current=_jax_context(), programs=0)  # type: ignore[misc]
    _context["programs"] += 1
    return _context["current"]


if _jax_context is not None:
    _mlir.make_ir_context = _reused_context


def _context_state() -> str:
    if _jax_context is None:
        return f"per program (jax {version()} has no mlir.make_ir_context for equiv to reuse)"
    if not _sharing():
        return "per program (JAX's own)"
    return f"shared: one MLIR context for every {CONTEXT_PROGRAMS} programs lowered"


# XLA compiles every new (op, shape, dtype): the suite's main cost. Counted per process from JAX's
# own monitoring events; a persistent-cache hit still counts as a compile, with its (short) time.
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compiles: dict[str, float] = {"compiles": 0, "compile_seconds": 0.0, "cache_hits": 0}


def _on_duration(event: str, duration_secs: float, **_: str | int) -> None:
    if event in _COMPILE_EVENTS:
        _compiles["compile_seconds"] += duration_secs
        _compiles["compiles"] += event == _COMPILE_EVENTS[-1]


def _on_event(event: str, **_: str | int) -> None:
    _compiles["cache_hits"] += event == "/jax/compilation_cache/cache_hits"


jax.monitoring.register_event_duration_secs_listener(_on_duration)
jax.monitoring.register_event_listener(_on_event)


def compile_stats() -> dict[str, float]:
    """XLA compiles in this process so far: count, seconds (trace + lower + compile), cache hits."""
    return dict(_compiles)


@functools.cache
def cpu_kernel_state() -> dict[str, Any]:
    """Read off a compiled conv: XLA:CPU runs a plain HLO convolution with its Eigen kernels.

    Its oneDNN rewrite (XLA_FLAGS=--xla_cpu_experimental_onednn_custom_call) is experimental and
    off by default, so --equiv-cpu-kernels leaves XLA_FLAGS as they are; this records what ran.
    """
    x = jnp.zeros((1, 1, 4, 4), jnp.float32)
    hlo = jax.jit(lambda a: lax.conv_general_dilated(a, a[:, :, :3, :3], (1, 1), "VALID")).lower(x)
    text = hlo.compile().as_text() or ""
    onednn = "onednn" in text.lower()
    return {
        "library": "oneDNN (XLA custom call)" if onednn else "XLA:CPU Eigen",
        "default": "XLA:CPU Eigen",
        "decided_by": f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
    }


def cpu_kernel_library(dtype: str) -> str:
    """XLA:CPU runs every dtype through the same kernels."""
    return str(cpu_kernel_state()["library"])


@contextlib.contextmanager
def cpu_kernels(mode: str) -> Iterator[None]:
    yield  # no stable switch in XLA:CPU (see cpu_kernel_state)


def precision_state() -> dict[str, Any]:
    return {
        "conv_and_dot_precision": str(_precision),
        "jax_default_matmul_precision": str(
            jax.config.jax_default_matmul_precision  # type: ignore[attr-defined]  # runtime flag, not in stub
        ),
    }


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """Every conv and dot here passes precision=; HIGHEST is IEEE float32, DEFAULT allows TF32."""
    global _precision
    saved = _precision
    _precision = lax.Precision.DEFAULT if mode == "tf32" else lax.Precision.HIGHEST
    try:
        # "float32" is the spelling every supported JAX accepts ("highest" came after 0.4.30).
        with jax.default_matmul_precision("tensorfloat32" if mode == "tf32" else "float32"):
            yield
    finally:
        _precision = saved


def _device(device: str) -> Any:
    if device == "cuda":
        gpu = _gpu_devices()
        if not gpu:
            raise Unsupported("jax sees no GPU (jax.devices('gpu') finds none)")
        return gpu[0]
    return jax.devices("cpu")[0]


@contextlib.contextmanager
def scope(device: str) -> Iterator[None]:
    with jax.default_device(_device(device)):  # arrays made inside (zeros, iota) land here too
        yield


_programs: dict[tuple[Any, ...], dict[Any, Any]] = {}  # key -> precision -> jitted (or eager) fn


def execute(fn: Any, key: tuple[Any, ...], arrays: dict[str, jax.Array]) -> Any:
    """Run one item's variant as one XLA program, as models run under jit.

    Eagerly, each lax op compiles on its own, and programs shared by many items (bias adds, pads,
    reshapes) compile again in every xdist worker; one program per item halves the compiles.
    """
    programs = _programs.setdefault(key, {})  # the precision is read while tracing: part of the key
    if _precision not in programs:
        programs[_precision] = jax.jit(fn)
    try:
        return programs[_precision](**arrays)
    except _NEEDS_VALUES:
        programs[_precision] = fn  # the variant reads values in Python (NumPy on an array): run it eagerly
        return fn(**arrays)


def release(key: tuple[Any, ...]) -> None:
    """Free the program of `key` once no item still to run here uses it: a compiled executable holds
    about 1.4 MB, and a run of the suite compiles 3,600 of them."""
    _programs.pop(key, None)


# Raised while tracing a function that needs concrete values; such a variant runs op by op instead.
_NEEDS_VALUES = (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
                 jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


def asarray(a: npt.NDArray[Any], device: str) -> jax.Array:
    out: jax.Array = jax.device_put(a, _device(device))
    return out


def to_numpy(t: jax.Array) -> npt.NDArray[Any]:
    return np.asarray(t)


def device_of(t: jax.Array) -> str:
    dev = next(iter(t.devices()))
    return "cpu" if dev.platform == "cpu" else str(dev.device_kind)


def _dimension_numbers(nd: int, layout: str) -> tuple[str, str, str]:
    s = _LETTERS[-nd:]
    if layout == "channels_first":
        return f"NC{s}", f"OI{s}", f"NC{s}"
    return f"N{s}C", f"{s}IO", f"N{s}C"


def _lax_padding(padding: Any, x: jax.Array, w: jax.Array, stride: Any, dilation: Any, layout: str) -> Any:
    named = {"valid": "VALID", "same": "SAME", "same_lower": "SAME_LOWER"}
    if isinstance(padding, str) and padding in named:
        return named[padding]
    # lax has no "causal"/"full" and wants ints as pairs: resolve to explicit (lo, hi) per axis.
    nd = x.ndim - 2
    spatial = _spatial(x, layout)
    kernel = w.shape[2:] if layout == "channels_first" else w.shape[:nd]
    return oracle.padding_pairs(padding, tuple(spatial), tuple(kernel), stride, dilation)


def conv(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
    preferred_element_type: Any = None,
    lhs_dilation: int | Sequence[int] = 1,
) -> jax.Array:
    """lax.conv_general_dilated; lhs_dilation (JAX's own) spreads x's cells apart, as Flax's
    ConvTranspose does (explicit padding pairs only, as lax requires)."""
    nd = x.ndim - 2
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=per_axis(stride, nd),
        padding=_lax_padding(padding, x, w, stride, dilation, layout),
        lhs_dilation=per_axis(lhs_dilation, nd),
        rhs_dilation=per_axis(dilation, nd),
        dimension_numbers=_dimension_numbers(nd, layout),
        feature_group_count=groups,
        precision=_precision,
        preferred_element_type=preferred_element_type,
    )
    if b is not None:
        y = y + (b.reshape((-1,) + (1,) * nd) if layout == "channels_first" else b)
    return y


def dense(x: jax.Array, w: jax.Array, b: jax.Array | None = None) -> jax.Array:
    y = jnp.matmul(x, w, precision=_precision)
    return y if b is None else y + b


def pad(x: jax.Array, pairs: Sequence[tuple[int, int]]) -> jax.Array:
    return jnp.pad(x, [tuple(p) for p in pairs])


# equiv.oracle.PAD_MODES' modes as jnp.pad (NumPy) spells them.
_PAD_MODE = {"constant": "constant", "reflect": "reflect", "symmetric": "symmetric", "replicate": "edge",
             "circular": "wrap"}


def pad_mode(x: jax.Array, pairs: Sequence[tuple[int, int]], mode: str = "constant") -> jax.Array:
    """x padded by one (before, after) pair per axis with jnp.pad in `mode` (a name oracle.pad takes):
    torch's replicate is NumPy's "edge", its circular NumPy's "wrap"."""
    if mode not in oracle.PAD_MODES:
        raise ValueError(f"jax pad_mode: unknown mode {mode!r}")
    padded: jax.Array = jnp.pad(x, [tuple(p) for p in pairs], mode=_PAD_MODE[oracle.PAD_MODES[mode]])
    return padded


def flatten_layer(x: jax.Array) -> jax.Array:
    """JAX has no layers: models (flax's, too) flatten with a reshape that keeps the batch axis."""
    return jnp.reshape(x, (x.shape[0], -1))


def permute_layer(x: jax.Array, dims: Sequence[int]) -> jax.Array:
    """No layer either: jnp.transpose with the batch axis spelled out."""
    return jnp.transpose(x, (0, *dims))


def transpose(x: jax.Array, axes: Sequence[int]) -> jax.Array:
    return jnp.transpose(x, axes)


def reshape(x: jax.Array, shape: Sequence[int]) -> jax.Array:
    return jnp.reshape(x, shape)


# --- transposed conv, gradients, depthwise, pooling -------------------------------------------------


def flip(x: jax.Array, axes: Sequence[int]) -> jax.Array:
    return jnp.flip(x, tuple(axes))


def add(a: jax.Array, b: jax.Array) -> jax.Array:
    return a + b


def _spatial(x: jax.Array, layout: str) -> tuple[int, ...]:
    return tuple(x.shape[2:] if layout == "channels_first" else x.shape[1:-1])


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
    transpose_kernel: bool = True,
) -> jax.Array:
    """lax.conv_transpose; w as oracle.conv_transpose takes it: (C_in, C_out, *k) or (*k, C_out, C_in).

    transpose_kernel=True flips the kernel and swaps its I/O axes (the gradient of conv, as in torch
    and TF); False (lax's default) is a conv of the stride-dilated input with the kernel as given.
    """
    nd = x.ndim - 2
    if groups != 1:
        raise Unsupported("jax: lax.conv_transpose has no feature_group_count")
    s, d, op = per_axis(stride, nd), per_axis(dilation, nd), per_axis(output_padding, nd)
    kernel = w.shape[2:] if layout == "channels_first" else w.shape[:nd]
    if padding == "same":
        lax_padding: Any = "SAME"  # length L*stride, the odd crop at the end, as TF
    elif isinstance(padding, str) and padding != "valid":
        raise Unsupported(f"jax: conv_transpose has no padding={padding!r}")
    else:
        # lax pads the stride-dilated input: cropping (lo, hi) from the full output is (k-1)*d - lo
        # before and (k-1)*d - hi (+ output_padding) after. lax's own "VALID" is not the full output
        # when k < stride (it gives L*stride), so "valid" goes this way too.
        crops = oracle.padding_pairs(0 if padding == "valid" else padding, _spatial(x, layout), tuple(kernel))
        lax_padding = [
            ((k - 1) * di - lo, (k - 1) * di - hi + p)
            for k, di, (lo, hi), p in zip(kernel, d, crops, op, strict=True)
        ]
    sp = _LETTERS[-nd:]
    if transpose_kernel:
        # The forward conv's kernel spec: its O is our C_in, lax swaps O and I after flipping.
        kspec = f"OI{sp}" if layout == "channels_first" else f"{sp}IO"
    else:
        kspec = f"IO{sp}" if layout == "channels_first" else f"{sp}OI"
    spec = (f"NC{sp}", kspec, f"NC{sp}") if layout == "channels_first" else (f"N{sp}C", kspec, f"N{sp}C")
    y = lax.conv_transpose(
        x, w, s, lax_padding, rhs_dilation=d, dimension_numbers=spec,
        transpose_kernel=transpose_kernel, precision=_precision,
    )
    if b is not None:
        y = y + (b.reshape((-1,) + (1,) * nd) if layout == "channels_first" else b)
    return y


def conv_vjp(
    x: jax.Array,
    w: jax.Array,
    g: jax.Array,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(dx, dw, db) of sum(conv(x, w, b) * g) by jax.vjp."""
    o = w.shape[0] if layout == "channels_first" else w.shape[-1]
    b = jnp.zeros((o,), dtype=x.dtype)

    def f(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)

    _, pullback = jax.vjp(f, x, w, b)
    dx, dw, db = pullback(g)
    return dx, dw, db


def depthwise_conv(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    layout: str = "channels_first",
) -> jax.Array:
    """w is TF's depthwise filter (*k, C, M); lax spells it feature_group_count=C with (*k, 1, C*M)."""
    nd = x.ndim - 2
    c, m = w.shape[-2], w.shape[-1]
    w_last = w.reshape(*w.shape[:nd], 1, c * m)  # row-major: channel c*M + m is w[..., c, m]
    w_layout = w_last if layout == "channels_last" else jnp.transpose(w_last, (nd + 1, nd, *range(nd)))
    return conv(x, w_layout, b, stride=stride, padding=padding, dilation=dilation, groups=c, layout=layout)


def _pool_args(x: jax.Array, window: Any, stride: Any, padding: Any, layout: str) -> tuple[Any, Any, Any]:
    nd = x.ndim - 2
    k, s = per_axis(window, nd), per_axis(window if stride is None else stride, nd)
    pairs = oracle.padding_pairs(padding, _spatial(x, layout), k, s, 1)
    if layout == "channels_first":
        return (1, 1, *k), (1, 1, *s), [(0, 0), (0, 0), *pairs]
    return (1, *k, 1), (1, *s, 1), [(0, 0), *pairs, (0, 0)]


def max_pool(
    x: jax.Array,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    layout: str = "channels_first",
) -> jax.Array:
    if ceil_mode:
        raise Unsupported("jax: lax.reduce_window has no ceil_mode")
    dims, strides, pads = _pool_args(x, window, stride, padding, layout)
    # reduce_window pads with the init value: -inf, so a padded cell never wins. A Python -inf (not an
    # array) lets JAX see the monoid and use reduce_window_max, which has a gradient.
    y: jax.Array = lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, pads)
    return y


def avg_pool(
    x: jax.Array,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    layout: str = "channels_first",
) -> jax.Array:
    """A window sum divided by the window size, or by the window sum of ones (flax's avg_pool)."""
    if ceil_mode:
        raise Unsupported("jax: lax.reduce_window has no ceil_mode")
    dims, strides, pads = _pool_args(x, window, stride, padding, layout)
    zero = jnp.array(0, x.dtype)
    sums: jax.Array = lax.reduce_window(x, zero, lax.add, dims, strides, pads)
    if count_include_pad:
        return sums / float(np.prod(dims))
    counts: jax.Array = lax.reduce_window(jnp.ones_like(x), zero, lax.add, dims, strides, pads)
    return sums / counts


def _adaptive(x: jax.Array, output_size: int | Sequence[int], layout: str, reduce: Any) -> jax.Array:
    """torch's adaptive windows built by hand (JAX and flax have no adaptive pool), one axis after
    another: output i of an axis of length L reduces the cells [floor(i*L/n), ceil((i+1)*L/n)), each
    a slice reduced with keepdims, concatenated."""
    nd = x.ndim - 2
    first = 2 if layout == "channels_first" else 1
    for a, n in enumerate(per_axis(output_size, nd)):
        axis, length = first + a, x.shape[first + a]
        windows = [(i * length // n, -(-(i + 1) * length // n)) for i in range(n)]
        x = jnp.concatenate([reduce(x[(slice(None),) * axis + (slice(lo, hi),)], axis=axis, keepdims=True)
                             for lo, hi in windows], axis)
    return x


def adaptive_avg_pool(x: jax.Array, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> jax.Array:
    """torch's AdaptiveAvgPool as slices and jnp.mean (see _adaptive)."""
    return _adaptive(x, output_size, layout, jnp.mean)


def adaptive_max_pool(x: jax.Array, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> jax.Array:
    """torch's AdaptiveMaxPool as slices and jnp.max (see _adaptive)."""
    return _adaptive(x, output_size, layout, jnp.max)


def global_avg_pool(x: jax.Array, *, layout: str = "channels_first") -> jax.Array:
    first = 2 if layout == "channels_first" else 1
    return jnp.mean(x, axis=tuple(range(first, first + x.ndim - 2)))


def global_max_pool(x: jax.Array, *, layout: str = "channels_first") -> jax.Array:
    first = 2 if layout == "channels_first" else 1
    return jnp.max(x, axis=tuple(range(first, first + x.ndim - 2)))


# --- layers as a model builds them: parameter counts ---------------------------------------------


def param_count(kind: str, *, nd: int, kernel: int, in_channels: int, out_channels: int, groups: int = 1,
                depth_multiplier: int = 1, bias: bool = True) -> int:
    """JAX has no layers: the total size of the arrays this module's function for `kind` takes.

    The shapes are checked by tracing that function on them (jax.eval_shape), channels_last.
    """
    k, cin, cout, m = (kernel,) * nd, in_channels, out_channels, depth_multiplier
    x = _spec((1, *[8] * nd, cin))
    arrays: dict[str, tuple[int, ...]]
    fn: Any
    if kind == "conv":
        arrays = {"w": (*k, cin // groups, cout)}
        fn = functools.partial(conv, groups=groups, layout="channels_last")
    elif kind == "conv_transpose":
        arrays = {"w": (*k, cout // groups, cin)}
        fn = functools.partial(conv_transpose, groups=groups, layout="channels_last")
    elif kind == "depthwise":
        arrays = {"w": (*k, cin, m)}
        fn = functools.partial(depthwise_conv, layout="channels_last")
    elif kind == "separable":
        arrays = {"dw": (*k, cin, m), "pw": (*[1] * nd, cin * m, cout)}
        fn = functools.partial(_separable, layout="channels_last")
    elif kind == "dense":
        arrays, fn, x = {"w": (cin, cout)}, dense, _spec((1, cin))
    else:
        raise ValueError(f"param_count: unknown kind {kind!r}")
    if bias:
        arrays["b"] = (cout if kind != "depthwise" else cin * m,)
    jax.eval_shape(fn, x, *(_spec(shape) for shape in arrays.values()))  # raises if it does not take them
    return sum(math.prod(shape) for shape in arrays.values())


def _spec(shape: tuple[int, ...]) -> Any:
    return jax.ShapeDtypeStruct(shape, jnp.float32)  # type: ignore[no-untyped-call]  # unannotated in jax


def _separable(x: jax.Array, dw: jax.Array, pw: jax.Array, b: jax.Array | None = None, *,
               layout: str) -> jax.Array:
    return conv(depthwise_conv(x, dw, layout=layout), pw, b, layout=layout)


# --- layers as a model builds them: output shapes -------------------------------------------------


def _mnist_cnn(x: jax.Array, w1: jax.Array, w2: jax.Array) -> jax.Array:
    y = max_pool(jnp.maximum(conv(x, w1, layout="channels_last"), 0), 2, layout="channels_last")
    y = max_pool(jnp.maximum(conv(y, w2, layout="channels_last"), 0), 2, layout="channels_last")
    return flatten_layer(y)


def layer_output_shape(kind: str, input_shape: Sequence[int], *, kernel: int = 3, filters: int = 4,
                       stride: int = 1, padding: Any = "valid", dilation: int = 1) -> tuple[int, ...]:
    """jax.eval_shape of this module's function for `kind` (no layers in JAX), channels_last."""
    if kind not in SHAPE_KINDS:
        raise ValueError(f"layer_output_shape: unknown kind {kind!r}; one of {', '.join(SHAPE_KINDS)}")
    nd, cin = len(input_shape) - 2, input_shape[-1]
    k = (kernel,) * nd
    pad = padding if isinstance(padding, str) else [(padding, padding)] * nd
    x = _spec(tuple(input_shape))
    layout = "channels_last"
    if kind == "conv":
        fn: Any = functools.partial(conv, stride=stride, padding=pad, dilation=dilation, layout=layout)
        args = [x, _spec((*k, cin, filters))]
    elif kind == "depthwise":
        fn = functools.partial(depthwise_conv, stride=stride, padding=pad, dilation=dilation, layout=layout)
        args = [x, _spec((*k, cin, 1))]
    elif kind == "conv_transpose":
        fn = functools.partial(conv_transpose, stride=stride, padding=padding, dilation=dilation,
                               layout=layout)
        args = [x, _spec((*k, filters, cin))]
    elif kind in ("max_pool", "avg_pool"):
        fn = functools.partial(max_pool if kind == "max_pool" else avg_pool, stride=stride, padding=pad,
                               layout=layout)
        args = [x, kernel]
    elif kind == "mnist_cnn":
        fn, args = _mnist_cnn, [x, _spec((4, 4, cin, 32)), _spec((4, 4, 32, 64))]
    else:
        raise AssertionError(kind)  # checked in layer_output_shape
    if kind in ("max_pool", "avg_pool"):
        return tuple(int(v) for v in jax.eval_shape(lambda a: fn(a, kernel), x).shape)
    return tuple(int(v) for v in jax.eval_shape(fn, *args).shape)


def time_distributed_conv(x: jax.Array, w: jax.Array, b: jax.Array | None = None, *, padding: str = "valid",
                          layout: str = "channels_last") -> jax.Array:
    """jax.vmap of the conv over the time axis (1) of (N, T, ...)."""
    def per_step(xt: jax.Array) -> jax.Array:
        return conv(xt, w, b, padding=padding, layout=layout)

    return jax.vmap(per_step, in_axes=1, out_axes=1)(x)


def sequential_vjp(layers: Sequence[tuple[Any, ...]], x: jax.Array, g: jax.Array, *,
                   layout: str = "channels_first") -> tuple[jax.Array, jax.Array, list[tuple[Any, Any]]]:
    """The layers as one function of lax ops (JAX has no layers), differentiated by jax.vjp:
    (y, dx, [(dw, db) per conv/dense layer, in the layers' own layouts])."""
    check_layers(layers)
    params = [tuple(args) for _, *args in layers if _ in ("conv", "dense")]

    def model(x: jax.Array, params: list[tuple[Any, Any]]) -> jax.Array:
        weights = iter(params)
        for kind, *args in layers:
            if kind == "conv":
                x = conv(x, *next(weights), layout=layout)
            elif kind == "dense":
                x = dense(x, *next(weights))
            elif kind == "relu":
                x = jax.nn.relu(x)  # its derivative at 0 is 0, as torch's and TF's are (jnp.maximum's is 1/2)
            elif kind == "max_pool":
                x = max_pool(x, args[0], layout=layout)
            else:
                x = flatten_layer(x)
        return x

    y, pullback = jax.vjp(model, x, params)
    dx, grads = pullback(g)
    return y, dx, list(grads)


def cast(x: jax.Array, dtype: str) -> jax.Array:
    return x.astype(dtype)


def mixed_precision_conv(x: jax.Array, w: jax.Array, b: jax.Array, *, compute: str,
                         layout: str = "channels_first") -> jax.Array:
    """JAX's mixed precision by hand: inputs cast to `compute`, the conv accumulating and returning
    float32 (preferred_element_type), the float32 bias added in float32: a float32 result."""
    y = conv(x.astype(compute), w.astype(compute), layout=layout, preferred_element_type=jnp.float32)
    nd = x.ndim - 2
    return y + (b.reshape((-1,) + (1,) * nd) if layout == "channels_first" else b)
