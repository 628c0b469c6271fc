"""Case files become pytest items: one per (variant, framework, device, dtype, params)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from equiv import compare, defects, frameworks, outputs, runner
from equiv.case import Case
from equiv.config import Config

CONFIG_KEY = pytest.StashKey[Config]()
DEFECTS_KEY = pytest.StashKey[tuple[defects.Defect, ...]]()
DEFINED_KEY = pytest.StashKey[dict[str, set[str]]]()  # case -> every item id it defines
OUTPUTS_KEY = pytest.StashKey[outputs.Store]()
PENDING_KEY = pytest.StashKey[Counter[tuple[Any, ...]]]()  # items per pair key not yet run here
PAIRWISE_KEY = pytest.StashKey[dict[tuple[Any, ...], dict[str, tuple[dict[str, Any], dict[str, Any]]]]]()


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
    return case


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            case = load_case(self.path)
        except CaseError as e:
            raise self.CollectError(str(e)) from None
        cfg = self.config.stash[CONFIG_KEY]
        points = case.points()
        self.config.stash.setdefault(DEFINED_KEY, {})[self.path.stem] = {
            runner.Spec(self.path.stem, case, v, fw, dev, dt, p).id
            for v in case.variants for fw in v.frameworks for dev in frameworks.DEVICES
            for dt in case.dtypes for p in points if v.applies(p.at(dt))
        }
        combos = itertools.product(case.variants, cfg.frameworks, cfg.devices, cfg.dtypes, points, cfg.seeds)
        for variant, fw, device, dtype, point, seed in combos:
            p = point.at(dtype)
            if fw in variant.frameworks and dtype in case.dtypes and variant.applies(p):
                spec = runner.Spec(self.path.stem, case, variant, fw, device, dtype, p, seed,
                                   seed_in_id=len(cfg.seeds) > 1)
                candidates = defects.find(self.config.stash[DEFECTS_KEY], spec.base_id, fw, device)
                yield CaseItem.from_parent(self, name=f"{variant.name}[{spec.name_suffix}]", spec=spec,
                                           known=candidates)


class CaseItem(pytest.Item):
    def __init__(self, *, spec: runner.Spec, known: tuple[defects.Defect, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.known = known  # the known-defect entries covering this item, in file order
        # Same group -> same xdist worker (--dist loadgroup): one oracle call for all frameworks.
        self.add_marker(pytest.mark.xdist_group("-".join(map(str, runner.reference_key(spec)))))

    @property
    def pair_key(self) -> tuple[Any, ...]:
        """Items that share it ran on the same inputs: their frameworks are compared pairwise."""
        s = self.spec
        return (s.case_name, s.variant.name, s.params.id, s.dtype, s.device, s.seed)

    def runtest(self) -> None:
        try:
            self._run()
        finally:
            self._forget_outputs()

    def _forget_outputs(self) -> None:
        """Free the outputs kept for pairing, the oracle's answer and the framework's compiled program
        once no item here needs them.

        Under xdist a case's params and dtype run on one worker (every seed, framework and variant),
        so every item of a key runs in the same process.
        """
        if PENDING_KEY not in self.config.stash:
            ours = [i for i in self.session.items if isinstance(i, CaseItem)]
            self.config.stash[PENDING_KEY] = Counter(
                [i.pair_key for i in ours] + [runner.reference_key(i.spec) for i in ours]
                + [i.program_key for i in ours])
        pending = self.config.stash[PENDING_KEY]
        ref_key = runner.reference_key(self.spec)
        for key in (self.pair_key, ref_key, self.program_key):
            pending[key] -= 1
        if pending[self.pair_key] <= 0:
            self.config.stash.get(PAIRWISE_KEY, {}).pop(self.pair_key, None)
        if pending[ref_key] <= 0:
            runner.forget_reference(ref_key)
        if pending[self.program_key] <= 0:
            for fw in frameworks.loaded():  # a framework that is not installed kept nothing
                if fw.name == self.spec.framework:
                    fw.release(self.program_key[1:])

    @property
    def program_key(self) -> tuple[Any, ...]:
        return (self.spec.framework, *runner.program_key(self.spec))

    def _run(self) -> None:
        cfg = self.config.stash[CONFIG_KEY]
        try:
            result = runner.run(self.spec, cfg)
        except Exception as e:
            failed = runner.Result(self.spec, outcome="failed", reason=f"{type(e).__name__}: {e}")
            self.user_properties.append(("equiv", failed.record(cfg.precision)))
            raise
        defect = self._known_defect(result, cfg)
        self.user_properties.append(("equiv", result.record(cfg.precision)))
        if result.outputs and self.spec.variant.expect == "equal":
            self._pairwise(result)
            if cfg.outputs:
                self.config.stash[OUTPUTS_KEY].add(self.spec.id, result.outputs, result.allowed)
        if result.outcome == "skipped":
            pytest.skip(result.reason)
        if defect is not None:
            pytest.xfail(result.reason)
        if result.outcome == "error":
            raise FrameworkError(result.reason)
        if result.outcome == "failed":
            raise CaseFailure(result.reason)

    def _known_defect(self, result: runner.Result, cfg: Config) -> defects.Defect | None:
        """Apply a matching known-defect entry: xfail when its symptom shows, strict failure when not."""
        s = self.spec
        if not self.known or result.outcome == "skipped":
            return None
        version = frameworks.load(s.framework).version()
        precision = cfg.precision if s.dtype == "float32" else "ieee"
        d = next((d for d in self.known
                  if d.applies(version=version, cpu_kernels=result.cpu_kernels, precision=precision)), None)
        if d is None:
            return None
        if d.observed(result.outcome, result.exception, result.reason):
            result.known_defect = d.id
            result.reason = f"known defect {d.id} ({d.upstream}): {d.summary} Observed: {result.reason}"
            return d
        if result.outcome == "passed" and not d.strict:
            return None  # the symptom depends on the inputs, and these inputs kept it inside the bound
        if result.outcome == "passed":
            result.outcome = "failed"
            result.reason = (
                f"no longer reproduces: remove or narrow entry {d.id!r} in the known-defects file "
                f"(expected {d.symptom} with {s.framework} {version}, CPU kernels {result.cpu_kernels}; "
                f"upstream {d.upstream})"
            )
        else:
            result.reason += f"\n  (known defect {d.id} expects {d.symptom}; this is something else)"
        return None

    def _pairwise(self, result: runner.Result) -> None:
        """Compare with the other frameworks' results for the same inputs seen in this process."""
        s = self.spec
        seen = self.config.stash.setdefault(PAIRWISE_KEY, {})
        key = self.pair_key
        mine = (result.outputs, result.allowed)
        for other, theirs in seen.setdefault(key, {}).items():
            paired = compare.pair(*mine, *theirs)
            if paired is not None:
                self.user_properties.append(("equiv_pairwise", compare.pair_record(
                    s.case_name, s.variant.name, s.params.to_json(), s.dtype, s.device, s.seed,
                    [other, s.framework], paired)))
        seen[key][s.framework] = mine

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailure):  # FrameworkError too: one line, no traceback
            return f"{self.spec.id}\n{excinfo.value}"
        if isinstance(excinfo.value, pytest.xfail.Exception):  # a known defect: its reason says it all
            return f"{self.spec.id}\n{excinfo.value.msg}"  # (a traceback took 9 ms an item to format)
        # An error inside a variant: show the frames from runtest down, not pytest's own.
        excinfo.traceback = excinfo.traceback.cut(path=Path(__file__)).filter(excinfo)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.spec.id
