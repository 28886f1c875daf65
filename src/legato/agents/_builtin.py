"""legato's built-in tools: ``llm.chat`` / ``llm.complete`` (a chat model), ``http.get``.

The default tool registry imports this module the first time one of these
names is looked up (``legato.use("llm.chat")``), so ``import legato`` needs
neither httpx nor a model server. httpx is imported inside the calls only.

Each tool retries transient failures by its own policy and calls the network
exactly once per attempt, so inside a workflow, where a tool call is a durable
step, every attempt is recorded and the waits between them (a server's
``Retry-After`` included) are durable sleeps. Nothing secret is an argument:
the model's address and key come from :func:`~legato.agents.get_model`,
configured per process, so they never reach a checkpoint.

Errors of ``http.get``::

    FetchFailed            4xx other than 408/429, a redirect to another host; not retried
    └── FetchUnavailable   429, 408, 5xx, timeouts, connection errors; retried
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any, Final

from .._errors import LegatoError
from ..resilience import Retry
from ._model_errors import retry_after
from ._openai import MODEL_RETRY, ChatResponse, get_model
from ._tool import tool

if TYPE_CHECKING:
    import httpx

__all__ = ["FETCH_RETRY", "FetchFailed", "FetchUnavailable", "http_get", "llm_chat",
           "llm_complete"]


# -- llm.chat -----------------------------------------------------------------------------


@tool("llm.chat", effects={"llm"}, retry=MODEL_RETRY)
async def llm_chat(
    prompt: str | list[dict[str, str]], *, model: str, max_tokens: int | None = None,
    temperature: float | None = None,
) -> str:
    """Ask a chat model and return its answer as text.

    ``prompt`` is a question, or a list of chat messages
    (``[{"role": "user", "content": "..."}]``). The model server is the
    process's default (:func:`legato.agents.set_model`, else ``OPENAI_BASE_URL``
    and ``OPENAI_API_KEY``). Rate limits and server errors are retried by
    :data:`~legato.agents.MODEL_RETRY`, honouring ``Retry-After``.

    Example::

        class Writer(legato.Agent):
            chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o-mini",
                                                            max_tokens=256))

        text = await Writer().chat("Name three rivers in France")
    """
    # One attempt: the tool's retry policy (recorded inside workflows) does the retrying.
    reply = await get_model().complete(prompt, model=model, max_tokens=max_tokens,
                                       temperature=temperature, retry=None)
    return reply.text


@tool("llm.complete", effects={"llm"}, retry=MODEL_RETRY)
async def llm_complete(
    messages: list[dict[str, Any]], *, model: str, tools: list[dict[str, Any]] | None = None,
    max_tokens: int | None = None, temperature: float | None = None,
) -> ChatResponse:
    """Ask a chat model, offering it tools, and return the whole completion.

    ``messages`` are OpenAI chat messages (tool results and assistant tool
    calls included); ``tools`` are function-tool schemas (``[t.schema, ...]``).
    The answer is a :class:`~legato.agents.ChatResponse`, whose ``tool_calls``
    say which tools the model wants run. Same model server and retry policy as
    ``llm.chat``; :func:`legato.agents.run_tools` drives it in a loop.

    Example::

        reply = await llm_complete([{"role": "user", "content": "Weather in Paris?"}],
                                   model="gpt-4o-mini", tools=[weather.schema])
        reply.tool_calls      # (ToolCall(id='call_1', name='weather', arguments={...}),)
    """
    # One attempt: the tool's retry policy (recorded inside workflows) does the retrying.
    return await get_model().complete(messages, model=model, max_tokens=max_tokens,
                                      temperature=temperature, tools=tools, retry=None)


# -- http.get -------------------------------------------------------------------------------


class FetchFailed(LegatoError):
    """``http.get`` got an answer that asking again won't change (404, 403, ...).

    Example::

        try:
            page = await http_get("https://example.com/missing")
        except FetchFailed as exc:
            print(exc.status)          # 404

    Attributes:
        url: the URL asked for.
        status: the HTTP status, or ``None`` when no answer came.
        retry_after: seconds the server asked to wait, or ``None``.
    """

    def __init__(self, message: str, url: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.message = message
        self.url = url
        self.status = status
        self.retry_after = retry_after
        # args are the constructor's, so a recorded error is rebuilt as itself
        super().__init__(message, url, status, retry_after)

    def __str__(self) -> str:
        return self.message


class FetchUnavailable(FetchFailed):
    """``http.get`` met a transient failure (429, 408, 5xx, timeout, no connection); retried.

    Example::

        except FetchUnavailable as exc:
            await asyncio.sleep(exc.retry_after or 1)
    """


#: ``http.get``'s retry policy: 3 attempts, 0.5 s then 1 s apart (or the
#: server's ``Retry-After``), for :class:`FetchUnavailable` only.
FETCH_RETRY: Final = Retry(attempts=3, initial=0.5, backoff=2.0, max_delay=30.0,
                           on=(FetchUnavailable,))

_MAX_REDIRECTS: Final = 5
_HEADERS: Final = {"User-Agent": "legato http.get"}


@tool("http.get", effects={"http"}, retry=FETCH_RETRY)
async def http_get(url: str, *, timeout: float | None = None) -> str:
    """Fetch ``url`` with an HTTP GET and return the body as text.

    Redirects are followed on the same host only: a grant's ``domain``
    allow-list checks the URL you pass, so a redirect to another host is
    refused with :class:`FetchFailed` naming it (fetch that URL directly).
    ``timeout`` is seconds to connect and between bytes (default 30); a
    grant's ``timeout`` bounds each attempt. Each call has its own
    connection, closed before it returns, so nothing outlives the event loop.

    Example::

        class Reader(legato.Agent):
            fetch = legato.use("http.get", grant=legato.Grant(domain="*.python.org",
                                                             timeout=10))

        page = await Reader().fetch("https://docs.python.org/3/")
    """
    import httpx

    seconds = 30.0 if timeout is None else timeout
    current = url
    try:
        async with httpx.AsyncClient(headers=_HEADERS, verify=_tls()) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                response = await client.get(current, timeout=seconds)
                if not response.is_redirect:
                    break
                current = _same_host_redirect(url, response)
            else:
                raise FetchFailed(f"GET {url} redirected more than {_MAX_REDIRECTS} times; "
                                  "fetch the final URL directly", url, response.status_code)
    except httpx.TimeoutException:
        raise FetchUnavailable(f"GET {url} got no answer within {seconds:g} s; retried; "
                               "if it persists, raise timeout= or try later", url) from None
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        transient = isinstance(exc, httpx.TransportError) and not isinstance(
            exc, httpx.UnsupportedProtocol)
        kind = FetchUnavailable if transient else FetchFailed
        raise kind(f"GET {url} failed before an answer ({type(exc).__name__}: {exc}); "
                   "check the URL and that the host is reachable", url) from None
    if response.status_code >= 400:
        raise _status_error(url, response)
    return response.text


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: loading the CA bundle takes ~20 ms, a client 0.5 ms."""
    return ssl.create_default_context()


def _same_host_redirect(url: str, response: httpx.Response) -> str:
    target = response.next_request.url if response.next_request is not None else None
    if target is None:
        raise FetchFailed(f"GET {url} answered {response.status_code} without a Location; "
                          "the server's redirect is broken", url, response.status_code)
    if target.host != response.request.url.host:
        raise FetchFailed(
            f"GET {url} redirected to another host ({target}); http.get follows redirects on "
            "the same host only, so that a grant's domain list can't be bypassed: fetch "
            "that URL directly", url, response.status_code,
        )
    return str(target)


def _status_error(url: str, response: httpx.Response) -> FetchFailed:
    status = response.status_code
    snippet = " ".join(response.text[:200].split()) or "no body"
    if status == 429 or status == 408 or status >= 500:
        wait = retry_after(response.headers)
        hint = f"; the server asks to wait {wait:g} s" if wait is not None else ""
        return FetchUnavailable(f"GET {url} answered {status} ({snippet}){hint}; retried; "
                                "if it persists, try later or slow down", url, status, wait)
    return FetchFailed(f"GET {url} answered {status} ({snippet}); check the URL "
                       "(and any credentials it needs)", url, status)
