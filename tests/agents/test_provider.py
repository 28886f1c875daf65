"""OpenAIChat against a real ScriptedModel server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import email.utils
import http.server
import logging
import subprocess
import sys
import threading
import time

import pytest

import legato
import legato.agents
from legato._serde import JsonSerializer, decode_error, encode_error
from legato.agents._builtin import FetchFailed, http_get, llm_chat
from legato.agents._model_errors import retry_after
from legato.agents._openai import (
    MODEL_RETRY,
    ChatResponse,
    ModelError,
    ModelUnavailable,
    OpenAIChat,
    RateLimited,
    get_model,
    set_model,
)
from legato.agents.testing import ScriptedModel

KEY = "sk-test-4f9c2e71a8d35b60"
FAST = legato.Retry(attempts=3, initial=0.01, jitter=0, on=(RateLimited, ModelUnavailable))


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
async def server():
    async with ScriptedModel({"m": "Paris is the capital.", "n": "Nope"}) as s:
        yield s


# -- the happy path -----------------------------------------------------------------------


async def test_complete_returns_text_model_reason_and_usage(server, no_env):
    async with OpenAIChat(server.base_url) as client:
        reply = await client.complete("Capital of France?", model="m")
    assert reply == ChatResponse(
        text="Paris is the capital.", model="m", finish_reason="stop",
        usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    )


def test_a_chat_response_can_be_a_step_result():
    reply = ChatResponse("Paris", "m", "stop", {"total_tokens": 3})
    serializer = JsonSerializer()
    assert serializer.loads(serializer.dumps(reply)) == reply


async def test_request_body_carries_messages_options_and_extras(server, no_env):
    messages = [{"role": "system", "content": "terse"}, {"role": "user", "content": "hi"}]
    async with OpenAIChat(server.base_url) as client:
        reply = await client.complete(messages, model="m", max_tokens=2, temperature=0.5, seed=7)
    assert (reply.text, reply.finish_reason) == ("Paris is", "length")
    body = server.requests[0].body
    assert body == {"model": "m", "messages": messages, "seed": 7, "stream": False,
                    "max_tokens": 2, "temperature": 0.5}


async def test_stream_yields_the_text_in_pieces(server, no_env):
    async with OpenAIChat(server.base_url) as client:
        pieces = [p async for p in client.stream("Capital?", model="m")]
    assert pieces == ["Paris ", "is ", "the ", "capital."]
    assert server.requests[0].body["stream"] is True


async def test_stream_retries_opening_and_reports_rejections(server, no_env):
    server.fail(503)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        assert "".join([p async for p in client.stream("x", model="n")]) == "Nope"
        assert server.count == 2
        server.fail(400)
        with pytest.raises(ModelError, match="400"):
            [p async for p in client.stream("x", model="n")]
    assert server.count == 3


async def test_list_models_checks_the_configuration(server, no_env):
    async with OpenAIChat(server.base_url) as client:
        assert await client.list_models() == ["m", "n"]
    async with ScriptedModel(api_key=KEY) as guarded, OpenAIChat(guarded.base_url) as client:
        with pytest.raises(ModelError, match=r"401.*OPENAI_API_KEY"):
            await client.list_models()


async def test_key_is_sent_as_bearer_and_masked_in_repr(no_env):
    async with ScriptedModel(api_key=KEY) as server:
        client = OpenAIChat(server.base_url, KEY, headers={"X-Team": "secret-team"})
        assert (await client.complete("hi", model="m")).text == "echo: hi"
        await client.aclose()
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert server.requests[0].headers["x-team"] == "secret-team"
    shown = repr(client)
    assert KEY not in shown and "secret-team" not in shown
    assert shown == f"OpenAIChat(base_url={server.base_url!r}, api_key='***', headers=['X-Team'])"


async def test_no_key_means_no_authorization_header(server, no_env):
    async with OpenAIChat(server.base_url) as client:
        await client.complete("hi", model="m")
    assert "authorization" not in server.requests[0].headers
    assert repr(client).endswith("api_key=None)")


async def test_base_url_and_key_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with OpenAIChat() as client:
        assert client.base_url == server.base_url
        await client.complete("hi", model="m")
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_defaults_to_openai_without_environment(no_env):
    assert OpenAIChat().base_url == "https://api.openai.com/v1"


# -- errors and retries -------------------------------------------------------------------


async def test_429_waits_for_retry_after_measured_at_the_server(server, no_env):
    server.fail(429, retry_after=0.3)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        assert (await client.complete("x", model="n")).text == "Nope"
    first, second = server.requests
    assert server.count == 2
    assert 0.3 <= second.at - first.at < 0.3 + 0.5  # the hint, not the 10 ms schedule


async def test_500_is_retried_until_it_succeeds(server, no_env):
    server.fail(500, times=2)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        assert (await client.complete("x", model="n")).text == "Nope"
    assert server.count == 3


async def test_500_gives_up_with_a_note_per_attempt(server, no_env):
    server.fail(502, times=5)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        with pytest.raises(ModelUnavailable, match="502") as caught:
            await client.complete("x", model="n")
    assert server.count == 3
    assert len(caught.value.__notes__) == 3


@pytest.mark.parametrize(("status", "fix"), [
    (400, "fix the request"), (401, "check OPENAI_API_KEY"), (403, "permissions"),
    (404, "check the model name"), (422, "fix the request"),
])
async def test_client_errors_are_not_retried(server, no_env, status, fix):
    server.fail(status)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        with pytest.raises(ModelError, match=fix) as caught:
            await client.complete("x", model="n")
    assert type(caught.value) is ModelError and caught.value.status == status
    assert server.count == 1


async def test_unknown_model_names_the_fix(server, no_env):
    async with OpenAIChat(server.base_url) as client:
        with pytest.raises(ModelError, match=r"404: The model 'gpt-9' does not exist"):
            await client.complete("x", model="gpt-9")


async def test_retry_none_is_a_single_attempt(server, no_env):
    server.fail(500)
    async with OpenAIChat(server.base_url, retry=FAST) as client:
        with pytest.raises(ModelUnavailable):
            await client.complete("x", model="n", retry=None)
    assert server.count == 1


async def test_unreachable_and_slow_servers_are_unavailable(no_env):
    with ScriptedModel() as gone:
        url = gone.base_url
    async with OpenAIChat(url, retry=None) as client:
        with pytest.raises(ModelUnavailable, match="could not be reached") as caught:
            await client.complete("x", model="m")
    assert caught.value.status is None
    async with ScriptedModel(delays={"slow": 5}) as server, \
            OpenAIChat(server.base_url, timeout=0.1, retry=None) as client:
        with pytest.raises(ModelUnavailable, match=r"did not answer within 0.1 s"):
            await client.complete("x", model="slow")


class _NotAnApi(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 200 and an HTML page, like a web server at the wrong URL."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "13")
        self.end_headers()
        self.wfile.write(b"<html></html>")

    def log_message(self, *args: object) -> None:
        pass


async def test_not_a_chat_completion_is_a_model_error(no_env):
    web = _serve(_NotAnApi)
    try:
        async with OpenAIChat(f"http://127.0.0.1:{web.server_address[1]}", retry=None) as c:
            with pytest.raises(ModelError, match=r"not a chat completion: '<html></html>'.*/v1"):
                await c.complete("x", model="m")
    finally:
        await asyncio.to_thread(web.shutdown)
        web.server_close()


async def test_key_is_never_in_error_messages_or_logs(no_env, caplog):
    caplog.set_level(logging.DEBUG)
    async with ScriptedModel() as server, OpenAIChat(server.base_url, KEY, retry=FAST) as client:
        server.fail(400, message=f"Incorrect API key provided: {KEY}")  # a server echoing it
        server.fail(500, times=5, message=f"{KEY} broke")
        errors = []
        for _ in range(2):
            try:
                await client.complete("x", model="m")
            except ModelError as exc:
                errors.append(exc)
    assert len(errors) == 2 and "***" in str(errors[0])
    for exc in errors:
        data = encode_error(exc)
        assert KEY not in repr(data), data
    assert KEY not in caplog.text


def test_errors_rebuild_from_their_args_as_recorded():
    for exc in (ModelError("bad", 400), RateLimited("slow down", 429, 2.5),
                ModelUnavailable("down", None)):
        again = type(exc)(*exc.args)
        assert (str(again), again.status, again.retry_after) == \
            (str(exc), exc.status, exc.retry_after)
        rebuilt = decode_error(encode_error(exc))
        assert type(rebuilt) is type(exc) and rebuilt.args == exc.args
    assert issubclass(ModelError, legato.LegatoError)


def test_retry_after_parses_seconds_dates_and_milliseconds():
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after({"Retry-After": soon}) or 0) <= 30
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after({"Retry-After": past}) == 0.0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({"Retry-After": "-1"}) is None
    assert retry_after({}) is None


async def test_rate_limit_error_carries_retry_after_from_a_date(server, no_env):
    server.fail(429, retry_after=email.utils.formatdate(time.time() + 60, usegmt=True))
    async with OpenAIChat(server.base_url, retry=None) as client:
        with pytest.raises(RateLimited, match="it asks to wait") as caught:
            await client.complete("x", model="m")
    assert 58 <= (caught.value.retry_after or 0) <= 60


# -- the built-in tools, inside and outside workflows ------------------------------------


@pytest.fixture
def model(server):
    """The ScriptedModel as the process's default model (what llm.chat uses)."""
    set_model(OpenAIChat(server.base_url, KEY))
    yield server
    set_model(None)


