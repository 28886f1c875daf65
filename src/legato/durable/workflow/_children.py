"""Child workflows: a workflow called from a workflow runs as its own workflow.

A child has its own row, history and recovery; its id is derived from the
parent's id and the call's position (``parent-id/3``), so a replayed parent
finds the same child instead of starting another. The parent's wait for the
child is recorded; a parent with nothing else to do is unloaded while it
waits and woken when the child finishes.

A child goes on a queue when ``start_child(..., queue=)`` or its
``@workflow(queue=...)`` names one: it is stored ``pending`` there and starts
when a claim finds room within the queue's limits, in whichever worker
process, rather than at once in the parent's worker. That is the fan-out
with a limit: a parent starts 1,000 children on a concurrency-10 queue and
awaits them, unloaded while it has nothing else to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, final

from ..._errors import LegatoError, WorkflowCancelled
from ..._serde import decode_error
from ..engine import (
    STARTED,
    Run,
    Scope,
    cancel_children,
    current_scope,
    detached,
    observe,
    operation,
)
from ._queue import Queue
from ._signals import signal

if TYPE_CHECKING:
    from ...store import QueueLimits, WorkflowRecord
    from ._workflow import Workflow

__all__ = ["ChildHandle", "run_child", "start_child"]

R = TypeVar("R")
_FINISHED = ("succeeded", "failed", "cancelled")


async def run_child(scope: Scope, wf: Workflow[Any, R], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> R:
    """Start ``wf`` as a child at the next position and wait for its outcome."""
    run = scope.run

    async def start_and_wait(position: str) -> R:
        child_id = f"{run.id}/{position}"
        # the start is marked under the call's position: a replay knows the
        # history reached this call even while the child still runs
        at = f"{position}.1"
        if run.replay(at, STARTED, wf.name) is None:
            await _create(run, wf, child_id, args, kwargs, wf.queue)
            await run.commit(at, STARTED, wf.name, child_id)
        return cast(R, await _await_child(scope, run, child_id))

    return await operation(scope, "child", wf.name, start_and_wait, nested=True)


async def _create(run: Run, wf: Workflow[Any, Any], child_id: str, args: tuple[Any, ...],
                  kwargs: dict[str, Any], queue: Queue | str | None) -> None:
    limits = _limits(queue)  # checked before anything is written
    observer = observe.OBSERVER
    observed = None if observer is None else observer.creating(child_id, wf.name, run.id)
    data = wf.encode_input(run.serializer, args, kwargs,
                           trace=None if observed is None else observed.trace)
    existing = await run.stored(run.host.start_child(wf, child_id, data, run, limits))
    if observed is not None:
        observed.end(existing is None)
    if existing is not None and existing.name != wf.name:
        raise LegatoError(
            f"child workflow id {child_id!r} already belongs to workflow {existing.name!r}, "
            f"not {wf.name!r}; pass another id to legato.start_child")


def _limits(queue: Queue | str | None) -> QueueLimits | str | None:
    if queue is None or (isinstance(queue, str) and queue):
        return queue
    if isinstance(queue, Queue):
        return queue.limits
    raise TypeError(f"queue= takes a legato.Queue or its name, not {queue!r}")


async def _await_child(scope: Scope, run: Run, child_id: str) -> Any:
    """Wait for the child to finish; its value, or raise its error.

    Cancelling the wait (a lost race, a cancelled parent) cancels the child:
    a child never outlives the call that waits for it.
    """
    try:
        child = await _finished(scope, run, child_id)
    except asyncio.CancelledError:
        if run.unwinding is None:  # not unloading or shutting down: a real cancellation
            await asyncio.shield(detached(_cancel(run, child_id)))
        raise
    if child.status == "succeeded":
        return run.serializer.loads(child.result) if child.result is not None else None
    if child.status == "cancelled":
        raise WorkflowCancelled(f"child workflow {child_id!r} was cancelled")
    assert child.error is not None
    raise decode_error(run.serializer.loads(child.error))


async def _finished(scope: Scope, run: Run, child_id: str) -> WorkflowRecord:
    while True:
        child = await run.stored(run.store.get(child_id))
        assert child is not None, f"child workflow {child_id!r} vanished"
        if child.status in _FINISHED:
            return child
        task = run.host.local_task(child_id)
        if task is not None:
            await asyncio.wait([task])
        elif run.can_suspend(scope):
            raise run.suspend(None, child=child_id)  # the child's end wakes this workflow
        else:
            await run.wait_news(None)


async def _cancel(run: Run, child_id: str) -> None:
    with contextlib.suppress(LookupError):
        await run.store.request_cancel(child_id)
    run.host.cancelled(child_id)
    await cancel_children(run.store, child_id)


@final
class ChildHandle(Generic[R]):
    """A child workflow started with :func:`start_child`; await ``result()`` later."""

    __slots__ = ("id", "name")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name

    def __repr__(self) -> str:
        return f"ChildHandle({self.id!r})"

    async def signal(self, name: str, payload: Any = None) -> None:
        """Send the child a signal; recorded in the parent (see :func:`legato.signal`)."""
        await signal(self.id, name, payload)

    async def result(self) -> R:
        """Wait for the child's outcome; recorded in the parent like any durable call."""
        scope = current_scope()
        if scope is None:
            raise LegatoError("ChildHandle.result() only works inside the parent workflow")
        run = scope.run

        async def wait(position: str) -> R:
            return cast(R, await _await_child(scope, run, self.id))

        return await operation(scope, "child", self.name, wait)


async def start_child(wf: Workflow[Any, R], /, *args: Any, id: str | None = None,
                      queue: Queue | str | None = None, **kwargs: Any) -> ChildHandle[R]:
    """Start a child workflow and return at once with its handle.

    Fire now, await later; the child runs concurrently with the parent, and
    cancelling the parent cancels it. Recorded: a replay finds the same child.

    ``queue=`` (a :class:`~legato.Queue` or the name of one declared in the
    Runtime; default: the workflow's ``@workflow(queue=...)``) stores the
    child ``pending`` on that queue: it starts when the queue's limits allow,
    in any worker that runs the queue.

    Example::

        report = await legato.start_child(build_report, quarter, id=f"report-{quarter}")
        await notify_team()
        url = await report.result()

        # fan out with a limit: at most 10 run at once, across workers
        pages = legato.Queue("pages", concurrency=10)
        handles = [await legato.start_child(fetch_page, url, queue=pages) for url in urls]
        texts = [await h.result() for h in handles]
    """
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            "legato.start_child() only works inside a workflow; from outside use rt.start()")
    run = scope.run
    _limits(queue)  # a bad queue= fails here, before the start is recorded

    async def create(position: str) -> str:
        child_id = id or f"{run.id}/{position}"
        await _create(run, wf, child_id, args, kwargs, wf.queue if queue is None else queue)
        return child_id

    return ChildHandle(str(await operation(scope, "start_child", wf.name, create)), wf.name)
