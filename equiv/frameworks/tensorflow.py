"""TensorFlow's spelling of the conventions. Native layout: channels_last (N, *s, C), filters (*k, I, O)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/CUDA banners out of the report

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import tensorflow as tf  # noqa: E402

from equiv import machine, oracle  # noqa: E402
from equiv.frameworks import SHAPE_KINDS, Unsupported, check_layers, kernels_by_dtype, per_axis  # noqa: E402

name = "tensorflow"
# Names only this framework has (its layers, its own spellings), beyond the Framework Protocol.
OWN: tuple[str, ...] = ("conv_layer", "conv_transpose_layer", "dense_layer", "pool_layer",
                        "separable_conv", "conv_transpose_output_shape", "pad_mode", "adaptive_avg_pool",
                        "adaptive_max_pool", "adaptive_pool_layer")

_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
_device = "cpu"  # the device of the item running now (set by scope), for refusal messages


def version() -> str:
    return str(tf.__version__)


def gpus() -> list[str]:
    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        names.append(str(details.get("device_name", dev.name)))
    return names


def environment() -> dict[str, Any]:
    build = tf.sysconfig.get_build_info()
    return {
        "version": version(),
        "devices": ["cpu", *gpus()],
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "precision": precision_state(),
        "cpu_kernels": cpu_kernel_state(),
    }


def _onednn() -> bool:
    from tensorflow.python.util import _pywrap_util_port  # TF's own answer, fixed at import

    return bool(_pywrap_util_port.IsMklEnabled())


def execute(fn: Any, key: tuple[Any, ...], arrays: dict[str, Any]) -> Any:
    """Eager ops, as Keras runs layers outside tf.function: the variant runs as it is."""
    return fn(**arrays)


def release(key: tuple[Any, ...]) -> None:
    """Eager ops: nothing is kept per program."""


def compile_stats() -> dict[str, float]:
    """Eager ops run registered kernels: nothing is compiled per shape (equiv uses no tf.function)."""
    return {}


def cpu_kernel_state() -> dict[str, Any]:
    default, why = _decision(os.environ.get(machine.TF_SWITCH))
    return {"library": "oneDNN" if _onednn() else "Eigen", "default": default, "decided_by": why,
            "by_dtype": kernels_by_dtype(functools.partial(_dtype_library, _onednn()))}


def cpu_kernel_library(dtype: str) -> str:
    """The library this dtype's ops run on here: with oneDNN on, a dtype it does not take runs Eigen."""
    return _dtype_library(_onednn(), dtype)[0]


@functools.cache
def _dtype_library(onednn: bool, dtype: str) -> tuple[str, str]:
    """(library, why) for one dtype, by TensorFlow's own rule (equiv.machine.tf_onednn_dtype)."""
    if not onednn:
        return "Eigen", "oneDNN off"
    rule = machine.tf_onednn_dtype(machine.cpu(), dtype)
    if rule is None:
        return "oneDNN", "as on this platform"
    supported, why = rule
    return ("oneDNN" if supported else "Eigen"), why


@functools.cache  # asked for every item; the answer changes only with the switch
def _decision(switch: str | None) -> tuple[str, str]:
    return machine.tf_decision(machine.cpu())


@contextlib.contextmanager
def cpu_kernels(mode: str) -> Iterator[None]:
    """TF chose its kernels at import, from TF_ENABLE_ONEDNN_OPTS: equiv.machine.pin set it before."""
    want = {"onednn": True, "reference": False}.get(mode)
    if want is not None and _onednn() != want:
        raise RuntimeError(
            f"--equiv-cpu-kernels {mode}: TensorFlow was imported with oneDNN "
            f"{'on' if _onednn() else 'off'} before the option could take effect; run in a fresh process"
        )
    yield


