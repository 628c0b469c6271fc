"""Run one framework on one item's input: draw inputs, compute the oracle (once), run the variant,
compare, record."""

from __future__ import annotations

import hashlib
import re
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from equiv import authoring, compare, defects, emulation, frameworks, tolerance
from equiv.case import Case, Params, Variant
from equiv.config import Config
from equiv.frameworks import Unsupported
from equiv.records import Outcome

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Spec:
    """One result: (case, variant, framework, device, dtype, params); a pytest item runs one per framework."""

    case_name: str
    case: Case
    variant: Variant
    framework: str
    device: str
    dtype: str
    params: Params
    seed: int = 0
    seed_in_id: bool = False  # when one session runs several seeds
    fuzzed: bool = False  # a point drawn from the claim's domain (equiv.fuzz), not one of its grid's
    values: str = "normal"  # how the inputs' values are spread (VALUE_MODES); in the id unless normal

    @property
    def id(self) -> str:
        return f"{self.case_name}::{self.variant.name}[{self.name_suffix}]"

    @property
    def test_suffix(self) -> str:
        """The pytest item's: every framework of one input runs in one item."""
        seed = f"-seed{self.seed}" if self.seed_in_id else ""
        values = "" if self.values == "normal" else f"-{self.values}"
        return f"{self.device}-{self.dtype}-{self.params.id}{values}{seed}"

    @property
    def name_suffix(self) -> str:
        return f"{self.framework}-{self.test_suffix}"


@dataclass
class Result:
    """What the JSON report records for every result, skipped ones included."""

    spec: Spec
    outcome: str = Outcome.PASSED
    reason: str = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    error_ratio: float | None = None
    ran_on: str | None = None
    nondeterministic: bool | None = None
    exception: list[str] = field(default_factory=list)  # an error's class and its bases, by name
    cpu_kernels: str | None = None  # the framework's CPU kernel library in force for this item
    known_defect: str | None = None
    # Per output that failed its bound and showed a known defect's symptom: the entry's id.
    known_outputs: dict[str, str] = field(default_factory=dict)
    covered_by: list[str] = field(default_factory=list)  # entries covering it whose condition holds
    known_fit: dict[str, float] = field(default_factory=dict)  # per output in known_outputs: how it fit
    # Where the item's time went: oracle (0 when another item of its group computed it), framework
    # (the calls, repeats included), compare (bounds, comparison, diagnostics).
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Array] = field(default_factory=dict, repr=False)
    allowed: dict[str, Array] = field(default_factory=dict, repr=False)  # the bound, per output

    def summary(self) -> str:
        """One line for JUnit XML's properties: the outcome and the figure the matrix is built on."""
        parts = [self.outcome]
        if self.error_ratio is not None:
            parts.append(f"error_ratio {self.error_ratio:.3g}")
        if self.known_defect:
            parts.append(f"known defect {self.known_defect}")
        return ", ".join(parts)

    def record(self, precision: str) -> dict[str, Any]:
        s = self.spec
        return {
            "id": s.id,
            "case": s.case_name,
            "variant": s.variant.name,
            "expect": "raises" if s.variant.raises else s.variant.expect,
            "framework": s.framework,
            "device": s.device,
            "dtype": s.dtype,
            "params": s.params.to_json(),
            "outcome": str(self.outcome),  # a plain str: records cross xdist's wire (no enums there)
            "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error,
            "error_ratio": self.error_ratio,
            "reason": self.reason,
            "tolerance": s.case.tolerance.describe(),
            "ran_on": self.ran_on,
            "precision": precision if s.dtype == "float32" else "ieee",
            "seed": s.seed,
            "values": s.values,
            "fuzzed": s.fuzzed,
            "nondeterministic": self.nondeterministic,
            "exception": self.exception[0] if self.exception else None,
            "cpu_kernels": self.cpu_kernels,
            "known_defect": self.known_defect,
            "known_outputs": self.known_outputs,
            "covered_by": self.covered_by,
            "known_fit": self.known_fit,
            "seconds": {k: round(v, 6) for k, v in self.seconds.items()},
        }


