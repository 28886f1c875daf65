"""``ScriptedModel``: a real OpenAI-compatible HTTP server on 127.0.0.1 for tests and demos.

It answers ``POST /v1/chat/completions`` (JSON, and server-sent events with
``"stream": true``) and ``GET /v1/models`` with scripted replies, serves
static pages for other ``GET`` paths (so ``http.get`` and "search engines"
have something to fetch), injects faults (429 with ``Retry-After``, 500...),
delays or holds chosen models, and keeps every request it received so a test
can count what reached the server. Standard library only; the server runs in
a daemon thread, so the test's event loop stays free.

Example::

    from legato.agents.testing import ScriptedModel

    with ScriptedModel({"fast": "Paris", "slow": "Paris, France"},
                       delays={"slow": 0.5},
                       pages={"/search?q=paris": "Paris is the capital of France."}) as server:
        client = OpenAIChat(server.base_url)              # http://127.0.0.1:PORT/v1
        server.fail(status=429, times=1, retry_after=1)   # the next request is refused
        reply = await client.complete("Capital of France?", model="fast")
        assert reply.text == "Paris" and server.count == 2

From a shell (prints the base URL, serves until Ctrl-C)::

    python -m legato.agents.testing --port 8000 --model fast=Paris --delay slow=0.5
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any, final
from urllib.parse import unquote_plus, urlsplit

from ._scripted_http import PHRASES, Fault, Handler, Hold, Received, Server

__all__ = ["Received", "ScriptedModel"]

#: A reply script: a function of the request body (returning text, or a dict of
#: ``tool_calls``), or a reply per model name.
Reply = Callable[[dict[str, Any]], str | dict[str, Any]] | Mapping[str, str]
#: Pages for ``GET``: a text per path (with or without its query), or a function of it.
Pages = Mapping[str, str] | Callable[[str], str | None]


@final
class ScriptedModel:
    """A real OpenAI-compatible model server on 127.0.0.1 with scripted answers.

    Use it as ``with ScriptedModel(...) as server:`` or ``async with``; it
    listens from ``__enter__`` (or :meth:`start`) until :meth:`close`.

    Example::

        async with ScriptedModel(lambda req: req["messages"][-1]["content"].upper()) as server:
            legato.agents.set_model(OpenAIChat(server.base_url, api_key="test-key"))
            assert await legato.agents.llm_chat("hi", model="any") == "HI"
            assert server.requests[0].headers["authorization"] == "Bearer test-key"

    Args:
        reply: what the model says. A function of the request body (a dict with
            ``model``, ``messages``, ``tools``...) returning the text, or a dict
            ``{"tool_calls": [{"name": "http_get", "arguments": {...}}, ...]}``
            (optionally with ``"content"``) to ask for tool calls; or a dict from
            model name to text, which also makes other model names a 404, as real
            servers do; by default ``"echo: <last message>"``.
        delays: seconds to wait before answering, per model name.
        pages: text for ``GET`` paths other than ``/v1/models``: a dict keyed by
            path with query (``"/search?q=x"``) or without it, or a function of
            the path that returns ``None`` for a 404.
        api_key: when given, API requests (``/v1/...``) without
            ``Authorization: Bearer <api_key>`` get 401; pages stay public.
        host, port: where to listen; port ``0`` picks a free one.

    ``max_tokens`` is honoured by words: a longer reply is cut and its
    ``finish_reason`` is ``"length"``. Usage counts words too. Tool calls are
    answered in OpenAI's format (``message.tool_calls``, ids ``call_<n>``
    unless the script gives an ``"id"``, arguments as a JSON string, or as
    given when the script passes a string; ``finish_reason="tool_calls"``);
    they are not streamed: a ``stream: true`` request scripted with tool calls
    gets a 400. Requests are
    served each in its own thread, so ``reply`` and ``pages`` functions may
    run concurrently and must not touch the test's event loop.
    """

    def __init__(
        self, reply: Reply | None = None, *, delays: Mapping[str, float] | None = None,
        pages: Pages | None = None, api_key: str | None = None, host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reply = reply
        self.delays = dict(delays or {})
        self.pages = pages
        self.api_key = api_key
        self._address = (host, port)
        self._lock = threading.Condition()
        self._requests: list[Received] = []
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []  # holds with requests left to catch
        self._pending: list[Hold] = []  # every hold not yet released
        self._closed = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"<ScriptedModel {where}, {self.count} requests>"

    # -- lifetime -------------------------------------------------------------------

    def start(self) -> ScriptedModel:
        """Start listening (``with`` does it for you); returns the server.

        >>> server = ScriptedModel().start(); print(server.base_url); server.close()
        """
        if self._server is not None:
            raise RuntimeError("this ScriptedModel is already running; make a new one")
        handler = type("Handler", (Handler,), {"scripted": self})
        self._server = Server(self._address, handler)
        self._thread = threading.Thread(
            # A short poll makes close() quick: shutdown() waits for the next poll.
            target=self._server.serve_forever, args=(0.02,), name=f"ScriptedModel:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening, and wake requests that are delayed or held.

        >>> server.close()
        """
        self._closed.set()
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ScriptedModel:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)  # shutdown() blocks until the loop thread stops

    @property
    def port(self) -> int:
        """The port it listens on (the real one when made with ``port=0``).

        >>> ScriptedModel(port=0).start().port     # e.g. 54321
        """
        if self._server is None:
            raise RuntimeError("the server is not started; use 'with ScriptedModel() as server:'")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server's root, like ``http://127.0.0.1:54321``; pages are served under it.

        >>> await legato.agents.http_get(f"{server.url}/search?q=legato")
        """
        return f"http://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root, ``<url>/v1``: give it to ``OpenAIChat`` or ``OPENAI_BASE_URL``.

        >>> client = OpenAIChat(server.base_url)
        """
        return f"{self.url}/v1"

    # -- scripting ------------------------------------------------------------------

    def fail(self, status: int = 500, times: int = 1, retry_after: float | str | None = None,
             *, model: str | None = None, path: str | None = None,
             message: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` and an error body.

        Faults queue up in order: each request takes the first one that matches.

        Example::

            server.fail(429, retry_after=2)            # next request: 429, Retry-After: 2
            server.fail(503, times=2, model="slow")    # next 2 requests for "slow": 503

        Args:
            status: the HTTP status to answer with.
            times: how many requests fail.
            retry_after: sent as the ``Retry-After`` header (seconds, or an HTTP date string).
            model: only requests for this model.
            path: only requests whose path starts with this.
            message: the error message in the body (default: the status's phrase).
        """
        text = message or PHRASES.get(status, "scripted failure")
        with self._lock:
            self._faults.append(Fault(status, times, retry_after, model, path, text))

    def hold(self, model: str | None = None, times: int = 1) -> None:
        """Keep the next ``times`` chat requests (for ``model``, if given) waiting.

        A held request has arrived (it is in :attr:`requests`) but gets no
        answer until :meth:`release` or :meth:`close`: the way to stop a worker
        while a model call is in flight.

        Example::

            server.hold("third")
            server.wait_for(3)       # the third call has reached the server
            worker.kill()
        """
        with self._lock:
            held = Hold(model, times)
            self._holds.append(held)
            self._pending.append(held)

    def release(self) -> None:
        """Let every held request through, and hold no more.

        >>> server.release()
        """
        with self._lock:
            # Used-up holds may still have requests waiting on them.
            holds, self._holds, self._pending = self._pending, [], []
        for held in holds:
            held.released.set()

    # -- what arrived ---------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        """Every request received so far, oldest first (a copy).

        >>> [r.model for r in server.requests]     # e.g. ['first', 'second']
        """
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """How many requests reached the server (answered, failed or still in flight).

        >>> assert server.count == 3
        """
        with self._lock:
            return len(self._requests)

    def wait_for(self, count: int, *, timeout: float = 10.0) -> None:
        """Block until at least ``count`` requests have arrived.

        Blocks the calling thread: from async code use :meth:`wait_for_async`.

        >>> server.wait_for(3, timeout=5)

        Raises:
            TimeoutError: naming how many arrived, when ``timeout`` runs out first.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(
                    f"ScriptedModel received {len(self._requests)} requests in {timeout:g} s, "
                    f"not the {count} expected; is the client pointed at {self.base_url}?"
                )

    async def wait_for_async(self, count: int, *, timeout: float = 10.0) -> None:
        """:meth:`wait_for` for async code: the event loop keeps running meanwhile.

        >>> await server.wait_for_async(3)
        """
        await asyncio.to_thread(self.wait_for, count, timeout=timeout)

    # -- used by the handler ------------------------------------------------------

    def _arrived(self, request: Received) -> tuple[Fault | None, Hold | None]:
        """Note ``request``; take the fault and the hold that apply to it."""
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            chat = request.path.startswith("/v1/chat/completions")
            held = next((h for h in self._holds
                         if chat and (h.model is None or h.model == request.model)), None)
            if held is not None:
                held.times -= 1
                if held.times <= 0:
                    self._holds.remove(held)
            return fault, held

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the server closes."""
        self._closed.wait(seconds)

    def _text(self, body: dict[str, Any]) -> str | dict[str, Any] | None:
        """The scripted reply to a chat request (text or tool calls); ``None`` for a
        model not served."""
        if callable(self.reply):
            said = self.reply(body)
            return said if isinstance(said, dict) else str(said)
        if self.reply is not None:
            return self.reply.get(body["model"])
        messages = body["messages"]
        last = messages[-1].get("content", "") if messages else ""
        return f"echo: {last}"

    def _models(self) -> list[str]:
        if isinstance(self.reply, Mapping):
            return sorted(self.reply)  # the only models it answers
        return sorted(set(self.delays) | {"scripted"})

    def _page(self, path: str) -> str | None:
        if self.pages is None:
            return None
        if callable(self.pages):
            return self.pages(path)
        # Clients percent-encode queries ("q=a%20b"); a page may be keyed either way.
        for key in (path, unquote_plus(path), urlsplit(path).path):
            if key in self.pages:
                return self.pages[key]
        return None


# -- standalone ---------------------------------------------------------------------------


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{option} takes NAME=VALUE, not {item!r}")
        pairs[name] = value
    return pairs


def _fixed(text: str) -> Callable[[dict[str, Any]], str]:
    return lambda _body: text


def main(argv: list[str] | None = None) -> None:
    """Run a ScriptedModel until interrupted; prints its base URL first.

    Example (shell)::

        python -m legato.agents.testing --port 0 --model fast=Paris --delay slow=0.5 \\
            --page "/search?q=paris=Paris is in France"
    """
    parser = argparse.ArgumentParser(
        prog="python -m legato.agents.testing",
        description="A scripted OpenAI-compatible model server for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", help="one reply for every model (default: echo)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=REPLY",
                        help="serve model NAME answering REPLY (repeatable; others are 404)")
    parser.add_argument("--delay", action="append", default=[], metavar="NAME=SECONDS",
                        help="answer model NAME after SECONDS (repeatable)")
    parser.add_argument("--page", action="append", default=[], metavar="PATH=TEXT",
                        help="serve TEXT at GET PATH (repeatable; split at the last '=')")
    parser.add_argument("--api-key", help="require this bearer key")
    args = parser.parse_args(argv)

    reply: Reply | None = _pairs(args.model, "--model") or None
    if reply is None and args.reply is not None:
        reply = _fixed(args.reply)
    pages = {p.rpartition("=")[0]: p.rpartition("=")[2] for p in args.page}
    delays = {k: float(v) for k, v in _pairs(args.delay, "--delay").items()}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ScriptedModel(reply, delays=delays, pages=pages or None, api_key=args.api_key,
                       host=args.host, port=args.port) as server:
        print(server.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
