"""The engine: a run, its scopes and positions, replay, the one durable call, execute.

What ``workflow`` builds its calls on and ``worker`` runs; nothing here knows
about claims, leases or the client.
"""

from __future__ import annotations

from . import _asyncio_guard as asyncio_guard
from . import _observe as observe
from . import _task_factory as task_factory
from ._code import WorkflowCode
from ._continued import ContinueAsNew
from ._execution import Engine, cancel_children, execute, load_run
from ._host import Host
from ._operation import DEADLINE, STARTED, WATCH, durable_deadline, operation
from ._run import Run
from ._scope import Scope, current_scope, detached
from ._stall import step_label, steps_running
from ._unrecorded import unrecorded
from ._unwind import Aborted, LeaseLost, Shutdown, Suspend, Unwind

__all__ = [
    "DEADLINE", "STARTED", "WATCH", "Aborted", "ContinueAsNew", "Engine", "Host", "LeaseLost",
    "Run", "Scope",
    "Shutdown", "Suspend", "Unwind", "WorkflowCode", "asyncio_guard", "cancel_children",
    "current_scope", "detached", "durable_deadline", "execute", "load_run", "observe",
    "operation",
    "step_label", "steps_running", "task_factory", "unrecorded",
]
