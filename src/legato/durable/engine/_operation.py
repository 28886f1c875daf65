"""One durable operation: take a position, replay or run, commit, return.

Every durable call of a workflow (a step, a signal wait, a child, an event, a
decision) goes through :func:`operation`, so the replay protocol is written
once: the position is taken synchronously when the call is made, a recorded
outcome is checked against the code's kind and name and returned (or
raised) without running anything, and a new outcome is committed before the
workflow sees it. Values made by synchronous calls (``legato.now()``, a new
task) are flushed before anything runs, so no effect can reveal a value that
a crash would change.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..._errors import SerializationError
from ._run import Run
from ._scope import Scope

__all__ = ["DEADLINE", "STARTED", "WATCH", "durable_deadline", "operation"]

DEADLINE = "deadline"
#: A marker under an operation's position: the operation was reached (a wait
#: without a deadline, a child started by a call); bookkeeping, not shown as a step.
STARTED = "started"

T = TypeVar("T")

#: A test harness's view of new operations (``legato.testing``): called as
#: ``watch(run, position, kind, name, body)`` when an operation has no record,
#: before it runs; returns the body to run instead (or raises ``run.unwind(...)``).
#: ``legato.now()``/``random()``/``uuid4()`` pass their value maker as ``body``.
WATCH: contextvars.ContextVar[Callable[..., Any] | None] = contextvars.ContextVar(
    "legato_watch", default=None)


async def operation(
    scope: Scope, kind: str, name: str, body: Callable[[str], Awaitable[T]], *,
    commits: bool = True, nested: bool = False,
) -> T:
    """Run ``body(position)`` as the durable operation at the next position of ``scope``.

    ``commits=False``: ``body`` commits its own record, atomically with its
    effect (a signal taken or sent, an event set). ``nested``: ``body`` uses
    sub-positions under its own (see :meth:`Run.replay`). A body's ``Exception``
    is committed as the outcome and raised.
    """
    run = scope.run
    position = scope.next_position()
    record = run.replay(position, kind, name, nested=nested)
    if record is not None:
        try:
            value: T = run.outcome(record)
        except Exception as exc:
            run.failed = (exc, position)
            raise
        return value
    if run.pending:  # checked here: every step passes by, and most have nothing to flush
        await run.flush()
    if not run.lease_held():
        await run.confirm_lease()
    if (watch := WATCH.get()) is not None:
        body = watch(run, position, kind, name, body)
    if not commits:
        return await body(position)
    try:
        value = await body(position)
    except Exception as exc:
        await run.commit_error(position, kind, name, exc)
        run.failed = (exc, position)
        raise
    try:
        await run.commit(position, kind, name, value)
    except SerializationError as exc:
        # Recorded, so a replay fails the same way instead of running again.
        await run.commit_error(position, kind, name, exc)
        raise
    return value


async def durable_deadline(run: Run, position: str, seconds: float | None) -> float | None:
    """The durable end of a wait at ``position`` (``None``: no end), recorded at ``position.1``.

    Recorded at the first run, so after a crash only what is left is waited.
    A wait without an end records a ``started`` marker there instead: the
    history then shows the wait was reached (see ``legato.patched``).
    """
    at = f"{position}.1"
    if run.unwinding is not None:
        raise run.unwinding
    record = run.history.get(at)
    if record is not None and record.kind in (DEADLINE, STARTED):
        value = run.outcome(record)
        return None if value is None else float(value)
    if record is not None:
        run.replay(at, DEADLINE, "")  # something else is recorded: raises, naming both
    deadline = None if seconds is None else run.clock.now() + seconds
    await run.commit(at, STARTED if deadline is None else DEADLINE, "", deadline)
    return deadline
