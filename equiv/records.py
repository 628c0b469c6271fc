"""The records a test's call report carries, one per framework it ran, and the rule a test's
outcome follows from them: read by the plugin, the reporter and the tests alike."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """A result's outcome, as the report writes it (the members are their own JSON strings)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the framework raised something that is no declared refusal
    SKIPPED = "skipped"
    XFAILED = "xfailed"  # a known defect's symptom observed
    XPASSED = "xpassed"  # merged reports only: an expected failure that passed

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


BAD = (Outcome.FAILED, Outcome.ERROR)  # outcomes that fail a test

# The keys of a result's record, in the report's order (runner.Result.record writes them).
FIELDS = ("id", "case", "variant", "expect", "framework", "device", "dtype", "params", "outcome",
          "max_abs_error", "max_rel_error", "error_ratio", "reason", "tolerance", "ran_on", "precision",
          "seed", "values", "fuzzed", "nondeterministic", "exception", "cpu_kernels", "known_defect",
          "known_outputs", "covered_by", "known_fit", "seconds")


def results_of(report: Any) -> list[dict[str, Any]]:
    """The per-framework records a test's call report carries (none on other phases and other tests)."""
    return list(getattr(report, "equiv_results", ()))


def pairwise_of(report: Any) -> list[dict[str, Any]]:
    return list(getattr(report, "equiv_pairwise", ()))


def only_crashes(outcomes: Iterable[str]) -> bool:
    """A test whose failed results are all framework crashes counts as an error, not a failure."""
    bad = [o for o in outcomes if o in BAD]
    return bool(bad) and all(o == Outcome.ERROR for o in bad)
