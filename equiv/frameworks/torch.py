"""PyTorch's spelling of the conventions. Native layout: channels_first (N, C, *spatial), (O, I, *k)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from equiv import oracle
from equiv.frameworks import Unsupported

name = "torch"

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_LAYER = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


def version() -> str:
    return str(torch.__version__)


def gpus() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def environment() -> dict[str, Any]:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "version": version(),
        "devices": ["cpu", *gpus()],
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "precision": precision_state(),
    }


def precision_state() -> dict[str, Any]:
    return {
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """IEEE float32 unless mode is "tf32"; cuDNN convs default to TF32 in PyTorch, so pin both flags."""
    allow = mode == "tf32"
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = allow
    torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def scope(device: str) -> Iterator[None]:
    yield  # PyTorch ops run where their tensors live


def asarray(a: npt.NDArray[Any], device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(_device(device))


def to_numpy(t: torch.Tensor) -> npt.NDArray[Any]:
    return t.detach().cpu().numpy()


def device_of(t: torch.Tensor) -> str:
    if t.device.type == "cuda":
        return torch.cuda.get_device_name(t.device)
    return "cpu"


def _device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise Unsupported("torch sees no GPU (torch.cuda.is_available() is False)")
    return torch.device(device)


def _channels_first(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # F.conv* only takes NC*/OI*: move (N, *s, C) and (*k, I, O) there.
    nd = x.ndim - 2
    return x.movedim(-1, 1), w.permute(nd + 1, nd, *range(nd))


def _torch_padding(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int] | None]:
    """Symmetric pairs go to conv's own padding=; asymmetric ones need an explicit F.pad first."""
    if all(lo == hi for lo, hi in pairs):
        return [lo for lo, _ in pairs], None
    # F.pad lists (before, after) from the LAST axis backwards.
    return [0] * len(pairs), [p for pair in reversed(pairs) for p in pair]


def conv(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> torch.Tensor:
    if layout == "channels_last":
        x, w = _channels_first(x, w)
    nd = x.ndim - 2
    # padding="same" refuses stride > 1 and torch has no asymmetric padding: resolve to explicit pairs.
    pairs = oracle.padding_pairs(padding, tuple(x.shape[2:]), tuple(w.shape[2:]), stride, dilation)
    sym, explicit = _torch_padding(pairs)
    if explicit is not None:
        x = F.pad(x, explicit)
    y = _CONV[nd](x, w, b, stride, sym, dilation, groups)
    return y.movedim(1, -1) if layout == "channels_last" else y


def conv_channels_last_memory(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, **kwargs: Any
) -> torch.Tensor:
    """NHWC data via memory_format=channels_last: the logical shape stays NCHW, only strides change."""
    x, w = _channels_first(x, w)
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.ndim)
    if fmt is None:
        raise Unsupported("torch.channels_last memory format exists only for 2-D and 3-D convs")
    y = conv(x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt), b, **kwargs)
    return y.movedim(1, -1)


def conv_layer(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """torch.nn.Conv{1,2,3}d with its weights set; channels_first only, padding as torch takes it."""
    nd = x.ndim - 2
    layer = _LAYER[nd](
        w.shape[1] * groups,
        w.shape[0],
        tuple(w.shape[2:]),
        stride=stride,
        padding=padding,  # torch's own: "valid", "same" (stride 1 only) or symmetric ints
        dilation=dilation,
        groups=groups,
        bias=b is not None,
    ).to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        if b is not None:
            layer.bias.copy_(b)
        return layer(x)


def dense(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    y = torch.matmul(x, w)
    return y if b is None else y + b


def dense_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """torch.nn.Linear stores its weight as (out, in): the transpose of the (in, out) convention."""
    layer = torch.nn.Linear(w.shape[0], w.shape[1], bias=b is not None).to(x.device, x.dtype)
    with torch.no_grad():
        layer.weight.copy_(w.T)
        if b is not None:
            layer.bias.copy_(b)
        return layer(x)


def pad(x: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    return F.pad(x, [p for pair in reversed(pairs) for p in pair])


def transpose(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    return x.permute(*axes)


def reshape(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    return x.reshape(*shape)
