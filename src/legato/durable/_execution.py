"""Running one workflow from its history until it ends or is unloaded."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from .._clock import Clock
from .._errors import SerializationError, WorkflowCancelled
from .._serde import Serializer, encode_error
from ..flow._deterministic import deterministic
from ..flow._hooks import RECORDER
from ..store import Store, WorkflowRecord
from ._context import Host, LeaseLost, Run, Scope, Suspend
from ._workflow import Workflow

__all__ = ["Engine", "execute", "load_run"]

_DEADLINE = "cancelled: its deadline passed"


@dataclass(frozen=True, slots=True)
class Engine:
    """The parts a workflow run needs, wired once by the Runtime."""

    store: Store
    serializer: Serializer
    clock: Clock
    owner: str
    suspend_after: float = 5.0


async def load_run(engine: Engine, record: WorkflowRecord, host: Host) -> Run:
    """A run of ``record`` with its whole history, loaded in one query."""
    run = Run(id=record.id, name=record.name, owner=engine.owner,
              history=await engine.store.history(record.id), store=engine.store,
              serializer=engine.serializer, clock=engine.clock, host=host,
              suspend_after=engine.suspend_after)
    if record.cancel:
        run.cancel_requested, run.cancel_reason = True, "cancelled"
    return run


async def execute(engine: Engine, wf: Workflow[Any, Any], record: WorkflowRecord, run: Run
                  ) -> str | None:
    """Replay and continue ``run`` until it ends; return the status it was left in.

    ``"waiting"`` when it was unloaded to wait; ``None`` when this worker must
    leave it as it is: the lease was lost, or the runtime is shutting down.
    """
    run.task = asyncio.current_task()
    deadline = _deadline_timer(run, record)
    if record.deadline is not None and record.deadline <= run.clock.now():
        run.cancel_requested, run.cancel_reason = True, _DEADLINE
    if run.cancel_requested and run.task is not None:
        run.task.cancel()  # delivered at the first await that really waits
    status, result, error = "succeeded", None, None
    inputs = engine.serializer.loads(record.input)
    token = RECORDER.set(Scope(run))
    try:
        if wf.deterministic:
            async with deterministic():
                value = await wf.fn(*inputs["args"], **inputs["kwargs"])
        else:
            value = await wf.fn(*inputs["args"], **inputs["kwargs"])
    except Suspend as suspend:
        unloaded = await engine.store.suspend(
            run.id, run.owner, suspend.wake_at, suspend.signal, suspend.child)
        return "waiting" if unloaded else None
    except LeaseLost:
        return None
    except asyncio.CancelledError:
        if not run.cancel_requested:
            return None  # shutting down: another worker will resume it
        status, error = "cancelled", _encode(engine, WorkflowCancelled(
            f"workflow {run.id!r} was {run.cancel_reason}"))
    except Exception as exc:
        status, error = "failed", _encode(engine, run.nondeterminism or exc)
    else:
        if run.nondeterminism is not None:
            status, error = "failed", _encode(engine, run.nondeterminism)
        else:
            try:
                result = engine.serializer.dumps(
                    value, label=f"the result of workflow {record.name!r}")
            except SerializationError as exc:
                status, error = "failed", _encode(engine, exc)
    finally:
        RECORDER.reset(token)
        run.task = None
        if deadline is not None:
            deadline.cancel()
    if status == "cancelled":
        await cancel_children(engine.store, run.id)
    done = await engine.store.finish(record.id, engine.owner, status, result, error)
    return status if done else None


def _deadline_timer(run: Run, record: WorkflowRecord) -> asyncio.Task[None] | None:
    if record.deadline is None:
        return None

    async def expire(deadline: float) -> None:
        await run.clock.sleep_until(deadline)
        run.request_cancel(_DEADLINE)

    return asyncio.create_task(expire(record.deadline), name=f"legato-deadline:{record.id}")


async def cancel_children(store: Store, workflow_id: str) -> None:
    """Ask every unfinished child of ``workflow_id`` (and theirs) to cancel."""
    for child in await store.children(workflow_id):
        with contextlib.suppress(LookupError):
            await store.request_cancel(child)
        await cancel_children(store, child)


def _encode(engine: Engine, exc: BaseException) -> bytes:
    return engine.serializer.dumps(encode_error(exc), label="a workflow's error")
