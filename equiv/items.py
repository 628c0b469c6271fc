"""Case files become pytest items: one per (variant, device, dtype, params, seed), each running every
selected framework on the same input and recording one result per framework."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from equiv import authoring, compare, defects, frameworks, fuzz, runner
from equiv.case import Case, Params, names_read
from equiv.config import Config
from equiv.distribute import outputs
from equiv.distribute.group import group_of
from equiv.records import BAD, Outcome, only_crashes

CONFIG_KEY = pytest.StashKey[Config]()
DEFECTS_KEY = pytest.StashKey[tuple[defects.Defect, ...]]()
DEFINED_KEY = pytest.StashKey[dict[str, set[str]]]()  # case -> every item id it defines
OUTPUTS_KEY = pytest.StashKey[outputs.Store]()
PENDING_KEY = pytest.StashKey[Counter[tuple[Any, ...]]]()  # tests per oracle key, results per program, to run
CASE_ERRORS_KEY = pytest.StashKey[set[str]]()  # case files whose own code raised, in this process


class CaseError(Exception):
    """A case file that cannot be used; the message names the file and what to fix."""


class CaseFailure(Exception):
    """A result outside its allowed error (or a known difference not observed)."""


class FrameworkError(CaseFailure):
    """The framework raised an error that is no declared refusal: reported in one line, as `error`."""


def load_case(path: Path) -> Case:
    module_name = f"equiv_cases.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CaseError(f"{path}: not importable as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        line = getattr(e, "lineno", None) or (where.lineno if where else "?")
        raise CaseError(f"{path}:{line}: the case file failed to import: {type(e).__name__}: {e}") from e
    sys.modules[module_name] = module
    case = getattr(module, "case", None)
    if not isinstance(case, Case):
        raise CaseError(f"{path}: defines no `case = Case(...)` at module level; see README 'Adding a case'")
    problems = case.problems()
    if not (module.__doc__ or "").strip():
        problems.insert(0, "no module docstring: state the claim and the quirk it pins")
    if problems:
        raise CaseError(f"{path}: " + "; ".join(problems))
    mistakes = authoring.check(case, path)
    if mistakes:
        raise CaseError("\n".join(mistakes))
    return case


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            case = load_case(self.path)
        except CaseError as e:
            raise self.CollectError(str(e)) from None
        cfg = self.config.stash[CONFIG_KEY]
        if cfg.fuzzing:
            for device, dtype in itertools.product(cfg.devices, cfg.dtypes):
                if dtype in case.dtypes:
                    yield FuzzItem.from_parent(self, name=f"fuzz[{device}-{dtype}]", case=case, device=device,
                                               dtype=dtype)
            return
        try:
            points = [fuzz.point_of(cfg.params, case)] if cfg.params is not None else case.points()
        except fuzz.ParamsError as e:
            raise self.CollectError(f"{self.path}: {e}") from None
        self.config.stash.setdefault(DEFINED_KEY, {})[self.path.stem] = {
            runner.Spec(self.path.stem, case, v, fw, dev, dt, p).id
            for v in case.variants for fw in v.frameworks for dev in frameworks.DEVICES
            for dt in case.dtypes for p in points if v.applies(p.at(dt, dev))
        }
        known_defects = self.config.stash[DEFECTS_KEY]
        inputs = itertools.product(case.variants, cfg.devices, cfg.dtypes, points)  # seeds: innermost
        for variant, device, dtype, point in inputs:
            p = point.at(dtype, device)
            fws = [fw for fw in cfg.frameworks if fw in variant.frameworks]
            if not fws or dtype not in case.dtypes or not variant.applies(p):
                continue
            unseeded = [runner.Spec(self.path.stem, case, variant, fw, device, dtype, p) for fw in fws]
            # Known-defect patterns name ids without the seed: matched once for every seed.
            reads = names_read(variant.fn)
            known = {s.framework: defects.find(known_defects, s.id, s.framework, device, dtype, reads)
                     for s in unseeded}
            for values, seed in itertools.product([v for v in cfg.values if v in case.values], cfg.seeds):
                specs = tuple(replace(s, seed=seed, seed_in_id=len(cfg.seeds) > 1, values=values)
                              for s in unseeded)
                yield CaseItem.from_parent(self, name=f"{variant.name}[{specs[0].test_suffix}]", specs=specs,
                                           known=known)


class CaseItem(pytest.Item):
    """One input of one variant, run in every selected framework: each judged against the oracle and
    paired with the others. The report keeps one record per framework."""

    def __init__(self, *, specs: tuple[runner.Spec, ...],
                 known: dict[str, tuple[defects.Defect, ...]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.specs = specs
        self.known = known or {}  # per framework: the known-defect entries covering it, in file order
        # The run's records: the call report carries them (results_of), once; user_properties (which
        # every phase's report copies, and JUnit XML writes) get one short line per framework.
        self.results: list[dict[str, Any]] = []
        self.pairwise: list[dict[str, Any]] = []
        self.case_error = ""  # one line, file:line first, when the case file's own code raised
        # One group (group_of), one worker under xdist's own loadgroup too: its variants share one
        # oracle answer and its seeds one compiled program. (equiv's scheduler reads the id itself.)
        self.add_marker(pytest.mark.xdist_group(group_of(self.nodeid) or self.nodeid))

    def runtest(self) -> None:
        try:
            self._run()
        finally:
            self._forget_outputs()

    def _forget_outputs(self) -> None:
        """Free the oracle's answer and the frameworks' compiled programs once no item here needs them.

        Under xdist a case's params and dtype run on one worker (every seed and variant), so every
        item of a key runs in the same process.
        """
        if PENDING_KEY not in self.config.stash:
            ours = [i for i in self.session.items if isinstance(i, CaseItem)]
            self.config.stash[PENDING_KEY] = Counter(
                [runner.reference_key(i.specs[0]) for i in ours]
                + [(s.framework, *runner.program_key(s)) for i in ours for s in i.specs])
        pending = self.config.stash[PENDING_KEY]
        ref_key = runner.reference_key(self.specs[0])
        pending[ref_key] -= 1
        if pending[ref_key] <= 0:
            runner.forget_reference(ref_key)
        loaded = {fw.name: fw for fw in frameworks.loaded()}  # one not installed kept nothing
        for s in self.specs:
            key = (s.framework, *runner.program_key(s))
            pending[key] -= 1
            if pending[key] <= 0 and s.framework in loaded:
                loaded[s.framework].release(key[1:])

    def _run(self) -> None:
        reported = self.config.stash.setdefault(CASE_ERRORS_KEY, set())
        if str(self.path) in reported:
            pytest.skip(f"the case file's own code raised in an earlier test: {self.path} (reported once)")
        try:
            ran = run_input(self.config, self.specs, self.known)
        except authoring.CaseCodeError as e:  # the case's, not a framework's: no record blames one
            reported.add(str(self.path))
            self.case_error = str(e)
            raise
        self.results, self.pairwise = ran.results, ran.pairwise
        self.user_properties.extend(ran.summaries)
        if ran.crash is not None:
            raise ran.crash
        conclude(ran.judged)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailure):  # FrameworkError too: its text names each result
            return str(excinfo.value)
        if isinstance(excinfo.value, authoring.CaseCodeError):
            return f"case error (the case file's own code, no framework blamed): {excinfo.value}"
        if isinstance(excinfo.value, pytest.xfail.Exception):  # a known defect: its reason says it all
            return str(excinfo.value.msg)  # (a traceback took 9 ms an item to format)
        # An error inside a variant: show the frames from runtest down, not pytest's own.
        excinfo.traceback = excinfo.traceback.cut(path=Path(__file__)).filter(excinfo)
        return super().repr_failure(excinfo)

    def attach(self, report: pytest.TestReport) -> None:
        """Put the records on the call report: xdist sends it to the controller, and Reporter reads it."""
        report.equiv_results = self.results  # type: ignore[attr-defined]
        report.equiv_pairwise = self.pairwise  # type: ignore[attr-defined]
        if self.case_error:
            report.equiv_case_error = self.case_error  # type: ignore[attr-defined]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.specs[0].case_name}::{self.name}"


class FuzzFailure(CaseFailure):
    """A drawn point where the claim failed: the usual text, then the command that replays it."""


class FuzzItem(pytest.Item):
    """Draws of one claim's domain on one device and dtype (equiv.fuzz): each draw is one input, run in
    every selected framework and variant and judged as a grid item is. hypothesis shrinks a failure."""

    def __init__(self, *, case: Case, device: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.device, self.dtype = case, device, dtype
        self.results: list[dict[str, Any]] = []
        self.pairwise: list[dict[str, Any]] = []
        self.draws = 0
        self.add_marker(pytest.mark.xdist_group(group_of(self.nodeid) or self.nodeid))

    def runtest(self) -> None:
        from hypothesis import given
        from hypothesis import strategies as st
        from hypothesis.errors import FlakyFailure

        cfg = self.config.stash[CONFIG_KEY]
        known_defects = self.config.stash[DEFECTS_KEY]
        failed: list[Ran] = []  # the last failing draw's records: hypothesis replays the shrunk one last
        said: list[str] = []  # the last failing draw's message
        outcomes: list[str] = []

        def probe(data: Any) -> None:
            p = fuzz.draw_point(data, self.case).at(self.dtype, self.device)
            seed = data.draw(st.integers(0, fuzz.SEEDS - 1), label="seed")
            values = data.draw(st.sampled_from(self.case.values), label="values")  # shrinks to normal
            self.draws += 1
            specs = [runner.Spec(self.path.stem, self.case, v, fw, self.device, self.dtype, p, seed,
                                 fuzzed=True, values=values)
                     for v in self.case.variants if v.applies(p)
                     for fw in cfg.frameworks if fw in v.frameworks]
            known = {(s.variant.name, s.framework): defects.find(
                known_defects, s.id, s.framework, self.device, self.dtype, names_read(s.variant.fn))
                for s in specs}
            ran = Ran()
            try:
                for variant in dict.fromkeys(s.variant for s in specs):
                    mine = tuple(s for s in specs if s.variant == variant)
                    one = run_input(self.config, mine, {s.framework: known[variant.name, s.framework]
                                                        for s in mine}, strict=False)
                    ran.results += one.results
                    ran.pairwise += one.pairwise
                    ran.judged += one.judged
                    ran.crash = ran.crash or one.crash
            except authoring.CaseCodeError as e:  # a point the claim's own code rejects: the domain's
                raise FuzzFailure(f"{e}\nThe domain holds a point the case's code rejects: narrow the "
                                  f"domain or its where=.\nreproduce: {self._replay(p, seed, values, cfg)}"
                                  ) from e
            finally:
                self._forget(specs)
            if ran.crash is not None:
                raise ran.crash
            bad = [(s, r) for s, o, r in ran.judged if o in BAD]
            outcomes.extend(o for _, o, _ in ran.judged)
            if bad:
                failed[:] = [ran]
                try:
                    conclude(ran.judged)
                except CaseFailure as e:
                    said[:] = [f"{e}\nreproduce: {self._replay(p, seed, values, cfg)}"]
                    raise FuzzFailure(said[0]) from None
            self.results += ran.results
            self.pairwise += ran.pairwise

        # hypothesis keys its example database by the test's name: one key per claim, device and dtype.
        probe.__name__ = probe.__qualname__ = f"fuzz_{self.path.stem}_{self.device}_{self.dtype}"
        deadline = time.monotonic() + self._seconds(cfg)
        # A time budget runs batches of 10 draws until it is spent (the database replays failures first).
        test = given(st.data())(fuzz.settings(cfg.fuzz_profile, cfg.fuzz or 10, cfg.fuzz_db)(probe))
        try:
            while True:
                try:
                    test()
                except FlakyFailure:
                    # hypothesis ran the failing draw again and it passed: the framework's answer
                    # changes from run to run. The first failure is the report.
                    first = said[-1] if said else "a draw failed"
                    raise FuzzFailure(f"{first}\nflaky: this draw passed when hypothesis ran it again "
                                      "(an answer that changes from run to run); replay it several times"
                                      ) from None
                if cfg.fuzz or time.monotonic() >= deadline:
                    break
        except CaseFailure:
            if failed:
                self.results += failed[0].results
                self.pairwise += failed[0].pairwise
            raise
        if outcomes and all(o == Outcome.SKIPPED for o in outcomes):
            pytest.skip(f"every result of {self.draws} draws skipped; see the report for why")

    def _seconds(self, cfg: Config) -> float:
        """This item's share of --equiv-fuzz-minutes, a wall-clock budget for the run: the run's fuzz
        items split it evenly, and xdist's workers each spend it on their share of the items."""
        ours = sum(isinstance(i, FuzzItem) for i in self.session.items) or 1
        workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1))
        return cfg.fuzz_minutes * 60 * workers / ours

    def _replay(self, p: Params, seed: int, values: str, cfg: Config) -> str:
        path = self.path.relative_to(self.config.rootpath) if self.path.is_relative_to(self.config.rootpath) \
            else self.path
        return fuzz.reproduction(str(path), p, seed, self.device, self.dtype, cfg.frameworks, cfg.cpu_kernels,
                                 values)

    @staticmethod
    def _forget(specs: list[runner.Spec]) -> None:
        """Random points rarely recur: drop each draw's oracle answer and compiled programs at once."""
        loaded = {fw.name: fw for fw in frameworks.loaded()}
        for s in specs:
            runner.forget_reference(runner.reference_key(s))
            if s.framework in loaded:
                loaded[s.framework].release(runner.program_key(s))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def attach(self, report: pytest.TestReport) -> None:
        report.equiv_results = self.results  # type: ignore[attr-defined]
        report.equiv_pairwise = self.pairwise  # type: ignore[attr-defined]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.stem}::{self.name}"


