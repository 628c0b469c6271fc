"""What a case file declares: a parameter grid, how to draw inputs, the oracle, and variants.

A case file in `cases/` holds one claim::

    case = Case(grid={"L": [7, 8], "k": [1, 3]})

    @case.inputs
    def draw(rng, p):                      # float64 NumPy arrays, from a seeded Generator
        return {"x": rng.standard_normal((2, p.L, 3)), "w": rng.standard_normal((p.k, 3, 4))}

    @case.oracle
    def expected(p, x, w):                 # NumPy float64, inputs already rounded to the dtype
        return oracle.conv(x, w, layout="channels_last")

    @case.variant                          # runs in every framework
    def native(fw, p, x, w):               # fw: equiv.frameworks.<name>; x, w: its arrays
        return fw.conv(x, w, layout="channels_last")

The plugin makes one pytest item per (variant, framework, device, dtype, params) and compares.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from equiv import tolerance
from equiv.frameworks import BUILTIN, DEVICES, DTYPES, Unsupported
from equiv.frameworks import names as registered

__all__ = ["Case", "Params", "Unsupported", "Variant", "conv_inputs"]

EXPECTATIONS = ("equal", "differs")
# How an item's input values are spread: as the case draws them, or `wide` (each element times its own
# power of two, a share exactly zero; runner.draw_inputs). A case opts in to `wide` where its claim
# holds for any values (a claim whose inputs are indicator weights or chosen ranges does not).
VALUE_MODES = ("normal", "wide")


class Params(Mapping[str, Any]):
    """One point of a case's grid: read-only, with attribute access (p.k) and a stable id."""

    __slots__ = ("_values", "_id", "_dtype", "_device")

    def __init__(self, values: Mapping[str, Any], dtype: str | None = None,
                 device: str | None = None) -> None:
        object.__setattr__(self, "_values", dict(values))
        pieces = "-".join(_id_piece(k, v) for k, v in self._values.items())
        object.__setattr__(self, "_id", pieces or "default")
        object.__setattr__(self, "_dtype", dtype)
        object.__setattr__(self, "_device", device)

    def __getattr__(self, key: str) -> Any:
        if key in ("dtype", "device") and key not in self._values:
            value = self._dtype if key == "dtype" else self._device
            if value is None:
                raise AttributeError(f"p.{key} is the item's {key}, known once a point becomes an item")
            return value
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no parameter {key!r}; the grid has {sorted(self._values)}") from None

    def at(self, dtype: str, device: str | None = None) -> Params:
        """This point as an item of `dtype` (and `device`): p.dtype and p.device read them (a claim
        whose answer depends on them: where float16 overflows, what a CPU thread flushes); the id and
        the inputs do not change."""
        return Params(self._values, dtype, device)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values!r})"

    @property
    def id(self) -> str:
        """e.g. "channels_last-L8-k3-s2": strings as themselves, numbers after their name."""
        return str(self._id)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._values.items()}


