"""Case files become pytest items: one per (variant, framework, device, dtype, params)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv import defects, frameworks, runner, tolerance
from equiv.case import Case
from equiv.config import Config

CONFIG_KEY = pytest.StashKey[Config]()
DEFECTS_KEY = pytest.StashKey[tuple[defects.Defect, ...]]()
DEFINED_KEY = pytest.StashKey[dict[str, set[str]]]()  # case -> every item id it defines
PAIRWISE_KEY = pytest.StashKey[dict[tuple[Any, ...], dict[str, dict[str, runner.Array]]]]()


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
            for dt in case.dtypes for p in points if v.applies(p)
        }
        for variant in case.variants:
            for fw in cfg.frameworks:
                if fw not in variant.frameworks:
                    continue
                for device in cfg.devices:
                    for dtype in (d for d in cfg.dtypes if d in case.dtypes):
                        for p in points:
                            if variant.applies(p):
                                spec = runner.Spec(self.path.stem, case, variant, fw, device, dtype, p)
                                defect = defects.find(self.config.stash[DEFECTS_KEY], spec.id, fw, device)
                                yield CaseItem.from_parent(
                                    self, name=f"{variant.name}[{fw}-{device}-{dtype}-{p.id}]", spec=spec,
                                    defect=defect,
                                )


class CaseItem(pytest.Item):
    def __init__(self, *, spec: runner.Spec, defect: defects.Defect | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.defect = defect
        # Same group -> same xdist worker (--dist loadgroup): one oracle call for all frameworks.
        self.add_marker(pytest.mark.xdist_group(f"{spec.case_name}-{spec.params.id}-{spec.dtype}"))

    def runtest(self) -> None:
        cfg = self.config.stash[CONFIG_KEY]
        try:
            result = runner.run(self.spec, cfg)
        except Exception as e:
            failed = runner.Result(self.spec, outcome="failed", reason=f"{type(e).__name__}: {e}")
            self.user_properties.append(("equiv", failed.record(cfg.seed, cfg.precision)))
            raise
        defect = self._known_defect(result, cfg)
        self.user_properties.append(("equiv", result.record(cfg.seed, cfg.precision)))
        if result.outputs and self.spec.variant.expect == "equal":
            self._pairwise(result)
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
        d, s = self.defect, self.spec
        if d is None or result.outcome == "skipped":
            return None
        version = frameworks.load(s.framework).version()
        precision = cfg.precision if s.dtype == "float32" else "ieee"
        if not d.applies(version=version, cpu_kernels=result.cpu_kernels, precision=precision):
            return None
        if d.observed(result.outcome, result.exception, result.reason):
            result.known_defect = d.id
            result.reason = f"known defect {d.id} ({d.upstream}): {d.summary} Observed: {result.reason}"
            return d
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
        key = (s.case_name, s.variant.name, s.params.id, s.dtype, s.device)
        ref = runner.reference(s, self.config.stash[CONFIG_KEY].seed)
        mine = {n: result.outputs[n] for n, _ in ref.expected}
        if any(mine[n].shape != e.shape for n, e in ref.expected):
            return  # a wrong shape is this item's own failure; there is nothing to pair
        for other, outputs in seen.setdefault(key, {}).items():
            diffs = [
                float(np.max(np.abs(mine[n].astype(np.float64) - outputs[n].astype(np.float64)), initial=0.0))
                for n in mine
                if mine[n].shape == outputs[n].shape
            ]
            if len(diffs) != len(mine):
                continue
            pair = sorted([other, s.framework])
            self.user_properties.append((
                "equiv_pairwise",
                {
                    "case": s.case_name, "variant": s.variant.name, "params": s.params.to_json(),
                    "dtype": s.dtype, "device": s.device, "frameworks": pair,
                    "max_abs_diff": max(diffs, default=0.0),
                    "max_error_ratio": _pair_ratio(s, ref, mine, outputs),
                },
            ))
        seen[key][s.framework] = mine

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailure):  # FrameworkError too: one line, no traceback
            return f"{self.spec.id}\n{excinfo.value}"
        # An error inside a variant: show the frames from runtest down, not pytest's own.
        excinfo.traceback = excinfo.traceback.cut(path=Path(__file__)).filter(excinfo)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.spec.id


def _pair_ratio(
    spec: runner.Spec, ref: runner.Reference, a: dict[str, Any], b: dict[str, Any]
) -> float | None:
    """|a - b| over the sum of both allowed errors: each within its bound of the oracle gives <= 1."""
    worst = 0.0
    for i, (name, expected) in enumerate(ref.expected):
        mag = ref.magnitude[i][1] if ref.magnitude else None
        terms = ref.terms[i][1] if ref.terms else None
        allowed = 2 * tolerance.allowed(spec.case.tolerance, spec.dtype, expected, mag, terms)
        diff = np.abs(a[name].astype(np.float64) - b[name].astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / allowed)
        worst = max(worst, float(np.nan_to_num(ratio, nan=np.inf).max(initial=0.0)))
    return worst
