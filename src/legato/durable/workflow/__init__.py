"""What a workflow author calls: ``@workflow``, ``@step``, signals, events, children,
sagas, versioning, recorded values, queues."""

from __future__ import annotations

from ._children import ChildHandle, run_child, start_child
from ._continue import continue_as_new
from ._queue import Queue, parse_rate
from ._recorded import STEP_AT, idempotency_key, now, random, uuid4, workflow_id
from ._saga import Saga, saga
from ._scheduled import scheduled_time
from ._signals import set_event, signal, wait_for_signal
from ._step import Step, step
from ._stream import Stream, StreamClosed, stream
from ._updates import Update, wait_for_update
from ._versioning import deprecate_patch, patched
from ._workflow import Workflow, lookup, registered_names, workflow

__all__ = [
    "STEP_AT", "ChildHandle", "Queue", "Saga", "Step", "Workflow", "continue_as_new",
    "deprecate_patch",
    "idempotency_key", "lookup", "now", "parse_rate", "patched", "random", "registered_names",
    "run_child", "saga", "scheduled_time", "set_event", "signal", "start_child", "step", "uuid4",
    "wait_for_signal", "workflow", "workflow_id",
    "Stream", "StreamClosed", "Update", "stream", "wait_for_update",
]
