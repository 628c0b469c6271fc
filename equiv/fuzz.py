"""Fuzzing a claim off its grid: hypothesis draws points of the claim's domain and a seed, each draw is
judged as a grid item is (oracle, bounds, known defects, report), and a failure shrinks to the smallest
failing point, printed as one pytest command that replays it without hypothesis (`--equiv-params`).

A case's `domain` is where its claim holds: like `grid`, a dict (or a list of dicts) from parameter to
its values, but read as a space to draw from, with `where=` still applied:

    range(1, 8)          an integer, shrinking towards the low end
    ["same", "valid"]    one of these, shrinking towards the first
    lambda p: ...        values that depend on the parameters drawn before it (p holds them), e.g.
                         `lambda p: divisors(p.C)` for groups, or `per_axis(range(1, 8))` for a tuple
    a hypothesis strategy, used as it is

A parameter the domain leaves out keeps its grid values; a claim without a domain is fuzzed over its
grid's values combined freely (sub-grids with the same parameters pooled): wider than its grid.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from equiv.case import Case, Params

PROFILES = ("ci", "nightly", "local")
SEEDS = 2**32  # a draw's input seed is in [0, SEEDS): inputs depend on (case, params, seed) only


class ParamsError(ValueError):
    """A bad --equiv-params value, or one that names no point of the case."""


def per_axis(values: Sequence[Any] | range, axes: str = "nd") -> Callable[[Params], Any]:
    """A tuple of one value per spatial axis (`p.nd` of them, or the parameter named by `axes`),
    each drawn on its own: a kernel of (5, 1) where a grid would hold (3, 3)."""
    def spec(p: Params) -> Any:
        from hypothesis import strategies as st

        return st.tuples(*[strategy(values) for _ in range(int(p[axes]))])

    return spec


def divisors(n: int) -> list[int]:
    """Every divisor of n, smallest first: the groups a conv over n channels may take."""
    return [d for d in range(1, n + 1) if n % d == 0]


def domains(case: Case) -> list[dict[str, Any]]:
    """The spaces the claim is declared true over: its grid's values combined freely (sub-grids with the
    same parameters pooled), with what its domain declares in their place. A grid parameter the domain
    leaves out keeps the grid's values; a domain-only parameter comes after the grid's, in the
    domain's order (so a grid point drawn again has its grid id)."""
    grids = [case.grid] if isinstance(case.grid, Mapping) else list(case.grid)
    pooled: dict[tuple[str, ...], dict[str, Any]] = {}
    for g in grids:
        space = pooled.setdefault(tuple(g), {k: [] for k in g})
        for k, values in g.items():
            space[k] += [v for v in values if v not in space[k]]
    spaces = list(pooled.values())
    if not case.domain:
        return spaces
    declared = [dict(case.domain)] if isinstance(case.domain, Mapping) else [dict(d) for d in case.domain]
    out = []
    for d in declared:
        # The grid space this domain widens: the one sharing the most parameters with it; on a tie, the
        # one with the fewest parameters the domain does not name (grid order never decides).
        g = max(spaces, key=lambda sp: (len(set(sp) & set(d)), -len(set(sp) - set(d))), default={})
        out.append({**{k: d.get(k, values) for k, values in g.items()},
                    **{k: v for k, v in d.items() if k not in g}})
    return out


def strategy(spec: Any) -> Any:
    """The hypothesis strategy for one parameter's declared values."""
    from hypothesis import strategies as st
    from hypothesis.strategies import SearchStrategy

    if isinstance(spec, SearchStrategy):
        return spec
    if isinstance(spec, range):
        if len(spec) == 0:
            raise ValueError(f"{spec!r} is empty")
        if spec.step == 1:
            return st.integers(spec.start, spec.stop - 1)
        return st.integers(0, len(spec) - 1).map(spec.__getitem__)
    if isinstance(spec, (list, tuple)) and spec:
        return st.sampled_from(list(spec))
    raise ValueError(f"{spec!r} is not a range, a non-empty list, a function of the earlier parameters "
                     "or a hypothesis strategy")


