"""Waiting durably: sleep, signals, events, children, cancellation, resume, deadlines."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import legato
from polling import eventually, status_is

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@legato.step
async def notify(message: str) -> str:
    calls[message] += 1
    return message


@legato.workflow(name="scheduled")
async def scheduled(notification_id: str) -> list[str]:
    """The seed's 24h / 7d notification workflow."""
    sent = [await notify(f"{notification_id}: starting")]
    await legato.sleep("24h")
    sent.append(await notify(f"{notification_id}: check-in"))
    await legato.sleep("7d")
    sent.append(await notify(f"{notification_id}: complete"))
    return sent


async def test_a_week_of_durable_sleep_passes_at_once_in_virtual_time(db):
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.run(scheduled, "n1", id="n1")
        info = await rt.get("n1")
    assert result == ["n1: starting", "n1: check-in", "n1: complete"]
    assert clock.now() == pytest.approx(86400 + 7 * 86400)
    assert [s.kind for s in info.steps] == ["step", "sleep", "step", "sleep", "step"]


async def test_a_long_sleep_unloads_the_workflow_and_wakes_it_on_time(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(scheduled, "n2", id="n2")
        await eventually(status_is(handle, "waiting"))
        # no task held (it ends just after the status is written)
        await eventually(lambda: "n2" not in rt._worker.tasks)  # type: ignore[union-attr]
        assert calls == {"n2: starting": 1}
        await clock.advance(86400)
        await eventually(lambda: calls["n2: check-in"] > 0)
        # the second sleep is recorded (and the workflow unloaded) before time moves
        await eventually(status_is(handle, "waiting"))
        await clock.advance(7 * 86400)
        assert await handle.result(timeout=5) == ["n2: starting", "n2: check-in", "n2: complete"]
    assert set(calls.values()) == {1}


async def test_a_sleep_replayed_after_a_restart_waits_only_what_is_left(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(scheduled, "n3", id="n3")
        await eventually(status_is(handle, "waiting"))
    clock2 = legato.VirtualClock(start=86400 - 1, autojump=False)  # a day later, minus 1 s
    async with legato.Runtime(db, clock=clock2) as rt:
        await asyncio.sleep(0.05)
        assert calls["n3: check-in"] == 0
        await clock2.advance(1)
        await eventually(lambda: calls["n3: check-in"] > 0)
    assert calls == {"n3: starting": 1, "n3: check-in": 1}


@legato.workflow(name="approval")
async def approval_workflow(request: str) -> dict[str, object]:
    """The seed's human-in-the-loop approval."""
    await notify(f"please approve {request}")
    approval = await legato.wait_for_signal("approval")
    if approval["approved"]:
        await notify(f"executing {request}")
        return {"status": "approved", "by": approval["approver"]}
    return {"status": "rejected", "reason": approval["reason"]}


async def test_a_signal_wakes_a_waiting_workflow(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(approval_workflow, "r1", id="r1")
        await eventually(status_is(handle, "waiting"))
        await handle.signal("approval", {"approved": True, "approver": "admin@example.com"})
        assert await handle.result(timeout=5) == {"status": "approved", "by": "admin@example.com"}


async def test_signals_sent_early_are_buffered_and_consumed_in_order(db):
    @legato.workflow(name="collector")
    async def collector() -> list[object]:
        await notify("ready")
        return [await legato.wait_for_signal("item") for _ in range(3)]

    async with legato.Runtime(db, worker=False) as client:
        await client.start(collector, id="col")
        for i in range(3):
            await client.signal("col", "item", i)
    async with legato.Runtime(db) as rt:  # no worker ran while the signals came
        assert await rt.handle("col").result(timeout=5) == [0, 1, 2]


async def test_signalling_unknown_or_finished_workflows_fails_clearly(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.WorkflowNotFound):
            await rt.signal("nobody", "approval", 1)
        handle = await rt.start(approval_workflow, "r2", id="r2")
        await handle.signal("approval", {"approved": False, "reason": "no"})
        await handle.result(timeout=5)
        with pytest.raises(legato.LegatoError, match="already succeeded"):
            await handle.signal("approval", {"approved": True})
        with pytest.raises(legato.SerializationError, match="payload of signal"):
            await rt.signal("r2", "approval", object())


@legato.workflow(name="approval_timeout")
async def approval_with_timeout(request: str) -> str:
    approval = await legato.wait_for_signal("approval", timeout="48h")
    return "timed out" if approval is None else f"approved by {approval}"


async def test_wait_for_signal_times_out_in_durable_time(db):
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(approval_with_timeout, "r3", id="r3") == "timed out"
    assert clock.now() == pytest.approx(48 * 3600)


async def test_wait_for_signal_returns_the_signal_before_the_timeout(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(approval_with_timeout, "r4", id="r4")
        await eventually(status_is(handle, "waiting"))
        await clock.advance(47 * 3600)
        await rt.signal("r4", "approval", "ana")
        assert await handle.result(timeout=5) == "approved by ana"


@legato.workflow(name="approval_select")
async def approval_select(request: str) -> str:
    choice = await legato.select(approval=legato.wait_for_signal("approval"), timeout="48h")
    return "timed out" if choice.name == "timeout" else f"approved by {choice.value}"


async def test_approval_with_select_and_a_timeout_both_ways(sqlite_db):
    # SQLite only: the autojumping clock jumps whenever the loop is idle, and a
    # loop waiting on PostgreSQL's socket (rt.signal in flight) looks idle, so
    # there the 48 h timeout fires before the signal lands. SQLite commits
    # inline on the loop, which never looks idle mid-write.
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(sqlite_db, clock=clock) as rt:
        assert await rt.run(approval_select, "r5", id="r5") == "timed out"
        handle = await rt.start(approval_select, "r6", id="r6")
        await rt.signal("r6", "approval", "bo")
        assert await handle.result(timeout=5) == "approved by bo"


async def test_events_publish_progress(db):
    go = asyncio.Event()

    @legato.step
    async def work() -> None:
        await go.wait()

    @legato.workflow(name="progress")
    async def progress() -> str:
        await legato.set_event("progress", {"done": 1})
        await work()
        await legato.set_event("progress", {"done": 2})
        return "ok"

    async with legato.Runtime(db) as rt:
        handle = await rt.start(progress, id="p")
        assert await handle.get_event("progress", timeout=5) == {"done": 1}
        assert await handle.get_event("missing", timeout=0.05) is None
        go.set()
        await handle.result(timeout=5)
        assert await handle.get_event("progress") == {"done": 2}
        assert await handle.get_event("missing") is None  # finished: no wait


@legato.step
async def authorize_payment(customer: str, amount: int) -> dict[str, str]:
    calls["authorize"] += 1
    return {"auth_id": f"auth-{customer}-{amount}"}


@legato.step
async def capture_payment(auth_id: str) -> dict[str, str]:
    calls["capture"] += 1
    if auth_id.endswith("-0"):
        raise ValueError("nothing to capture")
    return {"id": f"cap-{auth_id}"}


@legato.workflow(name="payment")
async def payment_workflow(order_id: str, customer: str, amount: int) -> dict[str, str]:
    authorization = await authorize_payment(customer, amount)
    capture = await capture_payment(authorization["auth_id"])
    return {"payment_id": capture["id"], "status": "captured"}


@legato.workflow(name="order")
async def order_workflow(order: dict[str, object]) -> dict[str, object]:
    await notify(f"validate {order['id']}")
    payment = await payment_workflow(order["id"], order["customer"], order["total"])
    await notify(f"fulfil {order['id']}")
    return {"order_id": order["id"], "payment": payment}


async def test_a_sub_workflow_runs_as_a_child_with_a_derived_id(db):
    async with legato.Runtime(db) as rt:
        result = await rt.run(order_workflow, {"id": "o1", "customer": "c", "total": 5}, id="o1")
        child = await rt.get("o1/2")
        parent = await rt.get("o1")
        again = await rt.run(order_workflow, {"id": "o1", "customer": "c", "total": 5}, id="o1")
    assert result == again == {
        "order_id": "o1", "payment": {"payment_id": "cap-auth-c-5", "status": "captured"}}
    assert child.name == "payment" and child.status == "succeeded"
    assert [s.kind for s in parent.steps] == ["step", "child", "step"]
    assert calls["authorize"] == 1


async def test_a_failing_child_raises_its_error_in_the_parent(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="nothing to capture"):
            await rt.run(order_workflow, {"id": "o2", "customer": "c", "total": 0}, id="o2")
        assert (await rt.get("o2/2")).status == "failed"


async def test_start_child_fires_now_and_awaits_later(db):
    @legato.workflow(name="fire_and_wait")
    async def fire_and_wait() -> list[object]:
        child = await legato.start_child(payment_workflow, "o3", "d", 7, id="pay-o3")
        note = await notify("meanwhile")
        return [child.id, note, await child.result()]

    async with legato.Runtime(db) as rt:
        result = await rt.run(fire_and_wait, id="fw")
    assert result == ["pay-o3", "meanwhile", {"payment_id": "cap-auth-d-7", "status": "captured"}]


async def test_cancel_a_running_workflow_runs_its_finally(db):
    started = asyncio.Event()

    @legato.step
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @legato.workflow(name="cancellable")
    async def cancellable() -> None:
        try:
            await forever()
        finally:
            await notify("cleaned up")

    async with legato.Runtime(db) as rt:
        handle = await rt.start(cancellable, id="cx")
        await started.wait()
        await handle.cancel()
        with pytest.raises(legato.WorkflowCancelled, match="'cx' was cancelled"):
            await handle.result(timeout=5)
        assert await handle.status() == "cancelled"
    assert calls == {"cleaned up": 1}


async def test_cancel_a_waiting_workflow_and_its_children(db):
    @legato.workflow(name="sleepy_child")
    async def sleepy_child() -> None:
        await legato.sleep("30d")

    @legato.workflow(name="sleepy_parent")
    async def sleepy_parent() -> None:
        try:
            await sleepy_child()
        finally:
            await notify("parent cleaned up")

    async with legato.Runtime(db) as rt:
        handle = await rt.start(sleepy_parent, id="sp")
        await eventually(status_is(handle, "waiting"))
        await eventually(status_is(rt.handle("sp/1"), "waiting"))
        await handle.cancel()
        with pytest.raises(legato.WorkflowCancelled):
            await handle.result(timeout=5)
        child = rt.handle("sp/1")
        with pytest.raises(legato.WorkflowCancelled):
            await child.result(timeout=5)
    assert calls == {"parent cleaned up": 1}


async def test_cancel_a_pending_workflow(db):
    async with legato.Runtime(db, worker=False) as client:
        handle = await client.start(scheduled, "never", id="never")
        await client.cancel("never")
        assert await handle.status() == "cancelled"
    assert calls == {}


async def test_resume_a_failed_workflow_from_its_last_checkpoint(db):
    broken = {"yes": True}

    @legato.step
    async def flaky() -> str:
        calls["flaky"] += 1
        if broken["yes"]:
            raise ConnectionError("service down")
        return "up"

    @legato.workflow(name="resumable")
    async def resumable() -> list[str]:
        return [await notify("before"), await flaky()]

    async with legato.Runtime(db) as rt:
        with pytest.raises(ConnectionError):
            await rt.run(resumable, id="res")
        first_run = (await rt.get("res")).run_id
        broken["yes"] = False
        handle = await rt.resume("res")
        assert await handle.result(timeout=5) == ["before", "up"]
        assert await (await rt.resume("res")).result() == ["before", "up"]  # done: as it is
        second_run = (await handle.info()).run_id
    assert calls == {"before": 1, "flaky": 2}
    # Beluga's (workflow id, run id): the id names the workflow, a run id each run of it
    assert len(first_run) == len(second_run) == 32 and first_run != second_run


async def test_a_workflow_deadline_cancels_it_in_durable_time(db):
    @legato.workflow(name="too_slow", timeout="1h")
    async def too_slow() -> None:
        await legato.sleep("2h")

    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        with pytest.raises(legato.WorkflowCancelled, match="deadline"):
            await rt.run(too_slow, id="slow")
        assert clock.now() == pytest.approx(3600)
        with pytest.raises(legato.WorkflowCancelled, match="deadline"):
            await rt.run(scheduled, "x", id="slow2", timeout="1d")
    assert clock.now() == pytest.approx(3600 + 86400)


async def test_a_long_wait_between_retries_unloads_the_workflow(db):
    @legato.step(retry=legato.Retry(attempts=2, initial="1h", jitter=0))
    async def flaky_once() -> str:
        calls["flaky_once"] += 1
        if calls["flaky_once"] == 1:
            raise ConnectionError("try later")
        return "ok"

    @legato.workflow(name="patient")
    async def patient() -> str:
        return await flaky_once()

    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(patient, id="patient")
        await eventually(status_is(handle, "waiting"))
        await eventually(lambda: "patient" not in rt._worker.tasks)  # type: ignore[union-attr]
        await clock.advance(3600)
        assert await handle.result(timeout=5) == "ok"
    assert calls["flaky_once"] == 2


async def test_a_workflow_signals_another_once_even_when_replayed(db):
    gate, entered = asyncio.Event(), asyncio.Event()

    @legato.step
    async def hold() -> None:
        entered.set()
        await gate.wait()

    @legato.workflow(name="sender")
    async def sender() -> str:
        await legato.signal("receiver", "hello", "from sender")
        await hold()
        return "sent"

    @legato.workflow(name="receiver")
    async def receiver() -> list[object]:
        first = await legato.wait_for_signal("hello")
        second = await legato.wait_for_signal("hello", timeout="1s")
        return [first, second]

    async with legato.Runtime(db) as rt:
        await rt.start(receiver, id="receiver")
        await rt.start(sender, id="sender")
        await entered.wait()
    gate.set()  # the sender replays: its signal must not be sent twice
    async with legato.Runtime(db) as rt:
        assert await rt.handle("sender").result(timeout=5) == "sent"
        assert await rt.handle("receiver").result(timeout=5) == ["from sender", None]
        with pytest.raises(legato.LegatoError, match="outside a workflow"):
            await legato.signal("receiver", "hello")


async def test_a_parent_signals_its_child_through_the_handle(db):
    @legato.workflow(name="waiting_child")
    async def waiting_child() -> object:
        return await legato.wait_for_signal("go")

    @legato.workflow(name="signalling_parent")
    async def signalling_parent() -> object:
        child = await legato.start_child(waiting_child)
        await child.signal("go", 42)
        return await child.result()

    async with legato.Runtime(db) as rt:
        assert await rt.run(signalling_parent, id="sp2") == 42


async def test_legatos_own_tasks_take_no_positions(db):
    """Timers, news waits and child launches inside workflow code are not branches."""
    gate, entered = asyncio.Event(), asyncio.Event()

    @legato.step
    async def hold() -> str:
        entered.set()
        await gate.wait()
        return "held"

    @legato.workflow(name="busy_waits")
    async def busy_waits() -> list[object]:
        both = await asyncio.gather(
            legato.sleep(10, result="slept"),  # in a branch: waits in memory
            legato.wait_for_signal("nobody-sends", timeout=5),
        )
        child = await legato.start_child(scheduled, "c")
        return [*both, await hold(), await child.result()]

    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(busy_waits, id="bw")
        await entered.wait()
        first = [(s.position, s.kind) for s in (await rt.get("bw")).steps]
    gate.set()
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.handle("bw").result(timeout=5)
        steps = [(s.position, s.kind) for s in (await rt.get("bw")).steps]
    assert result[:3] == ["slept", None, "held"]
    assert first == [("1.1", "sleep"), ("2.1", "signal"), ("2.1.1", "deadline"),
                     ("3", "start_child")]
    assert steps[: len(first)] == first and steps[len(first):] == [("4", "step"), ("5", "child")]
