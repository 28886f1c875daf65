"""Tools, grants, effects and agents: Lumen's AI-native orchestration in Python.

- :func:`tool` registers an ``async def`` as a named tool with effects, a
  JSON schema, a retry policy and a timeout; inside a workflow each call is a
  durable step, so a recovered workflow never pays for the same call twice.
- :class:`Grant` constrains a tool where it is used: defaults, ``max_*``
  caps, a ``domain`` allow-list, an enforced ``timeout``, a call ``budget``.
- :func:`cell` declares the effects a function may have; tool calls are
  checked against the innermost cell at call time.
- :class:`Agent` with :func:`use` gives a class its own tools and grants.

The model provider (``OpenAIChat``, ``set_model``, ...), the
``llm.chat``/``llm.complete``/``http.get`` tools and ``run_tools`` (a model
choosing tools in a loop) need httpx (``pip install 'legato[agents]'``);
they are imported on first use, so ``import legato`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from ._agent import Agent as Agent
from ._agent import Use as Use
from ._agent import use as use
from ._budget import Budget as Budget
from ._cell import EffectWarning as EffectWarning
from ._cell import cell as cell
from ._grant import Grant as Grant
from ._registry import ToolRegistry as ToolRegistry
from ._registry import registry as registry
from ._tool import BoundTool as BoundTool
from ._tool import Tool as Tool
from ._tool import tool as tool

# name -> module (relative to this package): imported on first access (PEP 562),
# because these modules import httpx.
_LAZY: Final[dict[str, str]] = {
    "OpenAIChat": "._openai",
    "ChatResponse": "._openai",
    "ToolCall": "._openai",
    "ModelError": "._openai",
    "RateLimited": "._openai",
    "ModelUnavailable": "._openai",
    "set_model": "._openai",
    "get_model": "._openai",
    "MODEL_RETRY": "._openai",
    "llm_chat": "._builtin",
    "llm_complete": "._builtin",
    "run_tools": "._tool_loop",
    "http_get": "._builtin",
    "FetchFailed": "._builtin",
    "FetchUnavailable": "._builtin",
    "FETCH_RETRY": "._builtin",
}

__all__ = [
    "Agent",
    "BoundTool",
    "Budget",
    "EffectWarning",
    "Grant",
    "Tool",
    "ToolRegistry",
    "Use",
    "cell",
    "registry",
    "tool",
    "use",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'legato.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