def _id_piece(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key if value else f"no_{key}"
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return key + "x".join(str(v) for v in value)
    return f"{key}{value}"


def names_read(fn: Callable[..., Any]) -> frozenset[str]:
    """Every attribute and global name `fn`'s code reads, and that of the case-file functions it
    calls: a superset of the `fw` functions a variant calls (read statically, so a compiled program
    that is not traced again still counts)."""
    seen: set[int] = set()
    names: set[str] = set()

    def visit(code: types.CodeType, globals_: Mapping[str, Any]) -> None:
        if id(code) in seen:
            return
        seen.add(id(code))
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit(const, globals_)
        for name in code.co_names:
            helper = globals_.get(name)
            if isinstance(helper, types.FunctionType) and helper.__module__ == fn.__module__:
                visit(helper.__code__, helper.__globals__)

    visit(fn.__code__, getattr(fn, "__globals__", {}))
    return frozenset(names)


@dataclass(frozen=True)
class Variant:
    """One way of computing the claim's result; `only` (frameworks=) limits a variant about one API."""

    name: str
    fn: Callable[..., Any]
    only: tuple[str, ...] | None = None  # None: every registered framework, read when it is used
    when: Callable[[Params], bool] | None = None
    expect: str = "equal"
    raises: tuple[type[BaseException], ...] = ()
    match: str | None = None
    reason: str = ""

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks it runs in: those its frameworks= names, else every registered one."""
        return registered() if self.only is None else self.only

    def applies(self, p: Params) -> bool:
        return self.when is None or bool(self.when(p))


@dataclass
class Case:
    """A claim: declare it at module level as `case = Case(...)` and decorate its pieces."""

    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    # Where the claim holds, for fuzzing (equiv.fuzz): like grid, but each value a range, a list, a
    # function of the parameters before it, or a hypothesis strategy. None: the grid's values, pooled.
    domain: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    values: tuple[str, ...] = ("normal",)  # the VALUE_MODES its claim holds for
    where: Callable[[Params], bool] | None = None
    tolerance: tolerance.Bound = field(default_factory=tolerance.derived)
    dtypes: tuple[str, ...] = DTYPES
    # Which layout the result is in, for diagnostics (border and axis hints); a param name or a value.
    output_layout: str = "layout"
    # The dtype every framework output must have, from the item's point (p.dtype is the item's); None
    # checks nothing. For claims about what a policy returns (mixed precision).
    output_dtype: Callable[[Params], str] | None = None
    # The variant gets the inputs as NumPy arrays of the item's dtype, as a user hands them to an op,
    # not as the framework's arrays on the item's device. For claims about what ops do with NumPy.
    numpy_inputs: bool = False
    draw: Callable[..., Mapping[str, Any]] | None = None
    expected: Callable[..., Any] | None = None
    # (magnitude, terms) for a bound the oracle on |inputs| and on ones does not give (see magnitude()).
    error_model: Callable[..., tuple[Any, Any]] | None = None
    declared: list[Variant] = field(default_factory=list)  # the @case.variant functions, in order
    _gaps: dict[str, Variant] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def variants(self) -> list[Variant]:
        """The declared variants, then one per registered framework beyond the built-in three that
        skips, with the reason, wherever no declared variant runs that framework: a plugin's column
        shows every grid point without each claim naming it (the three must be covered: problems())."""
        for fw in registered():
            if fw not in BUILTIN and fw not in self._gaps:
                self._gaps[fw] = _gap(self, fw)
        return [*self.declared, *(self._gaps[fw] for fw in registered() if fw in self._gaps)]

    def inputs(self, fn: Callable[..., Mapping[str, Any]]) -> Callable[..., Mapping[str, Any]]:
        """Decorate `fn(rng, p) -> {name: float64 array}`."""
        self.draw = fn
        return fn

    def oracle(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate `fn(p, **inputs) -> array | tuple | dict` computed with `equiv.oracle`."""
        self.expected = fn
        return fn

    def magnitude(self, fn: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[Any, Any]]:
        """Decorate `fn(p, **inputs) -> (magnitude, terms)`, each shaped like the oracle's result.

        By default the magnitude is the oracle on |inputs| and the term count the oracle on ones. For
        a composition that is wrong twice: ReLU and max-pool gradients route by the signs and winners
        of the real activations, which |inputs| change, and ones multiply the layers' term counts where
        the error analysis adds them along a path. A composition declares both itself.
        """
        self.error_model = fn
        return fn

    @overload
    def variant(self, fn: Callable[..., Any]) -> Callable[..., Any]: ...
    @overload
    def variant(
        self,
        fn: None = None,
        *,
        frameworks: Iterable[str] = ...,
        when: Callable[[Params], bool] | None = ...,
        expect: str = ...,
        raises: type[BaseException] | tuple[type[BaseException], ...] = ...,
        match: str | None = ...,
        reason: str = ...,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def variant(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        frameworks: Iterable[str] | None = None,
        when: Callable[[Params], bool] | None = None,
        expect: str = "equal",
        raises: type[BaseException] | tuple[type[BaseException], ...] = (),
        match: str | None = None,
        reason: str = "",
    ) -> Any:
        """Decorate `fn(fw, p, **inputs) -> framework array(s)`.

        frameworks=None (the default) runs it in every registered framework, built-in or plugin.
        expect="differs" marks a known non-equivalence: it passes when the difference is observed.
        raises=Error (with match=regex) marks a known refusal: it passes when the call raises it.
        Both need a reason= saying what users should know.
        """

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            exc = raises if isinstance(raises, tuple) else (raises,)
            only = None if frameworks is None else tuple(frameworks)
            self.declared.append(Variant(f.__name__, f, only, when, expect, exc, match, reason))
            return f

        return register(fn) if fn is not None else register

    def points(self) -> list[Params]:
        """Every grid point that passes `where`, in declaration order."""
        grids = [self.grid] if isinstance(self.grid, Mapping) else list(self.grid)
        out: list[Params] = []
        for g in grids:
            keys = list(g)
            for combo in itertools.product(*(g[k] for k in keys)):
                p = Params(dict(zip(keys, combo, strict=True)))
                if self.where is None or self.where(p):
                    out.append(p)
        return out

    def layout_of(self, p: Params) -> str:
        if self.output_layout in p:
            return str(p[self.output_layout])
        if self.output_layout in ("channels_first", "channels_last"):
            return self.output_layout
        return "channels_first"

    def problems(self) -> list[str]:
        """What is missing or inconsistent, worded for the case's author."""
        errors = []
        if self.draw is None:
            errors.append("no @case.inputs function: declare how inputs are drawn")
        if self.expected is None:
            errors.append("no @case.oracle function: declare what the oracle computes")
        if not self.declared:
            errors.append("no @case.variant: declare at least one way a framework computes the claim")
        for v in self.declared:
            unknown = set(v.frameworks) - set(registered())
            if unknown:
                errors.append(f"variant {v.name!r}: unknown frameworks {sorted(unknown)}; use {registered()} "
                              "(the registered ones)")
            if v.expect not in EXPECTATIONS:
                errors.append(f"variant {v.name!r}: expect={v.expect!r}, use one of {EXPECTATIONS}")
            if (v.expect != "equal" or v.raises) and not v.reason:
                errors.append(f"variant {v.name!r}: a known non-equivalence needs reason=")
        if "normal" not in self.values or set(self.values) - set(VALUE_MODES):
            errors.append(f"values={self.values!r}: give modes of {VALUE_MODES}, 'normal' among them")
        unknown_dtypes = set(self.dtypes) - set(tolerance.ACCUMULATION)
        if unknown_dtypes:
            errors.append(f"dtypes {sorted(unknown_dtypes)} unknown; use {sorted(tolerance.ACCUMULATION)}")
        names = [v.name for v in self.variants]  # a gap's name too
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            errors.append(f"variant names must be unique, repeated: {dupes}")
        try:
            points = self.points()
        except Exception as e:  # a broken where= is the author's to fix
            return [*errors, f"the grid could not be expanded: {type(e).__name__}: {e}"]
        if not points:
            errors.append("the grid (after where=) is empty")
        errors.extend(self._uncovered(points))
        return errors

    def covers(self, fw: str, p: Params) -> bool:
        """Whether a declared variant runs framework `fw` at point `p` (with its dtype and device)."""
        return any(fw in v.frameworks and v.applies(p) for v in self.declared)

    def _uncovered(self, points: list[Params]) -> list[str]:
        """Every built-in framework takes part at every grid point, so none is ever silently absent.

        A framework that lacks a feature still gets a variant: its module raises Unsupported (a skip
        with the reason) or the variant declares raises=/expect="differs" with a reason. Another
        registered framework (a plugin) skips where it is not covered: see `variants`.
        """
        missing: dict[str, list[str]] = {}
        builtin = [fw for fw in BUILTIN if fw in registered()]
        for point in points:
            for fw in builtin:
                # A variant's when= may read p.dtype and p.device: a point is covered only if covered at
                # every dtype and device.
                if not all(self.covers(fw, point.at(dt, dev)) for dt in self.dtypes for dev in DEVICES):
                    missing.setdefault(fw, []).append(point.id)
        if not missing or not self.declared:
            return []
        where = ", ".join(f"{fw} at {len(missing[fw])} grid point(s), e.g. [{missing[fw][0]}]"
                          for fw in builtin if fw in missing)
        return [
            f"no variant covers {where}: give each a variant (a missing feature raises Unsupported in "
            "its framework module: a skip with the reason) or narrow the grid"
        ]


def _gap(case: Case, framework: str) -> Variant:
    """A variant of `framework` alone that applies where no declared variant runs it, and skips."""

    def no_variant(fw: Any, p: Params, **inputs: Any) -> None:
        here = [v.name for v in case.declared if v.applies(p)]
        which = (f"the variants at this point, {', '.join(here)}, name other frameworks" if here
                 else "no variant applies at this point")
        raise Unsupported(f"{framework}: no variant of this claim runs it here ({which}); a variant without "
                          f"frameworks=, or one naming {framework}, would")

    return Variant(f"no_variant_for_{framework}", no_variant, (framework,),
                   when=lambda p: not case.covers(framework, p))


def conv_inputs(
    rng: Any,
    *,
    layout: str,
    spatial: Sequence[int],
    kernel: Sequence[int],
    channels: int,
    out_channels: int,
    groups: int = 1,
    batch: int = 2,
    bias: bool = True,
) -> dict[str, Any]:
    """Standard-normal x, w (and b) shaped for `layout`, as `equiv.oracle.conv` takes them."""
    if layout == "channels_first":
        x_shape = (batch, channels, *spatial)
        w_shape = (out_channels, channels // groups, *kernel)
    else:
        x_shape = (batch, *spatial, channels)
        w_shape = (*kernel, channels // groups, out_channels)
    out = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape)}
    if bias:
        out["b"] = rng.standard_normal(out_channels)
    return out
