"""A framework added from outside equiv, through the `equiv.frameworks` entry point, as a plugin would.

The dummy plugin is a distribution written into the test's tmp dir (a dist-info whose
entry_points.txt names its registrations, beside its package): on PYTHONPATH, a pytest run finds it
by its metadata alone, exactly as it finds equiv's own four.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from pathlib import Path

import pytest

from equiv import Case, Unsupported, frameworks
from equiv.frameworks import CASE_API, Framework, Registration

pytest_plugins = ["pytester"]

# The plugin's registrations: read without importing its framework. `ghost` names a package that is
# not installed, `broken` an object that does not exist.
REGISTRATIONS = '''
from equiv.frameworks import Registration

DUMMY = Registration("dummy", "equiv_dummy.adapter", ("equiv_dummy",), ("equiv-dummy",), "equiv-dummy")
GHOST = Registration("ghost", "equiv_dummy.ghost", ("equiv_ghost_runtime",), ("equiv-ghost",), "equiv-ghost")
'''
ENTRY_POINTS = """[equiv.frameworks]
dummy = equiv_dummy:DUMMY
ghost = equiv_dummy:GHOST
broken = equiv_dummy:MISSING
"""
# A framework made of NumPy: conv through the oracle (float64, rounded once to the item's dtype), the
# runtime, and Unsupported for the rest of the case API: the whole Framework Protocol.
ADAPTER = '''
"""A NumPy "framework" for equiv's plugin test."""
import contextlib

import numpy as np

from equiv import oracle
from equiv.frameworks import CASE_API, Unsupported

name = "dummy"
OWN = ()


def conv(x, w, b=None, *, stride=1, padding="valid", dilation=1, groups=1, layout="channels_first"):
    y = oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    return y.astype(x.dtype)


def _refuses(api):
    def refuse(*args, **kwargs):
        raise Unsupported(f"dummy has no {api}")
    refuse.__name__ = api
    return refuse


for _api in CASE_API:
    globals().setdefault(_api, _refuses(_api))


def version(): return "0.1"
def gpus(): return []
def environment(): return {"version": version(), "devices": ["cpu"]}
def precision(mode): return contextlib.nullcontext()
def precision_state(): return {}
def cpu_kernels(mode): return contextlib.nullcontext()
def cpu_kernel_state(): return {"library": "numpy", "default": "numpy", "decided_by": "numpy"}
def cpu_kernel_library(dtype): return "numpy"
def compile_stats(): return {}
def execute(fn, key, arrays): return fn(**arrays)
def release(key): pass
def scope(device):
    if device != "cpu":
        raise Unsupported("dummy runs on the CPU only")
    return contextlib.nullcontext()
