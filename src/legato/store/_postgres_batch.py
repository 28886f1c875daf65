"""Group commit for PostgreSQL: the checkpoints of one loop turn in one round trip.

``append`` calls made during one event-loop turn (by any number of workflows)
are sent as one fenced ``INSERT ... SELECT FROM unnest(...)``: one statement,
so one implicit transaction and one round trip. While a batch is on the wire
the next one gathers, so under load batches grow and round trips don't.

Order: writes other than appends call :meth:`AppendBatcher.barrier` first,
so a ``finish`` or ``suspend`` never overtakes a checkpoint made before it
(``now()``/``random()`` records are not awaited by the workflow).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .._errors import StoreError
from ._protocol import StepRecord

__all__ = ["APPEND_SQL", "AppendBatcher", "Item"]

Item = tuple[str, str, StepRecord, "asyncio.Future[bool]"]

# Fenced: a step is written only while its owner holds the workflow, running.
# The workflow rows are share-locked in id order, so a claim can't take them
# mid-write, and two writers (this one and a heartbeat) never lock in
# opposite orders.
APPEND_SQL = """
WITH fenced AS MATERIALIZED (
    SELECT id, owner FROM workflows
    WHERE id = ANY($1::text[]) AND status = 'running'
    ORDER BY id FOR SHARE
)
INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)
SELECT b.wid, b.pos, b.kind, b.name, b.ok, b.value, b.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
            $7::bytea[], $8::float8[]) AS b(wid, owner, pos, kind, name, ok, value, at)
JOIN fenced f ON f.id = b.wid AND f.owner = b.owner
RETURNING workflow_id, position
"""


def append_args(items: list[tuple[str, str, StepRecord, bytes | None]]) -> list[list[Any]]:
    """The eight arrays of :data:`APPEND_SQL` (``value`` given apart from the step)."""
    return [
        [wid for wid, _, _, _ in items],
        [owner for _, owner, _, _ in items],
        [s.position for _, _, s, _ in items],
        [s.kind for _, _, s, _ in items],
        [s.name for _, _, s, _ in items],
        [s.ok for _, _, s, _ in items],
        [value for _, _, _, value in items],
        [s.created_at for _, _, s, _ in items],
    ]


Insert = Callable[[list[Item]], Awaitable[set[tuple[str, str]]]]


class AppendBatcher:
    """Collects appends and writes them one batch at a time, in submission order."""

    def __init__(self, insert: Insert) -> None:
        self._insert = insert
        self._queue: list[Item] = []
        self._seq = 0  # appends submitted so far
        self._queued_upto = 0  # the seq of the last queued append
        self._done_upto = 0  # every append up to this seq is settled
        self._inflight: asyncio.Task[None] | None = None
        self._scheduled = False

    def submit(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.append((workflow_id, owner, step, fut))
        self._seq += 1
        self._queued_upto = self._seq
        if not self._scheduled and self._inflight is None:
            self._scheduled = True
            loop.call_soon(self._start, context=contextvars.Context())
        return fut

    async def barrier(self) -> None:
        """Return once every append submitted before this call is committed (or failed)."""
        target = self._seq
        while self._done_upto < target:
            if self._inflight is None:
                self._start()
            if self._inflight is not None:
                await asyncio.wait([self._inflight])  # never cancels the batch

    def _start(self) -> None:
        self._scheduled = False
        if self._inflight is not None or not self._queue:
            return
        # An append whose caller was cancelled before it was sent is not made.
        batch = [item for item in self._queue if not item[3].cancelled()]
        self._queue, upto = [], self._queued_upto
        if not batch:
            self._done_upto = upto
            return
        # In a context of its own: a task made in a workflow's context would be
        # taken for one of its branches and shift its positions.
        self._inflight = asyncio.get_running_loop().create_task(
            self._write(batch, upto), name="legato-pg-appends", context=contextvars.Context())

    async def _write(self, batch: list[Item], upto: int) -> None:
        try:
            try:
                written = await self._insert(batch)
            except StoreError as exc:
                if len(batch) == 1 or not isinstance(
                        exc.__cause__, asyncpg.IntegrityConstraintViolationError
                        | asyncpg.DataError):
                    raise
                # one bad row (e.g. a position written twice) must not sink the others
                for item in batch:
                    await self._write_one(item)
                return
            for wid, _, step, fut in batch:
                if not fut.done():
                    fut.set_result((wid, step.position) in written)
        except BaseException as exc:  # the futures carry it to the callers
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._done_upto = upto
            self._inflight = None
            if self._queue and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start, context=contextvars.Context())

    async def _write_one(self, item: Item) -> None:
        wid, _, step, fut = item
        try:
            written = await self._insert([item])
        except StoreError as exc:
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result((wid, step.position) in written)
