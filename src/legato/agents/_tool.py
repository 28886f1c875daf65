"""``@legato.tool``: an async function with a name, effects, a schema and a policy.

A tool call goes through the same checks wherever it is made, in this order,
all before the function runs:

1. the arguments are bound to the signature by name (``TypeError`` if they
   don't fit);
2. the grant of the binding, if any, is applied: defaults filled in, caps,
   fixed values and URL hosts checked (:class:`~legato.GrantViolation`);
3. the effects are checked against the innermost ``@legato.cell``
   (:class:`~legato.EffectViolation`), and a deterministic workflow refuses
   an unrecorded call with a nondeterministic effect;
4. one call is charged to the binding's ``budget``, the agent's
   :class:`~legato.agents.Budget` and the ``with Budget(...)`` blocks around
   the call (:class:`~legato.GrantViolation` when one is used up).

Then the function runs. Inside a workflow (not inside a step's body) the
call is a durable step named after the tool: its outcome is recorded at the
next position, with the tool's retry policy (every attempt recorded, durable
waits between them), so a recovered workflow gets the recorded outcome and
never pays for the same call twice. Each attempt is bounded by the tool's
``timeout`` and the grant's ``timeout``, whichever is shorter; an attempt that
runs out is cancelled and fails with ``TimeoutError``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, final

from .._duration import Duration, to_seconds
from .._errors import EffectViolation, GrantViolation
from ..durable import Step, current_scope
from ..flow._deterministic import enabled as deterministic_enabled
from ..flow._hooks import RECORDER
from ..resilience import CircuitBreaker, Retry
from ..resilience._deadline import within
from ._budget import Budget, active_budgets, charge
from ._cell import NONDETERMINISTIC, check_effects, current_cell, effect_set
from ._grant import Grant, GrantPlan

if TYPE_CHECKING:
    from ._registry import ToolRegistry

__all__ = ["BoundTool", "Tool", "tool"]

P = ParamSpec("P")
R = TypeVar("R")


@final
class Tool(Generic[P, R]):
    """An async function registered by :func:`tool`; await a call to run it.

    Example::

        @legato.tool("math.add")
        async def add(a: int, b: int) -> int:
            return a + b

        assert await add(1, 2) == 3            # checks, then the function
        add.name, add.effects, add.schema      # 'math.add', frozenset(), {...}
        capped = add.with_grant(legato.Grant(max_a=10))

    Attributes:
        name: the registered name (``"http.get"``), also the step name in workflows.
        schema_name: the name offered to models (``"http_get"``: OpenAI refuses dots).
        effects: the effects a call has (``frozenset({"http"})``).
        retry: the :class:`~legato.Retry` policy of each call, or ``None``.
        circuit: the :class:`~legato.CircuitBreaker` every attempt goes through, or ``None``.
        timeout: seconds per attempt, or ``None``.
        description: what the tool does, for models (default: the docstring's
            first paragraph).
        durable: whether calls inside workflows are recorded steps.
        fn: the undecorated function.
    """

    def __init__(
        self, fn: Callable[P, Awaitable[R]], *, name: str, effects: frozenset[str],
        retry: Retry | None, timeout: float | None, description: str | None, durable: bool,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.effects = effects
        self.retry = retry
        self.circuit = circuit
        self.timeout = timeout
        self.durable = durable
        self.signature = _signature(fn)
        self.description = description if description is not None else _summary(fn)
        # OpenAI accepts [a-zA-Z0-9_-] in function names: "http.get" is offered as "http_get".
        self.schema_name = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64]
        self.defaults = {n: p.default for n, p in self.signature.parameters.items()
                         if p.default is not inspect.Parameter.empty}
        self.url_params = frozenset(
            n for n in self.signature.parameters if n == "url" or n.endswith("_url"))
        self._schema: dict[str, Any] | None = None
        # One step object per tool: called inside a workflow it records the outcome.
        self._step: Step[[float | None, str, dict[str, Any]], R] = Step(
            self._attempt, name=name, timeout=None, retry=retry, circuit=circuit)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<legato.tool {self.name!r} effects={sorted(self.effects)}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Call the tool with no grant (effects, budgets and durability still apply)."""
        return self.call(args, kwargs)

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool description: ``{"type": "function", "function": {...}}``.

        Derived from the signature with pydantic on first use (``pip install
        legato[agents]``) and kept.

        Example::

            fetch.schema["function"]["parameters"]["properties"]["url"]
            # {'type': 'string', 'title': 'Url'}
        """
        if self._schema is None:
            from ._schema import tool_schema  # pydantic is imported only here

            self._schema = tool_schema(self)
        return self._schema

    def with_grant(self, grant: Grant | None, *, budget: Budget | None = None) -> BoundTool[P, R]:
        """This tool bound to ``grant``: a callable applying the grant to each call.

        The grant is checked against the signature now (``TypeError`` for a key
        that names no parameter). Each binding counts its own grant ``budget``;
        ``budget=`` adds a :class:`~legato.agents.Budget` every call through the
        binding is also charged to (an agent passes its own).

        Example::

            fetch_docs = http_get.with_grant(legato.Grant(domain="*.python.org", timeout=5))
            page = await fetch_docs("https://docs.python.org/3/")
        """
        return BoundTool(self, None if grant is None else grant.plan(self), budget)

    async def call(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                   plan: GrantPlan | None = None, bound: BoundTool[P, R] | None = None) -> R:
        """Run one call through the checks; what ``tool(...)`` and bound tools await."""
        arguments = self._arguments(args, kwargs)
        if plan is not None:
            arguments = plan.apply(arguments, self.url_params, self.defaults)
        self._complete(arguments)  # a missing argument fails here, not in the recorded call
        check_effects(f"tool {self.name!r}", self.effects, current_cell())
        in_workflow = current_scope() is not None
        if in_workflow and not self.durable:
            self._refuse_if_deterministic()
        budgets: list[Budget] = list(active_budgets())
        if bound is not None:
            bound._check_budget()
            if bound.budget is not None:
                budgets.append(bound.budget)
        charge(self.name, self.effects, budgets)  # a refused call uses up nothing
        if bound is not None:
            bound.calls += 1
        timeout, source = self.timeout, "its timeout="
        if plan is not None and plan.grant.timeout is not None and (
                timeout is None or plan.grant.timeout < timeout):
            timeout, source = plan.grant.timeout, f"its grant {plan.grant!r}"
        if self.durable or not in_workflow:
            # Inside a workflow the step records the outcome; outside one (or inside a
            # step's body) it is the plain function with its retry policy and breaker.
            return await self._step(timeout, source, arguments)
        token = RECORDER.set(None)  # unrecorded: the step runs as outside a workflow
        try:
            return await self._step(timeout, source, arguments)
        finally:
            RECORDER.reset(token)

    async def _attempt(self, timeout: float | None, source: str, arguments: dict[str, Any]) -> R:
        call = self.fn(**arguments)  # type: ignore[call-arg]
        if timeout is None:
            return await call
        return await within(timeout, call, lambda: (
            f"tool {self.name!r} did not finish within {timeout:g} s ({source}) and was "
            "cancelled; allow more time there, or ask the tool for less work"))

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"can't call tool {self.name!r} with these arguments: {exc}; "
                f"its signature is {self.name}{self.signature}"
            ) from None
        arguments = dict(bound.arguments)
        for name, param in self.signature.parameters.items():
            if param.kind is param.VAR_KEYWORD and name in arguments:
                arguments.update(arguments.pop(name))
        return arguments

    def _complete(self, arguments: dict[str, Any]) -> None:
        # After the grant filled its defaults, every required parameter must be there.
        try:
            self.signature.bind(**arguments)
        except TypeError as exc:
            raise TypeError(
                f"can't call tool {self.name!r}: {exc}; its signature is "
                f"{self.name}{self.signature}"
            ) from None

    def _refuse_if_deterministic(self) -> None:
        if not deterministic_enabled():
            return
        risky = sorted(self.effects & NONDETERMINISTIC)
        if risky:
            raise EffectViolation(
                f"tool {self.name!r} (durable=False)", risky[0],
                "a deterministic workflow (its outcome would not be recorded)",
                "declare the tool durable (the default), or call it inside a @legato.step",
            )


@final
class BoundTool(Generic[P, R]):
    """A tool bound to a grant (and its own call count): what ``self.chat`` is in an agent.

    Example::

        chat = llm_chat.with_grant(legato.Grant(model="gpt-4o", budget=10))
        reply = await chat("Say hi")           # model="gpt-4o" filled in
        chat.calls                             # 1
    """

    __slots__ = ("budget", "calls", "plan", "tool")

    def __init__(self, tool: Tool[P, R], plan: GrantPlan | None, budget: Budget | None) -> None:
        self.tool = tool
        self.plan = plan
        self.budget = budget
        self.calls = 0

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.tool.name

    @property
    def grant(self) -> Grant | None:
        """The grant applied to each call."""
        return None if self.plan is None else self.plan.grant

    @property
    def schema(self) -> dict[str, Any]:
        """The tool's schema (see :attr:`Tool.schema`)."""
        return self.tool.schema

    def __repr__(self) -> str:
        return f"<legato.tool {self.tool.name!r} with {self.grant!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Call the tool with this binding's grant and budget."""
        return self.tool.call(args, kwargs, self.plan, self)

    def _check_budget(self) -> None:
        limit = None if self.plan is None else self.plan.grant.budget
        if limit is not None and self.calls >= limit:
            raise GrantViolation(self.tool.name, "budget", self.calls + 1,
                                 f"the grant allows {limit} calls through this binding")


