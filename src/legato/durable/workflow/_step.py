"""``@legato.step``: a function whose outcome is checkpointed inside workflows.

With a retry policy, a step called at position ``P`` keeps its attempts in
the child scope ``P.``: each failed attempt that will be retried is recorded
at ``P.1``, ``P.3``, ... (kind ``"attempt"``), and each wait after it is a
durable sleep at ``P.2``, ``P.4``, ... The step's final outcome is still the
one record at ``P``. On replay, recorded attempts are not run again and a
recorded wait only waits what is left, so a crash restarts neither the count
nor the wait.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, final, overload

from ..._duration import Duration, to_seconds
from ..._errors import StepFailed
from ...flow._hooks import RECORDER
from ...resilience import CircuitBreaker, Retry
from ...resilience._deadline import within
from ...resilience._retry import give_up
from ...store import StepRecord
from ..engine import Run, Scope, Unwind, observe, operation, step_label, steps_running
from ._recorded import STEP_AT, StepAt

__all__ = ["Step", "step"]

P = ParamSpec("P")
R = TypeVar("R")


@final
class Step(Generic[P, R]):
    """A function made durable by :func:`step`. Calling it returns a coroutine."""

    def __init__(
        self, fn: Callable[P, Awaitable[R]] | Callable[P, R], *, name: str | None,
        timeout: Duration | None, retry: Retry | None = None,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry= takes a legato.Retry(...), not {retry!r}")
        if circuit is not None and not isinstance(circuit, CircuitBreaker):
            raise TypeError(f"circuit= takes a legato.CircuitBreaker(...), not {circuit!r}")
        self.fn = fn
        self.name = name or fn.__name__
        self.timeout = None if timeout is None else to_seconds(timeout)
        self.retry = retry
        self.circuit = circuit
        self._is_async = inspect.iscoroutinefunction(fn)
        # no breaker, no timeout: an attempt is the coroutine function's own call
        self._direct = self._is_async and circuit is None and self.timeout is None
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<legato.step {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self._run(args, kwargs)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        scope = RECORDER.get()
        if isinstance(scope, Scope):
            # a partial, not a closure: 3 objects for the collector to track instead of 6
            return await operation(scope, "step", self.name,
                                   functools.partial(self._durable, scope, args, kwargs),
                                   nested=True)
        if self.retry is None:
            return await self._attempt(args, kwargs)
        return await self.retry.call(self._attempt, args, kwargs)

    def _durable(
        self, scope: Scope, args: tuple[Any, ...], kwargs: dict[str, Any], position: str
    ) -> Awaitable[R]:
        # not a coroutine of its own: one frame less on every durable step
        at = StepAt(scope.run, position)
        if self.retry is None:
            return self._unrecorded(at, args, kwargs)
        return self._with_retries(self.retry, scope, at, args, kwargs)

    async def _with_retries(
        self, policy: Retry, scope: Scope, at: StepAt, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        run, position = scope.run, at.position
        # A long wait between attempts may unload the workflow when the step could.
        attempts = Scope(run, f"{position}.", suspendable=scope.suspendable)
        errors: list[BaseException] = []
        for attempt in itertools.count(1):
            attempt_at = attempts.next_position()
            past = run.replay(attempt_at, "attempt", self.name)
            if past is not None:  # failed before a crash: not run again
                error = _recorded_error(run, past)
            else:
                # the first was checked by operation(); a retry comes later
                if attempt > 1 and not run.lease_held():
                    await run.confirm_lease()
                try:
                    return await self._unrecorded(at, args, kwargs, attempt)
                except Exception as exc:
                    error = exc
            errors.append(error)
            if not policy.should_retry(error, attempt):
                give_up(policy, error, errors)
                raise error
            if past is None:
                await run.commit_error(attempt_at, "attempt", self.name, error)
            await attempts.sleep(policy.wait_after(error, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _unrecorded(self, at: StepAt, args: tuple[Any, ...],
                          kwargs: dict[str, Any], attempt: int = 1) -> R:
        # The body is ordinary code: nothing inside it is recorded, and tasks
        # it creates are not workflow branches.
        observer = observe.OBSERVER
        observed = (None if observer is None
                    else observer.step(at.run.id, at.position, self.name, attempt))
        error: BaseException | None = None
        # a fresh StepAt per attempt: its stream writes are counted from 0 (see _stream)
        token, step_token = RECORDER.set(None), STEP_AT.set(StepAt(at.run, at.position))
        task = asyncio.current_task()
        if task is not None:  # named in a warning if it blocks the event loop
            steps_running[task] = step_label(at.run.id, at.position, self.name)
        try:
            if self._direct:
                return await cast(Awaitable[R], self.fn(*args, **kwargs))
            return await self._attempt(args, kwargs)
        except (Exception, asyncio.CancelledError) as exc:
            error = exc
            raise
        except Unwind:  # the attempt stops (unloaded, taken over): not the step's failure
            error = asyncio.CancelledError()
            raise
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt or a custom BaseException raised by the
            # step's own code is its failure, recorded like any other; it must not
            # kill the worker (which a supervisor would restart into the same step).
            error = _failure(self.name, exc)
            raise error from exc
        finally:
            RECORDER.reset(token)
            STEP_AT.reset(step_token)
            if task is not None:
                steps_running.pop(task, None)
            if observed is not None:
                observed.end(error)

    async def _attempt(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """One call of the function, through the circuit breaker, within the timeout."""
        if self.circuit is None:
            return await self._timed(args, kwargs)
        return await self.circuit.call(self._timed, args, kwargs)

    async def _timed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self._is_async:
            call: Awaitable[R] = self.fn(*args, **kwargs)  # type: ignore[assignment]
        else:
            # A thread can't be interrupted: on timeout the wait ends, the thread runs on.
            call = asyncio.to_thread(self.fn, *args, **kwargs)  # type: ignore[arg-type]
        if self.timeout is None:
            return await call
        return await within(self.timeout, call, lambda: (
            f"step {self.name!r} did not finish within its timeout of {self.timeout:g} s "
            "and was cancelled; raise timeout= or make the work smaller"))


def _failure(name: str, exc: BaseException) -> StepFailed:
    kind = type(exc)
    return StepFailed(
        f"{kind.__module__}.{kind.__qualname__}",
        f"step {name!r} raised {exc!r}; a BaseException from a step is recorded as its "
        "failure (raise an Exception subclass to let the workflow tell it apart)",
        "".join(traceback.format_exception(exc)))


def _recorded_error(run: Run, record: StepRecord) -> Exception:
    try:
        run.outcome(record)
    except Exception as exc:
        return exc
    raise AssertionError(f"attempt record at {record.position} holds no error")


class StepDecorator(Protocol):
    """What ``@legato.step(...)`` with arguments returns: a decorator keeping the signature."""

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Step[P, R]: ...


# A generic Protocol, not `Callable[[A | B], ...]`: mypy can't solve R from a
# union of callables and made every decorated signature `Never`.
@overload
def step(fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...
@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *, name: str | None = None, timeout: Duration | None = None, retry: Retry | None = None,
    circuit: CircuitBreaker | None = None,
) -> StepDecorator: ...


def step(
    fn: Callable[P, Any] | None = None, /, *, name: str | None = None,
    timeout: Duration | None = None, retry: Retry | None = None,
    circuit: CircuitBreaker | None = None,
) -> Any:
    """Make a function a durable step: inside a workflow its outcome is checkpointed.

    The first time a workflow reaches the call, the function runs and its
    return value (or exception) is committed before the workflow goes on; when
    the workflow is replayed after a crash, the recorded outcome is returned
    and the function does not run again. Outside a workflow it is just the
    function, with its retry, timeout and circuit breaker. A plain ``def``
    runs in a thread.

    Example::

        @legato.step
        async def fetch(url: str) -> str:
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).text

        @legato.step(name="charge", timeout=30, circuit=payments,
                     retry=legato.Retry(attempts=5, initial="1s", on=(ConnectionError,)))
        def charge(customer: str, cents: int) -> str: ...

    Args:
        name: the name recorded in the history (default: the function's ``__name__``).
            Renaming a step that running workflows have recorded is a
            ``NonDeterminismError`` on their replay: pass the old name.
        timeout: seconds (or ``"30s"``) per attempt; an attempt that takes longer
            is cancelled and fails with ``TimeoutError``, which the retry policy
            treats like any other error. A plain ``def`` runs in a thread, which
            can't be interrupted: the wait for it ends, the thread runs on to
            its end and its result is dropped (a retry may then overlap it).
        retry: a :class:`~legato.Retry`. Inside a workflow every failed attempt
            is recorded and the wait between attempts is a durable sleep: after
            a crash, recorded attempts are not run again and the wait goes on
            where it was. Outside a workflow the waits are ``asyncio.sleep``.
            The final error carries one note per attempt.
        circuit: a :class:`~legato.CircuitBreaker` each attempt goes through
            (inside the retry, around the timeout: a timeout counts as a failure).
            A refused attempt fails with ``CircuitOpenError``, which the retry
            policy retries unless it is in ``give_up_on``. Replayed outcomes
            don't pass through the breaker.

    Unlike ``@workflow``, a step is a unit of work, not of orchestration: durable
    calls inside a step are not recorded separately.
    """
    if fn is not None:
        return Step(fn, name=name, timeout=timeout, retry=retry, circuit=circuit)
    return lambda f: Step(f, name=name, timeout=timeout, retry=retry, circuit=circuit)
