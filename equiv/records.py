"""The records a test's call report carries, one per framework it ran, and the rule a test's
outcome follows from them: read by the plugin, the reporter and the tests alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def results_of(report: Any) -> list[dict[str, Any]]:
    """The per-framework records a test's call report carries (none on other phases and other tests)."""
    return list(getattr(report, "equiv_results", ()))


def pairwise_of(report: Any) -> list[dict[str, Any]]:
    return list(getattr(report, "equiv_pairwise", ()))


def only_crashes(outcomes: Iterable[str]) -> bool:
    """A test whose failed results are all framework crashes counts as an error, not a failure."""
    bad = [o for o in outcomes if o in ("failed", "error")]
    return bool(bad) and all(o == "error" for o in bad)
