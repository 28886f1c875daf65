"""What a store keeps of streams and updates (``legato.stream``, ``rt.update``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._protocol import StepRecord

__all__ = ["Streams", "Updates"]


class Streams(Protocol):
    """Streams of values a workflow writes and any client reads (``legato.stream``)."""

    async def write_stream(self, workflow_id: str, owner: str, key: str, origin: str,
                           value: bytes | None, step: StepRecord | None = None) -> str:
        """Append ``value`` (``None``: the close marker) to stream ``key``, fenced by ``owner``.

        ``origin`` names the write (a position, a step's n-th write): a second
        write of one origin is a no-op, so a replay or a re-run step never
        appends a value twice. Offsets increase in commit order (0, 1, 2...;
        a rare gap is possible on PostgreSQL). ``step`` (a write from
        workflow code) is recorded in the same transaction, unless the value
        was refused. Returns ``"written"`` (or written before; closing a
        closed stream), ``"closed"`` (the stream was closed; nothing written)
        or ``"lost"`` (lease lost; nothing written).
        """
        ...

    async def read_stream(self, workflow_id: str, key: str, offset: int, limit: int
                          ) -> list[tuple[int, bytes | None]]:
        """Up to ``limit`` ``(offset, value)`` from ``offset`` on; value ``None`` is the close."""
        ...


class Updates(Protocol):
    """Requests that wait for a workflow's reply (``rt.update`` / ``legato.wait_for_update``)."""

    async def send_update(self, workflow_id: str, update_id: str, name: str,
                          payload: bytes) -> None:
        """Store an update request (once per ``update_id``) and wake its workflow.

        Raises:
            WorkflowNotFound: no such workflow. LegatoError: it has finished
                and the update was not sent before.
        """
        ...

    async def take_update(self, workflow_id: str, owner: str, name: str, step: StepRecord
                          ) -> tuple[str, bytes | None]:
        """As :meth:`Mailbox.take_signal`, for the oldest untaken update ``name``."""
        ...

    async def reply_update(self, workflow_id: str, owner: str, update_id: str, reply: bytes,
                           step: StepRecord) -> bool:
        """Record ``step`` and the update's reply, atomically; ``False``: lease lost."""
        ...

    async def update_reply(self, workflow_id: str, update_id: str
                           ) -> tuple[bool, bytes | None]:
        """(replied, reply) of an update."""
        ...
