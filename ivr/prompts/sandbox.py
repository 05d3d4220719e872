"""The template sandbox with a time and size budget.

Jinja2's immutable sandbox stops attribute tricks and mutation, but not work: nested
``range(100000)`` loops ran at 100 % CPU past the request (and the web process then ignored
SIGTERM), and ``('a'*200*200*200*200)|length`` allocated 1.6 GB. An admin's mistake must not stall
calls or the web process, so every render here runs inside a `RenderLimits.budget()`:

* an operation budget and a wall-clock deadline, charged and checked in every hook the template
  runs through: each loop iteration (loops are rewritten to iterate through `budget_iter`), each
  call (functions, methods, macros), filter, attribute and item access, and operator;
* a size cap on every value a template builds: ``*`` ``+`` ``%`` ``**`` and ``~`` results, call
  and filter results, ``{% set %}`` blocks; operations that multiply sizes (repetition, replace,
  join, padding widths, format widths) are refused *before* they allocate;
* ``range`` limited to `max_value` items; the output is streamed and capped.

Exceeding any of them raises `RenderLimitExceeded` (a TemplateError: the renderer reports it with
the template's line like any other template error).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
import re
import string
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RenderLimitExceeded(TemplateError):
    """The template tried to do more work or build a bigger value than a prompt ever needs."""


@dataclass(frozen=True)
class RenderLimits:
    """A prompt is a sentence or two: these are orders of magnitude above any real template (the
    shipped ones take a few hundred operations and values under 1,000 characters)."""

    max_ops: int = 200_000
    max_seconds: float = 2.0
    max_value: int = 20_000  # characters of a string, items of a list (nested ones summed)
    max_output: int = 50_000  # characters rendered before normalising
    max_int_bits: int = 4096

    @contextlib.contextmanager
    def budget(self) -> Iterator[_Budget]:
        budget = _Budget(self)
        token = _CURRENT.set(budget)
        try:
            yield budget
        finally:
            _CURRENT.reset(token)


class _Budget:
    __slots__ = ("limits", "ops", "deadline")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.ops = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def charge(self, n: int = 1) -> None:
        self.ops += n
        if self.ops > self.limits.max_ops:
            raise RenderLimitExceeded(f"template does too much work (over {self.limits.max_ops} operations)")
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"template takes too long (over {self.limits.max_seconds:g} s)")


_CURRENT: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("ivr_render_budget", default=None)


def _budget() -> _Budget:
    budget = _CURRENT.get()
    if budget is None:  # fail closed: an unbounded render is a bug, not a fallback
        raise RenderLimitExceeded("template rendered outside a render budget")
    return budget


def weight(value: Any, limit: int) -> int:
    """Size of a value (characters, items, nested ones summed); stops counting past `limit`, so a
    value shared many times over (``[l, l]`` nested) costs at most `limit` steps to measure."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 64 + 1
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        else:
            total += 1
        if total > limit:
            return total
    return total


def _arg_size(value: Any, limit: int) -> int:
    """Widths count as their value: ``center(10**6)`` is a million characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value)
    return weight(value, limit)


def _check(value: Any, what: str = "value") -> Any:
    limit = _budget().limits.max_value
    if weight(value, limit) > limit:
        raise RenderLimitExceeded(f"{what} too large (over {limit} characters or items)")
    return value


def _estimate(name: str, base: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> int:
    """An upper bound of the result size of a growing operation, computed before it runs."""
    n = weight(base, limit)
    sizes = [_arg_size(a, limit) for a in (*args, *kwargs.values())]
    if name in ("center", "ljust", "rjust", "zfill"):
        return max([n, *sizes])
    if name == "replace" and isinstance(base, str) and len(args) >= 2 and isinstance(args[0], str):
        hits = base.count(args[0]) if args[0] else len(base) + 1
        return n + hits * weight(args[1], limit)
    if name == "join":  # sep.join(items) (method: base is the separator) or items|join(sep) (filter)
        sep, items = (base, args[0] if args else ()) if isinstance(base, str) else (args[0] if args else "", base)
        count = len(items) if isinstance(items, list | tuple | str | range) else weight(items, limit)
        return weight(items, limit) + count * weight(sep, limit)
    if name in ("format", "%"):
        fields = base.count("%") + base.count("{") if isinstance(base, str) else 1
        return n + (fields + 1) * sum(sizes)
    if name == "indent":
        lines = base.count("\n") + 1 if isinstance(base, str) else n
        return n + lines * (sum(sizes) or 4)
    # wordwrap, translate, expandtabs, slice: at most every character (item) grows by the arguments
    return n * (1 + sum(sizes))


def _check_growth(name: str, base: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse before allocating: operations whose result can be a multiple of their input."""
    limit = _budget().limits.max_value
    if _estimate(name, base, args, kwargs, limit) > limit:
        raise RenderLimitExceeded(f"{name!r} would build a value over {limit} characters or items")


# %-format and str.format specs: a width or precision is an allocation size.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMATTER = string.Formatter()


def _check_percent_format(fmt: str) -> None:
    limit = _budget().limits.max_value
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*" or (part is not None and int(part) > limit):
                raise RenderLimitExceeded(f"format width {part} too large (max {limit})")


