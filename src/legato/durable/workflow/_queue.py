"""``legato.Queue``: flow control for workflows — concurrency, rate, priority, delay.

A queue is a policy value, declared once and shared by every process that
runs its workflows::

    emails = legato.Queue("emails", concurrency=3, rate="10/1s")

    async with legato.Runtime("legato.db", queues=[emails]) as rt:
        queue = rt.queue(emails)                        # or rt.queue("emails")
        handle = await queue.enqueue(send_email, "ana", priority=1, delay="10m",
                                     dedup_key="welcome-ana")
        # the same, through start:
        await rt.start(send_email, "bo", queue=emails)

How it works: an enqueued workflow is stored ``pending`` — no task, no memory.
Workers take pending workflows in their claim transaction, which counts the
queue's running workflows (and recent starts) in the same transaction, so the
limits hold across every worker process sharing the store. A slot is held
while a workflow is ``running``; a suspended (``waiting``) workflow gives it
back and needs a free slot again when it wakes. When a slot frees in this
process the next workflow starts at once; other processes hear of it through
the store's news within milliseconds.

Every process that runs a queue's workflows must declare the queue with the
same limits (``Runtime(queues=[...])``, or by passing the ``Queue`` to
``start``/``queue``): a worker takes a queue's workflows only if it knows the
queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import final

from ..._duration import to_seconds
from ...store import QueueLimits

__all__ = ["Queue", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")


def parse_rate(rate: str) -> tuple[int, float]:
    """``"100/1m"`` → ``(100, 60.0)``: starts allowed per window of seconds.

    The window is a duration (``"1s"``, ``"250ms"``, ``"1h30m"``); a bare unit
    means one of it (``"10/s"`` is ``"10/1s"``).

    >>> parse_rate("100/1m"), parse_rate("10/s")
    ((100, 60.0), (10, 1.0))

    Raises:
        ValueError: the text is not ``"<count>/<duration>"`` with a positive
            count and window.
    """
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None:
        raise ValueError(
            f"rate {rate!r} is not a rate; write '<starts>/<window>', e.g. '100/1m' "
            "(100 starts a minute) or '10/s'")
    count, window_text = int(match[1]), match[2]
    if window_text.isalpha():
        window_text = "1" + window_text
    try:
        window = to_seconds(window_text)
    except ValueError:
        raise ValueError(
            f"rate {rate!r} has no valid window {match[2]!r}; use a duration such as "
            "'1s', '1m' or '250ms'") from None
    if count < 1 or window <= 0:
        raise ValueError(
            f"rate {rate!r} allows nothing; use at least one start per positive window, "
            "or rate=None for no rate limit")
    return count, window


def _check_limit(label: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"{label} must be a positive int or None (no limit), not {value!r}")


@final
@dataclass(frozen=True, slots=True)
class Queue:
    """A named queue of workflows with limits that hold across worker processes.

    Example::

        reports = legato.Queue("reports", concurrency=10, worker_concurrency=2,
                               rate="100/1m")

    Args:
        name: the queue's name, stored with each enqueued workflow.
        concurrency: at most this many of its workflows ``running`` at once,
            across every worker sharing the store (default ``None``: no limit).
        worker_concurrency: at most this many running at once in one worker
            process (default ``None``: only the Runtime's own ``concurrency``).
        rate: at most this many *starts* per sliding window of durable time,
            across workers, as ``"<count>/<window>"`` (``"100/1m"``, ``"10/s"``).
            Default ``None``: no rate limit.
        priority: take pending workflows by ``priority`` (lower first, as in
            DBOS and Temporal: ``priority=1`` before ``priority=5``), then
            in enqueue order (default); ``False``: strictly in enqueue order.
        key_concurrency: at most this many ``running`` at once per key, across
            every worker: ``rt.start(..., queue=q, key="customer-42")``. Keys
            are served round-robin (a key that got a start goes to the back
            of the line of keys), so one tenant's 10,000 queued workflows
            don't starve another's 3. Workflows enqueued without a key are
            limited only by the queue. Default ``None``: no per-key limit.
        key_rate: at most this many *starts* per key per sliding window of
            durable time, as ``rate`` is for the whole queue (``"10/1m"``).
            Keys are served round-robin, as with ``key_concurrency``; either
            one lets workflows carry a ``key=`` (without both, ``key=`` is
            refused). Default ``None``: no per-key rate.

    Raises:
        ValueError: a limit is not a positive int, or a rate can't be parsed.
    """

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate: str | None = None
    priority: bool = True
    key_concurrency: int | None = None
    key_rate: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a queue needs a non-empty str name, not {self.name!r}")
        _check_limit("concurrency", self.concurrency)
        _check_limit("worker_concurrency", self.worker_concurrency)
        _check_limit("key_concurrency", self.key_concurrency)
        for rate in (self.rate, self.key_rate):
            if rate is not None:
                parse_rate(rate)

    @property
    def limits(self) -> QueueLimits:
        """The limits as the store enforces them."""
        return QueueLimits(
            self.name, self.concurrency, self.worker_concurrency,
            None if self.rate is None else parse_rate(self.rate), self.priority,
            self.key_concurrency, None if self.key_rate is None else parse_rate(self.key_rate))