@dataclass
class Ran:
    """One input run in every framework: the records, the pairs, and each result's verdict."""

    results: list[dict[str, Any]] = field(default_factory=list)
    pairwise: list[dict[str, Any]] = field(default_factory=list)
    judged: list[tuple[runner.Spec, str, str]] = field(default_factory=list)  # (spec, outcome, reason)
    crash: Exception | None = None  # an error in equiv itself: recorded, then its traceback is shown
    summaries: list[tuple[str, str]] = field(default_factory=list)  # one line per framework, for JUnit


def run_input(config: pytest.Config, specs: tuple[runner.Spec, ...],
              known: dict[str, tuple[defects.Defect, ...]], *, strict: bool = True) -> Ran:
    """Run one input in every framework of `specs`, judge each result against the oracle and the
    known defects covering it (`known`, per framework), and pair the frameworks. `strict`: an entry's
    `always` items that pass fail ("no longer reproduces"); a fuzzed point is no declared reproduction.
    A CaseCodeError (the case file's own code raised) propagates."""
    cfg = config.stash[CONFIG_KEY]
    ran = Ran()
    paired: dict[str, tuple[Any, Any]] = {}  # framework -> (outputs, bounds), for the pairwise table
    for spec in specs:
        try:
            result = runner.run(spec, cfg, known.get(spec.framework, ()))
        except authoring.CaseCodeError:
            raise
        except Exception as e:
            ran.crash = ran.crash or e
            result = runner.Result(spec, outcome=Outcome.FAILED, reason=f"{type(e).__name__}: {e}")
        apply_known(spec, result, known.get(spec.framework, ()), strict=strict)
        ran.results.append(result.record(cfg.precision))
        ran.summaries.append((f"equiv {spec.framework}", result.summary()))
        ran.judged.append((spec, result.outcome, result.reason))
        if result.outputs and spec.variant.expect == "equal":
            _pair(spec, result, paired, ran.pairwise)
            if cfg.outputs:
                config.stash[OUTPUTS_KEY].add(spec.id, result.outputs, result.allowed)
    return ran


