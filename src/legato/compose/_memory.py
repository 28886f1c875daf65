"""``Memory``: a conversation buffer and key-value store that chain steps share.

A step asks for the chain's memory by having a parameter named ``memory``.
Each step gets a private view of the memory; what it writes is applied to the
chain's memory when the step returns, in order. So a step that fails (or is
retried, or times out) leaves the memory as it was, and inside a workflow the
writes are recorded with the step's output: a replay re-applies them without
running the step, and the memory ends up the same as in the first run.
"""

from __future__ import annotations

from collections import deque
from typing import Any, final

__all__ = ["Memory"]

# A journal entry: ("append", message) | ("put", key, value) | ("clear",)
Op = list[Any]


@final
class Memory:
    """A conversation buffer (``append``/``recent``) plus a key-value store (``get``/``put``).

    Pass one to a :class:`~legato.Chain` (``memory=``); every step whose
    function has a parameter named ``memory`` receives it. Messages and values
    are whatever you store (inside a workflow they must be serializable, like
    step results: they are recorded with each step's output).

    Example::

        memory = legato.Memory(max_messages=20)

        async def answer(question: str, memory: legato.Memory) -> str:
            history = memory.recent(5)               # the last five turns
            reply = await llm(history, question)
            memory.append({"user": question, "assistant": reply})
            memory.put("turns", memory.get("turns", 0) + 1)
            return reply

        chat = legato.Chain([answer], memory=memory)
        await chat.invoke("hello")
        await chat.invoke("and then?")               # answer sees the first turn

    Args:
        max_messages: keep only this many most recent messages (``None``: all).

    Beluga's ``memory.NewMemory(memory.MemoryTypeBuffer)`` is ``Memory()``.
    The methods are synchronous: it is an in-process buffer. Outside a
    workflow it lives as long as the object; inside a workflow, create it in
    the workflow body: a replay rebuilds it from the recorded step outputs.
    """

    __slots__ = ("_data", "_journal", "_messages", "max_messages")

    def __init__(self, max_messages: int | None = None) -> None:
        if max_messages is not None and (isinstance(max_messages, bool) or max_messages < 1):
            raise ValueError(f"max_messages must be at least 1 or None, not {max_messages!r}")
        self.max_messages = max_messages
        self._messages: deque[Any] = deque(maxlen=max_messages)
        self._data: dict[str, Any] = {}
        self._journal: list[Op] | None = None  # set on a step's private view

    def __repr__(self) -> str:
        return f"<Memory messages={len(self._messages)} keys={sorted(self._data)}>"

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def messages(self) -> list[Any]:
        """Every message kept, oldest first (a copy)."""
        return list(self._messages)

    def append(self, message: Any) -> None:
        """Add a message at the end (the oldest goes when ``max_messages`` is reached)."""
        self._messages.append(message)
        if self._journal is not None:
            self._journal.append(["append", message])

    def recent(self, n: int | None = None) -> list[Any]:
        """The last ``n`` messages, oldest first (all of them when ``n`` is ``None``)."""
        if n is None:
            return list(self._messages)
        if n < 0:
            raise ValueError(f"recent(n) takes n >= 0, not {n!r}")
        start = max(len(self._messages) - n, 0)
        return [self._messages[i] for i in range(start, len(self._messages))]

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (replacing any earlier value)."""
        self._data[key] = value
        if self._journal is not None:
            self._journal.append(["put", key, value])

    def clear(self) -> None:
        """Forget every message and value."""
        self._messages.clear()
        self._data.clear()
        if self._journal is not None:
            self._journal.append(["clear"])

    # -- private views (see the module docstring) --------------------------------------

    def _view(self) -> Memory:
        """A private copy for one step; its writes are kept in its journal."""
        copy = Memory(self.max_messages)
        copy._messages.extend(self._messages)
        copy._data.update(self._data)
        copy._journal = []
        return copy

    def _writes(self) -> list[Op]:
        """The writes made on this view, in order."""
        return list(self._journal or ())

    def _apply(self, journal: list[Op]) -> None:
        """Make the writes of a view's journal on this memory."""
        for op in journal:
            kind = op[0]
            if kind == "append":
                self.append(op[1])
            elif kind == "put":
                self.put(op[1], op[2])
            elif kind == "clear":
                self.clear()
            else:  # pragma: no cover - journals are made by this class
                raise ValueError(f"unknown memory operation {op!r}")
