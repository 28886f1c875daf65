"""What every test of the fault suite asserts, in one place.

- every workflow finished with the right result (the test gathers them);
- no step ran after its outcome was committed: each run of a step began before
  the checkpoint that the store kept for it was recorded (``created_at``, taken
  as the committing run's body returned; a run that begins later is a run the
  engine should have replayed);
- a step ran more than once only around a fault: at most once more per fault,
  and every run but the latest began within ``BEFORE`` s before a fault to
  ``AFTER`` s after it ended (a run in flight when the fault hit, or a worker
  that has not yet learnt it lost the lease);
- the same worker processes are alive and serve new work after the last fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import legato

BEFORE = 2.0  # seconds: a step (and its commit) in flight when a fault began
AFTER = 6.0  # seconds: the longest retry backoff (5 s) after a fault ended, and a lease


@dataclass(frozen=True)
class Run:
    pid: int
    began: float


@dataclass(frozen=True)
class Fault:
    kind: str
    began: float
    ended: float

    def covers(self, when: float) -> bool:
        return self.began - BEFORE <= when <= self.ended + AFTER


def step_runs(log: Path) -> dict[str, list[Run]]:
    """Each step's runs (``"<workflow id>-<position>"``), in the order they began."""
    runs: dict[str, list[Run]] = {}
    for line in log.read_text().splitlines():
        key, pid, began = line.split()
        runs.setdefault(key, []).append(Run(int(pid), float(began)))
    for each in runs.values():
        each.sort(key=lambda r: r.began)
    return runs


def lines(log: Path) -> int:
    with log.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))


async def committed_steps(client: legato.Runtime, ids: Iterable[str]) -> dict[str, float]:
    """When each stored step checkpoint was recorded, by ``"<workflow id>-<position>"``."""
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> list[tuple[str, float]]:
        async with gate:
            return [(f"{workflow_id}-{s.position}", s.created_at)
                    for s in await client.store.history(workflow_id) if s.kind == "step"]

    found = await asyncio.gather(*(one(i) for i in ids))
    return dict(pair for pairs in found for pair in pairs)


def check_steps(runs: dict[str, list[Run]], committed: dict[str, float], expected: set[str],
                faults: list[Fault], reruns_per_fault: int | None = 1) -> None:
    """Every expected step ran and is stored; none ran after its commit; reruns only at faults.

    ``reruns_per_fault``: how many more runs of a step each fault may cause (``None``:
    any number, for a test that counts them on its own).
    """
    assert set(runs) == expected, sorted(set(runs) ^ expected)[:20]
    assert expected <= set(committed), sorted(expected - set(committed))[:20]
    late, many, stray = [], [], []
    for key, each in runs.items():
        if any(r.began > committed[key] + 1e-6 for r in each):
            late.append((key, each, committed[key]))
        if reruns_per_fault is not None and len(each) > 1 + reruns_per_fault * len(faults):
            many.append((key, each))
        if any(not any(f.covers(r.began) for f in faults) for r in each[:-1]):
            stray.append((key, each))
    assert not late, ("steps ran after their outcome was committed", late[:10], faults)
    assert not many, ("steps ran more than once more per fault", many[:10], faults)
    assert not stray, ("steps ran again away from any fault", stray[:10], faults)


def reran(runs: dict[str, list[Run]]) -> int:
    """How many steps ran more than once."""
    return sum(len(each) > 1 for each in runs.values())


def workflows_moved(runs: dict[str, list[Run]]) -> int:
    """How many workflows had steps run by more than one process."""
    pids: dict[str, set[int]] = {}
    for key, each in runs.items():
        pids.setdefault(key.rsplit("-", 1)[0], set()).update(r.pid for r in each)
    return sum(len(p) > 1 for p in pids.values())


async def unfinished(client: legato.Runtime) -> list[tuple[str, str]]:
    """Workflows in the store that did not succeed, as (id, status)."""
    return [(info.id, str(info.status)) for status in ("pending", "running", "waiting",
                                                        "failed", "cancelled")
            for info in await client.list(status=status, limit=10_000)]