def conclude(judged: list[tuple[runner.Spec, str, str]]) -> None:
    """The outcome of one input from its frameworks': any failure fails it, naming each failed result
    and how the others fared; else a known defect xfails it; else it passes unless all skipped."""
    bad = [(s, r) for s, o, r in judged if o in BAD]
    if bad:
        text = "\n".join(f"{s.id}\n{r}" for s, r in bad)
        others = [f"{s.framework} {o}" for s, o, _ in judged if o not in BAD]
        text += f"\n({', '.join(others)})" if others else ""
        raise (FrameworkError if only_crashes(o for _, o, _ in judged) else CaseFailure)(text)
    known = [(s, r) for s, o, r in judged if o == Outcome.XFAILED]
    if known:
        pytest.xfail("\n".join(f"{s.id}\n{r}" for s, r in known))
    if all(o == Outcome.SKIPPED for _, o, _ in judged):
        pytest.skip("; ".join(f"{s.framework}: {r}" for s, _, r in judged))


def apply_known(s: runner.Spec, result: runner.Result, known: tuple[defects.Defect, ...], *,
                strict: bool = True) -> None:
    """Apply the known-defect entries covering this result. The runner already xfailed a result
    whose failed outputs show an error model's or a band's symptom; here a declared crash is
    xfailed, and (when `strict`) an item that must show a defect and passed fails ("no longer
    reproduces")."""
    if not known or result.outcome == Outcome.SKIPPED:
        return
    holding = [d for d in known if d.id in result.covered_by]  # the runner decided which hold
    if result.outcome == Outcome.ERROR:
        d = next((d for d in holding if d.raised(result.exception, result.reason)), None)
        if d is not None:
            result.outcome, result.known_defect = Outcome.XFAILED, d.id
            result.reason = f"known defect {d.id} ({d.upstream}): {d.summary} Observed: {result.reason}"
            return
    must = [d for d in holding if d.must_show(s.id)] if strict else []
    if result.outcome == Outcome.PASSED and must:
        d = must[0]
        result.outcome = Outcome.FAILED
        result.reason = (
            f"no longer reproduces: remove or narrow entry {d.id!r} in the known-defects file "
            f"(expected {d.symptom} with {s.framework} {frameworks.load(s.framework).version()}, "
            f"CPU kernels {result.cpu_kernels}; "
            f"upstream {d.upstream})"
        )
    elif result.outcome in BAD and holding:
        result.reason += ("\n  (does not match known defect(s) " + "; ".join(
            f"{d.id}, which expects {d.symptom}" for d in holding) + ": this is something else)")
    if result.outcome in BAD:
        version = frameworks.load(s.framework).version()
        elsewhere = [d for d in known if d not in holding and d.versions is not None
                     and not d.applies(version=version, cpu_kernels=result.cpu_kernels, precision="ieee")
                     and d.applies(version=str(_inside(d)), cpu_kernels=result.cpu_kernels, precision="ieee")]
        result.reason += "".join(
            f"\n  (known defect {d.id} covers this item at {s.framework} {d.versions}, not at {version}: if "
            f"it shows here, measure its range again (nox -s versions) and widen it)" for d in elsewhere)


def _pair(s: runner.Spec, result: runner.Result, paired: dict[str, tuple[Any, Any]],
          out: list[dict[str, Any]]) -> None:
    """Compare with the frameworks already run on the same inputs."""
    mine = (result.outputs, result.allowed)
    for other, theirs in paired.items():
        pair = compare.pair(*mine, *theirs)
        if pair is not None:
            out.append(compare.pair_record(
                s.case_name, s.variant.name, s.params.to_json(), s.dtype, s.device, s.seed,
                [other, s.framework], pair))
    paired[s.framework] = mine


def _inside(d: defects.Defect) -> str:
    """A version inside an entry's range, so that only the version decides whether it applies here."""
    assert d.versions is not None
    bounds = [spec.version for spec in d.versions if spec.operator in (">=", "==", "~=")]
    return bounds[0] if bounds else "0"
