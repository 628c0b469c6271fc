"""Known framework defects: one reviewed TOML file of conditional expected failures.

Each entry names the kernel that is defective (framework, dtypes, device, CPU kernel library,
versions), the results it may cover (ids `case::variant[framework-device-dtype-params]`, field
`items`, every item by default) and its symptom, which is one of:

* `raises`: the framework raises this exception class (with `match`, a regex on its message);
* `model`: an error model. The kernel at oracle site `site` sums as the named order of
  `equiv.emulation` does; the case's oracle is recomputed with that sum, and each output that
  failed its bound must lie within the same derived bound of the recomputed answer (plus one half
  rounding of the magnitude, for float32 partial sums the model does not order). An output the
  kernel does not produce is unchanged by the model, so a wrong answer there still fails;
* `returns`: the framework returns this dtype in place of the one the claim says (a case's
  `output_dtype`), with the values of the computation in it: each such output must be that dtype and
  lie within the bound derived for it. An output of any other dtype, or wrong values, still fails;
* `band`: where no model reproduces the kernel (`no_model` says why), each failed output named in
  `outputs` must lie inside the band [lo, hi] measured over >= 20 seeds, in half_ulps: its largest
  error in units of u_dtype * sum|x||w| (see `half_ulps`). Unlike error_ratio this does not grow
  where the inputs cancel, so a wrong answer (zeros, a flipped kernel) stays far outside.

A result whose failed outputs all show the symptom is recorded xfailed, naming the outputs. A
result matching `always` (patterns of the items that show the symptom at every seed) that passes
fails with "no longer reproduces", so a release that fixes the defect is noticed the same day.
Only genuine framework defects, looked up upstream, belong here: never equiv's own mistakes.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from equiv import emulation, oracle, tolerance
from equiv.frameworks import CASE_API, DEVICES, DTYPES, NAMES, OWN_NAMES, PRECISIONS
from equiv.records import BAD, Outcome

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Array = npt.NDArray[np.float64]
REQUIRED = ("id", "framework", "upstream", "summary")
OPTIONAL = ("items", "always", "versions", "device", "cpu_kernels", "precision", "dtypes", "raises", "match",
            "site", "model", "band", "outputs", "no_model", "calls", "returns")
HALF = ("float16", "bfloat16")


class DefectFileError(ValueError):
    """The known-defects file cannot be used; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Defect:
    id: str
    framework: str
    upstream: str
    summary: str
    items: tuple[str, ...] = ("*",)  # patterns (* and ?) over case::variant[framework-device-dtype-params]
    always: tuple[str, ...] = ()  # the items that show the symptom whatever the draw
    versions: SpecifierSet | None = None
    device: str | None = None
    cpu_kernels: str | None = None  # the CPU kernel library in force, as the report names it
    precision: str | None = None
    dtypes: tuple[str, ...] | None = None
    raises: str | None = None  # an exception class name (or one of its bases)
    match: str | None = None  # regex searched in the error's message
    # with model: the oracle sums (equiv.oracle.SITES) the kernel's sum can stand for, tried in order
    sites: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()  # fw functions that reach the kernel; a variant calling none is not covered
    model: str | None = None  # an order of equiv.emulation.ORDERS
    band: tuple[float, float] | None = None  # half_ulps [lo, hi] measured over >= 20 seeds
    outputs: tuple[str, ...] = ()  # with band: the outputs it may explain
    no_model: str = ""  # with band: why no model reproduces the kernel
    returns: str | None = None  # the dtype the framework returns in place of the claim's

    def covers(self, item_id: str, framework: str, device: str, dtype: str,
               reads: frozenset[str] | None = None) -> bool:
        """The static part of the condition: which items, whose framework, device and dtype, and
        (`reads`: the names the variant's code reads) whether the variant calls the kernel."""
        if framework != self.framework or (self.device is not None and device != self.device):
            return False
        if self.dtypes is not None and dtype not in self.dtypes:
            return False
        if self.calls and reads is not None and not set(self.calls) & reads:
            return False
        return any(_matches(item_id, pattern) for pattern in self.items)

    def applies(self, *, version: str, cpu_kernels: str | None, precision: str,
                any_release: bool = False) -> bool:
        """The run-time part: the framework's version (unless `any_release`), the CPU kernels in
        force, the precision."""
        if self.versions is not None and not any_release:
            try:
                if Version(version) not in self.versions:
                    return False
            except InvalidVersion:
                return False
        if self.cpu_kernels is not None and (cpu_kernels or "").lower() != self.cpu_kernels.lower():
            return False
        return self.precision is None or precision == self.precision

    def must_show(self, item_id: str) -> bool:
        return any(_matches(item_id, pattern) for pattern in self.always)

    def raised(self, exception: Iterable[str], reason: str) -> bool:
        """Whether an error is this entry's (a `raises` entry)."""
        return self.raises is not None and self.raises in exception and (
            self.match is None or re.search(self.match, reason) is not None)

    @property
    def symptom(self) -> str:
        if self.raises is not None:
            return f"{self.raises}" + (f" matching {self.match!r}" if self.match else "")
        if self.returns is not None:
            return f"{self.returns} in place of the item's dtype, holding the {self.returns} computation"
        if self.band is not None:
            return f"half_ulps in [{self.band[0]:g}, {self.band[1]:g}] on {', '.join(self.outputs)}"
        return f"the answer of the {'/'.join(self.sites)} kernel summing in {self.model} order"