def tool(
    name: str, /, *, effects: Iterable[str] | str | None = None, retry: Retry | None = None,
    timeout: Duration | None = None, description: str | None = None, durable: bool = True,
    circuit: CircuitBreaker | None = None, registry: ToolRegistry | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Tool[P, R]]:
    """Register an ``async def`` as a tool named ``name``.

    Example::

        @legato.tool("http.get", effects={"http"}, timeout=30,
                     retry=legato.Retry(attempts=3, on=(ConnectionError,)))
        async def http_get(url: str, headers: dict[str, str] | None = None) -> str:
            '''Fetch a URL and return the body as text.'''
            ...

        page = await http_get("https://example.com")      # a plain call
        http_get.schema                                    # for a model's tool list

    Args:
        name: the tool's name in the registry and in workflow histories (like a
            step name: keep it stable while workflows that recorded it run).
        effects: what a call does (``{"http"}``, ``"llm"``); checked against the
            enclosing ``@legato.cell``.
        retry: the :class:`~legato.Retry` policy of each call; inside a workflow
            every attempt is recorded and the waits are durable.
        timeout: seconds (or ``"30s"``) per attempt; a grant's ``timeout`` can
            only shorten it.
        circuit: a :class:`~legato.CircuitBreaker` each attempt goes through
            (shared by every caller of the tool: one failing server opens it
            for all of them).
        description: for models; default: the docstring's first paragraph.
        durable: ``True`` (default): inside a workflow each call is a recorded
            step. ``False`` for pure, cheap tools whose calls may simply run
            again on replay; a deterministic workflow refuses such a tool when
            it has an ``http``, ``llm``, ``time`` or ``random`` effect.
        registry: where to register it (default: :data:`legato.agents.registry`).

    Raises:
        TypeError: the function is not an ``async def``, or takes ``*args`` or
            positional-only parameters (tools are called by argument name).
        ValueError: the registry already has another tool of that name.
    """
    from ._registry import registry as default_registry

    if not isinstance(name, str) or not name:
        raise TypeError(f"@legato.tool needs a name like 'http.get' first, not {name!r}")
    seconds = None if timeout is None else to_seconds(timeout)
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"retry= takes a legato.Retry(...), not {retry!r}")
    if circuit is not None and not isinstance(circuit, CircuitBreaker):
        raise TypeError(f"circuit= takes a legato.CircuitBreaker(...), not {circuit!r}")
    declared = effect_set(effects, where=f"@legato.tool({name!r})")

    def register(fn: Callable[P, Awaitable[R]]) -> Tool[P, R]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@legato.tool({name!r}) needs an 'async def', and "
                f"{getattr(fn, '__qualname__', fn)!r} is not one"
            )
        for param in _signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
                raise TypeError(
                    f"@legato.tool({name!r}): parameter {param.name!r} can't be passed by "
                    "name; tools are called with named arguments (by models too), so use "
                    "ordinary or keyword-only parameters"
                )
        made: Tool[P, R] = Tool(fn, name=name, effects=declared, retry=retry, timeout=seconds,
                                description=description, durable=durable, circuit=circuit)
        (default_registry if registry is None else registry).register(made)
        return made

    return register


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:  # real annotations also under `from __future__ import annotations`
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        return inspect.signature(fn)


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()
