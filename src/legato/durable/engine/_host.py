"""What a run asks of the worker hosting it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ...store import QueueLimits, WorkflowRecord
    from ._code import WorkflowCode
    from ._run import Run

__all__ = ["Host"]


class Host(Protocol):
    """What a run asks of the worker hosting it (children, in-process news)."""

    async def start_child(
        self, wf: WorkflowCode, child_id: str, data: bytes, parent: Run,
        queue: QueueLimits | str | None = None,
    ) -> WorkflowRecord | None:
        """Create (or find) a child workflow's row and run it here if there is room.

        A child on ``queue`` is stored ``pending`` on it instead, and starts
        when a claim finds room within the queue's limits.
        """
        ...

    def holds(self, workflow_id: str, owner: str) -> bool:
        """Whether attempt ``owner`` surely holds ``workflow_id`` for half a lease more at least."""
        ...

    async def renew(self, workflow_id: str, owner: str) -> bool:
        """Renew attempt ``owner``'s lease now, in the store; whether it still held it."""
        ...

    def local_task(self, workflow_id: str) -> asyncio.Task[Any] | None:
        """The task running ``workflow_id`` in this process, if any."""
        ...

    def event_set(self, workflow_id: str) -> None:
        """Wake in-process readers of ``workflow_id``'s events."""
        ...

    def watch(self, workflow_id: str) -> asyncio.Event:
        """An event set when news for ``workflow_id`` arrives (a signal, a child's end)."""
        ...

    def unwatch(self, workflow_id: str, event: asyncio.Event) -> None:
        """Stop watching (see :meth:`watch`)."""
        ...

    def signalled(self, workflow_id: str) -> None:
        """A signal for ``workflow_id`` was stored: wake it if it waits here."""
        ...

    def cancelled(self, workflow_id: str) -> None:
        """A cancellation of ``workflow_id`` was stored: deliver it if it runs here."""
        ...
