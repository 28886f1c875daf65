"""Child workflows: a workflow called from a workflow runs as its own workflow.

A child has its own row, history and recovery; its id is derived from the
parent's id and the call's position (``parent-id/3``), so a replayed parent
finds the same child instead of starting another. The parent's wait for the
child is recorded; a parent with nothing else to do is unloaded while it
waits and woken when the child finishes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, final

from .._errors import LegatoError, WorkflowCancelled
from .._serde import decode_error
from ._context import Run, Scope, current_scope
from ._signals import signal

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ["ChildHandle", "run_child", "start_child"]

R = TypeVar("R")
_FINISHED = ("succeeded", "failed", "cancelled")


async def run_child(scope: Scope, wf: Workflow[Any, R], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> R:
    """Start ``wf`` as a child at the next position and wait for its outcome."""
    run = scope.run
    position = scope.next_position()
    record = run.replay(position, "child", wf.name)
    if record is not None:
        value: R = run.outcome(record)
        return value
    child_id = f"{run.id}/{position}"
    await _create(run, wf, child_id, args, kwargs)
    return cast(R, await _await_child(scope, run, position, wf.name, child_id))


async def _create(run: Run, wf: Workflow[Any, Any], child_id: str, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
    data = wf.encode_input(run.serializer, args, kwargs)
    existing = await run.host.start_child(wf, child_id, data, run)
    if existing is not None and existing.name != wf.name:
        raise LegatoError(
            f"child workflow id {child_id!r} already belongs to workflow {existing.name!r}, "
            f"not {wf.name!r}; pass another id to legato.start_child")


async def _await_child(scope: Scope, run: Run, position: str, name: str, child_id: str) -> Any:
    """Wait for the child to finish, then record its outcome at ``position``."""
    while True:
        child = await run.store.get(child_id)
        assert child is not None, f"child workflow {child_id!r} vanished"
        if child.status in _FINISHED:
            break
        task = run.host.local_task(child_id)
        if task is not None:
            await asyncio.wait([task])
        elif run.can_suspend(scope):
            raise run.suspend(None, child=child_id)  # the child's end wakes this workflow
        else:
            await run.wait_news(None)
    if child.status == "succeeded":
        await run.record_raw(position, "child", name, child.result)
        return run.serializer.loads(child.result) if child.result is not None else None
    assert child.error is not None or child.status == "cancelled"
    if child.status == "cancelled":
        error: BaseException = WorkflowCancelled(f"child workflow {child_id!r} was cancelled")
    else:
        assert child.error is not None
        error = decode_error(run.serializer.loads(child.error))
    await run.record_error(position, "child", name, error)
    raise error


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
        position = scope.next_position()
        record = run.replay(position, "child", self.name)
        if record is not None:
            value: R = run.outcome(record)
            return value
        outcome: R = await _await_child(scope, run, position, self.name, self.id)
        return outcome


async def start_child(wf: Workflow[Any, R], /, *args: Any, id: str | None = None,
                      **kwargs: Any) -> ChildHandle[R]:
    """Start a child workflow and return at once with its handle.

    Fire now, await later; the child runs concurrently with the parent, and
    cancelling the parent cancels it. Recorded: a replay finds the same child.

    Example::

        report = await legato.start_child(build_report, quarter, id=f"report-{quarter}")
        await notify_team()
        url = await report.result()
    """
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            "legato.start_child() only works inside a workflow; from outside use rt.start()")
    run = scope.run
    position = scope.next_position()
    record = run.replay(position, "start_child", wf.name)
    if record is not None:
        return ChildHandle(str(run.outcome(record)), wf.name)
    child_id = id or f"{run.id}/{position}"
    await _create(run, wf, child_id, args, kwargs)
    await run.record(position, "start_child", wf.name, child_id)
    return ChildHandle(child_id, wf.name)
