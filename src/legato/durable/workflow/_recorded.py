"""Nondeterministic values made safe for workflows: recorded once, replayed after.

Inside a workflow each call takes a position and records its value; a replay
returns the recorded value. Outside a workflow they are the plain functions.
"""

from __future__ import annotations

import random as _random
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..._errors import LegatoError
from ..engine import WATCH, Run, current_scope

__all__ = ["STEP_AT", "StepAt", "idempotency_key", "now", "random", "uuid4", "workflow_id"]

@dataclass(frozen=True, slots=True)
class StepAt:
    """Where a step's body runs: the workflow's run and the step's position."""

    run: Run
    position: str
    # per stream key, how many values this attempt wrote (see ``_stream``); a new
    # StepAt per attempt, so a re-run's n-th write is recognised as the same write
    writes: dict[str, int] = field(default_factory=dict, compare=False)


# Inside a step's body, called by a workflow.
STEP_AT: ContextVar[StepAt | None] = ContextVar("legato_step_at", default=None)

T = TypeVar("T")


def _recorded(kind: str, make: Callable[[], T], encode: Callable[[T], Any],
              decode: Callable[[Any], T]) -> T:
    scope = current_scope()
    if scope is None:
        return make()
    run = scope.run
    position = scope.next_position()
    record = run.replay(position, kind, "")
    if record is not None:
        return decode(run.outcome(record))
    watch = WATCH.get()  # a test harness may supply the value (legato.testing.explore)
    value = make() if watch is None else watch(run, position, kind, "", make)()
    # committed before any effect (see Run.commit_later): a synchronous call can't wait
    run.commit_later(position, kind, "", encode(value))
    return value


def now() -> datetime:
    """The current time as an aware UTC ``datetime``; recorded inside workflows.

    Inside a workflow it reads the runtime's clock (a ``VirtualClock`` in tests)
    and a replay returns the same instant.

    >>> if legato.now().hour < 12: await morning_report()
    """

    def make() -> float:
        scope = current_scope()
        return scope.run.clock.now() if scope is not None else datetime.now(UTC).timestamp()

    return datetime.fromtimestamp(_recorded("now", make, float, float), UTC)


def random() -> float:
    """A float in ``[0, 1)``, like ``random.random()``; recorded inside workflows.

    >>> path = "a" if legato.random() < 0.5 else "b"
    """
    return _recorded("random", _random.random, float, float)


def uuid4() -> uuid.UUID:
    """A random UUID, like ``uuid.uuid4()``; recorded inside workflows.

    >>> order_id = legato.uuid4()
    """
    return _recorded("uuid4", uuid.uuid4, str, uuid.UUID)


def workflow_id() -> str:
    """The id of the workflow this code runs in: its own code or one of its steps.

    Example::

        @legato.step
        async def charge(customer: str, cents: int) -> str:
            return await payments.charge(customer, cents, reference=legato.workflow_id())

    Raises:
        LegatoError: outside a workflow and its steps.
    """
    scope = current_scope()
    if scope is not None:
        return scope.run.id
    at = STEP_AT.get()
    if at is not None:
        return at.run.id
    raise LegatoError(
        "legato.workflow_id() was called outside a workflow; call it from a "
        "@legato.workflow started by a Runtime, or from a step that workflow calls")


def idempotency_key() -> str:
    """A key naming this call of the current step: ``"<workflow id>:<position>"``.

    The same in every attempt and after a crash (the step runs again with the
    same key), and different for every other step call, even of the same
    function: pass it to an external API that deduplicates requests, so an
    effect repeated by a retry or a recovery happens once. Example::

        @legato.step(retry=legato.Retry(attempts=5))
        async def charge(customer: str, cents: int) -> str:
            return await stripe.charge(customer, cents, idempotency_key=legato.idempotency_key())

    Raises:
        LegatoError: outside a step called by a workflow.
    """
    at = STEP_AT.get()
    if at is None:
        raise LegatoError(
            "legato.idempotency_key() names a step's call, and was called outside one; "
            "call it inside a @legato.step while a workflow runs it")
    return f"{at.run.id}:{at.position}"
