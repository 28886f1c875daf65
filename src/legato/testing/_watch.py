"""What :func:`legato.testing.explore` sees of a runtime's new durable operations.

A :class:`Watcher` is installed through the engine's ``WATCH`` hook (a
context variable read when an operation has no record, just before it
runs). It counts how often each step position really runs, shuffles the
order in which concurrent steps complete (a seeded number of event-loop
turns after each one), stops every new operation once the run has crashed,
can answer steps from a recorded history instead of running them, and makes
``legato.random()`` and ``legato.uuid4()`` draw the same values at the same
positions in every run, so results can be compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, NoReturn

from .._serde import Serializer, decode_error
from ..durable.engine import WATCH
from ..store import StepRecord

__all__ = ["StepKey", "Watcher", "watching"]

#: A step's place in the explored tree: (``""`` or ``"/4"`` for a child, position).
StepKey = tuple[str, str]

_MAX_TURNS = 6  # event-loop turns a completion may be held back (0 .. _MAX_TURNS - 1)


class Watcher:
    """Counts, shuffles, freezes and fakes the new operations of one runtime's runs."""

    def __init__(self, root: str, seed: int, *, shuffle: random.Random | None,
                 fakes: Mapping[StepKey, StepRecord] | None = None,
                 serializer: Serializer | None = None,
                 generations: dict[tuple[str, str], int] | None = None) -> None:
        self.root = root
        # each workflow's runs (continue-as-new), numbered in the order first seen;
        # shared by a case's crashed and recovering runtimes
        self.generations = {} if generations is None else generations
        self.seed = seed
        self.shuffle = shuffle
        self.fakes = fakes or {}
        self.serializer = serializer
        self.runs: Counter[StepKey] = Counter()  # real starts of each step
        self.names: dict[StepKey, str] = {}
        self.in_flight: set[StepKey] = set()
        self.most_in_flight = 0  # concurrent steps seen at once
        self.frozen = False  # crashed: nothing new starts

    def freeze(self) -> None:
        """The run crashed: from now on no new operation starts (each waits forever)."""
        self.frozen = True

    def key(self, workflow_id: str, position: str, run_id: str = "") -> StepKey | None:
        if not workflow_id.startswith(self.root):
            return None  # a workflow this exploration did not start
        rel = workflow_id[len(self.root):]
        seen = sum(1 for w, _ in self.generations if w == rel)
        generation = self.generations.setdefault((rel, run_id), seen)
        return (f"{rel}#{generation + 1}" if generation else rel), position

    def __call__(self, run: Any, position: str, kind: str, name: str,
                 body: Callable[..., Any]) -> Callable[..., Any]:
        key = self.key(run.id, position, getattr(run, "run_id", ""))
        if kind in ("random", "uuid4") and key is not None:
            return lambda: self._draw(kind, key)
        if kind in ("now", "random", "uuid4"):
            return body
        if self.frozen:
            return _forever
        if kind != "step" or key is None:
            return body
        self.runs[key] += 1
        self.names[key] = name
        fake = self.fakes.get(key)
        return self._watched(key, body if fake is None else self._fake(fake))

    def _watched(self, key: StepKey, body: Callable[[str], Awaitable[Any]]
                 ) -> Callable[[str], Awaitable[Any]]:
        async def watched(position: str) -> Any:
            self.in_flight.add(key)
            self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
            try:
                value = await body(position)
            except Exception:
                self.in_flight.discard(key)
                await self._hold_back()
                raise
            except BaseException:
                self.in_flight.discard(key)
                raise
            self.in_flight.discard(key)
            await self._hold_back()
            return value

        return watched

    async def _hold_back(self) -> None:
        if self.shuffle is not None:
            for _ in range(self.shuffle.randrange(_MAX_TURNS)):
                await asyncio.sleep(0)

    def _fake(self, record: StepRecord) -> Callable[[str], Awaitable[Any]]:
        serializer = self.serializer
        assert serializer is not None

        async def fake(position: str) -> Any:
            value = serializer.loads(record.value) if record.value is not None else None
            if not record.ok:
                raise decode_error(value)
            return value

        return fake

    def _draw(self, kind: str, key: StepKey) -> Any:
        rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}")
        if kind == "random":
            return rng.random()
        return uuid.UUID(int=rng.getrandbits(128), version=4)


@contextlib.contextmanager
def watching(watcher: Watcher | None) -> Iterator[None]:
    """Install ``watcher`` for runtimes opened inside the block (their tasks copy it)."""
    token = WATCH.set(watcher)
    try:
        yield
    finally:
        WATCH.reset(token)


async def _forever(*_: Any) -> NoReturn:
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")  # pragma: no cover