def _check_brace_format(fmt: str) -> None:
    limit = _budget().limits.max_value
    try:
        parsed = list(_FORMATTER.parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in parsed:
        if not spec:
            continue
        if "{" in spec or any(int(d) > limit for d in re.findall(r"\d+", spec)):
            raise RenderLimitExceeded(f"format spec {spec!r} too large or nested (max width {limit})")


# str methods and filters whose result can be a multiple of their input (padding, repetition by
# argument, substitution); every other call is checked after it returns.
_GROWING_METHODS = frozenset({"replace", "join", "translate", "center", "ljust", "rjust", "zfill", "expandtabs"})
_GROWING_FILTERS = frozenset({"replace", "join", "indent", "wordwrap", "center", "format", "slice"})


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # jinja passes a context / eval context / environment first to filters marked for it
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(fn)  # keeps that marker, so jinja still passes it
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _budget().charge()
        values = args[skip:]
        if values:
            _check(values[0], f"input of filter {name!r}")
            if name in _GROWING_FILTERS:
                _check_growth(name, values[0], tuple(values[1:]), kwargs)
            if name == "format" and isinstance(values[0], str):
                _check_percent_format(values[0])
        # generators (map, select, batch...) measure as 1 here; whatever consumes them is budgeted
        return _check(fn(*args, **kwargs), f"result of filter {name!r}")

    return bounded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the budget described in the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = self._range

    # -- filters are called directly by compiled templates: wrap them once registered ---------
    def bound_filters(self) -> None:
        """Wrap every registered filter (call after adding the project's own filters)."""
        for name, fn in list(self.filters.items()):
            if not getattr(fn, "_ivr_bounded", False):
                wrapped = _bounded_filter(name, fn)
                wrapped._ivr_bounded = True  # type: ignore[attr-defined]
                self.filters[name] = wrapped
        self.filters["ivr_checked"] = _bounded_filter("set", lambda value: value)

    # -- hooks ---------------------------------------------------------------------------------
    def _range(self, *args: int) -> range:
        _budget().charge()
        rng = range(*args)
        limit = _budget().limits.max_value
        if len(rng) > limit:
            raise RenderLimitExceeded(f"range of {len(rng)} items (max {limit})")
        return rng

    def budget_iter(self, iterable: Any) -> Iterator[Any]:
        """Every loop iterates through here (see `bound_loops`): one operation per item."""
        budget = _budget()
        budget.charge()
        for item in iterable:
            budget.charge()
            yield item

    def checked(self, value: Any) -> Any:
        _budget().charge()
        return _check(value, "text built with ~")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _budget()
        budget.charge()
        limit = budget.limits.max_value
        for arg in (*args, *kwargs.values()):
            if weight(arg, limit) > limit:
                raise RenderLimitExceeded(f"argument too large (over {limit} characters or items)")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and getattr(__obj, "__name__", "") in _GROWING_METHODS:
            _check_growth(__obj.__name__, owner, args, kwargs)
        return _check(super().call(__context, __obj, *args, **kwargs), "result")

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget().charge()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget().charge()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        def checked_format(*args: Any, **kwargs: Any) -> str:
            _check_brace_format(fmt)
            _check_growth("format", fmt, args, kwargs)
            return wrapper(*args, **kwargs)

        return checked_format

    def call_unop(self, context: Context, operator_: str, arg: Any) -> Any:
        _budget().charge()
        return super().call_unop(context, operator_, arg)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.charge()
        limits = budget.limits
        ints = isinstance(left, int) and isinstance(right, int)
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise RenderLimitExceeded("exponent too large (max 64)")
            if ints and right > 0 and left.bit_length() * right > limits.max_int_bits:
                raise RenderLimitExceeded(f"number too large (over {limits.max_int_bits} bits)")
            return operator.pow(left, right)
        if operator_ == "*":
            if ints and left.bit_length() + right.bit_length() > limits.max_int_bits:
                raise RenderLimitExceeded(f"number too large (over {limits.max_int_bits} bits)")
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    if weight(seq, limits.max_value) * max(count, 0) > limits.max_value:
                        raise RenderLimitExceeded(f"repetition would build a value over {limits.max_value} characters or items")
            return _check(operator.mul(left, right))
        if operator_ == "%" and isinstance(left, str):
            _check_percent_format(left)
            _check_growth("%", left, right if isinstance(right, tuple) else (right,), {})
        result = super().call_binop(context, operator_, left, right)
        if operator_ == "+":
            _check(result)
        return result

    # -- loops and ~ ---------------------------------------------------------------------------
    def bound_loops(self, tree: nodes.Template) -> nodes.Template:
        """Rewrite a parsed template so loops iterate through `budget_iter`, ``~`` results and
        ``{% set %}`` blocks are size-checked. Compiled code then has no loop the budget misses."""
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("budget_iter"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            inner = nodes.Concat(concat.nodes, lineno=concat.lineno)
            # replace in place: the Concat node becomes "checked(concat)"
            concat.nodes = [nodes.Call(nodes.EnvironmentAttribute("checked"), [inner], [], None, None,
                                       lineno=concat.lineno)]
        for block in tree.find_all(nodes.AssignBlock):
            if block.filter is None:
                block.filter = nodes.Filter(None, "ivr_checked", [], [], None, None, lineno=block.lineno)
        return tree
