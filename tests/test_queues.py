"""Queues: concurrency (across processes), rate, priority, delay, dedup, dead letters."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import legato
import queue_child
from legato import DuplicateWorkflow, Queue
from legato.durable.workflow import parse_rate
from polling import eventually

TESTS = Path(__file__).parent


# -- the Queue value -------------------------------------------------------------


def test_queue_is_a_frozen_comparable_value_with_documented_defaults():
    q = Queue("emails", concurrency=3, rate="10/s")
    assert q == Queue("emails", concurrency=3, rate="10/s")
    assert hash(q) == hash(Queue("emails", concurrency=3, rate="10/s"))
    assert q != Queue("emails", concurrency=4, rate="10/s")
    assert repr(q) == ("Queue(name='emails', concurrency=3, worker_concurrency=None, "
                       "rate='10/s', priority=True, key_concurrency=None, key_rate=None)")
    assert Queue("x") == Queue("x", None, None, None, True)
    with pytest.raises(AttributeError):
        q.concurrency = 5  # type: ignore[misc]
    assert q.limits.rate == (10, 1.0)


@pytest.mark.parametrize(("text", "parsed"), [
    ("100/1m", (100, 60.0)), ("10/s", (10, 1.0)), ("5 / 250ms", (5, 0.25)),
    ("1/1h30m", (1, 5400.0)),
])
def test_rate_parsing(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["100", "ten/s", "10/", "10/1parsec", "0/1s", "5/0s", "-1/s"])
def test_bad_rates_fail_with_a_clear_message(text):
    with pytest.raises(ValueError, match="rate"):
        Queue("q", rate=text)


@pytest.mark.parametrize("kwargs", [{"concurrency": 0}, {"worker_concurrency": -1},
                                    {"concurrency": True}, {"concurrency": 1.5}])
def test_bad_limits_fail(kwargs):
    with pytest.raises(ValueError, match="positive int"):
        Queue("q", **kwargs)


async def test_a_queue_is_declared_once_and_names_must_be_known(db):
    async with legato.Runtime(db, queues=[Queue("a", concurrency=1)]) as rt:
        assert rt.queue("a").queue == Queue("a", concurrency=1)
        with pytest.raises(ValueError, match="declared here as"):
            rt.queue(Queue("a", concurrency=2))
        with pytest.raises(ValueError, match="not declared in this Runtime"):
            await rt.start(step_log, "x", queue="nowhere")
    async with legato.Runtime(db) as rt:  # passing the Queue declares it
        assert await rt.run(step_log, "y", queue=Queue("b", concurrency=2)) == "y"
        assert rt.queue("b").queue == Queue("b", concurrency=2)
    async with legato.Runtime(db, worker=False) as client:  # a client may name any queue
        assert client.queue("nowhere").queue == Queue("nowhere")


# -- workflows used below ------------------------------------------------------------

order: list[str] = []
gates: dict[str, asyncio.Event] = {}


@legato.step
async def record(label: str) -> None:
    order.append(label)
    gate = gates.get(label)
    if gate is not None:
        await gate.wait()


@legato.workflow(name="queue_step_log")
async def step_log(label: str) -> str:
    await record(label)
    return label


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    order.clear()
    gates.clear()
    yield
    for gate in gates.values():
        gate.set()


async def running(rt: legato.Runtime, ids: list[str]) -> Counter[str]:
    return Counter([str(await rt.handle(i).status()) for i in ids])


# -- concurrency across two processes --------------------------------------------------


def test_concurrency_holds_across_two_worker_processes(sqlite_db, tmp_path):
    log = tmp_path / "runs.log"
    log.touch()
    procs = [subprocess.Popen([sys.executable, str(TESTS / "queue_child.py"), sqlite_db, str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"

        async def enqueue_and_wait() -> None:
            async with legato.Runtime(sqlite_db, worker=False) as client:
                shared = client.queue(queue_child.SHARED)
                handles = [await shared.enqueue(queue_child.timed, id=f"w{i}")
                           for i in range(20)]
                await asyncio.gather(*(h.result(timeout=30) for h in handles))

        asyncio.run(enqueue_and_wait())
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    rows = [line.split() for line in log.read_text().splitlines()]
    assert sorted(r[0] for r in rows) == sorted(f"w{i}" for i in range(20))  # each once
    assert len({r[1] for r in rows}) == 2  # worker_concurrency=2 makes both take part
    events = sorted([(float(r[2]), 1) for r in rows] + [(float(r[3]), -1) for r in rows])
    at_once = peak = 0
    for _, delta in events:  # at equal times an end (-1) sorts before a start
        at_once += delta
        peak = max(peak, at_once)
    assert peak <= 3
    for pid in {r[1] for r in rows}:  # and never more than 2 in one process
        mine = sorted([(float(r[2]), 1) for r in rows if r[1] == pid]
                      + [(float(r[3]), -1) for r in rows if r[1] == pid])
        at_once = 0
        for _, delta in mine:
            at_once += delta
            assert at_once <= 2


def test_a_dead_workers_slot_is_held_until_its_lease_lapses(sqlite_db, tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    log.touch()
    monkeypatch.setenv("LEGATO_QUEUE_LOG", str(log))
    proc = subprocess.Popen([sys.executable, str(TESTS / "queue_child.py"), sqlite_db, str(log)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LEGATO_QUEUE_HANG": "1"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

        async def scenario() -> float:
            async with legato.Runtime(sqlite_db, worker=False) as client:
                first = await client.queue(queue_child.SINGLE).enqueue(queue_child.timed,
                                                                       id="s0")
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "start s0"  # the child holds the slot
            async with legato.Runtime(sqlite_db, queues=[queue_child.SINGLE]) as rt:
                second = await rt.queue(queue_child.SINGLE).enqueue(queue_child.timed,
                                                                    id="s1")
                await asyncio.sleep(0.3)
                assert await second.status() == "pending"  # the only slot is s0's
                proc.kill()
                killed = time.time()
                await asyncio.gather(rt.handle(first.id).result(timeout=10),
                                     second.result(timeout=10))
                return killed

        killed = asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait()
    rows = {r[0]: (int(r[1]), float(r[2]), float(r[3]))
            for r in (line.split() for line in log.read_text().splitlines())}
    assert set(rows) == {"s0", "s1"}
    assert rows["s0"][0] == rows["s1"][0] == os.getpid()  # taken over, then run here
    assert killed < rows["s0"][1] and rows["s0"][2] <= rows["s1"][1]  # one at a time


# -- in one process ----------------------------------------------------------------


async def test_worker_concurrency_limits_one_process_and_the_rest_stay_pending(db):
    ids = [f"h{i}" for i in range(6)]
    for i in ids:
        gates[i] = asyncio.Event()
    async with legato.Runtime(db, queues=[Queue("w", worker_concurrency=2)]) as rt:
        handles = [await rt.queue("w").enqueue(step_log, i, id=i) for i in ids]
        await eventually(lambda: len(order) == 2)
        assert await running(rt, ids) == {"running": 2, "pending": 4}
        for i in ids:
            gates[i].set()
        assert await asyncio.gather(*(h.result(timeout=5) for h in handles)) == ids
    if db.startswith("postgres"):
        # claimed FIFO, but two workflows claimed at once start in the order their
        # histories come back from the server, not in claim order
        assert sorted(order) == ids
    else:
        assert order == ids  # FIFO


def workflow_tasks() -> int:
    """Tasks running workflows (not a store's short-lived I/O tasks, e.g. asyncpg's)."""
    return sum(t.get_name().startswith("legato-workflow") for t in asyncio.all_tasks())


async def test_pending_costs_no_task_and_a_freed_slot_starts_the_next_at_once(db):
    gates["first"] = asyncio.Event()
    starts: dict[str, float] = {}

    @legato.step
    async def stamp(label: str) -> None:
        starts[label] = time.perf_counter()

    @legato.workflow(name="queue_stamped")
    async def stamped(label: str) -> None:
        await stamp(label)
        await record(label)

    async with legato.Runtime(db, queues=[Queue("one", concurrency=1)]) as rt:
        one = rt.queue("one")
        first = await one.enqueue(stamped, "first")
        await eventually(lambda: order == ["first"])
        tasks_before = workflow_tasks()
        rest = [await one.enqueue(stamped, f"r{i}") for i in range(200)]
        await asyncio.sleep(0.05)
        assert workflow_tasks() == tasks_before  # 200 pending, no task
        assert await rest[0].status() == "pending"
        released = time.perf_counter()
        gates["first"].set()
        await first.result(timeout=5)
        await rest[0].result(timeout=5)
        assert starts["r0"] - released < 0.1  # no poll interval (0.5 s) between them
        await asyncio.gather(*(h.result(timeout=10) for h in rest))
    assert order == ["first", *(f"r{i}" for i in range(200))]


async def test_lower_priority_first_then_fifo(db):
    gates["blocker"] = asyncio.Event()
    async with legato.Runtime(db, queues=[Queue("p", concurrency=1)]) as rt:
        p = rt.queue("p")
        handles = [await p.enqueue(step_log, "blocker")]
        await eventually(lambda: order == ["blocker"])
        for label, priority in [("urgent", -1), ("a5", 5), ("b10", 10), ("c5", 5),
                                ("d10", 10), ("zero", 0)]:
            handles.append(await p.enqueue(step_log, label, priority=priority))
        gates["blocker"].set()
        await asyncio.gather(*(h.result(timeout=5) for h in handles))
        info = await rt.get(handles[3].id)
        assert (info.queue, info.priority) == ("p", 10)
    assert order == ["blocker", "urgent", "zero", "a5", "c5", "b10", "d10"]


async def test_a_queue_without_priority_is_strictly_fifo(db):
    gates["blocker"] = asyncio.Event()
    async with legato.Runtime(db, queues=[Queue("f", concurrency=1, priority=False)]) as rt:
        f = rt.queue("f")
        handles = [await f.enqueue(step_log, "blocker")]
        await eventually(lambda: order == ["blocker"])
        for i, priority in enumerate([1, 9, 5]):
            handles.append(await f.enqueue(step_log, f"n{i}", priority=priority))
        gates["blocker"].set()
        await asyncio.gather(*(h.result(timeout=5) for h in handles))
    assert order == ["blocker", "n0", "n1", "n2"]


async def test_rate_limit_is_a_sliding_window_in_durable_time(db):
    clock = legato.VirtualClock()
    seen: list[float] = []

    @legato.step
    async def when() -> None:
        seen.append(clock.now())

    @legato.workflow(name="queue_rated")
    async def rated() -> None:
        await when()

    async with legato.Runtime(db, clock=clock, queues=[Queue("r", rate="10/1s")]) as rt:
        handles = [await rt.queue("r").enqueue(rated) for _ in range(30)]
        await asyncio.gather(*(h.result(timeout=10) for h in handles))
    seen.sort()
    assert len(seen) == 30
    assert seen[-1] - clock.start >= 2.0  # 30 starts at 10 a second: ≥ 2 s of durable time
    # A step runs at or after its workflow's start (on PostgreSQL the clock may jump during
    # the round trips between them), so only "by then" counts are exact: ≤ 10 starts per 1 s
    assert all(sum(t < clock.start + k for t in seen) <= 10 * k for k in (1, 2, 3))


async def test_delay_holds_a_workflow_pending_until_a_durable_time(db):
    clock = legato.VirtualClock()
    stamps: dict[str, float] = {}

    @legato.step
    async def stamp(label: str) -> None:
        stamps[label] = clock.now()

    @legato.workflow(name="queue_delayed")
    async def delayed(label: str) -> None:
        await stamp(label)

    async with legato.Runtime(db, clock=clock, queues=[Queue("d")]) as rt:
        # first, and done before any timer exists: with a timer pending, the virtual
        # clock may jump to it while a store round trip is in flight
        await rt.run(delayed, "now")
        later = await rt.queue("d").enqueue(delayed, "queued", delay="1h")
        plain = await rt.start(delayed, "plain", delay=90)  # delay works without a queue
        assert await later.status() == "pending"
        await asyncio.gather(later.result(timeout=5), plain.result(timeout=5))
    assert stamps["now"] == clock.start
    assert stamps["plain"] >= clock.start + 90
    assert stamps["queued"] >= clock.start + 3600


async def test_dedup_key_rejects_a_second_unfinished_workflow(db):
    gates["one"] = asyncio.Event()
    async with legato.Runtime(db, queues=[Queue("dd")]) as rt:
        dd = rt.queue("dd")
        first = await dd.enqueue(step_log, "one", id="first", dedup_key="k")
        with pytest.raises(DuplicateWorkflow, match="'first'") as caught:
            await dd.enqueue(step_log, "two", id="second", dedup_key="k")
        assert caught.value.existing_id == "first"
        with pytest.raises(legato.WorkflowNotFound):
            await rt.get("second")  # nothing was stored
        assert await dd.enqueue(step_log, "one", id="first", dedup_key="k") == first  # same id
        gates["one"].set()
        await first.result(timeout=5)
        again = await dd.enqueue(step_log, "three", id="third", dedup_key="k")  # key free
        assert await again.result(timeout=5) == "three"
        with pytest.raises(ValueError, match="needs a queue"):
            await rt.start(step_log, "x", dedup_key="k")


async def test_a_waiting_workflow_gives_its_slot_back(db):
    clock = legato.VirtualClock()

    @legato.workflow(name="queue_sleeper")
    async def sleeper() -> None:
        await record("a1")
        await legato.sleep("1h")  # unloaded: its slot is free meanwhile
        await record("a2")

    gates["b"] = asyncio.Event()
    async with legato.Runtime(db, clock=clock, queues=[Queue("s", concurrency=1)]) as rt:
        s = rt.queue("s")
        a = await s.enqueue(sleeper)
        b = await s.enqueue(step_log, "b")
        await eventually(lambda: order == ["a1", "b"])  # b took the slot a gave back
        await eventually(lambda: clock.now() >= clock.start + 3600)
        await asyncio.sleep(0.05)
        assert await a.status() == "waiting"  # due, but b holds the only slot
        gates["b"].set()
        await asyncio.gather(a.result(timeout=5), b.result(timeout=5))
    assert order == ["a1", "b", "a2"]


class CardDeclined(Exception):
    pass


declined = True


@legato.step
async def charge(amount: int) -> None:
    if declined:
        raise CardDeclined(f"card declined for {amount}")


@legato.workflow(name="queue_checkout")
async def checkout(amount: int) -> None:
    await record("reserve")
    await charge(amount)


async def test_failed_workflows_are_the_dead_letter_queue(db):
    async with legato.Runtime(db, queues=[Queue("orders")]) as rt:
        handle = await rt.queue("orders").enqueue(checkout, 42, id="order-42")
        with pytest.raises(CardDeclined):
            await handle.result(timeout=5)
        (dead,) = await rt.list(status="failed")
        assert dead.id == "order-42"
        assert dead.error == "CardDeclined: card declined for 42"
        assert dead.failed_step is not None
        assert (dead.failed_step.position, dead.failed_step.name) == ("2", "charge")
        assert dead.steps == ()  # list() stays light
        assert (await rt.get("order-42")).failed_step == dead.failed_step
        ok = await rt.start(step_log, "fine")
        await ok.result(timeout=5)
        assert (await rt.get(ok.id)).failed_step is None
        global declined
        declined = False  # the card works now: resume the dead letter
        try:
            await rt.resume("order-42")
            assert await handle.result(timeout=5) is None
        finally:
            declined = True
    assert order == ["reserve", "fine"]  # the resumed run replayed "reserve"



async def test_cancelling_a_pending_workflow_frees_its_dedup_key(db):
    gates["blocker"] = asyncio.Event()
    async with legato.Runtime(db, queues=[Queue("c", concurrency=1)]) as rt:
        c = rt.queue("c")
        blocker = await c.enqueue(step_log, "blocker")
        await eventually(lambda: order == ["blocker"])
        waiting = await c.enqueue(step_log, "never", dedup_key="k")
        await waiting.cancel()
        assert await waiting.status() == "cancelled"
        again = await c.enqueue(step_log, "again", dedup_key="k")
        gates["blocker"].set()
        assert await again.result(timeout=5) == "again"
        await blocker.result(timeout=5)
    assert order == ["blocker", "again"]


async def test_a_workflow_names_its_default_queue(db):
    serial = Queue("serial", concurrency=1)

    @legato.workflow(name="queued_by_default", queue=serial)
    async def queued_by_default(label: str) -> str:
        return label

    async with legato.Runtime(db, queues=[serial]) as rt:
        handle = await rt.start(queued_by_default, "x")
        assert await handle.result(timeout=5) == "x"
        assert (await rt.get(handle.id)).queue == "serial"
        other = await rt.start(queued_by_default, "y", queue=rt.queue(Queue("other")).queue)
        await other.result(timeout=5)
        assert (await rt.get(other.id)).queue == "other"


# -- key_concurrency ----------------------------------------------------------------


@legato.step
async def keyed_work(label: str) -> None:
    spans[label] = (time.perf_counter(), 0.0)
    await asyncio.sleep(0.002)
    spans[label] = (spans[label][0], time.perf_counter())


@legato.workflow(name="queue_keyed")
async def keyed(label: str) -> None:
    await keyed_work(label)


spans: dict[str, tuple[float, float]] = {}


def peak_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals overlapping at any moment (an end before a start at a tie)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    at_once = peak = 0
    for _, delta in events:
        at_once += delta
        peak = max(peak, at_once)
    return peak


async def test_key_concurrency_caps_each_key_and_a_small_key_is_not_starved(db):
    spans.clear()
    big_n = 200
    tenants = Queue("tenants", concurrency=4, key_concurrency=2)
    async with legato.Runtime(db, worker=False) as client:  # all queued before any runs
        q = client.queue(tenants)
        await asyncio.gather(*(q.enqueue(keyed, f"big-{i}", key="big") for i in range(big_n)))
        small = await asyncio.gather(*(q.enqueue(keyed, f"small-{i}", key="small")
                                       for i in range(3)))
    async with legato.Runtime(db, queues=[tenants]) as rt:
        await asyncio.gather(*(rt.handle(h.id).result(timeout=10) for h in small))
        small_done = max(spans[f"small-{i}"][1] for i in range(3))
        big_spans = [spans[label] for label in list(spans) if label.startswith("big-")]
    done_before = sum(0 < end <= small_done for _, end in big_spans)
    assert done_before < big_n // 10, done_before  # the small key was not held back
    assert peak_at_once([(a, b or math.inf) for a, b in big_spans]) <= 2  # at most 2 per key
    assert peak_at_once([spans[f"small-{i}"] for i in range(3)]) <= 2


async def test_key_rate_limits_starts_per_key_and_other_keys_go_on(db):
    clock = legato.VirtualClock()
    seen: list[tuple[str, float]] = []

    @legato.step
    async def when(key: str) -> None:
        seen.append((key, clock.now()))

    @legato.workflow(name="queue_key_rated")
    async def key_rated(key: str) -> None:
        await when(key)

    per_key = Queue("kr", key_rate="5/1s")
    # All enqueued before a worker runs: with the worker up, the clock jumped to the
    # big key's next window whenever this task waited on the store (the loop is idle
    # then), and a small one enqueued after that started at 1.0 (1 run in 15, loaded).
    async with legato.Runtime(db, worker=False) as client:
        q = client.queue(per_key)
        handles = [await q.enqueue(key_rated, "big", key="big") for _ in range(15)]
        handles += [await q.enqueue(key_rated, "small", key="small") for _ in range(3)]
    async with legato.Runtime(db, clock=clock, queues=[per_key]) as rt:
        await asyncio.gather(*(rt.handle(h.id).result(timeout=10) for h in handles))
    big = sorted(t - clock.start for key, t in seen if key == "big")
    small = [t - clock.start for key, t in seen if key == "small"]
    assert len(big) == 15 and big[-1] >= 2.0  # 15 starts at 5 a second: ≥ 2 s of durable time
    assert all(sum(t < k for t in big) <= 5 * k for k in (1, 2, 3))
    assert max(small) < 1.0  # the small key didn't wait behind the big one's window


async def test_keys_take_turns_on_a_queue_of_one(db):
    order: list[str] = []

    @legato.step
    async def note(label: str) -> None:
        order.append(label)

    @legato.workflow(name="queue_turns")
    async def turns(label: str) -> None:
        await note(label)

    serial = Queue("turns", concurrency=1, key_concurrency=1)
    async with legato.Runtime(db, worker=False) as client:  # all queued before any runs
        q = client.queue(serial)
        ids = [(await q.enqueue(turns, f"{key}{i}", key=key)).id
               for key in "abc" for i in range(3)]
    async with legato.Runtime(db, queues=[serial]) as rt:
        await asyncio.gather(*(rt.handle(i).result(timeout=10) for i in ids))
    assert order == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


async def test_key_needs_a_queue_with_key_concurrency(db):
    async with legato.Runtime(db, queues=[Queue("plain", concurrency=2)]) as rt:
        with pytest.raises(ValueError, match=r"key='k'.*no queue.*key_concurrency=N"):
            await rt.start(keyed, "x", key="k")
        with pytest.raises(ValueError, match="queue 'plain', which has no limit per key"):
            await rt.queue("plain").enqueue(keyed, "x", key="k")
        with pytest.raises(ValueError, match="non-empty str"):
            await rt.start(keyed, "x", queue=Queue("k1", key_concurrency=1), key="")
        assert await rt.list() == []
    with pytest.raises(ValueError, match="key_concurrency must be a positive int"):
        Queue("bad", key_concurrency=0)


@pytest.mark.slow  # about 6 s: 100 workflows of 0.1 s, 2 at a time for the big key
def test_key_concurrency_holds_across_processes(sqlite_db, tmp_path):
    log = tmp_path / "keyed.log"
    log.touch()
    small_queued: list[float] = []
    procs = [subprocess.Popen([sys.executable, str(TESTS / "queue_child.py"), sqlite_db, str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"

        async def enqueue_and_wait() -> None:
            async with legato.Runtime(sqlite_db, worker=False) as client:
                keyed_q = client.queue(queue_child.KEYED)
                handles = [await keyed_q.enqueue(queue_child.timed, id=f"big-{i}", key="big")
                           for i in range(100)]
                small_queued.append(time.time())
                handles += [await keyed_q.enqueue(queue_child.timed, id=f"small-{i}",
                                                  key="small") for i in range(3)]
                await asyncio.gather(*(h.result(timeout=60) for h in handles))

        asyncio.run(enqueue_and_wait())
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    rows = [line.split() for line in log.read_text().splitlines()]
    spans = {r[0]: (float(r[2]), float(r[3])) for r in rows}
    # 2 a process: with both keys running (3 or 4 at once), several processes take part
    assert len({r[1] for r in rows}) > 1
    for key in ("big", "small"):
        assert peak_at_once([v for k, v in spans.items() if k.startswith(key)]) <= 2
    small_done = max(end for k, (_, end) in spans.items() if k.startswith("small"))
    # bigs run while the small key's were enqueued; from then, fewer than 10% went first
    assert sum(small_queued[0] <= start and end <= small_done
               for k, (start, end) in spans.items() if k.startswith("big")) < 10
