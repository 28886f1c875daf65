"""legato: durable orchestration for Python asyncio.

Everything public is re-exported here; modules starting with ``_`` are private.
"""

from __future__ import annotations

from ._clock import SystemClock as SystemClock
from ._clock import VirtualClock as VirtualClock
from ._errors import AllFailed as AllFailed
from ._errors import ChannelClosed as ChannelClosed
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import DuplicateWorkflow as DuplicateWorkflow
from ._errors import EffectViolation as EffectViolation
from ._errors import GrantViolation as GrantViolation
from ._errors import GraphError as GraphError
from ._errors import LegatoError as LegatoError
from ._errors import NonDeterminismError as NonDeterminismError
from ._errors import PayloadTooLarge as PayloadTooLarge
from ._errors import RecoveryLimitExceeded as RecoveryLimitExceeded
from ._errors import ScheduleNotFound as ScheduleNotFound
from ._errors import SchemaVersionError as SchemaVersionError
from ._errors import SerializationError as SerializationError
from ._errors import StepFailed as StepFailed
from ._errors import StoreError as StoreError
from ._errors import WorkflowCancelled as WorkflowCancelled
from ._errors import WorkflowConflict as WorkflowConflict
from ._errors import WorkflowNotFound as WorkflowNotFound
from ._errors import WorkflowTimeout as WorkflowTimeout
from ._progress import Progress as Progress
from ._progress import progress as progress
from ._serde import JsonSerializer as JsonSerializer
from ._serde import PickleSerializer as PickleSerializer
from ._serde import Serializer as Serializer
from .agents import Agent as Agent
from .agents import Grant as Grant
from .agents import cell as cell
from .agents import tool as tool
from .agents import use as use
from .compose import Chain as Chain
from .compose import Graph as Graph
from .compose import Memory as Memory
from .compose import Pool as Pool
from .compose import Runnable as Runnable
from .compose import runnable as runnable
from .durable import BoundQueue as BoundQueue
from .durable import ChildHandle as ChildHandle
from .durable import HistoryRecord as HistoryRecord
from .durable import Queue as Queue
from .durable import Runtime as Runtime
from .durable import Saga as Saga
from .durable import ScheduleInfo as ScheduleInfo
from .durable import Status as Status
from .durable import Step as Step
from .durable import StepInfo as StepInfo
from .durable import Stream as Stream
from .durable import StreamClosed as StreamClosed
from .durable import StreamReader as StreamReader
from .durable import Update as Update
from .durable import WorkerInfo as WorkerInfo
from .durable import Workflow as Workflow
from .durable import WorkflowHandle as WorkflowHandle
from .durable import WorkflowInfo as WorkflowInfo
from .durable import continue_as_new as continue_as_new
from .durable import deprecate_patch as deprecate_patch
from .durable import idempotency_key as idempotency_key
from .durable import now as now
from .durable import patched as patched
from .durable import random as random
from .durable import registered_workflows as registered_workflows
from .durable import run as run
from .durable import saga as saga
from .durable import scheduled_time as scheduled_time
from .durable import set_event as set_event
from .durable import signal as signal
from .durable import start_child as start_child
from .durable import step as step
from .durable import stream as stream
from .durable import uuid4 as uuid4
from .durable import wait_for_signal as wait_for_signal
from .durable import wait_for_update as wait_for_update
from .durable import workflow as workflow
from .durable import workflow_id as workflow_id
from .flow import Cancelled as Cancelled
from .flow import Channel as Channel
from .flow import Completed as Completed
from .flow import Failed as Failed
from .flow import Future as Future
from .flow import Pending as Pending
from .flow import Results as Results
from .flow import Selected as Selected
from .flow import TimeoutScope as TimeoutScope
from .flow import deterministic as deterministic
from .flow import parallel as parallel
from .flow import race as race
from .flow import select as select
from .flow import sleep as sleep
from .flow import spawn as spawn
from .flow import timeout as timeout
from .flow import vote as vote
from .resilience import CircuitBreaker as CircuitBreaker
from .resilience import CircuitState as CircuitState
from .resilience import Retry as Retry
from .resilience import retry as retry

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AllFailed",
    "BoundQueue",
    "Cancelled",
    "Chain",
    "Channel",
    "ChannelClosed",
    "ChildHandle",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Completed",
    "DuplicateWorkflow",
    "EffectViolation",
    "Failed",
    "Future",
    "Grant",
    "GrantViolation",
    "Graph",
    "GraphError",
    "HistoryRecord",
    "JsonSerializer",
    "LegatoError",
    "Memory",
    "NonDeterminismError",
    "PayloadTooLarge",
    "Pending",
    "PickleSerializer",
    "Pool",
    "Progress",
    "Queue",
    "RecoveryLimitExceeded",
    "Results",
    "Retry",
    "Runnable",
    "Runtime",
    "Saga",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SchemaVersionError",
    "Selected",
    "SerializationError",
    "Serializer",
    "Status",
    "Step",
    "StepFailed",
    "StepInfo",
    "StoreError",
    "Stream",
    "StreamClosed",
    "StreamReader",
    "SystemClock",
    "TimeoutScope",
    "Update",
    "VirtualClock",
    "WorkerInfo",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowConflict",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFound",
    "WorkflowTimeout",
    "cell",
    "continue_as_new",
    "deprecate_patch",
    "deterministic",
    "idempotency_key",
    "now",
    "parallel",
    "patched",
    "progress",
    "race",
    "random",
    "registered_workflows",
    "retry",
    "run",
    "runnable",
    "saga",
    "scheduled_time",
    "select",
    "set_event",
    "signal",
    "sleep",
    "spawn",
    "start_child",
    "step",
    "stream",
    "timeout",
    "tool",
    "use",
    "uuid4",
    "vote",
    "wait_for_signal",
    "wait_for_update",
    "workflow",
    "workflow_id",
]
