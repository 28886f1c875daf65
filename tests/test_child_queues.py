"""Children on queues: ``start_child(..., queue=)`` and ``@workflow(queue=...)`` for children."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

import child_queues_child
import legato
from child_queues_child import FANOUT, SHARED_FANOUT, fan_out, fan_out_called, fan_out_shared
from legato import Queue
from polling import eventually
from worker_process import Child

TESTS = Path(__file__).parent


async def _fan_out_within_the_limit(db: str, n: int) -> None:
    child_queues_child.PEAK.clear()
    async with legato.Runtime(db, queues=[FANOUT]) as rt:
        result = await rt.run(fan_out, n, id="parent")
        assert result == [i * i for i in range(n)]
        assert 2 <= child_queues_child.PEAK["max"] <= FANOUT.concurrency  # limited, in parallel
        children = await rt.list(parent="parent", limit=1000)
        assert len(children) == n
        assert {c.queue for c in children} == {"fanout"}
        assert {c.status for c in children} == {"succeeded"}


async def test_200_children_on_a_concurrency_5_queue_never_run_more_than_5(sqlite_db):
    await _fan_out_within_the_limit(sqlite_db, 200)


@pytest.mark.parametrize("n", [50, pytest.param(200, marks=pytest.mark.slow)])
async def test_children_on_a_concurrency_5_queue_on_each_store(db, n):
    await _fan_out_within_the_limit(db, n)


async def test_a_workflow_queue_applies_to_the_children_it_is_called_as(db):
    child_queues_child.PEAK.clear()
    async with legato.Runtime(db, queues=[FANOUT]) as rt:
        assert await rt.run(fan_out_called, 20, id="parent") == [i * i for i in range(20)]
        assert child_queues_child.PEAK["max"] <= FANOUT.concurrency
        children = await rt.list(parent="parent", limit=100)
        assert len(children) == 20
        assert {c.queue for c in children} == {"fanout"}


@legato.workflow
async def plain_child(n: int) -> int:
    return n + 1


@legato.workflow
async def child_on(queue: str | None, bad: bool) -> int:
    q: object = 123 if bad else queue
    handle = await legato.start_child(plain_child, 1, queue=q)  # type: ignore[arg-type]
    return await handle.result()


async def test_a_child_on_a_queue_by_name_and_without_one(db):
    async with legato.Runtime(db, queues=[Queue("named")]) as rt:
        assert await rt.run(child_on, "named", False, id="a") == 2
        assert await rt.run(child_on, None, False, id="b") == 2
        assert [c.queue for c in await rt.list(parent="a")] == ["named"]
        assert [c.queue for c in await rt.list(parent="b")] == [None]


async def test_bad_child_queues_fail_the_parent_with_a_clear_error(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="queue 'nowhere' is not declared"):
            await rt.run(child_on, "nowhere", False, id="undeclared")
        with pytest.raises(TypeError, match=r"queue= takes a legato.Queue or its name, not 123"):
            await rt.run(child_on, None, True, id="bad-type")
        assert await rt.list(parent="undeclared") == []


def test_a_bad_workflow_queue_is_refused_at_decoration():
    with pytest.raises(TypeError, match=r"workflow\(queue=...\) takes a legato.Queue"):
        legato.workflow(queue=5)(plain_child.fn)  # type: ignore[call-overload]


async def test_a_declared_queue_with_other_limits_is_refused_for_a_child(db):
    @legato.workflow(name="other_limits_parent")
    async def parent() -> int:
        handle = await legato.start_child(plain_child, 1, queue=Queue("fanout", concurrency=9))
        return await handle.result()

    async with legato.Runtime(db, queues=[FANOUT]) as rt:
        with pytest.raises(ValueError, match="declared here with other limits"):
            await rt.run(parent, id="p")


def _child_runs(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


async def test_a_parent_killed_mid_fan_out_recovers_and_runs_no_finished_child_again(
        db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "children.log"
    log.touch()
    monkeypatch.setenv("LEGATO_CHILDQ_LOG", str(log))  # this process's runs are noted too
    child = Child(db, str(log), "60", script=TESTS / "child_queues_child.py")
    try:
        for _ in range(10):  # several children have finished: the parent is mid-way
            assert child.next_line().startswith("done ")
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait()
    async with legato.Runtime(db, worker=False) as client:
        finished_before = {c.id for c in await client.list("succeeded", parent="fan", limit=100)}
    assert 0 < len(finished_before) < 60
    async with legato.Runtime(db, queues=[FANOUT], lease=0.5) as rt:
        result = await rt.handle("fan").result()
        assert result == [i * i for i in range(60)]
        children = await rt.list(parent="fan", limit=1000)
    assert len(children) == 60
    runs = _child_runs(log)
    assert set(runs) == {c.id for c in children}
    again = {cid for cid, n in runs.items() if n > 1}
    assert not again & finished_before, "a finished child ran again"
    assert len(again) <= FANOUT.concurrency  # only those cut off mid-step


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


async def test_children_on_a_queue_share_its_limit_across_worker_processes(
        db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "children.log"
    log.touch()
    monkeypatch.setenv("LEGATO_CHILDQ_LOG", str(log))
    # Steps as long in both processes: with 1 ms ones here (20 ms in the other), this
    # process could run all 40, 3 at a time, before a loaded machine let the other
    # claim one (1 failure in a loaded suite run). Now it needs 0.7 s at least.
    monkeypatch.setenv("LEGATO_CHILDQ_STEP", "0.05")
    other = Child(db, str(log), "0", script=TESTS / "child_queues_child.py")
    try:
        other.wait_for("ready")
        async with legato.Runtime(db, queues=[FANOUT, SHARED_FANOUT]) as rt:
            result = await rt.run(fan_out_shared, 40, id="shared")
    finally:
        other.proc.send_signal(signal.SIGKILL)
        other.proc.wait()
    assert result == [i * i for i in range(40)]
    rows = [line.split() for line in log.read_text().splitlines()]
    assert sorted(r[0] for r in rows) == sorted(f"shared/{i + 1}" for i in range(40))
    assert len({r[1] for r in rows}) == 2, "both processes ran children"
    assert _most_at_once([(float(r[2]), float(r[3])) for r in rows]) <= 5


ONE_AT_A_TIME = Queue("one_at_a_time", concurrency=1)


@legato.workflow(name="childq_waits")
async def waits_for_signal() -> None:
    await legato.wait_for_signal("never")


@legato.workflow(name="childq_cancelled_parent")
async def parent_of_queued(n: int) -> None:
    handles = [await legato.start_child(waits_for_signal, queue=ONE_AT_A_TIME)
               for _ in range(n)]
    await legato.set_event("started", True)
    for h in handles:
        await h.result()


async def test_cancelling_the_parent_cancels_its_children_still_pending_on_the_queue(db):
    async with legato.Runtime(db, queues=[ONE_AT_A_TIME]) as rt:
        parent = await rt.start(parent_of_queued, 3, id="p")
        assert await parent.get_event("started", timeout=10)
        await rt.cancel("p")
        with pytest.raises(legato.WorkflowCancelled):
            await parent.result()

        async def all_cancelled() -> bool:
            return {c.status for c in await rt.list(parent="p")} == {"cancelled"}

        await eventually(all_cancelled)
        assert len(await rt.list(parent="p")) == 3
