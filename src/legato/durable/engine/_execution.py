"""Running one workflow from its history until it ends or is unloaded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from ..._clock import Clock
from ..._errors import SerializationError, WorkflowCancelled
from ..._serde import Serializer, encode_error
from ...flow._deterministic import deterministic
from ...flow._hooks import RECORDER
from ...store import Store, WorkflowRecord
from . import _observe
from ._code import WorkflowCode
from ._continued import ContinueAsNew
from ._host import Host
from ._run import Run
from ._scope import Scope
from ._unwind import Aborted, Shutdown, Suspend, Unwind

__all__ = ["Engine", "cancel_children", "execute", "load_run"]

log = logging.getLogger("legato.worker")

_DEADLINE = "cancelled: its deadline passed"


@dataclass(frozen=True, slots=True)
class Engine:
    """The parts a workflow run needs, wired once by the Runtime."""

    store: Store
    serializer: Serializer
    clock: Clock
    owner: str
    suspend_after: float = 5.0


async def load_run(engine: Engine, record: WorkflowRecord, host: Host, *,
                   fresh: bool = False) -> Run:
    """A run of ``record`` with its whole history, loaded in one query.

    ``fresh``: the caller has just inserted the row with no records (the
    first attempt of a workflow created in this worker), so none is read.
    """
    history = [] if fresh else await engine.store.history(record.id)
    run = Run(id=record.id, name=record.name, owner=record.owner or engine.owner,
              run_id=record.run_id, history=history, store=engine.store,
              serializer=engine.serializer, clock=engine.clock, host=host,
              suspend_after=engine.suspend_after)
    if record.cancel:
        run.cancel_requested, run.cancel_reason = True, "cancelled"
    return run


async def execute(engine: Engine, wf: WorkflowCode, record: WorkflowRecord, run: Run
                  ) -> str | None:
    """Replay and continue ``run`` until it ends; return the status it was left in.

    ``"waiting"`` when it was unloaded to wait; ``"continued"`` when it
    continued as a new run (run it again from the store); ``None`` when this worker must
    leave it as it is: the lease was lost, the runtime is shutting down, or a
    store write failed (the attempt resumes from its last checkpoint).
    """
    inputs = engine.serializer.loads(record.input)
    if (observer := _observe.OBSERVER) is None:
        return (await _execute(engine, wf, record, run, inputs))[0]
    observed = observer.attempt(run.id, run.name, inputs.get("trace"), len(run.history))
    status, error = None, None
    try:
        status, error = await _execute(engine, wf, record, run, inputs)
        return status
    except BaseException as exc:
        error = exc
        raise
    finally:
        observed.end(status, error)


async def _execute(engine: Engine, wf: WorkflowCode, record: WorkflowRecord, run: Run,
                   inputs: Any) -> tuple[str | None, BaseException | None]:
    """:func:`execute`; also the error the run failed with (for an observer)."""
    run.task = asyncio.current_task()
    log.debug("workflow %r (%s) %s", run.id, run.name,
              f"replaying {len(run.history)} records" if run.history else "starting",
              extra={"workflow_id": run.id, "workflow": run.name, "attempt": run.owner})
    deadline = _deadline_timer(run, record)
    if record.deadline is not None and record.deadline <= run.clock.now():
        run.cancel_requested, run.cancel_reason = True, _DEADLINE
    if run.cancel_requested and run.task is not None:
        run.task.cancel()  # delivered at the first await that really waits
    token = RECORDER.set(Scope(run))
    value: Any = None
    raised: BaseException | None = None
    try:
        if wf.deterministic:
            async with deterministic():
                value = await wf.fn(*inputs["args"], **inputs["kwargs"])
        else:
            value = await wf.fn(*inputs["args"], **inputs["kwargs"])
    except BaseException as exc:  # every way out is sorted below
        raised = exc
        if (isinstance(exc, asyncio.CancelledError) and not run.cancel_requested
                and run.task is not None and run.task.cancelling()):
            # someone else cancelled the task itself (the event loop closing): leave
            # the run for another attempt, as at shutdown
            run.unwind(Shutdown(f"workflow {run.id!r}'s task was cancelled"))
    finally:
        RECORDER.reset(token)
        run.task = None
        if deadline is not None:
            deadline.cancel()
    # An unwinding the code swallowed (``except BaseException``) still unwinds.
    if run.unwinding is None and raised is None:
        with contextlib.suppress(Unwind):  # an Unwind is kept in run.unwinding
            await run.flush()  # values of legato.now() & co. the result may hold
    if run.unwinding is not None:
        return await _unwound(engine, run, run.unwinding), None
    if isinstance(raised, ContinueAsNew) and run.nondeterminism is None:
        return await _continued(engine, run, raised), None
    status, result, error = _outcome(engine, run, record, value, raised)
    if status == "cancelled":
        await cancel_children(engine.store, run.id)
    failed_at = None
    if status == "failed" and run.failed is not None and run.failed[0] is raised:
        failed_at = run.failed[1]
    done = await engine.store.finish(record.id, run.owner, status, result, error,
                                     failed_at=failed_at)
    if done:
        run.ended = (status, result, error)
        _log_end(run, status, raised)
    return (status, run.nondeterminism or raised) if done else (None, None)


def _log_end(run: Run, status: str, raised: BaseException | None) -> None:
    """One line per ended run: failures loud, cancels noted, successes quiet at INFO."""
    fields = {"workflow_id": run.id, "workflow": run.name, "status": status}
    if status == "failed":
        error = run.nondeterminism or raised
        log.warning("workflow %r (%s) failed: %s: %s; `legato show %s` shows its steps and "
                    "traceback, `legato resume %s` retries it", run.id, run.name,
                    type(error).__name__, error, run.id, run.id, extra=fields)
    elif status == "cancelled":
        log.info("workflow %r (%s) was %s", run.id, run.name,
                 run.cancel_reason if run.cancel_requested else "cancelled by its own code",
                 extra=fields)
    else:
        log.debug("workflow %r (%s) succeeded", run.id, run.name, extra=fields)


async def _continued(engine: Engine, run: Run, next_run: ContinueAsNew) -> str | None:
    """Start the workflow afresh (``"continued"``), once what the run recorded is durable."""
    try:
        await run.flush()
    except Unwind:
        return None
    new_run = await engine.store.continue_as_new(run.id, run.owner, next_run.input)
    if new_run is None:
        return None  # the lease was lost: whoever holds it now goes on
    log.debug("workflow %r (%s) continued as new run %s", run.id, run.name, new_run,
              extra={"workflow_id": run.id, "workflow": run.name, "status": "continued"})
    return "continued"


async def _unwound(engine: Engine, run: Run, unwinding: Unwind) -> str | None:
    if isinstance(unwinding, Suspend):
        unloaded = await engine.store.suspend(
            run.id, run.owner, unwinding.wake_at, unwinding.signal, unwinding.child)
        return "waiting" if unloaded else None
    if isinstance(unwinding, Aborted):
        log.warning("workflow %r stopped on a store error; it resumes from its last "
                    "checkpoint: %s", run.id, unwinding)
    return None  # LeaseLost, Shutdown, Aborted: another attempt takes it from the store


def _outcome(engine: Engine, run: Run, record: WorkflowRecord, value: Any,
             raised: BaseException | None) -> tuple[str, bytes | None, bytes | None]:
    """The final status, result and error of a run that ended by itself."""
    if run.nondeterminism is not None:
        return "failed", None, _encode(engine, run.nondeterminism)
    if isinstance(raised, asyncio.CancelledError):
        # asked for (rt.cancel, a deadline), or raised by the workflow's own code
        # (awaiting a task it cancelled)
        reason = run.cancel_reason if run.cancel_requested else "cancelled by its own code"
        return "cancelled", None, _encode(engine, WorkflowCancelled(
            f"workflow {run.id!r} was {reason}"))
    if raised is not None:
        # Exceptions, and BaseExceptions of the workflow's own (SystemExit...): the
        # run fails, the worker lives on.
        return "failed", None, _encode(engine, raised)
    try:
        return "succeeded", engine.serializer.dumps(
            value, label=f"the result of workflow {record.name!r}"), None
    except SerializationError as exc:
        return "failed", None, _encode(engine, exc)


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
