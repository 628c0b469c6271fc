"""PyTorch's spelling of the conventions. Native layout: channels_first (N, C, *spatial), (O, I, *k)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from equiv import oracle
from equiv.frameworks import SHAPE_KINDS, Unsupported, check_layers, kernels_by_dtype, per_axis

name = "torch"
# Names only this framework has (its layers, its own spellings), beyond the Framework Protocol.
OWN: tuple[str, ...] = ("conv_layer", "conv_transpose_layer", "dense_layer",
                        "conv_channels_last_memory", "pad_mode", "adaptive_avg_pool", "adaptive_max_pool")

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# Any: their stubs disagree on int vs tuple arguments across 1-, 2- and 3-D.
_LAYER: dict[int, Any] = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


def version() -> str:
    return str(torch.__version__)


def gpus() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def environment() -> dict[str, Any]:
    cudnn = (
        torch.backends.cudnn.version()  # type: ignore[no-untyped-call]  # unannotated in torch
        if torch.backends.cudnn.is_available()  # type: ignore[no-untyped-call]  # unannotated in torch
        else None
    )
    return {
        "version": version(),
        "devices": ["cpu", *gpus()],
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "precision": precision_state(),
        "cpu_kernels": cpu_kernel_state(),
        "threads": torch.get_num_threads(),  # intra-op (OpenMP) threads of this process
    }


def execute(fn: Any, key: tuple[Any, ...], arrays: dict[str, Any]) -> Any:
    """Eager ATen ops: the variant runs as it is (nothing to compile)."""
    return fn(**arrays)


def release(key: tuple[Any, ...]) -> None:
    """Eager ATen ops: nothing is kept per program."""


def compile_stats() -> dict[str, float]:
    """Eager ATen kernels: nothing is compiled per shape."""
    return {}


def cpu_kernel_state() -> dict[str, Any]:
    """mkldnn (oneDNN) serves float32 CPU convs when enabled; float64 always runs ATen's own kernels."""
    available = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
    enabled = bool(torch.backends.mkldnn.enabled)
    return {
        "library": "oneDNN (mkldnn)" if available and enabled else "ATen native",
        "default": "oneDNN (mkldnn)" if available else "ATen native",
        "decided_by": "torch.backends.mkldnn.enabled",
        "mkldnn_available": available,
        "mkldnn_enabled": enabled,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "by_dtype": kernels_by_dtype(_dtype_library),
    }


def cpu_kernel_library(dtype: str) -> str:
    """The library this dtype's convs go to: mkldnn takes a half dtype only where this CPU has it."""
    return _dtype_library(dtype)[0]


def _dtype_library(dtype: str) -> tuple[str, str]:
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):  # type: ignore[no-untyped-call]
        return "ATen native", "mkldnn off"
    if dtype == "float64":
        return "ATen native", "mkldnn has no float64"
    if dtype in _MKLDNN_HALF and not _mkldnn_takes(dtype):
        return "ATen native", f"torch.ops.mkldnn.{_MKLDNN_HALF[dtype]}() is False on this CPU"
    return "oneDNN (mkldnn)", "mkldnn on"


# torch's own answer (ideep's CPU check) to whether mkldnn runs each half dtype; else ATen's kernels do.
_MKLDNN_HALF = {"float16": "_is_mkldnn_fp16_supported", "bfloat16": "_is_mkldnn_bf16_supported"}


@functools.cache  # a property of the CPU and the build
def _mkldnn_takes(dtype: str) -> bool:
    check = getattr(torch.ops.mkldnn, _MKLDNN_HALF[dtype], None)
    return True if check is None else bool(check())  # an older torch without the check: as before


@contextlib.contextmanager
def cpu_kernels(mode: str) -> Iterator[None]:
    """torch switches per call: "reference" turns mkldnn off, "onednn" on, "default" leaves it."""
    saved = torch.backends.mkldnn.enabled
    if mode != "default":
        torch.backends.mkldnn.enabled = mode == "onednn"  # type: ignore[assignment]  # a flag property
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


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
    if a.dtype.name == "bfloat16":  # torch.from_numpy knows no bfloat16: go through float32 (exact)
        return torch.from_numpy(a.astype(np.float32)).to(_device(device), torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a)).to(_device(device))


