"""``Runtime``'s inspection methods: one workflow, its history, a filtered list, the workers.

A mixin of ``legato.Runtime`` (as the stores' protocol groups are of the
stores): read-only, built on the store's reads and on :mod:`._inspection`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from ..._clock import SystemClock
from ..._errors import WorkflowNotFound
from ..._serde import Serializer
from ...store import StepRecord, Store, WorkflowQuery, WorkflowRecord
from ..worker import ANNOUNCE_EVERY
from ._handle import Status, WorkerInfo, WorkflowInfo, make_info
from ._inspection import HistoryRecord, decode_value, history, to_datetime

__all__ = ["RuntimeInspection"]

_PAGE = 1000  # children are read in pages of this many
_MICROSECOND = 1e-6

_ALIVE = 3 * ANNOUNCE_EVERY  # a worker not heard from for longer is taken for gone


class RuntimeInspection:
    """The read-only inspection methods of ``Runtime`` (mixed into it)."""

    if TYPE_CHECKING:
        store: Store
        wall: SystemClock
        serializer: Serializer

    async def get(self, workflow_id: str) -> WorkflowInfo:
        """Everything about one workflow: status, inputs, output, error and its
        traceback, timings, run id, parent and children, published events, and
        the step timeline (``info.steps``).

        >>> info = await rt.get("order-42")
        >>> [(s.position, s.name, s.attempts, s.summary) for s in info.steps]

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        await asyncio.sleep(0)  # a SQLite read doesn't suspend: let a polling loop yield
        record = await self.store.get(workflow_id)
        if record is None:
            raise WorkflowNotFound(workflow_id)
        events = {e.key: decode_value(self.serializer, e.value)
                  for e in await self.store.events(workflow_id)}
        return make_info(record, self.serializer, await self.store.history(workflow_id),
                         children=await self._children(workflow_id), events=events)

    async def history(self, workflow_id: str, run_id: str | None = None
                      ) -> list[HistoryRecord]:
        """A workflow's raw checkpoints in position order, as stored (values still encoded).

        This is the record of a run that replay reads; :meth:`get` shows the
        same as a decoded timeline. ``run_id`` reads the run before the
        current one instead (``info.previous_run_id``, after
        ``legato.continue_as_new``).

        >>> for r in await rt.history("order-42"):
        ...     print(r.position, r.kind, r.name, r.ok, r.at)

        Raises:
            WorkflowNotFound: no workflow has this id.
            ValueError: ``run_id`` is neither its current nor its previous run.
        """
        record = await self.store.get(workflow_id)
        if record is None:
            raise WorkflowNotFound(workflow_id)
        if run_id is None or run_id == record.run_id:
            return history(await self.store.history(workflow_id))
        if run_id != record.previous_run_id:
            raise ValueError(
                f"workflow {workflow_id!r} has no run {run_id!r} kept: its current run is "
                f"{record.run_id!r} and the one before {record.previous_run_id!r} (only the "
                "run before the current one is kept)")
        return history(await self.store.history(workflow_id, run_id))

    async def workers(self) -> list[WorkerInfo]:
        """The workers serving this store: alive ones, and those that vanished within a day.

        Each worker announces itself every few seconds; one that stopped
        cleanly is removed, one that died stays, no longer ``alive``.

        >>> for w in await rt.workers():
        ...     print(w.id, w.alive, w.workflows)
        """
        now = self.wall.now()
        return [WorkerInfo(w.id, w.names, w.queues, to_datetime(w.started_at),
                           to_datetime(w.seen_at), now - w.seen_at < _ALIVE)
                for w in await self.store.workers()]

    async def _children(self, workflow_id: str) -> list[str]:
        ids: list[str] = []
        while True:
            page = await self.store.find(WorkflowQuery(
                parent=workflow_id, limit=_PAGE, offset=len(ids), newest_first=False))
            ids += [r.id for r in page]
            if len(page) < _PAGE:
                return ids

    async def list(
        self, status: Status | str | None = None, name: str | None = None, *,
        queue: str | None = None, parent: str | None = None,
        since: datetime | float | None = None, until: datetime | float | None = None,
        limit: int = 100, offset: int = 0, order: Literal["newest", "oldest"] = "newest",
    ) -> list[WorkflowInfo]:
        """Workflows, filtered, one page at a time (newest first by default).

        Failed workflows are the dead-letter queue: each shows its ``error``
        and ``failed_step``; ``rt.resume(id)`` retries one from its last
        checkpoint. Listed infos carry no ``steps``, ``children`` or
        ``events``: :meth:`get` reads those.

        >>> failed = await rt.list(status="failed", queue="emails")
        >>> recent = await rt.list(since=time.time() - 3600, order="oldest", limit=50)

        Args:
            status: only workflows in this status.
            name: only runs of the workflow with this name.
            queue: only workflows enqueued on this queue.
            parent: only the children of this workflow id.
            since: created at or after this time (a ``datetime``; naive means
                local time) or epoch seconds. A datetime counts to the
                microsecond: ``since=info.created_at`` includes that workflow,
                ``until=info.created_at`` excludes it.
            until: created before this time.
            limit: at most this many.
            offset: skip this many first (paging: ``offset=limit * page``).
            order: ``"newest"`` or ``"oldest"`` first, by creation time.
        """
        if order not in ("newest", "oldest"):
            raise ValueError(f"order must be 'newest' or 'oldest', not {order!r}")
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset can't be negative (got {limit}, {offset})")
        query = WorkflowQuery(
            status=None if status is None else Status(status).value, name=name, queue=queue,
            parent=parent, since=_epoch(since), until=_epoch(until), limit=limit,
            offset=offset, newest_first=order == "newest")
        records = await self.store.find(query)
        return [make_info(r, self.serializer, await _failed_history(self.store, r),
                          with_steps=False) for r in records]


async def _failed_history(store: Store, record: WorkflowRecord) -> list[StepRecord] | None:
    # only failed workflows pay a query: it finds their failing step
    return await store.history(record.id) if record.status == "failed" else None


def _epoch(when: datetime | float | None) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        # A datetime holds whole microseconds, rounded from the stored float: a step
        # back keeps `since=info.created_at` including that workflow, `until=` excluding it.
        return when.timestamp() - _MICROSECOND
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"since/until take a datetime or epoch seconds, not {when!r}")
    return float(when)
