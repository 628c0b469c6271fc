"""The plugin end to end, driven with pytester on small case files."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from equiv import frameworks
from equiv.records import FIELDS, results_of

pytest_plugins = ["pytester"]

CASE = '''
"""A conv in channels_last equals the oracle (a small claim for the plugin's own tests)."""
from equiv import Case, conv_inputs, oracle

case = Case(grid={"layout": ["channels_last"], "L": [6, 7]}, dtypes=("float32", "float64"))

@case.inputs
def draw(rng, p):
    return conv_inputs(rng, layout=p.layout, spatial=[p.L], kernel=[4], channels=2, out_channels=3)

@case.oracle
def expected(p, x, w, b):
    return oracle.conv(x, w, b, padding="same", layout=p.layout)

@case.variant
def native(fw, p, x, w, b):
    return fw.conv(x, w, b, padding="same", layout=p.layout)
'''


pytestmark = pytest.mark.usefixtures("frameworks_imported_before_pytester")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "small_conv.py").write_text(CASE)
    return pytester


def run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_items_have_readable_ids_and_pass(suite: pytest.Pytester) -> None:
    result = run(suite, "--equiv-device", "cpu", "--collect-only", "-q")
    out = result.stdout.str()
    assert "cases/small_conv.py::native[cpu-float32-channels_last-L6]" in out  # every framework in one
    assert "cases/small_conv.py::native[cpu-float64-channels_last-L7]" in out
    assert "4 tests collected" in out
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu").assert_outcomes(passed=4)


def test_a_framework_name_in_k_warns_that_ids_hold_none(suite: pytest.Pytester) -> None:
    result = run(suite, "--equiv-device", "cpu", "-k", "jax and L6", "--collect-only", "-q")
    out = result.stdout.str()
    assert "-k 'jax and L6' names jax, but test ids name no framework" in out
    assert "use --equiv-framework jax" in out
    quiet = run(suite, "--equiv-device", "cpu", "-k", "native and L6", "--collect-only", "-q")
    assert "test ids name no framework" not in quiet.stdout.str()


def test_json_report_has_a_record_for_every_item(suite: pytest.Pytester) -> None:
    report = suite.path / "out" / "r.json"
    result = run(suite, "--equiv-framework", "jax,torch", f"--equiv-report={report}", "--equiv-markdown=m.md")
    result.assert_outcomes(passed=4, skipped=4)  # cuda items skip on a machine without a GPU
    data = json.loads(report.read_text())
    assert set(data["environment"]) >= {"python", "platform", "frameworks"}
    assert set(data["environment"]["frameworks"]) == set(frameworks.NAMES)  # every registered one
    assert "version" in data["environment"]["frameworks"]["jax"]
    assert any("precision" in k for k in data["environment"]["frameworks"]["jax"])
    assert "gpu_driver" in data["environment"]  # None on a machine without an NVIDIA driver
    fields = {"id", "case", "variant", "framework", "device", "dtype", "params", "outcome",
              "max_abs_error", "max_rel_error", "error_ratio", "reason"}
    assert len(data["results"]) == 16  # one record per framework of each of the 8 items
    for r in data["results"]:
        assert fields <= set(r)
        if r["outcome"] == "passed":
            assert 0 <= r["error_ratio"] <= 1
        else:
            assert r["outcome"] == "skipped" and r["device"] == "cuda"
            assert "sees no GPU" in r["reason"] and r["error_ratio"] is None
    assert {tuple(p["frameworks"]) for p in data["pairwise"]} == {("jax", "torch")}
    assert all(tuple(r) == FIELDS for r in data["results"])  # the one record schema
    table = (suite.path / "m.md").read_text()
    assert "| small_conv |" in table and "jax/cuda" not in table  # no GPU: cuda folds into one line
    assert "cuda: all 8 results skipped (jax sees no GPU; torch sees no GPU)." in table


def test_records_travel_once_and_junit_gets_a_line_per_framework(suite: pytest.Pytester) -> None:
    report, junit = suite.path / "r.json", suite.path / "j.xml"
    result = run(suite, "--equiv-framework", "jax,torch", "--equiv-device", "cpu", "--equiv-dtype", "float32",
                 f"--equiv-report={report}", f"--junitxml={junit}")
    result.assert_outcomes(passed=2)
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    carrying = [(r.when, len(results_of(r))) for r in reports if results_of(r)]
    assert carrying == [("call", 2), ("call", 2)]  # not again on the teardown report
    text = report.read_text()
    rows = [line for line in text.splitlines() if '"id": "small_conv::' in line]
    assert len(rows) == 4 and all(json.loads(row.rstrip(","))["case"] == "small_conv" for row in rows)
    assert len(json.loads(text)["results"]) == 4  # one line per result, and still one JSON document
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert set(props) == {"equiv jax", "equiv torch"}
    ratio = next(r["error_ratio"] for r in json.loads(text)["results"] if r["framework"] == "jax")
    assert props["equiv jax"] == f"passed, error_ratio {ratio:.3g}"


def test_inputs_depend_on_case_params_and_seed_only(suite: pytest.Pytester) -> None:
    def errors(*args: str) -> dict[str, float]:
        report = suite.path / "r.json"
        run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu", f"--equiv-report={report}", *args)
        return {r["id"]: r["max_abs_error"] for r in json.loads(report.read_text())["results"]}

    first = errors()
    assert errors("-k", "L7") == {k: v for k, v in first.items() if "L7" in k}  # order-independent
    assert errors("--equiv-seed=5") != first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--equiv-framework", "pytorch"], "--equiv-framework: unknown value(s) pytorch; choose from torch"),
        (["--equiv-device", "gpu"], "--equiv-device: unknown value(s) gpu"),
        (["--equiv-dtype", "float32,half"], "--equiv-dtype: unknown value(s) half"),
        (["--equiv-precision", "bf16"], "--equiv-precision: unknown value bf16"),
        (["--equiv-jax-mlir-context", "fresh"],
         "--equiv-jax-mlir-context: unknown value fresh; choose from shared, per-program"),
        (["--equiv-cpu-kernels", "mkl"],
         "--equiv-cpu-kernels: unknown value mkl; choose from default, onednn, reference"),
        (["--equiv-repeat", "0"], "--equiv-repeat must be >= 1"),
        (["--equiv-require-deterministic"], "needs --equiv-repeat"),
        (["--equiv-device", "cpu", "--equiv-require-device", "cuda"], "not selected by --equiv-device"),
        (["--equiv-framework", "jax", "--equiv-require-framework", "torch"],
         "not selected by --equiv-framework"),
        (["--equiv-require-framework", "mxnet"], "--equiv-require-framework: unknown value(s) mxnet"),
    ],
)
def test_bad_option_values_name_the_option(suite: pytest.Pytester, args: list[str], message: str) -> None:
    result = run(suite, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_broken_case_file_is_one_error_naming_it(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "broken_syntax.py").write_text('"""Broken."""\ndef f(:\n')
    (suite.path / "cases" / "no_oracle.py").write_text(
        '"""Missing pieces."""\nfrom equiv import Case\ncase = Case(grid={"a": [1]})\n'
    )
    (suite.path / "cases" / "no_case.py").write_text('"""Nothing here."""\n')
    torch_only = CASE.replace(
        "@case.variant\n", '@case.variant(frameworks=["torch"], when=lambda p: p.L == 6)\n'
    )
    (suite.path / "cases" / "torch_only.py").write_text(torch_only)
    result = run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu")
    result.assert_outcomes(passed=4, errors=4)
    out = result.stdout.str()
    # Coverage is the file's property, whatever --equiv-framework selects: no framework silently absent.
    assert (
        "torch_only.py: no variant covers torch at 1 grid point(s), e.g. [channels_last-L7], "
        "tensorflow at 2 grid point(s), e.g. [channels_last-L6], jax at 2" in out
    )
    assert "broken_syntax.py:2: the case file failed to import: SyntaxError" in out
    assert "no_oracle.py: no @case.inputs function" in out and "no @case.oracle function" in out
    assert "no_case.py: defines no `case = Case(...)`" in out


def test_missing_framework_skips_with_reason(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frameworks, "is_installed", lambda name: name != "tensorflow")
    monkeypatch.setattr(frameworks, "_loaded", {})
    result = run(suite, "--equiv-framework", "tensorflow", "--equiv-device", "cpu", "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines(["*tensorflow is not installed*"])


def test_strict_device_fails_at_start_without_gpu(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    jax_fw = frameworks.load("jax")
    monkeypatch.setattr(jax_fw, "gpus", lambda: [])
    result = run(
        suite, "--equiv-framework", "jax", "--equiv-device", "cuda", "--equiv-require-device", "cuda"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--equiv-require-device cuda: jax sees no GPU" in result.stderr.str()


def test_strict_device_turns_unrunnable_cuda_items_into_failures(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The framework claims a GPU at start, but the item cannot be placed on it: a failure, not a skip.
    jax_fw = frameworks.load("jax")
    monkeypatch.setattr(jax_fw, "gpus", lambda: ["Simulated GPU"])
    strict = run(
        suite, "--equiv-framework", "jax", "--equiv-device", "cuda", "--equiv-require-device", "cuda"
    )
    strict.assert_outcomes(failed=4)
    strict.stdout.fnmatch_lines(["*jax sees no GPU*--equiv-require-device cuda makes this a failure*"])
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cuda").assert_outcomes(skipped=4)


def test_repeat_reports_determinism(suite: pytest.Pytester) -> None:
    report = suite.path / "r.json"
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu", "--equiv-repeat", "2",
        "--equiv-require-deterministic", f"--equiv-report={report}").assert_outcomes(passed=4)
    assert all(r["nondeterministic"] is False for r in json.loads(report.read_text())["results"])


def test_known_differences_pass_only_when_observed(suite: pytest.Pytester) -> None:
    (suite.path / "cases" / "small_conv.py").write_text(CASE + textwrap.dedent('''
        @case.variant(expect="differs", reason="valid is not same")
        def valid_differs(fw, p, x, w, b):
            return fw.conv(x, w, b, padding=[(1, 1)], layout=p.layout)

        @case.variant(expect="differs", reason="planted: this one agrees")
        def agrees(fw, p, x, w, b):
            return fw.conv(x, w, b, padding="same", layout=p.layout)

        @case.variant(raises=ValueError, match="boom", reason="planted refusal")
        def refuses(fw, p, x, w, b):
            raise ValueError("boom")

        @case.variant(raises=ValueError, reason="planted: does not raise")
        def does_not_refuse(fw, p, x, w, b):
            return fw.conv(x, w, b, padding="same", layout=p.layout)
    '''))
    result = run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu", "--equiv-dtype", "float64")
    result.assert_outcomes(passed=2 + 2 + 2, failed=2 + 2)
    out = result.stdout.str()
    assert "expected the known difference (planted: this one agrees)" in out
    assert "expected does_not_refuse to raise ValueError" in out


def test_a_wrong_mapping_fails_with_a_pointed_message(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_fw = frameworks.load("torch")
    symmetric = lambda pairs: ([max(lo, hi) for lo, hi in pairs], None)  # noqa: E731  planted bug
    monkeypatch.setattr(torch_fw, "_torch_padding", symmetric)
    result = run(suite, "--equiv-framework", "torch,jax", "--equiv-device", "cpu", "--equiv-dtype", "float64")
    # SAME with k=4 pads (1, 2): symmetric gives one more. Each item runs both frameworks, so each fails,
    # naming torch's result and saying that jax's passed.
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "small_conv::native[torch-cpu-float64-channels_last-L6]" in out
    assert "(jax passed)" in out and "native[jax-cpu" not in out
    assert "torch native out (cpu, float64) vs oracle: shape (2, 7, 3) but the oracle's is (2, 6, 3)" in out
    assert "hint: size differs on axis [1]: padding amount, stride or dilation" in out


def test_heatmap_png_for_a_failing_2d_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib", reason="nox -s tests installs matplotlib for the heatmap test")
    pytester.makeini("[pytest]\nequiv_cases = cases\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "flipped.py").write_text(textwrap.dedent('''
        """Planted: a 2-D conv computed without its bias."""
        from equiv import Case, conv_inputs, oracle

        case = Case(grid={"layout": ["channels_first"]})

        @case.inputs
        def draw(rng, p):
            return conv_inputs(rng, layout=p.layout, spatial=[6, 5], kernel=[3, 3], channels=2,
                               out_channels=2)

        @case.oracle
        def expected(p, x, w, b):
            return oracle.conv(x, w, b, layout=p.layout)

        @case.variant
        def no_bias(fw, p, x, w, b):
            return fw.conv(x, w, layout=p.layout)
    '''))
    result = run(pytester, "--equiv-framework", "torch", "--equiv-device", "cpu", "--equiv-dtype", "float64",
                 "--equiv-heatmaps", "maps")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*hint: equals the oracle without the bias*", "*heatmap of error_ratio: maps*"]
    )
    assert len(list((pytester.path / "maps").glob("*.png"))) == 1


@pytest.mark.parametrize(
    ("line", "version"),
    [
        ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023",
         "535.104.05"),
        ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  "
         "Release Build  (dvs-builder@U16)",
         "550.54.15"),
        ("GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)", None),
    ],
)
def test_gpu_driver_read_from_the_kernel_module_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, version: str | None
) -> None:
    monkeypatch.setattr(frameworks.shutil, "which", lambda name: None)  # no nvidia-smi to fall back on
    proc = tmp_path / "version"
    proc.write_text(line + "\n")
    assert frameworks.gpu_driver(proc) == version
    assert frameworks.gpu_driver(tmp_path / "absent") is None


def test_case_magnitude_sets_the_bound_and_a_wrong_one_is_named(suite: pytest.Pytester) -> None:
    # A variant 1e-3 off fails under the default bound; a declared magnitude of 1e15 lets it pass,
    # so the declared (magnitude, terms) is the one the item is judged by.
    off = CASE.replace('padding="same", layout=p.layout)\n\'\'\'', "").replace(
        "    return fw.conv(x, w, b, padding=\"same\", layout=p.layout)",
        "    return fw.conv(x, w, b, padding=\"same\", layout=p.layout) + 1e-3")
    assert off.count("+ 1e-3") == 1
    (suite.path / "cases" / "small_conv.py").write_text(off)
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu").assert_outcomes(failed=4)
    loose = off + (
        "\n@case.magnitude\ndef error_model(p, x, w, b):\n"
        "    y = oracle.conv(x, w, b, padding=\"same\", layout=p.layout)\n"
        "    return 0 * y + 1e15, 13\n"
    )
    (suite.path / "cases" / "small_conv.py").write_text(loose)
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu").assert_outcomes(passed=4)
    # A magnitude whose outputs are not the oracle's is the case's error, named with the case, once.
    named = loose.replace("return 0 * y + 1e15, 13", "return {'other': y}, {'other': 1}")
    (suite.path / "cases" / "small_conv.py").write_text(named)
    result = run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu", "-p", "no:xdist")
    result.assert_outcomes(failed=1, skipped=3)
    assert "case error (the case file's own code, no framework blamed)" in result.stdout.str()
    assert ("small_conv: @case.magnitude must return (magnitude, terms) with the oracle's outputs ['out'], "
            "got ['other'] and ['other']") in result.stdout.str()


def test_a_point_knows_its_items_dtype_without_changing_its_id() -> None:
    from equiv.case import Params

    p = Params({"out": "half", "k": 3})
    with pytest.raises(AttributeError, match="p.dtype is the item's dtype, known once a point becomes"):
        _ = p.dtype
    q = p.at("float16")
    assert q.dtype == "float16" and q.id == p.id == "half-k3" and dict(q) == dict(p)


def test_a_run_where_nothing_ran_fails_and_says_why(suite: pytest.Pytester) -> None:
    # No GPU here: every cuda result skips, so the run tested nothing.
    if any(frameworks.load(name).gpus() for name in ("jax", "torch")):
        pytest.skip("this machine has a GPU")
    result = run(suite, "--equiv-framework", "jax,torch", "--equiv-device", "cuda")
    result.assert_outcomes(skipped=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["equiv: no result ran, all 8 skipped (jax sees no GPU; torch sees no GPU): "
                                 "the run fails"])
    run(suite, "--equiv-framework", "jax", "--equiv-device", "cpu").assert_outcomes(passed=4)  # ran: green


def test_a_required_framework_that_is_not_installed_stops_the_run(suite: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = frameworks.is_installed
    monkeypatch.setattr(frameworks, "is_installed", lambda name: name != "tensorflow" and real(name))
    result = run(suite, "--equiv-device", "cpu", "--equiv-require-framework", "jax,tensorflow")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("--equiv-require-framework: tensorflow not installed; pip install 'equiv[tensorflow]'"
            in result.stderr.str())


BIAS_CASE = Path(__file__).resolve().parents[1] / "cases" / "conv_bias_is_added_per_channel.py"


def _planted(suite: pytest.Pytester, old: str, new: str) -> Path:
    """The real worked example with one author's mistake in it."""
    source = BIAS_CASE.read_text(encoding="utf-8")
    assert old in source
    path = suite.path / "cases" / BIAS_CASE.name
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    (suite.path / "cases" / "small_conv.py").unlink()
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("def expected(p, x, w, b):", "def expected(p, x, w):",
     "the oracle expected(p, x, w) cannot take the inputs ['b', 'w', 'x'] that @case.inputs draws at"),
    ("def expected(p, x, w, b):\n    return oracle.conv(x, w, layout=p.layout)",
     "def expected(p, inp, w, b):\n    return oracle.conv(inp, w, layout=p.layout)",
     "the oracle expected(p, inp, w, b) cannot take the inputs ['b', 'w', 'x']"),
    ("    return oracle.conv(x, w, layout=p.layout) + b.reshape(PER_CHANNEL[p.layout])",
     "    return oracle.conv(x, w, layout=p.layout) + b.reshape(PER_CHANEL[p.layout])",
     "the oracle expected raised at channels_last-L5: NameError: name 'PER_CHANEL' is not defined"),
])
def test_a_mistake_in_the_oracle_is_one_collection_error_naming_its_line(
        suite: pytest.Pytester, old: str, new: str, message: str) -> None:
    path = _planted(suite, old, new)
    mark = "PER_CHANEL" if "PER_CHANEL" in new else "def expected"  # where it raised, or the def
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if mark in text)
    result = run(suite, "--equiv-device", "cpu", "--equiv-framework", "jax")
    result.assert_outcomes(errors=1)  # the file, once; no framework result
    assert any(f"{path.name}:{line}: {message}" in text for text in result.stdout.lines), result.stdout.str()
    assert "FAILED" not in result.stdout.str().split("equiv matrix")[-1]


def test_a_typo_in_a_variant_is_the_cases_error_reported_once(suite: pytest.Pytester) -> None:
    path = _planted(suite, "    return fw.conv(x, w, b, layout=p.layout)",
                    "    return fw.conv(x, w, bb, layout=p.layout)")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "bb" in text)
    report = suite.path / "r.json"
    result = run(suite, "--equiv-device", "cpu", "--equiv-framework", "jax,torch", "-p", "no:xdist",
                 f"--equiv-report={report}")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Once in the test's failure, once under the matrix (and in pytest's short summary, which CI=true
    # prints untruncated): the first test of the file; the rest skip.
    error = f"{path.name}:{line}: NameError: name 'bb' is not defined, in variant framework_bias"
    assert sum(error in text for text in result.stdout.lines if not text.startswith("FAILED ")) == 2
    result.stdout.fnmatch_lines(["case error (the case file's own code, no framework blamed): *"])
    records = json.loads(report.read_text())
    assert not [r for r in records["results"] if r["variant"] == "framework_bias"]  # no framework blamed
    assert len(records["case_errors"]) == 1
    assert " E " not in out.split("equiv matrix")[-1]


POOL_CASE = '''
"""An average pool (a plugin test: the bound of a mean)."""
from equiv import Case, oracle, tolerance

case = Case(grid={"padding": ["valid"]}, dtypes=("float32",), output_layout="channels_last"TERMS)

@case.inputs
def draw(rng, p):
    return {"x": rng.uniform(0.5, 1.5, (2, 64, 3))}

@case.oracle
def expected(p, x):
    return oracle.avg_pool(x, 8, layout="channels_last")

@case.variant
def pooled(fw, p, x):
    return fw.cast(fw.avg_pool(x, 8, layout="channels_last"), "float64") * (1 + 2.0**-21)
'''


def test_a_mean_without_its_term_count_is_told_so(suite: pytest.Pytester) -> None:
    """Off by 8 float32 roundings: past the bound of K = 1 that all-ones inputs give a mean, with a hint
    saying so and no padding hint (the item is VALID); with terms=8 declared the hint is gone."""
    (suite.path / "cases" / "small_conv.py").unlink()
    (suite.path / "cases" / "pool.py").write_text(POOL_CASE.replace("TERMS", ""))
    result = run(suite, "--equiv-device", "cpu", "--equiv-framework", "jax")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "hint: K = 1 assumed" in out and "only on the borders" not in out
    declared = POOL_CASE.replace("TERMS", ", tolerance=tolerance.derived(terms=lambda p: 8)")
    (suite.path / "cases" / "pool.py").write_text(declared)
    assert "K = 1 assumed" not in run(suite, "--equiv-device", "cpu", "--equiv-framework", "jax").stdout.str()
