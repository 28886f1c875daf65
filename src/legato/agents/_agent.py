"""``legato.Agent`` and ``legato.use``: a class whose tools come with their grants.

Lumen's::

    agent Researcher
      use tool llm.chat as Chat
      grant Chat model "gpt-4o"
      cell summarize(text: String) -> String / {llm} ... end
    end

is::

    class Researcher(legato.Agent):
        chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o"))

        @legato.cell(effects={"llm"})
        async def summarize(self, text: str) -> str: ...

``use`` is a descriptor: the tool name is looked up the first time an
instance touches the attribute (so the tool may be defined after the class,
and the built-in tools load only when used), and the grant is checked
against the tool's signature then. Each instance gets its own bound tool
(own grant ``budget`` count, own copy of the class's :class:`Budget`), made
on first access; an instance costs nothing until it calls a tool.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, cast, final, overload

from ._budget import Budget
from ._grant import Grant, GrantPlan
from ._registry import ToolRegistry
from ._registry import registry as default_registry
from ._tool import BoundTool, Tool

__all__ = ["Agent", "Use", "use"]

P = ParamSpec("P")
R = TypeVar("R")

_BUDGET_ATTR = "_legato_budget"


@final
class Use(Generic[P, R]):
    """A tool an agent class uses, with its grant; made by :func:`use`.

    On the class it is this object; on an instance it is a
    :class:`~legato.agents.BoundTool` belonging to that instance.
    """

    __slots__ = ("_plan", "_tool", "attribute", "grant", "registry", "tool_ref")

    def __init__(self, tool: str | Tool[P, R], grant: Grant | None,
                 registry: ToolRegistry | None) -> None:
        if not isinstance(tool, (str, Tool)):
            raise TypeError(f"legato.use takes a tool name or a @legato.tool, not {tool!r}")
        if grant is not None and not isinstance(grant, Grant):
            raise TypeError(f"grant= takes a legato.Grant(...), not {grant!r}")
        self.tool_ref = tool
        self.grant = grant
        self.registry = registry
        self.attribute = "?"
        self._tool: Tool[P, R] | None = tool if isinstance(tool, Tool) else None
        self._plan: GrantPlan | None = None

    def __repr__(self) -> str:
        name = self.tool_ref if isinstance(self.tool_ref, str) else self.tool_ref.name
        return f"legato.use({name!r}, grant={self.grant!r})"

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    @property
    def tool(self) -> Tool[P, R]:
        """The tool, looked up in the registry on first use (the grant is checked then)."""
        found = self._tool
        if found is None:
            reg = default_registry if self.registry is None else self.registry
            found = cast("Tool[P, R]", reg.get(str(self.tool_ref)))
            self._tool = found
        if self.grant is not None and self._plan is None:
            self._plan = self.grant.plan(found)
        return found

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Use[P, R]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> BoundTool[P, R]: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        tool = self.tool  # also checks the grant, once per class attribute
        bound = BoundTool(tool, self._plan, _budget_of(instance))
        # Cached on the instance: a non-data descriptor is not asked again.
        instance.__dict__[self.attribute] = bound
        return bound


@overload
def use(tool: Tool[P, R], /, *, grant: Grant | None = None,
        registry: ToolRegistry | None = None) -> Use[P, R]: ...
@overload
def use(tool: str, /, *, grant: Grant | None = None,
        registry: ToolRegistry | None = None) -> Use[..., Any]: ...


def use(tool: str | Tool[Any, Any], /, *, grant: Grant | None = None,
        registry: ToolRegistry | None = None) -> Use[Any, Any]:
    """Declare, in a class body, that instances use ``tool`` under ``grant``.

    ``self.<attribute>(...)`` then calls the tool with the grant applied:
    defaults filled in, caps and hosts checked, its timeout enforced, its
    ``budget`` counted for that instance alone.

    Example::

        class Analyst(legato.Agent):
            chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o", max_tokens=1024))
            fetch = legato.use(http_get, grant=legato.Grant(domain="*.example.com"))

            @legato.cell(effects={"llm"})
            async def analyze(self, text: str) -> str:
                return (await self.chat(f"Sentiment of: {text}")).text

    Args:
        tool: a tool name (looked up when an instance first uses it) or a
            :class:`~legato.agents.Tool`.
        grant: the :class:`~legato.Grant` applied to every call; checked
            against the tool's parameters on first use (``TypeError`` for a
            key that names none).
        registry: where to look the name up (default: the default registry).
    """
    return Use(tool, grant, registry)


class Agent:
    """Base class of agents: classes whose tools (``legato.use``) carry their grants.

    Subclasses declare tools with :func:`use` and behaviour in
    ``@legato.cell`` methods. Instances are cheap (nothing happens in
    ``__init__``; a bound tool is made the first time an instance uses it),
    and each instance's tools are its own: two agents using the same tool
    under different grants never see each other's grant or budget.

    Example::

        class ModelA(legato.Agent):
            chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o"))
            budget = legato.agents.Budget(llm=10)     # optional, per instance

            @legato.cell(effects={"llm"})
            async def analyze(self, text: str) -> str:
                return (await self.chat(f"Sentiment of {text!r}, one word")).text

        a, b = ModelA(), ModelA()
        sentiments = await legato.parallel(a.analyze(t1), b.analyze(t2))

    Attributes:
        budget: a :class:`~legato.agents.Budget` for the calls an instance
            makes through its tools; each instance counts against its own copy.
    """

    budget: ClassVar[Budget | None] = None

    @classmethod
    def uses(cls) -> dict[str, Use[Any, Any]]:
        """The class's tool declarations by attribute name (subclasses included).

        Example::

            Researcher.uses()   # {'chat': legato.use('llm.chat', grant=Grant(...))}
        """
        found: dict[str, Use[Any, Any]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Use):
                    found[name] = value
                elif name in found:
                    del found[name]  # overridden by something else
        return found

    def tools(self) -> dict[str, BoundTool[Any, Any]]:
        """This instance's bound tools by attribute name, e.g. for a model's tool list.

        Example::

            schemas = [t.schema for t in agent.tools().values()]
        """
        return {name: getattr(self, name) for name in self.uses()}


def _budget_of(instance: object) -> Budget | None:
    # An instance attribute is the instance's own; a class attribute is copied per instance.
    own = instance.__dict__.get("budget")
    if isinstance(own, Budget):
        return own
    budget = instance.__dict__.get(_BUDGET_ATTR)
    if budget is None:
        template = getattr(type(instance), "budget", None)
        if not isinstance(template, Budget):
            return None
        budget = template.fresh()
        instance.__dict__[_BUDGET_ATTR] = budget
    return budget if isinstance(budget, Budget) else None
