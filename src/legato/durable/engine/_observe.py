"""A seam for tracing and metrics: the engine calls an observer only when one is set.

``OBSERVER`` is ``None`` unless something (``legato.otel.instrument()``) sets
one, and every call site reads it once and skips everything else when it is
``None``: observing costs nothing when it is off. An observer sees

- a workflow being **created** (``rt.start``, a child): it returns the trace
  context to store in the workflow's input envelope (under ``"trace"``);
- each **attempt** of a workflow run (a worker running it from its history
  until it ends, is unloaded, or is left to another worker), with the stored
  trace context, so every attempt on every worker joins the same trace;
- each **step attempt** whose body really runs. A replayed step (its outcome
  recorded) never reaches the observer.

Each ``begin`` call returns an object whose ``end`` is called exactly once,
in the same task (so an observer may make its span the current one between
the two).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["OBSERVER", "AttemptObservation", "CreationObservation", "Observer",
           "StepObservation", "set_observer"]


class CreationObservation(Protocol):
    """A workflow being created; ``end`` says whether the row was new."""

    @property
    def trace(self) -> Mapping[str, str] | None:
        """The trace context to store with the workflow (W3C ``traceparent`` & co.)."""
        ...

    def end(self, created: bool) -> None: ...


class AttemptObservation(Protocol):
    """One attempt of a workflow run."""

    def end(self, status: str | None, error: BaseException | None) -> None:
        """``status``: ``succeeded``, ``failed``, ``cancelled``, ``waiting`` (unloaded),
        or ``None`` (left for another attempt: lease lost, shutdown, store error)."""
        ...


class StepObservation(Protocol):
    """One attempt of a step whose body runs."""

    def end(self, error: BaseException | None) -> None: ...


class Observer(Protocol):
    """What the engine tells an observer (see the module docstring)."""

    def creating(self, workflow_id: str, name: str, parent_id: str | None
                 ) -> CreationObservation: ...

    def attempt(self, workflow_id: str, name: str, trace: object, replaying: int
                ) -> AttemptObservation:
        """``trace``: what the envelope holds under ``"trace"`` (anything, or ``None``);
        ``replaying``: how many records the attempt starts from."""
        ...

    def step(self, workflow_id: str, position: str, name: str, attempt: int
             ) -> StepObservation: ...


#: The observer in force, or ``None`` (the default: nothing is observed).
OBSERVER: Observer | None = None


def set_observer(observer: Observer | None) -> Observer | None:
    """Make ``observer`` the one in force (``None``: none); returns the previous one."""
    global OBSERVER
    previous, OBSERVER = OBSERVER, observer
    return previous
