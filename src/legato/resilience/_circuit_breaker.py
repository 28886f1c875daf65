"""``CircuitBreaker``: stop calling a dependency that keeps failing, then probe it.

States::

    closed ──(max_failures consecutive failures)──> open
    open ──(reset_timeout passes)──> half_open
    half_open ──(the one probe succeeds)──> closed
    half_open ──(the probe fails)──> open

The state is **process-local, not durable**: a breaker models the health of a
dependency as this process sees it right now, which is worth nothing after a
restart (the dependency may have recovered) and differs between workers (one
may be cut off from a service another reaches fine). Replayed steps don't pass
through it at all: only calls that really run count.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ParamSpec, Protocol, TypeVar, final

from .._duration import Duration, to_seconds
from .._errors import CircuitOpenError

__all__ = ["CircuitBreaker", "CircuitState"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("legato.circuit_breaker")


class CircuitState(enum.StrEnum):
    """A breaker's state; a ``str``, so ``breaker.state == "open"`` works."""

    CLOSED = "closed"  # calls go through; consecutive failures are counted
    OPEN = "open"  # calls are refused at once with CircuitOpenError
    HALF_OPEN = "half_open"  # one probe call goes through; the rest are refused


class _Now(Protocol):
    def now(self) -> float: ...


@final
class _Monotonic:
    def now(self) -> float:
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class _Ticket:
    generation: int  # the breaker's generation when the call was let in
    probe: bool


StateHook = Callable[["CircuitBreaker", CircuitState, CircuitState], object]

# Tickets of the calls inside `async with breaker:` blocks of the current task.
_HELD: contextvars.ContextVar[tuple[tuple[CircuitBreaker, _Ticket], ...]] = (
    contextvars.ContextVar("legato_circuit_tickets", default=()))


