"""Ways a run stops without failing or being cancelled: unloaded, taken over, shut down, aborted."""

from __future__ import annotations

__all__ = ["Aborted", "LeaseLost", "Shutdown", "Suspend", "Unwind"]


class Unwind(BaseException):
    """Unwinds a workflow's code without failing or cancelling the workflow.

    A ``BaseException`` so that user ``except Exception`` blocks don't catch it
    and primitives let it pass. Once a run unwinds, every durable call made
    while it unwinds (in ``finally`` blocks) raises it again instead of
    running: nothing more is recorded by this attempt. Sagas don't compensate.
    """


class Suspend(Unwind):
    """Unloads a workflow that waits long, so it holds no task and no memory.

    ``wake_at`` is the durable time to replay it at (``None``: when a signal
    or child arrives).
    """

    def __init__(self, wake_at: float | None, signal: str | None = None,
                 child: str | None = None) -> None:
        super().__init__(wake_at)
        self.wake_at = wake_at
        self.signal = signal  # the signal name it waits for, if any
        self.child = child  # the child workflow id it waits for, if any


class LeaseLost(Unwind):
    """Another worker took the workflow over: this process records nothing more for it."""


class Shutdown(Unwind):
    """The runtime is stopping: the workflow is left for another worker to resume."""


class Aborted(Unwind):
    """A store write failed: this attempt stops and resumes from its last checkpoint.

    A store error is never shown to workflow code, which might take a path a
    replay contradicts (an ``except Exception`` fallback); it is retried as
    after a crash.
    """
