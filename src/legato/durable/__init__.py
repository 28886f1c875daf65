"""Durable execution, split by caller (imports point down: client → worker → workflow → engine).

- ``workflow``: what a workflow author calls (``@workflow``, ``@step``, signals, children...);
- ``engine``: a run, its positions and replay, the one durable call, execute;
- ``worker``: claims, leases, admission, news, schedules;
- ``client``: ``Runtime``, handles, queues, inspection.

Layers above (``compose``, ``agents``, ``cli``, ``testing``, ``ui``) import from
this package, never from a private module inside it.
"""

from __future__ import annotations

from .client import (
    BoundQueue,
    HistoryRecord,
    Runtime,
    ScheduleInfo,
    Status,
    StepInfo,
    StreamReader,
    WorkerInfo,
    WorkflowHandle,
    WorkflowInfo,
    registered_workflows,
    run,
)
from .engine import Scope, current_scope
from .workflow import (
    ChildHandle,
    Queue,
    Saga,
    Step,
    Stream,
    StreamClosed,
    Update,
    Workflow,
    continue_as_new,
    deprecate_patch,
    idempotency_key,
    now,
    patched,
    random,
    saga,
    scheduled_time,
    set_event,
    signal,
    start_child,
    step,
    stream,
    uuid4,
    wait_for_signal,
    wait_for_update,
    workflow,
    workflow_id,
)

__all__ = [
    "BoundQueue", "ChildHandle", "HistoryRecord", "Queue", "Runtime", "Saga", "ScheduleInfo",
    "Scope",
    "Status", "Step", "StepInfo", "WorkerInfo", "Workflow", "WorkflowHandle", "WorkflowInfo",
    "continue_as_new", "current_scope", "deprecate_patch", "idempotency_key", "now",
    "patched", "random",
    "registered_workflows", "run", "saga", "scheduled_time", "set_event", "signal",
    "start_child", "step",
    "uuid4", "wait_for_signal", "workflow", "workflow_id",
    "Stream", "StreamClosed", "StreamReader", "Update", "stream", "wait_for_update",
]
