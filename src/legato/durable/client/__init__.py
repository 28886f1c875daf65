"""The client: ``Runtime``, ``WorkflowHandle``, bound queues, and inspection."""

from __future__ import annotations

from ._bound_queue import BoundQueue
from ._handle import Status, WorkerInfo, WorkflowHandle, WorkflowInfo
from ._inspection import HistoryRecord, StepInfo, registered_workflows
from ._runtime import Runtime, run
from ._schedules import ScheduleInfo
from ._stream_reader import StreamReader

__all__ = ["BoundQueue", "HistoryRecord", "Runtime", "ScheduleInfo", "Status", "StepInfo",
           "StreamReader", "WorkerInfo", "WorkflowHandle", "WorkflowInfo",
           "registered_workflows", "run"]