def asarray(a, device): return np.array(a)
def to_numpy(t): return np.asarray(t)
def device_of(t): return "cpu"
'''
# A claim with a variant every framework runs (L6) and, at L7, one only the built-in three run.
CASE = '''
"""A 1-D conv equals the oracle (a small claim for the plugin test)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"L": [6, 7]}, dtypes=("float32", "float64"))


@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout="channels_last", spatial=[p.L], kernel=[3], channels=2, out_channels=3)


@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, layout="channels_last")


@case.variant(when=lambda p: p.L == 6)
def native(fw, p, x, w, b):
    return fw.conv(x, w, b, layout="channels_last")


@case.variant(frameworks=["torch", "tensorflow", "jax"], when=lambda p: p.L == 7)
def builtins_only(fw, p, x, w, b):
    return fw.conv(x, w, b, layout="channels_last")
'''


def install_dummy_plugin(site: Path) -> Path:
    """The plugin as pip would leave it: its package and its dist-info, in `site`."""
    (site / "equiv_dummy").mkdir(parents=True)
    (site / "equiv_dummy" / "__init__.py").write_text(REGISTRATIONS)
    (site / "equiv_dummy" / "adapter.py").write_text(ADAPTER)
    info = site / "equiv_dummy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: equiv-dummy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture
def plugin_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    site = install_dummy_plugin(pytester.path / "site")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "small_conv1d.py").write_text(CASE)
    return pytester


def test_a_plugin_framework_gets_a_column_and_skips_where_it_cannot_run(
        plugin_suite: pytest.Pytester) -> None:
    # A fresh process, as a user's run: the registry is read from the installed metadata at start.
    result = plugin_suite.runpytest_subprocess("-p", "no:cacheprovider", "--equiv-device", "cpu", "-rs",
                                               "--equiv-framework", "dummy,ghost,broken")
    out = result.stdout.str()
    # native at L6 passes in dummy (ghost and broken skip); at L7 each plugin's no_variant_for_* skips.
    result.assert_outcomes(passed=2, skipped=6)
    header = next(line for line in out.splitlines() if line.startswith("case "))
    assert header.split()[1:4] == ["broken/cpu", "dummy/cpu", "ghost/cpu"]  # plugins by name
    row = next(line for line in out.splitlines() if line.startswith("small_conv1d "))
    assert row.split()[1:] == ["4", "skip", "2", "ok", "2", "skip", "4", "skip"]
    assert "dummy: no variant of this claim runs it here (the variants at this point, builtins_only, " \
           "name other frameworks)" in out
    assert "ghost is not installed: no equiv_ghost_runtime (pip install 'equiv-ghost')" in out
    assert "broken is registered but its entry point 'equiv_dummy:MISSING' failed to load" in out


def test_every_registered_name_is_an_option_value_built_ins_first(plugin_suite: pytest.Pytester) -> None:
    result = plugin_suite.runpytest_subprocess("-p", "no:cacheprovider", "--equiv-framework", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("--equiv-framework: unknown value(s) nosuch; choose from torch, tensorflow, jax, broken, dummy, "
            "ghost, onnxruntime") in result.stderr.str()


def test_the_dummy_adapter_meets_the_framework_protocol(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's contract: a plugin's adapter defines every name of the Protocol."""
    monkeypatch.syspath_prepend(str(install_dummy_plugin(pytester.path / "site")))
    import equiv_dummy.adapter as adapter

    protocol = {name for name, _ in inspect.getmembers(Framework, inspect.isfunction)}
    assert not [name for name in protocol if not callable(getattr(adapter, name, None))]
    with pytest.raises(Unsupported, match="dummy has no dense"):
        adapter.dense(None, None)
    assert set(CASE_API) <= protocol


def test_equivs_own_frameworks_register_through_the_entry_point() -> None:
    """torch, TensorFlow, JAX and ONNX Runtime take the plugins' path: equiv's pyproject.toml names them."""
    own = {ep.name: ep for ep in importlib.metadata.entry_points(group=frameworks.GROUP)
           if ep.value.startswith("equiv.frameworks:")}
    assert set(own) == {"torch", "tensorflow", "jax", "onnxruntime"}
    for name, ep in own.items():
        assert ep.load() == frameworks.registration(name)
    assert frameworks.NAMES[:3] == frameworks.BUILTIN


def _torch_only_case() -> Case:
    """torch everywhere; every framework at L6 only."""
    case = Case(grid={"L": [6, 7]}, dtypes=("float32",))

    @case.inputs
    def draw(rng: object, p: object) -> dict[str, object]:
        return {}

    @case.oracle
    def expected(p: object) -> float:
        return 0.0

    @case.variant(frameworks=["torch"])
    def torch_everywhere(fw: object, p: object) -> float:
        return 0.0

    @case.variant(when=lambda p: p.L == 6)
    def every_framework_at_l6(fw: object, p: object) -> float:
        return 0.0

    return case


def test_a_variant_without_frameworks_runs_in_whatever_is_registered_when_it_is_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = _torch_only_case()
    everywhere = case.declared[1]
    assert everywhere.only is None and everywhere.frameworks == frameworks.names()
    # A plugin registered after the case file was imported still runs its variants without frameworks=.
    plugin = Registration("later", "later.adapter", ("later",), ("later",), "later")
    monkeypatch.setattr(frameworks, "_registry", {**frameworks._registry, "later": plugin})
    assert "later" in everywhere.frameworks
    # Where none does (L7: only the torch variant), the plugin skips with the reason; the built-ins'
    # gaps stay a collection error.
    gap = next(v for v in case.variants if v.name == "no_variant_for_later")
    l6, l7 = (p.at("float32", "cpu") for p in case.points())
    assert gap.frameworks == ("later",) and not gap.applies(l6) and gap.applies(l7)
    with pytest.raises(Unsupported, match="no variant of this claim runs it here"):
        gap.fn(None, l7)
    problems = " ".join(case.problems())
    assert "tensorflow at 1 grid point(s), e.g. [L7]" in problems and "later" not in problems
