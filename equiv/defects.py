"""Known framework defects: one reviewed TOML file of conditional, strict expected failures.

Each entry names the results it covers (ids `case::variant[framework-device-dtype-params]`, in the
field `items`), the condition under which the framework shows the defect, the symptom and the upstream
report. A result that matches and shows the symptom is recorded xfailed with the entry's summary (its
test is xfailed unless another framework in it failed); one that passes instead fails with "no longer
reproduces", so a framework release that fixes (or a machine that avoids) the defect is noticed the
same day. Only genuine framework defects, looked up upstream, belong here: never equiv's own mapping
mistakes.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from equiv.frameworks import DEVICES, NAMES, PRECISIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REQUIRED = ("id", "items", "framework", "upstream", "summary")
OPTIONAL = ("versions", "device", "cpu_kernels", "precision", "raises", "match", "differs", "strict")


class DefectFileError(ValueError):
    """The known-defects file cannot be used; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Defect:
    id: str
    items: tuple[str, ...]  # patterns (* and ?) over ids case::variant[framework-device-dtype-params]
    framework: str
    upstream: str
    summary: str
    versions: SpecifierSet | None = None
    device: str | None = None
    cpu_kernels: str | None = None  # the CPU kernel library in force, as the report names it
    precision: str | None = None
    raises: str | None = None  # an exception class name (or one of its bases)
    match: str | None = None  # regex searched in the error's message
    differs: bool = False
    # False when the symptom depends on the inputs (a rounding drift that some draws keep inside the
    # bound): a covered item that passes then stays passed. Keep a strict entry on items that always
    # show the symptom, so that a fix is still noticed.
    strict: bool = True

    def covers(self, item_id: str, framework: str, device: str) -> bool:
        """The static part of the condition: which items, whose framework, on which device."""
        if framework != self.framework or (self.device is not None and device != self.device):
            return False
        return any(_matches(item_id, pattern) for pattern in self.items)

    def applies(self, *, version: str, cpu_kernels: str | None, precision: str) -> bool:
        """The run-time part: the framework's version, the CPU kernels in force, the precision."""
        if self.versions is not None:
            try:
                if Version(version) not in self.versions:
                    return False
            except InvalidVersion:
                return False
        if self.cpu_kernels is not None and (cpu_kernels or "").lower() != self.cpu_kernels.lower():
            return False
        return self.precision is None or precision == self.precision

    def observed(self, outcome: str, exception: Iterable[str], reason: str) -> bool:
        """Whether a result shows this defect's symptom."""
        if self.differs:
            return outcome == "failed" and (self.match is None or re.search(self.match, reason) is not None)
        return outcome == "error" and self.raises is not None and self.raises in exception and (
            self.match is None or re.search(self.match, reason) is not None
        )

    @property
    def symptom(self) -> str:
        if self.differs:
            return "a result beyond its bound" + (f" matching {self.match!r}" if self.match else "")
        return f"{self.raises}" + (f" matching {self.match!r}" if self.match else "")


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

    if not isinstance(raw, dict):
        raise bad("must be a [[defect]] table")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise bad(f"missing {', '.join(missing)}; every entry names {', '.join(REQUIRED)}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise bad(f"unknown key(s) {unknown}; use {', '.join(REQUIRED + OPTIONAL)}")
    items = raw["items"]
    if isinstance(items, str):
        items = [items]
    if not items or not all(isinstance(p, str) and "::" in p for p in items):
        raise bad("items must be patterns like 'case::variant[framework-device-dtype-params]' (* allowed)")
    if raw["framework"] not in NAMES:
        raise bad(f"framework {raw['framework']!r} unknown; use one of {', '.join(NAMES)}")
    if raw.get("device") is not None and raw["device"] not in DEVICES:
        raise bad(f"device {raw['device']!r} unknown; use one of {', '.join(DEVICES)}")
    if raw.get("precision") is not None and raw["precision"] not in PRECISIONS:
        raise bad(f"precision {raw['precision']!r} unknown; use one of {', '.join(PRECISIONS)}")
    if not str(raw["upstream"]).startswith("https://"):
        raise bad("upstream must be the https:// address of the framework's own issue or pull request")
    if bool(raw.get("raises")) == bool(raw.get("differs")):
        raise bad("give exactly one symptom: raises = \"ErrorClass\" (with match = regex), or differs = true")
    if not isinstance(raw.get("strict", True), bool):
        raise bad("strict must be true or false")
    if raw.get("match") is not None:
        try:
            re.compile(raw["match"])
        except re.error as e:
            raise bad(f"match is not a regular expression: {e}") from None
    versions = None
    if raw.get("versions"):
        try:
            versions = SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise bad(f"versions {raw['versions']!r} is not a version range such as '>=2.19,<2.22'") from None
    return Defect(
        id=str(raw["id"]), items=tuple(items), framework=raw["framework"], upstream=raw["upstream"],
        summary=" ".join(str(raw["summary"]).split()), versions=versions, device=raw.get("device"),
        cpu_kernels=raw.get("cpu_kernels"), precision=raw.get("precision"), raises=raw.get("raises"),
        match=raw.get("match"), differs=bool(raw.get("differs", False)), strict=raw.get("strict", True),
    )


def find(defects: tuple[Defect, ...], item_id: str, framework: str, device: str) -> tuple[Defect, ...]:
    """Every entry covering the item, in file order; the first whose run-time condition holds applies."""
    return tuple(d for d in defects if d.covers(item_id, framework, device))


def stale(defects: tuple[Defect, ...], defined: dict[str, set[str]], case_files: Iterable[str]) -> list[str]:
    """Why each entry matches nothing: a pattern naming no case file, or no item its case defines.

    `defined` holds, per case loaded in this run, every item id it defines (all frameworks, devices
    and dtypes, whatever was selected), so running a subset never makes an entry look stale.
    """
    files = list(case_files)
    out = []
    for d in defects:
        for pattern in d.items:
            case = pattern.split("::", 1)[0]
            if not any(_matches(f, case) for f in files):
                out.append(f"known-defect entry {d.id!r}: {pattern!r} names no case file; fix or remove it")
                continue
            loaded = [ids for name, ids in defined.items() if _matches(name, case)]
            if loaded and not any(_matches(i, pattern) for ids in loaded for i in ids):
                out.append(f"known-defect entry {d.id!r}: {pattern!r} matches none of the items its case "
                           "defines (a variant or parameter was renamed?); fix or remove it")
    return out


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # Only * and ? are wildcards: item ids contain [ ], which fnmatch would read as a character set.
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def _matches(item_id: str, pattern: str) -> bool:
    return _pattern(pattern).match(item_id) is not None