@legato.workflow
async def timed_question(prompt: str) -> tuple[str, float]:
    before = legato.now()
    text = await llm_chat(prompt, model="m")
    return text, (legato.now() - before).total_seconds()


async def test_llm_chat_tool_asks_the_default_model(model):
    assert await llm_chat("Capital?", model="n") == "Nope"
    assert model.requests[0].body["model"] == "n"
    assert model.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert legato.agents.registry["llm.chat"] is llm_chat
    assert llm_chat.effects == {"llm"} and llm_chat.retry == MODEL_RETRY


async def test_llm_chat_with_a_grant_fills_model_and_caps_tokens(model):
    class Writer(legato.Agent):
        chat = legato.use("llm.chat", grant=legato.Grant(model="m", max_tokens=2))

    assert await Writer().chat("Capital?") == "Paris is"
    assert model.requests[0].body["max_tokens"] == 2
    with pytest.raises(legato.GrantViolation, match="max_tokens"):
        await Writer().chat("Capital?", max_tokens=500)
    assert model.count == 1  # refused before any I/O


async def test_llm_chat_does_not_retry_a_rejected_request(model):
    model.fail(400)
    with pytest.raises(ModelError, match="400"):
        await llm_chat("x", model="m")
    assert model.count == 1


async def test_llm_chat_429_in_a_workflow_waits_exactly_retry_after_in_virtual_time(model, db):
    model.fail(429, retry_after=30)
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        text, waited = await rt.run(timed_question, "x", id="q-1")
        info = await rt.get("q-1")
    assert text == "Paris is the capital."
    assert waited == 30.0  # the server's hint, not the 1 s schedule
    assert model.count == 2  # one retry layer: the tool's recorded policy
    assert [s.kind for s in info.steps].count("attempt") == 1


