"""ONNX Runtime's spelling of the conventions: each fw.* call is a graph of one op (or a few), built
with onnx.helper at a pinned opset and run by an InferenceSession on ORT's CPU provider (its CUDA
provider when onnxruntime-gpu is installed), as exported models are deployed.

Arrays are NumPy arrays: ORT takes and returns them. A graph's arrays are its inputs, not
initializers, so one session serves every input of the same shapes; sessions are cached by the graph
(its ops and attributes), the input shapes and dtypes, and the provider; once every program (item
key) that used one is released it idles, and the least recently used past IDLE_SESSIONS are dropped.

ONNX is channels_first only (NCHW data, OIHW weights): channels_last goes through Transpose nodes
around the op, as tf2onnx exports a Keras model. What ORT cannot run raises Unsupported:
- float64 Conv, ConvTranspose, AveragePool and GlobalAveragePool: ORT's CPU provider has no kernel
  (NOT_IMPLEMENTED when the session is made; its message is the skip reason);
- bfloat16: ONNX's Conv, pooling and Gemm type constraints exclude it (an invalid graph), and ORT's
  Python API neither takes nor returns bfloat16 arrays;
- gradients: ORT runs inference graphs; onnxruntime-training, which had them, ended at 1.19;
- CUDA without onnxruntime-gpu.
float16: ORT's CPU provider has no float16 Conv, pooling or Gemm kernels. Its graph optimizer casts
each such op's inputs to float32 and its output back to float16 (InsertCastTransformer), so the op
accumulates in float32 and rounds once to float16: one rounding where the bound allows two.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import helper

from equiv import machine, oracle
from equiv.frameworks import SHAPE_KINDS, Unsupported, check_layers, kernels_by_dtype, per_axis

name = "onnxruntime"
# Names only this framework has (its layers, its own spellings), beyond the Framework Protocol.
OWN: tuple[str, ...] = ("sequential_model", "torch_onnx_export")

OPSET = 21  # pinned: every op here has had its current definition since opset 19 or earlier
IR_VERSION = 10  # opset 21's; onnx.helper would write its newest, which an older ORT refuses
MAX_SESSIONS = 2048  # the least recently used session past these is dropped (each holds ~0.2 MB)
IDLE_SESSIONS = 256  # released sessions kept for a later program (a Transpose or Reshape recurs)
# The ONNX spelling of equiv's named paddings. SAME is SAME_UPPER: the odd pixel at the end, as TF's
# SAME; SAME_LOWER puts it at the start.
AUTO_PAD = {"valid": "VALID", "same": "SAME_UPPER", "same_lower": "SAME_LOWER"}
NO_GRADIENTS = ("onnxruntime: ORT runs inference graphs only; gradients were onnxruntime-training's, "
                "which ended at 1.19")
NO_BFLOAT16 = ("onnxruntime: ONNX's Conv, pooling and Gemm take no bfloat16 (their type constraints: "
               "float16, float, double), and ORT's Python API neither takes nor returns bfloat16 arrays")
# ORT's words when a kernel refuses arguments ONNX allows (or torch does): SAME with dilations in Conv,
# a ConvTranspose output_padding not below the stride (torch takes one below the dilation too).
REFUSALS = ("not supported", "may be too large")
_CUDA = "CUDAExecutionProvider"
_state: dict[str, Any] = {"provider": "CPUExecutionProvider", "tf32": False, "program": None}


def version() -> str:
    return str(ort.__version__)


def gpus() -> list[str]:
    """ORT names no devices: one entry when its CUDA provider is installed (onnxruntime-gpu)."""
    return [f"CUDA device 0 ({_CUDA})"] if _CUDA in ort.get_available_providers() else []


def environment() -> dict[str, Any]:
    return {
        "version": version(),
        "onnx": str(onnx.__version__),
        "opset": OPSET,
        "providers": list(ort.get_available_providers()),
        "devices": ["cpu", *gpus()],
        "precision": precision_state(),
        "cpu_kernels": cpu_kernel_state(),
        "threads": _threads() or "ORT's default (one per physical core)",
    }


# --- the runtime -------------------------------------------------------------------------------------


def _threads() -> int:
    """An xdist worker's share of the cores (ORT sizes its pool to every core); 0: ORT's default."""
    return machine.worker_threads() or 0


_sessions: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_idle: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # released: no program still to run uses them
_refused: dict[tuple[Any, ...], str] = {}  # graphs ORT has no kernel for: the reason, asked once
_users: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}  # session key -> the programs that ran it
_used: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}  # program key -> the sessions it ran
_stats: dict[str, float] = {"compiles": 0, "compile_seconds": 0.0}


def compile_stats() -> dict[str, float]:
    """Sessions made in this process (ORT checks, optimizes and plans each graph once) and their time."""
    return dict(_stats)


def execute(fn: Any, key: tuple[Any, ...], arrays: dict[str, Any]) -> Any:
    """Each fw call runs its own cached session: the variant runs as it is; the sessions it runs are
    noted as the program's, for release."""
    saved, _state["program"] = _state.get("program"), key
    try:
        return fn(**arrays)
    finally:
        _state["program"] = saved


