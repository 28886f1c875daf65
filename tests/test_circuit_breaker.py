"""Circuit breakers: the state machine in virtual time, the single probe, the three uses."""

from __future__ import annotations

import asyncio
import logging

import pytest

import legato
from legato.resilience import CircuitBreaker, CircuitState, Retry

T0 = 1_000_000.0


class Dependency:
    """A fake remote service: fails while ``down``; counts the calls that reach it."""

    def __init__(self, down: bool = True) -> None:
        self.down = down
        self.calls = 0

    async def __call__(self, x: int = 0) -> int:
        self.calls += 1
        if self.down:
            raise ConnectionError("service unavailable")
        return x + 1


def make(max_failures: int = 3, reset_timeout: float = 60, **options: object
         ) -> tuple[CircuitBreaker, legato.VirtualClock, list[tuple[str, str]]]:
    clock = legato.VirtualClock(start=T0, autojump=False)
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        max_failures, reset_timeout, clock=clock, name="payments",
        on_state_change=lambda b, old, new: changes.append((old, new)), **options)  # type: ignore[arg-type]
    return breaker, clock, changes


async def fail(breaker: CircuitBreaker, service: Dependency, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(service)


async def test_closed_to_open_after_consecutive_failures_then_fast_refusals():
    breaker, clock, changes = make(max_failures=3)
    service = Dependency()
    assert breaker.state is CircuitState.CLOSED and breaker.state == "closed"
    await fail(breaker, service, 2)
    assert breaker.failures == 2 and breaker.state == "closed"
    service.down = False
    assert await breaker.call(service, 1) == 2
    assert breaker.failures == 0  # a success resets the count: only consecutive failures open it
    service.down = True
    await fail(breaker, service, 3)
    assert breaker.state is CircuitState.OPEN and changes == [("closed", "open")]

    await clock.advance(20)
    with pytest.raises(legato.CircuitOpenError) as refused:
        await breaker.call(service)
    assert service.calls == 6  # refused without calling
    message = str(refused.value)
    assert "circuit breaker 'payments' is open" in message
    assert "3 consecutive failures" in message and "ConnectionError" in message
    assert "refused for 40 s more" in message
    assert (breaker.failures, breaker.total_failures, breaker.successes, breaker.rejections) \
        == (3, 5, 1, 1)
    assert repr(breaker) == ("CircuitBreaker(name='payments', state='open', failures=3, "
                             "max_failures=3, reset_timeout=60.0)")


async def test_half_open_after_the_reset_timeout_then_closed_by_a_good_probe():
    breaker, clock, changes = make(max_failures=2, reset_timeout=60)
    service = Dependency()
    await fail(breaker, service, 2)
    await clock.advance(59.5)
    assert breaker.state == "open"
    await clock.advance(0.5)
    assert breaker.state is CircuitState.HALF_OPEN
    service.down = False
    assert await breaker.call(service, 41) == 42
    assert breaker.state == "closed" and breaker.failures == 0
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_a_failed_probe_opens_the_breaker_for_another_full_timeout():
    breaker, clock, changes = make(max_failures=2, reset_timeout="1m")
    service = Dependency()
    await fail(breaker, service, 2)
    await clock.advance(60)
    await fail(breaker, service, 1)  # the probe
    assert breaker.state == "open" and service.calls == 3
    await clock.advance(59)
    assert breaker.state == "open"
    await clock.advance(1)
    assert breaker.state == "half_open"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                       ("open", "half_open")]


async def test_exactly_one_probe_among_50_concurrent_callers():
    breaker, clock, _ = make(max_failures=1, reset_timeout=30)
    await fail(breaker, Dependency(), 1)
    await clock.advance(30)
    release, entered = asyncio.Event(), asyncio.Event()
    probes = 0

    @breaker
    async def call_service() -> str:
        nonlocal probes
        probes += 1
        entered.set()
        await release.wait()
        return "healthy"

    tasks = [asyncio.create_task(call_service()) for _ in range(50)]
    await entered.wait()
    await asyncio.sleep(0)
    refused = [t for t in tasks if t.done()]
    assert len(refused) == 49 and probes == 1  # refused at once, while the probe is in flight
    for task in refused:
        with pytest.raises(legato.CircuitOpenError, match="'payments' is half_open"):
            task.result()
    assert breaker.state == "half_open" and breaker.rejections == 49
    release.set()
    assert [r for r in await asyncio.gather(*tasks, return_exceptions=True)
            if r == "healthy"] == ["healthy"]
    assert breaker.state == "closed"
    assert await asyncio.gather(*(call_service() for _ in range(50))) == ["healthy"] * 50
    assert probes == 51


