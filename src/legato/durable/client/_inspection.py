"""What inspection shows of a workflow's history: its steps as a timeline, its raw records.

A store records when each durable operation *finished* (its checkpoint was
committed), not when it began. :func:`timeline` infers the start: an
operation starts when the one before it in its branch finished (a branch's
first operation, when the branch's own position became due; the workflow's
first, when the workflow was created). That is exact for sequential code and
includes the workflow's own code between two operations. The branches of a
legato primitive (``parallel``, ``race``, ...; numbered from 0) start
together; of the branches one ``asyncio.gather`` makes, which look like
consecutive positions, a later one appears to start when the one before it
finished.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..._serde import Serializer
from ...store import StepRecord
from ..workflow import registered_names

__all__ = [
    "ErrorData", "HistoryRecord", "StepInfo", "decode_value", "error_data", "history",
    "position_key", "registered_workflows", "summarize", "timeline", "to_datetime",
]

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2


@dataclass(frozen=True, slots=True)
class StepInfo:
    """One checkpoint of a workflow in its timeline, as shown by :meth:`Runtime.get`.

    ``at`` (also ``finished_at``) is when the checkpoint was committed;
    ``started_at`` is inferred from the checkpoints before it (see
    :attr:`duration`). A step with a retry policy shows how many ``attempts``
    it took; its failed attempts and the waits between them are checkpoints of
    their own, nested under its position (``3.1``, ``3.2``, ...).

    Example::

        info = await rt.get("order-42")
        for s in info.steps:
            print(s.position, s.kind, s.name, s.duration, s.attempts, s.summary)
    """

    position: str
    kind: str  # "step", "attempt", "sleep", "signal", "child", "now", ...
    name: str
    ok: bool
    at: datetime
    started_at: datetime | None = None
    attempts: int = 1
    summary: str = ""  # a short repr of the value, or "Type: message" of the error

    @property
    def finished_at(self) -> datetime:
        """When its outcome was committed (the same as ``at``)."""
        return self.at

    @property
    def duration(self) -> float | None:
        """Seconds from the inferred start to the commit.

        The start is when the previous operation of its branch finished, so
        this includes the workflow code in between (see :mod:`legato` docs:
        "Inspecting workflows").
        """
        if self.started_at is None:
            return None
        return max(0.0, (self.at - self.started_at).total_seconds())

    @property
    def parent(self) -> str | None:
        """The position it nests under (``"3.1"`` for ``"3.1.2"``), or ``None`` at the top."""
        head, _, _ = self.position.rpartition(".")
        return head or None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One raw checkpoint, as stored: what ``rt.history(id)`` returns and an export writes.

    ``data`` is the outcome as the runtime's serializer wrote it (an encoded
    error when ``ok`` is false; ``None`` for operations without a value).

    Example::

        for r in await rt.history("order-42"):
            print(r.position, r.kind, r.name, r.ok, r.at.isoformat())
    """

    position: str
    kind: str
    name: str
    ok: bool
    data: bytes | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ErrorData:
    """A recorded error, read without importing its type."""

    type_name: str  # e.g. "CardDeclined"
    message: str
    traceback: str | None

    @property
    def text(self) -> str:
        """``"Type: message"``, as ``WorkflowInfo.error`` shows it."""
        return f"{self.type_name}: {self.message}"


