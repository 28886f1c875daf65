"""Many worker processes on one PostgreSQL database: SIGKILL one, the others take over.

Workers are real ``python -m legato worker fleet_workflows`` processes; the
test is a client (``worker=False``) on the same schema.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import fleet_workflows
import legato
from fleet import Fleet
from fleet_workflows import runners, runs
from polling import eventually

LEASE = 1.0


async def _owners(rt: legato.Runtime) -> dict[str, list[str]]:
    """Running workflows by worker."""
    owned: dict[str, list[str]] = {}
    for info in await rt.list(status="running", limit=10_000):
        if info.worker is not None:
            owned.setdefault(info.worker, []).append(info.id)
    return owned


async def _kill_one_mid_way(pg_url: str, tmp_path: Path, log: Path, count: int) -> None:
    # 0.15 s steps: a workflow is in flight for 0.75 s, so the busiest worker still runs
    # some when it is killed; with 0.05 s ones, under load, it had finished them all
    fleet = Fleet(pg_url, tmp_path, 3, concurrency=max(10, count // 2), step_seconds=0.15)
    try:
        await fleet.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            handles = [await client.start(fleet_workflows.five_steps, f"w{n}", id=f"w{n}")
                       for n in range(count)]
            await eventually(lambda: sum(runs(log).values()) >= count * 5 * 0.4, timeout=30)
            owned = await _owners(client)
            victim_owner = max(owned, key=lambda o: len(owned[o]))
            victim_pid = int(victim_owner.split(":")[1])
            fleet.by_pid(victim_pid).kill()
            killed_at = time.monotonic()
            in_flight = set((await _owners(client)).get(victim_owner, []))  # frozen now
            assert in_flight

            async def taken_over() -> bool:
                return victim_owner not in await _owners(client)

            await eventually(taken_over, timeout=LEASE + 5)
            taken_in = time.monotonic() - killed_at
            results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
            finished_in = time.monotonic() - killed_at
    finally:
        fleet.stop()
    print(f"{count} workflows: {len(in_flight)} taken over {taken_in:.2f} s after SIGKILL "
          f"(lease {LEASE} s), all done {finished_in:.2f} s after")
    assert results == [[1, 2, 3, 4, 5]] * count
    counts = runs(log)
    assert set(counts) == {f"w{n}-{i}" for n in range(count) for i in range(1, 6)}
    again = {step: pids for step, pids in runners(log).items() if len(pids) > 1}
    for step, pids in again.items():  # only the killed worker's step in flight ran again
        assert step.rsplit("-", 1)[0] in in_flight, (step, pids)
        assert len(pids) == 2 and pids[0] == victim_pid, (step, pids)
    assert len({step.rsplit("-", 1)[0] for step in again}) == len(again)  # one per workflow
    assert taken_in < LEASE + 1.0




async def test_three_workers_200_workflows_one_killed_every_step_once(
        pg_url, tmp_path, fleet_log):
    await _kill_one_mid_way(pg_url, tmp_path, fleet_log, 200)


async def test_a_signal_from_a_client_wakes_a_workflow_in_another_process(
        pg_url, tmp_path, fleet_log):
    fleet = Fleet(pg_url, tmp_path, 2, concurrency=10)
    try:
        await fleet.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            handle = await client.start(fleet_workflows.waiter, "s", id="s")
            await eventually(lambda: runs(fleet_log)["s-1"] == 1)
            await asyncio.sleep(0.2)  # into its wait for the signal
            sent = time.time()
            await client.signal("s", "go")
            pid, woke = await handle.result(timeout=10)
            done = time.time()
    finally:
        fleet.stop()
    print(f"signal to wake across processes {(woke - sent) * 1000:.1f} ms, "
          f"to result {(done - sent) * 1000:.1f} ms")
    assert pid in [p.pid for p in fleet.procs]
    assert woke - sent < 0.2
    assert done - sent < 0.3


async def test_sigterm_drains_and_another_worker_resumes_at_once(pg_url, tmp_path, fleet_log):
    slow = Fleet(pg_url, tmp_path, 1, concurrency=10, step_seconds=30.0)
    try:
        await slow.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            handles = [await client.start(fleet_workflows.five_steps, f"d{n}", id=f"d{n}")
                       for n in range(5)]
            await eventually(lambda: sum(runs(fleet_log).values()) == 5)  # all in step 1
            slow.procs[0].terminate()
            signalled = time.monotonic()
            assert slow.procs[0].wait(timeout=10) == 0, slow.logs[0].read_text()
            drained_in = time.monotonic() - signalled
            assert {await h.status() for h in handles} == {"running"}
            assert not await _owners(client)  # every lease given back
            fast = Fleet(pg_url, tmp_path / "fast", 1, concurrency=10)
            try:
                results = await asyncio.gather(*(h.result(timeout=20) for h in handles))
            finally:
                fast.stop()
    finally:
        slow.stop()
    assert "drained" in slow.logs[0].read_text()
    assert results == [[1, 2, 3, 4, 5]] * 5
    counts = runs(fleet_log)
    assert counts == {f"d{n}-{i}": 2 if i == 1 else 1 for n in range(5) for i in range(1, 6)}
    assert drained_in < 3


async def test_a_paused_worker_cannot_overwrite_the_new_owners_checkpoints(
        pg_url, tmp_path, fleet_log):
    paused = Fleet(pg_url, tmp_path, 1, concurrency=10, step_seconds=LEASE * 2)
    fast = None
    try:
        await paused.ready()
        old = paused.procs[0]
        async with legato.Runtime(pg_url, worker=False) as client:
            handle = await client.start(fleet_workflows.owned, "f", id="f")
            await eventually(lambda: runs(fleet_log)["f-1"] == 1)
            old.send_signal(signal.SIGSTOP)  # mid-step, past its lease
            fast = Fleet(pg_url, tmp_path / "fast", 1, concurrency=10)
            new_pid = fast.procs[0].pid
            assert await handle.result(timeout=20) == [new_pid] * 3
            old.send_signal(signal.SIGCONT)  # its step ends at once; its checkpoint is refused
            await asyncio.sleep(LEASE)
            info = await client.get("f")
            values = [client.serializer.loads(s.value) for s in await client.store.history("f")]
            assert old.poll() is None  # alive, serving, just no longer the owner
    finally:
        paused.stop()
        if fast is not None:
            fast.stop()
    assert info.status == legato.Status.SUCCEEDED
    assert [s.position for s in info.steps] == ["1", "2", "3"]
    assert values == [new_pid] * 3
    assert runners(fleet_log)["f-1"] == [old.pid, new_pid]
    assert runners(fleet_log)["f-2"] == [new_pid]  # the old worker went no further


async def test_a_queue_limit_holds_across_worker_processes(
        pg_url, tmp_path, fleet_log, monkeypatch):
    spans = tmp_path / "spans.log"
    spans.touch()
    monkeypatch.setenv("LEGATO_TEST_SPANS", str(spans))
    fleet = Fleet(pg_url, tmp_path, 3, concurrency=10, step_seconds=0.1,
                  args=("--queue", "fleet_limited"))
    try:
        await fleet.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            handles = [await client.start(fleet_workflows.limited, f"q{n}") for n in range(12)]
            assert await asyncio.gather(*(h.result(timeout=20) for h in handles)) == [
                f"q{n}" for n in range(12)]
    finally:
        fleet.stop()
    events = []
    for line in spans.read_text().splitlines():
        _, began, ended = line.split()
        events += [(float(began), 1), (float(ended), -1)]
    running = peak = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts
        running += change
        peak = max(peak, running)
    assert len(events) == 24
    assert peak == 2  # the limit, reached, never passed