def precision_state() -> dict[str, Any]:
    return {"tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled()}


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """TensorFlow enables TF32 by default on Ampere and later: pin it off unless mode is "tf32"."""
    saved = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(mode == "tf32")
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(saved)


def _device_name(device: str) -> str:
    if device == "cuda":
        if not tf.config.list_physical_devices("GPU"):
            raise Unsupported("tensorflow sees no GPU (tf.config.list_physical_devices('GPU') is empty)")
        return "/GPU:0"
    return "/CPU:0"


@contextlib.contextmanager
def scope(device: str) -> Iterator[None]:
    global _device
    saved, _device = _device, device
    try:
        with tf.device(_device_name(device)):  # TF places ops by context, not by their inputs
            yield
    finally:
        _device = saved


def asarray(a: npt.NDArray[Any], device: str) -> tf.Tensor:
    with tf.device(_device_name(device)):
        return tf.identity(tf.constant(a))


def to_numpy(t: tf.Tensor) -> npt.NDArray[Any]:
    return np.asarray(t.numpy())


def device_of(t: tf.Tensor) -> str:
    if "GPU" in t.device.upper():
        return gpus()[0] if gpus() else t.device
    return "cpu"


def _explicit(x: tf.Tensor, pairs: list[tuple[int, int]], layout: str, value: float = 0.0) -> tf.Tensor:
    full = [(0, 0), *pairs, (0, 0)] if layout == "channels_last" else [(0, 0), (0, 0), *pairs]
    return tf.pad(x, full, constant_values=value)


def _kernel_refusal(e: tf.errors.OpError) -> str:
    """A kernel's refusal, naming the CPU kernel library: the same item may run on another machine."""
    words = e.message.split("}}")[-1].split("[Op")[0].strip()
    if _device != "cpu":
        return f"tensorflow: {words}"
    state = cpu_kernel_state()
    # oneDNN serves the ops and dtypes it has kernels for; the rest (float64, float16 pooling) are Eigen's.
    kernels = "oneDNN where it has the op, else Eigen" if state["library"] == "oneDNN" else "Eigen"
    return f"tensorflow, CPU kernels {kernels} ({state['decided_by']}): {words}"


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """TF's own refusals become skips with TF's words; any other error stays an error."""
    try:
        yield
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        # TF's Eigen CPU kernels are NHWC only (oneDNN's are not): "The Conv2D op currently only
        # supports the NHWC tensor format on the CPU", "CPU implementation of Conv3D ...".
        if "tensor format" not in e.message:
            raise
        raise Unsupported(_kernel_refusal(e)) from e
    except ValueError as e:
        if "not supported in conjunction with" in str(e):
            # tf.nn.convolution and Keras refuse strides > 1 together with dilation > 1.
            raise Unsupported(f"tensorflow: {e}") from e
        raise


def _filter(w: tf.Tensor, layout: str) -> tf.Tensor:
    """TF's and Keras' conv filter is (*k, I, O) whatever data_format says: an OIHW weight is transposed."""
    if layout == "channels_last":
        return w
    return tf.transpose(w, (*range(2, len(w.shape)), 1, 0))


def conv(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tf.Tensor:
    nd = len(x.shape) - 2
    w = _filter(w, layout)
    channels = x.shape[1] if layout == "channels_first" else x.shape[-1]
    if w.shape[-2] * groups != channels:
        # TF infers groups from the filter depth; make a mismatch an error, not another conv.
        raise ValueError(
            f"tensorflow conv: {channels} channels != filter depth {w.shape[-2]} x groups {groups}"
        )
    if isinstance(padding, str) and padding in ("valid", "same"):
        tf_padding = padding.upper()
    else:
        # tf.nn.convolution takes only "VALID"/"SAME": anything else is an explicit tf.pad.
        pairs = oracle.padding_pairs(padding, _spatial(x, layout), tuple(w.shape[:nd]), stride, dilation)
        x, tf_padding = _explicit(x, pairs, layout), "VALID"
    fmt = (_FIRST if layout == "channels_first" else _LAST)[nd]
    with _refusals():
        y = tf.nn.convolution(x, w, strides=stride, padding=tf_padding, data_format=fmt, dilations=dilation)
    if b is not None:
        y = tf.nn.bias_add(y, b, data_format="NCHW" if layout == "channels_first" else "NHWC")
    return y


def conv_layer(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> tf.Tensor:
    """keras.layers.Conv{1,2,3}D with its weights set; channels_last, padding as Keras takes it."""
    import keras

    nd = len(x.shape) - 2
    cls = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[nd]
    with _refusals():
        layer = cls(
            filters=w.shape[-1],
            kernel_size=tuple(w.shape[:nd]),
            strides=stride,
            padding=padding,  # Keras's own: "valid", "same", "causal" (1-D)
            dilation_rate=dilation,
            groups=groups,
            use_bias=b is not None,
            dtype=x.dtype.name,
        )
        layer.build(tuple(x.shape))
        layer.set_weights([to_numpy(w)] + ([to_numpy(b)] if b is not None else []))
        return layer(x)


def dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
    y = tf.tensordot(x, w, axes=1)  # tf.matmul wants matching ranks; tensordot contracts the last axis
    return y if b is None else y + b


def dense_layer(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None) -> tf.Tensor:
    import keras

    layer = keras.layers.Dense(w.shape[-1], use_bias=b is not None, dtype=x.dtype.name)
    layer.build(tuple(x.shape))
    layer.set_weights([to_numpy(w)] + ([to_numpy(b)] if b is not None else []))
    return layer(x)


def pad(x: tf.Tensor, pairs: Sequence[tuple[int, int]]) -> tf.Tensor:
    return tf.pad(x, [list(p) for p in pairs])


def _cells(x: tf.Tensor, axis: int, start: int, stop: int) -> tf.Tensor:
    return x[(slice(None),) * axis + (slice(start, stop),)]


def pad_mode(x: tf.Tensor, pairs: Sequence[tuple[int, int]], mode: str = "constant") -> tf.Tensor:
    """x padded by one (before, after) pair per axis in `mode` (a name oracle.pad takes), as a Keras
    port spells it: tf.pad's CONSTANT, REFLECT and SYMMETRIC; tf.pad has no replicate or circular,
    so those are slices of x concatenated, axis by axis (a Lambda layer's usual body)."""
    if mode not in oracle.PAD_MODES:
        raise ValueError(f"tensorflow pad_mode: unknown mode {mode!r}")
    name = oracle.PAD_MODES[mode]
    if name in ("constant", "reflect", "symmetric"):
        return tf.pad(x, [list(p) for p in pairs], mode=name.upper())
    for axis, (before, after) in enumerate(pairs):
        length = x.shape[axis]
        if name == "replicate":  # the edge cell, repeated
            parts = [_cells(x, axis, 0, 1)] * before + [x] + [_cells(x, axis, length - 1, length)] * after
        else:  # circular: the last `before` cells, x, the first `after` cells
            if max(before, after) > length:
                raise ValueError(f"tensorflow pad_mode: circular padding ({before}, {after}) wraps axis "
                                 f"{axis} (length {length}) more than once")
            parts = [_cells(x, axis, length - before, length), x, _cells(x, axis, 0, after)]
        x = tf.concat(parts, axis)
    return x


def flatten_layer(x: tf.Tensor, data_format: str = "channels_last") -> tf.Tensor:
    """keras.layers.Flatten keeps the memory order, except that with data_format="channels_first" it
    first moves the channels last, so that a Keras model's Dense rows are (*spatial, C) either way."""
    import keras

    return keras.layers.Flatten(data_format=data_format, dtype=x.dtype.name)(x)


def permute_layer(x: tf.Tensor, dims: Sequence[int]) -> tf.Tensor:
    """keras.layers.Permute numbers the axes from 1 and leaves the batch axis out."""
    import keras

    return keras.layers.Permute(tuple(dims), dtype=x.dtype.name)(x)


def transpose(x: tf.Tensor, axes: Sequence[int]) -> tf.Tensor:
    return tf.transpose(x, axes)


def reshape(x: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
    return tf.reshape(x, shape)


# --- transposed conv, gradients, depthwise, pooling -------------------------------------------------


def flip(x: tf.Tensor, axes: Sequence[int]) -> tf.Tensor:
    return tf.reverse(x, list(axes))


def add(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return a + b


@contextlib.contextmanager
def _layout_refusals() -> Iterator[None]:
    """Like _refusals, also for the Eigen pooling/depthwise/backprop kernels' wording of "NHWC only"."""
    try:
        with _refusals():
            yield
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        # "... only supports NHWC"; the backprop kernels' "do not yet support dilation rates larger than 1"
        # and "Gradients for grouped convolutions are not supported on CPU".
        if not any(s in e.message for s in ("NHWC", "NCHW", "data format", "data_format", "dilation rates",
                                           "not supported on CPU")):
            raise
        raise Unsupported(_kernel_refusal(e)) from e


def _spatial(x: tf.Tensor, layout: str) -> list[int]:
    return list(x.shape[2:] if layout == "channels_first" else x.shape[1:-1])


def conv_transpose(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tf.Tensor:
    """tf.nn.conv_transpose: the output length is an argument; filter (*k, C_out, C_in) in any layout."""
    nd = len(x.shape) - 2
    if groups != 1:
        raise Unsupported("tensorflow: tf.nn.conv_transpose has no groups")
    if layout == "channels_first":
        w = tf.transpose(w, (*range(2, nd + 2), 1, 0))  # (C_in, C_out, *k) -> (*k, C_out, C_in)
    s, d, op = per_axis(stride, nd), per_axis(dilation, nd), per_axis(output_padding, nd)
    spatial, kernel = _spatial(x, layout), list(w.shape[:nd])
    full = [(n - 1) * si + (k - 1) * di + 1 for n, k, si, di in zip(spatial, kernel, s, d, strict=True)]
    crops: list[tuple[int, int]] | None = None
    if padding == "same":
        # TF SAME: length L*stride.
        tf_padding, out = "SAME", [n * si for n, si in zip(spatial, s, strict=True)]
    elif padding == "valid" or not isinstance(padding, str):
        # Ints/pairs crop the full output. output_padding is appended as zeros, never requested
        # through output_shape: no forward conv maps full + op back to L, and oneDNN aborts on it.
        tf_padding, out = "VALID", full
        crops = oracle.padding_pairs(0 if padding == "valid" else padding, tuple(spatial), tuple(kernel))
        crops = [(lo, hi - p) for (lo, hi), p in zip(crops, op, strict=True)]
    else:
        raise Unsupported(f"tensorflow: conv_transpose has no padding={padding!r}")
    with _layout_refusals():
        y = _conv_transpose_to(x, w, out, s, tf_padding, d, layout)
    if crops is not None:
        y = _crop(y, crops, layout)
    if b is not None:
        y = tf.nn.bias_add(y, b, data_format="NCHW" if layout == "channels_first" else "NHWC")
    return y


def _conv_transpose_to(
    x: tf.Tensor, w: tf.Tensor, out: Sequence[int], s: Sequence[int], padding: str, d: Sequence[int],
    layout: str,
) -> tf.Tensor:
    """tf.nn.conv_transpose asks for the output's spatial length; filter (*k, C_out, C_in)."""
    nd = len(x.shape) - 2
    c_out, batch = w.shape[-2], x.shape[0]
    shape = [batch, c_out, *out] if layout == "channels_first" else [batch, *out, c_out]
    fmt = (_FIRST if layout == "channels_first" else _LAST)[nd]
    return tf.nn.conv_transpose(x, w, shape, strides=s, padding=padding, data_format=fmt, dilations=d)


def _crop(y: tf.Tensor, pairs: Sequence[tuple[int, int]], layout: str) -> tf.Tensor:
    """Crop (lo, hi) cells per spatial axis; a negative hi appends that many zeros instead."""
    nd = len(y.shape) - 2
    first = 2 if layout == "channels_first" else 1
    grow = [(0, 0)] * (nd + 2)
    for i, (_, hi) in enumerate(pairs):
        grow[first + i] = (0, max(0, -hi))
    y = tf.pad(y, grow)
    index = [slice(None)] * (nd + 2)
    for i, (lo, hi) in enumerate(pairs):
        index[first + i] = slice(lo, y.shape[first + i] - max(0, hi))
    return y[tuple(index)]


def conv_transpose_output_shape(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    layout: str = "channels_first",
) -> tf.Tensor:
    """torch's output_padding spelled as TF users spell it: VALID, output_shape = full + output_padding."""
    nd = len(x.shape) - 2
    if layout == "channels_first":
        w = tf.transpose(w, (*range(2, nd + 2), 1, 0))  # (C_in, C_out, *k) -> (*k, C_out, C_in)
    s, d, op = per_axis(stride, nd), per_axis(dilation, nd), per_axis(output_padding, nd)
    out = [(n - 1) * si + (k - 1) * di + 1 + p
           for n, k, si, di, p in zip(_spatial(x, layout), w.shape[:nd], s, d, op, strict=True)]
    with _layout_refusals():
        y = _conv_transpose_to(x, w, out, s, "VALID", d, layout)
    if b is not None:
        y = tf.nn.bias_add(y, b, data_format="NCHW" if layout == "channels_first" else "NHWC")
    return y


def conv_transpose_layer(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: str = "valid",
    dilation: int | Sequence[int] = 1,
) -> tf.Tensor:
    """keras.layers.Conv{1,2,3}DTranspose with its weights set; channels_last, kernel (*k, C_out, C_in)."""
    import keras

    nd = len(x.shape) - 2
    layers = keras.layers
    cls = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}[nd]
    with _layout_refusals():
        layer = cls(
            filters=w.shape[-2],
            kernel_size=tuple(w.shape[:nd]),
            strides=stride,
            padding=padding,
            dilation_rate=dilation,
            use_bias=b is not None,
            dtype=x.dtype.name,
        )
        layer.build(tuple(x.shape))
        layer.set_weights([to_numpy(w)] + ([to_numpy(b)] if b is not None else []))
        return layer(x)


def conv_vjp(
    x: tf.Tensor,
    w: tf.Tensor,
    g: tf.Tensor,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    layout: str = "channels_first",
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(dx, dw, db) of sum(conv(x, w, b) * g) by tf.GradientTape."""
    o = w.shape[0] if layout == "channels_first" else w.shape[-1]
    b = tf.zeros((o,), dtype=x.dtype)
    with tf.GradientTape() as tape:
        tape.watch([x, w, b])
        y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    with _layout_refusals():
        dx, dw, db = tape.gradient(y, [x, w, b], output_gradients=g)
    return dx, dw, db


def _depthwise_padding(
    x: tf.Tensor, w: tf.Tensor, padding: Any, stride: Any, dilation: Any, layout: str
) -> Any:
    if isinstance(padding, str) and padding in ("valid", "same"):
        return x, padding.upper()
    nd = len(x.shape) - 2
    pairs = oracle.padding_pairs(padding, tuple(_spatial(x, layout)), tuple(w.shape[:nd]), stride, dilation)
    return _explicit(x, pairs, layout), "VALID"


def depthwise_conv(
    x: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    layout: str = "channels_first",
) -> tf.Tensor:
    """tf.nn.depthwise_conv2d: filter (kh, kw, C, M); output channel c*M + m uses filter[:, :, c, m]."""
    if len(x.shape) != 4:
        raise Unsupported("tensorflow: tf.nn.depthwise_conv2d is 2-D only")
    s, d = per_axis(stride, 2), per_axis(dilation, 2)
    x, tf_padding = _depthwise_padding(x, w, padding, s, d, layout)
    strides = [1, 1, *s] if layout == "channels_first" else [1, *s, 1]
    fmt = "NCHW" if layout == "channels_first" else "NHWC"
    with _layout_refusals():
        y = tf.nn.depthwise_conv2d(x, w, strides, tf_padding, data_format=fmt, dilations=d)
    if b is not None:
        y = tf.nn.bias_add(y, b, data_format=fmt)
    return y


def separable_conv(
    x: tf.Tensor,
    dw: tf.Tensor,
    pw: tf.Tensor,
    b: tf.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: str = "valid",
    dilation: int | Sequence[int] = 1,
) -> tf.Tensor:
    """tf.nn.separable_conv2d (channels_last): depthwise (kh, kw, C, M), then pointwise (1, 1, C*M, O)."""
    s, d = per_axis(stride, 2), per_axis(dilation, 2)
    with _layout_refusals():
        y = tf.nn.separable_conv2d(x, dw, pw, [1, *s, 1], padding.upper(), dilations=d)
    return y if b is None else tf.nn.bias_add(y, b)


def _pool_window(
    x: tf.Tensor, window: Any, stride: Any, ceil_mode: bool
) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """(nd, window, stride) per axis; stride None means the window, as in the oracle."""
    if ceil_mode:
        raise Unsupported("tensorflow: pooling has no ceil_mode")
    nd = len(x.shape) - 2

    k = per_axis(window, nd)
    return nd, k, k if stride is None else per_axis(stride, nd)


def max_pool(
    x: tf.Tensor,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    layout: str = "channels_first",
) -> tf.Tensor:
    nd, k, s = _pool_window(x, window, stride, ceil_mode)
    if isinstance(padding, str) and padding in ("valid", "same"):
        tf_padding = padding.upper()
    else:
        pairs = oracle.padding_pairs(padding, tuple(_spatial(x, layout)), k, s, 1)
        x, tf_padding = _explicit(x, pairs, layout, float("-inf")), "VALID"  # -inf never wins
    fmt = (_FIRST if layout == "channels_first" else _LAST)[nd]
    with _layout_refusals():
        return tf.nn.max_pool(x, k, s, tf_padding, data_format=fmt)


def avg_pool(
    x: tf.Tensor,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    layout: str = "channels_first",
) -> tf.Tensor:
    nd, k, s = _pool_window(x, window, stride, ceil_mode)
    if isinstance(padding, str) and padding in ("valid", "same") and not count_include_pad:
        tf_padding = padding.upper()  # SAME divides by the cells inside the input only
    elif count_include_pad:
        # TF has no count_include_pad: pad zeros explicitly, then a VALID pool counts them.
        pairs = oracle.padding_pairs(padding, tuple(_spatial(x, layout)), k, s, 1)
        x, tf_padding = _explicit(x, pairs, layout), "VALID"
    else:
        raise Unsupported("tensorflow: avg_pool excludes padding only with padding='SAME'")
    fmt = (_FIRST if layout == "channels_first" else _LAST)[nd]
    with _layout_refusals():
        return tf.nn.avg_pool(x, k, s, tf_padding, data_format=fmt)


def pool_layer(
    x: tf.Tensor,
    kind: str,
    window: int | Sequence[int],
    *,
    stride: int | Sequence[int] | None = None,
    padding: str = "valid",
    layout: str = "channels_first",
) -> tf.Tensor:
    """keras.layers.{Max,Average}Pooling{1,2,3}D; kind is "max" or "avg", padding as Keras takes it."""
    import keras

    nd = len(x.shape) - 2
    prefix = {"max": "MaxPooling", "avg": "AveragePooling"}[kind]
    cls = getattr(keras.layers, f"{prefix}{nd}D")
    layer = cls(pool_size=window, strides=stride, padding=padding, data_format=layout, dtype=x.dtype.name)
    with _layout_refusals():
        return layer(x)


def _adaptive(x: tf.Tensor, output_size: int | Sequence[int], layout: str, reduce: Any) -> tf.Tensor:
    """torch's adaptive windows built by hand, one axis after another (a Keras port before Keras had
    the layers): output i of an axis of length L reduces the cells [floor(i*L/n), ceil((i+1)*L/n)),
    each a slice reduced with keepdims, concatenated."""
    nd = len(x.shape) - 2
    first = 2 if layout == "channels_first" else 1
    for a, n in enumerate(per_axis(output_size, nd)):
        axis, length = first + a, x.shape[first + a]
        windows = [(i * length // n, -(-(i + 1) * length // n)) for i in range(n)]
        x = tf.concat([reduce(_cells(x, axis, lo, hi), axis=axis, keepdims=True) for lo, hi in windows], axis)
    return x


def adaptive_avg_pool(x: tf.Tensor, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> tf.Tensor:
    """torch's AdaptiveAvgPool as slices and tf.reduce_mean (see _adaptive)."""
    return _adaptive(x, output_size, layout, tf.reduce_mean)


def adaptive_max_pool(x: tf.Tensor, output_size: int | Sequence[int], *,
                      layout: str = "channels_first") -> tf.Tensor:
    """torch's AdaptiveMaxPool as slices and tf.reduce_max (see _adaptive)."""
    return _adaptive(x, output_size, layout, tf.reduce_max)


def adaptive_pool_layer(x: tf.Tensor, kind: str, output_size: int | Sequence[int], *,
                        layout: str = "channels_first") -> tf.Tensor:
    """keras.layers.Adaptive{Average,Max}Pooling{1,2,3}D; kind is "avg" or "max"."""
    import keras

    nd = len(x.shape) - 2
    prefix = {"avg": "AdaptiveAveragePooling", "max": "AdaptiveMaxPooling"}[kind]
    cls = getattr(keras.layers, f"{prefix}{nd}D", None)
    if cls is None:
        raise Unsupported(f"keras {keras.__version__} has no adaptive pooling layers")
    sizes = per_axis(output_size, nd)
    # Keras pools every window of ceil(L/n) and of ceil(L/n) + 1 cells, then gathers; oneDNN's MaxPool
    # with a window longer than its input kills the process (SIGFPE; tensorflow/tensorflow#125509).
    longer = any(-(-length // n) + 1 > length for length, n in zip(_spatial(x, layout), sizes, strict=True))
    if kind == "max" and longer and _device == "cpu" and cpu_kernel_library(x.dtype.name) == "oneDNN":
        raise Unsupported("keras: AdaptiveMaxPooling here runs a MaxPool window longer than the input, which "
                          "oneDNN's CPU MaxPool answers with SIGFPE (tensorflow/tensorflow#125509)")
    layer = cls(sizes, data_format=layout, dtype=x.dtype.name)
    with _layout_refusals():
        return layer(x)


def global_avg_pool(x: tf.Tensor, *, layout: str = "channels_first") -> tf.Tensor:
    first = 2 if layout == "channels_first" else 1
    return tf.reduce_mean(x, axis=list(range(first, first + len(x.shape) - 2)))


def global_max_pool(x: tf.Tensor, *, layout: str = "channels_first") -> tf.Tensor:
    first = 2 if layout == "channels_first" else 1
    return tf.reduce_max(x, axis=list(range(first, first + len(x.shape) - 2)))


# --- layers as a model builds them: parameter counts ---------------------------------------------


def param_count(kind: str, *, nd: int, kernel: int, in_channels: int, out_channels: int, groups: int = 1,
                depth_multiplier: int = 1, bias: bool = True) -> int:
    """count_params() of the Keras layer a model uses for `kind`, built on channels_last input."""
    import keras

    L = keras.layers
    if kind == "conv":
        conv_class = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[nd]
        layer = conv_class(out_channels, kernel, groups=groups, use_bias=bias)
    elif kind == "conv_transpose":
        if groups != 1:
            raise Unsupported("keras: Conv*DTranspose has no groups argument")
        layer = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}[nd](
            out_channels, kernel, use_bias=bias)
    elif kind in ("depthwise", "separable"):
        classes = {"depthwise": {1: L.DepthwiseConv1D, 2: L.DepthwiseConv2D},
                   "separable": {1: L.SeparableConv1D, 2: L.SeparableConv2D}}[kind]
        if nd not in classes:
            raise Unsupported(f"keras has no {kind} layer in {nd}-D")
        args = (kernel,) if kind == "depthwise" else (out_channels, kernel)
        layer = classes[nd](*args, depth_multiplier=depth_multiplier, use_bias=bias)
    elif kind == "dense":
        layer = L.Dense(out_channels, use_bias=bias)
    else:
        raise ValueError(f"param_count: unknown kind {kind!r}")
    layer.build((None, in_channels) if kind == "dense" else (None, *[8] * nd, in_channels))
    return int(layer.count_params())


# --- layers as a model builds them: output shapes -------------------------------------------------


def _mnist_cnn() -> Any:
    import keras

    L = keras.layers
    return keras.Sequential([L.Conv2D(32, 4, activation="relu"), L.MaxPooling2D(2),
                             L.Conv2D(64, 4, activation="relu"), L.MaxPooling2D(2), L.Flatten()])


def layer_output_shape(kind: str, input_shape: Sequence[int], *, kernel: int = 3, filters: int = 4,
                       stride: int = 1, padding: Any = "valid", dilation: int = 1) -> tuple[int, ...]:
    """The Keras layer's compute_output_shape, channels_last."""
    if kind not in SHAPE_KINDS:
        raise ValueError(f"layer_output_shape: unknown kind {kind!r}; one of {', '.join(SHAPE_KINDS)}")
    import keras

    L = keras.layers
    nd = len(input_shape) - 2
    if padding not in ("valid", "same"):
        raise Unsupported(f"keras layers take padding 'valid' or 'same' only, not {padding!r}")
    try:
        if kind == "conv":
            conv_class = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[nd]
            layer = conv_class(filters, kernel, strides=stride, padding=padding, dilation_rate=dilation)
        elif kind == "depthwise":
            if nd == 3:
                raise Unsupported("keras has no DepthwiseConv3D")
            layer = {1: L.DepthwiseConv1D, 2: L.DepthwiseConv2D}[nd](kernel, strides=stride, padding=padding,
                                                                     dilation_rate=dilation)
        elif kind == "conv_transpose":
            layer = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}[nd](
                filters, kernel, strides=stride, padding=padding, dilation_rate=dilation)
        elif kind in ("max_pool", "avg_pool"):
            pools = {"max_pool": (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D),
                     "avg_pool": (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)}[kind]
            layer = pools[nd - 1](kernel, strides=stride, padding=padding)
        elif kind == "mnist_cnn":
            layer = _mnist_cnn()
        else:
            raise AssertionError(kind)  # checked in layer_output_shape
    except ValueError as e:  # e.g. strides > 1 with dilation_rate > 1
        raise Unsupported(f"keras: {e}") from None
    return tuple(int(v) for v in layer.compute_output_shape(tuple(input_shape)))


def time_distributed_conv(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None, *,
                          padding: str = "valid") -> tf.Tensor:
    """keras.layers.TimeDistributed(Conv{1,2}D) on (N, T, *s, C): channels_last, weights set."""
    import keras

    nd = len(x.shape) - 3
    inner = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[nd](
        filters=w.shape[-1], kernel_size=tuple(w.shape[:nd]), padding=padding, use_bias=b is not None,
        dtype=x.dtype.name)
    inner.build((None, *x.shape[2:]))
    inner.set_weights([to_numpy(w)] + ([to_numpy(b)] if b is not None else []))
    return keras.layers.TimeDistributed(inner, dtype=x.dtype.name)(x)  # the wrapper casts to its own dtype


def sequential_vjp(layers: Sequence[tuple[Any, ...]], x: tf.Tensor, g: tf.Tensor, *,
                   layout: str = "channels_first") -> tuple[tf.Tensor, tf.Tensor, list[tuple[Any, Any]]]:
    """A keras.Sequential of the layers with set_weights, differentiated by tf.GradientTape with
    output_gradients=g: (y, dx, [(dw, db) per conv/dense layer, in the layers' own layouts])."""
    import keras

    check_layers(layers)
    L, dtype, nd = keras.layers, x.dtype.name, len(x.shape) - 2
    model = keras.Sequential([keras.Input(tuple(x.shape[1:]), dtype=dtype)])
    weights: list[list[Any]] = []
    for kind, *args in layers:
        if kind == "conv":
            w, b = args
            kernel = _filter(w, layout)
            layer = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[nd](
                kernel.shape[-1], tuple(kernel.shape[:nd]),
                use_bias=b is not None, data_format=layout, dtype=dtype)
            weights.append([kernel] + ([b] if b is not None else []))
        elif kind == "dense":
            w, b = args
            layer = L.Dense(w.shape[1], use_bias=b is not None, dtype=dtype)
            weights.append([w] + ([b] if b is not None else []))
        elif kind == "relu":
            layer = L.ReLU(dtype=dtype)
        elif kind == "max_pool":
            layer = getattr(L, f"MaxPooling{nd}D")(args[0], data_format=layout, dtype=dtype)
        else:
            # Flatten(data_format="channels_first") would move the channels last first; "channels_last"
            # keeps the memory order, which is what torch's Flatten and the spec's ("flatten",) mean.
            layer = L.Flatten(data_format="channels_last", dtype=dtype)
        model.add(layer)
    with_weights = [layer for layer in model.layers if layer.weights]
    for layer, values in zip(with_weights, weights, strict=True):
        layer.set_weights([to_numpy(v) for v in values])
    with _layout_refusals():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x)
        variables = [v for layer in with_weights for v in layer.trainable_weights]
        dx, *dvars = tape.gradient(y, [x, *variables], output_gradients=g)
    grads: list[tuple[Any, Any]] = []
    kinds = [lay[0] for lay in layers if lay[0] in ("conv", "dense")]
    for kind, layer in zip(kinds, with_weights, strict=True):
        dw, *rest = dvars[:len(layer.trainable_weights)]
        dvars = dvars[len(layer.trainable_weights):]
        if kind == "conv" and layout == "channels_first":
            dw = tf.transpose(dw, [nd + 1, nd, *range(nd)])  # (*k, I, O) back to OIHW
        grads.append((dw, rest[0] if rest else None))
    return y, dx, grads


def cast(x: tf.Tensor, dtype: str) -> tf.Tensor:
    return tf.cast(x, dtype)


def mixed_precision_conv(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, *, compute: str,
                         layout: str = "channels_first") -> tf.Tensor:
    """A Keras Conv layer under the mixed_{compute} policy: float32 variables, cast to `compute` for
    the conv and the bias add; the layer returns `compute`."""
    import keras

    nd = len(x.shape) - 2
    kernel = _filter(w, layout)
    layer = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[nd](
        kernel.shape[-1], tuple(kernel.shape[:nd]), data_format=layout, dtype=f"mixed_{compute}")
    layer.build(tuple(x.shape))
    layer.set_weights([to_numpy(tf.cast(kernel, "float32")), to_numpy(tf.cast(b, "float32"))])
    with _layout_refusals():
        return layer(x)
