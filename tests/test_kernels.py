"""CPU kernel libraries, framework crashes and known defects, driven with pytester."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from equiv import defects, frameworks, machine

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CASE = '''
"""A conv in channels_last equals the oracle; plus a planted crash (the plugin's own tests)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last"], "L": [6]}, dtypes=("float64",))

@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[3], channels=2, out_channels=3)

@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, layout=p.layout)

@case.variant
def native(fw, p, x, w, b):
    return fw.conv(x, w, b, layout=p.layout)

# The planted crash raises in a frame outside the case file, as a framework's kernel would: an
# exception raised by the case file's own code is the case's error, not the framework's.
_KERNEL = {}
exec(compile("def kernel():\\n    raise FloatingPointError('planted kernel crash\\\\n' + "
             "'a long framework traceback line\\\\n' * 50)\\n", "<framework kernel>", "exec"), _KERNEL)

@case.variant
def crashes(fw, p, x, w, b):
    if fw.name == "jax":
        _KERNEL["kernel"]()
    return fw.conv(x, w, b, layout=p.layout)
'''


pytestmark = pytest.mark.usefixtures("frameworks_imported_before_pytester")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nequiv_cases = cases\nequiv_known_defects = cases/known_defects.toml\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "small.py").write_text(CASE)
    return pytester


def run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_inprocess("-p", "no:cacheprovider", "--equiv-device", "cpu", "--equiv-jax-cache",
                                 "off", *args)


def defect(**fields: object) -> str:
    entry = {
        "id": "planted", "items": "small::crashes[jax-*]", "framework": "jax",
        "upstream": "https://github.com/jax-ml/jax/issues/1", "summary": "planted defect",
        "raises": "FloatingPointError", "match": "planted kernel crash", **fields,
    }
    lines = ["[[defect]]"] + [
        f"{k} = {json.dumps(v)}" for k, v in entry.items() if v is not None and v != ""
    ]
    return "\n".join(lines) + "\n"


def test_a_framework_crash_is_an_error_in_one_line(suite: pytest.Pytester) -> None:
    report = suite.path / "r.json"
    result = run(suite, "--equiv-framework", "jax,torch", f"--equiv-report={report}")
    result.assert_outcomes(passed=1, errors=1)  # one input, two frameworks: jax crashes, torch passes
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "FloatingPointError: planted kernel crash (raised under small.py:" in out
    assert "a long framework traceback line" not in out  # the type and one line, not the traceback
    assert "1 E" in out  # the matrix counts it
    assert "(torch passed)" in out  # the item says how the other framework on its input fared
    [record] = [r for r in json.loads(report.read_text())["results"] if r["outcome"] != "passed"]
    assert record["outcome"] == "error" and record["exception"] == "FloatingPointError"
    assert record["id"] == "small::crashes[jax-cpu-float64-channels_last-L6]"


def test_a_known_defect_that_shows_its_symptom_is_xfailed(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect())
    report = suite.path / "r.json"
    result = run(suite, "--equiv-framework", "jax", f"--equiv-report={report}", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*known defect planted (https://github.com/jax-ml/jax/issues/1)*"])
    [record] = [r for r in json.loads(report.read_text())["results"] if r["variant"] == "crashes"]
    assert record["outcome"] == "xfailed" and record["known_defect"] == "planted"


def test_a_known_defect_applies_to_every_seed_of_the_id_it_names(suite: pytest.Pytester) -> None:
    # Patterns name ids without a seed; a many-seed session's ids end in -seedN.
    exact = defect(items="small::crashes[jax-cpu-float64-channels_last-L6]")
    (suite.path / "cases" / "known_defects.toml").write_text(exact)
    result = run(suite, "--equiv-framework", "jax", "--equiv-seed", "1-2", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/small.py::crashes[cpu-float64-channels_last-L6-seed2]"])
    run(suite, "--equiv-framework", "jax", "--equiv-seed", "1-2").assert_outcomes(passed=2, xfailed=2)


def test_an_items_outcome_comes_from_every_framework_it_ran(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """One item runs jax and torch on one input: jax's known defect xfails it only while torch passes."""
    (suite.path / "cases" / "known_defects.toml").write_text(defect())
    report = suite.path / "r.json"
    args = ("--equiv-framework", "jax,torch", "-k", "crashes", f"--equiv-report={report}", "-rx")
    result = run(suite, *args)
    result.assert_outcomes(xfailed=1)
    outcomes = {r["framework"]: r["outcome"] for r in json.loads(report.read_text())["results"]}
    assert outcomes == {"jax": "xfailed", "torch": "passed"}

    torch_fw = frameworks.load("torch")
    conv = torch_fw.conv
    monkeypatch.setattr(torch_fw, "conv", lambda *a, **k: conv(*a, **k) * 1.5)  # planted: torch wrong
    result = run(suite, *args)
    result.assert_outcomes(failed=1)  # the known defect does not hide another framework's failure
    out = result.stdout.str()
    assert "small::crashes[torch-cpu-float64-channels_last-L6]" in out and "(jax xfailed)" in out
    outcomes = {r["framework"]: r["outcome"] for r in json.loads(report.read_text())["results"]}
    assert outcomes == {"jax": "xfailed", "torch": "failed"}


def test_a_known_defect_that_no_longer_reproduces_fails_strictly(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(
        defect(items="small::native[jax-*]")
    )
    result = run(suite, "--equiv-framework", "jax")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*no longer reproduces: remove or narrow entry 'planted'*"])


def test_a_covered_item_outside_always_may_pass(suite: pytest.Pytester) -> None:
    # `always` names the items that show the symptom whatever the draw; another covered one may pass.
    entry = defect(items="small::native[jax-*]", always=["small::crashes[jax-*]"])
    (suite.path / "cases" / "known_defects.toml").write_text(entry)
    run(suite, "--equiv-framework", "jax").assert_outcomes(passed=1, errors=1)


def test_a_band_absorbs_only_drift_inside_it(suite: pytest.Pytester) -> None:
    # jax's native float16 result is off by 1.0 everywhere: about 1/(u * sum|x||w|) half_ulps.
    off = CASE.replace("def native(fw, p, x, w, b):\n    return fw.conv(x, w, b, layout=p.layout)\n",
                       "def native(fw, p, x, w, b):\n    return fw.conv(x, w, b, layout=p.layout) + 1.0\n")
    off = off.replace('dtypes=("float64",)', 'dtypes=("float16",)')
    assert off.count("+ 1.0") == 1 and "float16" in off
    (suite.path / "cases" / "small.py").write_text(off)
    band = {"items": "small::native[jax-*]", "raises": "", "match": None, "outputs": ["out"],
            "no_model": "planted", "dtypes": ["float16"]}
    (suite.path / "cases" / "known_defects.toml").write_text(defect(**band, band=[0, 1e9]))
    report = suite.path / "r.json"
    run(suite, "--equiv-framework", "jax", f"--equiv-report={report}").assert_outcomes(xfailed=1, errors=1)
    [record] = [r for r in json.loads(report.read_text())["results"] if r["variant"] == "native"]
    assert record["known_outputs"] == {"out": "planted"} and record["known_fit"]["out"] > 10
    (suite.path / "cases" / "known_defects.toml").write_text(defect(**band, band=[0, 10]))
    result = run(suite, "--equiv-framework", "jax")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*does not match known defect(s) planted, which expects half_ulps in "
                                 "[[]0, 10[]] on out: this is something else*"])
    other_output = defect(**{**band, "outputs": ["dx"]}, band=[0, 1e9])
    (suite.path / "cases" / "known_defects.toml").write_text(other_output)
    run(suite, "--equiv-framework", "jax").assert_outcomes(failed=1, errors=1)  # another output's band


def test_the_first_entry_whose_condition_holds_applies(suite: pytest.Pytester) -> None:
    # Two entries cover the item; the first is for oneDNN (XLA:CPU runs Eigen), so the second applies.
    (suite.path / "cases" / "known_defects.toml").write_text(
        defect(id="onednn_only", cpu_kernels="oneDNN") + defect(id="any_kernels"))
    report = suite.path / "r.json"
    run(suite, "--equiv-framework", "jax", f"--equiv-report={report}").assert_outcomes(passed=1, xfailed=1)
    [record] = [r for r in json.loads(report.read_text())["results"] if r["variant"] == "crashes"]
    assert record["known_defect"] == "any_kernels"


def test_a_known_defect_whose_condition_does_not_hold_is_ignored(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect(versions="<0.1"))
    result = run(suite, "--equiv-framework", "jax")
    result.assert_outcomes(passed=1, errors=1)
    # The error names the entry that covers it at other releases, and its range.
    result.stdout.fnmatch_lines(["*known defect planted covers this item at jax <0.1, not at *measure its "
                                 "range again*"])
    (suite.path / "cases" / "known_defects.toml").write_text(defect(cpu_kernels="oneDNN"))
    run(suite, "--equiv-framework", "jax").assert_outcomes(passed=1, errors=1)  # XLA:CPU runs Eigen


def test_a_different_failure_is_not_absorbed(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect(match="another message"))
    result = run(suite, "--equiv-framework", "jax")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*known defect(s) planted, which expects FloatingPointError matching*"])


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ("renamed_case::crashes[jax-*]", "names no case file"),
        ("small::renamed_variant[jax-*]", "matches none of the items its case defines"),
    ],
)
def test_an_entry_that_matches_nothing_warns(suite: pytest.Pytester, items: str, why: str) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect(items=items))
    result = run(suite, "--equiv-framework", "jax")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*KnownDefectWarning: known-defect entry 'planted'*{why}*"])


def test_an_entry_widened_for_points_off_the_grid_does_not_warn(suite: pytest.Pytester) -> None:
    # Fuzzing draws points no grid names (a length of 99); the case, variant, framework, device and
    # dtype exist, so the pattern is not stale.
    (suite.path / "cases" / "known_defects.toml").write_text(defect(items="small::crashes[jax-cpu-*-L99-*]"))
    result = run(suite, "--equiv-framework", "jax")
    assert "KnownDefectWarning" not in result.stdout.str()


def test_an_entry_for_an_unselected_framework_does_not_warn(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect())
    result = run(suite, "--equiv-framework", "torch")  # the entry's items exist, just not selected
    result.assert_outcomes(passed=2)
    assert "KnownDefectWarning" not in result.stdout.str()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"upstream": "see slack"}, "upstream must be the https:// address"),
        ({"raises": ""}, "give exactly one symptom"),
        ({"model": "sequential"}, "give exactly one symptom"),
        ({"raises": "", "match": None, "model": "diagonal", "site": "conv", "dtypes": ["float16"]},
         "model 'diagonal' unknown"),
        ({"raises": "", "match": None, "model": "sequential", "site": "winograd", "dtypes": ["float16"]},
         "site 'winograd' unknown"),
        ({"raises": "", "match": None, "model": "sequential", "site": "conv", "dtypes": ["float32"]},
         "an error model emulates half-precision sums"),
        ({"raises": "", "match": None, "band": [1, 2], "outputs": ["out"], "dtypes": ["float16"]},
         "a band needs outputs"),
        ({"raises": "", "match": None, "band": [1, 2], "outputs": ["out"], "no_model": "why"},
         "a band measures half-precision drift"),
        ({"raises": "", "band": [1, 2], "outputs": ["out"], "no_model": "why"}, "match reads an error"),
        ({"raises": "", "match": None, "returns": "float128"}, "returns 'float128' unknown"),
        ({"versions": "newer than 2"}, "is not a version range"),
        ({"framework": "pytorch"}, "framework 'pytorch' unknown"),
        ({"items": "crashes[jax-*]"}, "items must be patterns like 'case::variant["),
        ({"differs": True}, "unknown key(s) ['differs']"),
        ({"severity": "high"}, "unknown key(s) ['severity']"),
    ],
)
def test_a_broken_defects_file_is_a_usage_error_naming_the_entry(
    suite: pytest.Pytester, fields: dict[str, object], message: str
) -> None:
    (suite.path / "cases" / "known_defects.toml").write_text(defect(**fields))
    result = run(suite, "--equiv-framework", "jax")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "known_defects.toml: entry 'planted':" in err and message in err


def test_the_projects_defects_file_loads() -> None:
    entries = defects.load(ROOT / "cases" / "known_defects.toml")
    assert entries and all(d.upstream.startswith("https://github.com/") for d in entries)


# --- the machine -------------------------------------------------------------------------------

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni

processor\t: 1
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni
"""


def test_cpu_model_and_isa_are_read_from_cpuinfo(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = machine.cpu(path)
    assert info["model"] == "Example CPU @ 2.0GHz"
    assert info["isa"] == ["avx2", "fma", "avx512f", "avx512_vnni"]


@pytest.mark.parametrize(
    ("isa", "env", "default", "why"),
    [
        (["avx2", "fma"], {}, "Eigen", "CPU: no AVX-512 VNNI/BF16, AVX-VNNI or AMX"),
        (["avx2", "avx512f", "avx512_vnni"], {}, "oneDNN", "CPU: avx512_vnni"),
        (["avx2", "amx_tile"], {"TF_ENABLE_ONEDNN_OPTS": "0"}, "oneDNN",
         "environment: TF_ENABLE_ONEDNN_OPTS=0"),
        (["avx2"], {"TF_ENABLE_ONEDNN_OPTS": "1"}, "Eigen", "environment: TF_ENABLE_ONEDNN_OPTS=1"),
        (["avx2"], {"TF_ENABLE_ONEDNN_OPTS": "maybe"}, "Eigen", "CPU: no AVX-512 VNNI/BF16, AVX-VNNI or AMX"),
    ],
)
def test_tensorflow_kernel_decision_follows_its_own_rule(
    isa: list[str], env: dict[str, str], default: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine.sys, "platform", "linux")
    info = {"model": "x", "machine": "x86_64", "cores": 2, "isa": isa}
    assert machine.tf_decision(info, env) == (default, why)


@pytest.mark.parametrize(
    ("isa", "expected"),
    [
        # AMD Zen 4: AVX-512 with BF16 but no FP16, so TensorFlow's float16 ops run Eigen under oneDNN.
        (["avx2", "avx512f", "avx512bw", "avx512_bf16"],
         {"float32": True, "float64": False, "bfloat16": True, "float16": False}),
        (["avx2", "avx512f", "avx512bw", "avx512_fp16", "amx_bf16"], {"float16": True, "bfloat16": True}),
        (["avx2", "avx512f", "amx_fp16"], {"float16": False}),  # AMX-FP16 counts only with AVX-512BW
        (["avx2", "avx_ne_convert"], {"float16": True, "bfloat16": True}),
        (["avx2", "fma"], {"float32": True, "bfloat16": False, "float16": False}),
    ],
)
def test_tensorflow_onednn_dtypes_follow_its_own_rule(
    isa: list[str], expected: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine.sys, "platform", "linux")
    info = {"model": "x", "machine": "x86_64", "cores": 2, "isa": isa}
    for dtype, supported in expected.items():
        rule = machine.tf_onednn_dtype(info, dtype)
        assert rule is not None and rule[0] is supported, (dtype, rule)
    assert machine.tf_onednn_dtype({**info, "machine": "aarch64"}, "float16") is None


def test_torch_sends_a_half_dtype_mkldnn_does_not_take_to_aten(monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.frameworks import torch as torch_fw

    monkeypatch.setattr(torch_fw, "_mkldnn_takes", lambda dtype: dtype == "bfloat16")
    with torch_fw.cpu_kernels("onednn"):
        assert torch_fw.cpu_kernel_library("float32") == "oneDNN (mkldnn)"
        assert torch_fw.cpu_kernel_library("bfloat16") == "oneDNN (mkldnn)"
        assert torch_fw.cpu_kernel_library("float16") == "ATen native"
        assert torch_fw.cpu_kernel_library("float64") == "ATen native"
        assert "_is_mkldnn_fp16_supported" in torch_fw.cpu_kernel_state()["by_dtype"]["float16"]["why"]
    with torch_fw.cpu_kernels("reference"):
        assert torch_fw.cpu_kernel_library("bfloat16") == "ATen native"


def test_a_defect_conditioned_on_kernels_applies_by_the_items_dtype(suite: pytest.Pytester) -> None:
    # mkldnn is on, but float64 convs run ATen's own kernels: an entry for ATen native applies to the
    # float64 item, and as the item passes, this strict entry fails it ("no longer reproduces").
    entry = defect(items="small::native[torch-*]", framework="torch",
                   upstream="https://github.com/pytorch/pytorch/issues/1", cpu_kernels="ATen native")
    (suite.path / "cases" / "known_defects.toml").write_text(entry)
    report = suite.path / "r.json"
    result = run(suite, "--equiv-framework", "torch", "--equiv-cpu-kernels", "onednn", "-k", "native",
                 f"--equiv-report={report}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no longer reproduces*planted*",
                                 "CPU kernels (--equiv-cpu-kernels onednn): torch oneDNN (mkldnn) "
                                 "(torch.backends.mkldnn.enabled), except float64 ATen native (mkldnn has no "
                                 "float64)*"])
    [record] = json.loads(report.read_text())["results"]
    assert record["cpu_kernels"] == "ATen native"


def _tensorflow_run(
    tmp_path: Path, kernels: str, *select: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A fresh process: TensorFlow picks its kernels at import, so each setting needs its own."""
    report = tmp_path / f"{kernels}.json"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "cases" / "conv_transpose.py"), "-p", "no:cacheprovider",
         "-p", "no:xdist", "-q", "-rx", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
         "--equiv-framework", "tensorflow", "--equiv-device", "cpu", "--equiv-dtype", "float32",
         "--equiv-cpu-kernels", kernels, f"--equiv-report={report}", *select],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=300,
    )
    return proc, json.loads(report.read_text())


@pytest.mark.skipif(not frameworks.is_installed("tensorflow"), reason="needs tensorflow")
def test_tensorflow_transposed_conv_under_both_kernel_libraries(tmp_path: Path) -> None:
    # The d2/op1 items are where requesting full + output_padding from tf.nn.conv_transpose aborts in
    # oneDNN: the native mapping must pass there, and the users' spelling is the known defect.
    select = ("-k", "k3-d2 and op1 and (native or tf_output_shape)")
    onednn, report = _tensorflow_run(tmp_path, "onednn", *select)
    assert onednn.returncode == 0, onednn.stdout[-3000:]
    outcomes = {r["variant"]: set() for r in report["results"]}
    for r in report["results"]:
        outcomes[r["variant"]].add(r["outcome"])
    assert outcomes == {"native": {"passed"}, "tf_output_shape": {"xfailed"}}
    tf_env = report["environment"]["frameworks"]["tensorflow"]
    assert tf_env["cpu_kernels"]["library"] == "oneDNN"
    assert "CPU kernels (--equiv-cpu-kernels onednn): tensorflow oneDNN" in onednn.stdout

    eigen, report = _tensorflow_run(tmp_path, "reference", *select)
    assert eigen.returncode == 1, eigen.stdout[-3000:]  # every result skipped: nothing ran
    assert "equiv: no result ran, all 12 skipped" in eigen.stdout
    assert report["environment"]["frameworks"]["tensorflow"]["cpu_kernels"]["library"] == "Eigen"
    skips = [r["reason"] for r in report["results"] if r["outcome"] == "skipped"]
    assert skips and all("CPU kernels Eigen (environment: TF_ENABLE_ONEDNN_OPTS=0)" in s for s in skips)


def test_the_kernels_that_ran_are_recorded_and_shown(suite: pytest.Pytester) -> None:
    report = suite.path / "r.json"
    result = run(suite, "--equiv-framework", "jax,torch", "--equiv-cpu-kernels", "reference", "-k", "native",
                 f"--equiv-report={report}", "--equiv-markdown=m.md")
    result.assert_outcomes(passed=1)  # one item: torch and jax on one input
    data = json.loads(report.read_text())
    env = data["environment"]
    assert env["cpu_kernels_requested"] == "reference" and env["cpu"]["model"]
    assert env["frameworks"]["torch"]["cpu_kernels"]["library"] == "ATen native"  # mkldnn pinned off
    assert env["frameworks"]["jax"]["cpu_kernels"]["library"] == "XLA:CPU Eigen"
    assert {r["framework"]: r["cpu_kernels"] for r in data["results"]} == {
        "torch": "ATen native", "jax": "XLA:CPU Eigen"}
    header = "CPU kernels (--equiv-cpu-kernels reference): torch ATen native*; jax XLA:CPU Eigen*"
    result.stdout.fnmatch_lines(["CPU: *cores; ISA: *", header])
    markdown = (suite.path / "m.md").read_text()
    assert "CPU kernels (--equiv-cpu-kernels reference): torch ATen native" in markdown


def test_the_test_session_runs_both_kernel_settings() -> None:
    source = (ROOT / "noxfile.py").read_text()
    tests = source[source.index("def tests("):source.index("def stress(")]
    assert '"--equiv-cpu-kernels", "onednn"' in tests and '"--equiv-cpu-kernels", "reference"' in tests


def test_a_model_spec_with_an_unknown_or_malformed_layer_is_named() -> None:
    from equiv.frameworks import check_layers

    check_layers([("conv", None, None), ("relu",), ("max_pool", 2), ("flatten",), ("dense", None, None)])
    for bad in [("softmax",), ("conv", None), ()]:
        message = r"sequential_vjp: layer 1 is .*; each is one of \('conv', w, b\)"
        with pytest.raises(ValueError, match=message):
            check_layers([("relu",), bad])