def to_numpy(t: torch.Tensor) -> npt.NDArray[Any]:
    if t.dtype == torch.bfloat16:  # .numpy() refuses bfloat16: widen (exact), then narrow with ml_dtypes
        import ml_dtypes

        return t.detach().cpu().float().numpy().astype(ml_dtypes.bfloat16)
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
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """torch.nn.Conv{1,2,3}d with its weights set; channels_first only, padding as torch takes it.

    padding_mode is torch's own: "zeros", "reflect", "replicate" or "circular" (the layer pads the
    input so, then runs its conv unpadded).
    """
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
        padding_mode=padding_mode,
    ).to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        if b is not None:
            layer.bias.copy_(b)
        y: torch.Tensor = layer(x)
        return y


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
        y: torch.Tensor = layer(x)
        return y


def pad(x: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    return F.pad(x, [p for pair in reversed(pairs) for p in pair])


# equiv.oracle.PAD_MODES' modes as F.pad spells them; torch has no symmetric (TF's SYMMETRIC).
_PAD_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def pad_mode(x: torch.Tensor, pairs: Sequence[tuple[int, int]], mode: str = "constant") -> torch.Tensor:
    """x padded by one (before, after) pair per axis with F.pad in `mode` (a name oracle.pad takes).

    F.pad pads the last 1-3 axes of an (N, C, ...) input in its non-constant modes: the padded axes
    are moved last behind one flat batch axis and a channel axis of 1, then moved back.
    """
    if mode not in oracle.PAD_MODES:
        raise ValueError(f"torch pad_mode: unknown mode {mode!r}")
    name = _PAD_MODE.get(oracle.PAD_MODES[mode])
    if name is None:
        raise Unsupported(f"torch: F.pad has no {mode!r} mode (TF's SYMMETRIC, the edge repeated)")
    if name == "constant":
        return pad(x, pairs)
    axes = [a for a, pair in enumerate(pairs) if any(pair)]
    if not axes:
        return x
    if len(axes) > 3:
        raise Unsupported(f"torch: F.pad(mode={name!r}) pads at most 3 axes, not {len(axes)}")
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = x.permute(*rest, *axes)
    flat = moved.reshape(-1, 1, *moved.shape[len(rest):])
    padded = F.pad(flat, [p for a in reversed(axes) for p in pairs[a]], mode=name)
    y = padded.reshape(*moved.shape[:len(rest)], *padded.shape[2:])
    order = [*rest, *axes]
    return y.permute(*(order.index(a) for a in range(x.ndim)))


def flatten_layer(x: torch.Tensor) -> torch.Tensor:
    """torch.nn.Flatten keeps axis 0 and flattens the rest in memory order (C, *spatial for NCHW)."""
    y: torch.Tensor = torch.nn.Flatten()(x)
    return y


def permute_layer(x: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """torch has no Permute layer: models call x.permute with the batch axis spelled out."""
    return x.permute(0, *dims)


def transpose(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    return x.permute(*axes)


def reshape(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    return x.reshape(*shape)


# --- transposed conv, gradients, depthwise, pooling -------------------------------------------------

# Any: their stubs disagree on int vs tuple arguments across 1-, 2- and 3-D.
_CONV_T: dict[int, Any] = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_POOL: dict[int, Any] = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL: dict[int, Any] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def flip(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    return torch.flip(x, list(axes))


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


def _crop(y: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    index = (slice(None), slice(None)) + tuple(
        slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pairs)
    )
    return y[index]


def _same_crops(x: torch.Tensor, w: torch.Tensor, stride: Any, output_padding: Any, dilation: Any) -> Any:
    """TF's SAME for a transposed conv (length L*s) has no torch spelling: crop (total//2, rest) here.

    padding=p crops p from both ends and output_padding gives cells back at the end only, so the
    usual port of k=3, s=2 SAME, (padding=1, output_padding=1), crops (1, 0) where TF crops (0, 1).
    """
    nd = x.ndim - 2

    s, d, op = per_axis(stride, nd), per_axis(dilation, nd), per_axis(output_padding, nd)
    if any(op):
        raise Unsupported("torch: SAME for a transposed conv fixes the length; output_padding must be 0")
    pairs = []
    for length, k, si, di in zip(x.shape[2:], w.shape[2:], s, d, strict=False):
        total = (length - 1) * si + (k - 1) * di + 1 - length * si
        if total < 0:
            raise Unsupported("torch: SAME longer than the full transposed output (stride > kernel extent)")
        pairs.append((total // 2, total - total // 2))
    return pairs


def conv_transpose(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> torch.Tensor:
    """F.conv_transpose*: padding crops the full output; weights (C_in, C_out/groups, *k)."""
    if layout == "channels_last":
        x, w = _channels_first(x, w)  # (*k, C_out/g, C_in) -> (C_in, C_out/g, *k): the same permutation
    nd = x.ndim - 2
    if padding == "same":
        padding = _same_crops(x, w, stride, output_padding, dilation)
    elif isinstance(padding, str):
        if padding != "valid":
            raise Unsupported(f"torch: conv_transpose has no padding={padding!r}, only ints (crops)")
        padding = 0
    pairs = oracle.padding_pairs(padding, tuple(x.shape[2:]), tuple(w.shape[2:]))  # ints: crops per axis
    sym, _ = _torch_padding(pairs)
    # torch crops the same amount from both ends only: an asymmetric crop is a slice after.
    crop = None if all(lo == hi for lo, hi in pairs) else pairs
    crop_both = sym if crop is None else 0
    y: torch.Tensor = _CONV_T[nd](x, w, b, stride, crop_both, output_padding, groups, dilation)
    if crop is not None:
        y = _crop(y, crop)
    return y.movedim(1, -1) if layout == "channels_last" else y


def conv_transpose_layer(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """torch.nn.ConvTranspose{1,2,3}d with its weights set; channels_first only."""
    nd = x.ndim - 2
    cls: Any = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}[nd]
    layer = cls(
        w.shape[0], w.shape[1] * groups, tuple(w.shape[2:]), stride=stride, padding=padding,
        output_padding=output_padding, groups=groups, bias=b is not None, dilation=dilation,
    ).to(device=x.device, dtype=x.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        if b is not None:
            layer.bias.copy_(b)
        y: torch.Tensor = layer(x)
        return y


def conv_vjp(
    x: torch.Tensor,
    w: torch.Tensor,
    g: torch.Tensor,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dw, db) of sum(conv(x, w, b) * g) by autograd."""
    x = x.detach().requires_grad_(True)
    w = w.detach().requires_grad_(True)
    o = w.shape[0] if layout == "channels_first" else w.shape[-1]
    b = torch.zeros(o, dtype=x.dtype, device=x.device, requires_grad=True)
    with torch.enable_grad():
        y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
        dx, dw, db = torch.autograd.grad(y, (x, w, b), grad_outputs=g)
    return dx, dw, db


def depthwise_conv(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    layout: str = "channels_first",
) -> torch.Tensor:
    """w is TF's depthwise filter (*k, C, M); torch spells it groups=C with weight (C*M, 1, *k)."""
    nd = x.ndim - 2
    c, m = w.shape[-2], w.shape[-1]
    # Output channel c*M + m uses w[..., c, m]: a row-major reshape of (C, M) to C*M keeps that order.
    w_first = w.reshape(*w.shape[:nd], 1, c * m).permute(nd + 1, nd, *range(nd))
    w_layout = w_first if layout == "channels_first" else w_first.permute(*range(2, nd + 2), 1, 0)
    return conv(x, w_layout, b, stride=stride, padding=padding, dilation=dilation, groups=c, layout=layout)


def _pool_pairs(x: torch.Tensor, window: Any, stride: Any, padding: Any) -> list[tuple[int, int]]:
    nd = x.ndim - 2
    k = per_axis(window, nd)
    return oracle.padding_pairs(padding, tuple(x.shape[2:]), k, k if stride is None else stride, 1)


def max_pool(
    x: torch.Tensor,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    layout: str = "channels_first",
) -> torch.Tensor:
    if layout == "channels_last":
        x = x.movedim(-1, 1)
    nd = x.ndim - 2
    sym, explicit = _torch_padding(_pool_pairs(x, window, stride, padding))
    if explicit is not None:
        x = F.pad(x, explicit, value=float("-inf"))  # torch pools pad symmetrically only; -inf never wins
    y: torch.Tensor = _MAX_POOL[nd](x, window, stride if stride is not None else window, sym, 1, ceil_mode)
    return y.movedim(1, -1) if layout == "channels_last" else y


def avg_pool(
    x: torch.Tensor,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    layout: str = "channels_first",
) -> torch.Tensor:
    if layout == "channels_last":
        x = x.movedim(-1, 1)
    nd = x.ndim - 2
    if nd == 3 and any(n < k for n, k in zip(x.shape[2:], per_axis(window, 3), strict=True)):
        # avg_pool1d/2d and max_pool3d take this geometry; no upstream report found.
        raise Unsupported("torch's CPU avg_pool3d refuses an input shorter than its window, even padded")
    sym, explicit = _torch_padding(_pool_pairs(x, window, stride, padding))
    if explicit is not None and not count_include_pad:
        raise Unsupported(
            "torch: avg_pool pads symmetrically only; SAME's odd total excluded has no spelling"
        )
    if explicit is not None:
        x = F.pad(x, explicit)  # zeros padded by hand are real cells: counted, as count_include_pad asks
    s = stride if stride is not None else window
    y: torch.Tensor = _AVG_POOL[nd](x, window, s, sym, ceil_mode, count_include_pad)
    return y.movedim(1, -1) if layout == "channels_last" else y


_ADAPTIVE: dict[str, dict[int, Any]] = {
    "avg": {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d},
    "max": {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d},
}


def _adaptive(x: torch.Tensor, kind: str, output_size: int | Sequence[int], layout: str) -> torch.Tensor:
    if layout == "channels_last":
        x = x.movedim(-1, 1)
    y: torch.Tensor = _ADAPTIVE[kind][x.ndim - 2](x, output_size)
    return y.movedim(1, -1) if layout == "channels_last" else y


def adaptive_avg_pool(x: torch.Tensor, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> torch.Tensor:
    """F.adaptive_avg_pool*d (nn.AdaptiveAvgPool*d): output i of an axis of length L averages the
    cells [floor(i*L/n), ceil((i+1)*L/n))."""
    return _adaptive(x, "avg", output_size, layout)


def adaptive_max_pool(x: torch.Tensor, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> torch.Tensor:
    """F.adaptive_max_pool*d (nn.AdaptiveMaxPool*d), over the same windows as adaptive_avg_pool."""
    return _adaptive(x, "max", output_size, layout)


def global_avg_pool(x: torch.Tensor, *, layout: str = "channels_first") -> torch.Tensor:
    first = 2 if layout == "channels_first" else 1
    return x.mean(dim=tuple(range(first, first + x.ndim - 2)))


def global_max_pool(x: torch.Tensor, *, layout: str = "channels_first") -> torch.Tensor:
    first = 2 if layout == "channels_first" else 1
    return x.amax(dim=tuple(range(first, first + x.ndim - 2)))


# --- layers as a model builds them: parameter counts ---------------------------------------------

_CONV_MODULE: dict[int, Any] = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
_CONV_T_MODULE: dict[int, Any] = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
                                  3: torch.nn.ConvTranspose3d}


def param_count(kind: str, *, nd: int, kernel: int, in_channels: int, out_channels: int, groups: int = 1,
                depth_multiplier: int = 1, bias: bool = True) -> int:
    """sum(p.numel() for p in module.parameters()) of the torch.nn module a model uses for `kind`."""
    k, cin, cout = kernel, in_channels, out_channels
    if kind == "conv":
        module = _CONV_MODULE[nd](cin, cout, k, groups=groups, bias=bias)
    elif kind == "conv_transpose":
        module = _CONV_T_MODULE[nd](cin, cout, k, groups=groups, bias=bias)
    elif kind == "depthwise":  # torch has no depthwise layer: a conv with groups = in_channels
        module = _CONV_MODULE[nd](cin, cin * depth_multiplier, k, groups=cin, bias=bias)
    elif kind == "separable":  # nor a separable one: depthwise without bias, then a 1x1 conv
        module = torch.nn.Sequential(_CONV_MODULE[nd](cin, cin * depth_multiplier, k, groups=cin, bias=False),
                                     _CONV_MODULE[nd](cin * depth_multiplier, cout, 1, bias=bias))
    elif kind == "dense":
        module = torch.nn.Linear(cin, cout, bias=bias)
    else:
        raise ValueError(f"param_count: unknown kind {kind!r}")
    return sum(p.numel() for p in module.parameters())


# --- layers as a model builds them: output shapes -------------------------------------------------

_POOL_MODULE: dict[tuple[str, int], Any] = {
    ("max_pool", 1): torch.nn.MaxPool1d, ("max_pool", 2): torch.nn.MaxPool2d,
    ("max_pool", 3): torch.nn.MaxPool3d, ("avg_pool", 1): torch.nn.AvgPool1d,
    ("avg_pool", 2): torch.nn.AvgPool2d, ("avg_pool", 3): torch.nn.AvgPool3d,
}


def _mnist_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 32, 4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(32, 64, 4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten())


def layer_output_shape(kind: str, input_shape: Sequence[int], *, kernel: int = 3, filters: int = 4,
                       stride: int = 1, padding: Any = "valid", dilation: int = 1) -> tuple[int, ...]:
    """The torch.nn module's output shape (run on a shapes-only meta tensor, channels_first), given
    and returned in channels_last order."""
    if kind not in SHAPE_KINDS:
        raise ValueError(f"layer_output_shape: unknown kind {kind!r}; one of {', '.join(SHAPE_KINDS)}")
    n, *spatial, cin = input_shape
    try:  # torch refuses some settings when the module is made (padding='same' with a stride)
        module = _shape_module(kind, len(spatial), cin, kernel, filters, stride, padding, dilation)
        y = module.to("meta")(torch.empty((n, cin, *spatial), device="meta"))
    except ValueError as e:
        raise Unsupported(f"torch: {e}") from None
    shape = tuple(int(v) for v in y.shape)
    return (shape[0], *shape[2:], shape[1]) if len(shape) > 2 else shape


def _shape_module(kind: str, nd: int, cin: int, kernel: int, filters: int, stride: int, padding: Any,
                  dilation: int) -> Any:
    pad = 0 if padding == "valid" else padding
    if kind == "conv":
        return _CONV_MODULE[nd](cin, filters, kernel, stride=stride, padding=pad, dilation=dilation)
    if kind == "depthwise":
        return _CONV_MODULE[nd](cin, cin, kernel, stride=stride, padding=pad, dilation=dilation, groups=cin)
    if kind == "conv_transpose":  # padding crops here: only VALID (no crop) means the same
        if padding != "valid":
            raise Unsupported("torch: ConvTranspose's padding crops the output; it has no 'same'")
        return _CONV_T_MODULE[nd](cin, filters, kernel, stride=stride, dilation=dilation)
    if kind in ("max_pool", "avg_pool"):
        if padding == "same":
            raise Unsupported("torch: pooling layers take an int padding only, no 'same'")
        return _POOL_MODULE[(kind, nd)](kernel, stride=stride, padding=pad)
    if kind == "mnist_cnn":
        return _mnist_cnn()
    raise AssertionError(kind)  # checked in layer_output_shape


def time_distributed_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, *,
                          padding: str = "valid") -> torch.Tensor:
    """torch has no TimeDistributed: fold time into the batch around nn.Conv*d, (N, T, C, *s)."""
    y = conv_layer(x.flatten(0, 1), w, b, padding=0 if padding == "valid" else padding)
    out: torch.Tensor = y.unflatten(0, (x.shape[0], x.shape[1]))  # type: ignore[no-untyped-call]
    return out


def sequential_vjp(layers: Sequence[tuple[Any, ...]], x: torch.Tensor, g: torch.Tensor, *,
                   layout: str = "channels_first") -> tuple[torch.Tensor, Any, list[tuple[Any, Any]]]:
    """A torch.nn.Sequential of the layers with the weights copied in, run forward, then backward with
    y.backward(g): (y, dx, [(dw, db) per conv/dense layer, in the layers' own layouts])."""
    check_layers(layers)
    if layout != "channels_first":
        raise Unsupported("torch: torch.nn conv and pooling layers take channels_first (N, C, *spatial) only")
    modules: list[torch.nn.Module] = []
    weighted: list[Any] = []  # the conv and Linear modules, whose .weight and .bias are tensors
    for kind, *args in layers:
        if kind == "conv":
            w, b = args
            module: torch.nn.Module = _LAYER[w.ndim - 2](w.shape[1], w.shape[0], tuple(w.shape[2:]),
                                                         bias=b is not None)
        elif kind == "dense":
            w, b = args
            module = torch.nn.Linear(w.shape[0], w.shape[1], bias=b is not None)
            w = w.T  # nn.Linear stores (out, in)
        elif kind == "relu":
            module = torch.nn.ReLU()
        elif kind == "max_pool":
            module = _POOL_MODULE[("max_pool", x.ndim - 2)](args[0])
        else:
            module = torch.nn.Flatten()  # memory order: (C, *spatial) for channels_first
        module = module.to(device=x.device, dtype=x.dtype)
        if kind in ("conv", "dense"):
            layer: Any = module
            with torch.no_grad():
                layer.weight.copy_(w)
                if b is not None:
                    layer.bias.copy_(b)
            weighted.append(layer)
        modules.append(module)
    xg = x.detach().clone().requires_grad_(True)
    y = torch.nn.Sequential(*modules)(xg)
    y.backward(g)
    dx: Any = xg.grad
    grads: list[tuple[Any, Any]] = []
    for m in weighted:
        dw: Any = m.weight.grad
        db = None if m.bias is None else m.bias.grad
        grads.append((dw.T if isinstance(m, torch.nn.Linear) else dw, db))  # Linear's (out, in) to (in, out)
    return y.detach(), dx, grads


def cast(x: torch.Tensor, dtype: str) -> torch.Tensor:
    return x.to(getattr(torch, dtype))


def mixed_precision_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, compute: str,
                         layout: str = "channels_first") -> torch.Tensor:
    """torch.autocast(dtype=compute): the conv's inputs, weight and bias are cast to `compute`, and
    so is its result (the bias goes into the conv call)."""
    with torch.autocast(device_type=x.device.type, dtype=getattr(torch, compute)):
        return conv(x, w, b, layout=layout)
