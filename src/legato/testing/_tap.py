"""A store seen through :func:`legato.testing.explore`: every durable write is a commit point.

:class:`Tap` wraps a real store. It numbers the writes a runtime makes (a
checkpoint, a signal taken, a child created, a finish, ...) and, when told to
crash after the k-th, lets the first k through and none after: the (k+1)-th
and every later write is answered as if the worker had lost its lease (the
run stops, recording nothing), and the runtime is then torn down without
writing anything more, as a killed process would leave the store.
A recovering runtime's tap makes its claims see the crashed worker's leases
as lapsed, so recovery starts at once instead of a lease later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn, cast

from .._clock import Clock
from ..store import (
    Claimed,
    ClaimRequest,
    Lease,
    NewWorkflow,
    Renewal,
    Renewer,
    StepRecord,
    Store,
    WorkflowRecord,
)

__all__ = ["CommitPoint", "Tap"]


@dataclass(frozen=True, slots=True)
class CommitPoint:
    """One durable write of an explored run: the k-th commit point.

    ``workflow`` is ``""`` for the explored workflow and ``"/4"`` for its
    child started at position 4; ``position`` is ``""`` for writes without
    one (a finish, a child's creation).
    """

    index: int
    workflow: str
    position: str
    kind: str
    name: str

    def __str__(self) -> str:
        what = f"{self.kind} {self.name!r}" if self.name else self.kind
        where = f" at {self.position}" if self.position else ""
        child = f" of child {self.workflow}" if self.workflow else ""
        return f"commit {self.index}: {what}{where}{child}"


class Tap:
    """Counts a runtime's writes; after ``crash_after`` of them, lets nothing more through.

    Implements :class:`legato.store.Store` by delegation (cast where it is used).
    """

    def __init__(self, store: Store, root: str, clock: Clock, *, crash_after: int | None,
                 lease_floor: float) -> None:
        self._store = store
        self.root = root
        self.clock = clock
        self.crash_after = crash_after
        self.lease_floor = lease_floor  # claims treat leases ending before it as lapsed
        self.commits: list[CommitPoint] = []  # the writes let through, in call order
        self.lost: CommitPoint | None = None  # the write the crash stopped
        self.crashed = False
        self.crash_time = 0.0  # durable time at the crash
        self.lease_max = 0.0  # the latest lease end this runtime asked for
        self.stopped = asyncio.Event()  # crashed, or the explored workflow finished
        self.on_crash: Callable[[], None] | None = None  # called at the crash, synchronously

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"Tap({self._store!r}, crash_after={self.crash_after})"

    @property
    def store(self) -> Store:
        """This tap as a :class:`Store`, for a Runtime."""
        return cast(Store, self)

    # -- commit points -------------------------------------------------------------

    def _point(self, workflow_id: str, position: str, kind: str, name: str) -> CommitPoint:
        if workflow_id.startswith(self.root):
            workflow_id = workflow_id[len(self.root):]
        return CommitPoint(len(self.commits) + 1, workflow_id, position, kind, name)

    def _refused(self, point: CommitPoint) -> bool:
        """Whether ``point`` is at or past the crash (then nothing is written)."""
        if self.crashed:
            return True
        if self.crash_after is not None and len(self.commits) >= self.crash_after:
            self.crashed, self.lost, self.crash_time = True, point, self.clock.now()
            if self.on_crash is not None:
                self.on_crash()
            self.stopped.set()
            return True
        self.commits.append(point)
        return False

    # After the crash a write lands nowhere. Where the protocol can say "this worker
    # lost the lease" it does: the run stops at once and records nothing more, and the
    # worker does not retry it (a store error would make it retry, from a dead store).
    # The rest (a child's creation, a cancellation) never return; teardown cancels them.

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        point = self._point(workflow_id, step.position, step.kind, step.name)
        if self._refused(point):
            lost: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            lost.set_result(False)
            return lost
        return self._store.append(workflow_id, owner, step)

    async def take_signal(self, workflow_id: str, owner: str, name: str, step: StepRecord
                          ) -> tuple[str, bytes | None]:
        if self._refused(self._point(workflow_id, step.position, step.kind, name)):
            return "lost", None
        return await self._store.take_signal(workflow_id, owner, name, step)

    async def untake_signal(self, workflow_id: str, owner: str, position: str) -> None:
        if not self._refused(self._point(workflow_id, position, "untake_signal", "")):
            await self._store.untake_signal(workflow_id, owner, position)

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        self.lease_max = max(self.lease_max, wf.lease_until)
        if self._refused(self._point(wf.id, "", "create", wf.name)):
            await _forever()
        return await self._store.create(wf)

    async def finish(self, workflow_id: str, owner: str, status: str, result: bytes | None,
                     error: bytes | None, failed_at: Any = None) -> bool:
        if self._refused(self._point(workflow_id, "", "finish", status)):
            return False
        done = await self._store.finish(workflow_id, owner, status, result, error,
                                        failed_at=failed_at)
        if workflow_id == self.root:
            self.stopped.set()
        return done

    async def continue_as_new(self, workflow_id: str, owner: str, input: bytes) -> str | None:
        if self._refused(self._point(workflow_id, "", "continue_as_new", "")):
            return None
        return await self._store.continue_as_new(workflow_id, owner, input)

    async def suspend(self, workflow_id: str, owner: str, wake_at: float | None,
                      signal: str | None = None, child: str | None = None) -> bool:
        if self._refused(self._point(workflow_id, "", "suspend", "")):
            return False
        return await self._store.suspend(workflow_id, owner, wake_at, signal, child)

    async def set_event(self, workflow_id: str, owner: str, key: str, value: bytes,
                        step: StepRecord) -> bool:
        if self._refused(self._point(workflow_id, step.position, step.kind, key)):
            return False
        return await self._store.set_event(workflow_id, owner, key, value, step)

    async def send_signal(self, workflow_id: str, name: str, payload: bytes,
                          sender: tuple[str, str, StepRecord] | None = None) -> bool:
        point = (self._point(workflow_id, "", "send_signal", name) if sender is None
                 else self._point(sender[0], sender[2].position, sender[2].kind, name))
        if self._refused(point):
            if sender is None:
                await _forever()
            return False
        return await self._store.send_signal(workflow_id, name, payload, sender)

    async def request_cancel(self, workflow_id: str) -> WorkflowRecord:
        if self._refused(self._point(workflow_id, "", "cancel", "")):
            await _forever()
        return await self._store.request_cancel(workflow_id)

    # -- leases: a crashed worker holds none, a recovering one finds them lapsed ---------

    async def claim(self, request: ClaimRequest) -> list[Claimed]:
        if self.crashed:
            return []
        self.lease_max = max(self.lease_max, request.lease_until)
        return await self._store.claim(
            replace(request, real_now=max(request.real_now, self.lease_floor)))

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if self.crashed:
            return Renewal()
        self.lease_max = max(self.lease_max, lease_until)
        return await self._store.heartbeat(leases, lease_until)

    def renewer(self) -> Renewer:
        return cast(Renewer, _TapRenewer(self, self._store.renewer()))

    async def release(self, leases: Sequence[Lease]) -> None:
        if not self.crashed:  # a killed process gives nothing back
            await self._store.release(leases)


class _TapRenewer:
    """The lease keeper's connection, through the tap: a crashed worker renews nothing."""

    def __init__(self, tap: Tap, renewer: Renewer) -> None:
        self._tap = tap
        self._renewer = renewer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._renewer, name)

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if self._tap.crashed:
            return Renewal()
        self._tap.lease_max = max(self._tap.lease_max, lease_until)
        return await self._renewer.heartbeat(leases, lease_until)


async def _forever() -> NoReturn:
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")  # pragma: no cover
