"""Checks on the GitHub Actions workflows in .github/workflows.

* ``check-jsonschema`` validates both workflows against GitHub's workflow schema;
* ``zizmor`` (offline) finds no security issue of medium severity or above;
* the workflows are parsed and the properties that matter are asserted: the
  GPU job runs the equivalence suite in strict CUDA mode, reports its matrix and
  uploads its reports; CI runs ``nox -s tests``; every action is pinned to a
  commit SHA; no checkout persists credentials; no workflow grants write access;
* planted defects (an unpinned action, missing permissions, template injection,
  a schema error, a GPU run without the strict flag) are caught, which shows
  that the checks above can fail.

The tools are looked up on PATH (and next to the running interpreter);
``nox -s tests`` installs them. Without them the tool tests are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
GPU = WORKFLOWS / "gpu-equivalence.yml"
ALL_WORKFLOWS = (CI, GPU)

SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
# A `uses:` line pinned to a SHA with the version in a trailing comment.
PINNED_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*[^\s@]+@[0-9a-f]{40}\s+#\s*v\d+(?:\.\d+)*\s*$")


# --------------------------------------------------------------------------
# helpers


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not on PATH; `nox -s tests` installs it (or: pip install {name})")
    return found


def _run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"command: {' '.join(proc.args)}\nexit code: {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    exe = _tool("check-jsonschema")
    return _run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, files)])


def zizmor(*inputs: Path, config: bool = True) -> subprocess.CompletedProcess[str]:
    exe = _tool("zizmor")
    cmd = [exe, "--offline", "--min-severity", "medium", "--color", "never"]
    if not config:
        cmd.append("--no-config")
    return _run([*cmd, *map(str, inputs)])


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path} is not a YAML mapping"
    return doc


def triggers(doc: dict) -> dict:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


def steps(doc: dict) -> list[dict]:
    return [step for job in (doc.get("jobs") or {}).values() for step in (job.get("steps") or [])]


def run_scripts(doc: dict) -> list[str]:
    """Each `run:` script, with backslash line continuations joined."""
    return [
        re.sub(r"\\\n\s*", " ", step["run"])
        for step in steps(doc)
        if isinstance(step.get("run"), str)
    ]


def is_always(step: dict) -> bool:
    return "always()" in str(step.get("if", ""))


def _grants_write(perms) -> bool:
    if perms is None:
        return False
    if isinstance(perms, str):
        return perms != "read-all"
    return any(str(v) == "write" for v in perms.values())


# --------------------------------------------------------------------------
# property checkers: return a list of problems (empty = fine)


def common_problems(path: Path, doc: dict) -> list[str]:
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")

    if "permissions" not in doc:
        problems.append("no top-level `permissions:`")
    elif _grants_write(doc["permissions"]):
        problems.append(f"top-level permissions grant write: {doc['permissions']}")
    for name, job in (doc.get("jobs") or {}).items():
        if _grants_write(job.get("permissions")):
            problems.append(f"job {name} permissions grant write")
        if "timeout-minutes" not in job:
            problems.append(f"job {name} has no timeout-minutes")

    for step in steps(doc):
        uses = step.get("uses")
        if uses is None:
            continue
        if not SHA_PIN.match(uses):
            problems.append(f"`uses: {uses}` is not pinned to a 40-hex commit SHA")
        if uses.startswith("actions/checkout@"):
            persist = (step.get("with") or {}).get("persist-credentials")
            if persist is not False and str(persist).lower() != "false":
                problems.append(f"checkout without persist-credentials: false ({uses})")
    for line in text.splitlines():
        if re.match(r"^\s*(?:-\s+)?uses:", line) and not PINNED_LINE.match(line):
            problems.append(f"uses line without SHA + `# vX.Y.Z` comment: {line.strip()}")

    for script in run_scripts(doc):
        if "${{" in script:
            problems.append(f"expression interpolated into a run script: {script!r}")
    return problems


def gpu_problems(doc: dict) -> list[str]:
    problems: list[str] = []
    on = triggers(doc)
    if not on.get("schedule"):
        problems.append("no `schedule` trigger")
    elif not all("cron" in entry for entry in on["schedule"]):
        problems.append("schedule entry without cron")
    if "workflow_dispatch" not in on:
        problems.append("no `workflow_dispatch` trigger")
    if "pull_request" in on or "pull_request_target" in on:
        problems.append("GPU (self-hosted) workflow must not run on pull requests")

    jobs = doc.get("jobs") or {}
    shards = {n: j for n, j in jobs.items() if any("nox -s equivalence" in str(st.get("run", ""))
                                                     for st in j.get("steps") or [])}
    for name, job in shards.items():
        labels = job.get("runs-on")
        labels = [labels] if isinstance(labels, str) else list(labels or [])
        if not {"self-hosted", "gpu"} <= set(labels):
            problems.append(f"job {name} does not run on [self-hosted, ..., gpu]")
        strategy = job.get("strategy") or {}
        matrix = strategy.get("matrix") or {}
        if sorted(matrix.get("framework") or []) != ["jax", "tensorflow", "torch"]:
            problems.append(f"job {name} does not fan out over a framework matrix of all three")
        if not matrix.get("gpu") or "${{ matrix.gpu }}" not in labels:
            problems.append(f"job {name} does not fan out over GPU runner labels (matrix.gpu in runs-on)")
        if strategy.get("fail-fast") is not False:
            problems.append(f"job {name}: fail-fast must be false (one framework must not cancel the rest)")
    problems += _merge_problems(jobs, shards)

    nox_runs = [s for s in run_scripts(doc) if "nox -s equivalence" in s]
    if not nox_runs:
        problems.append("no step runs `nox -s equivalence`")
    for script in nox_runs:
        posargs = script.split("nox -s equivalence", 1)[1]
        if not posargs.lstrip().startswith("--"):
            problems.append("`nox -s equivalence` not followed by `--` posargs")
        for flag in (
            "--equiv-device cuda",
            "--equiv-require-device cuda",
            "--equiv-markdown reports/matrix.md",
            '--equiv-framework "$FRAMEWORK"',
            '--equiv-label "$GPU_LABEL"',
            "--equiv-outputs reports/outputs.npz",
        ):
            if flag not in posargs:
                problems.append(f"`nox -s equivalence` run lacks `{flag}`")
    if not any("nvidia-smi" in s for s in run_scripts(doc)):
        problems.append("no `nvidia-smi` step")

    summary = [
        s
        for s in steps(doc)
        if re.search(
            r"reports/matrix\.md\s*>>\s*\"?\$\{?GITHUB_STEP_SUMMARY", str(s.get("run", ""))
        )
    ]
    if not summary:
        problems.append("reports/matrix.md is not appended to $GITHUB_STEP_SUMMARY")
    for s in summary:
        if not is_always(s):
            problems.append("step-summary step is not `if: always()`")
        if "-f reports/matrix.md" not in s["run"]:
            problems.append("step-summary step does not check that matrix.md exists")

    shard_steps = [st for job in shards.values() for st in job.get("steps") or []]
    uploads = [
        s for s in shard_steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    if not uploads:
        problems.append("no actions/upload-artifact step")
    for s in uploads:
        path = str((s.get("with") or {}).get("path", ""))
        whole_dir = re.search(r"(^|\s)reports/?\s*$", path, re.M)
        if "matrix.framework" not in str((s.get("with") or {}).get("name", "")):
            problems.append("shard upload's artifact name does not name its framework: shards overwrite")
        for report in ("reports/equivalence.json", "reports/outputs.npz", "reports/junit.xml",
                       "reports/matrix.md"):
            if report not in path and not whole_dir:
                problems.append(f"upload does not include {report}")
        if not is_always(s):
            problems.append("upload step is not `if: always()`")
        if "retention-days" not in (s.get("with") or {}):
            problems.append("upload step has no retention-days")
    return problems


def _merge_problems(jobs: dict, shards: dict) -> list[str]:
    """A job after the shards merges their reports, whatever they did, and publishes the matrix."""
    merges = {n: j for n, j in jobs.items()
              if any("python -m equiv merge" in str(st.get("run", "")) for st in j.get("steps") or [])}
    if not merges:
        return ["no job runs `python -m equiv merge` on the shards' reports"]
    problems = []
    for name, job in merges.items():
        needs = job.get("needs")
        needs = [needs] if isinstance(needs, str) else list(needs or [])
        if not set(shards) <= set(needs):
            problems.append(f"merge job {name} does not need the shard jobs {sorted(shards)}")
        if "always()" not in str(job.get("if", "")):
            problems.append(f"merge job {name} is not `if: always()`: a failed shard would hide the matrix")
        job_steps = job.get("steps") or []
        if not any(str(st.get("uses", "")).startswith("actions/download-artifact@") for st in job_steps):
            problems.append(f"merge job {name} downloads no artifacts")
        script = " ".join(re.sub(r"\\\n\s*", " ", str(st.get("run", ""))) for st in job_steps)
        if "--markdown reports/merged.md" not in script:
            problems.append(f"merge job {name} writes no reports/merged.md")
        if not re.search(r"reports/merged\.md\s*>>\s*\"?\$\{?GITHUB_STEP_SUMMARY", script):
            problems.append(f"merge job {name} does not append the merged matrix to $GITHUB_STEP_SUMMARY")
    return problems


def ci_problems(doc: dict) -> list[str]:
    problems: list[str] = []
    on = triggers(doc)
    for event in ("push", "pull_request"):
        if event not in on:
            problems.append(f"no `{event}` trigger")
    scripts = run_scripts(doc)
    if not any(re.search(r"(^|\s)nox -s tests(\s|$)", s) for s in scripts):
        problems.append("no step runs `nox -s tests`")
    if not any("pip install nox" in s for s in scripts):
        problems.append("nox is not installed")
    setup = [s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/setup-python@")]
    if not any(str((s.get("with") or {}).get("python-version")) == "3.11" for s in setup):
        problems.append("no setup-python with python-version 3.11")
    uploads = [
        s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    if not any(
        is_always(s) and "reports" in str((s.get("with") or {}).get("path")) for s in uploads
    ):
        problems.append("reports/ is not uploaded with `if: always()`")
    return problems


# --------------------------------------------------------------------------
# (a) schema, (b) zizmor


def test_workflows_exist():
    for path in ALL_WORKFLOWS:
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"


def test_check_jsonschema_accepts_workflows():
    proc = check_jsonschema(*ALL_WORKFLOWS)
    assert proc.returncode == 0, _output(proc)


def test_zizmor_finds_nothing():
    proc = zizmor(WORKFLOWS)
    assert proc.returncode == 0, _output(proc)


# --------------------------------------------------------------------------
# (c) properties


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_common_properties(path: Path):
    problems = common_problems(path, load(path))
    assert not problems, "\n".join(problems)


def test_gpu_workflow_properties():
    doc = load(GPU)
    assert doc.get("name") == "GPU equivalence"
    problems = gpu_problems(doc)
    assert not problems, "\n".join(problems)


def nightly_problems(doc: dict) -> list[str]:
    """The nightly run is diffed against the last good one, and fuzzes CUDA after its equivalence run."""
    all_steps = [st for job in (doc.get("jobs") or {}).values() for st in job.get("steps") or []]
    problems = []
    diffs = [st for st in all_steps if "equiv diff last-good/merged.json reports/merged.json" in
             re.sub(r"\\\n\s*", " ", str(st.get("run", "")))]
    if not diffs:
        problems.append("no step diffs the merged report against the last good night's")
    elif "GITHUB_STEP_SUMMARY" not in str(diffs[0].get("run")):
        problems.append("the diff does not reach the job summary")
    saves = [st for st in all_steps if str(st.get("uses", "")).startswith("actions/cache/save@")]
    if not any("success()" in str(st.get("if", "")) for st in saves):
        problems.append("the last good night is not saved, or saved whatever the outcome")
    runs = [str(st.get("run", "")) for st in all_steps]
    if not any("nox -s fuzz" in run and "cuda" in run for run in runs):
        problems.append("no nightly fuzz step on CUDA")
    return problems


def test_the_nightly_run_is_diffed_and_fuzzed():
    assert not nightly_problems(load(GPU))


def test_nightly_checks_catch_a_missing_diff(tmp_path: Path):
    text = GPU.read_text().replace("python -m equiv diff", "python -m equiv merge")
    assert "no step diffs the merged report against the last good night's" in nightly_problems(
        yaml.safe_load(text))


def test_gpu_dispatch_input_goes_through_env():
    doc = load(GPU)
    nox_steps = [s for s in steps(doc) if "nox -s equivalence" in str(s.get("run", ""))]
    assert nox_steps
    for step in nox_steps:
        assert "inputs." not in step["run"]
    inputs = (triggers(doc).get("workflow_dispatch") or {}).get("inputs") or {}
    for name in inputs:
        envs = [str(v) for s in nox_steps for v in (s.get("env") or {}).values()]
        assert any(f"inputs.{name}" in v for v in envs), (
            f"workflow_dispatch input {name!r} is not passed via env:"
        )


def test_ci_workflow_properties():
    problems = ci_problems(load(CI))
    assert not problems, "\n".join(problems)


def test_same_action_same_pin_across_workflows():
    pins: dict[str, set[str]] = {}
    for path in ALL_WORKFLOWS:
        for step in steps(load(path)):
            if "uses" in step:
                action, _, ref = step["uses"].partition("@")
                pins.setdefault(action, set()).add(ref)
    drift = {a: refs for a, refs in pins.items() if len(refs) > 1}
    assert not drift, f"actions pinned to different SHAs: {drift}"


# --------------------------------------------------------------------------
# (d) planted defects are caught


def _plant(tmp_path: Path, source: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"cannot plant defect: {old!r} not in {source.name}"
        text = text.replace(old, new)
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


def _unpinned_checkout(text: str) -> tuple[str, str]:
    line = next(ln for ln in text.splitlines() if "uses: actions/checkout@" in ln)
    return line, line.split("uses:")[0] + "uses: actions/checkout@v4"


def _top_permissions_block(text: str) -> tuple[str, str]:
    match = re.search(r"^permissions:\n(?:[ \t]+.*\n)+", text, re.M)
    assert match, "no top-level permissions block to remove"
    return match.group(0), ""


def test_zizmor_catches_unpinned_action_without_permissions(tmp_path: Path):
    text = CI.read_text(encoding="utf-8")
    bad = _plant(tmp_path, CI, "ci.yml", _unpinned_checkout(text), _top_permissions_block(text))
    proc = zizmor(bad, config=False)
    assert proc.returncode != 0, _output(proc)
    assert "unpinned-uses" in proc.stdout + proc.stderr, _output(proc)
    # and the repo's own property checks catch it too
    problems = common_problems(bad, load(bad))
    assert any("not pinned" in p for p in problems), problems
    assert any("permissions" in p for p in problems), problems


def test_zizmor_catches_persisted_credentials(tmp_path: Path):
    bad = _plant(
        tmp_path,
        CI,
        "ci.yml",
        ("        with:\n          persist-credentials: false\n", ""),
    )
    proc = zizmor(bad, config=False)
    assert proc.returncode != 0, _output(proc)
    assert "artipacked" in proc.stdout + proc.stderr, _output(proc)
    assert any("persist-credentials" in p for p in common_problems(bad, load(bad)))


def test_zizmor_catches_template_injection(tmp_path: Path):
    bad = _plant(
        tmp_path,
        GPU,
        "gpu-equivalence.yml",
        (
            "--equiv-markdown reports/matrix.md \\\n",
            "--equiv-markdown reports/matrix.md ${{ inputs.extra-pytest-args }} \\\n",
        ),
    )
    proc = zizmor(bad, config=False)
    assert proc.returncode != 0, _output(proc)
    assert "template-injection" in proc.stdout + proc.stderr, _output(proc)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(("    steps:\n", "    stepz:\n"), id="misspelled-steps"),
        pytest.param(("    runs-on: ubuntu-latest\n", ""), id="missing-runs-on"),
    ],
)
def test_check_jsonschema_catches_schema_error(tmp_path: Path, edit):
    bad = _plant(tmp_path, CI, "ci.yml", edit)
    proc = check_jsonschema(bad)
    assert proc.returncode != 0, _output(proc)


@pytest.mark.parametrize(
    "edit, expected",
    [
        pytest.param(
            ("            --equiv-require-device cuda \\\n", ""),
            "--equiv-require-device cuda",
            id="not-strict",
        ),
        pytest.param(
            ("--equiv-device cuda \\\n", "--equiv-device cpu \\\n"),
            "--equiv-device cuda",
            id="cpu-device",
        ),
        pytest.param(
            ("  workflow_dispatch:\n", "  workflow_call:\n"), "workflow_dispatch", id="no-dispatch"
        ),
        pytest.param(
            ('cat reports/matrix.md >> "$GITHUB_STEP_SUMMARY"', "cat reports/matrix.md"),
            "GITHUB_STEP_SUMMARY",
            id="no-summary",
        ),
        pytest.param(
            ("        framework: [torch, tensorflow, jax]\n", "        framework: [torch, jax]\n"),
            "framework matrix",
            id="framework-missing-from-matrix",
        ),
        pytest.param(("      fail-fast: false\n", ""), "fail-fast", id="fail-fast"),
        pytest.param(
            ("            --equiv-outputs reports/outputs.npz \\\n", ""),
            "--equiv-outputs",
            id="no-outputs-for-cross-shard-pairs",
        ),
        pytest.param(
            ("    if: always()\n    runs-on: ubuntu-latest", "    runs-on: ubuntu-latest"),
            "always()",
            id="merge-skipped-when-a-shard-fails",
        ),
        pytest.param(
            ('cat reports/merged.md >> "$GITHUB_STEP_SUMMARY"', "cat reports/merged.md"),
            "merged matrix",
            id="merged-matrix-not-published",
        ),
        pytest.param(
            ("          name: gpu-equivalence-${{ matrix.gpu }}-${{ matrix.framework }}\n",
             "          name: gpu-equivalence-${{ matrix.gpu }}\n"),
            "shards overwrite",
            id="shard-artifacts-collide",
        ),
    ],
)
def test_gpu_checks_catch_planted_defect(tmp_path: Path, edit, expected):
    bad = _plant(tmp_path, GPU, "gpu-equivalence.yml", edit)
    problems = gpu_problems(load(bad))
    assert any(expected in p for p in problems), problems
