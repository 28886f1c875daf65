"""Talking to running workflows: signals in, events out (the workflow side)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..._duration import Duration, to_seconds
from ..._errors import LegatoError
from ...store import StepRecord
from ..engine import Run, Scope, current_scope, detached, durable_deadline, operation
from ._recorded import STEP_AT

__all__ = ["set_event", "signal", "wait_for_signal"]


def _scope(what: str) -> Scope:
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            f"legato.{what}() was called outside a workflow; it only works in code running "
            "under a @legato.workflow started by a Runtime (from outside, use "
            "rt.signal(id, name, payload) / handle.get_event(key))"
        )
    return scope


async def wait_for_signal(name: str, timeout: Duration | None = None) -> Any:
    """Wait for the signal ``name`` and return its payload; ``None`` on timeout.

    Signals sent before the wait are buffered; several signals of one name are
    consumed one per wait, in order, each exactly once even across crashes.
    A long wait unloads the workflow until the signal arrives (or the timeout
    passes); the timeout is durable: after a crash only what is left is waited.

    Example::

        approval = await legato.wait_for_signal("approval", timeout="48h")
        if approval is None:
            return "timed out"

    and from outside: ``await rt.signal(workflow_id, "approval", {"by": "ana"})``.
    """
    scope = _scope("wait_for_signal")
    seconds = None if timeout is None else to_seconds(timeout)

    async def wait(position: str) -> Any:
        return await _wait(scope, name, position, seconds)

    # value None: the recorded wait timed out
    return await operation(scope, "signal", name, wait, commits=False, nested=True)


async def _wait(scope: Scope, name: str, position: str, seconds: float | None) -> Any:
    run = scope.run
    # The deadline is recorded even without a timeout: it marks a wait in
    # progress, so a replay knows the history reached this point.
    deadline = await durable_deadline(run, position, seconds)
    while True:
        outcome, payload = await _take(run, name, position)
        if outcome == "taken":
            return run.serializer.loads(payload) if payload is not None else None
        if outcome == "lost":
            raise run.lease_lost()
        now = run.clock.now()
        if deadline is not None and now >= deadline:
            await run.commit_raw(position, "signal", name, None)
            return None
        if run.can_suspend(scope) and (deadline is None or deadline - now > run.suspend_after):
            raise run.suspend(deadline, signal=name)
        await run.wait_news(deadline)


async def _take(run: Run, name: str, position: str) -> tuple[str, bytes | None]:
    """Take a signal; a wait cancelled while its take commits gives the signal back."""
    step = StepRecord(position, "signal", name, True, None, time.time())
    take = detached(run.stored(run.store.take_signal(run.id, run.owner, name, step)))
    run.taking_signal(position, take)
    try:
        return await asyncio.shield(take)
    except asyncio.CancelledError:
        outcome, _ = await take
        if outcome == "taken":
            await run.stored(run.store.untake_signal(run.id, run.owner, position))
        raise


async def signal(workflow_id: str, name: str, payload: Any = None) -> None:
    """Send a signal to another workflow from inside a workflow; recorded.

    The send and its checkpoint commit together, so a replay never sends it
    twice. From outside a workflow, use ``rt.signal(...)`` or ``handle.signal(...)``.

    Example::

        await legato.signal(f"order-{order_id}", "paid", {"amount": 120})

    Raises:
        WorkflowNotFound: no workflow has that id.
        LegatoError: that workflow has finished.
    """
    scope = _scope("signal")
    run = scope.run
    data = run.serializer.dumps(payload, label=f"the payload of signal {name!r}")

    async def send(position: str) -> None:
        step = StepRecord(position, "send_signal", name, True, None, time.time())
        if not await run.stored(run.store.send_signal(workflow_id, name, data,
                                                      (run.id, run.owner, step))):
            raise run.lease_lost()
        run.host.signalled(workflow_id)

    await operation(scope, "send_signal", name, send, commits=False)


async def set_event(key: str, value: Any) -> None:
    """Publish ``value`` under ``key`` for callers of ``handle.get_event(key)``.

    For progress and status: a later ``set_event`` of the same key replaces
    the value. In workflow code it is recorded: a replay does not publish
    again. In a step it is published at once, not recorded (as DBOS does): a
    step run again after a crash publishes again, which for the latest value
    of a key is harmless.

    Example::

        await legato.set_event("progress", {"done": 3, "of": 10})
    """
    at = STEP_AT.get()
    if current_scope() is None and at is not None:
        await _publish_from_step(at.run, key, value)
        return
    scope = _scope("set_event")
    run = scope.run
    data = run.serializer.dumps(value, label=f"the value of event {key!r}")

    async def publish(position: str) -> None:
        step = StepRecord(position, "event", key, True, None, time.time())
        if not await run.stored(run.store.set_event(run.id, run.owner, key, data, step)):
            raise run.lease_lost()
        run.host.event_set(run.id)

    await operation(scope, "event", key, publish, commits=False)


async def _publish_from_step(run: Run, key: str, value: Any) -> None:
    data = run.serializer.dumps(value, label=f"the value of event {key!r}")
    # fenced like any write: an attempt that lost the workflow publishes nothing
    if not await run.stored(run.store.set_event(run.id, run.owner, key, data, None)):
        raise run.lease_lost()
    run.host.event_set(run.id)
