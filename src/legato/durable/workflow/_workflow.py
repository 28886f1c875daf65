"""``@legato.workflow``: an async function that is replayed from checkpoints."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, final, overload

from ..._cron import check_cron
from ..._duration import Duration, to_seconds
from ..._errors import SerializationError
from ..._serde import Serializer
from ..engine import current_scope
from ._queue import Queue

__all__ = ["Workflow", "lookup", "registered_names", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")

_REGISTRY: dict[str, Workflow[Any, Any]] = {}


@final
class Workflow(Generic[P, R]):
    """An async function made durable by :func:`workflow`."""

    def __init__(
        self, fn: Callable[P, Awaitable[R]], *, name: str | None, timeout: float | None = None,
        deterministic: bool = False, queue: Queue | str | None = None,
        max_recoveries: int | None = None,
        schedule: str | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@legato.workflow needs an 'async def' function, and {fn.__qualname__} is not "
                "one; put blocking work in a @legato.step and await it from an async workflow"
            )
        if not (queue is None or isinstance(queue, Queue) or (isinstance(queue, str) and queue)):
            raise TypeError(
                f"@legato.workflow(queue=...) takes a legato.Queue or its name, not {queue!r}")
        self.fn = fn
        self.name = name or fn.__qualname__
        self.named = name is not None  # chosen by the author, not taken from the function
        self.timeout = timeout
        self.deterministic = deterministic
        self.queue = queue
        self.max_recoveries = _check_max_recoveries(max_recoveries)
        self.schedule = None if schedule is None else check_cron(schedule)
        self.signature = _signature(fn)
        if self.schedule is not None:
            self._check_startable_bare()
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<legato.workflow {self.name!r}>"

    def _check_startable_bare(self) -> None:
        try:
            self.signature.bind()
        except TypeError:
            raise TypeError(
                f"@legato.workflow(schedule=...) starts {self.name} without arguments, but its "
                f"signature is {self.name}{self.signature}; give its parameters defaults, or "
                "schedule it with rt.schedule(..., args=...)") from None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Inside a workflow, run as a child workflow; outside one, run the body directly."""
        return self._call(args, kwargs)

    async def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        from ._children import run_child  # children build on workflows, not the reverse

        scope = current_scope()
        if scope is None:
            return await self.fn(*args, **kwargs)
        return await run_child(scope, self, args, kwargs)

    def encode_input(
        self, serializer: Serializer, args: tuple[Any, ...], kwargs: dict[str, Any], *,
        trace: Mapping[str, str] | None = None,
    ) -> bytes:
        """Serialize a call's arguments, naming the argument that can't be stored.

        The envelope is ``{"args": [...], "kwargs": {...}}``, plus ``"trace"``
        (a W3C trace context, see ``legato.otel``) when one is given; readers
        of the envelope ignore keys they don't know.
        """
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"can't start workflow {self.name!r} with these arguments: {exc}; "
                f"its signature is {self.name}{self.signature}"
            ) from None
        payload: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if trace:
            payload["trace"] = dict(trace)
        try:
            return serializer.dumps(payload, label=f"the arguments of workflow {self.name!r}")
        except SerializationError:
            self._name_bad_argument(serializer, args, kwargs)
            raise

    def _name_bad_argument(
        self, serializer: Serializer, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        bound = self.signature.bind(*args, **kwargs)
        for param, value in bound.arguments.items():
            serializer.dumps(value, label=f"argument {param!r} of workflow {self.name!r}")


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:  # readable annotations in error messages, also under `from __future__ import annotations`
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        return inspect.signature(fn)


def _check_max_recoveries(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise ValueError(
            f"max_recoveries must be a whole number >= 0 (0: fail at the first takeover) "
            f"or None (no limit), not {limit!r}")
    return limit


@overload
def workflow(fn: Callable[P, Awaitable[R]], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *, name: str | None = None, queue: Queue | str | None = None,
    timeout: Duration | None = None, deterministic: bool = False, schedule: str | None = None,
    max_recoveries: int | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[P, Awaitable[R]] | None = None, /, *, name: str | None = None,
    queue: Queue | str | None = None, timeout: Duration | None = None,
    deterministic: bool = False, schedule: str | None = None, max_recoveries: int | None = None,
) -> Any:
    """Make an ``async def`` a durable workflow.

    A workflow is replayed: after a crash it runs again from the top, and every
    step, sleep and recorded call that already completed returns its recorded
    outcome instead of running again. So its code must be deterministic: all
    I/O goes through :func:`legato.step` functions, and time and randomness
    through ``legato.now()``, ``legato.random()`` and ``legato.uuid4()``.

    Example::

        @legato.workflow
        async def onboard(user: str) -> str:
            account = await create_account(user)        # a @legato.step
            await asyncio.gather(send_welcome(user), provision(account))
            return account

        async with legato.Runtime("legato.db") as rt:
            print(await rt.run(onboard, "ana", id="onboard-ana"))

    Args:
        name: the name stored with each run, by which a recovering worker finds
            the code (default: the function's qualname). Keep it stable while
            runs of it may still be in flight.
        queue: the :class:`~legato.Queue` (or its name) its runs go on when
            ``rt.start`` names none; its child runs too (called from a parent,
            or ``legato.start_child`` without ``queue=``).
        timeout: a deadline for each run, from its start, in durable time; a run
            still going then is cancelled (status ``cancelled``). ``rt.start(...,
            timeout=...)`` overrides it.
        deterministic: run the body under ``legato.deterministic()``: spawned
            futures run one at a time in FIFO order and race/vote/select resolve
            in argument order, so results are identical run after run.
        max_recoveries: how many times a run may be taken over after its worker
            died (or hung) while running it. One more death and the run is
            ``failed`` with :class:`~legato.RecoveryLimitExceeded` instead of
            being recovered again: a poison input that crashes or OOMs every
            process that runs it stops taking workers down (DBOS's dead
            letter). ``rt.resume(id)`` runs it again with the count reset.
            Default ``None``: recovered however many times (DBOS's default,
            ``max_recovery_attempts``, is 100). The limit is the code's: the
            worker that takes the run over applies it, so a deploy that changes
            it applies to runs in flight too.
        schedule: a cron expression (UTC): every worker that has this code
            keeps a schedule named after the workflow, which starts one run
            (without arguments) per tick; see :meth:`Runtime.schedule` for
            time zones and policies.
    """
    seconds = None if timeout is None else to_seconds(timeout)

    def register(f: Callable[P, Awaitable[R]]) -> Workflow[P, R]:
        wf = Workflow(f, name=name, timeout=seconds, deterministic=deterministic, queue=queue,
                      schedule=schedule, max_recoveries=max_recoveries)
        _register(wf)
        return wf

    return register(fn) if fn is not None else register


def _register(wf: Workflow[Any, Any]) -> None:
    """Register ``wf`` under its name; the same code defined again replaces itself.

    Two different functions under one default name (the function's
    qualname, which two modules can share by accident) would let a worker
    run another function than the one a client started: that is an error.
    An explicit ``name=`` given to both is a deliberate new version of the
    workflow (a test simulating a deploy): the later one replaces the other.
    """
    known = _REGISTRY.get(wf.name)
    accidental = not (wf.named and known is not None and known.named)
    if known is not None and accidental and _origin(known.fn) != _origin(wf.fn):
        raise ValueError(
            f"two workflows are named {wf.name!r}: {_describe(known.fn)} and "
            f"{_describe(wf.fn)}; give one of them another name with "
            f"@legato.workflow(name=...)")
    _REGISTRY[wf.name] = wf  # the same function again: a re-import, a reload


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    # by file, not module: a script run as __main__ and imported by name is one function
    code = getattr(fn, "__code__", None)
    filename = code.co_filename if code is not None else getattr(fn, "__module__", "")
    return filename, fn.__qualname__


def _describe(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{fn.__module__}.{fn.__qualname__}{where}"


def lookup(name: str) -> Workflow[Any, Any] | None:
    """The workflow registered under ``name`` in this process."""
    return _REGISTRY.get(name)


def registered_names() -> list[str]:
    """Every workflow name this process can run."""
    return list(_REGISTRY)