def release(key: tuple[Any, ...]) -> None:
    """Drop the sessions no program still to run uses: the suite makes ~3,000, ~0.2 MB each."""
    for session in _used.pop(key, ()):
        users = _users.get(session, set())
        users.discard(key)
        if not users and session in _sessions:
            _users.pop(session, None)
            _idle[session] = _sessions.pop(session)
            while len(_idle) > IDLE_SESSIONS:
                _idle.popitem(last=False)


@functools.cache
def cpu_kernel_state() -> dict[str, Any]:
    """ORT's CPU provider runs MLAS kernels (the PyPI wheel has no oneDNN provider). Whether a float16
    conv runs in float32 is read off the optimized graph of one: Cast nodes inserted around the Conv."""
    return {
        "library": "MLAS",
        "default": "MLAS",
        "decided_by": "onnxruntime's CPUExecutionProvider",
        "float16_conv_nodes": _optimized_ops("float16"),  # e.g. Cast, Cast, Conv, Cast
        "by_dtype": kernels_by_dtype(_dtype_library),
    }


@functools.cache
def _optimized_ops(dtype: str) -> list[str]:
    """The ops ORT runs for a one-Conv graph of `dtype` after its optimizations."""
    g = _Graph()
    y = g.node("Conv", g.input(np.zeros((1, 1, 3, 3), dtype)), g.input(np.zeros((1, 1, 2, 2), dtype)))
    with tempfile.TemporaryDirectory() as tmp:
        options = _options()
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        options.add_session_config_entry("session.disable_prepacking", "1")  # a portable file
        ort.InferenceSession(g.model([y]).SerializeToString(), options, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


def cpu_kernel_library(dtype: str) -> str:
    return _dtype_library(dtype)[0]


def _dtype_library(dtype: str) -> tuple[str, str]:
    if dtype == "float16":
        if "Cast" in _optimized_ops("float16"):
            return "MLAS float32", "no float16 Conv kernel: ORT casts to float32 and back"
        return "MLAS", "float16 Conv kernel"
    if dtype == "float64":
        return "none", "no float64 Conv kernel"
    if dtype == "bfloat16":
        return "none", "ONNX's Conv takes no bfloat16"
    return "MLAS", "CPUExecutionProvider"


@contextlib.contextmanager
def cpu_kernels(mode: str) -> Iterator[None]:
    yield  # one CPU kernel library (MLAS): nothing to switch


def precision_state() -> dict[str, Any]:
    return {"cpu": "IEEE float32 (MLAS has no TF32)", "cuda_use_tf32": _state["tf32"]}


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """The CUDA provider's use_tf32 option (on by default in ORT) follows the mode; the CPU has none."""
    saved = _state["tf32"]
    _state["tf32"] = mode == "tf32"
    try:
        yield
    finally:
        _state["tf32"] = saved


@contextlib.contextmanager
def scope(device: str) -> Iterator[None]:
    saved = _state["provider"]
    _state["provider"] = _provider(device)
    try:
        yield
    finally:
        _state["provider"] = saved


def _provider(device: str) -> str:
    if device == "cuda":
        if _CUDA not in ort.get_available_providers():
            raise Unsupported("onnxruntime: no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        return _CUDA
    return "CPUExecutionProvider"


def asarray(a: npt.NDArray[Any], device: str) -> npt.NDArray[Any]:
    """A NumPy array: ORT copies it to the provider's device at each run."""
    _provider(device)
    if a.dtype.name == "bfloat16":
        raise Unsupported(NO_BFLOAT16)
    return np.ascontiguousarray(a)


def to_numpy(t: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.asarray(t)


def device_of(t: npt.NDArray[Any]) -> str:
    return "cpu"  # ORT returns host arrays, whatever provider ran the graph


def _options() -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the optimizer's notes would flood each worker
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1  # one op per graph: nothing to run side by side
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads yield
    options.enable_cpu_mem_arena = False  # tiny tensors: an arena per session costs more than it saves
    return options


def _session(model: bytes, dtype: str) -> Any:
    """An InferenceSession on the provider in force; a kernel ORT lacks is Unsupported, in its words."""
    provider = _state["provider"]
    providers: list[Any] = [provider]
    if provider == _CUDA:
        providers = [(_CUDA, {"use_tf32": "1" if _state["tf32"] else "0"})]
    start = time.perf_counter()
    try:
        session = ort.InferenceSession(model, _options(), providers=providers)
    except ort.capi.onnxruntime_pybind11_state.NotImplemented as e:
        raise Unsupported(f"onnxruntime {version()} has no {dtype} kernel on {provider}: "
                          f"{str(e).split(' : ')[-1].strip()}") from None
    _stats["compiles"] += 1
    _stats["compile_seconds"] += time.perf_counter() - start
    return session


_RUN = ort.RunOptions()
_RUN.log_severity_level = 4  # a refusal is raised (and becomes a skip), not logged in every worker too


class _Graph:
    """The nodes of one small ONNX graph; arrays enter as graph inputs, small int64 vectors (shapes,
    axes, pads) as initializers."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, tuple[str, ...], str, tuple[tuple[str, Any], ...]]] = []
        self.feeds: dict[str, npt.NDArray[Any]] = {}
        self.constants: list[tuple[str, tuple[int, ...]]] = []

    def input(self, a: Any) -> str:
        if a.dtype.name == "bfloat16":  # a cast inside a variant may make one
            raise Unsupported(NO_BFLOAT16)
        key = f"x{len(self.feeds)}"
        self.feeds[key] = np.ascontiguousarray(a)
        return key

    def const(self, values: Sequence[int]) -> str:
        key = f"c{len(self.constants)}"
        self.constants.append((key, tuple(int(v) for v in values)))
        return key

    def node(self, op: str, *inputs: str, **attributes: Any) -> str:
        out = f"t{len(self.nodes)}"
        attrs = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                             for k, v in attributes.items() if v is not None))
        self.nodes.append((op, inputs, out, attrs))
        return out

    def model(self, outputs: Sequence[str]) -> onnx.ModelProto:
        inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                  for k, a in self.feeds.items()]
        constants = [helper.make_tensor(k, onnx.TensorProto.INT64, (len(v),), list(v))
                     for k, v in self.constants]
        nodes = [helper.make_node(op, list(ins), [out], **_attributes(attrs))
                 for op, ins, out, attrs in self.nodes]
        graph = helper.make_graph(nodes, "equiv", inputs, [helper.make_empty_tensor_value_info(o)
                                                            for o in outputs], initializer=constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model

    def run(self, output: str) -> npt.NDArray[Any]:
        key = (tuple(self.nodes), tuple(self.constants), output, _state["provider"], _state["tf32"],
               tuple((k, a.shape, a.dtype.str) for k, a in self.feeds.items()))
        session = _sessions.get(key)
        if session is None and key in _refused:
            raise Unsupported(_refused[key])
        if session is None:
            try:
                session = _idle.pop(key, None) or self._session(output)
            except Unsupported as e:
                _refused[key] = str(e)  # a float64 graph is refused at every seed and program alike
                raise
            _sessions[key] = session
            while len(_sessions) > MAX_SESSIONS:
                _users.pop(_sessions.popitem(last=False)[0], None)
        else:
            _sessions.move_to_end(key)
        program = _state.get("program")
        if program is not None:
            _users.setdefault(key, set()).add(program)
            _used.setdefault(program, set()).add(key)
        try:
            out: npt.NDArray[Any] = session.run([output], self.feeds, _RUN)[0]
        except ort.capi.onnxruntime_pybind11_state.InvalidArgument as e:
            message = str(e).split("Status Message: ")[-1].strip()
            if not any(refusal in message for refusal in REFUSALS):
                raise
            raise Unsupported(f"onnxruntime {version()}: {message}") from None  # a refusal, ORT's words
        return out

    def _session(self, output: str) -> Any:
        dtypes = sorted({a.dtype.name for a in self.feeds.values()})
        return _session(self.model([output]).SerializeToString(), "/".join(dtypes))

    def shape(self, output: str) -> tuple[int, ...]:
        """The output's shape by ONNX's shape inference: nothing runs."""
        inferred = onnx.shape_inference.infer_shapes(self.model([output]), strict_mode=True, data_prop=True)
        (value,) = [v for v in inferred.graph.output if v.name == output]
        dims = value.type.tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            raise AssertionError(f"onnx shape inference left {output} without a static shape: {dims}")
        return tuple(int(d.dim_value) for d in dims)


def _attributes(attrs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs}


# --- layouts and paddings ---------------------------------------------------------------------------


def _first(g: _Graph, x: str, nd: int) -> str:
    return g.node("Transpose", x, perm=(0, nd + 1, *range(1, nd + 1)))  # NHWC -> NCHW: ONNX's only layout


def _last(g: _Graph, y: str, nd: int) -> str:
    return g.node("Transpose", y, perm=(0, *range(2, nd + 2), 1))  # NCHW -> NHWC, back to the caller's


def _oihw(g: _Graph, w: str, nd: int) -> str:
    return g.node("Transpose", w, perm=(nd + 1, nd, *range(nd)))  # HWIO -> OIHW (and transposed conv's)


def _spatial(x: Any, layout: str) -> tuple[int, ...]:
    return tuple(x.shape[2:] if layout == "channels_first" else x.shape[1:-1])


def _padding(padding: Any, spatial: Sequence[int], kernel: Sequence[int], stride: Any,
             dilation: Any) -> dict[str, Any]:
    """auto_pad for the named paddings ONNX has, else explicit `pads`."""
    if isinstance(padding, str) and padding in AUTO_PAD:
        _same_clamps(padding, spatial, kernel, stride, dilation)
        return {"auto_pad": AUTO_PAD[padding]}
    pairs = oracle.padding_pairs(padding, spatial, kernel, stride, dilation)
    return {"pads": _pads(pairs)}


def _same_clamps(padding: str, spatial: Sequence[int], kernel: Sequence[int], stride: Any, dilation: Any,
                 transposed: bool = False) -> None:
    """ORT's SAME_UPPER/LOWER does not clamp a negative total padding (a stride past the dilated kernel):
    MaxPool refuses it, Conv reads shifted cells, ConvTranspose crops a cell too many."""
    if padding == "valid":
        return
    nd = len(kernel)
    for n, k, s, d in zip(spatial, kernel, per_axis(stride, nd), per_axis(dilation, nd), strict=True):
        reach = (k - 1) * d + 1
        total = reach - s if transposed else (-(-n // s) - 1) * s + reach - n
        if total < 0:
            raise Unsupported("onnxruntime: auto_pad SAME does not clamp a negative total padding (a stride "
                              "past the kernel): microsoft/onnxruntime#10086")


def _pads(pairs: Sequence[tuple[int, int]]) -> list[int]:
    # ONNX lists every axis's begin, then every axis's end (torch's F.pad: pairs from the last axis).
    return [lo for lo, _ in pairs] + [hi for _, hi in pairs]


# --- the case API -----------------------------------------------------------------------------------


def conv(x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1, padding: Any = "valid",
         dilation: int | Sequence[int] = 1, groups: int = 1, layout: str = "channels_first") -> Any:
    """Conv; bias as its third input."""
    nd = x.ndim - 2
    kernel = tuple(w.shape[2:] if layout == "channels_first" else w.shape[:nd])
    g = _Graph()
    xi, wi = g.input(x), g.input(w)
    if layout == "channels_last":
        xi, wi = _first(g, xi, nd), _oihw(g, wi, nd)
    inputs = (xi, wi) if b is None else (xi, wi, g.input(b))
    y = g.node("Conv", *inputs, kernel_shape=kernel, strides=per_axis(stride, nd),
               dilations=per_axis(dilation, nd), group=groups,
               **_padding(padding, _spatial(x, layout), kernel, stride, dilation))
    return g.run(_last(g, y, nd) if layout == "channels_last" else y)


def conv_transpose(x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1, padding: Any = 0,
                   output_padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                   groups: int = 1, layout: str = "channels_first") -> Any:
    """ConvTranspose, whose weights are (C_in, C_out/groups, *k) as torch's; `pads` crop the full output."""
    nd = x.ndim - 2
    kernel = tuple(w.shape[2:] if layout == "channels_first" else w.shape[:nd])
    g = _Graph()
    xi, wi = g.input(x), g.input(w)
    if layout == "channels_last":
        xi, wi = _first(g, xi, nd), _oihw(g, wi, nd)  # (*k, C_out/g, C_in) -> (C_in, C_out/g, *k)
    if isinstance(padding, str) and padding not in AUTO_PAD:
        raise Unsupported(f"onnxruntime: ConvTranspose has no padding={padding!r}")
    if isinstance(padding, str):
        _same_clamps(padding, _spatial(x, layout), kernel, stride, dilation, transposed=True)
    pad = ({"auto_pad": AUTO_PAD[padding]} if isinstance(padding, str)
           else {"pads": _pads(oracle.padding_pairs(padding, _spatial(x, layout), kernel))})
    inputs = (xi, wi) if b is None else (xi, wi, g.input(b))
    op = per_axis(output_padding, nd)
    y = g.node("ConvTranspose", *inputs, kernel_shape=kernel, strides=per_axis(stride, nd),
               dilations=per_axis(dilation, nd), group=groups, output_padding=op if any(op) else None,
               **pad)
    return g.run(_last(g, y, nd) if layout == "channels_last" else y)


def depthwise_conv(x: Any, w: Any, b: Any = None, *, stride: int | Sequence[int] = 1, padding: Any = "valid",
                   dilation: int | Sequence[int] = 1, layout: str = "channels_first") -> Any:
    """TF's filter (*k, C, M) as ONNX spells a depthwise conv: a Conv with group=C, W (C*M, 1, *k)."""
    nd = x.ndim - 2
    c, m = w.shape[-2], w.shape[-1]
    kernel = tuple(w.shape[:nd])
    g = _Graph()
    xi = g.input(x)
    if layout == "channels_last":
        xi = _first(g, xi, nd)
    # (*k, C, M) -> (*k, 1, C*M) keeps channel c*M + m at w[..., c, m]; then HWIO -> OIHW.
    wi = _oihw(g, g.node("Reshape", g.input(w), g.const((*kernel, 1, c * m))), nd)
    inputs = (xi, wi) if b is None else (xi, wi, g.input(b))
    y = g.node("Conv", *inputs, kernel_shape=kernel, strides=per_axis(stride, nd),
               dilations=per_axis(dilation, nd), group=c,
               **_padding(padding, _spatial(x, layout), kernel, stride, dilation))
    return g.run(_last(g, y, nd) if layout == "channels_last" else y)


def conv_vjp(x: Any, w: Any, g: Any, *, stride: int | Sequence[int] = 1, padding: Any = "valid",
             dilation: int | Sequence[int] = 1, groups: int = 1,
             layout: str = "channels_first") -> tuple[Any, Any, Any]:
    raise Unsupported(NO_GRADIENTS)


def dense(x: Any, w: Any, b: Any = None) -> Any:
    """Gemm for a batch of vectors (what exporters write for a Linear layer), else MatMul and Add."""
    g = _Graph()
    xi, wi = g.input(x), g.input(w)
    if x.ndim == 2:
        return g.run(g.node("Gemm", xi, wi) if b is None else g.node("Gemm", xi, wi, g.input(b)))
    y = g.node("MatMul", xi, wi)
    return g.run(y if b is None else g.node("Add", y, g.input(b)))


def _pool(op: str, x: Any, window: Any, stride: Any, padding: Any, layout: str, **attributes: Any) -> Any:
    nd = x.ndim - 2
    k = per_axis(window, nd)
    s = k if stride is None else per_axis(stride, nd)
    g = _Graph()
    xi = g.input(x)
    if layout == "channels_last":
        xi = _first(g, xi, nd)
    y = g.node(op, xi, kernel_shape=k, strides=s, **_padding(padding, _spatial(x, layout), k, s, 1),
               **attributes)
    return g.run(_last(g, y, nd) if layout == "channels_last" else y)


def avg_pool(x: Any, window: int | Sequence[int], *, stride: int | Sequence[int] | None = None,
             padding: Any = "valid", ceil_mode: bool = False, count_include_pad: bool = False,
             layout: str = "channels_first") -> Any:
    """AveragePool: ceil_mode and count_include_pad are its own attributes (0 by default, as torch's
    ceil_mode; torch's count_include_pad defaults to True)."""
    return _pool("AveragePool", x, window, stride, padding, layout, ceil_mode=int(ceil_mode),
                 count_include_pad=int(count_include_pad))


def max_pool(x: Any, window: int | Sequence[int], *, stride: int | Sequence[int] | None = None,
             padding: Any = "valid", ceil_mode: bool = False, layout: str = "channels_first") -> Any:
    """MaxPool: its padding never wins (ONNX pads a max pool with -inf)."""
    return _pool("MaxPool", x, window, stride, padding, layout, ceil_mode=int(ceil_mode))


def _global(op: str, x: Any, layout: str) -> Any:
    g = _Graph()
    xi = g.input(x)
    if layout == "channels_last":
        xi = _first(g, xi, x.ndim - 2)
    return g.run(g.node("Flatten", g.node(op, xi), axis=1))  # (N, C, 1, ...) -> (N, C)


def global_avg_pool(x: Any, *, layout: str = "channels_first") -> Any:
    """GlobalAveragePool, as exporters write a global (adaptive-to-1) average pool."""
    return _global("GlobalAveragePool", x, layout)


def global_max_pool(x: Any, *, layout: str = "channels_first") -> Any:
    return _global("GlobalMaxPool", x, layout)


def mixed_precision_conv(x: Any, w: Any, b: Any, *, compute: str, layout: str = "channels_first") -> Any:
    """ONNX has no precision policy: a model converted to float16 (keep_io_types) casts its float32
    inputs to float16 at its entry and runs a float16 Conv, which ORT's CPU provider computes in
    float32 (see the module docstring); the result is float16, the compute dtype."""
    if compute == "bfloat16":
        raise Unsupported(NO_BFLOAT16)
    nd = x.ndim - 2
    kernel = tuple(w.shape[2:] if layout == "channels_first" else w.shape[:nd])
    g = _Graph()
    to = helper.np_dtype_to_tensor_dtype(np.dtype(compute))
    xi, wi, bi = (g.node("Cast", g.input(a), to=to) for a in (x, w, b))
    if layout == "channels_last":
        xi, wi = _first(g, xi, nd), _oihw(g, wi, nd)
    y = g.node("Conv", xi, wi, bi, kernel_shape=kernel, auto_pad="VALID")
    return g.run(_last(g, y, nd) if layout == "channels_last" else y)


def time_distributed_conv(x: Any, w: Any, b: Any = None, *, padding: str = "valid") -> Any:
    """Keras' TimeDistributed(Conv) as tf2onnx exports it: (N, T, *s, C) reshaped to (N*T, *s, C),
    transposed to NCHW, the Conv, and back."""
    n, t, *spatial, c = x.shape
    nd = len(spatial)
    kernel = tuple(w.shape[:nd])
    g = _Graph()
    xi = _first(g, g.node("Reshape", g.input(x), g.const((n * t, *spatial, c))), nd)
    inputs = (xi, _oihw(g, g.input(w), nd)) + (() if b is None else (g.input(b),))
    y = _last(g, g.node("Conv", *inputs, kernel_shape=kernel, **_padding(padding, spatial, kernel, 1, 1)), nd)
    out = oracle.conv_output_shape(spatial, kernel, padding=padding)
    return g.run(g.node("Reshape", y, g.const((n, t, *out, -1))))


def sequential_vjp(layers: Sequence[tuple[Any, ...]], x: Any, g: Any, *,
                   layout: str = "channels_first") -> tuple[Any, Any, list[tuple[Any, Any]]]:
    raise Unsupported(NO_GRADIENTS)


def flatten_layer(x: Any) -> Any:
    """Flatten(axis=1): axis 0 kept, the rest in memory order (what exporters write for Flatten)."""
    g = _Graph()
    return g.run(g.node("Flatten", g.input(x), axis=1))


def permute_layer(x: Any, dims: Sequence[int]) -> Any:
    """ONNX has no Permute: a Transpose with the batch axis spelled out (tf2onnx's for Keras' Permute)."""
    return transpose(x, (0, *dims))


def pad(x: Any, pairs: Sequence[tuple[int, int]]) -> Any:
    g = _Graph()
    return g.run(g.node("Pad", g.input(x), g.const(_pads(pairs))))  # mode "constant", value 0


def transpose(x: Any, axes: Sequence[int]) -> Any:
    g = _Graph()
    return g.run(g.node("Transpose", g.input(x), perm=tuple(axes)))


def reshape(x: Any, shape: Sequence[int]) -> Any:
    g = _Graph()
    return g.run(g.node("Reshape", g.input(x), g.const(shape)))  # -1 infers, as numpy's; 0 would copy


def flip(x: Any, axes: Sequence[int]) -> Any:
    """ONNX has no Flip: a Slice with step -1 from the last element past the first reverses an axis."""
    axes = [a % x.ndim for a in axes]
    g = _Graph()
    last, before_first = [-1] * len(axes), [np.iinfo(np.int64).min] * len(axes)
    return g.run(g.node("Slice", g.input(x), g.const(last), g.const(before_first), g.const(axes),
                        g.const([-1] * len(axes))))


def add(a: Any, b: Any) -> Any:
    g = _Graph()
    return g.run(g.node("Add", g.input(a), g.input(b)))


def cast(x: Any, dtype: str) -> Any:
    if dtype == "bfloat16":
        raise Unsupported(NO_BFLOAT16)
    g = _Graph()
    return g.run(g.node("Cast", g.input(x), to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype))))


# --- layers as a model builds them -------------------------------------------------------------------


def layer_output_shape(kind: str, input_shape: Sequence[int], *, kernel: int = 3, filters: int = 4,
                       stride: int = 1, padding: Any = "valid", dilation: int = 1) -> tuple[int, ...]:
    """ONNX's shape inference on the graph an exporter writes for the layer (Transposes around the op
    for the channels_last input and output): nothing runs."""
    if kind not in SHAPE_KINDS:
        raise ValueError(f"layer_output_shape: unknown kind {kind!r}; one of {', '.join(SHAPE_KINDS)}")
    nd, cin = len(input_shape) - 2, input_shape[-1]
    k = (kernel,) * nd
    g = _Graph()
    x = _first(g, g.input(np.zeros(input_shape, np.float32)), nd)

    def weight(*shape: int) -> str:
        return g.input(np.zeros(shape, np.float32))

    pad = {"auto_pad": AUTO_PAD[padding]} if isinstance(padding, str) else {"pads": [padding] * 2 * nd}
    common = {"strides": (stride,) * nd, **pad}
    if kind == "conv":
        y = g.node("Conv", x, weight(filters, cin, *k), kernel_shape=k, dilations=(dilation,) * nd, **common)
    elif kind == "depthwise":
        y = g.node("Conv", x, weight(cin, 1, *k), kernel_shape=k, dilations=(dilation,) * nd, group=cin,
                   **common)
    elif kind == "conv_transpose":  # an int padding crops the full output
        y = g.node("ConvTranspose", x, weight(cin, filters, *k), kernel_shape=k, dilations=(dilation,) * nd,
                   **common)
    elif kind in ("max_pool", "avg_pool"):
        y = g.node("MaxPool" if kind == "max_pool" else "AveragePool", x, kernel_shape=k, **common)
    else:  # mnist_cnn: conv 4x4 x32, ReLU, 2x2 max pool, conv 4x4 x64, ReLU, 2x2 max pool, Flatten
        y, channels = x, cin
        for width in (32, 64):
            y = g.node("Conv", y, weight(width, channels, 4, 4), kernel_shape=(4, 4))
            y, channels = g.node("MaxPool", g.node("Relu", y), kernel_shape=(2, 2), strides=(2, 2)), width
        return g.shape(g.node("Flatten", y, axis=1))
    return g.shape(_last(g, y, nd))


def param_count(kind: str, *, nd: int, kernel: int, in_channels: int, out_channels: int, groups: int = 1,
                depth_multiplier: int = 1, bias: bool = True) -> int:
    """ONNX has no layers: the elements of the initializers the graph for `kind` holds, as an exporter
    writes it (conv W (out, in/groups, *k); ConvTranspose W (in, out/groups, *k); depthwise a Conv
    with group=in; separable the depthwise Conv without bias, then a 1x1 Conv; dense a Gemm's B (in,
    out)), the graph checked by ONNX's shape inference."""
    k, cin, cout, m = (kernel,) * nd, in_channels, out_channels, depth_multiplier
    weights: list[tuple[str, tuple[int, ...]]] = []
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (1, cin, *[8] * nd) if nd else (1, cin))

    def node(op: str, into: str, w: tuple[int, ...], b: int | None, **attributes: Any) -> onnx.NodeProto:
        i = len(weights)
        weights.append((f"w{i}", w))
        if b is not None:
            weights.append((f"b{i}", (b,)))
        ins = [into, f"w{i}", *([f"b{i}"] if b is not None else [])]
        return helper.make_node(op, ins, [f"y{i}"], **attributes)

    if kind == "conv":
        nodes = [node("Conv", "x", (cout, cin // groups, *k), cout if bias else None, group=groups)]
    elif kind == "conv_transpose":
        nodes = [node("ConvTranspose", "x", (cin, cout // groups, *k), cout if bias else None, group=groups)]
    elif kind == "depthwise":
        nodes = [node("Conv", "x", (cin * m, 1, *k), cin * m if bias else None, group=cin)]
    elif kind == "separable":
        nodes = [node("Conv", "x", (cin * m, 1, *k), None, group=cin)]
        nodes.append(node("Conv", "y0", (cout, cin * m, *[1] * nd), cout if bias else None))
    elif kind == "dense":
        nodes = [node("Gemm", "x", (cin, cout), cout if bias else None)]
    else:
        raise ValueError(f"param_count: unknown kind {kind!r}")
    initializers = [helper.make_tensor(n, onnx.TensorProto.FLOAT, s, np.zeros(math.prod(s), np.float32))
                    for n, s in weights]
    out = helper.make_empty_tensor_value_info(nodes[-1].output[0])
    model = helper.make_model(helper.make_graph(nodes, "equiv", [x], [out], initializer=initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.shape_inference.infer_shapes(model, strict_mode=True)  # raises if the weights do not fit
    return sum(math.prod(t.dims) for t in model.graph.initializer)


# --- models: a port through ONNX -----------------------------------------------------------------------


def sequential_model(layers: Sequence[tuple[Any, ...]], x: Any, *, layout: str = "channels_first") -> Any:
    """The forward pass of a model of LAYER_KINDS as one ONNX graph built with onnx.helper from its
    weights (Conv, Relu, MaxPool, Flatten, Gemm), as an exporter writes it. channels_last (a Keras
    model, HWIO weights) is transposed to NCHW at the entry and back before Flatten, so Flatten reads
    (H, W, C) order as Keras' does (what tf2onnx leaves once its optimizer has merged the Transposes)."""
    check_layers(layers)
    nd = x.ndim - 2
    g = _Graph()
    y = g.input(x)
    spatial = True
    if layout == "channels_last":
        y = _first(g, y, nd)
    for kind, *args in layers:
        if kind == "conv":
            w, b = args
            wi = g.input(w) if layout == "channels_first" else _oihw(g, g.input(w), nd)
            kernel = tuple(w.shape[2:] if layout == "channels_first" else w.shape[:nd])
            y = g.node("Conv", y, wi, *([] if b is None else [g.input(b)]), kernel_shape=kernel)
        elif kind == "relu":
            y = g.node("Relu", y)
        elif kind == "max_pool":
            k = per_axis(args[0], nd)
            y = g.node("MaxPool", y, kernel_shape=k, strides=k)
        elif kind == "flatten":
            y = g.node("Flatten", _last(g, y, nd) if layout == "channels_last" else y, axis=1)
            spatial = False
        else:  # dense: Gemm's B is (in, out), as the layer spec's w
            w, b = args
            y = g.node("Gemm", y, g.input(w), *([] if b is None else [g.input(b)]))
    return g.run(_last(g, y, nd) if spatial and layout == "channels_last" else y)


def torch_onnx_export(layers: Sequence[tuple[Any, ...]], x: Any) -> Any:
    """The layers as a torch.nn.Sequential with the weights copied in (channels_first), exported by
    torch.onnx.export at OPSET and run in ORT: the usual way a model reaches ORT. TorchScript's
    exporter (dynamo=False): torch's default one needs onnxscript, which equiv[onnx] does not install."""
    check_layers(layers)
    try:
        import torch
    except ImportError:
        raise Unsupported("onnxruntime: torch.onnx.export needs torch (pip install 'equiv[torch]')") from None
    import warnings

    dtype = getattr(torch, x.dtype.name)
    modules: list[Any] = []
    for kind, *args in layers:
        if kind in ("conv", "dense"):
            w, b = args
            module: Any = (torch.nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), bias=b is not None)
                           if kind == "conv" else torch.nn.Linear(w.shape[0], w.shape[1], bias=b is not None))
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(np.array(w if kind == "conv" else w.T)))
                if b is not None:
                    module.bias.copy_(torch.from_numpy(np.array(b)))
        elif kind == "relu":
            module = torch.nn.ReLU()
        elif kind == "max_pool":
            module = torch.nn.MaxPool2d(args[0])
        else:
            module = torch.nn.Flatten()
        modules.append(module.to(dtype))
    if x.ndim != 4:
        raise Unsupported("onnxruntime: torch_onnx_export builds 2-D convs and pools only")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's exporter is deprecated: said above, once
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(torch.nn.Sequential(*modules).eval(), (torch.from_numpy(np.array(x)),), path,
                          dynamo=False, opset_version=OPSET, input_names=["x"], output_names=["y"])
        exported = onnx.load(path)
    session = _session(exported.SerializeToString(), x.dtype.name)  # weights inside: a session a call
    out: npt.NDArray[Any] = session.run(["y"], {"x": np.ascontiguousarray(x)}, _RUN)[0]
    return out
