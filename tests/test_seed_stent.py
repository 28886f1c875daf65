"""Every example of the Stent seed ("Orchestration Patterns") as a legato workflow.

Stent's ``@Stent.durable()`` activities are ``@legato.step``s, its orchestrators
``@legato.workflow``s, ``Stent.sleep`` / ``Stent.wait_for_signal`` are
``legato.sleep`` / ``legato.wait_for_signal``, and ``executor.send_signal`` is
``rt.signal``. ``Result`` below is the seed's ``Result.Ok`` / ``Result.Error``.

A "restart" is: start the workflow in one ``Runtime`` while a step is held on
an ``asyncio.Event``, leave that runtime (it releases the lease), open a new
``Runtime`` on the same file and let it finish. ``calls`` counts how often each
step body really ran, so a test can prove that finished steps were replayed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

import legato

calls: Counter[str] = Counter()  # step body runs, by key
holds: set[str] = set()  # keys whose step body waits until the test opens it
entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
opened: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
log: list[str] = []  # side effects in the order they happened (bookings, cancellations)
FLAGS: dict[str, Any] = {}  # "global config" some steps and workflows read


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    holds.clear()
    entered.clear()
    opened.clear()
    log.clear()
    FLAGS.clear()
    FLAGS.update(new_feature=False, succeed_at=1)


async def activity(key: str) -> None:
    """Count a step body's run; wait here if the test holds ``key``."""
    calls[key] += 1
    if key in holds:
        entered[key].set()
        await opened[key].wait()


@dataclass(frozen=True)
class Result:
    """The seed's ``Result[T, E]``."""

    ok: bool
    value: Any = None
    error: Any = None

    @classmethod
    def Ok(cls, value: Any) -> Result:  # the seed's spelling
        return cls(True, value=value)

    @classmethod
    def Error(cls, error: Any) -> Result:
        return cls(False, error=error)


async def start_until_held(
    db: str, wf: Any, *args: Any, id: str, key: str, clock: legato.VirtualClock | None = None
) -> legato.WorkflowInfo:
    """First runtime: run ``wf`` until the step holding ``key`` runs, then leave."""
    holds.add(key)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(wf, *args, id=id)
        await asyncio.wait_for(entered[key].wait(), 5)
        info = await rt.get(id)
    assert info.status == "running"
    return info


async def finish_after_restart(
    db: str, id: str, key: str, clock: legato.VirtualClock | None = None
) -> tuple[Any, legato.WorkflowInfo]:
    """Second runtime on the same file: release ``key`` and wait for the outcome."""
    opened[key].set()
    async with legato.Runtime(db, clock=clock) as rt:
        try:
            outcome: Any = await rt.handle(id).result(timeout=5)
        except Exception as exc:
            outcome = exc
        return outcome, await rt.get(id)


def names(info: legato.WorkflowInfo) -> list[str]:
    return [s.name for s in info.steps]


async def kinds(rt: legato.Runtime, workflow_id: str) -> list[str]:
    return [s.kind for s in (await rt.get(workflow_id)).steps]


async def eventually(read: Callable[[], Awaitable[Any]], expected: Any) -> None:
    """Poll ``read()`` until it gives ``expected`` (for states with no event to wait on)."""
    for _ in range(1000):
        if await read() == expected:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"still {await read()!r}, not {expected!r}, after 5 s")


# == Orchestrators vs activities ===========================================================


@legato.step
async def validate_order(order: dict[str, Any]) -> dict[str, Any]:
    await activity("validate_order")
    if not order.get("items"):
        raise ValueError(f"order {order['id']} has no items")
    return {**order, "total": sum(i["price"] * i["qty"] for i in order["items"])}


@legato.step
async def reserve_inventory(items: list[dict[str, Any]]) -> dict[str, Any]:
    await activity("reserve_inventory")
    return {"reservation": "R-" + "-".join(i["sku"] for i in items)}


@legato.step
async def charge_payment(customer_id: str, amount: int) -> dict[str, Any]:
    await activity("charge_payment")
    log.append(f"charged {customer_id} {amount}")
    return {"transaction_id": f"tx-{customer_id}-{amount}"}


@legato.step
async def confirm_order(order_id: str, transaction_id: str) -> dict[str, Any]:
    await activity("confirm_order")
    return {"order_id": order_id, "transaction_id": transaction_id, "confirmed": True}


@legato.step
async def send_email(to: str, subject: str, body: str) -> bool:
    await activity("send_email")
    log.append(f"mail to {to}: {subject}: {body}")
    return True


@legato.workflow(name="stent_order")
async def order_workflow(order: dict[str, Any]) -> Result:
    validated = await validate_order(order)
    await reserve_inventory(validated["items"])
    payment = await charge_payment(validated["customer_id"], validated["total"])
    confirmation = await confirm_order(order["id"], payment["transaction_id"])
    await send_email(validated["customer_email"], "Order Confirmed",
                     f"Your order {order['id']} is confirmed!")
    return Result.Ok(confirmation)