@final
class CircuitBreaker:
    """Refuse calls to a failing dependency for a while, then let one probe through.

    Example::

        payments = legato.CircuitBreaker(max_failures=5, reset_timeout="60s", name="payments")

        @payments
        async def charge(customer: str, cents: int) -> str: ...

        @legato.step(circuit=payments, retry=legato.Retry(attempts=3))
        async def refund(charge_id: str) -> None: ...

        async with payments:
            await client.post(...)

    After ``max_failures`` failures in a row the breaker opens: calls raise
    :class:`~legato.CircuitOpenError` without running. Once ``reset_timeout``
    has passed it is half-open: exactly one caller gets through as a probe
    while every other caller is refused at once; the probe's success closes
    the breaker, its failure opens it again. A success while closed resets the
    count. A hung probe holds the breaker half-open, so give guarded calls a
    timeout (``@legato.step(timeout=...)``).

    Args:
        max_failures: consecutive counted failures that open the breaker.
        reset_timeout: how long it stays open before a probe is let through.
        counts: exception types that count as failures. Other exceptions are
            the caller's problem, not the dependency's: they count as successes.
            Cancellation never counts either way (a cancelled probe frees the
            probe slot for the next caller).
        clock: anything with ``now() -> float`` seconds (default: monotonic
            time); a ``legato.VirtualClock`` makes tests exact.
        on_state_change: called as ``hook(breaker, old, new)`` on each change of
            state; its errors are logged, never raised into the call.
        name: shown in ``repr`` and in the refusal message.

    The state moves from open to half-open when next looked at (a call, or
    reading :attr:`state`); the hook fires then. Use a breaker from one event
    loop. Equality is identity: two breakers with the same settings guard two
    different circuits.
    """

    __slots__ = ("_clock", "_counts", "_failures", "_generation", "_last_error",
                 "_max_failures", "_name", "_on_state_change", "_opened_at", "_probing",
                 "_rejections", "_reset_timeout", "_state", "_successes", "_total_failures")

    def __init__(
        self, max_failures: int = 5, reset_timeout: Duration = 60, *,
        counts: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        clock: _Now | None = None, on_state_change: StateHook | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(max_failures, bool) or not isinstance(max_failures, int) \
                or max_failures < 1:
            raise ValueError(f"max_failures must be an int of at least 1, not {max_failures!r}")
        self._max_failures = max_failures
        self._reset_timeout = to_seconds(reset_timeout)
        self._counts = counts if isinstance(counts, tuple) else (counts,)
        self._clock: _Now = clock if clock is not None else _Monotonic()
        self._on_state_change = on_state_change
        self._name = name
        self._state = CircuitState.CLOSED
        self._generation = 0  # bumped on each change of state: late outcomes are ignored
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._last_error = ""
        self._successes = self._total_failures = self._rejections = 0

    def __repr__(self) -> str:
        return (f"CircuitBreaker(name={self._name!r}, state={str(self.state)!r}, "
                f"failures={self._failures}, max_failures={self._max_failures}, "
                f"reset_timeout={self._reset_timeout})")

    # -- settings (read-only) and counts ------------------------------------------

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def max_failures(self) -> int:
        return self._max_failures

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before it lets a probe through."""
        return self._reset_timeout

    @property
    def counts(self) -> tuple[type[BaseException], ...]:
        """The exception types that count as failures."""
        return self._counts

    @property
    def state(self) -> CircuitState:
        """The current state (moving open to half-open if the reset timeout has passed)."""
        self._refresh()
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive counted failures: the ones that opened or may open the breaker."""
        return self._failures

    @property
    def successes(self) -> int:
        """Calls that ended without a counted failure, since the breaker was made."""
        return self._successes

    @property
    def total_failures(self) -> int:
        """Counted failures since the breaker was made."""
        return self._total_failures

    @property
    def rejections(self) -> int:
        """Calls refused with ``CircuitOpenError`` since the breaker was made."""
        return self._rejections

    # -- use ----------------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args,
                   **kwargs: P.kwargs) -> R:
        """Run ``await fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with a probe in flight.
        """
        ticket = self._admit()
        try:
            value = await fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self._settle(ticket, None)
        return value

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Guard every call of an ``async def`` (``@breaker``)."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"a CircuitBreaker guards 'async def' functions, and {fn.__qualname__} is not "
                "one; for a blocking function use @legato.step(circuit=...)")

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            return await self.call(fn, *args, **kwargs)

        return guarded

    async def __aenter__(self) -> CircuitBreaker:
        _HELD.set((*_HELD.get(), (self, self._admit())))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        held = _HELD.get()
        index = max(i for i, (breaker, _) in enumerate(held) if breaker is self)
        _HELD.set(held[:index] + held[index + 1:])
        self._settle(held[index][1], exc)

    # -- the state machine ----------------------------------------------------------

    def _admit(self) -> _Ticket:
        self._refresh()
        if self._state is CircuitState.CLOSED:
            return _Ticket(self._generation, probe=False)
        if self._state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return _Ticket(self._generation, probe=True)
        self._rejections += 1
        raise CircuitOpenError(self._refusal())

    def _settle(self, ticket: _Ticket, exc: BaseException | None) -> None:
        current = ticket.generation == self._generation
        if exc is not None and not isinstance(exc, Exception):  # cancellation and the like
            if current and ticket.probe:
                self._probing = False
            return
        failed = exc is not None and isinstance(exc, self._counts)
        if failed:
            self._total_failures += 1
        else:
            self._successes += 1
        if not current:  # let in before the last change of state: old news
            return
        if failed:
            self._failures += 1
            self._last_error = _describe(exc)
            if self._state is CircuitState.HALF_OPEN or self._failures >= self._max_failures:
                self._opened_at = self._clock.now()
                self._move(CircuitState.OPEN)
        else:
            self._failures = 0
            if self._state is CircuitState.HALF_OPEN:
                self._move(CircuitState.CLOSED)

    def _refresh(self) -> None:
        if (self._state is CircuitState.OPEN
                and self._clock.now() >= self._opened_at + self._reset_timeout):
            self._move(CircuitState.HALF_OPEN)

    def _move(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        self._generation += 1
        self._probing = False
        if self._on_state_change is not None:
            try:
                self._on_state_change(self, old, new)
            except Exception:
                log.exception("on_state_change hook of %r failed", self)

    def _refusal(self) -> str:
        who = f"circuit breaker {self._name!r}" if self._name else "circuit breaker"
        if self._state is CircuitState.HALF_OPEN:
            return (f"{who} is half_open: a probe call is in flight and the breaker closes "
                    "if it succeeds; other calls are refused until then. Try again shortly.")
        left = max(0.0, self._opened_at + self._reset_timeout - self._clock.now())
        return (f"{who} is open after {self._failures} consecutive failures (last: "
                f"{self._last_error}); calls are refused for {round(left, 1):g} s more, then one "
                "probe call may close it. Handle CircuitOpenError with a fallback, or retry "
                "later.")


def _describe(exc: BaseException | None) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
