"""Running one workflow from its history to a final status."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .._clock import Clock
from .._errors import SerializationError
from .._serde import Serializer, encode_error
from ..flow._hooks import RECORDER
from ..store import Store, WorkflowRecord
from ._context import LeaseLost, Run, Scope
from ._workflow import Workflow

__all__ = ["Engine", "execute"]


@dataclass(frozen=True, slots=True)
class Engine:
    """The parts a workflow run needs, wired once by the Runtime."""

    store: Store
    serializer: Serializer
    clock: Clock
    owner: str


async def execute(engine: Engine, wf: Workflow[Any, Any], record: WorkflowRecord) -> str | None:
    """Replay and continue ``record`` until it ends; return its final status.

    Returns ``None`` when this worker must stop without a final status: the
    lease was lost, or the runtime is shutting down (cancellation).
    """
    history = await engine.store.history(record.id)
    run = Run(id=record.id, name=record.name, owner=engine.owner, history=history,
              store=engine.store, serializer=engine.serializer, clock=engine.clock)
    inputs = engine.serializer.loads(record.input)
    status, result, error = "succeeded", None, None
    token = RECORDER.set(Scope(run))
    try:
        value = await wf.fn(*inputs["args"], **inputs["kwargs"])
    except (LeaseLost, asyncio.CancelledError):
        return None
    except Exception as exc:
        status, error = "failed", _encode_error(engine, run.nondeterminism or exc)
    else:
        if run.nondeterminism is not None:
            status, error = "failed", _encode_error(engine, run.nondeterminism)
        else:
            try:
                result = engine.serializer.dumps(
                    value, label=f"the result of workflow {record.name!r}")
            except SerializationError as exc:
                status, error = "failed", _encode_error(engine, exc)
    finally:
        RECORDER.reset(token)
    done = await engine.store.finish(record.id, engine.owner, status, result, error)
    return status if done else None


def _encode_error(engine: Engine, exc: BaseException) -> bytes:
    return engine.serializer.dumps(encode_error(exc), label="a workflow's error")
