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
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, final
from urllib.parse import unquote_plus, urlsplit

__all__ = ["Received", "ScriptedModel"]

#: A reply script: a function of the request body, or a reply per model name.
Reply = Callable[[dict[str, Any]], str] | Mapping[str, str]
#: Pages for ``GET``: a text per path (with or without its query), or a function of it.
Pages = Mapping[str, str] | Callable[[str], str | None]


@final
@dataclass(frozen=True, slots=True)
class Received:
    """One request the server received (whether it answered it or failed it on purpose).

    Example::

        last = server.requests[-1]
        assert last.body["model"] == "fast" and "authorization" in last.headers

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: the path with its query string, like ``/v1/chat/completions``.
        body: the JSON body (``None`` for ``GET`` or a body that is not JSON).
        headers: the request headers, names in lower case.
        at: ``time.monotonic()`` when it arrived.
    """

    method: str
    path: str
    body: Any
    headers: Mapping[str, str]
    at: float

    @property
    def model(self) -> str | None:
        """The ``model`` field of a chat request, else ``None``."""
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None


@dataclass(slots=True)
class _Fault:
    status: int
    times: int
    retry_after: float | str | None
    model: str | None
    path: str | None
    message: str

    def matches(self, request: Received) -> bool:
        return ((self.model is None or request.model == self.model)
                and (self.path is None or request.path.startswith(self.path)))


@dataclass(slots=True)
class _Hold:
    model: str | None
    times: int
    released: threading.Event = field(default_factory=threading.Event)


