"""Retry policies: the schedule, the value, plain calls, and durable retried steps."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

import crash_retry_child
import legato
from legato.flow import sleep as durable_sleep  # legato.sleep once it is exported
from legato.resilience import Retry, retry

T0 = 1_000_000.0  # virtual start: whole seconds added to it stay exact


class Flaky:
    """An async callable that raises ``errors`` in turn, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: str = "ok") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls = 0

    async def __call__(self, *args: object) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class WatchedClock:
    """A clock that tells when someone waits for ``deadline`` (wraps a VirtualClock)."""

    def __init__(self, virtual: legato.VirtualClock, deadline: float) -> None:
        self.virtual = virtual
        self.deadline = deadline
        self.waiting = asyncio.Event()
        self.used = False

    def now(self) -> float:
        return self.virtual.now()

    async def sleep_until(self, deadline: float) -> None:
        if deadline == self.deadline:
            self.waiting.set()
        await self.virtual.sleep_until(deadline)


# -- the schedule ------------------------------------------------------------------------


def test_backoff_schedule_is_exact_without_jitter():
    policy = Retry(attempts=7, initial=1, backoff=2, max_delay=10, jitter=0)
    assert policy.delays() == (1.0, 2.0, 4.0, 8.0, 10.0, 10.0)
    assert [policy.delay(k) for k in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert Retry(attempts=4, initial="500ms", backoff=1, jitter=0).delays() == (0.5,) * 3
    assert Retry(attempts=1).delays() == ()
    assert Retry(attempts=80, initial=1, backoff=10, max_delay="1h").delays()[-1] == 3600.0


def test_jitter_stays_within_its_band_and_uses_it():
    policy = Retry(attempts=5, initial=2, backoff=3, max_delay=30, jitter=0.25)
    for k, nominal in enumerate(policy.delays(), 1):
        assert policy.delay(k, rand=0.0) == pytest.approx(nominal * 0.75)
        assert policy.delay(k, rand=0.5) == nominal
        assert policy.delay(k, rand=1.0) == pytest.approx(nominal * 1.25)
        drawn = [policy.delay(k) for _ in range(500)]
        assert all(nominal * 0.75 <= d <= nominal * 1.25 for d in drawn)
        assert min(drawn) < nominal * 0.9 and max(drawn) > nominal * 1.1
    with pytest.raises(ValueError, match="count from 1"):
        policy.delay(0)


# -- Retry as a value --------------------------------------------------------------------


def test_retry_is_a_frozen_comparable_value_with_documented_defaults():
    policy = Retry()
    assert (policy.attempts, policy.initial, policy.backoff, policy.max_delay, policy.jitter) \
        == (3, 1.0, 2.0, 60.0, 0.1)
    assert policy.on == (Exception,) and policy.give_up_on == ()
    assert policy == Retry() and hash(policy) == hash(Retry())
    assert Retry(initial="1m") == Retry(initial=60) == Retry(initial=timedelta(minutes=1))
    assert Retry(on=ConnectionError) == Retry(on=(ConnectionError,))
    assert policy != Retry(attempts=4) and policy != "Retry()"
    assert len({Retry(), Retry(), Retry(jitter=0)}) == 2
    with pytest.raises(AttributeError):
        policy.attempts = 5  # type: ignore[misc]
    assert dataclasses.replace(policy, attempts=5) == Retry(attempts=5)
    assert repr(Retry(on=(ConnectionError, TimeoutError), give_up_on=PermissionError)) == (
        "Retry(attempts=3, initial=1.0, backoff=2.0, max_delay=60.0, jitter=0.1, "
        "on=(ConnectionError, TimeoutError), give_up_on=(PermissionError,))")


@pytest.mark.parametrize("options, message", [
    ({"attempts": 0}, "attempts must be an int of at least 1"),
    ({"attempts": 2.5}, "attempts must be an int"),
    ({"backoff": 0.5}, "backoff must be 1 or more"),
    ({"jitter": 1.5}, "jitter is a fraction"),
    ({"initial": "soon"}, "not a duration"),
    ({"max_delay": -1}, "zero or more"),
])
def test_bad_options_are_refused_with_a_reason(options, message):
    with pytest.raises(ValueError, match=message):
        Retry(**options)


def test_on_takes_exception_types():
    with pytest.raises(TypeError, match="exception types"):
        Retry(on=("ConnectionError",))  # type: ignore[arg-type]


# -- plain async functions ---------------------------------------------------------------


async def test_call_retries_until_success():
    fn = Flaky(ConnectionError("down"), ConnectionError("still down"))
    assert await Retry(initial=0, jitter=0).call(fn, "arg") == "ok"
    assert fn.calls == 3


async def test_the_last_error_is_raised_with_a_note_per_attempt():
    fn = Flaky(ConnectionError("one"), TimeoutError("two"), ConnectionError("three"))
    with pytest.raises(ConnectionError, match="three") as caught:
        await Retry(attempts=3, initial=0).call(fn)
    assert fn.calls == 3
    assert caught.value.__notes__ == [
        "attempt 1 of 3 failed: ConnectionError: one",
        "attempt 2 of 3 failed: TimeoutError: two",
        "attempt 3 of 3 failed: ConnectionError: three",
    ]


async def test_a_single_attempt_policy_adds_no_notes():
    with pytest.raises(ValueError) as caught:
        await Retry(attempts=1).call(Flaky(ValueError("no")))
    assert not hasattr(caught.value, "__notes__")


@pytest.mark.parametrize("error", [
    legato.SerializationError("can't store a lock"),
    legato.PayloadTooLarge("a 2 MB page"),
    legato.NonDeterminismError("wf", "3", "step 'a'", "step 'b'"),
    legato.GrantViolation("http.get", "domain", "evil.com", "not in the allow-list"),
    legato.EffectViolation("http.get", "http", "summarize", "declare it"),
    PermissionError("forbidden"),  # in give_up_on below
    KeyError("not in on=..."),  # not in on below
])
async def test_errors_that_cannot_succeed_are_never_retried(error):
    fn = Flaky(error)
    policy = Retry(attempts=5, initial=0, on=(Exception,) if not isinstance(error, KeyError)
                   else (OSError,), give_up_on=(PermissionError,))
    with pytest.raises(type(error)) as caught:
        await policy.call(fn)
    assert fn.calls == 1
    assert caught.value.__notes__[0].startswith("attempt 1 of 5 failed:")
    assert caught.value.__notes__[1].startswith("not retried: " + type(error).__name__)
    assert not policy.should_retry(error, 1)


async def test_cancellation_is_never_retried():
    fn = Flaky(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await Retry(attempts=5, initial=0).call(fn)
    assert fn.calls == 1


async def test_cancelling_the_caller_during_a_wait_stops_the_retries():
    fn = Flaky(*[ConnectionError()] * 5)
    task = asyncio.create_task(Retry(attempts=5, initial=30).call(fn))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fn.calls == 1


async def test_retry_decorator_bare_and_with_options():
    log: list[str] = []

    @retry(attempts=4, initial=0, on=(ConnectionError,))
    async def ping(host: str) -> str:
        """Ping a host."""
        log.append(host)
        if len(log) < 4:
            raise ConnectionError(host)
        return f"pong {host}"

    @retry
    async def always() -> None:
        raise ValueError("never")

    assert await ping("db") == "pong db" and log == ["db"] * 4
    assert ping.__name__ == "ping" and ping.__doc__ == "Ping a host."
    assert ping.retry == Retry(attempts=4, initial=0, on=(ConnectionError,))  # type: ignore[attr-defined]
    assert always.retry == Retry()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="'async def'"):
        retry(attempts=2)(lambda: None)  # type: ignore[arg-type, return-value]


async def test_a_step_outside_a_workflow_retries_with_plain_sleeps():
    fn = Flaky(ConnectionError("a"), value="fetched")

    @legato.step(retry=Retry(initial=0.001, jitter=0))
    async def fetch() -> str:
        return await fn()

    assert await fetch() == "fetched" and fn.calls == 2


# -- retried steps inside workflows --------------------------------------------------------


async def test_a_retried_step_waits_durably_with_exact_virtual_times(db):
    clock = legato.VirtualClock(start=T0)
    ran_at: list[float] = []

    @legato.step(retry=Retry(attempts=4, initial=1, backoff=2, jitter=0))
    async def fetch(url: str) -> str:
        ran_at.append(clock.now())
        if len(ran_at) < 3:
            raise ConnectionError(f"{url} unreachable")
        return f"<html>{url}</html>"

    @legato.workflow(name="fetch_page")
    async def fetch_page(url: str) -> str:
        return await fetch(url)

    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(fetch_page, "a.io", id="page") == "<html>a.io</html>"
        info = await rt.get("page")
        assert await rt.run(fetch_page, "a.io", id="page") == "<html>a.io</html>"  # replayed
    assert ran_at == [T0, T0 + 1, T0 + 3]
    assert [(s.position, s.kind, s.name, s.ok) for s in info.steps] == [
        ("1", "step", "fetch", True),
        ("1.1", "attempt", "fetch", False), ("1.2", "sleep", "", True),
        ("1.3", "attempt", "fetch", False), ("1.4", "sleep", "", True),
    ]


class RateLimited(Exception):
    """Like an HTTP 429: the server says when to come back."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


def test_a_retry_after_hint_sets_the_wait_within_the_policys_bounds():
    policy = Retry(initial=2, backoff=2, max_delay=4, jitter=0)
    assert policy.wait_after(RateLimited(3), 1) == 3.0  # longer than scheduled
    assert policy.wait_after(RateLimited(0.5), 1) == 0.5  # shorter than scheduled
    assert policy.wait_after(RateLimited(30), 1) == 4.0  # capped by max_delay
    assert policy.wait_after(RateLimited(-1), 1) == 0.0
    assert policy.wait_after(RateLimited(float("nan")), 2) == 4.0  # no hint: the schedule
    assert policy.wait_after(ConnectionError(), 2) == 4.0


async def test_a_retried_step_honours_retry_after_durably(db):
    clock = legato.VirtualClock(start=T0)
    ran_at: list[float] = []

    @legato.step(retry=Retry(attempts=3, initial=1, jitter=0))
    async def ask() -> str:
        ran_at.append(clock.now())
        if len(ran_at) == 1:
            raise RateLimited(retry_after=20)
        return "answer"

    @legato.workflow(name="ask_politely")
    async def ask_politely() -> str:
        return await ask()

    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(ask_politely, id="polite") == "answer"
    assert ran_at == [T0, T0 + 20]


async def test_when_every_attempt_fails_the_step_error_carries_each_attempt(db):
    clock = legato.VirtualClock(start=T0)
    runs = 0

    @legato.step(retry=Retry(attempts=3, initial=10, backoff=3, jitter=0))
    async def charge(cents: int) -> str:
        nonlocal runs
        runs += 1
        raise ConnectionError(f"gateway down ({runs})")

    @legato.workflow(name="pay")
    async def pay() -> str:
        return await charge(500)

    async with legato.Runtime(db, clock=clock) as rt:
        with pytest.raises(ConnectionError, match=r"gateway down \(3\)") as caught:
            await rt.run(pay, id="pay-1")
        info = await rt.get("pay-1")
        with pytest.raises(ConnectionError) as replayed:  # the recorded error, notes and all
            await rt.handle("pay-1").result()
    notes = [f"attempt {k} of 3 failed: ConnectionError: gateway down ({k})" for k in (1, 2, 3)]
    # then the traceback recorded where it failed (handle.result adds it)
    assert caught.value.__notes__[:-1] == notes and replayed.value.__notes__[:-1] == notes
    assert replayed.value.__notes__[-1].startswith("recorded traceback (workflow 'pay-1'")
    assert runs == 3 and clock.now() == T0 + 10 + 30
    assert info.status == "failed" and info.error == "ConnectionError: gateway down (3)"
    # the last failure is the step's own record, not one more attempt
    assert [(s.position, s.kind, s.ok) for s in info.steps] == [
        ("1", "step", False), ("1.1", "attempt", False), ("1.2", "sleep", True),
        ("1.3", "attempt", False), ("1.4", "sleep", True)]


async def test_give_up_on_and_never_retried_errors_fail_the_step_at_once(db):
    runs: list[str] = []

    @legato.step(retry=Retry(attempts=5, initial=1, give_up_on=(PermissionError,)))
    async def guarded(kind: str) -> None:
        runs.append(kind)
        if kind == "denied":
            raise PermissionError("no access")
        raise legato.PayloadTooLarge("response over the limit")

    @legato.workflow(name="guarded_flow")
    async def guarded_flow(kind: str) -> None:
        await guarded(kind)

    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        with pytest.raises(PermissionError) as denied:
            await rt.run(guarded_flow, "denied", id="g1")
        with pytest.raises(legato.PayloadTooLarge):
            await rt.run(guarded_flow, "huge", id="g2")
        info = await rt.get("g1")
    assert runs == ["denied", "huge"]
    assert denied.value.__notes__[-2] == "not retried: PermissionError is in give_up_on"
    assert [(s.position, s.kind) for s in info.steps] == [("1", "step")]


async def test_the_step_timeout_is_per_attempt_and_is_retried(db):
    first_cancelled = asyncio.Event()
    attempts = 0

    @legato.step(timeout=0.05, retry=Retry(attempts=2, initial=5, jitter=0))
    async def slow_then_fast() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            try:
                await asyncio.Event().wait()  # hangs until the timeout cancels it
            except asyncio.CancelledError:
                first_cancelled.set()
                raise
        return "fast"

    @legato.workflow(name="timed")
    async def timed() -> str:
        return await slow_then_fast()

    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        assert await rt.run(timed, id="timed") == "fast"
        info = await rt.get("timed")
    assert first_cancelled.is_set() and attempts == 2
    assert [(s.position, s.kind) for s in info.steps] == [
        ("1", "step"), ("1.1", "attempt"), ("1.2", "sleep")]


async def test_a_step_timeout_is_a_timeout_error_naming_the_step():
    @legato.step(timeout="20ms")
    async def hang() -> None:
        await asyncio.Event().wait()

    @legato.step(timeout=5)
    async def own_timeout() -> None:
        raise TimeoutError("the server said so")

    with pytest.raises(TimeoutError, match=r"step 'hang' did not finish within .* 0\.02 s"):
        await hang()
    with pytest.raises(TimeoutError, match="the server said so"):  # not rewritten
        await own_timeout()


async def test_a_thread_run_step_is_not_interrupted_by_its_timeout():
    release, finished = threading.Event(), threading.Event()

    @legato.step(timeout=0.05)
    def blocking() -> str:
        release.wait(10)
        finished.set()
        return "late"

    with pytest.raises(TimeoutError):
        await blocking()
    assert not finished.is_set()  # the wait ended; the thread runs on
    release.set()
    assert await asyncio.to_thread(finished.wait, 10)


async def test_a_restarted_runtime_neither_reruns_attempts_nor_restarts_the_wait(db):
    runs: list[float] = []
    clock = WatchedClock(legato.VirtualClock(start=T0, autojump=False), T0 + 10)
    later = WatchedClock(legato.VirtualClock(start=T0 + 4, autojump=False), T0 + 10)

    @legato.step(retry=Retry(attempts=3, initial=10, jitter=0))
    async def once_failing() -> str:
        runs.append((later if later.used else clock).now())
        if len(runs) == 1:
            raise ConnectionError("first run fails")
        return "second run works"

    @legato.workflow(name="restarted")
    async def restarted() -> str:
        return await once_failing()

    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(restarted, id="r")
        await clock.waiting.wait()  # attempt 1 failed; it and the wait are committed
        assert len((await rt.get("r")).steps) == 2
    # A new process 4 s later: 6 s of the 10 s wait are left.
    later.used = True
    async with legato.Runtime(db, clock=later) as rt:
        handle = asyncio.create_task(rt.handle("r").result(timeout=10))
        async with asyncio.timeout(5):
            await later.waiting.wait()  # replayed attempt 1, now in the recorded wait
        assert len(runs) == 1
        await later.virtual.advance(5.9)
        assert not handle.done()
        await later.virtual.advance(0.1)
        assert await handle == "second run works"
    assert runs == [T0, T0 + 10]


async def test_retry_count_and_wait_survive_sigkill_between_attempts(
        sqlite_db, tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    log.touch()
    monkeypatch.setenv("LEGATO_TEST_LOG", str(log))
    wake_at = await asyncio.to_thread(_kill_during_second_wait, sqlite_db, "rc-1")
    assert len(log.read_text().split()) == 2

    async with legato.Runtime(sqlite_db) as rt:
        result = await rt.handle("rc-1").result(timeout=20)
        info = await rt.get("rc-1")

    assert result == "ok after 3 runs"
    times = [float(t) for t in log.read_text().split()]
    assert len(times) == 3  # attempts 1 and 2 were not run again
    # attempt 3 ran when the recorded wait ended, not after a fresh 3 s wait
    assert wake_at <= times[2] < wake_at + 1.0
    assert [(s.position, s.kind) for s in info.steps] == [
        ("1", "step"), ("1.1", "attempt"), ("1.2", "sleep"), ("1.3", "attempt"),
        ("1.4", "sleep")]
    assert crash_retry_child.RETRY.delays() == (0.3, 3.0)


def _kill_during_second_wait(db: str, workflow_id: str) -> float:
    """Run the worker until it has committed its wait after attempt 2, then SIGKILL it.

    Returns the recorded wake-up time of that wait.
    """
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "crash_retry_child.py"), db, workflow_id],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if child.poll() is not None:
                output = child.stdout.read() if child.stdout else ""
                raise AssertionError(f"worker exited: {output}")
            wake_at = _recorded_wait(db, workflow_id, "1.4")
            if wake_at is not None:
                child.kill()  # while waiting between attempt 2 and attempt 3
                return wake_at
            time.sleep(0.005)
        raise AssertionError("the worker never reached its second wait")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _recorded_wait(db: str, workflow_id: str, position: str) -> float | None:
    if not Path(db).exists():
        return None
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT value FROM steps WHERE workflow_id = ? AND position = ?",
                (workflow_id, position)).fetchone()
    except sqlite3.OperationalError:  # the schema is not there yet
        return None
    return None if row is None else float(orjson.loads(row[0]))


# -- the seeds' examples -----------------------------------------------------------------


async def test_seed_stent_retry_loop_with_durable_sleep(db):
    """Stent's hand-written retry loop: 3 tries, durable sleeps of 1 s then 2 s."""
    clock = legato.VirtualClock(start=T0)
    tries: list[float] = []

    @legato.step
    async def try_operation(data: dict[str, int]) -> dict[str, object]:
        tries.append(clock.now())
        return {"success": len(tries) == 3, "value": data["x"] * 2}

    @legato.workflow(name="workflow_with_retry")
    async def workflow_with_retry(data: dict[str, int]) -> dict[str, object]:
        max_retries = 3
        for attempt in range(max_retries):
            result = await try_operation(data)
            if result["success"]:
                return {"ok": result}
            if attempt < max_retries - 1:
                await durable_sleep(f"{2 ** attempt}s")  # 1s, 2s
        return {"error": "Operation failed after retries"}

    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(workflow_with_retry, {"x": 21}, id="stent") == {
            "ok": {"success": True, "value": 42}}
        info = await rt.get("stent")
    assert tries == [T0, T0 + 1, T0 + 3]
    assert [s.kind for s in info.steps] == ["step", "sleep", "step", "sleep", "step"]


async def test_seed_beluga_chain_retries_with_a_fixed_delay(db):
    """Beluga's ``WithChainRetries(3), WithChainRetryDelay(2s)`` as a step policy."""
    clock = legato.VirtualClock(start=T0)
    chain_retry = Retry(attempts=3, initial="2s", backoff=1, jitter=0)
    assert chain_retry.delays() == (2.0, 2.0)
    ran: list[tuple[str, float]] = []

    @legato.step(retry=chain_retry)
    async def step2(text: str) -> str:
        ran.append(("step2", clock.now()))
        if len(ran) < 1 + 3:  # step1, then two failures
            raise ConnectionError("model overloaded")
        return text.upper()

    @legato.step
    async def step1(text: str) -> str:
        ran.append(("step1", clock.now()))
        return text + "!"

    @legato.workflow(name="beluga_chain")
    async def beluga_chain(text: str) -> str:
        return await step2(await step1(text))

    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(beluga_chain, "data", id="chain") == "DATA!"
    assert ran == [("step1", T0), ("step2", T0), ("step2", T0 + 2), ("step2", T0 + 4)]