async def test_a_failing_probe_under_concurrency_reopens_and_refuses_the_rest():
    breaker, clock, _ = make(max_failures=1, reset_timeout=10)
    service = Dependency()
    await fail(breaker, service, 1)
    await clock.advance(10)
    results = await asyncio.gather(*(breaker.call(service) for _ in range(50)),
                                   return_exceptions=True)
    assert sum(isinstance(r, ConnectionError) for r in results) == 1
    assert sum(isinstance(r, legato.CircuitOpenError) for r in results) == 49
    assert breaker.state == "open" and service.calls == 2


async def test_cancellation_never_counts():
    breaker, clock, _ = make(max_failures=1, reset_timeout=10)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    for _ in range(3):  # cancelled calls while closed: no failures
        started.clear()
        task = asyncio.create_task(breaker.call(hang))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.total_failures == 0

    await fail(breaker, Dependency(), 1)
    await clock.advance(10)
    started.clear()
    probe = asyncio.create_task(breaker.call(hang))
    await started.wait()
    with pytest.raises(legato.CircuitOpenError):
        async with asyncio.timeout(1):
            await breaker.call(hang)
    probe.cancel()  # a cancelled probe frees the slot; the state stays half-open
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state == "half_open"
    assert await breaker.call(Dependency(down=False)) == 1  # the next caller probes
    assert breaker.state == "closed"


async def test_only_the_configured_exceptions_count():
    breaker, clock, _ = make(max_failures=2, reset_timeout=5, counts=(ConnectionError,))

    async def bad_request() -> None:
        raise ValueError("caller's mistake")

    for _ in range(5):
        with pytest.raises(ValueError):
            await breaker.call(bad_request)
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.successes == 5
    await fail(breaker, Dependency(), 2)
    await clock.advance(5)
    with pytest.raises(ValueError):
        await breaker.call(bad_request)  # the dependency answered: it is healthy again
    assert breaker.state == "closed"
    assert CircuitBreaker(counts=OSError).counts == (OSError,)


async def test_outcomes_of_calls_let_in_before_the_last_change_are_ignored():
    breaker, clock, changes = make(max_failures=2, reset_timeout=10)
    release = [asyncio.Event(), asyncio.Event()]

    async def slow(i: int) -> str:
        await release[i].wait()
        if i:
            raise ConnectionError("late failure")
        return "late success"

    late = [asyncio.create_task(breaker.call(slow, i)) for i in (0, 1)]
    await asyncio.sleep(0)
    await fail(breaker, Dependency(), 2)
    await clock.advance(10)
    assert breaker.state == "half_open"
    release[0].set()
    assert await late[0] == "late success"  # not a probe: it doesn't close the breaker
    release[1].set()
    with pytest.raises(ConnectionError):
        await late[1]  # nor does a stale failure reopen it
    assert breaker.state == "half_open" and breaker.failures == 2
    assert changes == [("closed", "open"), ("open", "half_open")]


async def test_async_with_and_decorator_forms():
    breaker, _, _ = make(max_failures=2)
    async with breaker:
        pass
    for _ in range(2):
        with pytest.raises(ConnectionError):
            async with breaker:
                raise ConnectionError("down")
    with pytest.raises(legato.CircuitOpenError):
        async with breaker:
            raise AssertionError("not reached")  # pragma: no cover
    assert breaker.successes == 1 and breaker.total_failures == 2

    outer, inner = CircuitBreaker(name="outer"), CircuitBreaker(name="inner")
    with pytest.raises(KeyError):
        async with outer as entered, inner:  # nested blocks settle their own breaker
            assert entered is outer
            raise KeyError("x")
    assert outer.total_failures == inner.total_failures == 1
    with pytest.raises(TypeError, match="'async def'"):
        breaker(lambda: None)  # type: ignore[arg-type, return-value]


