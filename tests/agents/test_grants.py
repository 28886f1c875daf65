"""Grants: every constraint kind, both outcomes, checked before any request reaches a server."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

import legato
from legato._serde import decode_error, encode_error
from legato.agents import Grant, ToolRegistry

# -- a real HTTP server on 127.0.0.1 that counts requests -------------------------------


class Server:
    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                if self.path.startswith("/slow"):
                    time.sleep(1.0)
                body = f"page {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


async def fetch_text(url: str) -> str:
    """A minimal HTTP/1.0 GET over asyncio streams (cancellable, no dependencies)."""
    parts = urlsplit(url)
    # the test server listens on 127.0.0.1 whatever name the URL uses
    reader, writer = await asyncio.open_connection("127.0.0.1", parts.port or 80)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        writer.write(f"GET {target} HTTP/1.0\r\nHost: {parts.hostname}\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


tools = ToolRegistry()


@legato.tool("web.get", effects={"http"}, registry=tools)
async def web_get(url: str, mirrors: list[str] | None = None) -> str:
    """Fetch a page (and its mirrors)."""
    pages = [await fetch_text(u) for u in [url, *(mirrors or [])]]
    return " | ".join(pages)


@legato.tool("web.post", effects={"http"}, registry=tools)
async def web_post(target: str, body: str = "") -> str:
    return await fetch_text(target + "?" + body)


@legato.tool("fake.chat", effects={"llm"}, registry=tools)
async def chat(prompt: str, *, model: str, max_tokens: int | None = None,
               temperature: float = 0.0, n: int = 1) -> dict[str, object]:
    """A pure stand-in for a model: echoes what it was called with."""
    return {"prompt": prompt, "model": model, "max_tokens": max_tokens,
            "temperature": temperature, "n": n}


# -- defaults and fixed values ------------------------------------------------------------


async def test_grant_values_are_defaults_for_the_call() -> None:
    bound = chat.with_grant(Grant(model="gpt-4o", temperature=0.5))
    reply = await bound("hi")
    assert reply["model"] == "gpt-4o" and reply["temperature"] == 0.5


async def test_a_caller_may_repeat_a_granted_value_but_not_change_it() -> None:
    bound = chat.with_grant(Grant(model="gpt-4o"))
    assert (await bound("hi", model="gpt-4o"))["model"] == "gpt-4o"
    with pytest.raises(legato.GrantViolation) as info:
        await bound("hi", model="gpt-5")
    err = info.value
    assert (err.tool, err.constraint, err.value) == ("fake.chat", "model", "gpt-5")
    assert str(err) == (
        "tool 'fake.chat' refused by its grant: model does not allow 'gpt-5' (the grant fixes "
        "it to 'gpt-4o'); nothing was sent. Pass a value the grant allows, or widen the grant "
        "where the tool is bound (legato.use(..., grant=...)).")


async def test_a_missing_required_argument_is_still_an_error_with_a_grant() -> None:
    with pytest.raises(TypeError, match=r"can't call tool 'fake.chat': missing a required "
                                        r"argument: 'model'"):
        await chat.with_grant(Grant(temperature=1.0))("hi")


# -- caps -----------------------------------------------------------------------------------


async def test_max_caps_the_parameter_without_the_prefix() -> None:
    bound = chat.with_grant(Grant(model="m", max_n=3))
    assert (await bound("hi"))["n"] == 1  # the tool's default stays
    assert (await bound("hi", n=3))["n"] == 3
    with pytest.raises(legato.GrantViolation, match=r"max_n does not allow 4 \(at most 3\)"):
        await bound("hi", n=4)


async def test_max_on_a_max_parameter_is_its_default_and_its_ceiling() -> None:
    bound = chat.with_grant(Grant(model="m", max_tokens=1024))
    assert (await bound("hi"))["max_tokens"] == 1024
    assert (await bound("hi", max_tokens=100))["max_tokens"] == 100
    with pytest.raises(legato.GrantViolation, match=r"max_tokens does not allow 4096"):
        await bound("hi", max_tokens=4096)
    with pytest.raises(legato.GrantViolation, match=r"None means no limit; at most 1024"):
        await bound("hi", max_tokens=None)


async def test_a_value_that_does_not_compare_with_the_cap_is_refused() -> None:
    bound = chat.with_grant(Grant(model="m", max_n=3))
    with pytest.raises(legato.GrantViolation, match=r"not comparable with the cap 3"):
        await bound("hi", n="many")  # type: ignore[arg-type]


# -- domain ---------------------------------------------------------------------------------


async def test_a_url_on_an_allowed_host_is_fetched(server: Server) -> None:
    bound = web_get.with_grant(Grant(domain="127.0.0.1"))
    assert await bound(server.url("/a")) == "page /a"
    assert server.hits == ["/a"]


async def test_star_dot_also_matches_the_bare_domain(server: Server) -> None:
    bound = web_get.with_grant(Grant(domain="*.localhost"))
    assert await bound(server.url("/bare", host="localhost")) == "page /bare"
    assert await bound(server.url("/sub", host="api.localhost")) == "page /sub"
    assert server.hits == ["/bare", "/sub"]


@pytest.mark.parametrize("url", [
    "http://evil.com/", "http://localhost.evil.com/", "http://evillocalhost/",
    "http://localhost@evil.com/",  # userinfo is not the host
    "//evil.com/x", "file:///etc/passwd", "http://[::1]/",
])
async def test_a_url_elsewhere_is_refused_before_any_request(server: Server, url: str) -> None:
    bound = web_get.with_grant(Grant(domain=["*.localhost", "127.0.0.1"]))
    with pytest.raises(legato.GrantViolation) as info:
        await bound(url)
    assert (info.value.tool, info.value.constraint, info.value.value) == ("web.get", "domain", url)
    assert "allowed hosts: ['*.localhost', '127.0.0.1']" in str(info.value)
    assert server.hits == []


async def test_every_url_argument_is_checked_including_lists(server: Server) -> None:
    bound = web_get.with_grant(Grant(domain="127.0.0.1"))
    with pytest.raises(legato.GrantViolation, match=r"domain does not allow 'https://evil.com/'"):
        await bound(server.url("/ok"), mirrors=[server.url("/m"), "https://evil.com/"])
    assert server.hits == []
    # a parameter named url (or *_url) is a URL even without a scheme
    with pytest.raises(legato.GrantViolation, match=r"domain does not allow 'evil.com/page'"):
        await bound("evil.com/page")
    # other parameters: any string with a scheme is a URL
    post = web_post.with_grant(Grant(domain="127.0.0.1"))
    with pytest.raises(legato.GrantViolation, match=r"domain does not allow 'http://evil.com'"):
        await post("http://evil.com")
    assert await post(server.url("/p"), body="x=1") == "page /p?x=1"
    assert server.hits == ["/p?x=1"]


def test_domain_patterns_are_validated() -> None:
    with pytest.raises(ValueError, match="a host pattern or a list of them"):
        Grant(domain=[])
    with pytest.raises(ValueError, match="a host pattern or a list of them"):
        Grant(domain=5)


# -- timeout ----------------------------------------------------------------------------


async def test_the_grant_timeout_cancels_a_slow_call(server: Server) -> None:
    grant = Grant(domain="127.0.0.1", timeout=0.2)
    bound = web_get.with_grant(grant)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        await bound(server.url("/slow"))
    assert time.monotonic() - started < 0.9  # the server takes 1 s
    assert str(info.value) == (
        "tool 'web.get' did not finish within 0.2 s (its grant Grant(domain='127.0.0.1', "
        "timeout=0.2)) and was cancelled; allow more time there, or ask the tool for less work")
    assert server.hits == ["/slow"]
    assert await bound(server.url("/fast")) == "page /fast"  # a quick call is unaffected


async def test_the_shorter_of_tool_and_grant_timeouts_wins() -> None:
    @legato.tool("sleepy", timeout=0.05, registry=ToolRegistry())
    async def sleepy() -> None:
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError, match=r"within 0.05 s \(its timeout=\)"):
        await sleepy.with_grant(Grant(timeout="10s"))()


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="more than 0 seconds"):
        Grant(timeout=0)


# -- budget ---------------------------------------------------------------------------------


async def test_a_budget_refuses_the_call_after_the_last_one(server: Server) -> None:
    bound = web_get.with_grant(Grant(domain="127.0.0.1", budget=2))
    await bound(server.url("/1"))
    await bound(server.url("/2"))
    with pytest.raises(legato.GrantViolation) as info:
        await bound(server.url("/3"))
    assert (info.value.constraint, info.value.value) == ("budget", 3)
    assert "the grant allows 2 calls through this binding" in str(info.value)
    assert server.hits == ["/1", "/2"]
    assert bound.calls == 2
    # another binding of the same grant counts its own calls
    assert await web_get.with_grant(Grant(domain="127.0.0.1", budget=2))(server.url("/4"))


async def test_a_refused_call_uses_up_no_budget() -> None:
    bound = chat.with_grant(Grant(model="m", budget=1, max_n=1))
    with pytest.raises(legato.GrantViolation, match="max_n"):
        await bound("hi", n=2)
    assert bound.calls == 0
    await bound("hi")


def test_budget_must_be_a_count() -> None:
    with pytest.raises(ValueError, match="number of calls"):
        Grant(budget=-1)
    with pytest.raises(ValueError, match="number of calls"):
        Grant(budget=True)


# -- binding ----------------------------------------------------------------------------


def test_a_key_that_names_no_parameter_fails_at_binding() -> None:
    with pytest.raises(TypeError, match=r"Grant\(modle='x'\) can't be bound to tool 'fake.chat': "
                                        r"modle= needs a parameter 'modle'"):
        chat.with_grant(Grant(modle="x"))
    with pytest.raises(TypeError, match=r"max_size= needs a parameter 'size' or 'max_size'"):
        chat.with_grant(Grant(max_size=3))


def test_a_cap_below_the_tools_own_default_fails_at_binding() -> None:
    with pytest.raises(TypeError, match=r"the tool's default temperature=0.0 is over the cap"):
        chat.with_grant(Grant(max_temperature=-1.0))
    chat.with_grant(Grant(max_temperature=-1.0, temperature=-2.0))  # the grant sets a default


def test_a_tool_taking_kwargs_accepts_any_key() -> None:
    @legato.tool("open", registry=ToolRegistry())
    async def open_tool(**options: object) -> dict[str, object]:
        return options

    assert asyncio.run(open_tool.with_grant(Grant(colour="red"))()) == {"colour": "red"}


def test_grants_are_values() -> None:
    assert Grant(model="a", max_tokens=5) == Grant(max_tokens=5, model="a")
    assert Grant(model="a") != Grant(model="b")
    assert repr(Grant(model="a", domain="*.x.com")) == "Grant(model='a', domain='*.x.com')"
    assert dict(Grant(model="a").constraints) == {"model": "a"}
    with pytest.raises(TypeError):
        Grant(model="a").constraints["model"] = "b"  # type: ignore[index]


def test_grant_violations_survive_being_recorded() -> None:
    err = legato.GrantViolation("web.get", "domain", "http://evil.com/", "allowed hosts: 'x'")
    back = decode_error(encode_error(err))
    assert type(back) is legato.GrantViolation and str(back) == str(err)
    assert (back.tool, back.constraint, back.value) == ("web.get", "domain", "http://evil.com/")


# -- in a workflow ----------------------------------------------------------------------


@legato.workflow(name="agents.grants.refused")
async def refused(url: str) -> str:
    return await web_get.with_grant(Grant(domain="*.example.com"))(url)


async def test_a_violation_in_a_workflow_fails_it_with_the_same_error(
        db: str, server: Server) -> None:
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.GrantViolation, match="domain does not allow"):
            await rt.run(refused, server.url("/x"), id="g1")
        info = await rt.get("g1")
    assert info.status == "failed" and info.steps == ()
    assert server.hits == []


async def test_a_url_in_the_tools_own_defaults_is_checked_too() -> None:
    @legato.tool("api.call", registry=ToolRegistry())
    async def api_call(path: str, base_url: str = "https://api.openai.com/v1") -> str:
        return base_url + path

    bound = api_call.with_grant(Grant(domain="*.example.com"))
    with pytest.raises(legato.GrantViolation, match=r"'https://api.openai.com/v1'"):
        await bound("/chat")
    assert await bound("/chat", base_url="https://llm.example.com") == (
        "https://llm.example.com/chat")
