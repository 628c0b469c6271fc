"""What the machine decides before any framework is imported: the CPU, its kernel libraries, caches.

TensorFlow picks its CPU kernels once, at import: oneDNN when TF_ENABLE_ONEDNN_OPTS=1, Eigen when it
is 0, and when it is unset oneDNN only on x86 CPUs with AVX-512 VNNI, AVX-512 BF16 or AMX. JAX reads
its compilation-cache settings at import too. So the run's choices go into os.environ here, in
pytest_configure, before any import; xdist workers inherit that environment and pin it again.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path
from typing import Any

CPU_KERNELS: tuple[str, ...] = ("default", "onednn", "reference")
JAX_MLIR_CONTEXTS: tuple[str, ...] = ("shared", "per-program")
JAX_MLIR_CONTEXT_ENV = "EQUIV_JAX_MLIR_CONTEXT"  # read by equiv.frameworks.jax at each lowering
# The ISA features that decide which CPU kernels the frameworks pick (names as in /proc/cpuinfo).
ISA_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                              "avx512_fp16", "avx_vnni", "avx_ne_convert", "amx_tile", "amx_bf16",
                              "amx_int8", "amx_fp16")
# TensorFlow's own rule on Linux x86 (DefaultOneDnnPolicy in tensorflow/core/util/port.cc).
TF_ONEDNN_ISA: tuple[str, ...] = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
                                  "amx_bf16")
TF_SWITCH = "TF_ENABLE_ONEDNN_OPTS"


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), set()
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model or platform.machine(), flags


@functools.cache
def cpu(path: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU model, core count and the kernel-deciding ISA features present."""
    model, flags = _cpuinfo(path)
    return {
        "model": model,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if f in flags],
    }


def tf_onednn_default(info: dict[str, Any]) -> bool | None:
    """Whether TensorFlow turns oneDNN on by itself here (no TF_ENABLE_ONEDNN_OPTS); None: not known."""
    if not (sys.platform.startswith("linux") and info["machine"] in ("x86_64", "AMD64")):
        return None  # other platforms have their own rules (Windows, Arm Neoverse V1)
    return any(f in info["isa"] for f in TF_ONEDNN_ISA)


def tf_decision(info: dict[str, Any], env: Any = os.environ) -> tuple[str, str]:
    """(what TensorFlow's CPU kernels default to here, what decides them in this environment)."""
    default = tf_onednn_default(info)
    named = {True: "oneDNN", False: "Eigen", None: "decided by TensorFlow on this platform"}[default]
    value = env.get(TF_SWITCH)
    if value is not None and value.strip().lower() in ("1", "true", "0", "false"):
        return named, f"environment: {TF_SWITCH}={value}"
    present = [f for f in TF_ONEDNN_ISA if f in info["isa"]]
    if default is None:
        return named, "platform default"
    return named, (f"CPU: {', '.join(present)}" if present else "CPU: no AVX-512 VNNI/BF16, AVX-VNNI or AMX")


def tf_onednn_dtype(info: dict[str, Any], dtype: str) -> tuple[bool, str] | None:
    """Whether TensorFlow's oneDNN kernels take this dtype on this CPU, and the rule; None: not known.

    TensorFlow's IsDataTypeSupportedByOneDNNOnThisCPU (tensorflow/core/util/util.cc): float32 always;
    bfloat16 with AVX-512F or AVX-NE-CONVERT; float16 with AVX-512BW and AVX-512 FP16 or AMX-FP16, or
    with AVX-NE-CONVERT. Other dtypes (float64) have no oneDNN kernels. Ops on a dtype oneDNN does
    not take run TensorFlow's Eigen kernels even with oneDNN on.
    """
    if not (sys.platform.startswith("linux") and info["machine"] in ("x86_64", "AMD64")):
        return None  # Arm builds use oneDNN with ACL under rules of their own
    isa = set(info["isa"])
    fp16 = "avx512bw" in isa and bool({"avx512_fp16", "amx_fp16"} & isa)
    rules: dict[str, tuple[bool, str]] = {
        "float32": (True, "oneDNN takes float32"),
        "bfloat16": ("avx512f" in isa or "avx_ne_convert" in isa,
                     "oneDNN bfloat16 needs AVX-512F or AVX-NE-CONVERT"),
        "float16": (fp16 or "avx_ne_convert" in isa,
                    "oneDNN float16 needs AVX-512 FP16 or AMX-FP16 (with AVX-512BW), or AVX-NE-CONVERT"),
    }
    return rules.get(dtype, (False, f"oneDNN has no {dtype} kernels"))


def pin(cpu_kernels: str, jax_cache: Path | None, jax_mlir_context: str) -> None:
    """Set what must be in the environment before TensorFlow and JAX are imported."""
    os.environ[JAX_MLIR_CONTEXT_ENV] = jax_mlir_context
    if cpu_kernels == "onednn":
        os.environ[TF_SWITCH] = "1"
    elif cpu_kernels == "reference":
        os.environ[TF_SWITCH] = "0"
    if jax_cache is not None:
        os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "true"  # an earlier `off` in this process
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(jax_cache)
        # Eager lax ops compile in ~50 ms, under JAX's default 1 s threshold for caching.
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    else:
        os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"


def default_jax_cache() -> Path:
    """A per-user directory: $EQUIV_JAX_CACHE, else $XDG_CACHE_HOME/equiv/jax, else ~/.cache/equiv/jax."""
    if os.environ.get("EQUIV_JAX_CACHE"):
        return Path(os.environ["EQUIV_JAX_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "equiv" / "jax"


# The thread pools each framework sizes from these (torch and oneDNN: OpenMP; TensorFlow: its own).
THREAD_VARS: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                "TF_NUM_INTEROP_THREADS")


def worker_threads(env: Any = os.environ, cores: int | None = None) -> int | None:
    """Threads for this pytest-xdist worker's pools: its share of the cores; None outside xdist.

    Each framework sizes its thread pools to every core it sees, so n workers each running n-thread
    pools oversubscribe the machine (torch's OpenMP threads spin while they wait: 1 s of torch calls
    in one process took 9 s in two workers on two cores).
    """
    count = env.get("PYTEST_XDIST_WORKER_COUNT")
    if not count or not count.isdigit() or int(count) < 1:
        return None
    return max(1, (cores or usable_cores()) // int(count))


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB; None where the OS does not say."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes there, KiB on Linux


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_cores(env: Any = os.environ) -> int | None:
    """Size an xdist worker's thread pools before any framework is imported; the threads, or None."""
    threads = worker_threads(env)
    if threads is not None:
        for var in THREAD_VARS:
            env.setdefault(var, str(threads))  # a user's own setting wins
    return threads


LIBRARIES = ("numpy", "ml_dtypes", "keras", "hypothesis", "pytest", "pytest-xdist")


def library_versions() -> dict[str, str | None]:
    """Installed versions of what a result can depend on besides the frameworks (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def equiv_version() -> dict[str, str | None]:
    """equiv's own version, and the git commit of its checkout (+ "-dirty" with local changes), if any."""
    import subprocess
    from importlib import metadata

    try:
        version: str | None = metadata.version("equiv")
    except metadata.PackageNotFoundError:
        version = None
    root = Path(__file__).resolve().parent.parent
    commit = None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10, check=False)
            commit = head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass  # no git here (an installed wheel): the version alone
    return {"version": version, "commit": commit}