ORDER = {"id": "o-1", "customer_id": "c-7", "customer_email": "ana@example.com",
         "items": [{"sku": "tea", "price": 4, "qty": 2}, {"sku": "cup", "price": 7, "qty": 1}]}
ACTIVITIES = ["validate_order", "reserve_inventory", "charge_payment", "confirm_order",
              "send_email"]


async def test_order_orchestrator_runs_its_activities_once_in_order(db):
    expected = Result.Ok({"order_id": "o-1", "transaction_id": "tx-c-7-15", "confirmed": True})
    async with legato.Runtime(db) as rt:
        assert await rt.run(order_workflow, ORDER, id="o-1") == expected
        info = await rt.get("o-1")
        # the id is the idempotency key: running it again returns the recorded result
        assert await rt.run(order_workflow, ORDER, id="o-1") == expected
    assert [(s.position, s.name) for s in info.steps] == [
        (str(i), name) for i, name in enumerate(ACTIVITIES, 1)]
    assert calls == dict.fromkeys(ACTIVITIES, 1)
    assert log == ["charged c-7 15", "mail to ana@example.com: Order Confirmed: "
                   "Your order o-1 is confirmed!"]


async def test_order_orchestrator_never_charges_twice_across_a_restart(db):
    info = await start_until_held(db, order_workflow, ORDER, id="o-2", key="confirm_order")
    assert names(info) == ACTIVITIES[:3]  # charged, then stopped while confirming
    outcome, info = await finish_after_restart(db, "o-2", "confirm_order")
    assert outcome.ok and outcome.value["transaction_id"] == "tx-c-7-15"
    assert names(info) == ACTIVITIES
    assert calls == {**dict.fromkeys(ACTIVITIES, 1), "confirm_order": 2}
    assert log.count("charged c-7 15") == 1


async def test_an_invalid_order_fails_the_orchestrator_with_the_activity_error(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="o-3 has no items"):
            await rt.run(order_workflow, {**ORDER, "id": "o-3", "items": []}, id="o-3")
        info = await rt.get("o-3")
    assert info.status == "failed" and info.error == "ValueError: order o-3 has no items"
    assert calls == {"validate_order": 1}


# == Sequential ===================================================================


@legato.step
async def first_step(data: dict[str, int]) -> dict[str, int]:
    await activity("first_step")
    return {"n": data["n"] + 1}


@legato.step
async def second_step(data: dict[str, int]) -> dict[str, int]:
    await activity("second_step")
    return {"n": data["n"] * 10}


@legato.step
async def third_step(data: dict[str, int]) -> dict[str, int]:
    await activity("third_step")
    return {"n": data["n"] - 3}


@legato.workflow(name="stent_sequential")
async def sequential_workflow(data: dict[str, int]) -> dict[str, int]:
    step1_result = await first_step(data)
    step2_result = await second_step(step1_result)
    step3_result = await third_step(step2_result)
    return step3_result


