"""nox sessions for equiv. `nox --list` shows them; arguments after `--` go to pytest."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
REPORTS = Path("reports")
# Linux x86_64 wheels of torch on PyPI bundle CUDA (several GB); CPU runs pin the CPU build.
CPU_PINS = ["torch==2.13.0"]
LINUX_X86 = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
TOOLS = ["check-jsonschema", "zizmor", "pyyaml", "matplotlib"]
CI_DRAWS = 6  # per claim, device and dtype in `nox -s tests`: derandomized, the same every run
NIGHTLY_DRAWS = 250  # per claim, device and dtype in `nox -s fuzz`


def wants_cuda(posargs: list[str]) -> bool:
    """True when the pytest arguments select the cuda device (`--equiv-device cuda`, `=cpu,cuda`)."""
    values = [a.split("=", 1)[1] for a in posargs if a.startswith("--equiv-device=")]
    values += [b for a, b in zip(posargs, posargs[1:], strict=False) if a == "--equiv-device"]
    return any("cuda" in v.split(",") for v in values)


def install_frameworks(session: nox.Session, *, cuda: bool) -> None:
    """CUDA builds for GPU runs (torch's default wheel, tensorflow[and-cuda], jax[cuda12]); else CPU, with
    ONNX Runtime (the onnx extra: its CPU provider)."""
    if cuda:
        session.install("-e", ".[cuda,heatmaps,fuzz]")
        return
    constraints = Path(session.create_tmp()) / "cpu-constraints.txt"
    constraints.write_text("\n".join(CPU_PINS if LINUX_X86 else []) + "\n")
    tensorflow = "tensorflow-cpu" if LINUX_X86 else "tensorflow"  # tensorflow-cpu: no CUDA wheels pulled
    session.install("-c", str(constraints), "-e", ".[torch,jax,onnx,heatmaps,fuzz]", tensorflow)


def pytest_cases(session: nox.Session, *args: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    # The frameworks this session installed must run: a run where one silently skips is no pass.
    chosen = any(a == "--equiv-framework" or a.startswith("--equiv-framework=") for a in args)
    # CPU runs install ONNX Runtime too (install_frameworks); GPU runs do not (no onnxruntime-gpu).
    installed = "torch,tensorflow,jax" + ("" if wants_cuda(list(args)) else ",onnxruntime")
    required = [] if chosen else ["--equiv-require-framework", installed]
    session.run("pytest", "cases", "-n", "auto", "--dist", "loadgroup", "-p", "no:cacheprovider", *required,
                *args)


@nox.session(python=PYTHON)
def equivalence(session: nox.Session) -> None:
    """Run every case in PyTorch, TensorFlow and JAX; writes reports/equivalence.json and junit.xml."""
    install_frameworks(session, cuda=wants_cuda(session.posargs))
    session.log("CPU kernels: as this machine picks them (the matrix header says which); "
                "pin with -- --equiv-cpu-kernels onednn|reference")
    pytest_cases(
        session,
        f"--equiv-report={REPORTS / 'equivalence.json'}",
        f"--junitxml={REPORTS / 'junit.xml'}",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The project's test command: the suite's own tests, then the CPU suite with oneDNN on and off."""
    install_frameworks(session, cuda=False)
    session.install(*TOOLS)
    session.run("pytest", "tests", "-n", "auto", "-p", "no:cacheprovider", *session.posargs)
    # Which CPU kernels TensorFlow and torch run depends on the CPU; run both, whatever this one is.
    pytest_cases(session, "--equiv-device", "cpu", "--equiv-cpu-kernels", "onednn", *kept("onednn"))
    # XLA:CPU has no such switch: only torch and TensorFlow run again with oneDNN off.
    pytest_cases(session, "--equiv-device", "cpu", "--equiv-cpu-kernels", "reference",
                 "--equiv-framework", "torch,tensorflow", "--equiv-require-framework", "torch,tensorflow",
                 *kept("reference"))
    # One matrix for both, each item compared across the two kernel libraries.
    session.run("python", "-m", "equiv", "merge", str(REPORTS / "tests-onednn.json"),
                str(REPORTS / "tests-reference.json"), f"--markdown={REPORTS / 'tests-merged.md'}")
    # Off the grids: the same draws on every run (derandomized), a small fixed budget.
    pytest_cases(session, "--equiv-device", "cpu", "--equiv-fuzz", str(CI_DRAWS), "--equiv-fuzz-profile",
                 "ci", f"--equiv-report={REPORTS / 'tests-fuzz.json'}")


def kept(label: str) -> list[str]:
    """Label a run and keep its report and outputs, for python -m equiv merge."""
    return [f"--equiv-label={label}", f"--equiv-report={REPORTS / f'tests-{label}.json'}",
            f"--equiv-outputs={REPORTS / f'tests-{label}.npz'}"]


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Every claim off its grid: hypothesis draws its domain (random; failures kept in .hypothesis/equiv
    and replayed first). The nightly budget by default; `-- --equiv-fuzz N` draws per claim, device and
    dtype, or `-- --equiv-fuzz-minutes M`; CUDA with `-- --equiv-device cuda`."""
    install_frameworks(session, cuda=wants_cuda(session.posargs))
    budget = [] if any(a.startswith("--equiv-fuzz") for a in session.posargs) else [
        "--equiv-fuzz", str(NIGHTLY_DRAWS), "--equiv-fuzz-profile", "nightly"]
    device = [] if wants_cuda(session.posargs) else ["--equiv-device", "cpu"]
    pytest_cases(session, *device, *budget, f"--equiv-report={REPORTS / 'fuzz.json'}", *session.posargs)


# `nox -s versions`: per framework the declared floor, a middle release, the previous and the latest,
# each run alone (--equiv-framework) in a cached virtualenv of its own under .nox/lanes/.
# The first of each is pyproject.toml's floor. torch: only 2.13.0 has a CPU build where this was
# measured (newer ones are multi-GB CUDA builds). TensorFlow below 2.19: 2.16.2 and 2.18.1 are not
# green (2.18.1 dies with SIGILL in oneDNN's Conv2DBackpropInput). JAX below 0.7.1: 0.4.30, 0.6.2 and
# 0.7.0 sum float16 reduce_window in an order no error model reproduces.
RELEASES = {
    "torch": ["2.13.0"],
    "tensorflow": ["2.19.1", "2.20.0", "2.21.0"],
    "jax": ["0.7.1", "0.9.2", "0.10.2"],
}


# A framework's floor lane also pins equiv's own dependency floors (pyproject.toml), so every declared
# lower bound is one that ran. TensorFlow's floor needs ml_dtypes>=0.5.1 itself.
LIBRARY_FLOORS = ["numpy==1.26.4", "pytest==8.0.0", "pytest-xdist==3.5.0", "packaging==22.0"]
ML_DTYPES_FLOOR = {"torch": ["ml_dtypes==0.5.0"], "jax": ["ml_dtypes==0.5.0"], "tensorflow": []}


def lane_python(session: nox.Session, framework: str, version: str) -> Path:
    """A virtualenv with equiv and one framework release (at the floor, equiv's floors too), made once
    and reused."""
    spec = [{"torch": f"torch=={version}", "jax": f"jax=={version}",
             "tensorflow": f"{'tensorflow-cpu' if LINUX_X86 else 'tensorflow'}=={version}"}[framework]]
    if version == RELEASES[framework][0]:
        spec += LIBRARY_FLOORS + ML_DTYPES_FLOOR[framework]
    env = Path(".nox") / "lanes" / f"{framework}-{version}"
    python = env / "bin" / "python"
    marker = env / "equiv-lane.txt"
    if not (python.exists() and marker.is_file() and marker.read_text() == " ".join(spec)):
        session.run("python", "-m", "venv", "--clear", str(env))
        marker.unlink(missing_ok=True)
    # equiv is installed editable: a reused lane only checks that its pins still hold.
    session.run(str(python), "-m", "pip", "install", "--quiet", "-e", ".[fuzz]", *spec, external=True)
    marker.write_text(" ".join(spec))
    return python


# `nox -s versions -- --defect ID`: every release here, to find where one entry's symptom shows.
BISECT = {
    "torch": RELEASES["torch"],
    "tensorflow": ["2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.20.0", "2.21.0"],
    "jax": ["0.4.30", "0.4.31", "0.4.33", "0.4.35", "0.4.38", "0.5.3", "0.6.0", "0.6.2", "0.7.0", "0.7.1",
            "0.7.2", "0.8.3", "0.9.2", "0.10.2"],
}


def defect_releases(session: nox.Session, entry_id: str) -> None:
    """Run one known-defect entry's cases at every release of its framework, the entry applied at each
    (--equiv-defect-at-any-release), and print where its symptom shows."""
    import tomllib

    entries = tomllib.loads(Path("cases/known_defects.toml").read_text())["defect"]
    entry = next((e for e in entries if e["id"] == entry_id), None)
    if entry is None:
        session.error(f"--defect {entry_id}: no such entry in cases/known_defects.toml")
    framework = entry["framework"]
    patterns = entry.get("items", ["*"]) + entry.get("always", [])
    named = {p.split("::")[0] for p in patterns}
    cases = sorted(f"cases/{c}.py" for c in named if "*" not in c) if "*" not in str(named) else ["cases"]
    dtypes = ["--equiv-dtype", ",".join(entry["dtypes"])] if entry.get("dtypes") else []
    folder = REPORTS / "versions" / f"defect-{entry_id}"
    folder.mkdir(parents=True, exist_ok=True)
    reports = []
    for version in BISECT[framework]:
        python = lane_python(session, framework, version)
        report = folder / f"{framework}-{version}.json"
        session.run(str(python), "-m", "pytest", *cases, "-q", "-n", "auto", "-p", "no:cacheprovider",
                    "--equiv-device", "cpu", "--equiv-framework", framework, *dtypes,
                    f"--equiv-defect-at-any-release={entry_id}", f"--equiv-report={report}",
                    external=True, success_codes=list(range(256)))
        reports.append(str(report))
    session.run("python", "-m", "equiv", "versions", "--defect", entry_id, *reports)


@nox.session(python=PYTHON)
def versions(session: nox.Session) -> None:
    """The CPU suite under several releases of each framework, then one cross-version matrix and each
    release's diff against the latest. `-- jax,torch` picks frameworks; `-- --defect ID` runs one
    known-defect entry's cases at every release and prints where its symptom shows; other arguments
    go to pytest."""
    session.install("-e", ".")
    if "--defect" in session.posargs:
        defect_releases(session, session.posargs[session.posargs.index("--defect") + 1])
        return
    picked = [a for a in session.posargs if not a.startswith("-") and set(a.split(",")) <= set(RELEASES)]
    frameworks = picked[0].split(",") if picked else list(RELEASES)
    floors_only = "--floors" in session.posargs  # the weekly CI lane: each framework's floor alone
    extra = [a for a in session.posargs if a not in picked and a != "--floors"]
    folder = REPORTS / "versions"
    folder.mkdir(parents=True, exist_ok=True)
    failed = []
    lanes = [(fw, v) for fw in frameworks for v in (RELEASES[fw][:1] if floors_only else RELEASES[fw])]
    for framework, version in lanes:
        python = lane_python(session, framework, version)
        report = folder / f"{framework}-{version}.json"
        report.unlink(missing_ok=True)
        session.run(str(python), "-m", "pytest", "cases", "-q", "-n", "auto", "-p", "no:cacheprovider",
                    "--equiv-device", "cpu", "--equiv-framework", framework, "--equiv-require-framework",
                    framework, f"--equiv-label={framework}-{version}", f"--equiv-report={report}", *extra,
                    external=True, success_codes=list(range(256)))  # a crashed lane: judged below
        results = json.loads(report.read_text())["results"] if report.is_file() else None
        if results is None or any(r["outcome"] in ("failed", "error") for r in results):
            failed.append(f"{framework} {version}")
    reports = [str(folder / f"{fw}-{v}.json") for fw, v in lanes]
    session.run("python", "-m", "equiv", "versions", *reports)
    if failed:
        session.error(f"failed lanes: {', '.join(failed)} (each lane's failures are above)")


@nox.session(python=PYTHON)
def stress(session: nox.Session) -> None:
    """The CPU suite under 20 seeds in one run; prints the worst error_ratio per case and dtype."""
    install_frameworks(session, cuda=False)
    seeds = ",".join(a for a in session.posargs if a.isdigit()) or "1-20"
    extra = [a for a in session.posargs if not a.isdigit()]  # e.g. --equiv-cpu-kernels onednn
    # One session: each worker compiles a shape once for all seeds (JAX's in-memory cache).
    pytest_cases(session, "-q", "--equiv-device", "cpu", f"--equiv-seed={seeds}",
                 f"--equiv-report={REPORTS / 'stress.json'}", *extra)
    session.run("python", "-m", "equiv", "sweep", str(REPORTS / "stress.json"))


@nox.session(python=PYTHON)
def benchmark(session: nox.Session) -> None:
    """Where the CPU suite's time goes: one process cold and warm, -n 2, -n auto (prints, writes JSON)."""
    install_frameworks(session, cuda=False)
    REPORTS.mkdir(exist_ok=True)
    session.run("python", "-m", "equiv", "benchmark", "--out", str(REPORTS / "benchmark.json"),
                *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy on equiv/ (typed), ruff on the rest."""
    install_frameworks(session, cuda=False)  # mypy checks equiv/ against the frameworks' own types
    session.install("ruff", "mypy")
    session.run("ruff", "check", ".")
    session.run("mypy")
