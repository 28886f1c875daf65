"""A tool's JSON schema, derived from its signature with pydantic (imported here only).

The shape is OpenAI's function tool, which vLLM, Ollama, llama.cpp's server
and most hosted APIs accept::

    {"type": "function",
     "function": {"name": "http.get", "description": "...",
                  "parameters": {"type": "object", "properties": {...},
                                 "required": [...]}}}

The function's name is the tool's name with every character OpenAI refuses
(``[^a-zA-Z0-9_-]``) made ``_``: ``http.get`` is offered to models as
``http_get`` (:attr:`Tool.schema_name`); ``ToolRegistry.get`` accepts both.

Parameter descriptions come from the docstring's ``Args:`` section (Google
style); parameters without an annotation accept any JSON value; ``**kwargs``
makes the object accept extra properties.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tool import Tool

__all__ = ["tool_schema"]

_ARG = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def tool_schema(tool: Tool[..., Any]) -> dict[str, Any]:
    """The OpenAI function-tool schema of ``tool``."""
    try:
        import pydantic
    except ImportError:
        raise ImportError(
            f"the schema of tool {tool.name!r} is derived with pydantic, which is not "
            "installed; pip install 'legato[agents]'"
        ) from None
    docs = _arg_docs(tool.fn)
    fields: dict[str, Any] = {}
    extra = False
    for name, param in tool.signature.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, pydantic.Field(default, description=docs.get(name)))
    config = pydantic.ConfigDict(extra="allow" if extra else "forbid")
    model = pydantic.create_model(_model_name(tool.name), __config__=config, **fields)
    parameters: dict[str, Any] = model.model_json_schema()
    parameters.pop("title", None)
    if extra:
        parameters["additionalProperties"] = True
    function: dict[str, Any] = {"name": tool.schema_name, "parameters": parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _arg_docs(fn: Any) -> dict[str, str]:
    docs: dict[str, str] = {}
    lines = (inspect.getdoc(fn) or "").splitlines()
    inside, current = False, None
    for line in lines:
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside, current = True, None
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        match = _ARG.match(line)
        if match and len(line) - len(line.lstrip()) <= 4:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current and line.strip():
            docs[current] = f"{docs[current]} {line.strip()}"
    return docs


def _model_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"\W+", name) if part) or "Tool"