async def test_sequential_steps_feed_each_other_and_resume_mid_way(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(sequential_workflow, {"n": 1}, id="seq-1") == {"n": 17}
        assert [(s.position, s.name) for s in (await rt.get("seq-1")).steps] == [
            ("1", "first_step"), ("2", "second_step"), ("3", "third_step")]
    calls.clear()
    await start_until_held(db, sequential_workflow, {"n": 2}, id="seq-2", key="second_step")
    outcome, _ = await finish_after_restart(db, "seq-2", "second_step")
    assert outcome == {"n": 27}
    assert calls == {"first_step": 1, "second_step": 2, "third_step": 1}


# == Conditional ==================================================================


def _recorder(name: str) -> legato.Step[..., None]:
    async def body(*args: Any) -> None:
        await activity(name)
        log.append(f"{name}{args}")

    body.__name__ = name
    return legato.step(body)


process_express_order = _recorder("process_express_order")
send_express_notification = _recorder("send_express_notification")
process_standard_order = _recorder("process_standard_order")
schedule_delivery = _recorder("schedule_delivery")
add_gift_wrapping = _recorder("add_gift_wrapping")


@legato.workflow(name="stent_conditional")
async def conditional_workflow(order: dict[str, Any]) -> Result:
    if order["type"] == "express":
        await process_express_order(order["id"])
        await send_express_notification(order["customer_id"])
    elif order["type"] == "standard":
        await process_standard_order(order["id"])
        await schedule_delivery(order["id"])
    else:
        return Result.Error(f"Unknown order type: {order['type']}")
    if order.get("gift_wrap"):
        await add_gift_wrapping(order["id"])
    return Result.Ok("Order processed")


@pytest.mark.parametrize(("kind", "gift_wrap", "expected", "steps"), [
    ("express", False, Result.Ok("Order processed"),
     ["process_express_order", "send_express_notification"]),
    ("express", True, Result.Ok("Order processed"),
     ["process_express_order", "send_express_notification", "add_gift_wrapping"]),
    ("standard", False, Result.Ok("Order processed"),
     ["process_standard_order", "schedule_delivery"]),
    ("standard", True, Result.Ok("Order processed"),
     ["process_standard_order", "schedule_delivery", "add_gift_wrapping"]),
    ("drone", True, Result.Error("Unknown order type: drone"), []),
])
async def test_conditional_paths(db, kind, gift_wrap, expected, steps):
    order = {"id": "c-1", "customer_id": "cu-1", "type": kind, "gift_wrap": gift_wrap}
    async with legato.Runtime(db) as rt:
        assert await rt.run(conditional_workflow, order, id="cond") == expected
        info = await rt.get("cond")
    assert info.status == "succeeded"  # an Error result is a value, not a failure
    assert names(info) == steps
    assert calls == dict.fromkeys(steps, 1)


# == Loops with per-item error handling ===============================================


@legato.step
async def process_item(item: dict[str, Any]) -> dict[str, Any]:
    await activity(f"process_item:{item['id']}")
    if item.get("bad"):
        raise ValueError(f"item {item['id']} is malformed")
    return {"id": item["id"], "done": True}


@legato.workflow(name="stent_batch")
async def batch_workflow(items: list[dict[str, Any]]) -> dict[str, Any]:
    results = []
    errors = []
    for item in items:
        try:
            result = await process_item(item)
            results.append(result)
        except Exception as e:
            errors.append({"item": item, "error": str(e)})
    return {"processed": len(results), "failed": len(errors), "errors": errors}


ITEMS = [{"id": 1}, {"id": 2, "bad": True}, {"id": 3}, {"id": 4, "bad": True}, {"id": 5}]
BATCH_RESULT = {
    "processed": 3, "failed": 2,
    "errors": [{"item": {"id": 2, "bad": True}, "error": "item 2 is malformed"},
               {"item": {"id": 4, "bad": True}, "error": "item 4 is malformed"}]}


async def test_a_loop_collects_item_errors_and_goes_on(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(batch_workflow, ITEMS, id="batch-1") == BATCH_RESULT
        info = await rt.get("batch-1")
    assert info.status == "succeeded"
    assert [(s.position, s.ok) for s in info.steps] == [
        ("1", True), ("2", False), ("3", True), ("4", False), ("5", True)]
    assert calls == {f"process_item:{i}": 1 for i in range(1, 6)}


async def test_a_loop_replays_recorded_item_errors_after_a_restart(db):
    await start_until_held(db, batch_workflow, ITEMS, id="batch-2", key="process_item:5")
    outcome, _ = await finish_after_restart(db, "batch-2", "process_item:5")
    assert outcome == BATCH_RESULT  # the same messages, from the recorded errors
    assert calls == {**{f"process_item:{i}": 1 for i in range(1, 5)}, "process_item:5": 2}


# == Custom retry loop with durable exponential sleep =====================================


@legato.step
async def try_operation(data: dict[str, Any]) -> dict[str, Any]:
    await activity("try_operation")
    attempt = calls["try_operation"]
    return {"success": attempt >= FLAGS["succeed_at"], "attempt": attempt, **data}


@legato.workflow(name="stent_retry")
async def workflow_with_retry(data: dict[str, Any]) -> Result:
    max_retries = 3
    for attempt in range(max_retries):
        result = await try_operation(data)
        if result["success"]:
            return Result.Ok(result)
        if attempt < max_retries - 1:
            await legato.sleep(f"{2 ** attempt}s")  # 1s, 2s
    return Result.Error("Operation failed after retries")


@pytest.mark.parametrize(("succeed_at", "waited", "recorded"), [
    (1, 0.0, ["step"]),
    (2, 1.0, ["step", "sleep", "step"]),
    (3, 3.0, ["step", "sleep", "step", "sleep", "step"]),
    (99, 3.0, ["step", "sleep", "step", "sleep", "step"]),  # no sleep after the last try
])
async def test_custom_retry_loop_waits_1s_then_2s_of_durable_time(db, succeed_at, waited,
                                                                  recorded):
    FLAGS["succeed_at"] = succeed_at
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.run(workflow_with_retry, {"job": "j"}, id="retry")
        info = await rt.get("retry")
    assert clock.now() == waited  # exactly the backoff, in virtual time
    assert [s.kind for s in info.steps] == recorded
    if succeed_at <= 3:
        assert result == Result.Ok({"success": True, "attempt": succeed_at, "job": "j"})
    else:
        assert result == Result.Error("Operation failed after retries")
    assert calls["try_operation"] == min(succeed_at, 3)


async def test_a_restart_during_the_backoff_keeps_the_attempt_count_and_the_wait(db):
    FLAGS["succeed_at"] = 3
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(workflow_with_retry, {"job": "k"}, id="retry-restart")
        await eventually(lambda: kinds(rt, "retry-restart"), ["step", "sleep"])
    assert calls["try_operation"] == 1  # attempt 1 failed; waiting 1 s (until t=1)
    later = legato.VirtualClock(start=0.5)  # half of the first wait has passed
    async with legato.Runtime(db, clock=later) as rt:
        result = await rt.handle("retry-restart").result(timeout=5)
    assert result == Result.Ok({"success": True, "attempt": 3, "job": "k"})
    assert later.now() == 3.0  # the rest of the 1 s wait, then 2 s: not restarted from zero
    assert calls["try_operation"] == 3


# == Sub-workflows ==================================================================


@legato.step
async def authorize_payment(customer_id: str, amount: int) -> dict[str, str]:
    await activity("authorize_payment")
    return {"auth_id": f"auth-{customer_id}-{amount}"}


@legato.step
async def capture_payment(auth_id: str) -> dict[str, str]:
    await activity("capture_payment")
    if auth_id.endswith("-0"):
        raise PaymentDeclined(f"nothing to capture on {auth_id}")
    return {"id": f"cap-{auth_id}"}


@legato.step
async def start_fulfillment(order_id: str, payment_id: str) -> str:
    await activity("start_fulfillment")
    return f"shipping {order_id} paid by {payment_id}"


class PaymentDeclined(Exception):
    pass


@legato.workflow(name="stent_payment")
async def payment_workflow(order_id: str, customer_id: str, amount: int) -> dict[str, str]:
    authorization = await authorize_payment(customer_id, amount)
    capture = await capture_payment(authorization["auth_id"])
    return {"payment_id": capture["id"], "status": "captured"}


@legato.workflow(name="stent_order_with_payment")
async def order_with_payment(order: dict[str, Any]) -> Result:
    await validate_order(order)
    try:
        payment = await payment_workflow(order["id"], order["customer_id"], order["total"])
    except PaymentDeclined as exc:  # isolation: the child's failure is handled here
        return Result.Error(f"payment failed: {exc}")
    await start_fulfillment(order["id"], payment["payment_id"])
    return Result.Ok({"order_id": order["id"], "payment": payment})


PAID_ORDER = {"id": "sub-1", "customer_id": "c-9", "total": 15,
              "items": [{"sku": "tea", "price": 15, "qty": 1}]}


async def test_a_sub_workflow_is_a_child_with_id_parent_slash_position(db):
    await start_until_held(db, order_with_payment, PAID_ORDER, id="sub-1",
                           key="start_fulfillment")
    outcome, parent = await finish_after_restart(db, "sub-1", "start_fulfillment")
    assert outcome == Result.Ok({"order_id": "sub-1", "payment": {
        "payment_id": "cap-auth-c-9-15", "status": "captured"}})
    assert [(s.position, s.kind, s.name) for s in parent.steps] == [
        ("1", "step", "validate_order"), ("2", "child", "stent_payment"),
        ("3", "step", "start_fulfillment")]
    async with legato.Runtime(db) as rt:
        child = await rt.get("sub-1/2")  # the parent's id and the call's position
        children = await rt.list(name="stent_payment")
    assert child.status == "succeeded"
    assert names(child) == ["authorize_payment", "capture_payment"]
    assert [c.id for c in children] == ["sub-1/2"]  # the restart found the same child
    assert calls == {"validate_order": 1, "authorize_payment": 1, "capture_payment": 1,
                     "start_fulfillment": 2}


async def test_a_failing_sub_workflow_is_handled_by_the_parent(db):
    async with legato.Runtime(db) as rt:
        result = await rt.run(order_with_payment, {**PAID_ORDER, "id": "sub-2", "total": 0},
                              id="sub-2")
        child = await rt.get("sub-2/2")
        parent = await rt.get("sub-2")
    assert result == Result.Error("payment failed: nothing to capture on auth-c-9-0")
    assert child.status == "failed" and child.error is not None
    assert "PaymentDeclined" in child.error
    assert parent.status == "succeeded"
    assert "start_fulfillment" not in calls


async def test_a_sub_workflow_can_be_tested_in_isolation(db):
    # directly (outside any workflow the body simply runs) ...
    assert await payment_workflow("iso", "c-1", 5) == {
        "payment_id": "cap-auth-c-1-5", "status": "captured"}
    # ... or as a top-level workflow of its own
    async with legato.Runtime(db) as rt:
        assert await rt.run(payment_workflow, "iso", "c-1", 5, id="iso") == {
            "payment_id": "cap-auth-c-1-5", "status": "captured"}


# == Durable sleep (24h, then 7d) ======================================================
# (the seed's example itself is in test_waiting.py; here: the follow-ups go out on time)


@legato.step
async def send_notification(notification_id: str, message: str, at: datetime) -> str:
    await activity(message)
    return f"{at.isoformat()} {notification_id}: {message}"


@legato.workflow(name="stent_scheduled")
async def scheduled_workflow(notification_id: str) -> list[str]:
    sent = [await send_notification(notification_id, "Starting process", legato.now())]
    await legato.sleep("24h")
    sent.append(await send_notification(notification_id, "Process check-in", legato.now()))
    await legato.sleep("7d")
    sent.append(await send_notification(notification_id, "Process complete", legato.now()))
    return sent


async def test_follow_ups_go_out_24h_and_then_7d_later_in_durable_time(db):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock = legato.VirtualClock(start=start.timestamp())
    async with legato.Runtime(db, clock=clock) as rt:
        sent = await rt.run(scheduled_workflow, "n-1", id="n-1")
    assert sent == ["2030-01-01T00:00:00+00:00 n-1: Starting process",
                    "2030-01-02T00:00:00+00:00 n-1: Process check-in",
                    "2030-01-09T00:00:00+00:00 n-1: Process complete"]
    assert clock.now() == start.timestamp() + 8 * 86400


# == Waiting for external signals ========================================================


@legato.step
async def notify_approvers(request_id: str, approvers: list[str]) -> None:
    await activity("notify_approvers")
    log.append(f"asked {', '.join(approvers)} about {request_id}")


@legato.step
async def execute_request(request: dict[str, Any]) -> None:
    await activity("execute_request")
    log.append(f"executed {request['id']}")


@legato.step
async def notify_rejection(request_id: str, reason: str) -> None:
    await activity("notify_rejection")
    log.append(f"rejected {request_id}: {reason}")


@legato.workflow(name="stent_approval")
async def approval_workflow(request: dict[str, Any]) -> Result:
    await notify_approvers(request["id"], request["approvers"])
    approval = await legato.wait_for_signal("approval")
    if approval["approved"]:
        await execute_request(request)
        return Result.Ok({"status": "approved", "by": approval["approver"]})
    await notify_rejection(request["id"], approval["reason"])
    return Result.Error(f"Rejected: {approval['reason']}")


REQUEST = {"id": "req-1", "approvers": ["ana", "bo"]}


@pytest.mark.parametrize(("payload", "expected", "effect"), [
    ({"approved": True, "approver": "admin@example.com"},
     Result.Ok({"status": "approved", "by": "admin@example.com"}), "executed req-1"),
    ({"approved": False, "reason": "over budget"},
     Result.Error("Rejected: over budget"), "rejected req-1: over budget"),
])
async def test_approval_signal_approves_or_rejects(db, payload, expected, effect):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(approval_workflow, REQUEST, id="req-1")
        await eventually(handle.status, "waiting")  # unloaded while the humans think
        await rt.signal("req-1", "approval", payload)  # the seed's executor.send_signal
        assert await handle.result(timeout=5) == expected
    assert log == ["asked ana, bo about req-1", effect]
    assert calls["notify_approvers"] == 1


# -- waiting with a timeout, written the seed's way (create_task + asyncio.wait) ----------


async def wait_for_timeout(request_id: str, hours: int) -> None:
    await legato.sleep(f"{hours}h")


@legato.workflow(name="stent_approval_timeout")
async def approval_with_timeout(request: dict[str, Any]) -> Result:
    await notify_approvers(request["id"], request["approvers"])
    timeout_task = asyncio.create_task(wait_for_timeout(request["id"], hours=48))
    signal_task = asyncio.create_task(legato.wait_for_signal("approval"))
    done, pending = await asyncio.wait(
        [timeout_task, signal_task], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    completed_task = done.pop()
    if completed_task == timeout_task:
        return Result.Error("Approval timed out")
    approval = completed_task.result()
    return Result.Ok(approval)


async def test_approval_times_out_after_48h_of_durable_time(db):
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.run(approval_with_timeout, REQUEST, id="req-t")
        info = await rt.get("req-t")
    assert result == Result.Error("Approval timed out")
    assert clock.now() == 48 * 3600
    # the body took 1; the timer task is branch 2 (its sleep at 2.1); the signal task 3;
    # asyncio.wait's decision (which tasks were done) is recorded at 4
    assert [(s.position, s.kind) for s in info.steps] == [
        ("1", "step"), ("2.1", "sleep"), ("4", "wait")]


async def test_approval_before_the_timeout_wins_and_cancels_the_timer(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(approval_with_timeout, REQUEST, id="req-a")
        await eventually(lambda: kinds(rt, "req-a"), ["step", "sleep"])  # the 48h timer is set
        await clock.advance(47 * 3600)
        assert await handle.status() == "running"
        await rt.signal("req-a", "approval", {"approved": True, "approver": "bo"})
        assert await handle.result(timeout=5) == Result.Ok({"approved": True, "approver": "bo"})
        info = await rt.get("req-a")
    assert [(s.position, s.kind, s.name) for s in info.steps] == [
        ("1", "step", "notify_approvers"), ("2.1", "sleep", ""), ("3.1", "signal", "approval"),
        ("4", "wait", "")]
    assert clock.now() == 47 * 3600


# == Try/except in orchestrators ========================================================


class ValidationError(Exception):
    pass


class NetworkError(Exception):
    pass


@legato.step
async def risky_operation(data: dict[str, Any]) -> dict[str, Any]:
    await activity("risky_operation")
    errors = {"validation": ValidationError("field 'x' missing"),
              "network": NetworkError("connection reset"),
              "bug": RuntimeError("division by zero")}
    if data["mode"] in errors:
        raise errors[data["mode"]]
    return {"value": 42}


@legato.step
async def log_validation_error(data: dict[str, Any], error: str) -> None:
    await activity("log_validation_error")


@legato.step
async def queue_for_retry(data: dict[str, Any]) -> None:
    await activity("queue_for_retry")


@legato.step
async def alert_on_call(error: str) -> None:
    await activity("alert_on_call")
    log.append(f"paged: {error}")


@legato.workflow(name="stent_robust")
async def robust_workflow(data: dict[str, Any]) -> Result:
    try:
        result = await risky_operation(data)
        return Result.Ok(result)
    except ValidationError as e:
        await log_validation_error(data, str(e))
        return Result.Error(f"Validation failed: {e}")
    except NetworkError as e:
        await queue_for_retry(data)
        return Result.Error(f"Network error: {e}")
    except Exception as e:
        await alert_on_call(str(e))
        raise


@pytest.mark.parametrize(("mode", "expected", "handler"), [
    ("ok", Result.Ok({"value": 42}), None),
    ("validation", Result.Error("Validation failed: field 'x' missing"), "log_validation_error"),
    ("network", Result.Error("Network error: connection reset"), "queue_for_retry"),
])
async def test_try_except_handles_each_error_type(db, mode, expected, handler):
    async with legato.Runtime(db) as rt:
        assert await rt.run(robust_workflow, {"mode": mode}, id="robust") == expected
        assert await rt.run(robust_workflow, {"mode": mode}, id="robust") == expected
    assert calls == {"risky_operation": 1, **({handler: 1} if handler else {})}


async def test_an_unexpected_error_is_reraised_and_fails_the_workflow(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(RuntimeError, match="division by zero"):
            await rt.run(robust_workflow, {"mode": "bug"}, id="robust-bug")
        info = await rt.get("robust-bug")
        with pytest.raises(RuntimeError):  # the recorded error, not a new run
            await rt.handle("robust-bug").result()
    assert info.status == "failed" and info.error == "RuntimeError: division by zero"
    assert names(info) == ["risky_operation", "alert_on_call"]
    assert calls == {"risky_operation": 1, "alert_on_call": 1}
    assert log == ["paged: division by zero"]


# == Compensation (saga) ============================================================


class BookingError(Exception):
    pass


def _booking(kind: str) -> legato.Step[..., dict[str, str]]:
    async def body(spec: dict[str, Any]) -> dict[str, str]:
        await activity(f"book_{kind}")
        if spec.get("fail"):
            raise BookingError(f"no {kind} available")
        log.append(f"booked {kind} {spec['ref']}")
        return {"id": spec["ref"]}

    body.__name__ = f"book_{kind}"
    return legato.step(body)


def _cancellation(kind: str) -> legato.Step[..., None]:
    async def body(booking_id: str) -> None:
        await activity(f"cancel_{kind}")
        if booking_id.startswith("stuck"):
            raise ConnectionError(f"can't reach the {kind} service")
        log.append(f"cancelled {kind} {booking_id}")

    body.__name__ = f"cancel_{kind}"
    return legato.step(body)


book_flight, book_hotel, book_car = _booking("flight"), _booking("hotel"), _booking("car")
cancel_flight, cancel_hotel = _cancellation("flight"), _cancellation("hotel")


@legato.step
async def log_compensation_failure(error: str) -> None:
    await activity("log_compensation_failure")
    log.append(f"compensation failed: {error}")


@legato.workflow(name="stent_saga")
async def booking_saga(trip: dict[str, Any]) -> dict[str, Any]:
    async with legato.saga() as saga:
        flight = await book_flight(trip["flight"])
        saga.compensate(cancel_flight, flight["id"])
        hotel = await book_hotel(trip["hotel"])
        saga.compensate(cancel_hotel, hotel["id"])
        car = await book_car(trip["car"])  # no compensation needed for the last step
    return {"flight": flight, "hotel": hotel, "car": car}


def trip(fail: str | None = None, flight_ref: str = "F1", hotel_ref: str = "H1") -> dict[str, Any]:
    return {"flight": {"ref": flight_ref, "fail": fail == "flight"},
            "hotel": {"ref": hotel_ref, "fail": fail == "hotel"},
            "car": {"ref": "C1", "fail": fail == "car"}}


SAGA_CASES = [
    ("flight", ["book_flight"], []),
    ("hotel", ["book_flight", "book_hotel"], ["cancelled flight F1"]),
    ("car", ["book_flight", "book_hotel", "book_car"],
     ["cancelled hotel H1", "cancelled flight F1"]),
]


@pytest.mark.parametrize(("stage", "booked", "undone"), SAGA_CASES)
async def test_saga_compensates_exactly_the_finished_bookings_in_reverse(db, stage, booked,
                                                                         undone):
    async with legato.Runtime(db) as rt:
        with pytest.raises(BookingError, match=f"no {stage} available"):
            await rt.run(booking_saga, trip(fail=stage), id="saga")
        info = await rt.get("saga")
    assert info.status == "failed" and info.error == f"BookingError: no {stage} available"
    assert [line for line in log if line.startswith("cancelled")] == undone
    cancels = [f"cancel_{line.split()[1]}" for line in undone]
    assert names(info) == [*booked, *cancels]  # compensations are recorded steps
    assert calls == dict.fromkeys([*booked, *cancels], 1)


async def test_saga_without_a_failure_compensates_nothing(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(booking_saga, trip(), id="saga-ok") == {
            "flight": {"id": "F1"}, "hotel": {"id": "H1"}, "car": {"id": "C1"}}
    assert log == ["booked flight F1", "booked hotel H1", "booked car C1"]


async def test_a_failing_compensation_does_not_stop_the_others(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(BookingError) as caught:
            await rt.run(booking_saga, trip(fail="car", hotel_ref="stuck-H1"), id="saga-stuck")
    assert log[-1] == "cancelled flight F1"  # still compensated after the hotel's failed
    assert any("cancel_hotel" in note and "can't reach the hotel service" in note
               for note in getattr(caught.value, "__notes__", []))


async def test_a_restart_while_compensating_never_repeats_a_finished_compensation(db):
    await start_until_held(db, booking_saga, trip(fail="car"), id="saga-r", key="cancel_flight")
    assert log == ["booked flight F1", "booked hotel H1", "cancelled hotel H1"]
    outcome, info = await finish_after_restart(db, "saga-r", "cancel_flight")
    assert isinstance(outcome, BookingError)
    assert info.status == "failed"
    assert log == ["booked flight F1", "booked hotel H1", "cancelled hotel H1",
                   "cancelled flight F1"]
    # cancel_flight was interrupted once, so it ran again (at-least-once); nothing else did
    assert calls == {"book_flight": 1, "book_hotel": 1, "book_car": 1, "cancel_hotel": 1,
                     "cancel_flight": 2}


async def test_cancelling_the_workflow_inside_the_saga_compensates(db):
    holds.add("book_car")
    async with legato.Runtime(db) as rt:
        handle = await rt.start(booking_saga, trip(), id="saga-c")
        await asyncio.wait_for(entered["book_car"].wait(), 5)
        await handle.cancel()
        with pytest.raises(legato.WorkflowCancelled):
            await handle.result(timeout=5)
    assert log == ["booked flight F1", "booked hotel H1", "cancelled hotel H1",
                   "cancelled flight F1"]


@legato.workflow(name="stent_saga_closures")
async def booking_saga_closures(trip: dict[str, Any]) -> dict[str, Any]:
    async with legato.saga() as saga:
        flight = await book_flight(trip["flight"])
        saga.compensate(lambda: cancel_flight(flight["id"]))  # the seed's closure style
        await book_hotel(trip["hotel"])
    return {"flight": flight}


async def test_saga_compensate_accepts_a_closure_that_calls_a_step(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(BookingError):
            await rt.run(booking_saga_closures, trip(fail="hotel"), id="saga-lambda")
    assert log == ["booked flight F1", "cancelled flight F1"]


# -- the seed's hand-written compensation list ----------------------------------------


@legato.workflow(name="stent_saga_manual")
async def booking_saga_manual(trip: dict[str, Any]) -> Result:
    compensations = []
    try:
        flight = await book_flight(trip["flight"])
        compensations.append(lambda: cancel_flight(flight["id"]))
        hotel = await book_hotel(trip["hotel"])
        compensations.append(lambda: cancel_hotel(hotel["id"]))
        car = await book_car(trip["car"])
        return Result.Ok({"flight": flight, "hotel": hotel, "car": car})
    except Exception as e:
        for compensate in reversed(compensations):
            try:
                await compensate()
            except Exception as comp_error:
                await log_compensation_failure(str(comp_error))
        return Result.Error(f"Booking failed: {e}")


@pytest.mark.parametrize(("stage", "booked", "undone"), SAGA_CASES)
async def test_hand_written_compensations_run_in_reverse(db, stage, booked, undone):
    async with legato.Runtime(db) as rt:
        result = await rt.run(booking_saga_manual, trip(fail=stage), id="manual")
        info = await rt.get("manual")
    assert result == Result.Error(f"Booking failed: no {stage} available")
    assert info.status == "succeeded"
    assert [line for line in log if line.startswith("cancelled")] == undone
    cancels = [f"cancel_{line.split()[1]}" for line in undone]
    assert names(info) == [*booked, *cancels]
    assert calls == dict.fromkeys([*booked, *cancels], 1)


async def test_hand_written_compensation_failures_are_logged_and_the_rest_run(db):
    async with legato.Runtime(db) as rt:
        result = await rt.run(booking_saga_manual, trip(fail="car", hotel_ref="stuck-H"),
                              id="manual-stuck")
    assert result == Result.Error("Booking failed: no car available")
    assert log[-2:] == ["compensation failed: can't reach the hotel service",
                        "cancelled flight F1"]


async def test_hand_written_compensations_survive_a_restart(db):
    await start_until_held(db, booking_saga_manual, trip(fail="car"), id="manual-r",
                           key="cancel_flight")
    outcome, _ = await finish_after_restart(db, "manual-r", "cancel_flight")
    assert outcome == Result.Error("Booking failed: no car available")
    assert calls == {"book_flight": 1, "book_hotel": 1, "book_car": 1, "cancel_hotel": 1,
                     "cancel_flight": 2}


# == Determinism guidelines =============================================================


@legato.step
async def apply_large_order_discount(order_id: str) -> None:
    await activity("apply_large_order_discount")


@legato.step
async def get_current_timestamp() -> str:
    await activity("get_current_timestamp")
    return datetime.now(UTC).isoformat()


@legato.step
async def generate_random_id() -> str:
    await activity("generate_random_id")
    return f"id-{random.getrandbits(64):016x}"


@legato.step
async def get_random_value() -> float:
    await activity("get_random_value")
    return random.random()


@legato.step
async def path_a() -> None:
    await activity("path_a")


@legato.step
async def finish(label: str) -> str:
    await activity(f"finish:{label}")
    return label


@legato.workflow(name="stent_deterministic")
async def deterministic_workflow(order: dict[str, Any]) -> dict[str, Any]:
    if order["total"] > 1000:  # logic that depends only on the input
        await apply_large_order_discount(order["id"])
    timestamp = await get_current_timestamp()  # time from an activity
    random_id = await generate_random_id()  # randomness from an activity
    random_val = await get_random_value()
    if random_val > 0.5:
        await path_a()
    await finish(order["id"])
    return {"processed_at": timestamp, "id": random_id, "random": random_val}


async def test_wrapped_nondeterminism_replays_the_recorded_values_after_restarts(db):
    order = {"id": "det-1", "total": 1500}
    first = await start_until_held(db, deterministic_workflow, order, id="det-1",
                                   key="finish:det-1")
    entered["finish:det-1"].clear()
    async with legato.Runtime(db) as rt:  # a second runtime, stopped at the same step again
        await asyncio.wait_for(entered["finish:det-1"].wait(), 5)
        second = await rt.get("det-1")
    outcome, info = await finish_after_restart(db, "det-1", "finish:det-1")
    async with legato.Runtime(db) as rt:
        assert await rt.run(deterministic_workflow, order, id="det-1") == outcome
    assert datetime.fromisoformat(outcome["processed_at"]).tzinfo is not None
    # the replays took the recorded values: each body ran once, and the branch on the
    # random value was taken once, consistently
    took_a = outcome["random"] > 0.5
    assert calls == {"apply_large_order_discount": 1, "get_current_timestamp": 1,
                     "generate_random_id": 1, "get_random_value": 1,
                     **({"path_a": 1} if took_a else {}), "finish:det-1": 3}
    assert names(info)[-1] == "finish"
    assert [s.at for s in first.steps] == [s.at for s in second.steps] == [
        s.at for s in info.steps[: len(first.steps)]]


async def test_small_orders_skip_the_discount(db):
    async with legato.Runtime(db) as rt:
        await rt.run(deterministic_workflow, {"id": "det-2", "total": 10}, id="det-2")
    assert "apply_large_order_discount" not in calls


@legato.step
async def new_feature() -> str:
    await activity("new_feature")
    return "new"


@legato.step
async def old_feature() -> str:
    await activity("old_feature")
    return "old"


@legato.workflow(name="stent_global_flag")
async def global_flag_workflow() -> str:
    # the seed's "Don't": branching on global state; a replay may take another path
    feature = await (new_feature() if FLAGS["new_feature"] else old_feature())
    await finish("flag")
    return feature


async def test_branching_on_global_state_is_caught_on_replay_and_resume_fixes_it(db):
    await start_until_held(db, global_flag_workflow, id="flag", key="finish:flag")
    FLAGS["new_feature"] = True  # the "config" changed while the workflow was in flight
    outcome, info = await finish_after_restart(db, "flag", "finish:flag")
    assert isinstance(outcome, legato.NonDeterminismError)
    assert outcome.position == "1"
    assert "step 'old_feature'" in str(outcome) and "step 'new_feature'" in str(outcome)
    assert info.status == "failed"
    assert calls == {"old_feature": 1, "finish:flag": 1}  # the new path never ran

    FLAGS["new_feature"] = False  # fix the code, then resume
    async with legato.Runtime(db) as rt:
        handle = await rt.resume("flag")
        assert await handle.result(timeout=5) == "old"
    assert calls == {"old_feature": 1, "finish:flag": 2}
