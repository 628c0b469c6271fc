"""JAX's spelling of the conventions. lax takes any layout through dimension_numbers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

jax.config.update("jax_enable_x64", True)  # without it float64 inputs silently become float32

import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from equiv import oracle  # noqa: E402
from equiv.frameworks import Unsupported  # noqa: E402

name = "jax"

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
    }
    gpu = _gpu_devices()
    if gpu:
        env["platform_version"] = str(gpu[0].client.platform_version)
    return env


def _jaxlib_version() -> str:
    import jaxlib

    return str(jaxlib.__version__)


def precision_state() -> dict[str, Any]:
    return {
        "conv_and_dot_precision": str(_precision),
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
    }


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """Every conv and dot here passes precision=; HIGHEST is IEEE float32, DEFAULT allows TF32."""
    global _precision
    saved = _precision
    _precision = lax.Precision.DEFAULT if mode == "tf32" else lax.Precision.HIGHEST
    try:
        with jax.default_matmul_precision("tensorfloat32" if mode == "tf32" else "highest"):
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


def asarray(a: npt.NDArray[Any], device: str) -> jax.Array:
    return jax.device_put(a, _device(device))


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
    spatial = x.shape[2:] if layout == "channels_first" else x.shape[1:-1]
    kernel = w.shape[2:] if layout == "channels_first" else w.shape[:nd]
    return oracle.padding_pairs(padding, tuple(spatial), tuple(kernel), stride, dilation)


def _tuple(v: int | Sequence[int], nd: int) -> tuple[int, ...]:
    return (v,) * nd if isinstance(v, int) else tuple(v)


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
) -> jax.Array:
    nd = x.ndim - 2
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=_tuple(stride, nd),
        padding=_lax_padding(padding, x, w, stride, dilation, layout),
        rhs_dilation=_tuple(dilation, nd),  # lhs_dilation would be a transposed conv
        dimension_numbers=_dimension_numbers(nd, layout),
        feature_group_count=groups,
        precision=_precision,
    )
    if b is not None:
        y = y + (b.reshape((-1,) + (1,) * nd) if layout == "channels_first" else b)
    return y


def dense(x: jax.Array, w: jax.Array, b: jax.Array | None = None) -> jax.Array:
    y = jnp.matmul(x, w, precision=_precision)
    return y if b is None else y + b


def pad(x: jax.Array, pairs: Sequence[tuple[int, int]]) -> jax.Array:
    return jnp.pad(x, [tuple(p) for p in pairs])


def transpose(x: jax.Array, axes: Sequence[int]) -> jax.Array:
    return jnp.transpose(x, axes)


def reshape(x: jax.Array, shape: Sequence[int]) -> jax.Array:
    return jnp.reshape(x, shape)
