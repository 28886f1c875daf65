"""The Store contract: every method, against SQLite and PostgreSQL alike.

Each test gets a fresh database: a new SQLite file, or a new PostgreSQL
schema (``?schema=``) dropped afterwards. The PostgreSQL half runs against
``$LEGATO_TEST_POSTGRES`` or, when that is unset, a server on
127.0.0.1:5432 (user ``postgres``, database ``test``); without a server it
skips, saying so — unless ``LEGATO_TEST_POSTGRES`` is set (as in CI), where a
missing server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

import legato
from legato._errors import DuplicateWorkflow  # legato.DuplicateWorkflow once exported
from legato.store import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    ClaimRequest,
    NewWorkflow,
    QueueLimits,
    Renewal,
    StepRecord,
    Store,
    WorkflowRecord,
    open_store,
)
from legato.store._postgres_schema import SCHEMA_VERSION as PG_VERSION
from legato.store._sqlite_schema import SCHEMA_VERSION as SQLITE_VERSION
from polling import eventually, status_is

asyncpg = pytest.importorskip("asyncpg")

def ask(owner: str, *, lease_until: float | None = None, real_now: float | None = None,
        durable_now: float = 0.0, limit: int = 10, names: Sequence[str] = ("wf",),
        queues: Sequence[QueueLimits] = (), running: Sequence[str] = ()) -> ClaimRequest:
    """A claim by ``owner``: a 30 s lease from now, at durable time 0, of workflow ``wf``."""
    now = time.time()
    return ClaimRequest(
        owner=owner, lease_until=now + 30 if lease_until is None else lease_until,
        real_now=now if real_now is None else real_now, durable_now=durable_now, limit=limit,
        names=names, queues=queues, running=running)


@pytest.fixture
def url(db: str) -> str:
    """A fresh store URL (conftest's ``db``): a new SQLite file or PostgreSQL schema."""
    return db


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    s = open_store(url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def other(url: str, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database: another worker process, as far as it knows."""
    s = open_store(url)
    await s.open()
    yield s
    await s.close()


def new(wid: str, owner: str | None = None, lease: float = 0.0, **kw: Any) -> NewWorkflow:
    return NewWorkflow(wid, kw.pop("name", "wf"), b"input", owner,
                       lease or (time.time() + 60 if owner else 0.0), **kw)


def step(position: str, value: bytes | None = b"v", kind: str = "step") -> StepRecord:
    return StepRecord(position, kind, "s", True, value, time.time())


async def running(store: Store, wid: str, owner: str = "A", **kw: Any) -> None:
    assert await store.create(new(wid, owner, **kw)) is None


async def record(store: Store, wid: str) -> WorkflowRecord:
    got = await store.get(wid)
    assert got is not None
    return got


async def waiting(store: Store, wid: str, wake_at: float | None = None) -> None:
    await running(store, wid)
    assert await store.suspend(wid, "A", wake_at)


# -- create, get, list ---------------------------------------------------------------


async def test_create_is_idempotent_by_id(store):
    assert await store.create(new("w1")) is None
    again = await store.create(NewWorkflow("w1", "other", b"different", None, 0.0))
    assert again is not None and again.name == "wf" and again.input == b"input"
    got = await record(store, "w1")
    assert (got.status, got.owner, got.cancel, got.parent_id) == ("pending", None, False, None)
    assert await store.get("missing") is None


async def test_create_with_an_owner_is_running_already(store):
    await running(store, "w1", deadline=123.0, parent_id="p")
    got = await record(store, "w1")
    assert (got.status, got.owner, got.deadline, got.parent_id) == ("running", "A", 123.0, "p")


async def test_list_is_newest_first_and_filters(store):
    for i in range(5):
        await store.create(new(f"w{i}", name="even" if i % 2 == 0 else "odd"))
    await running(store, "r")
    assert [r.id for r in await store.list(status=None, name=None, limit=3)] == ["r", "w4", "w3"]
    assert [r.id for r in await store.list(status="pending", name="even", limit=10)] == [
        "w4", "w2", "w0"]
    assert [r.id for r in await store.list(status="running", name=None, limit=10)] == ["r"]


# -- append, history, finish ------------------------------------------------------------


async def test_append_is_fenced_by_owner_and_status(store):
    await running(store, "w1")
    await store.create(new("p1"))
    assert await store.append("w1", "A", step("1"))
    assert not await store.append("w1", "B", step("2"))  # not the owner
    assert not await store.append("p1", "A", step("1"))  # not running
    assert await store.finish("w1", "A", "succeeded", b"r", None)
    assert not await store.append("w1", "A", step("3"))  # finished
    assert [s.position for s in await store.history("w1")] == ["1"]
    assert await store.history("p1") == []


async def test_appends_of_one_loop_turn_each_get_their_own_answer(store):
    for wid in ("a", "b", "c"):
        await running(store, wid)
    writes = [store.append(wid, owner, step(str(i), bytes([i])))
              for i in range(1, 31) for wid, owner in (("a", "A"), ("b", "A"), ("c", "X"))]
    results = await asyncio.gather(*writes)
    assert results == [True, True, False] * 30
    history = await store.history("a")
    assert sorted(int(s.position) for s in history) == list(range(1, 31))
    assert {s.position: s.value for s in history}["7"] == bytes([7])
    assert await store.history("c") == []


async def test_a_checkpoint_not_awaited_commits_before_a_later_finish(store):
    await running(store, "w1")
    store.append("w1", "A", step("1", kind="now"))  # like legato.now(): not awaited
    assert await store.finish("w1", "A", "succeeded", b"done", None)
    assert [s.kind for s in await store.history("w1")] == ["now"]


async def test_an_append_cancelled_before_it_is_sent_is_not_made(store):
    await running(store, "w1")
    store.append("w1", "A", step("1")).cancel()  # e.g. a losing branch, cancelled at once
    assert await store.append("w1", "A", step("2"))
    assert [s.position for s in await store.history("w1")] == ["2"]


async def test_a_position_written_twice_fails_alone(store):
    await running(store, "w1")
    assert await store.append("w1", "A", step("1"))
    dup, fine = store.append("w1", "A", step("1")), store.append("w1", "A", step("2"))
    # SQLite's append still lets sqlite3.IntegrityError through untranslated
    with pytest.raises((legato.StoreError, sqlite3.IntegrityError)):
        await dup
    assert await fine


async def test_history_round_trips_every_field(store):
    await running(store, "w1")
    failed = StepRecord("2.1", "step", "fetch", False, b"\x00err", 12.5)
    assert await store.append("w1", "A", failed)
    assert await store.append("w1", "A", StepRecord("1", "now", "", True, None, 11.0))
    assert sorted(await store.history("w1"), key=lambda s: s.position) == [
        StepRecord("1", "now", "", True, None, 11.0), failed]


async def test_finish_needs_the_lease_and_sets_the_outcome(store):
    await running(store, "w1")
    assert not await store.finish("w1", "B", "succeeded", b"r", None)
    assert await store.finish("w1", "A", "failed", None, b"boom")
    got = await record(store, "w1")
    assert (got.status, got.result, got.error, got.owner) == ("failed", None, b"boom", None)
    assert got.finished_at is not None
    assert not await store.finish("w1", "A", "succeeded", b"r", None)  # once only


async def test_finishing_a_child_wakes_its_waiting_parent(store):
    await waiting(store, "parent", wake_at=None)
    await running(store, "child", parent_id="parent")
    assert await store.children("parent") == ["child"]
    assert await store.finish("child", "A", "succeeded", b"r", None)
    assert (await record(store, "parent")).wake_at == 0
    assert await store.children("parent") == []


# -- claim, heartbeat, release ----------------------------------------------------------


async def test_claim_takes_pending_workflows_whose_code_it_has(store):
    for wid, name in (("a", "wf"), ("b", "other"), ("c", "wf")):
        await store.create(new(wid, name=name))
    lease = time.time() + 30
    claimed = await store.claim(ask("W", lease_until=lease))
    assert [r.id for r in claimed] == ["a", "c"]
    assert all((r.status, r.owner) == ("running", "W") for r in claimed)
    # the lease starts when the claim is made: as asked, plus any wait for its turn
    assert all(lease <= r.lease_until < lease + 5 for r in claimed)
    assert await store.claim(ask("W2", lease_until=lease)) == []
    assert [r.id for r in await store.claim(ask("W2", lease_until=lease, limit=1, names=["other"]))
            ] == ["b"]


async def test_claim_respects_its_limit_oldest_first(store):
    for i in range(5):
        await store.create(new(f"w{i}"))
    first = await store.claim(ask("W", limit=2))
    second = await store.claim(ask("W"))
    assert sorted(r.id for r in first) == ["w0", "w1"]
    assert sorted(r.id for r in second) == ["w2", "w3", "w4"]


async def test_claim_takes_over_a_lapsed_lease_only(store):
    now = time.time()
    await running(store, "live", lease=now + 60)
    await running(store, "lapsed", lease=now - 1)
    claimed = await store.claim(ask("B", lease_until=now + 30, real_now=now))
    assert [r.id for r in claimed] == ["lapsed"]
    assert not await store.append("lapsed", "A", step("1"))  # the old owner is fenced off
    assert await store.append("lapsed", "B", step("1"))
    assert await store.next_lease_expiry() == pytest.approx(now + 30)


async def test_a_claim_says_whose_lapsed_lease_it_took_over(store):
    now = time.time()
    await store.create(new("pending"))
    await running(store, "dead", owner="host:1:gone#4", lease=now - 1)
    await running(store, "stalled", owner="host:2:me#1", lease=now - 1)
    await running(store, "released", owner="host:3:left#2", lease=now + 60)
    await store.release([("released", "host:3:left#2")])
    claimed = {r.id: r for r in await store.claim(ask("host:2:me#9", real_now=now))}
    assert {wid: (r.previous_owner, r.taken_over, r.recoveries)
            for wid, r in claimed.items()} == {
        "pending": (None, False, 0),
        "dead": ("host:1:gone#4", True, 1),  # its worker died: a recovery
        "stalled": ("host:2:me#1", False, 0),  # this worker's own: taken back, no recovery
        "released": (None, False, 0),  # given back at a shutdown: no recovery
    }
    assert (await record(store, "dead")).recoveries == 1


async def test_a_claim_says_which_workflows_have_no_checkpoint_yet(store):
    # what lets a worker skip reading the history of a workflow that never ran
    await running(store, "ran")
    assert await store.append("ran", "A", step("1"))
    await store.release([("ran", "A")])  # pending again, with its checkpoint
    for wid in ("new1", "new2"):
        await store.create(new(wid))
    claimed = {c.id: c.fresh for c in await store.claim(ask("B"))}
    # a store may leave `fresh` False (a claim of one row on PostgreSQL does); never
    # True for a workflow that has a checkpoint
    assert claimed == {"ran": False, "new1": True, "new2": True}


async def test_a_claim_leaves_the_lapsed_leases_of_attempts_its_worker_runs(store):
    # the renewal of a run going on in this worker came late: taking the row back under a
    # new attempt would refuse the running task's checkpoint in flight
    now = time.time()
    await running(store, "slow-renewal", owner="host:2:me#1", lease=now - 1)
    await running(store, "orphan", owner="host:2:me#2", lease=now - 1)  # no task runs it
    claimed = await store.claim(ask("host:2:me#9", real_now=now, running=["host:2:me#1"]))
    assert [r.id for r in claimed] == ["orphan"]
    assert (await record(store, "slow-renewal")).owner == "host:2:me#1"
    # another worker takes it, its lease having lapsed
    assert [r.id for r in await store.claim(ask("host:5:other#1", real_now=now))] == [
        "slow-renewal"]


async def test_recoveries_add_up_over_takeovers(store):
    await running(store, "poison", owner="w0#1", lease=time.time() - 1)
    for n in range(1, 4):
        (taken,) = await store.claim(ask(f"w{n}#1", lease_until=time.time() - 1))
        assert (taken.previous_owner, taken.recoveries) == (f"w{n - 1}#1", n)
    # a new run (continue-as-new) starts counting again, as a resume does
    assert await store.continue_as_new("poison", "w3#1", b"next") is not None
    assert (await record(store, "poison")).recoveries == 0


async def test_claim_takes_waiting_workflows_when_due_in_durable_time(store):
    await waiting(store, "timer", wake_at=100.0)
    await running(store, "deadline", deadline=50.0)
    assert await store.suspend("deadline", "A", None)
    await waiting(store, "forever", wake_at=None)
    assert await store.next_wake() == 50.0
    assert await store.claim(ask("W", durable_now=49.0)) == []
    assert [r.id for r in await store.claim(ask("W", durable_now=50.0))
            ] == ["deadline"]
    claimed = await store.claim(ask("W", durable_now=100.0))
    assert [(r.id, r.status, r.wake_at) for r in claimed] == [("timer", "running", None)]


async def test_two_concurrent_claimers_never_take_the_same_workflow(store, other):
    for i in range(60):
        await store.create(new(f"w{i:02}"))

    async def claimer(s: Store, owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await s.claim(ask(owner, limit=7)):
            taken += [r.id for r in batch]
        return taken

    a, b, c = await asyncio.gather(claimer(store, "A"), claimer(other, "B"),
                                   claimer(store, "C"))
    assert sorted(a + b + c) == [f"w{i:02}" for i in range(60)]
    owners = Counter(r.owner for r in await store.list(status="running", name=None, limit=100))
    assert owners == Counter({"A": len(a), "B": len(b), "C": len(c)})


async def test_heartbeat_extends_leases_held_and_reports_cancel_requests(store):
    await running(store, "a", lease=time.time() + 1)
    await running(store, "b", lease=time.time() + 1)
    await running(store, "theirs", owner="B")
    await running(store, "dead")  # ours, but no task runs it any more: it must lapse
    mine = [("a", "A"), ("b", "A"), ("theirs", "A")]
    later = time.time() + 5000
    assert await store.heartbeat(mine, later) == Renewal(frozenset({"a", "b"}), ())
    assert later <= (await record(store, "a")).lease_until < later + 1  # + the wait to write
    assert (await record(store, "theirs")).lease_until != later
    assert (await record(store, "dead")).lease_until != later
    cancelled = await store.request_cancel("b")
    assert (cancelled.status, cancelled.cancel) == ("running", True)
    assert await store.heartbeat(mine, later + 1) == Renewal(frozenset({"a", "b"}), ("b",))
    assert await store.heartbeat([], 7000.0) == Renewal()


async def test_a_renewal_carried_out_late_never_shortens_a_lease(store):
    # a renewal queued behind a burst of writes used to overwrite a later one's lease with
    # its own, older one: the lease lapsed under the running task and another worker took
    # the workflow over while its step ran (hundreds of steps ran twice in 10,000 starts)
    await running(store, "a", lease=time.time() + 1)
    later = time.time() + 5000
    assert await store.heartbeat([("a", "A")], later) == Renewal(frozenset({"a"}), ())
    assert await store.heartbeat([("a", "A")], later - 1000) == Renewal(frozenset({"a"}), ())
    assert later <= (await record(store, "a")).lease_until < later + 1


async def test_release_gives_leases_back_at_once(store, other):
    await running(store, "a", lease=time.time() + 60)
    await running(store, "b", lease=time.time() + 60)
    await store.release([("a", "A")])
    claimed = await other.claim(ask("B"))
    assert [r.id for r in claimed] == ["a"]
    await store.release([("a", "A")])  # no longer ours: nothing happens
    assert (await record(store, "a")).owner == "B"


# -- suspend, signals --------------------------------------------------------------------


async def test_suspend_unloads_and_needs_the_lease(store):
    await running(store, "w1")
    assert not await store.suspend("w1", "B", 10.0)
    assert await store.suspend("w1", "A", 10.0)
    got = await record(store, "w1")
    assert (got.status, got.owner, got.lease_until, got.wake_at) == ("waiting", None, 0, 10.0)
    assert not await store.suspend("w1", "A", 10.0)  # not running any more


async def test_suspend_is_due_at_once_if_a_cancel_was_asked_for_while_it_ran(store):
    await running(store, "w")
    await store.request_cancel("w")  # seen by the worker only at its next heartbeat
    assert await store.suspend("w", "A", None, signal="never")
    got = await record(store, "w")
    assert (got.status, got.wake_at, got.cancel) == ("waiting", 0, True)
    assert [r.id for r in await store.claim(ask("W"))
            ] == ["w"]


async def test_server_time_is_the_stores_clock_or_none_for_a_local_file(store):
    server = await store.server_time()
    assert server is None or abs(server - time.time()) < 5


async def test_suspend_is_due_at_once_if_its_signal_or_child_already_arrived(store):
    await running(store, "sig")
    await store.send_signal("sig", "go", b"1")
    assert await store.suspend("sig", "A", None, signal="go")
    assert (await record(store, "sig")).wake_at == 0
    await running(store, "parent")
    await running(store, "child", parent_id="parent")
    assert await store.finish("child", "A", "succeeded", b"r", None)
    assert await store.suspend("parent", "A", 500.0, child="child")
    assert (await record(store, "parent")).wake_at == 0
    await running(store, "nothing")
    assert await store.suspend("nothing", "A", 500.0, signal="go", child="parent")
    assert (await record(store, "nothing")).wake_at == 500.0


async def test_signals_are_taken_once_each_oldest_first(store):
    await running(store, "w1")
    for payload in (b"1", b"2", b"3"):
        assert await store.send_signal("w1", "go", payload)
    await store.send_signal("w1", "other", b"x")
    taken = [await store.take_signal("w1", "A", "go", step(str(i), None)) for i in (1, 2, 3, 4)]
    assert taken == [("taken", b"1"), ("taken", b"2"), ("taken", b"3"), ("none", None)]
    assert {s.position: s.value for s in await store.history("w1")} == {
        "1": b"1", "2": b"2", "3": b"3"}


async def test_concurrent_takes_get_different_signals(store):
    await running(store, "w1")
    for payload in (b"1", b"2"):
        await store.send_signal("w1", "go", payload)
    taken = await asyncio.gather(*(store.take_signal("w1", "A", "go", step(str(i), None))
                                   for i in (1, 2, 3)))
    assert sorted(taken, key=str) == [("none", None), ("taken", b"1"), ("taken", b"2")]


async def test_take_signal_is_fenced_and_leaves_the_signal(store):
    await running(store, "w1")
    await store.send_signal("w1", "go", b"1")
    assert await store.take_signal("w1", "B", "go", step("1", None)) == ("lost", None)
    assert await store.history("w1") == []
    assert await store.take_signal("w1", "A", "go", step("1", None)) == ("taken", b"1")


async def test_untake_gives_the_signal_back(store):
    await running(store, "w1")
    await store.send_signal("w1", "go", b"1")
    assert await store.take_signal("w1", "A", "go", step("3", None)) == ("taken", b"1")
    await store.untake_signal("w1", "A", "3")
    assert await store.history("w1") == []
    assert await store.take_signal("w1", "A", "go", step("4", None)) == ("taken", b"1")


async def test_a_signal_wakes_a_waiting_workflow(store):
    await waiting(store, "w1", wake_at=1e12)
    assert await store.send_signal("w1", "go", b"1")
    assert (await record(store, "w1")).wake_at == 0
    claimed = await store.claim(ask("W"))
    assert [r.id for r in claimed] == ["w1"]


async def test_signals_to_missing_or_finished_workflows_are_refused(store):
    with pytest.raises(legato.WorkflowNotFound):
        await store.send_signal("missing", "go", b"1")
    await running(store, "done")
    await store.finish("done", "A", "succeeded", b"r", None)
    with pytest.raises(legato.LegatoError, match="already succeeded"):
        await store.send_signal("done", "go", b"1")


async def test_a_send_from_a_workflow_is_recorded_with_it_or_not_at_all(store):
    await running(store, "sender")
    await running(store, "target", owner="B")
    assert await store.send_signal("target", "go", b"1", ("sender", "A", step("1", None)))
    assert [s.position for s in await store.history("sender")] == ["1"]
    assert not await store.send_signal("target", "go", b"2", ("sender", "X", step("2", None)))
    assert await store.take_signal("target", "B", "go", step("1", None)) == ("taken", b"1")
    assert await store.take_signal("target", "B", "go", step("2", None)) == ("none", None)


# -- events, cancel, resume -----------------------------------------------------------


async def test_events_are_fenced_and_overwritten(store):
    await running(store, "w1")
    assert await store.get_event("w1", "k") == (False, None)
    assert await store.set_event("w1", "A", "k", b"1", step("1", None))
    assert await store.set_event("w1", "A", "k", b"2", step("2", None))
    assert not await store.set_event("w1", "B", "k", b"3", step("3", None))
    assert await store.get_event("w1", "k") == (True, b"2")
    assert [s.position for s in await store.history("w1")] == ["1", "2"]


async def test_request_cancel_by_status(store):
    await store.create(new("pending"))
    assert (await store.request_cancel("pending")).status == "cancelled"
    await waiting(store, "waiting", wake_at=1e12)
    got = await store.request_cancel("waiting")
    assert (got.status, got.cancel, got.wake_at) == ("waiting", True, 0)
    await running(store, "done")
    await store.finish("done", "A", "succeeded", b"r", None)
    assert (await store.request_cancel("done")).status == "succeeded"
    with pytest.raises(legato.WorkflowNotFound):
        await store.request_cancel("missing")


def failed(position: str, kind: str = "step") -> StepRecord:
    return StepRecord(position, kind, "s", False, b"e", time.time())


async def positions(store: Store, wid: str) -> list[str]:
    return sorted(s.position for s in await store.history(wid))


async def test_resume_forgets_the_failed_step_that_ended_the_run_only(store):
    await running(store, "w1")
    for record in (failed("1"), step("2"), failed("3")):  # 1 failed and was handled
        assert await store.append("w1", "A", record)
    with pytest.raises(legato.LegatoError, match="is running; resume restarts failed"):
        await store.resume("w1")
    await store.finish("w1", "A", "failed", None, b"boom")  # where it failed is not said
    resumed = await store.resume("w1")
    assert (resumed.status, resumed.error, resumed.owner) == ("pending", None, None)
    assert await positions(store, "w1") == ["1", "2"]
    with pytest.raises(legato.WorkflowNotFound):
        await store.resume("missing")


async def test_resume_leaves_a_succeeded_workflow_and_starts_a_queued_one_now(store):
    await running(store, "done")
    assert await store.finish("done", "A", "succeeded", b"1", None)
    assert (await store.resume("done")).status == "succeeded"
    await store.create(new("later", queue="q", not_before=time.time() + 3600))
    resumed = await store.resume("later")
    assert (resumed.status, resumed.queue, resumed.not_before) == ("pending", None, None)
    assert [r.id for r in await store.claim(ask("W"))
            ] == ["later"]  # claimed now, with no queue declared


async def test_resume_forgets_the_position_finish_names_with_its_retry_attempts(store):
    await running(store, "w1")
    for record in (failed("1"), failed("2.1", "attempt"), step("2.2", kind="sleep"),
                   failed("2.3", "attempt"), failed("2"), step("3")):
        assert await store.append("w1", "A", record)
    # a compensation (3) was recorded after the failure at 2: only finish knows
    await store.finish("w1", "A", "failed", None, b"boom", failed_at="2")
    await store.resume("w1")
    assert await positions(store, "w1") == ["1", "3"]


async def test_resume_forgets_nothing_when_no_record_ended_the_run(store):
    for wid in ("raised", "cancelled"):
        await running(store, wid)
        assert await store.append(wid, "A", failed("1"))
    await store.finish("raised", "A", "failed", None, b"boom", failed_at=None)
    await store.finish("cancelled", "A", "cancelled", None, b"cancelled")
    for wid in ("raised", "cancelled"):
        assert (await store.resume(wid)).status == "pending"
        assert await positions(store, wid) == ["1"]


async def test_waiting_workflows_fall_due_in_claim_order(store):
    # Due at different times, claimed by priority then age once due, like pending ones.
    for wid, priority, wake_at in (("old", 0, 10.0), ("urgent", -9, 30.0), ("late", -5, 90.0)):
        await running(store, wid, priority=priority)
        assert await store.suspend(wid, "A", wake_at)
    assert await store.next_wake(0.0) == 10.0
    assert await store.next_wake(10.0) == 30.0
    claimed = await store.claim(ask("W", durable_now=50.0, limit=1))
    assert [r.id for r in claimed] == ["urgent"]
    assert [r.id for r in await store.claim(ask("W", durable_now=50.0, limit=5))
            ] == ["old"]
    assert await store.next_wake(50.0) == 90.0


async def test_more_fall_due_at_once_than_one_claim_looks_at(store):
    # Past the batch a claim makes ready at once (1,000): every one is claimed, once.
    n = 1_200
    for i in range(n):
        await store.create(new(f"w{i:04}", not_before=5.0))
    assert await store.claim(ask("W", durable_now=4.0, limit=100)) == []
    taken: list[str] = []
    while batch := await store.claim(ask("W", durable_now=5.0, limit=100)):
        taken += [r.id for r in batch]
    assert sorted(taken) == [f"w{i:04}" for i in range(n)]
    assert await store.next_wake(5.0) is None


async def test_calls_cancelled_midway_leave_the_store_usable(store):
    # PostgreSQL: a call cancelled with its query on the wire must not leave the
    # connection it used (the held one, or a pooled one) unfit for the next call.
    await store.create(new("w"))
    for delay in (0, 1, 2, 3, 5):
        calls = [asyncio.ensure_future(store.get("w")) for _ in range(3)]
        for _ in range(delay):
            await asyncio.sleep(0)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        assert (await record(store, "w")).id == "w"
    assert [r.id for r in await store.claim(ask("W", limit=5))
            ] == ["w"]
    assert await store.append("w", "W", step("1"))


async def test_next_wake_and_lease_expiry_when_idle(store):
    assert await store.next_wake() is None
    assert await store.next_lease_expiry() is None


# -- queues ---------------------------------------------------------------------------


def claim_q(s: Store, owner: str, queues: list[QueueLimits], clock_now: float = 0.0,
            limit: int = 100) -> Any:
    return s.claim(ask(owner, durable_now=clock_now, limit=limit, queues=queues))


async def one_by_one(s: Store, limits: QueueLimits) -> list[str]:
    """Ids in the order claims take them (a claim's rows come back in no set order)."""
    taken: list[str] = []
    while batch := await claim_q(s, "W", [limits], limit=1):
        taken += [r.id for r in batch]
    return taken


async def test_queued_workflows_are_claimed_only_through_their_queue(store):
    await store.create(new("q1", queue="q"))
    await store.create(new("plain"))
    assert [r.id for r in await claim_q(store, "W", [])] == ["plain"]
    claimed = await claim_q(store, "W", [QueueLimits("q")])
    assert [(r.id, r.queue) for r in claimed] == [("q1", "q")]


async def test_queue_concurrency_holds_between_concurrent_claimers(store, other):
    for i in range(20):
        await store.create(new(f"w{i:02}", queue="q"))
    limits = [QueueLimits("q", concurrency=3, worker_concurrency=2)]
    for _ in range(3):
        await asyncio.gather(*(claim_q(s, owner, limits, limit=2)
                               for s, owner in ((store, "A"), (other, "B"), (store, "C"))))
    running_now = await store.list(status="running", name=None, limit=100)
    assert len(running_now) == 3
    assert max(Counter(r.owner for r in running_now).values()) <= 2


async def test_queue_priority_then_fifo(store):
    for wid, priority in (("late", 5), ("first", 0), ("late2", 5), ("next", 1)):
        await store.create(new(wid, queue="q", priority=priority))
    assert await one_by_one(store, QueueLimits("q")) == ["first", "next", "late", "late2"]


async def test_priority_is_a_32_bit_integer_on_every_store(store):
    for wid, priority in (("last", PRIORITY_MAX), ("first", PRIORITY_MIN)):
        await store.create(new(wid, queue="q", priority=priority))
        assert (await record(store, wid)).priority == priority
    for wrong in (PRIORITY_MAX + 1, PRIORITY_MIN - 1, 2**63):
        with pytest.raises(ValueError, match=r"priority=.*-2147483648 to 2147483647"):
            await store.create(new("wrong", queue="q", priority=wrong))
    assert await store.get("wrong") is None
    assert await one_by_one(store, QueueLimits("q")) == ["first", "last"]


async def test_key_concurrency_caps_each_key_and_takes_the_least_busy_key_first(store):
    for i in range(6):
        await store.create(new(f"big{i}", queue="q", key="big"))
    for i in range(2):
        await store.create(new(f"small{i}", queue="q", key="small"))
    await store.create(new("keyless", queue="q"))
    limits = QueueLimits("q", key_concurrency=2)
    first = await claim_q(store, "W", [limits], limit=3)
    # each key's first in line before any key's second, oldest first among them
    assert [r.id for r in first] == ["big0", "small0", "keyless"]
    assert first[0].key == "big"
    second = await claim_q(store, "W", [limits])
    assert sorted(r.id for r in second) == ["big1", "small1"]  # then each key is full
    assert await claim_q(store, "W", [limits]) == []
    await store.finish("big0", "W", "succeeded", b"1", None)
    assert [r.id for r in await claim_q(store, "W", [limits])] == ["big2"]


async def test_keys_are_served_round_robin(store):
    for key in "abc":
        for i in range(3):
            await store.create(new(f"{key}{i}", queue="q", key=key))
    taken = await one_by_one(store, QueueLimits("q", key_concurrency=5))
    assert taken == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


async def test_key_rate_is_a_sliding_window_of_durable_time_per_key(store):
    for i in range(4):
        await store.create(new(f"a{i}", queue="q", key="a"))
    await store.create(new("b0", queue="q", key="b"))
    limits = [QueueLimits("q", key_rate=(2, 10.0))]
    assert sorted(r.id for r in await claim_q(store, "W", limits, clock_now=0.0)) == [
        "a0", "a1", "b0"]
    assert await claim_q(store, "W", limits, clock_now=5.0) == []
    assert await store.next_wake(5.0, limits) == 10.0
    await store.create(new("b1", queue="q", key="b"))  # b's window has room
    assert [r.id for r in await claim_q(store, "W", limits, clock_now=6.0)] == ["b1"]
    assert sorted(r.id for r in await claim_q(store, "W", limits, clock_now=10.0)) == [
        "a2", "a3"]


async def test_a_key_whose_window_is_full_stays_closed_when_it_gets_more_work(store):
    await store.create(new("a0", queue="q", key="a"))
    limits = [QueueLimits("q", key_rate=(1, 10.0))]
    assert [r.id for r in await claim_q(store, "W", limits, clock_now=0.0)] == ["a0"]
    await store.create(new("a1", queue="q", key="a"))  # the key had nothing ready meanwhile
    assert await claim_q(store, "W", limits, clock_now=5.0) == []
    assert await store.next_wake(5.0, limits) == 10.0
    assert [r.id for r in await claim_q(store, "W", limits, clock_now=10.0)] == ["a1"]


async def test_two_workers_claiming_at_once_keep_each_keys_limit_and_rate(store, other):
    for i in range(40):
        await store.create(new(f"w{i}", queue="q", key=f"k{i % 4}"))
    limits = [QueueLimits("q", key_concurrency=3, key_rate=(5, 100.0))]
    taken: list[Any] = []
    for round_ in range(4):  # each round, both claim at once, with what finished freed
        batches = await asyncio.gather(*(claim_q(s, f"W{n}", limits, clock_now=float(round_))
                                         for n, s in enumerate((store, other))))
        running_now = [r for batch in batches for r in batch]
        assert max(Counter(r.key for r in running_now).values(), default=0) <= 3
        taken += running_now
        for r in running_now:
            await store.finish(r.id, r.owner, "succeeded", b"1", None)
    assert Counter(r.key for r in taken) == {f"k{i}": 5 for i in range(4)}  # 5 per window


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("postgresql"):
        base, schema = url.rsplit("?schema=", 1)
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'SET search_path TO "{schema}"')
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    with sqlite3.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def test_the_keys_in_line_are_counted_through_every_change(url, store):
    """queue_keys, kept by triggers, matches a recount after creates, claims, waits, ends."""
    for i in range(4):
        await store.create(new(f"a{i}", queue="q", key="a"))
        await store.create(new(f"b{i}", queue="q", key="b", not_before=50.0))
    await store.create(new("c0", queue="r", key="c"))
    limits = QueueLimits("q", key_concurrency=3)
    taken = [r.id for r in await claim_q(store, "W", [limits], limit=2, clock_now=0.0)]
    assert await store.suspend(taken[0], "W", 20.0)
    await store.finish(taken[1], "W", "succeeded", b"1", None)
    await store.request_cancel("a3")
    assert await claim_q(store, "W", [], clock_now=60.0) == []  # b's and the waiting one fall due
    counted = await _rows(url, "SELECT queue, key, pending, waiting FROM queue_keys"
                               " WHERE pending > 0 OR waiting > 0 ORDER BY queue, key")
    recount = await _rows(url, """
        SELECT queue, key, sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
               sum(CASE WHEN status = 'waiting' THEN 1 ELSE 0 END) FROM workflows
        WHERE ready AND key IS NOT NULL AND queue IS NOT NULL
        AND status IN ('pending', 'waiting') GROUP BY queue, key ORDER BY queue, key""")
    assert counted == recount
    assert counted == [("q", "a", 1, 1), ("q", "b", 4, 0), ("r", "c", 1, 0)]


async def test_queue_without_priority_is_fifo(store):
    for wid, priority in (("a", 0), ("b", 5), ("c", 1)):
        await store.create(new(wid, queue="q", priority=priority))
    assert await one_by_one(store, QueueLimits("q", priority=False)) == ["a", "b", "c"]


async def test_queue_rate_is_a_sliding_window_of_durable_time(store):
    for i in range(5):
        await store.create(new(f"w{i}", queue="q"))
    limits = [QueueLimits("q", rate=(2, 10.0))]
    assert len(await claim_q(store, "W", limits, clock_now=0.0)) == 2
    assert await claim_q(store, "W", limits, clock_now=5.0) == []
    assert await store.next_wake(5.0, limits) == 10.0
    assert len(await claim_q(store, "W", limits, clock_now=10.0)) == 2


async def test_a_delayed_workflow_waits_for_its_durable_time(store):
    await store.create(new("later", not_before=50.0))
    assert await store.next_wake(0.0) == 50.0
    assert await claim_q(store, "W", [], clock_now=49.0) == []
    assert [r.id for r in await claim_q(store, "W", [], clock_now=50.0)] == ["later"]


async def test_dedup_key_is_held_until_its_workflow_finishes(store):
    await running(store, "first", queue="q", dedup_key="k")
    with pytest.raises(DuplicateWorkflow) as caught:
        await store.create(new("second", queue="q", dedup_key="k"))
    assert caught.value.existing_id == "first"
    assert await store.create(new("elsewhere", queue="r", dedup_key="k")) is None
    await store.finish("first", "A", "succeeded", b"r", None)
    assert await store.create(new("second", queue="q", dedup_key="k")) is None


# -- schema -------------------------------------------------------------------------


async def _bump_schema(url: str) -> None:
    if url.startswith("postgresql"):
        base, schema = url.rsplit("?schema=", 1)
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'INSERT INTO "{schema}".legato_schema SELECT max(version) + 1'
                               f' FROM "{schema}".legato_schema')
        finally:
            await conn.close()
    else:
        with sqlite3.connect(url) as conn:
            conn.execute("INSERT INTO legato_schema SELECT max(version) + 1 FROM legato_schema")


async def _sql(url: str, *statements: str) -> None:
    if url.startswith("postgresql"):
        base, schema = url.rsplit("?schema=", 1)
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'SET search_path TO "{schema}"')
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()
    else:
        with sqlite3.connect(url) as conn:
            for statement in statements:
                conn.execute(statement)


# What the "due" migration (SQLite 5, PostgreSQL 4) adds, undone.
_UNDO_DEBOUNCE = (
    "DROP INDEX workflows_debounce", "ALTER TABLE workflows DROP COLUMN debounce_key",
    "ALTER TABLE workflows DROP COLUMN debounce_run",
    "ALTER TABLE workflows DROP COLUMN debounce_until")
# What the "queue keys" migration (SQLite 14, PostgreSQL 13) adds, undone.
def _undo_queue_keys(url: str) -> tuple[str, ...]:
    pg = url.startswith("postgresql")
    ops = ("insert", "update", "delete") if pg else ("insert", "leave", "join", "delete")
    return (*(f"DROP TRIGGER queue_keys_on_{op}{' ON workflows' if pg else ''}" for op in ops),
            *(["DROP FUNCTION queue_keys_count()"] if pg else []),
            "DROP TABLE queue_keys", "DROP TABLE key_starts", "DROP INDEX workflows_running_keyed")
_UNDO_DUE = (
    "DROP INDEX workflows_due", "DROP INDEX workflows_ready", "DROP INDEX workflows_ready_queued",
    "DROP INDEX workflows_ready_fifo", "ALTER TABLE workflows DROP COLUMN due_at",
    "ALTER TABLE workflows DROP COLUMN ready",
    "CREATE INDEX workflows_by_wake ON workflows (wake_at) WHERE status = 'waiting'",
    "CREATE INDEX workflows_delayed ON workflows (not_before)"
    " WHERE status = 'pending' AND not_before IS NOT NULL")


async def test_a_version_1_schema_is_migrated_and_its_rows_get_a_run_id(url):
    s = open_store(url)
    await s.open()
    await s.create(new("kept"))
    await s.close()
    await _sql(url, "DROP TABLE streams", "DROP TABLE updates",  # streams and updates
               "DROP TABLE IF EXISTS stream_heads", *_UNDO_DEBOUNCE, *_undo_queue_keys(url),
               "DROP INDEX workflows_ready_keyed",
               "ALTER TABLE workflows DROP COLUMN key",
               "ALTER TABLE workflows DROP COLUMN recoveries", "DROP TABLE schedules",
               "DROP TABLE workers", "DROP TABLE previous_steps",
               "ALTER TABLE workflows DROP COLUMN previous_run_id", *_UNDO_DUE,
               "ALTER TABLE workflows DROP COLUMN run_id",
               "DROP TABLE IF EXISTS news", "ALTER TABLE workflows DROP COLUMN failed_at",
               "DELETE FROM legato_schema WHERE version > 1")
    s = open_store(url)
    await s.open()
    try:
        record = await s.get("kept")
        assert record is not None and record.status == "pending"
        assert len(record.run_id) == 32
        # claimable after the migration that indexes what is due
        claimed = await s.claim(ask("w", lease_until=1e12, real_now=0.0))
        assert [r.id for r in claimed] == ["kept"]
        await s.create(new("fresh", run_id="r1"))
        fresh = await s.get("fresh")
        assert fresh is not None and fresh.run_id == "r1"
    finally:
        await s.close()


async def test_a_newer_schema_is_refused(url):
    s = open_store(url)
    await s.open()
    await s.create(new("kept"))
    await s.close()
    await _bump_schema(url)
    with pytest.raises(legato.SchemaVersionError, match="upgrade legato"):
        await open_store(url).open()
    s = open_store(url)
    with pytest.raises(legato.SchemaVersionError):
        await s.open()


async def test_workers_opening_at_once_migrate_once(url):
    stores = [open_store(url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    for s in stores:
        await s.close()
    if url.startswith("postgresql"):
        base, schema = url.rsplit("?schema=", 1)
        conn = await asyncpg.connect(base)
        try:
            count = await conn.fetchval(f'SELECT count(*) FROM "{schema}".legato_schema')
        finally:
            await conn.close()
    else:
        with sqlite3.connect(url) as c:
            count = c.execute("SELECT count(*) FROM legato_schema").fetchone()[0]
    # one row per migration, each run once
    assert count == (PG_VERSION if url.startswith("postgresql") else SQLITE_VERSION)


# -- the engine on each store ----------------------------------------------------------

calls: Counter[str] = Counter()


@legato.step
async def count(name: str) -> str:
    calls[name] += 1
    return name


@legato.workflow(name="contract-e2e")
async def approval(key: str) -> dict[str, Any]:
    first = [await count(f"{key}:{i}") for i in range(3)]
    await legato.sleep("7d")
    answer = await legato.wait_for_signal("approve")
    return {"steps": first, "answer": answer, "after": await count(f"{key}:after")}


async def test_a_workflow_runs_sleeps_waits_and_replays_across_runtimes(url):
    calls.clear()
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(url, clock=clock, suspend_after=0.0) as rt:
        handle = await rt.start(approval, "k", id="e2e")
        await eventually(status_is(handle, "waiting"))  # unloaded: asleep, or awaiting
    async with legato.Runtime(url, clock=clock) as rt:  # a new process, as far as it knows
        await rt.signal("e2e", "approve", {"by": "ana"})
        result = await rt.handle("e2e").result(timeout=10)
        info = await rt.get("e2e")
    assert result == {"steps": ["k:0", "k:1", "k:2"], "answer": {"by": "ana"}, "after": "k:after"}
    assert clock.now() >= 7 * 86400
    assert set(calls.values()) == {1}  # every step ran exactly once, replay or not
    assert [s.kind for s in info.steps] == ["step"] * 3 + ["sleep", "signal", "step"]


async def test_two_workers_share_the_work_each_step_once(url):
    calls.clear()
    async with legato.Runtime(url, worker=False) as client:
        handles = [await client.start(steps_only, f"s{i}", id=f"s{i}") for i in range(20)]
        async with legato.Runtime(url, concurrency=5), legato.Runtime(url, concurrency=5):
            results = [await h.result(timeout=20) for h in handles]
            infos = [await client.get(h.id) for h in handles]
    assert results == [[f"s{i}:{j}" for j in range(3)] for i in range(20)]
    assert len(calls) == 60 and set(calls.values()) == {1}
    assert all(len(info.steps) == 3 for info in infos)


@legato.workflow(name="contract-steps-only")
async def steps_only(key: str) -> list[str]:
    return [await count(f"{key}:{j}") for j in range(3)]


class Declined(Exception):
    pass


@legato.step
def charge(ran: str, card: str) -> str:
    with open(ran, "a") as f:
        f.write(f"charge {card}\n")
    if card == "declined":
        raise Declined(card)
    return card


@legato.step
def ship(ran: str, broken: str) -> str:
    with open(ran, "a") as f:
        f.write("ship\n")
    if os.path.exists(broken):
        raise RuntimeError("the warehouse is down")
    return "shipped"


@legato.workflow(name="contract-checkout")
async def checkout(ran: str, broken: str) -> list[str]:
    try:
        paid = await charge(ran, "declined")
    except Declined:
        paid = await charge(ran, "backup")
    return [paid, await ship(ran, broken)]


async def test_resume_runs_the_failed_step_again_but_not_a_handled_failure(url, tmp_path):
    ran, broken = tmp_path / "ran.log", tmp_path / "warehouse-down"
    broken.touch()
    async with legato.Runtime(url) as rt:
        handle = await rt.start(checkout, str(ran), str(broken), id="order")
        with pytest.raises(RuntimeError, match="warehouse"):
            await handle.result(timeout=10)
        broken.unlink()  # the cause is fixed
        await rt.resume("order")
        assert await rt.handle("order").result(timeout=10) == ["backup", "shipped"]
    assert ran.read_text().splitlines() == [
        "charge declined", "charge backup", "ship", "ship"]


# -- PostgreSQL only -------------------------------------------------------------------

postgres_only = pytest.mark.parametrize("db", ["postgres"], indirect=True)


@postgres_only
async def test_news_arrives_by_notify_from_other_processes(url, store, other):
    await store.follow_ends(True)  # finishes too
    assert await store.wait_for_news(0.01) == []  # type: ignore[attr-defined]
    await other.create(new("w1"))
    await running(other, "w2", owner="B")
    await other.send_signal("w2", "go", b"1")
    assert await other.suspend("w2", "B", 100.0, signal="go")  # arrived: due at once
    await running(other, "w3", owner="B")
    assert await other.suspend("w3", "B", 100.0)
    await running(other, "w4", owner="B")
    await other.finish("w4", "B", "succeeded", b"r", None)
    heard: list[tuple[str, str]] = []
    while len(heard) < 5:
        got = await store.wait_for_news(5.0)  # type: ignore[attr-defined]
        assert got, f"no news within 5 s; heard {heard}"
        heard += got
    assert heard == [("pending", "w1"), ("signal", "w2"), ("wake", "w2"), ("timer", "w3"),
                     ("finish", "w4")]


@postgres_only
async def test_finishes_and_events_are_news_only_for_processes_that_follow_them(store, other):
    # every LISTENing process is sent every notification: a finish sent to all
    # woke every worker, though only a process awaiting a result uses it
    async def finished(wid: str, **kw: Any) -> None:
        await running(other, wid, owner="B", **kw)
        assert await other.finish(wid, "B", "succeeded", b"r", None)

    async def heard() -> list[tuple[str, str]]:
        got = await store.wait_for_news(0.2)  # type: ignore[attr-defined]
        return [n for n in got if n[0] in ("finish", "event")]

    await finished("unfollowed")
    await finished("queued", queue="q")  # frees a slot of its queue: news for every worker
    assert await heard() == [("finish", "queued")]
    await store.follow_ends(True)
    await finished("followed")
    await running(other, "publisher", owner="B")
    assert await other.set_event("publisher", "B", "k", b"v", None)
    assert await heard() == [("finish", "followed"), ("event", "publisher")]
    await store.follow_ends(False)
    await finished("unfollowed-again")
    assert await heard() == []


@postgres_only
async def test_a_claim_announces_the_due_workflows_it_leaves_ready(url, store, other):
    for i in range(3):
        await other.create(new(f"d{i}", not_before=10.0))
    while await store.wait_for_news(0.01):  # type: ignore[attr-defined]
        pass  # the creates' own news
    claimed = await other.claim(ask("A", durable_now=20.0, limit=1))
    assert len(claimed) == 1  # the other two are ready now: a worker that found them
    # locked by this claim, and slept, must hear of them
    assert await store.wait_for_news(5.0) == [("pending", "")]  # type: ignore[attr-defined]
    assert len(await store.claim(ask("B", durable_now=20.0))) == 2
    assert await other.claim(ask("A", durable_now=20.0)) == []
    assert await store.wait_for_news(0.05) == []  # type: ignore[attr-defined]


@postgres_only
async def test_a_renewal_does_not_hold_free_rows_while_it_waits_for_a_busy_one(url, store):
    # A renewal that locked its rows one by one held every row before the one it
    # waited on (a checkpoint being written): the finishes and checkpoints of those
    # rows queued behind it. Free rows are renewed at once; the busy one after.
    await running(store, "a", lease=time.time() + 60)
    await running(store, "b", lease=time.time() + 60)
    base, schema = url.rsplit("?schema=", 1)
    writing = await asyncpg.connect(base)  # as a checkpoint of "a" in flight holds it
    try:
        await writing.execute(f'SET search_path TO "{schema}"')
        await writing.execute("BEGIN")
        await writing.execute("SELECT 1 FROM workflows WHERE id = 'a' FOR SHARE")
        later = time.time() + 5000
        renewal = asyncio.ensure_future(store.heartbeat([("a", "A"), ("b", "A")], later))

        async def b_renewed() -> bool:
            return (await record(store, "b")).lease_until >= later

        await eventually(b_renewed)
        assert not renewal.done()  # "a" is still being written: its renewal waits
        assert (await record(store, "a")).lease_until < later
        await writing.execute("COMMIT")
    finally:
        await writing.close()
    assert await renewal == Renewal(frozenset({"a", "b"}), ())
    assert (await record(store, "a")).lease_until >= later


def test_postgres_urls():
    from legato.store._postgres import PostgresStore, parse_postgres_url

    assert parse_postgres_url("postgresql://u@h/db") == ("postgresql://u@h/db", "legato")
    assert parse_postgres_url("postgres://u@h:5/db?ssl=require&schema=s1") == (
        "postgres://u@h:5/db?ssl=require", "s1")
    with pytest.raises(ValueError, match="plain PostgreSQL name"):
        parse_postgres_url('postgresql://h/db?schema=x";drop')
    store = open_store("postgresql://u@h/db")
    assert isinstance(store, PostgresStore)
    assert repr(store) == "PostgresStore('postgresql://u@h/db')"
    assert repr(open_store("postgresql://u:secret@h/db")) == "PostgresStore('postgresql://u:***@h/db')"


async def test_an_unreachable_server_is_a_store_error():
    store = open_store("postgresql://postgres:secret@127.0.0.1:1/test")
    with pytest.raises(legato.StoreError, match="could not reach PostgreSQL") as caught:
        await store.open()
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(legato.StoreError, match="not open"):
        await store.get("w1")
