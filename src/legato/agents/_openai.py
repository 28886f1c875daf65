"""An OpenAI-compatible chat-completions client, its errors, and the default model.

:class:`OpenAIChat` speaks the plain OpenAI wire format (``POST
{base_url}/chat/completions``, JSON or server-sent events), so it works with
hosted APIs and with vLLM, Ollama, llama.cpp's server or LM Studio on your own
machine. Errors form a small tree under :class:`ModelError`::

    ModelError                 status and retry_after attributes; not retried
    ├── RateLimited            429: retried, after Retry-After when the server sends one
    └── ModelUnavailable       5xx, 408, timeouts, connection errors: retried

Where retrying happens: a client's own ``retry`` policy (:data:`MODEL_RETRY`
by default) serves direct calls. The ``llm.chat`` tool calls ``complete(...,
retry=None)`` (one attempt) because inside a workflow the tool is a durable
step whose retry policy records every attempt and waits durably; retrying in
both places would multiply the attempts.

API keys live only in the client object (read from the argument or
``OPENAI_API_KEY``); they are never part of a tool's arguments, so they never
reach checkpoints, and error messages and ``repr`` never show them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, final

from .._duration import Duration, to_seconds
from ..resilience import Retry
from ._model_errors import (
    ModelError,
    ModelUnavailable,
    RateLimited,
    error_for_status,
    server_message,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MODEL_RETRY",
    "ChatResponse",
    "Messages",
    "ModelError",
    "ModelUnavailable",
    "OpenAIChat",
    "RateLimited",
    "ToolCall",
    "get_model",
    "set_model",
]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"

#: Chat messages (``[{"role": "user", "content": "..."}]``) or a bare prompt.
Messages = str | Sequence[Mapping[str, Any]]


#: The policy :class:`OpenAIChat` retries with by default: 4 attempts,
#: 1 s then 2 s then 4 s apart (or the server's ``Retry-After``, if longer),
#: for :class:`RateLimited` and :class:`ModelUnavailable` only.
MODEL_RETRY: Final = Retry(attempts=4, initial=1.0, backoff=2.0, max_delay=30.0,
                           on=(RateLimited, ModelUnavailable))


# -- the response -------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call a model asked for: its id, the function's name, the arguments.

    ``arguments`` is the model's JSON arguments decoded to a dict. When the
    model wrote something that is not a JSON object, the text is kept as
    ``{"_raw": "<what it wrote>"}`` rather than failing the whole answer, so a
    tool loop can tell the model its arguments were malformed and let it retry.

    Example::

        reply = await client.complete("Weather in Paris?", model="gpt-4o-mini",
                                      tools=[weather.schema])
        for call in reply.tool_calls:
            call.id, call.name, call.arguments     # 'call_1', 'weather_now', {'city': 'Paris'}
    """

    id: str
    name: str
    arguments: dict[str, Any]


@final
@dataclass(frozen=True, slots=True)
class ChatResponse:
    """One chat completion: the text, which model wrote it, why it stopped, tokens used.

    ``tool_calls`` holds the tool calls the model asked for (offered with
    ``complete(..., tools=[...])``); then ``finish_reason`` is usually
    ``"tool_calls"`` and ``text`` often empty.

    Example::

        reply = await client.complete("Say hi", model="llama3.2")
        reply.text, reply.finish_reason, reply.usage.get("total_tokens"), reply.tool_calls
    """

    text: str
    model: str
    finish_reason: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()


# -- the client -----------------------------------------------------------------------


class _Inherit:
    """Sentinel for "use the client's own retry policy" (``None`` means no retry)."""

    def __repr__(self) -> str:
        return "<client's retry>"


_INHERIT: Final = _Inherit()