def item_seed(case_name: str, params: Params, seed: int) -> int:
    """Inputs depend on (case, params, seed) only: every framework and xdist worker sees the same ones."""
    digest = hashlib.sha256(f"{case_name}|{params.id}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def leaves(out: Any) -> list[tuple[str, Any]]:
    """Name each array of a result: one array, a tuple of them or a dict of them."""
    if isinstance(out, Mapping):
        return [(str(k), v) for k, v in out.items()]
    if isinstance(out, (tuple, list)):
        return [(f"out[{i}]", v) for i, v in enumerate(out)]
    return [("out", out)]


@dataclass(frozen=True)
class Reference:
    inputs: dict[str, Array]  # rounded to the item's dtype, as float64
    expected: list[tuple[str, Array]]
    magnitude: list[tuple[str, Array]] | None
    terms: list[tuple[str, Array]] | None
    # The bound per (output, precision, roundings): every framework of the group is judged by the same.
    bounds: dict[tuple[int, str, int], Array] = field(default_factory=dict)

    def allowed(self, spec: Spec, index: int, precision: str) -> Array:
        roundings = _roundings(spec)
        key = (index, precision, roundings)
        if key not in self.bounds:
            bound = tolerance.allowed(
                spec.case.tolerance, spec.dtype, self.expected[index][1],
                self.magnitude[index][1] if self.magnitude else None,
                self.terms[index][1] if self.terms else None, precision=precision, roundings=roundings)
            bound.flags.writeable = False  # shared by the group's items
            self.bounds[key] = bound
        return self.bounds[key]


_references: dict[tuple[str, str, str, int, str], Reference] = {}


def clear_references() -> None:
    _references.clear()


def reference_key(spec: Spec) -> tuple[str, str, str, int, str]:
    """Items with the same key share inputs and the oracle's answer."""
    return (spec.case_name, spec.params.id, spec.dtype, spec.seed, spec.values)


def forget_reference(key: tuple[str, str, str, int, str]) -> None:
    """Drop a reference no item still to run here needs (a many-seed run would keep them all)."""
    _references.pop(key, None)


# Per dtype, the widest binary exponent `wide` values take: every product and every output of the
# suite's claims stays inside the dtype's normal range, where the derived bound holds (float16's
# 65504 leaves little room once a few hundred terms are summed).
WIDE_EXPONENT = {"float64": 300, "float32": 40, "bfloat16": 40, "float16": 2}
ZEROS = 0.2  # the share of exact zeros among `wide` values


def draw_inputs(case: Case, case_name: str, p: Params, seed: int, values: str = "normal",
                dtype: str = "float64") -> dict[str, Array]:
    """The case's inputs; `wide` then multiplies each element by its own power of two (mixed
    magnitudes within one array, exact in every dtype) and sets a share of them to exactly zero."""
    assert case.draw is not None
    rng = np.random.default_rng(item_seed(case_name, p, seed))
    drawn = {k: np.asarray(v, dtype=np.float64) for k, v in case.draw(rng, p).items()}
    if values == "normal":
        return drawn
    spread = np.random.default_rng([item_seed(case_name, p, seed), 1])
    e = WIDE_EXPONENT[dtype]
    return {k: np.where(spread.random(v.shape) < ZEROS, 0.0, v * 2.0 ** spread.integers(-e, e + 1, v.shape))
            for k, v in drawn.items()}


def reference(spec: Spec) -> Reference:
    """The oracle's answer, magnitude and term count: once per (case, params, dtype, seed) per process."""
    key = reference_key(spec)
    if key not in _references:
        case, p = spec.case, spec.params
        assert case.expected is not None
        raw = draw_inputs(case, spec.case_name, p, spec.seed, spec.values, spec.dtype)
        dtype = frameworks.numpy_dtype(spec.dtype)
        rounded = {k: v.astype(dtype).astype(np.float64) for k, v in raw.items()}

        def as_arrays(out: Any) -> list[tuple[str, Array]]:
            return [(n, np.asarray(v, dtype=np.float64)) for n, v in leaves(out)]

        expected = as_arrays(case.expected(p, **rounded))
        magnitude = terms = None
        if case.tolerance.needs_magnitude and case.error_model is not None:
            m, k = case.error_model(p, **rounded)
            magnitude, terms = as_arrays(m), as_arrays(k)
            names = [n for n, _ in expected]
            if [n for n, _ in magnitude] != names or [n for n, _ in terms] != names:
                raise ValueError(f"{spec.case_name}: @case.magnitude must return (magnitude, terms) with the "
                                 f"oracle's outputs {names}, got {[n for n, _ in magnitude]} and "
                                 f"{[n for n, _ in terms]}")
            terms = [(n, np.broadcast_to(t, e.shape)) for (n, t), (_, e) in zip(terms, expected, strict=True)]
        elif case.tolerance.needs_magnitude:
            magnitude = as_arrays(case.expected(p, **{k: np.abs(v) for k, v in rounded.items()}))
            if case.tolerance.terms is not None:
                k = float(case.tolerance.terms(p))
                terms = [(n, np.full_like(v, k)) for n, v in expected]
            else:
                # All-ones inputs make each output element count the terms summed into it.
                terms = as_arrays(case.expected(p, **{k: np.ones_like(v) for k, v in rounded.items()}))
        _references[key] = Reference(rounded, expected, magnitude, terms)
    return _references[key]


_HOST = (np.ndarray, np.generic, int, float)  # a variant may compute on the host (a parameter count)


def _to_numpy(fw: Any, value: Any) -> Array:
    return np.asarray(value) if isinstance(value, _HOST) else np.asarray(fw.to_numpy(value))


def _call(fw: Any, spec: Spec, ref: Reference) -> Any:
    dtype = frameworks.numpy_dtype(spec.dtype)
    native = {k: v.astype(dtype) if spec.case.numpy_inputs else fw.asarray(v.astype(dtype), spec.device)
              for k, v in ref.inputs.items()}
    with fw.scope(spec.device):
        return fw.execute(lambda **kw: spec.variant.fn(fw, spec.params, **kw), program_key(spec), native)


def program_key(spec: Spec) -> tuple[Any, ...]:
    """Items with the same key run the same program (a framework compiles it once): every seed."""
    return (spec.variant.fn, spec.params.id, spec.dtype)


def run(spec: Spec, cfg: Config, known: tuple[defects.Defect, ...] = ()) -> Result:
    """Everything but pytest: the plugin turns the Result into an outcome and a message. `known`:
    the known-defect entries covering this result; an error model or band among them that holds
    here may explain outputs beyond their bound."""
    result = Result(spec)
    try:
        fw = frameworks.load(spec.framework)
        if spec.device == "cuda" and not fw.gpus():
            raise Unsupported(f"{spec.framework} sees no GPU")
        start = time.perf_counter()
        ref = _case_code(spec, lambda: reference(spec), "the inputs or the oracle")
        result.seconds["oracle"] = time.perf_counter() - start
        with fw.precision(cfg.precision), fw.cpu_kernels(cfg.cpu_kernels):
            if spec.device == "cpu":
                result.cpu_kernels = fw.cpu_kernel_library(spec.dtype)
            holding = defects.holding(known, version=fw.version(), cpu_kernels=result.cpu_kernels,
                                      dtype=spec.dtype, precision=cfg.precision,
                                      any_release=cfg.defect_any_release) if known else []
            result.covered_by = [d.id for d in holding]
            start = time.perf_counter()
            try:
                # Converting to NumPy waits for the result: JAX and CUDA dispatch asynchronously.
                out = _call(fw, spec, ref)
                got = [(n, _to_numpy(fw, v)) for n, v in leaves(out)]
                repeats = [[_to_numpy(fw, v) for _, v in leaves(_call(fw, spec, ref))]
                           for _ in range(cfg.repeat - 1)]
            except Unsupported:
                raise
            except Exception as e:
                if spec.variant.raises and isinstance(e, spec.variant.raises):
                    return _expected_raise(result, e)
                line = authoring.line_in(e, _case_file(spec))
                if line is not None:  # raised by the variant's own code, not inside a framework
                    where = f"{_case_file(spec)}:{line}"
                    raise authoring.CaseCodeError(f"{where}: {authoring.one_line(e)}, in variant "
                                                  f"{spec.variant.name} at {spec.params.id}") from e
                return _crashed(result, e)
            finally:
                result.seconds["framework"] = time.perf_counter() - start
    except Unsupported as e:
        strict = spec.device in cfg.require_device
        result.outcome = Outcome.FAILED if strict else Outcome.SKIPPED
        result.reason = str(e) + (
            f" (--equiv-require-device {spec.device} makes this a failure)" if strict else ""
        )
        return result
    if spec.variant.raises:
        result.outcome = Outcome.FAILED
        result.reason = (
            f"expected {spec.variant.name} to raise {_names(spec.variant.raises)} ({spec.variant.reason}), "
            "but it returned a result"
        )
        return result
    start = time.perf_counter()
    try:
        return _judge(result, fw, out, got, repeats, ref, cfg, [d for d in holding if d.raises is None])
    finally:
        result.seconds["compare"] = time.perf_counter() - start


def _case_file(spec: Spec) -> str:
    return spec.variant.fn.__code__.co_filename


def _case_code(spec: Spec, step: Any, what: str) -> Any:
    """Run a step of the case file's own (the oracle, the inputs): whatever it raises is the case's."""
    try:
        return step()
    except Exception as e:
        line = authoring.last_line_in(e, _case_file(spec)) or "?"
        raise authoring.CaseCodeError(f"{_case_file(spec)}:{line}: {authoring.one_line(e)}, in {what} at "
                                      f"{spec.params.id} ({spec.dtype}, seed {spec.seed})") from e


def _crashed(result: Result, e: Exception) -> Result:
    """A framework error that is no declared refusal: its type, its first line and where it surfaced."""
    result.outcome = Outcome.ERROR
    result.exception = [c.__name__ for c in type(e).__mro__ if c not in (BaseException, object)]
    where = _where(e, result.spec.variant.fn.__code__.co_filename)
    result.reason = f"{type(e).__name__}: {one_line(str(e))}{where}"
    return result


def one_line(message: str, limit: int = 400) -> str:
    """A framework's message without TF's {{function_node ...}} prefix, on one line."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", message).strip()
    first = text.splitlines()[0] if text else "(no message)"
    return first if len(first) <= limit else first[: limit - 1] + "…"


_PACKAGE = str(Path(__file__).parent)


def _where(e: BaseException, case_file: str) -> str:
    """The innermost frame in the case file or in equiv: where the framework was called."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PACKAGE) or f.filename == case_file]
    if not ours:
        return ""
    f = ours[-1]
    return f" (raised under {Path(f.filename).name}:{f.lineno} in {f.name})"


def _names(excs: tuple[type[BaseException], ...]) -> str:
    return " or ".join(e.__name__ for e in excs)


def _expected_raise(result: Result, e: BaseException) -> Result:
    v = result.spec.variant
    if v.match and not re.search(v.match, str(e)):
        result.outcome = Outcome.FAILED
        result.reason = (
            f"raised {type(e).__name__} as expected, but its message {str(e)!r} "
            f"does not match {v.match!r}"
        )
    else:
        result.reason = f"known refusal observed: {type(e).__name__}: {str(e).splitlines()[0]} — {v.reason}"
    return result


def _judge(
    result: Result, fw: Any, out: Any, got: list[tuple[str, Array]], repeats: list[list[Array]],
    ref: Reference, cfg: Config, known: list[defects.Defect],
) -> Result:
    spec = result.spec
    case = spec.case
    named = dict(got)  # a dict's order is not the framework's to keep (jax.jit returns keys sorted)
    if len(named) == len(got) == len(ref.expected) and set(named) == {n for n, _ in ref.expected}:
        got = [(n, named[n]) for n, _ in ref.expected]
    if len(got) != len(ref.expected) or [n for n, _ in got] != [n for n, _ in ref.expected]:
        result.outcome = Outcome.FAILED
        result.reason = (
            f"the variant returned outputs {[n for n, _ in got]} but the oracle "
            f"{[n for n, _ in ref.expected]}"
        )
        return result
    first = leaves(out)[0][1]
    result.ran_on = "host" if isinstance(first, _HOST) else fw.device_of(first)
    result.outputs = dict(got)
    # outputs of a known defect's dtype holding its computation: (entry, comparison in that dtype's bound)
    returned: dict[str, tuple[defects.Defect, compare.Comparison]] = {}
    if case.output_dtype is not None:
        want = case.output_dtype(spec.params)
        wrong = [(i, n, a) for i, (n, a) in enumerate(got) if a.dtype.name != want]
        what = f"{', '.join(f'{n} is {a.dtype.name}' for _, n, a in wrong)}, where the claim says {want}"
        if wrong and spec.variant.expect == "differs":
            result.reason = f"known non-equivalence observed ({what}): {spec.variant.reason}"
            return result
        if wrong:
            returned = _returned(spec, wrong, ref, cfg, known)
        if len(returned) < len(wrong):
            result.outcome = Outcome.FAILED
            result.reason = f"{spec.framework} {spec.variant.name} returned the wrong dtype: {what}"
            return result
    layout = case.layout_of(spec.params)
    comparisons = []
    for i, ((name, actual), (_, expected)) in enumerate(zip(got, ref.expected, strict=True)):
        if name in returned:  # judged in the bound of the dtype it came back in (_returned)
            result.allowed[name] = ref.allowed(spec, i, cfg.precision)
            comparisons.append(returned[name][1])
            continue
        mag = ref.magnitude[i][1] if ref.magnitude else None
        terms = ref.terms[i][1] if ref.terms else None
        allowed = ref.allowed(spec, i, cfg.precision)
        result.allowed[name] = allowed
        what = f"{spec.framework} {spec.variant.name} {name} ({spec.device}, {spec.dtype}) vs oracle"
        c = compare.compare(actual, expected, allowed, what=what, layout=layout)
        if not c.ok and spec.variant.expect == "equal" and not c.problem:
            bad = _bad_mask(actual, expected, allowed)
            recompute = _recompute(spec, ref, i)
            hints = compare.diagnose(
                actual, expected, bad, layout=layout, inputs=ref.inputs, recompute=recompute,
                magnitude=mag, terms=terms, dtype=spec.dtype, padded=_padded(spec.params),
            )
            if terms is not None and case.tolerance.terms is None and case.error_model is None \
                    and case.tolerance.needs_magnitude and np.all(terms == 1):
                hints.append("K = 1 assumed: the oracle on all-ones inputs gave 1 term per element, as a "
                             "mean or a pool does; a pool or composite claim states its terms with "
                             "tolerance.derived(terms=lambda p: K)")
            c = compare.Comparison(**{**c.__dict__, "hints": hints})
        comparisons.append(c)
    ratios = [c.error_ratio for c in comparisons if c.error_ratio is not None]
    result.error_ratio = max(ratios) if ratios and len(ratios) == len(comparisons) else None
    abs_errs = [c.max_abs_error for c in comparisons if c.max_abs_error is not None]
    rel_errs = [c.max_rel_error for c in comparisons if c.max_rel_error is not None]
    result.max_abs_error = max(abs_errs) if abs_errs else None
    result.max_rel_error = max(rel_errs) if rel_errs else None
    all_ok = all(c.ok for c in comparisons)
    rule = case.tolerance.describe()
    if spec.variant.expect == "differs":
        if all_ok:
            result.outcome = Outcome.FAILED
            result.reason = (
                f"expected the known difference ({spec.variant.reason}) but every output agrees "
                f"with the oracle (error_ratio {result.error_ratio:.3g})"
            )
        else:
            result.reason = (
                f"known non-equivalence observed (error_ratio {_ratio(result)}): {spec.variant.reason}"
            )
    elif not all_ok:
        result.outcome = Outcome.FAILED
        result.reason = "\n".join(c.message(rule) for c in comparisons if not c.ok)
        if known:
            _known_symptoms(result, got, comparisons, ref, known)
        if cfg.heatmaps is not None:
            result.reason += _heatmaps(spec, cfg.heatmaps, got, ref, comparisons, layout, cfg.precision)
    elif returned:
        ids = list(dict.fromkeys(d.id for d, _ in returned.values()))
        result.outcome = Outcome.XFAILED
        result.known_defect = ", ".join(ids)
        result.known_outputs = {n: d.id for n, (d, _) in returned.items()}
        result.known_fit = {n: c.error_ratio or 0.0 for n, (_, c) in returned.items()}
        entries = {d.id: d for d, _ in returned.values()}
        summaries = " ".join(f"known defect {i} ({entries[i].upstream}): {entries[i].summary}" for i in ids)
        seen = "; ".join(f"{n} came back {d.returns}, within the {d.returns} bound of the oracle "
                         f"(error_ratio {c.error_ratio or 0:.3g})" for n, (d, c) in returned.items())
        result.reason = f"{summaries}\nObserved: {seen}"
    if repeats:
        result.nondeterministic = any(
            not np.array_equal(a, b, equal_nan=True)
            for r in repeats
            for (_, a), b in zip(got, r, strict=False)
        )
        if result.nondeterministic and cfg.require_deterministic and result.outcome == Outcome.PASSED:
            result.outcome = Outcome.FAILED
            result.reason = f"results differ bitwise across {cfg.repeat} runs on the same inputs"
    return result


def _returned(
    spec: Spec, wrong: list[tuple[int, str, Array]], ref: Reference, cfg: Config, known: list[defects.Defect],
) -> dict[str, tuple[defects.Defect, compare.Comparison]]:
    """The outputs of the wrong dtype a `returns` entry explains: of the dtype it names, and within the
    bound derived for that dtype of the oracle (the values of the computation in it)."""
    out: dict[str, tuple[defects.Defect, compare.Comparison]] = {}
    for d in known:
        for i, name, actual in wrong:
            if d.returns is None or name in out or actual.dtype.name != d.returns:
                continue
            expected = ref.expected[i][1]
            allowed = tolerance.allowed(
                spec.case.tolerance, d.returns, expected, ref.magnitude[i][1] if ref.magnitude else None,
                ref.terms[i][1] if ref.terms else None, precision=cfg.precision, roundings=_roundings(spec))
            what = (f"{spec.framework} {spec.variant.name} {name} ({spec.device}, {d.returns} returned for "
                    f"{spec.dtype}) vs oracle")
            c = compare.compare(actual, expected, allowed, what=what, layout=spec.case.layout_of(spec.params))
            if c.ok:
                out[name] = (d, c)
    return out


def _known_symptoms(
    result: Result, got: list[tuple[str, Array]], comparisons: list[compare.Comparison], ref: Reference,
    known: list[defects.Defect],
) -> None:
    """Xfail the result when every output beyond its bound shows a known defect's symptom.

    An output with a shape or non-finite problem is never a known symptom. Each entry is tried on
    the outputs not yet explained; a model recomputes the case's oracle once per entry.
    """
    spec = result.spec
    if any(c.problem for c in comparisons):
        return
    failed = {name: defects.Output(actual, ref.expected[i][1], result.allowed[name],
                                   ref.magnitude[i][1] if ref.magnitude else None)
              for i, ((name, actual), c) in enumerate(zip(got, comparisons, strict=True)) if not c.ok}
    shown: dict[str, tuple[str, float]] = {}
    for d in known:
        rest = {n: f for n, f in failed.items() if n not in shown}
        if not rest:
            break
        for name, how in defects.explain(d, rest, spec.dtype, lambda m: _emulated(spec, ref, m)).items():
            shown[name] = (d.id, how)
    if not shown:
        return
    symptom = {d.id: d.symptom for d in known}
    measure = {d.id: "half_ulps" if d.band is not None else "error_ratio against the model" for d in known}
    lines = [f"  {n}: {symptom[i]} (known defect {i}; {measure[i]} {r:.3g})" for n, (i, r) in shown.items()]
    if len(shown) < len(failed):
        others = ", ".join(n for n in failed if n not in shown)
        result.reason += "\n  (known defects explain " + ", ".join(shown) + f"; not {others}: something else)"
        return
    ids = list(dict.fromkeys(i for i, _ in shown.values()))
    result.outcome = Outcome.XFAILED
    result.known_defect = ", ".join(ids)
    result.known_outputs = {n: i for n, (i, _) in shown.items()}
    result.known_fit = {n: r for n, (_, r) in shown.items()}
    summaries = " ".join(f"known defect {d.id} ({d.upstream}): {d.summary}" for d in known if d.id in ids)
    passed = [n for n, _ in got if n not in failed]
    result.reason = (f"{summaries}\nObserved, per output beyond the float32 bound:\n" + "\n".join(lines)
                     + (f"\n  passed its bound: {', '.join(passed)}" if passed else "")
                     + "\n" + result.reason)


def _emulated(spec: Spec, ref: Reference, model: emulation.Model) -> dict[str, Array]:
    """The case's oracle on the item's inputs with one site summed as the model says."""
    assert spec.case.expected is not None
    with emulation.emulating(model):
        out = spec.case.expected(spec.params, **ref.inputs)
    return {n: np.asarray(v, dtype=np.float64) for n, v in leaves(out)}


def _heatmaps(
    spec: Spec, folder: Any, got: list[tuple[str, Array]], ref: Reference,
    comparisons: list[compare.Comparison], layout: str, precision: str,
) -> str:
    """Write one PNG per failing output with two spatial axes; return lines naming them."""
    from equiv.report import write_heatmap

    lines = ""
    for i, ((name, actual), c) in enumerate(zip(got, comparisons, strict=True)):
        if c.ok or c.problem or actual.ndim != 4:
            continue
        expected = ref.expected[i][1]
        allowed = ref.allowed(spec, i, precision)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.abs(actual.astype(np.float64) - expected)
            ratio = np.nan_to_num(np.where(diff == 0, 0.0, diff / allowed), nan=np.inf, posinf=1e30)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{spec.id}-{name}")
        path = write_heatmap(folder / f"{stem}.png", ratio, layout, f"{spec.id} {name}")
        lines += f"\n  heatmap of error_ratio: {path}"
    return lines


def _padded(p: Params) -> bool | None:
    """Whether the item pads, where its params say: False for padding "valid" or 0, None if unsaid."""
    if "padding" not in p:
        return None
    return p["padding"] not in ("valid", 0, (0, 0))


def _roundings(spec: Spec) -> int:
    return spec.case.tolerance.roundings_at(spec.params)


def _ratio(result: Result) -> str:
    return "n/a" if result.error_ratio is None else f"{result.error_ratio:.3g}"


def _bad_mask(actual: Array, expected: Array, allowed: Array) -> Array:
    with np.errstate(invalid="ignore"):
        diff = np.abs(np.asarray(actual, dtype=np.float64) - expected)
    return np.asarray(~(diff <= allowed), dtype=bool)


def _recompute(spec: Spec, ref: Reference, index: int) -> compare.Recompute:
    def again(changes: Mapping[str, Array]) -> Array | None:
        assert spec.case.expected is not None
        out = leaves(spec.case.expected(spec.params, **{**ref.inputs, **changes}))
        return np.asarray(out[index][1], dtype=np.float64) if index < len(out) else None

    return again
