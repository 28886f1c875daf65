"""``ToolRegistry``: tools by name, and the default registry ``@legato.tool`` fills.

Agents name their tools (``legato.use("llm.chat")``) and models ask for them
by name, so names must be unique: registering a second tool under a taken
name is an error, unless it is the same function defined again (a module
imported twice, a reloaded notebook cell), which replaces the old one.

The default registry also knows legato's built-in tools (``llm.chat``,
``http.get``): they are imported from ``legato.agents._builtin`` the first
time a name is looked up that is not registered yet, so ``import legato``
imports neither httpx nor pydantic.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from ._tool import Tool

__all__ = ["ToolRegistry", "registry"]

_BUILTIN: Final = "legato.agents._builtin"


@final
class ToolRegistry:
    """Tools by name.

    Example::

        tools = legato.agents.ToolRegistry()

        @legato.tool("math.add", registry=tools)
        async def add(a: int, b: int) -> int:
            return a + b

        tools["math.add"] is add                  # True
        [t.schema for t in tools]                 # the list to give a model

    Args:
        builtins: load legato's built-in tools (``llm.chat``, ``http.get``)
            the first time a name is missing. Only the default registry does.
    """

    def __init__(self, *, builtins: bool = False) -> None:
        self._tools: dict[str, Tool[..., Any]] = {}
        self._builtins = builtins
        self._builtin_error: str | None = None

    def __repr__(self) -> str:
        return f"<ToolRegistry {sorted(self._tools)}>"

    def register(self, tool: Tool[..., Any]) -> None:
        """Add ``tool`` under its name; ``ValueError`` if the name belongs to another function."""
        old = self._tools.get(tool.name)
        if old is not None and _origin(old) != _origin(tool):
            raise ValueError(
                f"a tool named {tool.name!r} is already registered ({_origin(old)}); "
                f"{_origin(tool)} can't take the name. Choose another name, or register it "
                "in its own legato.agents.ToolRegistry() with registry=."
            )
        self._tools[tool.name] = tool

    def unregister(self, name: str) -> None:
        """Remove the tool called ``name`` (``LookupError`` if there is none)."""
        self.get(name)
        del self._tools[name]

    def get(self, name: str) -> Tool[..., Any]:
        """The tool called ``name`` (or whose :attr:`~Tool.schema_name` it is).

        Raises ``LookupError`` listing the registered names when there is none.
        """
        found = self._find(name)
        if found is None and self._builtins:
            self._load_builtins()
            found = self._find(name)
        if found is None:
            hint = ""
            if self._builtin_error is not None:
                hint = f" (the built-in tools could not be loaded: {self._builtin_error})"
            raise LookupError(
                f"no tool named {name!r}; registered tools: {sorted(self._tools)}{hint}. "
                "Check the name, and that the module defining it with @legato.tool is imported."
            )
        return found

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._find(name) is None and self._builtins:
            self._load_builtins()
        return self._find(name) is not None

    def __iter__(self) -> Iterator[Tool[..., Any]]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def _find(self, name: str) -> Tool[..., Any] | None:
        found = self._tools.get(name)
        if found is None:  # a model answers with the schema name ("http_get")
            found = next((t for t in self._tools.values() if t.schema_name == name), None)
        return found

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._tools)

    def _load_builtins(self) -> None:
        self._builtins = False  # once: a failure is remembered, not retried on every miss
        try:
            importlib.import_module(_BUILTIN)
        except ImportError as exc:
            self._builtin_error = f"{exc}; install them with: pip install 'legato[agents]'"


def _origin(tool: Tool[..., Any]) -> str:
    fn = tool.fn
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


#: The registry ``@legato.tool`` uses unless given ``registry=``.
registry: Final = ToolRegistry(builtins=True)
