"""The seam between the durable engine and a database.

The engine talks only to :class:`Store`; SQLite and PostgreSQL implement it,
and one contract test suite runs against both. Values arrive already
serialized (``bytes``): a store never sees Python objects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

__all__ = ["NewWorkflow", "Store", "StepRecord", "WorkflowRecord"]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One checkpoint: the outcome of a durable operation at a position."""

    position: str
    kind: str  # "step", "sleep", "now", "random", "uuid", "race", ...
    name: str
    ok: bool  # False: ``value`` is an encoded error
    value: bytes | None
    created_at: float


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow's row."""

    id: str
    name: str
    status: str
    input: bytes
    result: bytes | None
    error: bytes | None
    owner: str | None
    lease_until: float
    created_at: float
    updated_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """What :meth:`Store.create` needs to insert a workflow."""

    id: str
    name: str
    input: bytes
    owner: str | None  # set: created already claimed by that worker ("running")
    lease_until: float


class Store(Protocol):
    """Persistence for workflows and their checkpoints.

    Writes made during one event-loop turn may be committed together; every
    write method returns only once its write is durable.
    """

    url: str

    async def open(self) -> None:
        """Connect, create or migrate the schema."""
        ...

    async def close(self) -> None:
        """Flush pending writes and disconnect."""
        ...

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        """Insert ``wf``; return ``None`` if inserted, else the existing row (nothing written)."""
        ...

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        """Record a checkpoint if ``owner`` still holds the workflow's lease.

        Returns a future resolving to ``False`` when the lease was lost (nothing
        written). The caller may choose not to await it (``now()``/``random()``):
        writes commit in the order they were made.
        """
        ...

    async def finish(
        self, workflow_id: str, owner: str, status: str, result: bytes | None, error: bytes | None
    ) -> bool:
        """Set a final status if ``owner`` holds the lease; ``False`` if it does not."""
        ...

    async def claim(
        self, owner: str, lease_until: float, now: float, limit: int, names: list[str]
    ) -> list[WorkflowRecord]:
        """Take up to ``limit`` workflows that are pending, or running with a lapsed lease.

        Only workflows whose name is in ``names`` (the code this worker has).
        """
        ...

    async def heartbeat(self, owner: str, lease_until: float) -> None:
        """Extend the lease of every running workflow ``owner`` holds."""
        ...

    async def release(self, owner: str, workflow_ids: list[str]) -> None:
        """Give up leases at once (a graceful shutdown), so another worker takes over."""
        ...

    async def next_lease_expiry(self) -> float | None:
        """The earliest lease end among running workflows, or ``None``."""
        ...

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row."""
        ...

    async def history(self, workflow_id: str) -> list[StepRecord]:
        """Every checkpoint of a workflow, in one query."""
        ...

    async def list(
        self, *, status: str | None, name: str | None, limit: int
    ) -> list[WorkflowRecord]:
        """Workflows, newest first."""
        ...
