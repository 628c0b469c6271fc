"""The mutation self-test's tally: a fixture that records each planted mistake, a summary line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_KEY = "equiv_mutation"
_tally: dict[str, tuple[str, bool, bool | None]] = {}  # nodeid -> (mutant, caught, hint seen)


@pytest.fixture
def mutation_record(request: pytest.FixtureRequest) -> Callable[[str, bool, bool | None], None]:
    """record(mutant, caught, hint_seen): kept in the item's report, so it reaches the xdist controller."""

    def record(name: str, caught: bool, hint_seen: bool | None) -> None:
        request.node.user_properties.append((_KEY, (name, caught, hint_seen)))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == _KEY and report.when == "call":
            _tally[report.nodeid] = tuple(value)  # type: ignore[assignment]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _tally:
        return
    rows = list(_tally.values())
    caught = [name for name, ok, _ in rows if ok]
    hinted = [hint for _, _, hint in rows if hint is not None]
    line = f"mutation self-test: {len(caught)} of {len(rows)} planted mistakes caught"
    line += f"; expected hint shown for {sum(hinted)} of {len(hinted)}"
    missed = [name for name, ok, _ in rows if not ok]
    missed += [f"{name} (no hint)" for name, ok, hint in rows if ok and hint is False]
    terminalreporter.write_line(line + (f"; missed: {', '.join(missed)}" if missed else ""))


@pytest.fixture(scope="session")
def frameworks_imported_before_pytester() -> None:
    """runpytest_inprocess drops modules first imported during a run; jaxlib cannot be imported twice."""
    from equiv import frameworks

    for name in ("jax", "torch"):
        frameworks.load(name)
