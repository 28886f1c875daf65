"""``legato.testing.explore``: crash a workflow at every commit point and check the recovery.

The workflow runs once to learn its commit points: every durable write its
runtime makes (a checkpoint, a signal taken, a child created, the finish).
Then, for each point k, it runs again on a fresh store and "crashes" right
after commit k: the first k writes land, the (k+1)-th and every later one
never do, steps in flight are abandoned and no new one starts, and the
runtime is torn down without writing (see :mod:`._tap`). A fresh runtime
then recovers the workflow from the store and runs it to the end. When
steps ran concurrently, every point is crashed once more with completion
orders shuffled by the seed. Each case checks: the same result as the first
run, no step run twice unless it was in flight at the crash, no
``NonDeterminismError``, no hang.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import JsonSerializer, Runtime, VirtualClock, Workflow, WorkflowTimeout
from ..store import StepRecord, open_store
from ._explore_report import CaseResult, ExploreFailed, ExploreReport, Outcome
from ._tap import CommitPoint, Tap
from ._watch import StepKey, Watcher, watching

__all__ = ["explore"]

ID = "explore"  # every case runs on its own store, under the same id: results compare


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    crash_after: int  # commits that land before the crash
    order: int  # 0: the first run's order; n: shuffled by the seed


async def explore(
    workflow: Callable[..., Awaitable[Any]], /, *args: Any, runs: int | None = None,
    seed: int = 0, store: str | os.PathLike[str] | None = None,
    clock: VirtualClock | None = None, only: str | None = None,
    signals: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    steps: Literal["run", "recorded"] = "run", reset: Callable[[], object] | None = None,
    timeout: float = 10.0, check: bool = True, **kwargs: Any,
) -> ExploreReport:
    """Crash ``workflow(*args, **kwargs)`` at each of its commit points and recover it.

    A first run learns the commit points (every durable write). Then each
    case runs the workflow on a fresh SQLite store, stops it abruptly right
    after commit k — nothing later is stored, steps in flight are abandoned —
    and recovers it with a fresh runtime, as a restarted process would. When
    steps ran concurrently, each point is crashed again with completion
    orders shuffled by ``seed``. Time is virtual: sleeps cost nothing.

    Example::

        async def test_checkout_survives_crashes():
            report = await legato.testing.explore(checkout, "cart-7", signals={"paid": True})
            assert report.ok          # explore raises ExploreFailed before this if not

    A case fails when its result differs from the first run's, when a step
    ran twice that was not in flight at the crash (its outcome was committed,
    or it ran twice in one process), on ``NonDeterminismError``, or when it
    did not finish within ``timeout`` seconds. The failure names the crash
    point (position, kind, name), the seed, and ``only=`` to rerun just it.

    Args:
        runs: how many crash runs. ``None``: every commit point once, and
            once more in a shuffled order when steps ran concurrently. Fewer
            than the commit points: that many points, chosen by ``seed``;
            more: further shuffled orders.
        seed: drives the completion orders, the choice of points and the
            values of ``legato.random()``/``uuid4()`` (the same at the same
            position in every run, so results compare).
        store: a directory to keep each case's SQLite file in (``crash@3.db``),
            to inspect with ``legato show explore --store ...``; default: a
            temporary directory, removed after.
        clock: its current time is where every run's virtual time starts
            (default: now). Each run gets its own ``VirtualClock``.
        only: run just this case (``"crash@3"``, ``"crash@3~1"``), as a
            failure message names it, with the same ``seed``.
        signals: ``{name: payload}`` (or pairs) sent to the workflow before it
            starts, in every run: they wait in the store for its waits.
        steps: ``"run"`` runs every step for real; ``"recorded"`` answers the
            steps of crash runs with the first run's outcomes (no effects,
            no real waiting: the workflow and legato are what is explored).
        reset: called before each run (the first and every case) to reset
            the fakes your steps talk to, so each case starts from the same world.
        timeout: real seconds a run may take before it counts as hung.
        check: raise :class:`ExploreFailed` when a case fails (default);
            ``False`` returns the report either way.

    Returns:
        an :class:`ExploreReport` (``report.cases``, ``report.commits``).

    Raises:
        ExploreFailed: a case failed (also an ``AssertionError``).

    Every run uses SQLite files (the engine above the store is the same on
    PostgreSQL). A recovery runs the workflow registered under the name,
    as a restarted worker would: pass the function that name is registered to.

    Unlike :func:`replay`, which checks today's code against a stored
    history without running steps, ``explore`` runs the workflow, many times.
    """
    if not isinstance(workflow, Workflow):
        raise TypeError(f"explore() takes a @legato.workflow, not {workflow!r}")
    if steps not in ("run", "recorded"):
        raise ValueError(f"steps must be 'run' or 'recorded', not {steps!r}")
    began = time.perf_counter()
    pairs = list(signals.items()) if isinstance(signals, Mapping) else list(signals)
    start = clock.now() if clock is not None else time.time()
    with tempfile.TemporaryDirectory(prefix="legato-explore-") as tmp:
        directory = Path(store) if store is not None else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        explorer = _Explorer(workflow, args, kwargs, seed=seed, directory=directory,
                             start=start, signals=pairs, timeout=timeout, reset=reset)
        first, commits, concurrent = await explorer.first()
        cases: list[CaseResult] = [first]
        if first.ok:
            if steps == "recorded":
                await explorer.record_fakes()
            for case in _cases(len(commits), concurrent, runs, seed, only):
                cases.append(await explorer.case(case, first.outcome))
    report = ExploreReport(workflow.name, seed, first.outcome, tuple(commits), tuple(cases),
                           time.perf_counter() - began, concurrent)
    if check and not report.ok:
        raise ExploreFailed(report)
    return report


def _cases(commits: int, concurrent: bool, runs: int | None, seed: int, only: str | None
           ) -> list[_Case]:
    if only is not None:
        match = re.fullmatch(r"crash@(\d+)(?:~(\d+))?", only)
        if match is None:
            raise ValueError(f"only= takes a case name like 'crash@3' or 'crash@3~1', "
                             f"not {only!r}")
        return [_Case(only, int(match[1]), int(match[2] or 0))]
    points = list(range(commits))  # crash after 0 .. commits-1 writes (the last is the finish)
    if runs is None:
        pairs = [(k, j) for j in range(2 if concurrent else 1) for k in points]
    elif runs <= len(points):
        pairs = [(k, 0) for k in sorted(random.Random(seed).sample(points, runs))]
    else:
        pairs = [(k, j) for j in range(math.ceil(runs / len(points))) for k in points][:runs]
    return [_Case(f"crash@{k}" + (f"~{j}" if j else ""), k, j) for k, j in pairs]


class _Explorer:
    def __init__(self, wf: Workflow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 *, seed: int, directory: Path, start: float,
                 signals: list[tuple[str, Any]], timeout: float,
                 reset: Callable[[], object] | None) -> None:
        self.wf, self.args, self.kwargs = wf, args, kwargs
        self.seed = seed
        self.directory = directory
        self.start = start
        self.signals = signals
        self.timeout = timeout
        self.reset = reset
        self.fakes: dict[StepKey, StepRecord] = {}
        self.serializer = JsonSerializer()
        self._first_url = ""

    def _url(self, case: str) -> str:
        path = self.directory / f"{case}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    async def _setup(self, url: str) -> None:
        if self.reset is not None:
            self.reset()
        async with Runtime(url, worker=False, clock=VirtualClock(self.start)) as rt:
            await rt.start(self.wf, *self.args, id=ID, **self.kwargs)
            for name, payload in self.signals:
                await rt.signal(ID, name, payload)

    def _watcher(self, shuffle: random.Random | None, *, fake: bool = False,
                 generations: dict[tuple[str, str], int] | None = None) -> Watcher:
        return Watcher(ID, self.seed, shuffle=shuffle, fakes=self.fakes if fake else None,
                       serializer=self.serializer, generations=generations)

    async def first(self) -> tuple[CaseResult, list[CommitPoint], bool]:
        """The uncrashed run: the expected result and the commit points."""
        began = time.perf_counter()
        self._first_url = url = self._url("first")
        await self._setup(url)
        clock = VirtualClock(self.start)
        tap = Tap(open_store(url), ID, clock, crash_after=None, lease_floor=0.0)
        watcher = self._watcher(None)
        outcome = await self._attempt(tap, watcher, clock)
        problems = []
        if outcome is None:
            problems.append(f"hung: no result within {self.timeout:g} s without any crash")
        elif outcome.nondeterministic:
            problems.append(f"{outcome.error} (without any crash)")
        problems += _reruns(watcher.runs, Counter(), watcher.names, set())
        result = CaseResult("first", None, None, outcome, {}, tuple(problems),
                            time.perf_counter() - began)
        branched = any(c.kind == "branch" or (c.kind == "step" and "." in c.position)
                       for c in tap.commits)
        return result, tap.commits, branched or watcher.most_in_flight > 1

    async def record_fakes(self) -> None:
        """The first run's step outcomes, to answer the crash runs' steps with."""
        async with Runtime(self._first_url, worker=False) as rt:
            pending = [ID]
            while pending:
                workflow_id = pending.pop()
                rel = workflow_id[len(ID):]
                for r in await rt.history(workflow_id):
                    if r.kind == "step":
                        self.fakes[rel, r.position] = StepRecord(
                            r.position, r.kind, r.name, r.ok, r.data, r.at.timestamp())
                pending += (await rt.get(workflow_id)).children

    async def case(self, case: _Case, expected: Outcome | None) -> CaseResult:
        began = time.perf_counter()
        url = self._url(case.name.replace("~", "-order"))
        await self._setup(url)
        rng = random.Random(f"{self.seed}:{case.name}")
        clock = VirtualClock(self.start)
        tap = Tap(open_store(url), ID, clock, crash_after=case.crash_after, lease_floor=0.0)
        generations: dict[tuple[str, str], int] = {}
        crashed = self._watcher(rng if case.order else None, fake=bool(self.fakes),
                                generations=generations)
        tap.on_crash = crashed.freeze
        outcome = await self._attempt(tap, crashed, clock)
        recovered = self._watcher(rng, fake=bool(self.fakes), generations=generations)
        if tap.crashed:
            clock = VirtualClock(tap.crash_time)
            again = Tap(open_store(url), ID, clock, crash_after=None,
                        lease_floor=tap.lease_max + 0.001)
            outcome = await self._attempt(again, recovered, clock)
        durable = {(c.workflow, c.position) for c in tap.commits if c.kind == "step"}
        in_flight = set(crashed.runs) - durable
        names = {**crashed.names, **recovered.names}
        problems = []
        if outcome is None:
            problems.append(f"hung: no result within {self.timeout:g} s of real time"
                            + (" after recovery" if tap.crashed else ""))
        elif outcome.nondeterministic:
            problems.append(outcome.error)
        elif expected is not None and not outcome.same(expected):
            problems.append(f"result differs: the first run gave {expected}, this one {outcome}")
        runs = {_label(k, names): n for k, n in (crashed.runs + recovered.runs).items() if n > 1}
        if problems and runs:
            problems.append("ran again after the crash (is it idempotent?): " + ", ".join(runs))
        problems += _reruns(crashed.runs, recovered.runs, names, in_flight)
        last = tap.commits[-1] if tap.commits else None
        return CaseResult(case.name, last if tap.crashed else None,
                          tap.lost, outcome, runs, tuple(problems), time.perf_counter() - began)

    async def _attempt(self, tap: Tap, watcher: Watcher, clock: VirtualClock
                       ) -> Outcome | None:
        """Run until the tap crashes (``None`` returned then too) or the workflow ends."""
        with watching(watcher):
            async with Runtime(tap.store, clock=clock) as rt:
                try:
                    async with asyncio.timeout(self.timeout):
                        await tap.stopped.wait()
                except TimeoutError:
                    return None
                if tap.crashed:
                    return None
                try:
                    value = await rt.handle(ID).result(timeout=self.timeout)
                except WorkflowTimeout:
                    return None
                except Exception as exc:
                    return Outcome.of(error=exc)
                return Outcome.of(value)


def _reruns(crashed: Counter[StepKey], recovered: Counter[StepKey], names: dict[StepKey, str],
            in_flight: set[StepKey]) -> list[str]:
    """A step may run twice only if it was in flight at the crash, and never thrice."""
    problems = []
    for key, n in sorted((crashed + recovered).items()):
        if n == 1 or (n == 2 and key in in_flight and crashed[key] == 1):
            continue
        why = ("its outcome was committed before the crash" if key not in in_flight
               else "more than once after the crash")
        problems.append(f"step {_label(key, names)} ran {n} times: {why}")
    return problems


def _label(key: StepKey, names: dict[StepKey, str]) -> str:
    workflow, position = key
    child, _, run = workflow.partition("#")  # "#2": its second run (continue-as-new)
    where = f"{position} of child {child}" if child else position
    where += f" in run {run}" if run else ""
    return f"{names.get(key, '?')!r} at {where}"
