"""equiv.frameworks.onnxruntime where the claims do not reach it: a call no claim makes for ORT, each
refusal's reason, the float16 path it reads off ORT, and the sessions it keeps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from equiv import Unsupported, frameworks, oracle

if not frameworks.is_installed("onnxruntime"):
    pytest.skip("onnxruntime is not installed (pip install 'equiv[onnx]')", allow_module_level=True)

ort: Any = frameworks.load("onnxruntime")
rng = np.random.default_rng(0)


def f32(*shape: int) -> Any:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_time_distributed_conv_is_the_conv_of_every_step(padding: str) -> None:
    x, w, b = f32(2, 3, 5, 6, 3), f32(3, 2, 3, 4), f32(4)  # (N, T, H, W, C), HWIO
    want = oracle.conv(x.reshape(6, 5, 6, 3), w, b, padding=padding, layout="channels_last")
    got = ort.time_distributed_conv(x, w, b, padding=padding)
    np.testing.assert_allclose(got, want.reshape(2, 3, *want.shape[1:]), rtol=1e-5, atol=1e-5)


def test_flip_reverses_axes_counted_from_either_end() -> None:
    x = f32(2, 3, 4)
    np.testing.assert_array_equal(ort.flip(x, [-1, 0]), x[::-1, :, ::-1])


@pytest.mark.parametrize(("call", "reason"), [
    (lambda: ort.conv(np.ones((1, 1, 4), np.float64), np.ones((1, 1, 2), np.float64)),
     r"has no float64 kernel on CPUExecutionProvider: Could not find an implementation for Conv"),
    (lambda: ort.asarray(np.ones(2, frameworks.numpy_dtype("bfloat16")), "cpu"), r"take no bfloat16"),
    (lambda: ort.conv_vjp(None, None, None), r"inference graphs only"),
    (lambda: ort.conv(f32(1, 1, 6), f32(1, 1, 3), padding="same", dilation=2),
     r"Dilation not supported for AutoPadType::SAME_UPPER"),
    (lambda: ort.mixed_precision_conv(f32(1, 1, 4), f32(1, 1, 2), f32(1), compute="bfloat16"),
     r"take no bfloat16"),
])
def test_what_ort_cannot_do_is_unsupported_with_its_reason(call: Any, reason: str) -> None:
    with pytest.raises(Unsupported, match=reason):
        call()


def test_cuda_without_onnxruntime_gpu_is_unsupported() -> None:
    if ort.gpus():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(Unsupported, match="pip install onnxruntime-gpu"):
        ort.asarray(np.ones(2, np.float32), "cuda")


def test_float16_runs_in_float32_between_casts_read_off_the_optimized_graph() -> None:
    ops = ort.cpu_kernel_state()["float16_conv_nodes"]
    assert "Conv" in ops
    if "Cast" in ops:
        assert ort.cpu_kernel_library("float16") == "MLAS float32"
    x, w = f32(1, 2, 9).astype(np.float16), f32(3, 2, 3).astype(np.float16)
    y = ort.conv(x, w)
    assert y.dtype == np.float16  # one rounding of the float32 conv to float16
    exact = oracle.conv(x, w)  # on the float16 inputs: within one float16 rounding of it
    np.testing.assert_array_less(abs(y - exact), 2**-11 * abs(exact) + 1e-6)


def test_a_released_programs_sessions_are_dropped_unless_another_uses_them() -> None:
    x, w = f32(1, 2, 17), f32(3, 2, 5)
    ort.execute(lambda x, w: ort.conv(x, w), ("first",), {"x": x, "w": w})
    ort.execute(lambda x, w: ort.add(ort.conv(x, w), x[:, :1, :13]), ("second",), {"x": x, "w": w})
    before = len(ort._sessions)
    ort.release(("first",))
    assert len(ort._sessions) == before  # the conv session is the second program's too
    ort.release(("second",))
    assert len(ort._sessions) == before - 2 and len(ort._idle) >= 2  # idle, kept for reuse
