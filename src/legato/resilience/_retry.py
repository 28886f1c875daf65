"""``Retry``: when to try again, and how long to wait in between.

A :class:`Retry` is a value: frozen, comparable, hashable, declared once and
shared. It computes an exponential backoff schedule with jitter and decides
which errors are worth another attempt. Three ways to use it:

- ``@legato.step(retry=Retry(...))``: inside a workflow every failed attempt
  is recorded and the wait between attempts is a durable sleep, so a crash
  neither restarts the count nor the wait (see :func:`legato.step`);
- ``await Retry(...).call(fn, *args)`` for any async function;
- ``@legato.retry(attempts=5)`` on an ``async def``.

The last two wait with plain :func:`asyncio.sleep`: they are not recorded, so
inside a workflow use a retried step instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, final, overload

from .._duration import Duration, to_seconds
from .._errors import EffectViolation, GrantViolation, NonDeterminismError, SerializationError

__all__ = ["NEVER_RETRIED", "Retry", "give_up", "retry"]

P = ParamSpec("P")
R = TypeVar("R")

ErrorTypes = type[BaseException] | tuple[type[BaseException], ...]

#: Errors that can never succeed by trying again; no policy retries them.
#: (``PayloadTooLarge`` is a ``SerializationError``; cancellation is not an
#: ``Exception`` and always passes straight through. A grant or an effect
#: declaration refuses the same call the same way every time.)
NEVER_RETRIED: tuple[type[BaseException], ...] = (
    SerializationError, NonDeterminismError, GrantViolation, EffectViolation)


@final
@dataclass(frozen=True, init=False, repr=False, slots=True)
class Retry:
    """A retry policy: up to ``attempts`` tries with exponential backoff and jitter.

    The wait after failed attempt ``k`` (counting from 1) is
    ``min(initial * backoff ** (k - 1), max_delay)``, spread by a random
    ``±jitter`` fraction so that many callers failing together don't retry in
    lockstep. With the defaults: about 1 s, then 2 s, then give up.

    Example::

        policy = legato.Retry(attempts=5, initial="500ms", backoff=2, jitter=0)
        policy.delays()                      # (0.5, 1.0, 2.0, 4.0)
        page = await policy.call(fetch, url)

        @legato.step(retry=policy, timeout=10)
        async def fetch(url: str) -> str: ...

    Args:
        attempts: how many times to call in all (``1`` means no retry).
        initial: the wait after the first failure: seconds, ``timedelta`` or ``"1s"``.
        backoff: each wait is this many times the one before (``1`` = constant waits).
        max_delay: the cap on a wait before jitter is applied.
        jitter: each wait is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``;
            ``0`` makes the schedule exact.
        on: retry only errors of these types (default: any ``Exception``).
        give_up_on: never retry errors of these types, even if they match ``on``.

    Whatever the policy says, ``SerializationError`` (so ``PayloadTooLarge``),
    ``NonDeterminismError``, ``GrantViolation``, ``EffectViolation`` and
    cancellation are never retried: they can't succeed by trying again. When
    the last attempt fails, its error is raised with one note per attempt
    (``exc.__notes__``) saying what each one raised.

    A ``Retry`` is a frozen dataclass compared by value, so it can be a module
    constant shared by many steps; derive variants with
    ``dataclasses.replace(policy, attempts=10)``.
    """

    attempts: int
    initial: float
    backoff: float
    max_delay: float
    jitter: float
    on: tuple[type[BaseException], ...]
    give_up_on: tuple[type[BaseException], ...]

    def __init__(
        self, attempts: int = 3, initial: Duration = 1.0, backoff: float = 2.0,
        max_delay: Duration = 60.0, jitter: float = 0.1, on: ErrorTypes = (Exception,),
        give_up_on: ErrorTypes = (),
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int of at least 1, not {attempts!r}")
        if not backoff >= 1:
            raise ValueError(f"backoff must be 1 or more (1 means equal waits), not {backoff!r}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, not {jitter!r}")
        setattr_ = object.__setattr__  # frozen: fields are set once, here
        setattr_(self, "attempts", attempts)
        setattr_(self, "initial", to_seconds(initial))
        setattr_(self, "backoff", float(backoff))
        setattr_(self, "max_delay", to_seconds(max_delay))
        setattr_(self, "jitter", float(jitter))
        setattr_(self, "on", _types("on", on))
        setattr_(self, "give_up_on", _types("give_up_on", give_up_on))

    def __repr__(self) -> str:
        return (
            f"Retry(attempts={self.attempts}, initial={self.initial}, backoff={self.backoff}, "
            f"max_delay={self.max_delay}, jitter={self.jitter}, on={_names(self.on)}, "
            f"give_up_on={_names(self.give_up_on)})"
        )

    # -- the schedule -----------------------------------------------------------

    def delay(self, attempt: int, rand: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1 = the first call).

        ``rand`` in ``[0, 1]`` places the wait within the jitter band: ``0`` is
        the shortest, ``0.5`` the nominal wait, ``1`` the longest; by default it
        is drawn with :func:`random.random`.

        >>> Retry(initial=1, backoff=3, jitter=0.5).delay(2, rand=1.0)
        4.5
        """
        if attempt < 1:
            raise ValueError(f"attempts count from 1, not {attempt!r}")
        nominal = min(self.initial * self.backoff ** min(attempt - 1, 1024), self.max_delay)
        if not self.jitter:
            return nominal
        r = random.random() if rand is None else rand
        return nominal * (1.0 + self.jitter * (2.0 * r - 1.0))

    def wait_after(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` raised ``error``.

        The scheduled :meth:`delay`, unless the error says when to come back:
        an error with a numeric ``retry_after`` attribute (seconds; HTTP 429
        and 503 responses carry one from their ``Retry-After`` header) waits
        that long instead, shorter or longer than the schedule, within the
        policy's bounds (0 to ``max_delay``), as Temporal's ``next_retry_delay``
        and DBOS's retries do. Raise ``max_delay`` to honour longer hints.

        >>> class Busy(Exception):
        ...     retry_after = 7.0
        >>> Retry(initial=1, jitter=0).wait_after(Busy(), 1)
        7.0
        """
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, (int, float)) and not isinstance(hint, bool) and hint == hint:
            return min(max(float(hint), 0.0), self.max_delay)
        return self.delay(attempt)

    def delays(self) -> tuple[float, ...]:
        """The nominal waits between the attempts, without jitter.

        >>> Retry(attempts=4, initial=1, backoff=2, max_delay=3).delays()
        (1.0, 2.0, 3.0)
        """
        return tuple(self.delay(k, 0.5) for k in range(1, self.attempts))

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to try again after ``attempt`` failed with ``error``.

        Handy in hand-written retry loops::

            for attempt in itertools.count(1):
                try:
                    return await call()
                except Exception as exc:
                    if not policy.should_retry(exc, attempt):
                        raise
                await legato.sleep(policy.wait_after(exc, attempt))
        """
        return self._refusal(error, attempt) is None

    def _refusal(self, error: BaseException, attempt: int) -> str | None:
        """Why ``error`` after ``attempt`` is not retried, or ``None`` if it is."""
        kind = type(error).__name__
        if not isinstance(error, Exception):
            return f"{kind} is not an Exception"
        if isinstance(error, NEVER_RETRIED):
            return f"{kind} can never succeed by retrying"
        if isinstance(error, self.give_up_on):
            return f"{kind} is in give_up_on"
        if not isinstance(error, self.on):
            return f"{kind} is not in on={_names(self.on)}"
        if attempt >= self.attempts:
            return "no attempts left"
        return None

    # -- running ----------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args,
                   **kwargs: P.kwargs) -> R:
        """Call ``await fn(*args, **kwargs)`` until it succeeds or the policy gives up.

        Waits with :func:`asyncio.sleep` between attempts (not recorded: inside
        a workflow, use ``@legato.step(retry=...)`` for durable waits).

        >>> text = await legato.Retry(attempts=5).call(fetch, "https://example.com")

        Raises:
            The last attempt's error, with a note per attempt.
        """
        errors: list[BaseException] = []
        for attempt in itertools.count(1):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                errors.append(exc)
                if not self.should_retry(exc, attempt):
                    give_up(self, exc, errors)
                    raise
            await asyncio.sleep(self.wait_after(errors[-1], attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def wrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """``fn`` with this policy applied to every call (what :func:`retry` returns)."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"retry needs an 'async def' function, and {fn.__qualname__} is not one; "
                "for a blocking function use @legato.step(retry=...), which runs it in a thread"
            )

        @functools.wraps(fn)
        async def retried(*args: P.args, **kwargs: P.kwargs) -> R:
            return await self.call(fn, *args, **kwargs)

        retried.retry = self  # type: ignore[attr-defined]
        return retried


def give_up(policy: Retry, error: BaseException, errors: Sequence[BaseException]) -> None:
    """Note on ``error`` (the last of ``errors``) what each attempt raised, and why no more.

    Adds nothing when a single attempt simply used up a one-attempt policy.
    """
    reason = policy._refusal(error, len(errors))
    if len(errors) == 1 and reason == "no attempts left":
        return
    for k, exc in enumerate(errors, 1):
        error.add_note(f"attempt {k} of {policy.attempts} failed: {_describe(exc)}")
    if reason != "no attempts left":
        error.add_note(f"not retried: {reason}")


@overload
def retry(fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...
@overload
def retry(
    *, attempts: int = 3, initial: Duration = 1.0, backoff: float = 2.0,
    max_delay: Duration = 60.0, jitter: float = 0.1, on: ErrorTypes = (Exception,),
    give_up_on: ErrorTypes = (),
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...


def retry(
    fn: Callable[P, Awaitable[R]] | None = None, /, *, attempts: int = 3,
    initial: Duration = 1.0, backoff: float = 2.0, max_delay: Duration = 60.0,
    jitter: float = 0.1, on: ErrorTypes = (Exception,), give_up_on: ErrorTypes = (),
) -> Any:
    """Retry an ``async def`` by a :class:`Retry` policy made from these options.

    Example::

        @legato.retry(attempts=5, initial="200ms", on=(ConnectionError,))
        async def ping(host: str) -> float: ...

    Bare ``@legato.retry`` uses the defaults of :class:`Retry`; the policy is
    kept on the wrapper as ``ping.retry``. The wait between attempts is a plain
    ``asyncio.sleep``; for durable, recorded retries inside workflows use
    ``@legato.step(retry=legato.Retry(...))``.
    """
    policy = Retry(attempts=attempts, initial=initial, backoff=backoff, max_delay=max_delay,
                   jitter=jitter, on=on, give_up_on=give_up_on)
    return policy.wrap(fn) if fn is not None else policy.wrap


def _types(option: str, value: ErrorTypes) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"{option} takes exception types, like (ConnectionError,), not {t!r}")
    return types


def _names(types: tuple[type[BaseException], ...]) -> str:
    inner = ", ".join(t.__qualname__ for t in types)
    return f"({inner},)" if len(types) == 1 else f"({inner})"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
