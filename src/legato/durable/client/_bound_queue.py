"""``rt.queue(...)``: a :class:`~legato.Queue` bound to a runtime, to enqueue on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, final

from ..._duration import Duration
from ..workflow import Queue

if TYPE_CHECKING:
    from ._handle import WorkflowHandle
    from ._runtime import Runtime

__all__ = ["BoundQueue", "check_key", "declare"]

R = TypeVar("R")


@final
class BoundQueue:
    """A :class:`Queue` bound to a :class:`~legato.Runtime`: what ``rt.queue(...)`` returns.

    Example::

        queue = rt.queue("emails")
        handle = await queue.enqueue(send_email, "ana", priority=1)
    """

    __slots__ = ("queue", "runtime")

    def __init__(self, runtime: Runtime, queue: Queue) -> None:
        self.runtime = runtime
        self.queue = queue

    def __repr__(self) -> str:
        return f"BoundQueue({self.queue!r}, {self.runtime!r})"

    async def enqueue(
        self, fn: Callable[..., Awaitable[R]], /, *args: Any, id: str | None = None,
        priority: int = 0, delay: Duration | None = None, dedup_key: str | None = None,
        key: str | None = None, **kwargs: Any,
    ) -> WorkflowHandle[R]:
        """Store a workflow ``pending`` on this queue; it starts when the queue allows.

        Same as ``rt.start(fn, *args, queue=..., ...)``. ``priority``: lower
        starts first, as in DBOS and Temporal (within a priority, first enqueued
        first; the default is 0, so a negative priority jumps the line). ``delay``: not
        started before this much durable time has passed. ``dedup_key``: at
        most one unfinished workflow per key on this queue. ``key``: its
        concurrency key (a tenant, a customer), for a queue with ``key_concurrency``
        or ``key_rate``.

        >>> handle = await rt.queue("emails").enqueue(send, "ana", dedup_key="ana")

        Raises:
            DuplicateWorkflow: an unfinished workflow of this queue holds
                ``dedup_key`` (its id is in ``existing_id``); nothing is stored.
            WorkflowConflict: the id belongs to a different workflow.
        """
        return await self.runtime.start(
            fn, *args, id=id, queue=self.queue, priority=priority, delay=delay,
            dedup_key=dedup_key, key=key, **kwargs)


def check_key(key: str | None, queue: Queue | None) -> str | None:
    """``key`` if ``queue`` limits runs per key; else :class:`ValueError` saying how to.

    >>> check_key("customer-42", Queue("orders", key_concurrency=2))
    'customer-42'
    """
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise ValueError(f"key= takes a non-empty str (a tenant, a customer), not {key!r}")
    if queue is None or not queue.limits.keyed:
        named = "no queue" if queue is None else f"queue {queue.name!r}, which has no limit per key"
        raise ValueError(
            f"key={key!r} limits runs per key, but the workflow goes on {named}; pass "
            "queue=legato.Queue(name, key_concurrency=N) or Queue(name, key_rate='10/1m') "
            "(declared the same way in every process), or leave key= out")
    return key


def declare(queues: dict[str, Queue], queue: Queue | str, *, strict: bool) -> Queue:
    """The queue ``queue`` names in ``queues``, adding a new :class:`Queue` value.

    A name unknown here is an error when ``strict`` (this runtime has a worker,
    which would never run the workflow); a client accepts it, unlimited.
    """
    if isinstance(queue, Queue):
        known = queues.setdefault(queue.name, queue)
        if known != queue:
            raise ValueError(
                f"queue {queue.name!r} is declared here as {known!r}, not {queue!r}; "
                "declare each queue once, with the same limits in every process")
        return known
    if not isinstance(queue, str):
        raise TypeError(f"queue= takes a legato.Queue or its name, not {queue!r}")
    if queue in queues:
        return queues[queue]
    if strict:
        raise ValueError(
            f"queue {queue!r} is not declared in this Runtime, so its worker would never run "
            f"it; declare it: Runtime(..., queues=[legato.Queue({queue!r}, ...)]), or pass "
            "the Queue itself")
    return Queue(queue)