async def test_concurrent_async_with_blocks_keep_their_own_tickets():
    breaker, clock, _ = make(max_failures=1, reset_timeout=1)
    await fail(breaker, Dependency(), 1)
    await clock.advance(1)
    gate = asyncio.Event()

    async def guarded(fails: bool) -> None:
        async with breaker:
            await gate.wait()
            if fails:
                raise ConnectionError("probe failed")

    probe = asyncio.create_task(guarded(True))
    await asyncio.sleep(0)
    with pytest.raises(legato.CircuitOpenError):
        await guarded(False)
    gate.set()
    with pytest.raises(ConnectionError):
        await probe
    assert breaker.state == "open"


async def test_a_failing_state_hook_is_logged_not_raised(caplog):
    def broken(*args: object) -> None:
        raise RuntimeError("hook bug")

    breaker = CircuitBreaker(1, 10, on_state_change=broken, name="b",
                             clock=legato.VirtualClock(autojump=False))
    with caplog.at_level(logging.ERROR, logger="legato.circuit_breaker"):
        await fail(breaker, Dependency(), 1)
    assert breaker.state == "open" and "on_state_change hook" in caplog.text


async def test_defaults_and_the_real_clock():
    breaker = CircuitBreaker()
    assert (breaker.max_failures, breaker.reset_timeout, breaker.counts, breaker.name) == (
        5, 60.0, (Exception,), None)
    quick = CircuitBreaker(1, reset_timeout="50ms")
    await fail(quick, Dependency(), 1)
    assert quick.state == "open"
    await asyncio.sleep(0.06)
    assert quick.state == "half_open"
    with pytest.raises(ValueError, match="max_failures"):
        CircuitBreaker(0)
    assert breaker != CircuitBreaker() and breaker == breaker  # one breaker, one circuit


async def test_a_step_with_a_circuit_breaker_outside_a_workflow():
    breaker, _, _ = make(max_failures=2)
    service = Dependency()

    @legato.step(circuit=breaker)
    async def charge(cents: int) -> int:
        return await service(cents)

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await charge(100)
    with pytest.raises(legato.CircuitOpenError):
        await charge(100)
    assert service.calls == 2


async def test_seed_beluga_circuit_breaker_prevents_cascading_failures(db):
    """Beluga's ``WithCircuitBreaker(maxFailures: 5, timeout: 60s)`` on a retried step.

    Attempts every 15 s (durable waits). The first five reach the failing
    service and open the breaker at t=60; the next three are refused without
    touching it; at t=120 the one probe finds the service back and closes it.
    """
    clock = legato.VirtualClock(start=T0)
    breaker = CircuitBreaker(max_failures=5, reset_timeout=60, clock=clock, name="llm")
    service = Dependency()
    reached_at: list[float] = []

    @legato.step(circuit=breaker, retry=Retry(attempts=10, initial=15, backoff=1, jitter=0))
    async def generate(x: int) -> int:
        reached_at.append(clock.now())
        service.down = len(reached_at) <= 5
        return await service(x)

    @legato.workflow(name="beluga_breaker")
    async def beluga_breaker() -> int:
        return await generate(41)

    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(beluga_breaker, id="bb") == 42
        info = await rt.get("bb")
    assert reached_at == [T0 + 15 * k for k in (0, 1, 2, 3, 4, 8)]
    assert service.calls == 6 and breaker.rejections == 3
    assert breaker.state == "closed" and clock.now() == T0 + 120
    attempts = [s for s in info.steps if s.kind == "attempt"]
    assert len(attempts) == 8  # five failures, three refusals; the ninth succeeded


async def test_breaker_and_timeout_compose_a_timeout_counts_as_a_failure():
    breaker, _, _ = make(max_failures=2)

    @legato.step(circuit=breaker, timeout=0.02)
    async def hang() -> None:
        await asyncio.Event().wait()

    for _ in range(2):
        with pytest.raises(TimeoutError):
            await hang()
    assert breaker.state == "open" and breaker.total_failures == 2
