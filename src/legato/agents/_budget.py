"""``Budget``: how many tool calls a block of code or an agent may make, per effect.

A grant's ``budget=N`` counts the calls through one binding of one tool. A
:class:`Budget` counts across tools: in total (``calls=``) and per effect
(``Budget(llm=10, http=100)`` allows ten calls of tools with the ``llm``
effect and a hundred with ``http``). It applies

- to the calls made inside ``with budget:`` (or ``async with``), including
  tasks spawned there; nested budgets all count, and a call must fit in each;
- to the calls an agent makes through its ``use(...)`` tools, when the agent
  class sets ``budget = Budget(...)``: every instance gets a fresh copy.

A refused call raises :class:`~legato.GrantViolation` (constraint
``"budget"`` or ``"budget[llm]"``) before it runs, and uses up nothing.
Inside a workflow the counts start again on every replay, and replay makes
the same calls again, so a recovered workflow is refused at the same call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from types import TracebackType
from typing import Final, final

from .._errors import GrantViolation

__all__ = ["Budget", "active_budgets", "charge"]


@final
class Budget:
    """A call budget, in total and per effect, for a block or an agent instance.

    Example::

        async with legato.agents.Budget(calls=20, llm=5):
            await team.research("durable execution")   # the 6th llm call is refused

        class Analyst(legato.Agent):
            budget = legato.agents.Budget(llm=3)        # per instance

    Args:
        calls: the limit on all tool calls (``None``: no total limit).
        **effects: a limit per effect name.
    """

    __slots__ = ("_used", "_used_by_effect", "calls", "effects")

    def __init__(self, calls: int | None = None, **effects: int) -> None:
        for key, limit in [("calls", calls), *effects.items()]:
            if limit is None and key == "calls":
                continue
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(
                    f"Budget({key}=...) is a number of calls (an int >= 0), not {limit!r}")
        self.calls = calls
        self.effects = dict(effects)
        self._used = 0
        self._used_by_effect: dict[str, int] = dict.fromkeys(effects, 0)

    def __repr__(self) -> str:
        limits = ([f"calls={self.calls}"] if self.calls is not None else []) + [
            f"{k}={v}" for k, v in self.effects.items()]
        return f"Budget({', '.join(limits)}; used {self._used})"

    def fresh(self) -> Budget:
        """A new budget with the same limits and nothing used.

        >>> Budget(llm=2).fresh().remaining("llm")
        2
        """
        return Budget(self.calls, **self.effects)

    @property
    def used(self) -> int:
        """How many calls were charged so far."""
        return self._used

    def remaining(self, effect: str | None = None) -> int | None:
        """Calls left in total, or for ``effect``; ``None`` when unlimited.

        >>> Budget(calls=3).remaining()
        3
        """
        if effect is None:
            return None if self.calls is None else self.calls - self._used
        if effect not in self.effects:
            return None
        return self.effects[effect] - self._used_by_effect[effect]

    def refusal(self, tool: str, effects: Iterable[str]) -> GrantViolation | None:
        """The error a call of ``tool`` would meet, or ``None`` if it fits."""
        if self.calls is not None and self._used >= self.calls:
            return GrantViolation(tool, "budget", self._used + 1,
                                  f"{self!r} allows {self.calls} calls in total")
        for effect in effects:
            limit = self.effects.get(effect)
            if limit is not None and self._used_by_effect[effect] >= limit:
                return GrantViolation(tool, f"budget[{effect}]", self._used_by_effect[effect] + 1,
                                      f"{self!r} allows {limit} {effect!r} calls")
        return None

    def charge(self, effects: Iterable[str]) -> None:
        """Count one call with ``effects`` (after :meth:`refusal` said it fits)."""
        self._used += 1
        for effect in effects:
            if effect in self._used_by_effect:
                self._used_by_effect[effect] += 1

    def __enter__(self) -> Budget:
        _ACTIVE.set((*_ACTIVE.get(), self))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Blocks nest within a task, and each task has its own context: drop the
        # innermost entry of this budget (no token: one budget may be entered by many tasks).
        active = _ACTIVE.get()
        for i in range(len(active) - 1, -1, -1):
            if active[i] is self:
                _ACTIVE.set(active[:i] + active[i + 1:])
                break

    async def __aenter__(self) -> Budget:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


_ACTIVE: Final[contextvars.ContextVar[tuple[Budget, ...]]] = contextvars.ContextVar(
    "legato_budgets", default=()
)


def active_budgets() -> tuple[Budget, ...]:
    """The budgets of the ``with Budget(...)`` blocks around this code, outermost first."""
    return _ACTIVE.get()


def charge(tool: str, effects: frozenset[str], budgets: Iterable[Budget]) -> None:
    """Charge one call to every budget, or raise the first refusal and charge none."""
    budgets = tuple(budgets)
    for budget in budgets:
        error = budget.refusal(tool, sorted(effects))
        if error is not None:
            raise error
    for budget in budgets:
        budget.charge(effects)
