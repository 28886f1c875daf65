"""``legato.stream(key)``: values a workflow or its steps write, read live by any client.

Each write lands once, whatever crashes and replays happen, because every
write has an *origin* that names it and the store ignores a second write of
an origin (see ``Streams.write_stream``):

- in workflow code a write is a durable operation: its origin is its
  position, and a replay returns its record without writing;
- in a step (which runs again when its process dies before its outcome is
  recorded) the origin is the step's position and the write's index in the
  attempt: a re-run's first ``n`` writes are the ``n`` already written and
  are skipped; only the values past them are appended.

So a reader sees each offset once, in order, even across a SIGKILL. Values
written in a step are committed at once, not with the step's outcome, so a
reader sees LLM tokens as they come; the step's return value (the whole
text) is still recorded once as its outcome.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, final

from ..._errors import LegatoError
from ...store import StepRecord
from ..engine import Run, current_scope, operation
from ._recorded import STEP_AT, StepAt

__all__ = ["Stream", "StreamClosed", "stream"]


class StreamClosed(LegatoError):
    """A value was written to a stream after it was closed."""


@final
class Stream:
    """A durable stream of values under ``key`` (see :func:`stream`)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"legato.stream({self.key!r})"

    async def write(self, value: Any) -> None:
        """Append ``value``; durable (and visible to readers) when this returns.

        Raises:
            StreamClosed: the stream was closed (recorded: a replay raises it again).
        """
        await _write(self.key, value, close=False)

    async def close(self) -> None:
        """Close the stream: readers end after its last value. Closing twice is a no-op.

        ``async with legato.stream(key) as s:`` closes it when the block ends
        normally; an exception leaves it open, so a retry of the step can go
        on writing. Readers end when the workflow ends in any case.
        """
        await _write(self.key, None, close=True)

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # Only a normal exit ends the stream: after an error a retry of the step
        # may go on writing (readers still end when the workflow does).
        if exc is None:
            await self.close()


def stream(key: str) -> Stream:
    """The durable stream ``key`` of the current workflow, for writing.

    Call it in a workflow or in a step the workflow calls; any client reads
    it with ``handle.stream(key)``, live, from the start or from an offset.
    A value is written once and read once, in order, even when the worker
    dies mid-stream: a replay doesn't write again, and a step run again
    after a crash skips the values its earlier attempt wrote (see the
    README's "Streams"). Readers end at :meth:`Stream.close` or when the
    workflow finishes.

    Example::

        @legato.step
        async def answer(question: str) -> str:
            text = ""
            async with legato.stream("tokens") as tokens:
                async for token in model.stream(question):
                    await tokens.write(token)
                    text += token
            return text  # recorded once, as the step's outcome

    and from outside: ``async for token in rt.handle(id).stream("tokens"): ...``

    Raises:
        ValueError: ``key`` is not a non-empty string.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"legato.stream(key={key!r}): the key must be a non-empty string, "
                         "such as 'tokens' or 'progress'")
    return Stream(key)


async def _write(key: str, value: Any, *, close: bool) -> None:
    at = STEP_AT.get()
    scope = current_scope()
    if scope is None and at is not None:
        await _write_from_step(at, key, value, close)
        return
    if scope is None:
        raise LegatoError(
            f"stream {key!r} was written outside a workflow; legato.stream(key) works in a "
            "@legato.workflow started by a Runtime, or in a step it calls (read it from "
            "outside with handle.stream(key))")
    run = scope.run
    data = _encode(run, key, value, close)
    kind = "stream_close" if close else "stream"

    async def body(position: str) -> None:
        # the value and its checkpoint commit together: a replay never writes it again
        step = StepRecord(position, kind, key, True, None, time.time())
        try:
            await _store(run, key, f"{run.run_id}:{position}", data, step)
        except StreamClosed as exc:  # recorded, so a replay raises it without writing
            await run.commit_error(position, kind, key, exc)
            raise

    await operation(scope, kind, key, body, commits=False)


async def _write_from_step(at: StepAt, key: str, value: Any, close: bool) -> None:
    run = at.run
    data = _encode(run, key, value, close)
    if close:  # named apart: a re-run that writes fewer values still closes
        await _store(run, key, f"{run.run_id}:{at.position}/close", data)
        return
    index = at.writes.get(key, 0)
    at.writes[key] = index + 1
    await _store(run, key, f"{run.run_id}:{at.position}/{index}", data)


def _encode(run: Run, key: str, value: Any, close: bool) -> bytes | None:
    if close:
        return None
    return run.serializer.dumps(value, label=f"a value of stream {key!r}")


async def _store(run: Run, key: str, origin: str, data: bytes | None,
                 step: StepRecord | None = None) -> None:
    outcome = await run.stored(run.store.write_stream(run.id, run.owner, key, origin, data,
                                                      step))
    if outcome == "lost":
        raise run.lease_lost()
    if outcome == "closed" and data is not None:
        raise StreamClosed(
            f"stream {key!r} of workflow {run.id!r} is closed; a value was written after "
            "close(): write every value first, or use another key")
    run.host.event_set(run.id)  # wakes readers in this process at once
