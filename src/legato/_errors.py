"""Every error legato raises on purpose.

The tree::

    LegatoError
    ├── NonDeterminismError      replay met code that differs from the recorded history
    ├── SerializationError       (also TypeError) a value legato can't store
    │   └── PayloadTooLarge      a value over the serializer's size limit
    ├── WorkflowNotFound         (also LookupError) no workflow has that id
    ├── ScheduleNotFound         (also LookupError) no schedule has that name
    ├── WorkflowConflict         an id reused for a different workflow
    ├── DuplicateWorkflow        a queue's dedup_key held by an unfinished workflow
    ├── WorkflowCancelled        the workflow was cancelled
    ├── RecoveryLimitExceeded    its worker died more often than max_recoveries allows
    ├── StepFailed               a recorded error that can't be rebuilt here
    ├── AllFailed                (also ExceptionGroup) race/vote where every branch failed
    ├── ChannelClosed            receive on a closed, drained channel
    ├── CircuitOpenError         a circuit breaker refused the call
    ├── GraphError               an invalid or failed graph
    ├── GrantViolation           a tool call outside its grant
    ├── EffectViolation          an effect the enclosing cell did not declare
    ├── StoreError               the store failed (driver errors are translated to this)
    │   └── SchemaVersionError   the store's schema is newer than this legato
    └── WorkflowTimeout          (also TimeoutError) ``handle.result(timeout=...)`` ran out

Each message says what happened and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AllFailed",
    "ChannelClosed",
    "CircuitOpenError",
    "DuplicateWorkflow",
    "EffectViolation",
    "GrantViolation",
    "GraphError",
    "LegatoError",
    "NonDeterminismError",
    "PayloadTooLarge",
    "RecoveryLimitExceeded",
    "ScheduleNotFound",
    "SchemaVersionError",
    "SerializationError",
    "StepFailed",
    "StoreError",
    "WorkflowCancelled",
    "WorkflowConflict",
    "WorkflowNotFound",
    "WorkflowTimeout",
]


class LegatoError(Exception):
    """Base class of every error legato raises on purpose."""


class NonDeterminismError(LegatoError):
    """Replay found a different operation at a position than the one recorded.

    Workflow code must make the same durable calls in the same order on every
    run. Fix the code (or guard the change with ``legato.patched``) and call
    ``rt.resume(id)`` to continue the workflow.
    """

    def __init__(self, workflow_id: str, position: str, recorded: str, found: str) -> None:
        self.workflow_id = workflow_id
        self.position = position
        self.recorded = recorded
        self.found = found
        self.message = (
            f"workflow {workflow_id!r} is not deterministic at position {position}: "
            f"the history recorded {recorded} there, but the code now does {found}. "
            "Workflow code must repeat the same durable calls in the same order on replay; "
            "move nondeterminism (time, randomness, I/O) into steps, guard code changes "
            "with legato.patched(...), then rt.resume(id)."
        )
        # args are the constructor's, so the error survives being recorded and re-raised
        super().__init__(workflow_id, position, recorded, found)

    def __str__(self) -> str:
        return self.message


class SerializationError(LegatoError, TypeError):
    """A value can't be stored by the workflow's serializer."""


class PayloadTooLarge(SerializationError):
    """A serialized value is over the serializer's ``max_size``; it is never retried."""


class WorkflowNotFound(LegatoError, LookupError):
    """No workflow with that id exists in the store."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(workflow_id)

    def __str__(self) -> str:
        return (
            f"no workflow with id {self.workflow_id!r} in this store; "
            "check the id and that the Runtime points at the same database"
        )


class ScheduleNotFound(LegatoError, LookupError):
    """No schedule with that name exists in the store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return (f"no schedule named {self.name!r} in this store; list them with "
                "rt.schedules() or 'legato schedules'")


class WorkflowConflict(LegatoError):
    """A workflow id was started again with a different workflow."""

    def __init__(self, workflow_id: str, existing: str, requested: str) -> None:
        self.workflow_id = workflow_id
        self.existing = existing
        self.requested = requested
        super().__init__(workflow_id, existing, requested)

    def __str__(self) -> str:
        return (
            f"workflow id {self.workflow_id!r} already belongs to workflow {self.existing!r}; "
            f"it can't be started as {self.requested!r}. An id names one run of one "
            "workflow: choose another id, or start the same workflow to get its handle."
        )


class DuplicateWorkflow(LegatoError):
    """A queue already has an unfinished workflow with this ``dedup_key``.

    ``existing_id`` names that workflow: ``rt.handle(err.existing_id)`` waits
    for it. The key is free again once it finishes (any final status).
    """

    def __init__(self, queue: str, dedup_key: str, existing_id: str) -> None:
        self.queue = queue
        self.dedup_key = dedup_key
        self.existing_id = existing_id
        super().__init__(queue, dedup_key, existing_id)

    def __str__(self) -> str:
        return (
            f"queue {self.queue!r} already has an unfinished workflow {self.existing_id!r} "
            f"with dedup_key {self.dedup_key!r}; nothing was enqueued. Wait for it with "
            f"rt.handle({self.existing_id!r}).result(), or use another dedup_key."
        )


class WorkflowCancelled(LegatoError):
    """The workflow was cancelled before it finished."""


