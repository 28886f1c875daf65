"""``legato.testing.replay``: today's code against a recorded history, no step run.

The workflow runs on a scratch SQLite store whose history for it is the
recorded one. Every recorded operation replays as it would after a crash;
the first operation without a record stops the run before it does anything
(the engine's ``WATCH`` hook for steps, signals, children and events; the
store for sleeps, decisions and ``legato.now()``). Then:

- a ``NonDeterminismError`` is a divergence at its position;
- a new operation where the recorded run had ended is a divergence there
  (the code now does more);
- a new operation where the recorded run was still going is where the
  history ends: consistent so far;
- an end with another result or error than the recorded one is a
  divergence at the end.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from .. import (
    JsonSerializer,
    NonDeterminismError,
    Runtime,
    VirtualClock,
    Workflow,
    WorkflowTimeout,
)
from ..durable.engine import WATCH
from ..store import StepRecord, Store, open_store
from ._explore_report import Outcome
from ._history import History, load_history
from ._replay_report import Divergence, ReplayFailed, ReplayReport

__all__ = ["replay"]

_NEVER_UNLOAD = 1e12  # seconds: a replay keeps its workflow in memory through every wait


async def replay(
    workflow: Callable[..., Any], history: History | Mapping[str, Any] | str | os.PathLike[str],
    *, timeout: float = 10.0, check: bool = True,
) -> ReplayReport:
    """Check that today's ``workflow`` code replays ``history`` without running any step.

    ``history`` is a :class:`History`, its JSON document, or the path of a
    file ``legato export ID > file.json`` wrote. Keep such files as golden
    histories and replay them in CI: a change that would break workflows in
    flight fails before it is deployed.

    Example::

        async def test_old_orders_still_replay():
            for path in Path("tests/golden").glob("order-*.json"):
                await legato.testing.replay(process_order, path)

    Nothing runs for real: recorded outcomes are returned, and the first call
    the history has no record for stops the replay before it does anything.
    The report names the first position where the code diverges — what was
    recorded there, what the code does now — and the ``legato.patched(...)``
    guard that lets both replay. A history of a run still in flight is
    checked up to its end. Only this workflow's own history is replayed; its
    children's outcomes are taken as recorded.

    Args:
        timeout: real seconds the replay may take.
        check: raise :class:`ReplayFailed` on a divergence (default); ``False``
            returns the report either way.

    Raises:
        ReplayFailed: the code diverges from the history (also an ``AssertionError``).
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"replay() takes a @legato.workflow, not {workflow!r}")
    recorded = load_history(history)
    with tempfile.TemporaryDirectory(prefix="legato-replay-") as tmp:
        report = await _Replayer(workflow, recorded, f"sqlite:///{Path(tmp) / 'replay.db'}",
                                 timeout).run()
    if check and not report.ok:
        raise ReplayFailed(report)
    return report


@dataclass(frozen=True, slots=True)
class _NewCall:
    position: str
    kind: str
    name: str


