"""Updates, the caller's side: send a request, wait for the workflow's recorded reply.

The request is stored once per update id (a retry with the same id sends
nothing new) and wakes the workflow as a signal does; the reply is read from
the store, so it reaches the caller however late it asks, even after a crash
of the worker or of the caller between the reply and the read.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..._errors import LegatoError, WorkflowTimeout
from ..._serde import Serializer, decode_error
from ...store import Store
from ..worker import SAFETY_POLL, WakeBus
from ._handle import Status

__all__ = ["send_update"]


async def send_update(store: Store, serializer: Serializer, bus: WakeBus, notify: Any,
                      workflow_id: str, name: str, payload: Any, update_id: str | None,
                      timeout: float | None) -> Any:
    """Send update ``name`` and return the workflow's reply (see :meth:`Runtime.update`)."""
    if update_id is not None and (not isinstance(update_id, str) or not update_id):
        raise ValueError(f"update_id={update_id!r}: pass a non-empty string naming this "
                         "request (a retry with the same id gets the same reply), or leave it out")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
        raise ValueError(f"timeout={timeout!r}: pass seconds (a number >= 0) or None to wait "
                         "as long as it takes")
    update_id = update_id or uuid.uuid4().hex
    data = serializer.dumps({"id": update_id, "payload": payload},
                            label=f"the payload of update {name!r}")
    await store.send_update(workflow_id, update_id, name, data)
    if notify is not None:
        notify(workflow_id)  # a workflow running in this process wakes at once
    try:
        async with asyncio.timeout(timeout):
            return await _reply(store, serializer, bus, workflow_id, name, update_id)
    except TimeoutError:
        raise WorkflowTimeout(
            f"workflow {workflow_id!r} did not reply to update {name!r} (update_id="
            f"{update_id!r}) within {timeout} s; the update stays stored: call rt.update "
            "again with the same update_id to wait for its reply") from None


async def _reply(store: Store, serializer: Serializer, bus: WakeBus, workflow_id: str,
                 name: str, update_id: str) -> Any:
    while True:
        news = bus.watch(workflow_id)
        try:
            replied, reply = await store.update_reply(workflow_id, update_id)
            if replied:
                return _answer(serializer, reply)
            record = await store.get(workflow_id)
            if record is not None and Status(record.status).finished:
                replied, reply = await store.update_reply(workflow_id, update_id)
                if replied:  # replied between the two reads, then finished
                    return _answer(serializer, reply)
                raise LegatoError(
                    f"workflow {workflow_id!r} {record.status} without replying to update "
                    f"{name!r} (update_id={update_id!r}); reply with update.reply(value) "
                    "after legato.wait_for_update(name) before the workflow ends")
            await bus.woken(news, SAFETY_POLL)
        finally:
            bus.unwatch(workflow_id, news)


def _answer(serializer: Serializer, reply: bytes | None) -> Any:
    """The reply's value, or raise the error the workflow rejected the update with."""
    answer = serializer.loads(reply) if reply is not None else None
    if not isinstance(answer, dict):
        return answer
    if answer.get("ok"):
        return answer.get("value")
    raise decode_error(answer["error"])
