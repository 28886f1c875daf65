"""Updates, the workflow side: ``legato.wait_for_update(name)`` and ``update.reply(value)``.

An update is a request whose caller waits for the workflow's answer
(``rt.update``). Taking one is recorded like a signal's take (atomically with
marking it taken); replying records a checkpoint and stores the reply in one
transaction. So a replay neither takes it twice nor answers it twice, and the
caller reads the recorded reply whenever it asks, even after a crash on
either side.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, final

from ..._duration import Duration, to_seconds
from ..._errors import LegatoError
from ..._serde import encode_error
from ...store import StepRecord
from ..engine import Run, Scope, current_scope, detached, durable_deadline, operation

__all__ = ["Update", "wait_for_update"]


@final
class Update:
    """An update taken by :func:`wait_for_update`: its ``payload``; answer with :meth:`reply`.

    Or refuse it with :meth:`reject`, which makes the caller's ``rt.update`` raise.

    ``id`` is the caller's update id (``rt.update(..., update_id=)``); ``name``
    the update's name.
    """

    __slots__ = ("id", "name", "payload")

    def __init__(self, id: str, name: str, payload: Any) -> None:
        self.id = id
        self.name = name
        self.payload = payload

    def __repr__(self) -> str:
        return f"Update(id={self.id!r}, name={self.name!r}, payload={self.payload!r})"

    async def reply(self, value: Any = None) -> None:
        """Answer the update: ``rt.update(...)`` returns ``value`` to its caller.

        Recorded: a replay does not answer again, and the answer is kept for
        the caller (or a retry of its call with the same ``update_id``)
        however late it reads it. Answering twice keeps the first answer.
        """
        await self._answer({"ok": True, "value": value}, "reply")

    async def reject(self, error: Exception) -> None:
        """Refuse the update: ``rt.update(...)`` raises ``error`` (recorded like a reply).

        >>> if update.payload["qty"] < 1:
        ...     await update.reject(ValueError("qty must be at least 1"))
        """
        if not isinstance(error, Exception):
            raise TypeError(f"update.reject() takes an exception, such as "
                            f"ValueError('why'), not {error!r}")
        await self._answer({"ok": False, "error": encode_error(error)}, "reject")

    async def _answer(self, answer: dict[str, Any], verb: str) -> None:
        scope = _scope(f"Update.{verb}")
        run = scope.run
        data = run.serializer.dumps(answer, label=f"the {verb} of update {self.name!r}")

        async def record(position: str) -> None:
            step = StepRecord(position, "reply", self.name, True, None, time.time())
            if not await run.stored(run.store.reply_update(run.id, run.owner, self.id, data,
                                                           step)):
                raise run.lease_lost()
            run.host.event_set(run.id)  # the caller may wait in this process

        await operation(scope, "reply", self.name, record, commits=False)


def _scope(what: str) -> Scope:
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            f"{what}() was called outside a workflow; it only works in code running under "
            "a @legato.workflow started by a Runtime (from outside, use rt.update(...))")
    return scope


async def wait_for_update(name: str, timeout: Duration | None = None) -> Update | None:
    """Wait for an update ``name`` and return it; ``None`` on timeout.

    Updates sent before the wait are kept; several of one name are taken one
    per wait, in order, each once even across crashes. Answer each with
    ``await update.reply(value)``: the caller of ``rt.update`` gets
    ``value``. Unlike a signal wait, the workflow stays loaded while it
    waits (it is not unloaded to the store).

    Example::

        @legato.workflow
        async def order(items: list[str]) -> list[str]:
            while (update := await legato.wait_for_update("add", timeout="1h")) is not None:
                items.append(update.payload)
                await update.reply(len(items))
            return items

    and from outside: ``count = await rt.update("order-7", "add", "tea", timeout=10)``.
    """
    scope = _scope("legato.wait_for_update")
    seconds = None if timeout is None else to_seconds(timeout)

    async def wait(position: str) -> Any:
        return await _wait(scope.run, name, position, seconds)

    envelope = await operation(scope, "update", name, wait, commits=False, nested=True)
    if envelope is None:
        return None
    return Update(envelope["id"], name, envelope["payload"])


async def _wait(run: Run, name: str, position: str, seconds: float | None) -> Any:
    deadline = await durable_deadline(run, position, seconds)
    while True:
        step = StepRecord(position, "update", name, True, None, time.time())
        # shielded: a take cancelled half-way must still land (it is recorded if it did)
        take = detached(run.stored(run.store.take_update(run.id, run.owner, name, step)))
        outcome, envelope = await asyncio.shield(take)
        if outcome == "taken":
            return run.serializer.loads(envelope) if envelope is not None else None
        if outcome == "lost":
            raise run.lease_lost()
        if deadline is not None and run.clock.now() >= deadline:
            await run.commit_raw(position, "update", name, None)
            return None
        await run.wait_news(deadline)