@final
class OpenAIChat:
    """An async client for any OpenAI-compatible ``/chat/completions`` endpoint.

    Example::

        async with OpenAIChat("http://127.0.0.1:11434/v1") as ollama:   # no key needed
            reply = await ollama.complete("Why is the sky blue?", model="llama3.2")
            print(reply.text)
            async for piece in ollama.stream("Count to 5", model="llama3.2"):
                print(piece, end="")

    Args:
        base_url: the API root, ending in ``/v1`` for most servers (default:
            ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``).
        api_key: sent as ``Authorization: Bearer ...`` (default: ``$OPENAI_API_KEY``);
            local servers need none, and then no Authorization header is sent.
        timeout: seconds (or ``"2m"``) to connect and between bytes of the answer;
            ``None`` waits forever.
        retry: the policy :meth:`complete` and :meth:`stream` use unless told
            otherwise (default :data:`MODEL_RETRY`); ``None`` tries once.
        headers: extra headers for every request (e.g. ``{"OpenAI-Organization": ...}``);
            their values, like the key, are never shown by ``repr``.

    The underlying ``httpx.AsyncClient`` is made on first use in each event
    loop, so one client (e.g. the process default, see :func:`set_model`) can
    serve several ``asyncio.run`` calls. Close it with ``aclose()`` or ``async with``.
    """

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *,
        timeout: Duration | None = 60.0, retry: Retry | None = MODEL_RETRY,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry= takes a legato.Retry(...) or None, not {retry!r}")
        url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = url.rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = None if timeout is None else to_seconds(timeout)
        self.retry = retry
        self._headers = {"Accept": "application/json", **(headers or {})}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        extra = sorted(k for k in self._headers if k not in ("Accept", "Authorization"))
        shown = f", headers={extra}" if extra else ""
        return f"OpenAIChat(base_url={self.base_url!r}, api_key={key}{shown})"

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client opens a new one if used again.

        >>> await client.aclose()
        """
        http, self._http, self._loop = self._http, None, None
        if http is not None:
            await http.aclose()

    # -- calls --------------------------------------------------------------------------

    async def complete(
        self, messages: Messages, *, model: str, max_tokens: int | None = None,
        temperature: float | None = None, retry: Retry | _Inherit | None = _INHERIT,
        tools: Sequence[Mapping[str, Any]] | None = None, **extra: Any,
    ) -> ChatResponse:
        """Ask ``model`` for one chat completion and return it whole.

        Example::

            reply = await client.complete(
                [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
                model="gpt-4o-mini", max_tokens=50, temperature=0.2, seed=7,
            )

        Args:
            messages: a prompt (sent as one user message) or a list of chat messages.
            model: the model name as the server knows it.
            max_tokens: cap on the answer's tokens (server default if ``None``).
            temperature: sampling temperature (server default if ``None``).
            retry: override the client's policy for this call; ``None`` is one attempt.
            tools: OpenAI function-tool schemas the model may call (``[tool.schema, ...]``);
                its requests come back in :attr:`ChatResponse.tool_calls`. ``None`` or
                an empty list sends no ``tools`` field.
            extra: more request fields, sent as they are (``top_p``, ``stop``, ``seed``...).

        Raises:
            RateLimited, ModelUnavailable: when the retry policy gives up (or with ``retry=None``).
            ModelError: for a request the server rejects (400, 401, 404, ...).
        """
        if tools:
            extra = {**extra, "tools": [dict(t) for t in tools]}
        body = _body(messages, model, max_tokens, temperature, extra, stream=False)
        policy = self.retry if isinstance(retry, _Inherit) else retry
        if policy is None:
            return await self._complete_once(body)
        return await policy.call(self._complete_once, body)

    async def stream(
        self, messages: Messages, *, model: str, max_tokens: int | None = None,
        temperature: float | None = None, retry: Retry | _Inherit | None = _INHERIT,
        **extra: Any,
    ) -> AsyncIterator[str]:
        """Ask ``model`` for a chat completion and yield its text as it arrives.

        Only opening the stream is retried: once text has been yielded, a
        failure is raised to the caller, who has seen part of the answer.
        Arguments are those of :meth:`complete`.

        Example::

            async for piece in client.stream("Tell a story", model="llama3.2"):
                print(piece, end="", flush=True)
        """
        body = _body(messages, model, max_tokens, temperature, extra, stream=True)
        policy = self.retry if isinstance(retry, _Inherit) else retry
        if policy is None:
            response = await self._open_stream(body)
        else:
            response = await policy.call(self._open_stream, body)
        try:
            async for line in response.aiter_lines():
                piece = self._sse_text(line)
                if piece is None:
                    break
                if piece:
                    yield piece
        except _http_errors() as exc:
            raise self._transport_error(exc) from None
        finally:
            await response.aclose()

    async def list_models(self) -> list[str]:
        """The names of the models the server offers (``GET {base_url}/models``), sorted.

        A quick check that ``base_url`` and the key are right before a long run.

        >>> await OpenAIChat("http://127.0.0.1:11434/v1").list_models()   # e.g. ['llama3.2']

        Raises:
            ModelError: as :meth:`complete` does (not retried).
        """
        http = self._client()
        try:
            response = await http.get("/models")
        except _http_errors() as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.headers, response.text)
        try:
            return sorted(str(m["id"]) for m in response.json()["data"])
        except (ValueError, KeyError, TypeError):
            raise ModelError(
                f"the model server at {self.base_url} answered GET /models with something "
                f"that is not a model list: {self._scrub(response.text[:200])!r}; check "
                "base_url (it usually ends in /v1)", response.status_code,
            ) from None

    # -- one attempt --------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        import httpx  # the agents extra: importing legato never needs it

        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            # A pool is bound to the loop that opened its connections; a new
            # loop (another asyncio.run) gets a new pool.
            self._http = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self.timeout,
            )
            self._loop = loop
        return self._http

    async def _complete_once(self, body: dict[str, Any]) -> ChatResponse:
        http = self._client()
        try:
            response = await http.post("/chat/completions", json=body)
        except _http_errors() as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.headers, response.text)
        return self._parse(response.text, body["model"])

    async def _open_stream(self, body: dict[str, Any]) -> httpx.Response:
        http = self._client()
        try:
            request = http.build_request("POST", "/chat/completions", json=body)
            response = await http.send(request, stream=True)
        except _http_errors() as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            try:
                text = (await response.aread()).decode("utf-8", "replace")
            finally:
                await response.aclose()
            raise self._status_error(response.status_code, response.headers, text)
        return response

    def _parse(self, text: str, model: str) -> ChatResponse:
        try:
            data = json.loads(text)
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
            calls = tuple(_tool_call(c, i) for i, c in
                          enumerate(choice["message"].get("tool_calls") or ()))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(
                f"the model server at {self.base_url} answered with something that is not a "
                f"chat completion: {self._scrub(text[:200])!r}; check that base_url points "
                "at an OpenAI-compatible API (it usually ends in /v1)", 200,
            ) from None
        usage = data.get("usage") or {}
        return ChatResponse(
            text=content, model=str(data.get("model") or model),
            finish_reason=choice.get("finish_reason"),
            usage={k: v for k, v in usage.items() if isinstance(v, int)},
            tool_calls=calls,
        )

    def _sse_text(self, line: str) -> str | None:
        """The text in one server-sent-events line: ``""`` if none, ``None`` at the end."""
        if not line.startswith("data:"):
            return ""  # blank separators, comments (": keep-alive"), event: lines
        payload = line[5:].strip()
        if payload == "[DONE]":
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return ""
        if isinstance(data, dict) and "error" in data:  # some servers report errors in-stream
            raise self._status_error(500, {}, payload)
        try:
            return str(data["choices"][0]["delta"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""  # e.g. a final usage-only chunk

    # -- errors -------------------------------------------------------------------------

    def _status_error(self, status: int, headers: Mapping[str, str], text: str) -> ModelError:
        said = self._scrub(server_message(text))
        return error_for_status(f"the model server at {self.base_url}", status, headers, said)

    def _transport_error(self, exc: Exception) -> ModelUnavailable:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            what = f"did not answer within {self.timeout:g} s ({type(exc).__name__})"
            fix = "raise timeout= or check the server's load"
        else:
            what = f"could not be reached ({type(exc).__name__}: {self._scrub(str(exc))})"
            fix = "check that it is running and that base_url / OPENAI_BASE_URL is right"
        return ModelUnavailable(f"the model server at {self.base_url} {what}; {fix}")

    def _scrub(self, text: str) -> str:
        """``text`` without the API key, in case a server echoes it back."""
        return text.replace(self._api_key, "***") if self._api_key else text


def _body(messages: Messages, model: str, max_tokens: int | None, temperature: float | None,
          extra: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    if not isinstance(model, str) or not model:
        raise TypeError(f"model= must name the model, like 'gpt-4o-mini', not {model!r}")
    if isinstance(messages, str):
        chat: list[Mapping[str, Any]] = [{"role": "user", "content": messages}]
    else:
        chat = [dict(m) for m in messages]
        if not chat:
            raise ValueError("messages is empty; pass a prompt or at least one message")
    body: dict[str, Any] = {"model": model, "messages": chat, **extra, "stream": stream}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return body


def _tool_call(raw: Mapping[str, Any], index: int) -> ToolCall:
    """One entry of OpenAI's ``message.tool_calls``; a KeyError/TypeError if it is none."""
    function = raw["function"]
    name = function["name"]
    if not isinstance(name, str):
        raise TypeError("a tool call's function name is not a string")
    arguments = function.get("arguments")
    if isinstance(arguments, Mapping):  # some servers send an object, not a JSON string
        decoded: Any = dict(arguments)
    else:
        text = "" if arguments is None else str(arguments)
        try:
            decoded = json.loads(text) if text.strip() else {}
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            # Kept, not raised: the loop tells the model, which can try again.
            decoded = {"_raw": text}
    # Some local servers omit ids; the position is a stable stand-in.
    ident = raw.get("id") or f"call_{index}"
    return ToolCall(id=str(ident), name=name, arguments=decoded)


def _http_errors() -> type[Exception]:
    import httpx

    # TransportError covers connect/read/write errors and timeouts; a closed
    # stream surfaces as StreamError.
    return httpx.TransportError


# -- the default model ------------------------------------------------------------------

_default: OpenAIChat | None = None


def set_model(client: OpenAIChat | None) -> None:
    """Make ``client`` the model the ``llm.chat`` tool uses in this process.

    ``None`` goes back to the default, built from the environment on first use.
    Configure workers by environment (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)
    or by calling this at start-up: either way the key stays in the process
    and never enters a workflow's checkpoints.

    Example::

        legato.agents.set_model(OpenAIChat("http://127.0.0.1:8000/v1"))   # a local vLLM
    """
    global _default
    if client is not None and not isinstance(client, OpenAIChat):
        raise TypeError(f"set_model takes an OpenAIChat (or None), not {client!r}")
    _default = client


def get_model() -> OpenAIChat:
    """The model the ``llm.chat`` tool uses: the one given to :func:`set_model`, else
    an :class:`OpenAIChat` made from ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``.

    >>> get_model().base_url
    'https://api.openai.com/v1'
    """
    global _default
    if _default is None:
        _default = OpenAIChat()
    return _default
