"""``run_tools``: let a chat model choose tools, run them within their grants, until it answers.

The loop of OpenAI tool calling, made of legato's parts:

1. one model turn is a call of the built-in ``llm.complete`` tool, under the
   grant of the ``chat`` binding it was given (model, ``max_tokens`` cap,
   timeout), charged to that binding's budget like a ``chat`` call;
2. the tool calls the model asks for run through their own bindings, so their
   grants, effects and budgets apply; several calls of one turn run
   concurrently with :func:`legato.parallel`;
3. each result goes back to the model as a ``tool`` message (JSON), each
   refusal or failure as a short ``error: ...`` text the model can act on.

Inside a workflow every model turn and every tool call is a recorded step,
so a recovered workflow replays the conversation from its history and pays
for no model turn or tool call twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias, cast

from .._errors import (
    EffectViolation,
    LegatoError,
    NonDeterminismError,
    SerializationError,
    StoreError,
    WorkflowCancelled,
)
from ..flow import parallel
from ._builtin import llm_complete
from ._openai import ChatResponse, Messages, ToolCall
from ._tool import BoundTool, Tool

__all__ = ["run_tools"]

#: A tool the model may call: a tool, or a tool bound to a grant (an agent's ``self.fetch``).
AnyTool: TypeAlias = Tool[..., Any] | BoundTool[..., Any]

#: Errors that are bugs or the engine's business, never news for the model.
_RAISED: Final = (EffectViolation, NonDeterminismError, WorkflowCancelled, StoreError,
                  SerializationError)
#: An error text sent to the model is cut here: enough to act on, not a flood of tokens.
_MAX_ERROR: Final = 500


async def run_tools(
    chat: AnyTool, prompt_or_messages: Messages,
    tools: Iterable[AnyTool] | Mapping[str, AnyTool], *, max_turns: int = 8, **options: Any,
) -> str:
    """Let the model behind ``chat`` call ``tools`` until it answers; return its answer.

    Example::

        class Researcher(legato.Agent):
            chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o-mini",
                                                            max_tokens=512, budget=10))
            fetch = legato.use("http.get", grant=legato.Grant(domain="*.python.org"))

            @legato.cell(effects={"llm", "http"})
            async def ask(self, question: str) -> str:
                return await legato.agents.run_tools(self.chat, question, [self.fetch])

    Args:
        chat: the ``llm.chat`` tool, usually bound to a grant (an agent's
            ``self.chat``). Each model turn calls ``llm.complete`` under the
            same grant and counts as one call through this binding (its
            ``budget``, the agent's ``Budget`` and ``with Budget(...)`` blocks).
        prompt_or_messages: a question, or OpenAI chat messages to continue.
        tools: the tools the model may call (or an agent's ``tools()`` mapping);
            each is offered as its ``schema`` under its ``schema_name``.
        max_turns: the most model turns; asking for tools once more is an error.
        options: ``model=``, ``max_tokens=``, ``temperature=`` for each turn,
            checked against ``chat``'s grant like arguments of ``chat``.

    Returns:
        The text of the first answer without tool calls.

    Raises:
        LegatoError: the model still asked for tools after ``max_turns`` turns.
        GrantViolation: a model turn was refused (``chat``'s budget used up, a
            bad option); a *tool call's* refusal goes to the model instead.
        EffectViolation: a tool or ``llm.complete`` has an effect the current
            ``@legato.cell`` does not declare (a bug: fix the declaration).
        ModelError: the model server failed after ``llm.complete``'s retries.
    """
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"run_tools(max_turns=...) is a number of model turns (>= 1), "
                         f"not {max_turns!r}")
    turn = _model_turn(chat)
    offered = _offer(tools)
    schemas = [t.schema for t in offered.values()] or None
    messages = _start(prompt_or_messages)
    for number in range(1, max_turns + 1):
        reply = await turn(list(messages), schemas, options)
        if not reply.tool_calls:
            return reply.text
        if number == max_turns:
            raise _too_many_turns(max_turns, reply.tool_calls)
        messages.append(_assistant_message(reply))
        results = await parallel(_run_call(call, offered) for call in reply.tool_calls)
        messages.extend({"role": "tool", "tool_call_id": call.id, "content": content}
                        for call, content in zip(reply.tool_calls, results, strict=True))
    raise AssertionError("unreachable: the last turn returns or raises")


class _Turn:
    """One model turn: ``llm.complete`` under ``chat``'s grant, charged to ``chat``."""

    __slots__ = ("bound", "plan")

    def __init__(self, chat: AnyTool) -> None:
        bound = chat if isinstance(chat, BoundTool) else None
        grant = None if bound is None else bound.grant
        # Binding checks every key of chat's grant against llm.complete (TypeError if one
        # means nothing there), so the grant means the same for both tools.
        self.plan = None if grant is None else grant.plan(llm_complete)
        self.bound = bound

    async def __call__(self, messages: list[dict[str, Any]], schemas: list[dict[str, Any]] | None,
                       options: Mapping[str, Any]) -> ChatResponse:
        arguments = {"messages": messages, "tools": schemas, **options}
        # bound=chat: the turn counts against chat's own budget and agent Budget, as a
        # chat call would; Tool.call only reads its budget fields, whatever tool it binds.
        return await llm_complete.call((), arguments, self.plan, cast(Any, self.bound))


def _model_turn(chat: AnyTool) -> _Turn:
    tool = chat.tool if isinstance(chat, BoundTool) else chat
    if not isinstance(tool, Tool) or tool.name != "llm.chat":
        raise TypeError(
            f"run_tools(chat, ...) takes the llm.chat tool, usually bound to a grant (an "
            f"agent's chat = legato.use('llm.chat', grant=...)), not {chat!r}"
        )
    return _Turn(chat)


def _offer(tools: Iterable[AnyTool] | Mapping[str, AnyTool]) -> dict[str, AnyTool]:
    """The tools by the name the model sees (``schema_name``)."""
    items = tools.values() if isinstance(tools, Mapping) else tools
    offered: dict[str, AnyTool] = {}
    for item in items:
        if not isinstance(item, (Tool, BoundTool)):
            raise TypeError(f"run_tools(..., tools=...) takes tools or bound tools (an "
                            f"agent's self.fetch), not {item!r}")
        name = item.tool.schema_name if isinstance(item, BoundTool) else item.schema_name
        if name in offered:
            raise ValueError(f"two tools are offered to the model as {name!r} ({offered[name]!r} "
                             f"and {item!r}); offer one of them")
        offered[name] = item
    return offered


def _start(prompt_or_messages: Messages) -> list[dict[str, Any]]:
    if isinstance(prompt_or_messages, str):
        return [{"role": "user", "content": prompt_or_messages}]
    messages = [dict(m) for m in prompt_or_messages]
    if not messages:
        raise ValueError("run_tools got no messages; pass a prompt or at least one message")
    return messages


def _assistant_message(reply: ChatResponse) -> dict[str, Any]:
    """The model's tool-calling turn as OpenAI expects to see it again."""
    calls = [{"id": c.id, "type": "function",
              "function": {"name": c.name, "arguments": _arguments_text(c)}}
             for c in reply.tool_calls]
    return {"role": "assistant", "content": reply.text or None, "tool_calls": calls}


def _arguments_text(call: ToolCall) -> str:
    raw = _raw(call)
    return raw if raw is not None else json.dumps(call.arguments)


def _raw(call: ToolCall) -> str | None:
    """The model's text when its arguments were not a JSON object (see ToolCall)."""
    raw = call.arguments.get("_raw")
    return raw if list(call.arguments) == ["_raw"] and isinstance(raw, str) else None


async def _run_call(call: ToolCall, offered: Mapping[str, AnyTool]) -> str:
    """Run one requested call; the tool message content: JSON result or ``error: ...``."""
    target = offered.get(call.name)
    if target is None:
        return f"error: there is no tool {call.name!r}; the tools are {sorted(offered)}"
    raw = _raw(call)
    if raw is not None:
        return (f"error: the arguments of {call.name} are not a JSON object ({raw[:200]!r}); "
                "send them again as a JSON object")
    try:
        result = await target(**call.arguments)
    except _RAISED:
        raise
    except Exception as exc:  # refusals, bad arguments, the tool's failure: the model decides
        text = f"error: {type(exc).__name__}: {exc}"
        return text if len(text) <= _MAX_ERROR else text[:_MAX_ERROR - 3] + "..."
    return json.dumps(result, default=str)


def _too_many_turns(max_turns: int, calls: Sequence[ToolCall]) -> LegatoError:
    names = ", ".join(sorted({c.name for c in calls}))
    return LegatoError(
        f"run_tools stopped after {max_turns} model turns (max_turns={max_turns}): the model "
        f"still asked for tools ({names}) instead of answering; raise max_turns=, or tell the "
        "model in the prompt when to stop calling tools"
    )
