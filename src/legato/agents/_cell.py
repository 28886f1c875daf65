"""``@legato.cell``: declare the effects a function may have, checked at call time.

Lumen writes ``cell search(engine, topic) -> Result / {http}``; legato writes
``@legato.cell(effects={"http"})`` on an ``async def`` (function or method).
While a cell runs, it is the *innermost cell* of that task (a context
variable, so tasks it spawns inherit it):

- a tool call checks that the innermost cell declares every effect of the
  tool; calling ``http.get`` (``{"http"}``) from a cell declaring only
  ``{"llm"}`` raises :class:`~legato.EffectViolation` before the tool runs;
- a cell called from another cell must not have effects its caller lacks
  (effects only narrow going inwards), checked when it is entered.

With ``strict=False`` a cell warns (:class:`EffectWarning`) instead of
raising, for the calls and inner cells it makes. Code that runs in no cell at
all is not checked: effects are opt-in, so plain scripts and tests call tools
freely; put the entry point in a cell to have everything below it checked.

Effect names are free-form strings; ``http``, ``llm``, ``time`` and
``random`` are the ones legato itself knows (see :data:`NONDETERMINISTIC`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar, final, overload

from .._errors import EffectViolation

__all__ = [
    "NONDETERMINISTIC",
    "CellFrame",
    "EffectWarning",
    "cell",
    "check_effects",
    "current_cell",
    "effect_set",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Effects whose outcome differs from run to run; a deterministic workflow
#: allows them only inside recorded steps.
NONDETERMINISTIC: Final = frozenset({"http", "llm", "time", "random"})


class EffectWarning(UserWarning):
    """An undeclared effect in a ``@legato.cell(strict=False)``: reported, not refused.

    Turn it into an error in tests with ``-W error::legato.agents.EffectWarning``.
    """


@final
@dataclass(frozen=True, slots=True)
class CellFrame:
    """The running cell: its name, declared effects and strictness."""

    name: str
    effects: frozenset[str]
    strict: bool


_CELL: Final[contextvars.ContextVar[CellFrame | None]] = contextvars.ContextVar(
    "legato_cell", default=None
)


def current_cell() -> CellFrame | None:
    """The innermost cell running in this task, or ``None`` outside every cell."""
    return _CELL.get()


def effect_set(effects: Iterable[str] | str | None, *, where: str) -> frozenset[str]:
    """Normalise an ``effects=`` argument: one name or an iterable of names."""
    if effects is None:
        return frozenset()
    items = [effects] if isinstance(effects, str) else list(effects)  # "http" is one effect
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(
                f"{where}: effects are non-empty strings like 'http' or 'llm', not {item!r}"
            )
    return frozenset(items)


def check_effects(callee: str, effects: frozenset[str], frame: CellFrame | None) -> None:
    """Refuse (or, in a non-strict cell, warn about) effects ``frame`` does not declare."""
    if frame is None:
        return
    missing = sorted(effects - frame.effects)
    if not missing:
        return
    declared = sorted(frame.effects)
    error = EffectViolation(
        callee, missing[0], f"cell {frame.name!r} (effects={declared})",
        f"add {missing[0]!r} to @legato.cell(effects=...) on {frame.name}, or make the "
        "call from a cell that declares it",
    )
    if frame.strict:
        raise error
    warnings.warn(str(error), EffectWarning, stacklevel=4)


@overload
def cell(fn: Callable[P, Awaitable[R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def cell(
    *, effects: Iterable[str] | str | None = None, strict: bool = True,
    name: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]: ...


def cell(
    fn: Callable[P, Awaitable[R]] | None = None, /, *,
    effects: Iterable[str] | str | None = None, strict: bool = True, name: str | None = None,
) -> Any:
    """Declare the effects an ``async def`` (function or method) may have.

    Tool calls made while the cell runs (directly, in functions it calls, or
    in tasks it spawns) are checked against the declaration at call time;
    so is any cell it calls. Bare ``@legato.cell`` declares no effects: a
    pure cell.

    Example::

        class Researcher(legato.Agent):
            chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o"))
            fetch = legato.use("http.get")

            @legato.cell(effects={"llm"})
            async def summarize(self, text: str) -> str:
                return (await self.chat(f"Summarize: {text}")).text
                # self.fetch(...) here raises EffectViolation: 'http' is not declared

    Args:
        effects: effect names (``{"llm", "http"}``, or one name as a string).
        strict: ``True`` (default) raises :class:`~legato.EffectViolation`;
            ``False`` only warns with :class:`EffectWarning` and lets the call run.
        name: the name in error messages (default: the function's qualname).

    Raises:
        TypeError: the function is not an ``async def``.

    Unlike ``@legato.step``, a cell records nothing: it is a checked
    declaration, not a unit of durability.
    """

    declared = effect_set(effects, where="@legato.cell")

    def wrap(f: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(
                f"@legato.cell needs an 'async def', and {getattr(f, '__qualname__', f)!r} is "
                "not one: tool calls are awaited, so a cell must be a coroutine function"
            )
        frame = CellFrame(name or f.__qualname__, declared, strict)

        @functools.wraps(f)
        async def run_cell(*args: P.args, **kwargs: P.kwargs) -> R:
            outer = _CELL.get()
            check_effects(f"cell {frame.name!r}", frame.effects, outer)
            token = _CELL.set(frame)
            try:
                return await f(*args, **kwargs)
            finally:
                _CELL.reset(token)

        run_cell.__legato_cell__ = frame  # type: ignore[attr-defined]
        return run_cell

    return wrap(fn) if fn is not None else wrap
