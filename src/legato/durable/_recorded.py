"""Nondeterministic values made safe for workflows: recorded once, replayed after.

Inside a workflow each call takes a position and records its value; a replay
returns the recorded value. Outside a workflow they are the plain functions.
"""

from __future__ import annotations

import random as _random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from .._errors import LegatoError
from ._context import current_scope
from ._operation import WATCH

__all__ = ["now", "random", "uuid4", "workflow_id"]

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
    """The id of the workflow this code runs in.

    Use it to derive idempotency keys for external APIs. Example::

        await charge(customer, cents, idempotency_key=f"{legato.workflow_id()}-charge")

    Raises:
        LegatoError: outside a workflow.
    """
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            "legato.workflow_id() was called outside a workflow; call it from code "
            "running under a @legato.workflow started by a Runtime"
        )
    return scope.run.id