def to_datetime(ts: float) -> datetime:
    """An epoch timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def position_key(position: str) -> list[int]:
    """Sort key: positions compare as number paths (``2`` < ``10``, ``3`` < ``3.1``)."""
    return [int(p) for p in position.split(".")]


def decode_value(serializer: Serializer, data: bytes | None) -> Any:
    """The stored value, or its raw JSON when the classes it names don't import here.

    Inspection runs in processes that may lack the workflow's code (the CLI),
    so a value it can't rebuild is shown as stored instead of failing.
    """
    if data is None:
        return None
    try:
        return serializer.loads(data)
    except Exception as exc:  # any loader failure: fall back to what is stored
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return f"<{len(data)} bytes that don't load here: {exc}>"


def error_data(serializer: Serializer, data: bytes) -> ErrorData:
    """The type name, message and traceback of a stored error (never imports its type)."""
    raw = decode_value(serializer, data)
    if not isinstance(raw, Mapping):
        return ErrorData("Error", str(raw), None)
    ref = str(raw.get("type", "Error"))
    qualname = ref.rpartition(":")[2] or ref
    traceback = raw.get("traceback")
    return ErrorData(qualname.rpartition(".")[2], str(raw.get("message", "")),
                     str(traceback) if traceback else None)


def summarize(serializer: Serializer, ok: bool, data: bytes | None) -> str:
    """A one-line summary of an outcome: a short repr, or ``"Type: message"``."""
    if not ok and data is not None:
        return error_data(serializer, data).text
    return _SHORT.repr(decode_value(serializer, data))


def history(records: Iterable[StepRecord]) -> list[HistoryRecord]:
    """Stored checkpoints as public records, in position order."""
    return [HistoryRecord(r.position, r.kind, r.name, r.ok, r.value, to_datetime(r.created_at))
            for r in sorted(records, key=lambda r: position_key(r.position))]


def timeline(records: Sequence[StepRecord], began: float, serializer: Serializer | None
             ) -> tuple[StepInfo, ...]:
    """The checkpoints in position order with inferred starts, attempts and summaries.

    ``serializer=None`` skips the summaries (a cheap listing).
    """
    ordered = sorted(records, key=lambda r: position_key(r.position))
    finished = _finish_times(ordered)
    attempts = _attempt_counts(ordered)
    # a task made in workflow code records when it was made: its branch's start
    starts: dict[str, float] = {r.position: r.created_at for r in ordered if r.kind == "branch"}

    def start(position: str) -> float:
        if position not in starts:
            head, _, last = position.rpartition(".")
            prefix, index = (f"{head}." if head else ""), int(last)
            # the branches of one primitive are counted from 0 and start together
            if index <= 1 or f"{prefix}0" in finished:
                starts[position] = start(head) if head else began
            else:
                before = f"{prefix}{index - 1}"
                starts[position] = finished[before] if before in finished else start(before)
        return starts[position]

    return tuple(
        StepInfo(r.position, r.kind, r.name, r.ok, to_datetime(r.created_at),
                 started_at=to_datetime(min(start(r.position), r.created_at)),
                 attempts=attempts.get(r.position, 1),
                 summary="" if serializer is None else summarize(serializer, r.ok, r.value))
        for r in ordered if r.kind not in BOOKKEEPING)


#: Records the engine keeps for replay checks, not durable calls of the workflow:
#: a task made in workflow code, a wait or child call reached.
BOOKKEEPING = frozenset({"branch", "started"})


def _finish_times(ordered: Sequence[StepRecord]) -> dict[str, float]:
    """Per position, when it and everything nested under it had finished."""
    done: dict[str, float] = {}
    for r in ordered:
        parts = r.position.split(".")
        for depth in range(1, len(parts) + 1):
            key = ".".join(parts[:depth])
            done[key] = max(done.get(key, r.created_at), r.created_at)
    return done


def _attempt_counts(ordered: Sequence[StepRecord]) -> dict[str, int]:
    """Per retried step, its failed attempts (recorded under ``P.``) plus the last one."""
    failed: dict[str, int] = {}
    for r in ordered:
        if r.kind == "attempt":
            head = r.position.rpartition(".")[0]
            failed[head] = failed.get(head, 0) + 1
    steps = {r.position for r in ordered if r.kind == "step"}
    # a step still retrying has no record of its own yet: its attempts so far
    return {p: n + (1 if p in steps else 0) for p, n in failed.items()}


def registered_workflows() -> list[str]:
    """The names of the workflows this process has the code of, sorted.

    A worker runs only these; import the modules that define workflows first.

    >>> import myapp.workflows
    >>> legato.registered_workflows()
    ['onboard', 'research']
    """
    return sorted(registered_names())
