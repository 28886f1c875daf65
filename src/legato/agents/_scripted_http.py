"""The HTTP side of :class:`~legato.agents.testing.ScriptedModel`: server, handler, events.

Kept apart from ``testing`` so that each file reads in one sitting; nothing
here is public except :class:`Received`, re-exported by ``testing``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    from .testing import ScriptedModel

__all__ = ["PHRASES", "Fault", "Handler", "Hold", "Received", "Server"]


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
        """The ``model`` field of a chat request, else ``None``.

        >>> server.requests[0].model     # e.g. 'gpt-4o-mini'
        """
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None


@dataclass(slots=True)
class Fault:
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
class Hold:
    model: str | None
    times: int
    released: threading.Event = field(default_factory=threading.Event)


PHRASES = {
    400: "bad request", 401: "unauthorized", 404: "not found", 408: "request timeout",
    422: "unprocessable entity", 429: "rate limit reached, slow down",
    500: "internal server error", 502: "bad gateway", 503: "service unavailable",
}


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a held or delayed request never blocks close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up (a killed worker, a timeout): not the server's fault
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Serves one connection for the :class:`ScriptedModel` in ``scripted`` (set per server)."""

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
        if isinstance(text, dict):
            self._tool_calls(body, text)
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
        prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        self._json(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": tokens,
                      "total_tokens": prompt + tokens},
        })

    def _tool_calls(self, body: dict[str, Any], script: dict[str, Any]) -> None:
        """Answer with the tool calls a reply function asked for (JSON only)."""
        if body.get("stream"):
            self._error(400, "ScriptedModel does not stream tool calls; send stream=false",
                        "invalid_request_error")
            return
        try:
            calls = [_tool_call(i, c) for i, c in enumerate(script["tool_calls"], 1)]
        except (KeyError, TypeError) as exc:
            # A 400 (not retried) puts the script's mistake in the test's error message.
            self._error(400, "the ScriptedModel reply function returned a bad dict: it takes "
                        "{'tool_calls': [{'name': ..., 'arguments': {...}}, ...]}, not "
                        f"{script!r} ({type(exc).__name__}: {exc})", "scripted_error")
            return
        message = {"role": "assistant", "content": script.get("content"), "tool_calls": calls}
        prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        tokens = len(json.dumps(calls).split())
        self._json(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
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


def _tool_call(index: int, script: Mapping[str, Any]) -> dict[str, Any]:
    """One scripted call in OpenAI's shape; a string ``arguments`` is sent as it is."""
    arguments = script.get("arguments", {})
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": str(script.get("id") or f"call_{index}"), "type": "function",
            "function": {"name": str(script["name"]), "arguments": text}}


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
