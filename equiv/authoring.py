"""A case file's own mistakes, told apart from the frameworks' errors and named by file and line.

Two places find them:

* at collection, `check` draws the inputs at the case's first grid point, binds the oracle's and each
  variant's signature to them and runs the oracle once: a missing or misspelled parameter, or an
  oracle that cannot run, is one collection error naming the file, the line and the fix;
* at run time, `CaseCodeError` marks an exception raised by the case file's own code (the innermost
  frame is in the case file, not in a framework): a misspelled name in a variant is the case's, and
  no framework is blamed for it.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from equiv.case import Case, Params

KEYWORDS = ("each key of the @case.inputs dict is passed to the oracle and to every variant as a "
            "keyword argument")


class CaseCodeError(Exception):
    """An exception raised in the case file's own code; the message is one line with file:line."""


def line_in(e: BaseException, filename: str) -> int | None:
    """The line of the innermost frame of `e`'s traceback, when that frame is in `filename`."""
    frames = traceback.extract_tb(e.__traceback__)
    return frames[-1].lineno if frames and frames[-1].filename == filename else None


def last_line_in(e: BaseException, filename: str) -> int | None:
    """The line of the innermost frame of `e`'s traceback that is in `filename`, wherever it raised."""
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None


def def_line(fn: Callable[..., Any]) -> int:
    """The line of `fn`'s def (its code object starts at its first decorator)."""
    first = fn.__code__.co_firstlineno
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return first
    defs = (start + i for i, text in enumerate(lines) if text.lstrip().startswith(("def ", "async def ")))
    return next(defs, first)


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else '(no message)'}"


def check(case: Case, path: Path) -> list[str]:
    """Mistakes found by drawing the inputs and binding every function to them: the oracle at the
    first grid point, each variant at the first point it applies to. The oracle runs once."""
    assert case.draw is not None and case.expected is not None
    filename = str(path)
    points = [point.at(case.dtypes[0], "cpu") for point in case.points()]
    drawn: dict[str, dict[str, Any]] = {}

    def where(fn: Callable[..., Any], e: BaseException | None = None) -> str:
        line = last_line_in(e, filename) if e is not None else None
        return f"{path}:{line or def_line(fn)}"

    def inputs(p: Params) -> dict[str, Any]:
        if p.id not in drawn:
            drawn[p.id] = dict(case.draw(np.random.default_rng(0), p))  # type: ignore[misc]
        return drawn[p.id]

    uses: list[tuple[str, Callable[..., Any], Params, tuple[None, ...]]] = [
        ("the oracle", case.expected, points[0], ())]
    for v in case.variants:
        p = next((q for q in points if v.applies(q)), None)
        if p is not None:
            uses.append((f"variant {v.name!r}", v.fn, p, (None,)))
    problems = []
    for kind, fn, p, head in uses:
        try:
            given = inputs(p)
        except Exception as e:
            return [f"{where(case.draw, e)}: @case.inputs {case.draw.__name__} raised at {p.id}: "
                    f"{one_line(e)}"]
        try:
            inspect.signature(fn).bind(*head, p, **given)
        except TypeError as e:
            problems.append(f"{where(fn)}: {kind} {fn.__name__}{inspect.signature(fn)} cannot take the "
                            f"inputs {sorted(given)} that @case.inputs draws at {p.id} ({e}); {KEYWORDS}")
    if problems:
        return problems
    p = points[0]
    try:
        case.expected(p, **{k: np.asarray(v, dtype=np.float64) for k, v in inputs(p).items()})
    except Exception as e:
        return [f"{where(case.expected, e)}: the oracle {case.expected.__name__} raised at {p.id}: "
                f"{one_line(e)}"]
    return []
