"""TensorFlow's spelling of the conventions. Native layout: channels_last (N, *s, C), filters (*k, I, O)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/CUDA banners out of the report

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import tensorflow as tf  # noqa: E402

from equiv import oracle  # noqa: E402
from equiv.frameworks import Unsupported  # noqa: E402

name = "tensorflow"

_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


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
    }


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
    with tf.device(_device_name(device)):  # TF places ops by context, not by their inputs
        yield


def asarray(a: npt.NDArray[Any], device: str) -> tf.Tensor:
    with tf.device(_device_name(device)):
        return tf.identity(tf.constant(a))


def to_numpy(t: tf.Tensor) -> npt.NDArray[Any]:
    return np.asarray(t.numpy())


def device_of(t: tf.Tensor) -> str:
    if "GPU" in t.device.upper():
        return gpus()[0] if gpus() else t.device
    return "cpu"


def _explicit(x: tf.Tensor, pairs: list[tuple[int, int]], layout: str) -> tf.Tensor:
    batch_and_channel = [(0, 0)]
    full = [*batch_and_channel, *pairs, (0, 0)] if layout == "channels_last" else [(0, 0), (0, 0), *pairs]
    return tf.pad(x, full)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """TF's own refusals become skips with TF's words; any other error stays an error."""
    try:
        yield
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        # TF's CPU kernels are NHWC only: "The Conv2D op currently only supports the NHWC tensor
        # format on the CPU" (Unimplemented), "CPU implementation of Conv3D ..." (InvalidArgument).
        if "tensor format" not in e.message:
            raise
        raise Unsupported(f"tensorflow: {e.message.split('}}')[-1].split('[Op')[0].strip()}") from e
    except ValueError as e:
        if "not supported in conjunction with" in str(e):
            # tf.nn.convolution and Keras refuse strides > 1 together with dilation > 1.
            raise Unsupported(f"tensorflow: {e}") from e
        raise


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
    if layout == "channels_first":
        # TF's filter is (*k, I, O) whatever data_format says.
        w = tf.transpose(w, (*range(2, nd + 2), 1, 0))
    channels = x.shape[1] if layout == "channels_first" else x.shape[-1]
    if w.shape[-2] * groups != channels:
        # TF infers groups from the filter depth; make a mismatch an error, not another conv.
        raise ValueError(f"tensorflow conv: {channels} channels != filter depth {w.shape[-2]} x groups {groups}")
    if isinstance(padding, str) and padding in ("valid", "same"):
        tf_padding = padding.upper()
    else:
        # tf.nn.convolution takes only "VALID"/"SAME": anything else is an explicit tf.pad.
        spatial = x.shape[2:] if layout == "channels_first" else x.shape[1:-1]
        pairs = oracle.padding_pairs(padding, tuple(spatial), tuple(w.shape[:nd]), stride, dilation)
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


def transpose(x: tf.Tensor, axes: Sequence[int]) -> tf.Tensor:
    return tf.transpose(x, axes)


def reshape(x: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
    return tf.reshape(x, shape)