async def test_llm_chat_500s_in_a_workflow_are_retried_durably(model, db):
    model.fail(500, times=2)
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        text, waited = await rt.run(timed_question, "x", id="q-2")
    assert text == "Paris is the capital."
    assert model.count == 3
    assert 0.9 * 3 <= waited <= 1.1 * 3  # 1 s + 2 s of backoff, with 10 % jitter


async def test_http_get_fetches_pages_and_names_failures(no_env):
    pages = {"/search?q=durable": "results for durable"}
    async with ScriptedModel(pages=pages) as server:
        assert await http_get(f"{server.url}/search?q=durable") == "results for durable"
        with pytest.raises(FetchFailed, match=r"answered 404") as caught:
            await http_get(f"{server.url}/missing")
        assert type(caught.value) is FetchFailed and caught.value.status == 404
        assert server.count == 2  # the 404 was not retried
        server.fail(503, retry_after=0.2, path="/search")
        assert await http_get(f"{server.url}/search?q=durable") == "results for durable"
        assert server.count == 4
        gap = server.requests[3].at - server.requests[2].at
        assert 0.2 <= gap < 0.2 + 0.6  # FETCH_RETRY's 0.5 s ± 10 %, or the hint


async def test_http_get_domain_grant_is_checked_before_any_request(no_env):
    class Reader(legato.Agent):
        fetch = legato.use("http.get", grant=legato.Grant(domain="*.example.com"))

    async with ScriptedModel(pages={"/": "home"}) as server:
        with pytest.raises(legato.GrantViolation, match="domain"):
            await Reader().fetch(server.url + "/")
        assert server.count == 0


async def test_http_get_refuses_redirects_to_another_host(no_env):
    async with ScriptedModel(pages={"/": "home"}) as target:
        web = _serve(_redirect_to(target.url.replace("127.0.0.1", "localhost") + "/"))
        try:
            with pytest.raises(FetchFailed, match="redirected to another host"):
                await http_get(f"http://127.0.0.1:{web.server_address[1]}/go")
        finally:
            await asyncio.to_thread(web.shutdown)
            web.server_close()
        assert target.count == 0


def _redirect_to(location: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Redirect


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.HTTPServer:
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, args=(0.02,), daemon=True).start()
    return web


# -- the default model ------------------------------------------------------------------


def test_default_model_comes_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    set_model(None)
    try:
        first = get_model()
        assert first.base_url == "http://127.0.0.1:9/v1" and get_model() is first
        mine = OpenAIChat("http://127.0.0.1:8/v1")
        set_model(mine)
        assert get_model() is mine
        with pytest.raises(TypeError, match="OpenAIChat"):
            set_model("http://x")  # type: ignore[arg-type]
    finally:
        set_model(None)


def test_one_client_serves_several_event_loops(no_env):
    with ScriptedModel() as server:
        client = OpenAIChat(server.base_url)
        for _ in range(2):  # each asyncio.run gets a fresh connection pool
            assert asyncio.run(client.complete("hi", model="m")).text == "echo: hi"
    assert server.count == 2


def test_model_retry_is_the_documented_default():
    assert OpenAIChat("http://x/v1").retry == MODEL_RETRY
    assert MODEL_RETRY.on == (RateLimited, ModelUnavailable)
    with pytest.raises(TypeError, match=r"legato\.Retry"):
        OpenAIChat("http://x/v1", retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model="):
        asyncio.run(OpenAIChat("http://x/v1").complete("x", model=""))
    with pytest.raises(ValueError, match="empty"):
        asyncio.run(OpenAIChat("http://x/v1").complete([], model="m"))


def test_registering_the_builtin_tools_imports_no_httpx():
    code = (
        "import sys, legato, legato.agents as agents\n"
        "tools = [agents.registry['llm.chat'], agents.registry['http.get']]\n"
        "assert agents.llm_chat is tools[0] and agents.http_get is tools[1]\n"
        "assert 'httpx' not in sys.modules, 'httpx was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