class RecoveryLimitExceeded(LegatoError):
    """A run was taken over after its worker died more times than ``max_recoveries`` allows.

    Its input or code likely crashes (or runs out of memory in) every process
    that runs it, so it is ``failed`` instead of recovered again: DBOS's dead
    letter. Fix the cause, then ``rt.resume(id)`` runs it again from its last
    checkpoint, with the count reset.

    Example::

        @legato.workflow(max_recoveries=3)
        async def ingest(path: str) -> None: ...

        try:
            await rt.handle(workflow_id).result()
        except legato.RecoveryLimitExceeded as err:
            print(err.workflow_id, err.recoveries)
    """

    def __init__(self, workflow_id: str, workflow: str, recoveries: int, limit: int) -> None:
        self.workflow_id = workflow_id
        self.workflow = workflow
        self.recoveries = recoveries
        self.limit = limit
        # args are the constructor's, so the error survives being recorded and re-raised
        super().__init__(workflow_id, workflow, recoveries, limit)

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} ({self.workflow}) was not recovered again: the "
            f"worker running it died {self.recoveries} times (max_recoveries={self.limit}), "
            "so its input or code may crash every process that runs it. Fix the cause, then "
            f"rt.resume({self.workflow_id!r}) (or `legato resume {self.workflow_id}`) runs it "
            "again from its last checkpoint with the count reset.")


class StepFailed(LegatoError):
    """A recorded error that can't be rebuilt here, re-raised in its place.

    Its type's module is not imported in this process (legato never imports a
    module because stored data names it: import it before loading), the name
    is not an exception class, or it can't be built again from what was recorded.

    Attributes:
        type_name: ``module.QualName`` of the original exception.
        message: its ``str()``.
        traceback: the formatted traceback recorded when it was raised.
    """

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        super().__init__(type_name, message, traceback)

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


class AllFailed(LegatoError, ExceptionGroup[Exception]):
    """Every branch of a race or vote failed; ``.exceptions`` holds each failure."""


class ChannelClosed(LegatoError):
    """The channel is closed and has no more items."""


class CircuitOpenError(LegatoError):
    """A circuit breaker is open and refused the call without running it."""


class GraphError(LegatoError):
    """A graph is invalid (unknown node, cycle, unreachable node) or some of its nodes failed.

    Attributes:
        message: what went wrong and how to fix it (also ``str(err)``).
        nodes: the names of the nodes at fault: the failed nodes, or those that
            make the graph invalid.
        errors: for a run, each failed node's exception, by node name.
        results: for a run, the output of every node that finished.
        skipped: for a run, the nodes that did not run because a dependency failed.

    ``failed`` and ``error`` give the first failed node (in the graph's order)
    and its exception. All fields are constructor arguments, so the error
    survives being recorded in a workflow's history and comes back whole.

    Example::

        try:
            await graph.invoke(data)
        except legato.GraphError as err:
            print(err.failed, err.error, err.results, err.skipped)
    """

    def __init__(
        self, message: str, nodes: tuple[str, ...] | list[str] = (),
        errors: Mapping[str, BaseException] | None = None,
        results: Mapping[str, object] | None = None,
        skipped: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.message = message
        self.nodes = tuple(nodes)
        self.errors = dict(errors or {})
        self.results = dict(results or {})
        self.skipped = tuple(skipped)
        # args are the constructor's, so a recorded GraphError is rebuilt with cls(*args)
        super().__init__(message, self.nodes, self.errors, self.results, self.skipped)

    @property
    def failed(self) -> str | None:
        """The first failed node's name, or ``None`` (an invalid graph)."""
        return next(iter(self.errors), None)

    @property
    def error(self) -> BaseException | None:
        """The first failed node's exception, or ``None``."""
        return next(iter(self.errors.values()), None)

    def __str__(self) -> str:
        return self.message


class GrantViolation(LegatoError):
    """A tool call broke a constraint of its grant; the tool did not run.

    Raised before any I/O. Attributes: ``tool`` (its name), ``constraint``
    (the grant key, like ``"max_tokens"``, ``"domain"``, ``"budget"``),
    ``value`` (the offending value) and ``reason`` (what the grant allows).
    """

    def __init__(self, tool: str, constraint: str, value: object, reason: str) -> None:
        self.tool = tool
        self.constraint = constraint
        self.value = value
        self.reason = reason
        # args are the constructor's, so the error survives being recorded and re-raised
        super().__init__(tool, constraint, value, reason)

    def __str__(self) -> str:
        return (
            f"tool {self.tool!r} refused by its grant: {self.constraint} does not allow "
            f"{self.value!r} ({self.reason}); nothing was sent. Pass a value the grant "
            "allows, or widen the grant where the tool is bound (legato.use(..., grant=...))."
        )


class EffectViolation(LegatoError):
    """A tool (or cell) has an effect that the enclosing cell did not declare.

    Raised at call time, before the callee runs. Attributes: ``callee``
    (``"tool 'http.get'"`` or ``"cell 'Team.search'"``), ``effect``,
    ``cell`` (the enclosing cell, or the workflow that refused it) and
    ``fix`` (what to change).
    """

    def __init__(self, callee: str, effect: str, cell: str, fix: str) -> None:
        self.callee = callee
        self.effect = effect
        self.cell = cell
        self.fix = fix
        super().__init__(callee, effect, cell, fix)

    def __str__(self) -> str:
        return (
            f"{self.callee} has effect {self.effect!r}, which {self.cell} does not allow; "
            f"{self.fix}"
        )


class StoreError(LegatoError):
    """The store (SQLite or PostgreSQL) failed; the driver's error is the ``__cause__``."""


class SchemaVersionError(StoreError):
    """The database was written by a newer legato than the one running."""


class WorkflowTimeout(LegatoError, TimeoutError):
    """Waiting for a workflow's result took longer than the given timeout.

    The workflow itself goes on; only the wait ended.
    """