@dataclass(frozen=True)
class Output:
    """One output that failed its bound: what came back, the oracle's answer, the derived bound and
    the magnitude sum|x||w| it was derived from (None under an exact bound)."""

    actual: Array
    expected: Array
    allowed: Array
    magnitude: Array | None


# The case's oracle recomputed with one site summed by an error model: output name -> answer.
Recompute = Callable[[emulation.Model], Mapping[str, Array]]


def half_ulps(out: Output, dtype: str) -> float:
    """max |actual - oracle| / (u_dtype * sum|x||w|): the error in units of one half-precision
    rounding of the magnitude. A sum of K terms in the half dtype, in any order, errs by at most
    about K such units; a wrong answer (a dropped term, a flipped kernel) by about 1/u_dtype."""
    if out.magnitude is None:
        return math.inf
    scale = tolerance.UNIT_ROUNDOFF[dtype] * np.asarray(out.magnitude, dtype=np.float64)
    diff = np.abs(np.asarray(out.actual, dtype=np.float64) - out.expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        units = np.where(diff == 0, 0.0, diff / scale)
    return float(np.nan_to_num(units, nan=np.inf).max(initial=0.0))


def explain(d: Defect, failed: Mapping[str, Output], dtype: str, recompute: Recompute) -> dict[str, float]:
    """The failed outputs this entry's symptom explains, each with how it fits the symptom: for a
    model, its error_ratio against the model's answer (<= 1); for a band, its half_ulps (in the band)."""
    if dtype not in HALF or d.returns is not None:
        return {}
    if d.band is not None:
        lo, hi = d.band
        units = {n: half_ulps(out, dtype) for n, out in failed.items() if n in d.outputs}
        return {n: u for n, u in units.items() if lo <= u <= hi}
    if d.model is None or not d.sites:
        return {}
    fits: dict[str, float] = {}
    for site in d.sites:
        rest = {n: out for n, out in failed.items() if n not in fits}
        if rest:
            fits.update(_fit_model(recompute(emulation.Model(site, d.model, dtype)), rest, dtype))
    return fits


def _fit_model(answer: Mapping[str, Array], failed: Mapping[str, Output], dtype: str) -> dict[str, float]:
    """The failed outputs the model's answer explains, with their error_ratio against it."""
    fits = {}
    for name, out in failed.items():
        if name not in answer or np.shape(answer[name]) != np.shape(out.actual):
            continue
        if np.array_equal(answer[name], out.expected):
            continue  # the kernel does not produce this output: its error is something else
        # A model pins the order of the half-precision additions, not of the float32 sums inside a
        # GEMM (BLAS blocks them as it likes): their last bits can tip one half rounding of a
        # partial sum the other way, u_dtype * |partial| <= u_dtype * sum|x||w|.
        allowed = out.allowed
        if out.magnitude is not None:
            allowed = allowed + tolerance.UNIT_ROUNDOFF[dtype] * np.asarray(out.magnitude, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.abs(np.asarray(out.actual, dtype=np.float64) - answer[name])
            ratio = np.where(diff == 0, 0.0, diff / allowed)
        worst = float(np.nan_to_num(ratio, nan=np.inf).max(initial=0.0))
        if worst <= 1.0:
            fits[name] = worst
    return fits


def load(path: Path) -> tuple[Defect, ...]:
    """Read and check the file; a missing file means no known defects."""
    if not path.is_file():
        return ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DefectFileError(f"{path}: not valid TOML: {e}") from None
    unknown_tables = sorted(set(data) - {"defect"})
    if unknown_tables:
        raise DefectFileError(f"{path}: unknown table(s) {unknown_tables}; entries are [[defect]] tables")
    entries = data.get("defect", [])
    defects = [_entry(path, i, raw) for i, raw in enumerate(entries)]
    ids = [d.id for d in defects]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise DefectFileError(f"{path}: entry ids must be unique; repeated: {repeated}")
    return tuple(defects)


def _entry(path: Path, index: int, raw: Any) -> Defect:
    name = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"

    def bad(what: str) -> DefectFileError:
        return DefectFileError(f"{path}: entry {name!r}: {what}")

    def patterns(key: str, default: list[str]) -> tuple[str, ...]:
        value = raw.get(key, default)
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(p, str) and ("::" in p or p == "*")
                                                  for p in value):
            raise bad(f"{key} must be patterns like 'case::variant[framework-device-dtype-params]' "
                      "(* allowed)")
        return tuple(value)

    if not isinstance(raw, dict):
        raise bad("must be a [[defect]] table")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise bad(f"missing {', '.join(missing)}; every entry names {', '.join(REQUIRED)}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise bad(f"unknown key(s) {unknown}; use {', '.join(REQUIRED + OPTIONAL)}")
    if raw["framework"] not in NAMES:
        raise bad(f"framework {raw['framework']!r} unknown; use one of {', '.join(NAMES)}")
    if raw.get("device") is not None and raw["device"] not in DEVICES:
        raise bad(f"device {raw['device']!r} unknown; use one of {', '.join(DEVICES)}")
    if raw.get("precision") is not None and raw["precision"] not in PRECISIONS:
        raise bad(f"precision {raw['precision']!r} unknown; use one of {', '.join(PRECISIONS)}")
    dtypes = raw.get("dtypes")
    if dtypes is not None and (not isinstance(dtypes, list) or not set(dtypes) <= set(DTYPES) or not dtypes):
        raise bad(f"dtypes must be a list of {', '.join(DTYPES)}, got {dtypes!r}")
    if not str(raw["upstream"]).startswith("https://"):
        raise bad("upstream must be the https:// address of the framework's own issue or pull request")
    kinds = [k for k in ("raises", "model", "band", "returns") if raw.get(k)]
    if len(kinds) != 1:
        raise bad("give exactly one symptom: raises = \"ErrorClass\" (with match = regex), model = \"order\" "
                  "with site = \"oracle site\" (an error model), band = [lo, hi] with outputs and "
                  "no_model (a measured band, where no model reproduces the kernel), or returns = \"dtype\" "
                  "(the dtype returned in place of the claim's)")
    kind = kinds[0]
    if kind == "returns" and raw["returns"] not in DTYPES:
        raise bad(f"returns {raw['returns']!r} unknown; use one of {', '.join(DTYPES)}")
    if kind == "returns" and "items" not in raw:
        raise bad("a returns entry names its items (a case whose output_dtype says what they return)")
    if kind != "raises" and raw.get("match") is not None:
        raise bad("match reads an error's message: only a raises entry has one")
    if raw.get("match") is not None:
        try:
            re.compile(raw["match"])
        except re.error as e:
            raise bad(f"match is not a regular expression: {e}") from None
    if kind == "model":
        sites = raw.get("site")
        sites = [sites] if isinstance(sites, str) else sites
        if not isinstance(sites, list) or not sites or not set(sites) <= set(oracle.SITES):
            raise bad(f"site {raw.get('site')!r} unknown; use one (or a list) of {', '.join(oracle.SITES)}")
        if raw["model"] not in emulation.ORDERS:
            raise bad(f"model {raw['model']!r} unknown; use one of {', '.join(emulation.ORDERS)}")
        if dtypes is None or not set(dtypes) <= set(HALF):
            raise bad("an error model emulates half-precision sums: dtypes must list "
                      f"{' and/or '.join(HALF)}")
    elif raw.get("site") is not None or (kind != "band" and (raw.get("outputs") or raw.get("no_model"))):
        raise bad("site goes with model; outputs and no_model go with band")
    band = None
    if kind == "band":
        b = raw["band"]
        if not (isinstance(b, list) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b)
                and 0 <= b[0] <= b[1]):
            raise bad(f"band must be [lo, hi] with 0 <= lo <= hi (half_ulps of failed outputs), got {b!r}")
        if dtypes is None or not set(dtypes) <= set(HALF):
            raise bad(f"a band measures half-precision drift: dtypes must list {' and/or '.join(HALF)}")
        if not raw.get("outputs") or not raw.get("no_model") or "items" not in raw:
            raise bad("a band needs outputs (the names it may explain), items (where it was measured) "
                      "and no_model (why no error model reproduces the kernel)")
        band = (float(b[0]), float(b[1]))
    if kind == "raises" and "items" not in raw:
        raise bad("a raises entry names its items")
    calls = raw.get("calls", [])
    if not isinstance(calls, list) or not set(calls) <= set(CASE_API) | set(OWN_NAMES):
        raise bad(f"calls must list fw functions (equiv.frameworks.CASE_API or a module's OWN), "
                  f"got {calls!r}")
    items = patterns("items", ["*"])
    always = patterns("always", list(items) if kind == "raises" else [])
    versions = None
    if raw.get("versions"):
        try:
            versions = SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise bad(f"versions {raw['versions']!r} is not a version range such as '>=2.19,<2.22'") from None
    return Defect(
        id=str(raw["id"]), framework=raw["framework"], upstream=raw["upstream"],
        summary=" ".join(str(raw["summary"]).split()), items=items, always=always, versions=versions,
        device=raw.get("device"), cpu_kernels=raw.get("cpu_kernels"), precision=raw.get("precision"),
        dtypes=tuple(dtypes) if dtypes else None, raises=raw.get("raises"), match=raw.get("match"),
        sites=tuple([raw["site"]] if isinstance(raw.get("site"), str) else raw.get("site", ())),
        calls=tuple(calls), model=raw.get("model"), band=band, outputs=tuple(raw.get("outputs", ())),
        no_model=" ".join(str(raw.get("no_model", "")).split()), returns=raw.get("returns"),
    )


def holding(known: Iterable[Defect], *, version: str, cpu_kernels: str | None, dtype: str,
            precision: str, any_release: str | None = None) -> list[Defect]:
    """The entries whose run-time condition holds for a result (`precision` is the run's: it
    applies to float32 results only). Entry `any_release` holds at every framework release."""
    effective = precision if dtype == "float32" else "ieee"
    return [d for d in known if d.applies(version=version, cpu_kernels=cpu_kernels, precision=effective,
                                          any_release=d.id == any_release)]


def find(defects: tuple[Defect, ...], item_id: str, framework: str, device: str, dtype: str,
         reads: frozenset[str] | None = None) -> tuple[Defect, ...]:
    """Every entry covering the result, in file order."""
    return tuple(d for d in defects if d.covers(item_id, framework, device, dtype, reads))


def stale(defects: tuple[Defect, ...], defined: dict[str, set[str]], case_files: Iterable[str]) -> list[str]:
    """Why each entry matches nothing: a pattern naming no case file, or no item its case defines.

    `defined` holds, per case loaded in this run, every item id it defines (all frameworks, devices
    and dtypes, whatever was selected), so running a subset never makes an entry look stale. A
    pattern whose parameters name no grid point but whose case, variant, framework, device and dtype
    do is not stale: fuzzing draws points off the grid (an entry widened for them, d3 where the grid
    has d1 and d2), which no run can list.
    """
    files = list(case_files)
    out = []
    for d in defects:
        for pattern in dict.fromkeys((*d.items, *d.always)):
            case = pattern.split("::", 1)[0]
            if not any(_matches(f, case) for f in files):
                out.append(f"known-defect entry {d.id!r}: {pattern!r} names no case file; fix or remove it")
                continue
            loaded = [ids for name, ids in defined.items() if _matches(name, case)]
            if len(loaded) < len([f for f in files if _matches(f, case)]):
                continue  # some of the cases it names were not loaded: no verdict on this run
            off_grid = re.sub(r"\[((?:[^-\]]*-){3}).*\]$", r"[\1*]", pattern)
            if loaded and not any(_matches(i, pattern) or _matches(i, off_grid)
                                  for ids in loaded for i in ids):
                out.append(f"known-defect entry {d.id!r}: {pattern!r} matches none of the items its case "
                           "defines (a variant or parameter was renamed?); fix or remove it")
    return out


def tally(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """Per entry, over a run's result records: (covered: results it held for, showed: of those,
    beyond their bound or raising, absorbed: of those, xfailed by it)."""
    out: dict[str, list[int]] = {}
    for r in records:
        absorbed = set((r.get("known_outputs") or {}).values())
        absorbed |= set(filter(None, (r.get("known_defect") or "").split(", ")))
        for entry in r.get("covered_by") or ():
            t = out.setdefault(entry, [0, 0, 0])
            t[0] += 1
            t[1] += r["outcome"] in (*BAD, Outcome.XFAILED)
            t[2] += entry in absorbed
    return {k: (c, sh, a) for k, (c, sh, a) in out.items()}


# A run of this many seeds is long enough for an entry that never showed to be called unused.
SEEDS_TO_JUDGE = 20


def unused(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The entries that held for some results of a run and absorbed none of them."""
    return [f"known-defect entry {e!r} held for {c} results and absorbed none: narrow or remove it"
            for e, (c, _, a) in sorted(tally(records).items()) if not a]


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # Only * and ? are wildcards: item ids contain [ ], which fnmatch would read as a character set.
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def _matches(item_id: str, pattern: str) -> bool:
    return _pattern(pattern).match(item_id) is not None