@final
class ScriptedModel:
    """A real OpenAI-compatible model server on 127.0.0.1 with scripted answers.

    Use it as ``with ScriptedModel(...) as server:`` or ``async with``; it
    listens from ``__enter__`` (or :meth:`start`) until :meth:`close`.

    Example::

        async with ScriptedModel(lambda req: req["messages"][-1]["content"].upper()) as server:
            legato.agents.set_model(OpenAIChat(server.base_url, api_key="test-key"))
            assert await chat("hi", model="any") == "HI"
            assert server.requests[0].headers["authorization"] == "Bearer test-key"

    Args:
        reply: what the model says. A function of the request body (a dict with
            ``model``, ``messages``, ...) returning the text; or a dict from model
            name to text, which also makes other model names a 404, as real
            servers do; by default ``"echo: <last message>"``.
        delays: seconds to wait before answering, per model name.
        pages: text for ``GET`` paths other than ``/v1/models``: a dict keyed by
            path with query (``"/search?q=x"``) or without it, or a function of
            the path that returns ``None`` for a 404.
        api_key: when given, API requests (``/v1/...``) without
            ``Authorization: Bearer <api_key>`` get 401; pages stay public.
        host, port: where to listen; port ``0`` picks a free one.

    ``max_tokens`` is honoured by words: a longer reply is cut and its
    ``finish_reason`` is ``"length"``. Usage counts words too. Requests are
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
        self._faults: list[_Fault] = []
        self._holds: list[_Hold] = []  # holds with requests left to catch
        self._pending: list[_Hold] = []  # every hold not yet released
        self._closed = threading.Event()
        self._server: ThreadingHTTPServer | None = None
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
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._server = _Server(self._address, handler)
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
        """The port it listens on (the real one when made with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the server is not started; use 'with ScriptedModel() as server:'")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server's root, like ``http://127.0.0.1:54321``; pages are served under it."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root, ``<url>/v1``: give it to ``OpenAIChat`` or ``OPENAI_BASE_URL``."""
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
        text = message or _PHRASES.get(status, "scripted failure")
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, model, path, text))

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
            held = _Hold(model, times)
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
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """How many requests reached the server (answered, failed or still in flight)."""
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

    def _arrived(self, request: Received) -> tuple[_Fault | None, _Hold | None]:
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

    def _text(self, body: dict[str, Any]) -> str | None:
        """The scripted reply to a chat request; ``None`` for a model not served."""
        if callable(self.reply):
            return str(self.reply(body))
        if self.reply is not None:
            return self.reply.get(body["model"])
        messages = body["messages"]
        last = messages[-1].get("content", "") if messages else ""
        return f"echo: {last}"

    def _models(self) -> list[str]:
        if isinstance(self.reply, Mapping):
            return sorted(set(self.reply) | set(self.delays))
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


_PHRASES = {
    400: "bad request", 401: "unauthorized", 404: "not found", 408: "request timeout",
    422: "unprocessable entity", 429: "rate limit reached, slow down",
    500: "internal server error", 502: "bad gateway", 503: "service unavailable",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a held or delayed request never blocks close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up (a killed worker, a timeout): not the server's fault
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection for the :class:`ScriptedModel` in ``scripted``."""

    scripted: ScriptedModel
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    # Headers and body go out in separate writes; with Nagle on, the body can
    # wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests; stderr noise helps no one

    def do_GET(self) -> None:
        request = self._receive(None)
        if not self._gate(request):
            return
        if request.path.split("?")[0].rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "legato"}
                    for m in self.scripted._models()]
            self._json(200, {"object": "list", "data": data})
            return
        page = self.scripted._page(request.path)
        if page is None:
            self._send(404, f"no page at {request.path}\n".encode(), "text/plain; charset=utf-8")
            return
        kind = "text/html" if page.lstrip().startswith("<") else "text/plain"
        self._send(200, page.encode(), f"{kind}; charset=utf-8")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = self._receive(body)
        if not self._gate(request):
            return
        if request.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no endpoint at {request.path}", "not_found")
            return
        self._chat(body)

    # -- steps of a request ---------------------------------------------------------

    def _receive(self, body: Any) -> Received:
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Received(self.command, self.path, body, headers, time.monotonic())

    def _gate(self, request: Received) -> bool:
        """Apply auth, holds, faults and delays; ``False`` if already answered."""
        fault, held = self.scripted._arrived(request)
        if held is not None:
            held.released.wait()
        key = self.scripted.api_key
        api = request.path.startswith("/v1/")  # pages are public, like the web
        if api and key is not None and request.headers.get("authorization") != f"Bearer {key}":
            self._error(401, "Incorrect API key provided", "invalid_api_key")
            return False
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            self._error(fault.status, fault.message, "scripted_fault", headers)
            return False
        delay = self.scripted.delays.get(request.model or "", 0.0)
        if delay > 0:
            self.scripted._wait(delay)
        return True

    def _chat(self, body: Any) -> None:
        if not (isinstance(body, dict) and isinstance(body.get("model"), str)
                and isinstance(body.get("messages"), list) and body["messages"]):
            self._error(400, "the body needs 'model' (a string) and 'messages' (a non-empty "
                             "list)", "invalid_request_error")
            return
        text = self.scripted._text(body)
        if text is None:
            self._error(404, f"The model '{body['model']}' does not exist", "model_not_found")
            return
        words = re.findall(r"\S+\s*", text)
        limit = body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and len(words) > limit:
            words, finish = words[:limit], "length"
        if body.get("stream"):
            self._stream(body["model"], words, finish)
        else:
            self._complete(body, "".join(words).rstrip() if finish == "length" else text,
                           len(words), finish)

    def _complete(self, body: dict[str, Any], text: str, tokens: int, finish: str) -> None:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        self._json(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": tokens,
                      "total_tokens": prompt + tokens},
        })

    def _stream(self, model: str, words: list[str], finish: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the body is the end of the stream
        self.end_headers()
        self.close_connection = True
        for chunk in _chunks(model, words, finish):
            self.wfile.write(chunk)
            self.wfile.flush()

    # -- writing --------------------------------------------------------------------

    def _error(self, status: int, message: str, kind: str,
               headers: Mapping[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "code": status}},
                   headers)

    def _json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, kind: str,
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _chunks(model: str, words: list[str], finish: str) -> Iterator[bytes]:
    """Server-sent events of a streamed completion, the way OpenAI sends them."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

    def event(delta: dict[str, str], reason: str | None = None) -> bytes:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": reason}]}
        return f"data: {json.dumps(data)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    for word in words:
        yield event({"content": word})
    yield event({}, finish)
    yield b"data: [DONE]\n\n"


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