class _Replayer:
    def __init__(self, wf: Workflow[Any, Any], history: History, url: str, timeout: float
                 ) -> None:
        self.wf = wf
        self.history = history
        self.url = url
        self.timeout = timeout
        self.new: _NewCall | None = None  # the first call the history has no record for
        self.stopped = asyncio.Event()
        self.nondeterminism: NonDeterminismError | None = None

    async def run(self) -> ReplayReport:
        h = self.history
        args, kwargs = h.args()
        start = min((r.at.timestamp() for r in h.records), default=0.0) or None
        store = _HistoryStore(open_store(self.url), h, self)
        token = WATCH.set(self.watch)
        try:
            async with Runtime(cast(Store, store), clock=VirtualClock(start),
                               suspend_after=_NEVER_UNLOAD) as rt:
                # started here, so this very function runs (not what its name is
                # registered to), and it is never unloaded, so never claimed by name
                await rt.start(self.wf, *args, id=h.id, **kwargs)
                outcome = await self._outcome(rt)
        finally:
            WATCH.reset(token)
        return self._report(outcome)

    async def _outcome(self, rt: Runtime) -> Outcome | None:
        result = asyncio.ensure_future(rt.handle(self.history.id).result(timeout=self.timeout))
        stopped = asyncio.ensure_future(self.stopped.wait())
        try:
            await asyncio.wait([result, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not result.done():
            result.cancel()
            return None  # stopped at a new call
        try:
            return Outcome.of(result.result())
        except WorkflowTimeout:
            return None
        except Exception as exc:
            if isinstance(exc, NonDeterminismError):
                self.nondeterminism = exc
            return Outcome.of(error=exc)

    def watch(self, run: Any, position: str, kind: str, name: str, body: Any) -> Any:
        if run.id != self.history.id or kind in ("now", "random", "uuid4"):
            return body  # their record is caught by the store: no effect before it
        self.saw(position, kind, name)
        raise run.lease_lost()

    def saw(self, position: str, kind: str, name: str) -> None:
        if self.new is None:
            self.new = _NewCall(position, kind, name)
        self.stopped.set()

    def _report(self, outcome: Outcome | None) -> ReplayReport:
        h = self.history

        def report(complete: bool, divergence: Divergence | None = None,
                   next_call: str | None = None, hung: bool = False) -> ReplayReport:
            return ReplayReport(self.wf.name, h.id, h.name, len(h.records), outcome, complete,
                                divergence, next_call, hung)

        error = self.nondeterminism
        if error is not None:
            return report(False, Divergence.of(error.position, error.recorded, error.found))
        if self.new is not None:
            new = self.new
            now = f"{new.kind} {new.name!r}" if new.name else new.kind
            if h.finished:
                return report(True, Divergence.of(
                    new.position, f"nothing: the workflow {h.status} without it", now))
            return report(False, next_call=f"{now} at {new.position}")
        if outcome is None:
            return report(False, hung=True)
        return report(True, _compare_end(h, outcome) if h.finished else None)


def _compare_end(h: History, outcome: Outcome) -> Divergence | None:
    if h.status == "succeeded" and outcome.ok:
        recorded = Outcome(True, h.result)
        got = Outcome(True, _stored_form(outcome.value))
        if recorded.same(got):
            return None
        return Divergence.at_end(f"result {recorded}", f"result {got}")
    if h.status == "failed" and not outcome.ok:
        if h.error is None or outcome.error == h.error:
            return None
        return Divergence.at_end(f"error {h.error}", f"error {outcome.error}")
    recorded_end = f"result {Outcome(True, h.result)}" if h.status == "succeeded" else (
        f"error {h.error}")
    return Divergence.at_end(recorded_end, str(outcome))


def _stored_form(value: Any) -> Any:
    return orjson.loads(JsonSerializer().dumps(value, label="the replayed result"))


class _HistoryStore:
    """A scratch store whose history of the replayed workflow is the recorded one.

    A write of a record the history lacks (a sleep, a decision, ``now()``...)
    stops the replay: it answers "lease lost", so nothing is written.
    """

    # history() holds records no create wrote: a worker must read it even for a
    # workflow it has just created (see Worker._admit)
    prerecorded = True

    def __init__(self, store: Store, history: History, replayer: _Replayer) -> None:
        self._store = store
        self._history = history
        self._replayer = replayer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def history(self, workflow_id: str) -> list[StepRecord]:
        if workflow_id != self._history.id:
            return await self._store.history(workflow_id)
        return [StepRecord(r.position, r.kind, r.name, r.ok, r.data, r.at.timestamp())
                for r in self._history.records]

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        stopped: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if workflow_id != self._history.id:
            return self._store.append(workflow_id, owner, step)
        if step.kind == "branch":  # a task's marker: whatever it does next is the news
            stopped.set_result(True)
            return stopped
        self._replayer.saw(step.position, step.kind, step.name)
        stopped.set_result(False)
        return stopped
