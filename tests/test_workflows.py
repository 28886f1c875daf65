"""Durable workflows in one process: replay, idempotency, errors, recorded values."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from datetime import datetime

import pytest

import legato
from polling import eventually

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@legato.step
async def double(x: int) -> int:
    calls[f"double-{x}"] += 1
    return 2 * x


@legato.step
def in_thread(x: int) -> tuple[int, str]:
    calls["in_thread"] += 1
    return x, threading.current_thread().name


class OutOfStock(Exception):
    pass


@legato.step
async def reserve(item: str) -> str:
    calls[f"reserve-{item}"] += 1
    raise OutOfStock(f"no {item} left")


@legato.workflow
async def doubling(n: int) -> list[int]:
    return [await double(i) for i in range(n)]


@legato.workflow
async def fan_out(n: int) -> list[int]:
    first = await double(100)
    rest = await asyncio.gather(*(double(i) for i in range(n)))
    return [first, *rest]


async def test_run_returns_the_result_and_records_each_step(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(doubling, 3, id="d1") == [0, 2, 4]
        info = await rt.get("d1")
    assert info.status is legato.Status.SUCCEEDED and info.status == "succeeded"
    assert [(s.position, s.kind, s.name) for s in info.steps] == [
        ("1", "step", "double"), ("2", "step", "double"), ("3", "step", "double")]
    assert info.error is None and info.duration is not None


async def test_a_tight_status_loop_lets_the_workflow_run(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(doubling, 3)
        while await handle.status() != "succeeded":  # no sleep: the reads must yield
            pass
        while not (await rt.get(handle.id)).steps:
            pass
        assert await handle.result() == [0, 2, 4]


async def test_same_id_runs_once_and_returns_the_same_handle(db):
    async with legato.Runtime(db) as rt:
        first = await rt.start(doubling, 2, id="once")
        second = await rt.start(doubling, 2, id="once")
        assert first == second
        assert await first.result() == await second.result() == [0, 2]
        assert await rt.run(doubling, 2, id="once") == [0, 2]
    assert calls == {"double-0": 1, "double-1": 1}


async def test_same_id_for_another_workflow_is_a_conflict(db):
    async with legato.Runtime(db) as rt:
        await rt.run(doubling, 1, id="taken")
        with pytest.raises(legato.WorkflowConflict, match="'taken' already belongs to workflow"):
            await rt.start(fan_out, 1, id="taken")


async def test_a_restarted_runtime_replays_instead_of_rerunning(db):
    gate, entered = asyncio.Event(), asyncio.Event()

    @legato.step
    async def wait_for_gate() -> str:
        calls["gate"] += 1
        entered.set()
        await gate.wait()
        return "through"

    @legato.workflow(name="gated")
    async def gated() -> list[object]:
        before = await double(1)
        stamp = legato.now()
        token = legato.uuid4()
        dice = legato.random()
        passed = await wait_for_gate()
        return [before, stamp.isoformat(), str(token), dice, passed]

    async with legato.Runtime(db) as rt:
        await rt.start(gated, id="g")
        await entered.wait()
        info = await rt.get("g")
    # leaving the runtime released the lease without finishing the workflow
    assert info.status == "running" and len(info.steps) == 4
    recorded = [s.kind for s in info.steps]
    assert recorded == ["step", "now", "uuid4", "random"]

    gate.set()
    async with legato.Runtime(db) as rt:
        result = await rt.handle("g").result(timeout=5)
    assert calls == {"double-1": 1, "gate": 2}
    async with legato.Runtime(db) as rt:
        again = await rt.run(gated, id="g")
    assert again == result
    assert isinstance(datetime.fromisoformat(result[1]), datetime)
    assert uuid.UUID(result[2]).version == 4


async def test_gathered_branches_get_positions_by_creation_order(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(fan_out, 3, id="f") == [200, 0, 2, 4]
        info = await rt.get("f")
    assert sorted(s.position for s in info.steps) == ["1", "2.1", "3.1", "4.1"]


async def test_sync_steps_run_in_a_thread(db):
    @legato.workflow(name="threaded")
    async def threaded() -> tuple[int, str]:
        return await in_thread(7)

    async with legato.Runtime(db) as rt:
        value, thread = await rt.run(threaded, id="t")
    assert value == 7 and thread != threading.main_thread().name


async def test_step_errors_are_recorded_and_reraised_as_the_same_type(db):
    @legato.workflow(name="shop")
    async def shop() -> str:
        try:
            await reserve("tea")
        except OutOfStock as exc:
            return f"sorry: {exc}"
        return "unreachable"

    @legato.workflow(name="shop_fails")
    async def shop_fails() -> str:
        return await reserve("cake")

    async with legato.Runtime(db) as rt:
        assert await rt.run(shop, id="s1") == "sorry: no tea left"
        with pytest.raises(OutOfStock, match="no cake left"):
            await rt.run(shop_fails, id="s2")
        failed = await rt.list(status="failed")
        assert [i.id for i in failed] == ["s2"]
        assert failed[0].error == "OutOfStock: no cake left"
        # replaying a finished run re-raises without running the step
        with pytest.raises(OutOfStock):
            await rt.handle("s2").result()
        info = await rt.get("s2")
    assert calls == {"reserve-tea": 1, "reserve-cake": 1}
    assert info.steps[0].ok is False


async def test_an_error_type_that_cannot_be_imported_becomes_step_failed(db):
    class Local(Exception):
        pass

    @legato.workflow(name="local_error")
    async def local_error() -> None:
        raise Local("only here")

    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.StepFailed) as caught:
            await rt.run(local_error, id="le")
    assert "Local" in caught.value.type_name and caught.value.message == "only here"
    assert "raise Local" in caught.value.traceback


async def test_an_unserializable_argument_fails_before_anything_is_stored(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.SerializationError) as caught:
            await rt.start(doubling, threading.Lock(), id="bad")
        assert await rt.list() == []
    message = str(caught.value)
    assert "argument 'n'" in message and "lock" in message.lower()
    assert isinstance(caught.value, TypeError)


async def test_wrong_arguments_fail_naming_the_signature(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(TypeError, match=r"doubling\(n: int\)"):
            await rt.start(doubling, 1, 2)
        with pytest.raises(TypeError, match="not a workflow"):
            await rt.start(double, 1)  # type: ignore[arg-type]


async def test_an_unserializable_step_result_fails_the_workflow_and_is_recorded(db):
    @legato.step
    async def make_lock() -> object:
        calls["make_lock"] += 1
        return threading.Lock()

    @legato.workflow(name="locky")
    async def locky() -> object:
        return await make_lock()

    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.SerializationError, match="step 'make_lock'"):
            await rt.run(locky, id="l")
        assert (await rt.get("l")).steps[0].ok is False


async def test_payload_over_the_limit_is_refused(db):
    async with legato.Runtime(db, serializer=legato.JsonSerializer(max_size=64)) as rt:
        with pytest.raises(legato.PayloadTooLarge):
            await rt.start(doubling, "x" * 100)  # type: ignore[arg-type]


async def test_unknown_ids_raise_workflow_not_found(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.WorkflowNotFound, match="'nope'"):
            await rt.get("nope")
        with pytest.raises(legato.WorkflowNotFound):
            await rt.handle("nope").result()


async def test_result_timeout_leaves_the_workflow_running(db):
    release = asyncio.Event()

    @legato.step
    async def slow() -> str:
        await release.wait()
        return "done"

    @legato.workflow(name="slowpoke")
    async def slowpoke() -> str:
        return await slow()

    async with legato.Runtime(db) as rt:
        handle = await rt.start(slowpoke, id="slow")
        with pytest.raises(legato.WorkflowTimeout) as caught:
            await handle.result(timeout=0.05)
        assert isinstance(caught.value, TimeoutError)
        assert await handle.status() == "running"
        release.set()
        assert await handle.result(timeout=5) == "done"


async def test_a_client_only_runtime_starts_work_that_a_worker_runs(db):
    async with legato.Runtime(db) as worker, legato.Runtime(db, worker=False) as client:
        handle = await client.start(doubling, 2, id="remote")
        assert await handle.result(timeout=5) == [0, 2]
        assert worker is not None


async def test_many_concurrent_workflows_commit_every_step(db):
    async with legato.Runtime(db) as rt:
        handles = [await rt.start(doubling, 5, id=f"c{i}") for i in range(200)]
        results = await asyncio.gather(*(h.result() for h in handles))
    assert results == [[0, 2, 4, 6, 8]] * 200
    assert sum(calls.values()) == 1000


async def test_concurrency_limit_queues_the_rest_as_pending(db):
    release = asyncio.Event()
    running = 0
    peak = 0

    @legato.step
    async def hold() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    @legato.workflow(name="holder")
    async def holder() -> None:
        await hold()

    async with legato.Runtime(db, concurrency=2) as rt:
        handles = [await rt.start(holder, id=f"h{i}") for i in range(5)]
        statuses = Counter([await h.status() for h in handles])
        assert statuses == {"running": 2, "pending": 3}
        await eventually(lambda: running == 2)  # both in the step (a store round trip away)
        release.set()
        await asyncio.gather(*(h.result(timeout=5) for h in handles))
    assert peak == 2


def test_legato_run_is_the_sync_entry_point(db):
    assert legato.run(doubling, 2, store=db, id="sync") == [0, 2]
    assert legato.run(doubling, 2, store=db, id="sync") == [0, 2]
    assert calls == {"double-0": 1, "double-1": 1}


async def test_outside_a_workflow_steps_and_recorded_calls_are_plain(db):
    assert await double(4) == 8
    assert await doubling(2) == [0, 2]
    assert 0 <= legato.random() < 1
    assert legato.now().tzinfo is not None
    assert legato.uuid4().version == 4
    with pytest.raises(legato.LegatoError, match="outside a workflow"):
        legato.workflow_id()


async def test_workflow_id_inside_a_workflow(db):
    @legato.workflow(name="whoami")
    async def whoami() -> str:
        return legato.workflow_id()

    async with legato.Runtime(db) as rt:
        assert await rt.run(whoami, id="me") == "me"
