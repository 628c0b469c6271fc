"""equiv's pytest plugin: hooks only. Registered through the `pytest11` entry point."""

from __future__ import annotations

import gc
import re
import sys
import time
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from equiv import defects, frameworks, machine, runner
from equiv.config import SELECTIONS, VALUES_OPTION, Config, OptionError, from_options
from equiv.distribute import outputs, slicing
from equiv.fuzz import PROFILES as FUZZ_PROFILES
from equiv.items import (
    CONFIG_KEY,
    DEFECTS_KEY,
    DEFINED_KEY,
    OUTPUTS_KEY,
    CaseFile,
    CaseItem,
    FuzzItem,
)
from equiv.machine import CPU_KERNELS, JAX_MLIR_CONTEXTS
from equiv.records import Outcome, only_crashes, results_of
from equiv.report import Reporter, process_environment


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("equiv", "equiv: cross-framework convolution equivalence")
    for option, dest, choices, text in SELECTIONS:
        group.addoption(
            option, dest=dest, action="append", metavar=",".join(choices),
            help=f"{text} (repeatable or comma-separated; default: all of {', '.join(choices)})",
        )
    option, dest, choices, text = VALUES_OPTION
    group.addoption(option, dest=dest, action="append", metavar=",".join(choices),
                    help=f"{text} (repeatable or comma-separated)")
    group.addoption("--equiv-seed", dest="equiv_seed", default="0", metavar="N|A-B|A,B",
                    help="seed(s) for every case's inputs (inputs depend on case, params and seed "
                         "only); several seeds run in one session, each item once per seed")
    group.addoption("--equiv-report", dest="equiv_report", metavar="PATH", help="write the JSON report here")
    group.addoption("--equiv-markdown", dest="equiv_markdown", metavar="PATH",
                    help="write the case x framework/device matrix as a Markdown table")
    group.addoption("--equiv-precision", dest="equiv_precision", default="ieee", metavar="ieee,tf32",
                    help="float32 on GPU: ieee (TF32 off, the default) or tf32 (allowed, judged as such)")
    group.addoption("--equiv-cpu-kernels", dest="equiv_cpu_kernels", default="default",
                    metavar=",".join(CPU_KERNELS),
                    help="CPU kernel libraries: default (as this machine and environment pick), onednn "
                         "(TensorFlow oneDNN on, torch mkldnn on) or reference (TensorFlow Eigen, torch "
                         "mkldnn off); set before any framework is imported, in every worker")
    group.addoption("--equiv-jax-cache", dest="equiv_jax_cache", metavar="DIR|off",
                    help="JAX's persistent compilation cache (default: $EQUIV_JAX_CACHE, else "
                         "~/.cache/equiv/jax); off to compile everything afresh")
    group.addoption("--equiv-jax-mlir-context", dest="equiv_jax_mlir_context", default="shared",
                    metavar=",".join(JAX_MLIR_CONTEXTS),
                    help="shared (the default): JAX lowers programs into one reused MLIR context, "
                         "the same program bytes without ~7 ms per program; per-program: JAX's own, a "
                         "new context for each")
    group.addoption("--equiv-require-framework", dest="equiv_require_framework", action="append",
                    metavar=",".join(frameworks.NAMES),
                    help="the run fails at start if one of these frameworks is not installed (a run "
                         "without it would only skip)")
    group.addoption("--equiv-require-device", dest="equiv_require_device", action="append", metavar="cuda",
                    help="an item on this device that cannot run fails instead of skipping; the run "
                         "fails at start if a selected framework sees no such device")
    group.addoption("--equiv-repeat", dest="equiv_repeat", type=int, default=1, metavar="N",
                    help="run each item N times on the same inputs and report bitwise differences")
    group.addoption("--equiv-require-deterministic", dest="equiv_require_deterministic",
                    action="store_true", help="with --equiv-repeat: a bitwise difference is a failure")
    group.addoption("--equiv-heatmaps", dest="equiv_heatmaps", metavar="DIR",
                    help="write a PNG of error_ratio per element for each failing 2-D output")
    group.addoption("--equiv-shard", dest="equiv_shard", metavar="K/N",
                    help="run the K-th of N deterministic, balanced slices of the selected items "
                         "(whole groups: every variant and seed of one params and dtype stay "
                         "together); merge the shards' reports with python -m equiv merge")
    group.addoption("--equiv-durations", dest="equiv_durations", metavar="REPORT.json",
                    help="with --equiv-shard: balance the slices by the item times an earlier "
                         "report recorded (default: by item count)")
    group.addoption("--equiv-label", dest="equiv_label", metavar="NAME",
                    help="name this run in its report (a GPU type, a kernel setting); "
                         "python -m equiv merge compares the same items across labels")
    group.addoption("--equiv-outputs", dest="equiv_outputs", metavar="PATH.npz",
                    help="keep every item's outputs and bounds, so python -m equiv merge can pair "
                         "items that ran in different shards or runs")
    group.addoption("--equiv-fuzz", dest="equiv_fuzz", type=int, default=0, metavar="N",
                    help="fuzz instead of the grid: N draws of each claim's domain per device and dtype, "
                         "each judged like a grid item; a failure shrinks to a one-line reproduction")
    group.addoption("--equiv-fuzz-minutes", dest="equiv_fuzz_minutes", type=float, default=0.0,
                    metavar="M", help="fuzz for about M minutes of wall time, shared by every "
                                      "claim, device and dtype (instead of --equiv-fuzz N)")
    group.addoption("--equiv-fuzz-profile", dest="equiv_fuzz_profile", default="local",
                    metavar=",".join(FUZZ_PROFILES),
                    help="ci: the same draws every run, no database; nightly and local (default): "
                         "random draws, failures kept in --equiv-fuzz-db and replayed first")
    group.addoption("--equiv-fuzz-db", dest="equiv_fuzz_db", metavar="DIR|off",
                    help="hypothesis's example database (default .hypothesis/equiv)")
    group.addoption("--equiv-defect-at-any-release", dest="equiv_defect_any_release", metavar="ID",
                    help="apply known-defect entry ID at every framework release, whatever its versions "
                         "say: to measure where its symptom shows (nox -s versions -- --defect ID)")
    group.addoption("--equiv-params", dest="equiv_params", metavar="NAME=VALUE,...",
                    help="run this one point of a case instead of its grid (a fuzz failure's reproduction "
                         "line gives it), e.g. 'nd=2,k=(5,3),padding=same'")
    parser.addini("equiv_cases", type="paths", default=["cases"],
                  help="directories whose *.py files are equiv case files")
    parser.addini("equiv_known_defects", type="paths", default=[],
                  help="the reviewed TOML file of known framework defects (see equiv/defects.py)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep items of one group on one xdist worker")
    try:
        cfg = from_options(config.getoption)
    except OptionError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[CONFIG_KEY] = cfg
    _warn_of_framework_keywords(config)
    try:
        config.stash[DEFECTS_KEY] = tuple(d for path in config.getini("equiv_known_defects")
                                          for d in defects.load(Path(path)))
    except defects.DefectFileError as e:
        raise pytest.UsageError(str(e)) from None
    # Before any framework import; workers inherit it.
    machine.pin(cfg.cpu_kernels, cfg.jax_cache, cfg.jax_mlir_context)
    config.stash[THREADS_KEY] = machine.share_cores()  # an xdist worker's share (else no change)
    # A broken case file is one collection error; every other case still runs (exit code stays 1).
    config.option.continue_on_collection_errors = True
    config.pluginmanager.register(EquivSession(config, cfg), "equiv-session")