def draw_point(data: Any, case: Case) -> Params:
    """One point of the claim's domain, drawn parameter by parameter (so each shrinks on its own)."""
    from hypothesis import assume
    from hypothesis import strategies as st

    spaces = domains(case)
    space = spaces[0] if len(spaces) == 1 else data.draw(st.sampled_from(spaces), label="domain")
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if callable(spec):  # values that depend on the parameters drawn before it
            spec = spec(Params(values))
        values[key] = data.draw(strategy(spec), label=key)
    point = Params(values)
    assume(case.where is None or case.where(point))
    return point


def format_params(p: Params) -> str:
    """`nd=2,k=(5,3),padding=same`: what --equiv-params reads back to the same point and id."""
    def value(v: Any) -> str:
        if isinstance(v, str) and v.isidentifier() and v not in ("True", "False", "None"):
            return v
        if isinstance(v, (tuple, list)):
            inner = ",".join(value(x) for x in v)
            return f"({inner}{',' if len(v) == 1 else ''})" if isinstance(v, tuple) else f"[{inner}]"
        return repr(v)

    return ",".join(f"{k}={value(v)}" for k, v in p.items())


def parse_params(text: str) -> dict[str, Any]:
    """--equiv-params `k=v,k2=v2`: each value a Python literal (3, (5,3), 1.5, True), else a word."""
    pieces, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += ch
    pieces.append(current)
    out: dict[str, Any] = {}
    for piece in pieces:
        key, eq, raw = piece.strip().partition("=")
        if not eq or not key.strip().isidentifier():
            raise ParamsError(f"--equiv-params: {piece.strip()!r} is not NAME=VALUE; give e.g. "
                              "'nd=2,k=(5,3),padding=same' (the reproduction line of a fuzz failure)")
        try:
            out[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = raw.strip()
    return out


def point_of(values: Mapping[str, Any], case: Case) -> Params:
    """The --equiv-params point as the case names it: its parameters in the order of the case's grid or
    domain (so the id is the one a fuzz run printed), and inside `where`."""
    spaces = domains(case) + ([case.grid] if isinstance(case.grid, Mapping) else list(case.grid))
    for space in spaces:
        if set(space) == set(values):
            point = Params({k: values[k] for k in space})
            if case.where is not None and not case.where(point):
                raise ParamsError(f"--equiv-params {format_params(point)}: outside the claim (its where= "
                                  "rejects it)")
            return point
    names = sorted({", ".join(space) for space in spaces})
    raise ParamsError(f"--equiv-params names {', '.join(values)}; this case's parameters are "
                      f"{' or '.join(names)}")


def reproduction(path: str, p: Params, seed: int, device: str, dtype: str, frameworks: Sequence[str],
                 cpu_kernels: str, values: str = "normal") -> str:
    """One command that replays a fuzzed point as ordinary items, without hypothesis."""
    args = ["pytest", path, "--equiv-params", format_params(p), "--equiv-seed", str(seed),
            "--equiv-device", device, "--equiv-dtype", dtype, "--equiv-framework", ",".join(frameworks)]
    if values != "normal":
        args += ["--equiv-values", values]
    if cpu_kernels != "default":
        args += ["--equiv-cpu-kernels", cpu_kernels]
    return shlex.join(args)


def settings(profile: str, examples: int, database: Any) -> Any:
    """hypothesis settings for one batch of draws. ci: derandomized, no database (the same draws on
    every run, so a red CI is reproducible); nightly and local: random, failures kept in `database`
    and replayed first next time."""
    from hypothesis import HealthCheck, Phase, Verbosity
    from hypothesis import settings as hs
    from hypothesis.database import DirectoryBasedExampleDatabase

    ci = profile == "ci"
    return hs(
        max_examples=examples,
        derandomize=ci,
        database=None if ci or database is None else DirectoryBasedExampleDatabase(str(database)),
        deadline=None,  # a first JAX compile takes a second; time is no verdict here
        # `where` and variants' when= narrow the domain by rejection; a slow draw is a compile.
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,  # the failure's message carries its reproduction
        print_blob=False,
    )