def _warn_of_framework_keywords(config: pytest.Config) -> None:
    """`-k torch` once picked torch's items; a test now runs every framework, so its id names none."""
    keyword = str(config.getoption("keyword", "") or "")
    named = sorted(set(re.findall(r"[A-Za-z_]\w*", keyword)) & set(frameworks.NAMES))
    if named:
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"-k {keyword!r} names {', '.join(named)}, but test ids name no framework: a test runs "
            f"every selected framework on its input, so -k matches case and variant names only. "
            f"To choose frameworks, use --equiv-framework {','.join(named)}."), stacklevel=2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if call.when == "call" and isinstance(item, (CaseItem, FuzzItem)):
        item.attach(report)
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A framework crash is its own outcome: counted and listed as an error, not a failed comparison."""
    if report.when != "call" or not report.failed:  # asked of every report the terminal shows
        return None
    if only_crashes(r["outcome"] for r in results_of(report)):
        return "error", "E", "ERROR"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    """`-n N` without `--dist`: deal whole groups (loadgroup), before xdist picks `load` for it.

    A group is one case's params and dtype: its variants share the oracle's answer and its seeds
    share compiled programs, so one worker computes each once. (Any --dist pairs the frameworks: an
    item runs them all.)
    """
    option = config.option
    if getattr(option, "numprocesses", None) and option.dist == "no" and not option.distload:
        option.dist = "loadgroup"
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup (what equiv's items need) with bookkeeping linear in the items."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from equiv.distribute.scheduler import GroupScheduling

    return GroupScheduling(config, log)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    if file_path.suffix != ".py" or file_path.name.startswith(("_", "conftest")):
        return None
    roots = parent.config.getini("equiv_cases")
    if any(file_path.is_relative_to(Path(root)) for root in roots):
        return CaseFile.from_parent(parent, path=file_path)
    return None


THREADS_KEY = pytest.StashKey[int | None]()  # None: the frameworks size their own pools


class KnownDefectWarning(pytest.PytestWarning):
    """A known-defect entry that matches no collected item, or that absorbed nothing in a long run."""


class EquivSession:
    """Per-run hooks with the state they share (the reporter), as pytest-xdist's DSession does."""

    def __init__(self, config: pytest.Config, cfg: Config) -> None:
        self.config = config
        self.cfg = cfg
        self.is_worker = hasattr(config, "workerinput")
        self.reporter = Reporter(cfg)
        self.stale: set[str] = set()
        self.nothing_ran = ""  # why, when every result of the run skipped
        self.started = time.perf_counter()
        self.collection_seconds = 0.0
        self.outputs = config.stash[OUTPUTS_KEY] = outputs.Store()
        if cfg.outputs and not self.is_worker:
            for stale in outputs.part_files(cfg.outputs):  # an earlier run's parts must not join in
                stale.unlink()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        runner.clear_references()  # an in-process rerun (pytester) must not reuse another run's oracle
        if "tensorflow" in sys.modules and "tensorflow" in self.cfg.frameworks:
            try:  # imported before pytest_configure (a conftest): the pin came too late
                with frameworks.load("tensorflow").cpu_kernels(self.cfg.cpu_kernels):
                    pass
            except frameworks.NotInstalled:
                pass  # its items skip with that reason
            except RuntimeError as e:
                raise pytest.UsageError(str(e)) from None
        absent = [name for name in self.cfg.require_framework if not frameworks.is_installed(name)]
        if absent and not self.is_worker:
            hint = " ".join(f"'{frameworks.registration(name).install}'" for name in absent)
            raise pytest.UsageError(f"--equiv-require-framework: {', '.join(absent)} not installed; "
                                    f"pip install {hint}")
        if "cuda" in self.cfg.require_device and not self.is_worker:
            for name in self.cfg.frameworks:
                _require_gpu(name)

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, object, object]:
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            self.collection_seconds += time.perf_counter() - start

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        gc.freeze()  # the items live until the end: full collections need not rescan them
        # Tracing allocates by the million: at Python's default (700, 10, 10) the collector ran 19 full
        # and 3,064 younger collections in a CPU run, 2.4 s; at these, 2 and 426, 0.8 s; same peak RSS.
        gc.set_threshold(10_000, 20, 100)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.cfg.shard is None:
            return
        seconds = slicing.recorded_seconds(self.cfg.durations) if self.cfg.durations else None
        kept, dropped = slicing.split(items, *self.cfg.shard, seconds)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_worker:
            self.reporter.add(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        self.reporter.add_environment(output.get("equiv_environment", {}))
        self.reporter.add_timing(output.get("equiv_timing", {}))
        self.stale.update(output.get("equiv_stale_defects", ()))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        env = process_environment(self.cfg)
        case_files = [p.stem for root in self.config.getini("equiv_cases") for p in Path(root).glob("*.py")]
        stale = defects.stale(self.config.stash[DEFECTS_KEY], self.config.stash.get(DEFINED_KEY, {}),
                              case_files)
        timing = {
            "collection_seconds": self.collection_seconds,
            "threads": self.config.stash[THREADS_KEY],
            "peak_rss_mb": machine.peak_rss_mb(),
            "cpu_seconds": time.process_time(),  # every thread of this process, since it started
            "import_seconds": frameworks.import_seconds(),
            "compile": {fw.name: fw.compile_stats() for fw in frameworks.loaded() if fw.compile_stats()},
        }
        if self.is_worker:
            out = self.config.workeroutput  # type: ignore[attr-defined]
            out["equiv_environment"] = env
            out["equiv_stale_defects"] = stale
            out["equiv_timing"] = timing
            if self.cfg.outputs:
                self.outputs.write(outputs.part(self.cfg.outputs, self.config.workerinput["workerid"]))  # type: ignore[attr-defined]
            return
        self.reporter.add_environment(env)
        self.reporter.add_timing(timing)
        self.reporter.wall_seconds = time.perf_counter() - self.started
        if self.cfg.outputs:
            self.outputs.write(self.cfg.outputs, parts=True)
        self.reporter.write()
        self.nothing_ran = _nothing_ran(self.reporter.records)
        if self.nothing_ran and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if len(self.cfg.seeds) >= defects.SEEDS_TO_JUDGE:
            stale += defects.unused(self.reporter.records)
        for line in sorted(self.stale.union(stale)):  # pytest's warnings plugin wraps sessionfinish
            warnings.warn(KnownDefectWarning(line), stacklevel=1)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.nothing_ran:
            terminalreporter.write_line(self.nothing_ran, red=True)
        for line in sorted(self.reporter.case_errors):
            terminalreporter.write_line(f"case error (the case file's own code, no framework blamed): {line}",
                                        red=True)
        if not self.reporter.records:
            return
        terminalreporter.section("equiv matrix")
        for line in self.reporter.terminal_lines():
            terminalreporter.write_line(line)
        for path in (self.cfg.report, self.cfg.markdown):
            if path:
                terminalreporter.write_line(f"wrote {path}")


def _nothing_ran(records: list[dict[str, Any]]) -> str:
    """A run whose every result skipped tested nothing: say so, with the reasons (what to install)."""
    if not records or any(r["outcome"] != Outcome.SKIPPED for r in records):
        return ""
    reasons = sorted({r["reason"].split(" (--equiv-require")[0] for r in records})
    shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    return f"equiv: no result ran, all {len(records)} skipped ({shown}): the run fails"


def _require_gpu(name: str) -> None:
    """Strict mode fails the run at start rather than letting every cuda item skip."""
    try:
        fw = frameworks.load(name)
    except frameworks.NotInstalled as e:
        raise pytest.UsageError(f"--equiv-require-device cuda: {e}") from None
    if not fw.gpus():
        raise pytest.UsageError(
            f"--equiv-require-device cuda: {name} sees no GPU. Install its CUDA build "
            f"(nox -s equivalence -- --equiv-device cuda does) or leave {name} out with --equiv-framework."
        )
