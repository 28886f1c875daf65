"""ScriptedModel: a real HTTP server on 127.0.0.1, driven with httpx and the stdlib."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from legato.agents.testing import ScriptedModel, main


def chat(client: httpx.Client, model: str = "m", content: str = "hi", **extra: object):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/chat/completions", json=body)


def test_replies_per_model_and_unknown_models_are_404():
    with ScriptedModel({"fast": "Paris", "slow": "Paris, France"}) as server, \
            httpx.Client(base_url=server.base_url) as http:
        answer = chat(http, "fast").json()
        assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Paris"}
        assert answer["choices"][0]["finish_reason"] == "stop"
        assert answer["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        missing = chat(http, "gpt-9")
        assert missing.status_code == 404
        assert "gpt-9" in missing.json()["error"]["message"]
        models = http.get("/models").json()
        assert [m["id"] for m in models["data"]] == ["fast", "slow"]
        assert server.count == 3


def test_reply_function_sees_the_request_and_default_is_echo():
    seen = []

    def reply(body: dict) -> str:
        seen.append(body)
        return body["messages"][-1]["content"].upper()

    with ScriptedModel(reply) as scripted, ScriptedModel() as echo:
        with httpx.Client(base_url=scripted.base_url) as http:
            assert chat(http, content="hey", seed=3).json()["choices"][0]["message"]["content"] \
                == "HEY"
        assert seen[0]["seed"] == 3
        with httpx.Client(base_url=echo.base_url) as http:
            assert chat(http, content="hey").json()["choices"][0]["message"]["content"] \
                == "echo: hey"


def test_max_tokens_cuts_the_reply_by_words():
    with ScriptedModel({"m": "one two three four"}) as server, \
            httpx.Client(base_url=server.base_url) as http:
        choice = chat(http, max_tokens=2).json()["choices"][0]
    assert choice["message"]["content"] == "one two"
    assert choice["finish_reason"] == "length"


def test_stream_is_server_sent_events_ending_in_done():
    with ScriptedModel({"m": "a b c"}) as server, \
            httpx.Client(base_url=server.base_url) as http:
        response = chat(http, stream=True)
    assert response.headers["content-type"] == "text/event-stream"
    events = [line[len("data: "):] for line in response.text.splitlines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "a b c"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_faults_queue_up_with_retry_after_and_filters():
    with ScriptedModel({"a": "A", "b": "B"}) as server, \
            httpx.Client(base_url=server.base_url) as http:
        server.fail(429, retry_after=2)
        server.fail(503, times=2, model="b")
        limited = chat(http, "a")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        assert chat(http, "a").status_code == 200  # the 503s are for "b" only
        assert [chat(http, "b").status_code for _ in range(3)] == [503, 503, 200]
        assert "error" in limited.json()
        assert server.count == 5


def test_bad_chat_requests_are_400():
    with ScriptedModel() as server, httpx.Client(base_url=server.base_url) as http:
        response = http.post("/chat/completions", json={"model": "m"})
        assert response.status_code == 400
        assert "messages" in response.json()["error"]["message"]
        assert http.post("/embeddings", json={}).status_code == 404


def test_pages_by_path_query_or_function():
    pages = {"/search?q=durable execution": "results", "/about": "<h1>about</h1>"}
    with ScriptedModel(pages=pages) as server, ScriptedModel(
        pages=lambda path: path.upper() if path.startswith("/x") else None
    ) as dynamic, httpx.Client() as http:
        found = http.get(f"{server.url}/search", params={"q": "durable execution"})
        assert found.text == "results"
        about = http.get(f"{server.url}/about?ref=1")  # falls back to the bare path
        assert about.text == "<h1>about</h1>"
        assert about.headers["content-type"].startswith("text/html")
        assert http.get(f"{server.url}/nothing").status_code == 404
        assert http.get(f"{dynamic.url}/x/y").text == "/X/Y"
        assert http.get(f"{dynamic.url}/z").status_code == 404


def test_api_key_guards_the_api_but_not_pages():
    with ScriptedModel(api_key="k-123", pages={"/p": "public"}) as server, \
            httpx.Client(base_url=server.base_url) as http:
        refused = chat(http)
        assert refused.status_code == 401 and "k-123" not in refused.text
        assert chat(http, headers=None).status_code == 401
        ok = http.post("/chat/completions", headers={"Authorization": "Bearer k-123"},
                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert ok.status_code == 200
        assert http.get(f"{server.url}/p").text == "public"
        assert server.requests[2].headers["authorization"] == "Bearer k-123"


def test_hold_keeps_a_request_in_flight_until_released():
    with ScriptedModel() as server:
        server.hold("slow")
        statuses: list[int] = []

        def call() -> None:
            with httpx.Client(base_url=server.base_url) as http:
                statuses.append(chat(http, "slow").status_code)

        caller = threading.Thread(target=call)
        caller.start()
        server.wait_for(1)
        assert server.requests[0].model == "slow"
        assert statuses == []  # arrived, not answered
        server.release()
        caller.join(5)
        assert statuses == [200]
        with httpx.Client(base_url=server.base_url) as http:  # the hold was used up
            assert chat(http, "slow").status_code == 200


def test_close_wakes_held_and_delayed_requests():
    server = ScriptedModel(delays={"slow": 60}).start()
    server.hold("held")
    done: list[str] = []

    def call(model: str) -> None:
        # closed mid-request: fine here
        with httpx.Client(base_url=server.base_url) as http, contextlib.suppress(httpx.HTTPError):
            chat(http, model)
        done.append(model)

    threads = [threading.Thread(target=call, args=(m,)) for m in ("slow", "held")]
    for t in threads:
        t.start()
    server.wait_for(2)
    started = time.monotonic()
    server.close()
    for t in threads:
        t.join(5)
    assert sorted(done) == ["held", "slow"]
    assert time.monotonic() - started < 5


async def test_delays_and_async_waiting():
    async with ScriptedModel(delays={"slow": 0.2}) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            started = time.monotonic()
            body = {"model": "slow", "messages": [{"role": "user", "content": "x"}]}
            await http.post("/chat/completions", json=body)
            assert time.monotonic() - started >= 0.2
        await server.wait_for_async(1)
        with pytest.raises(TimeoutError, match="received 1 requests"):
            await server.wait_for_async(2, timeout=0.05)


def test_standalone_prints_its_base_url_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato.agents.testing", "--port", "0", "--model", "fast=Paris",
         "--page", "/search?q=x=found"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with httpx.Client(base_url=base_url) as http:
            assert chat(http, "fast").json()["choices"][0]["message"]["content"] == "Paris"
            assert http.get(base_url.removesuffix("/v1") + "/search?q=x").text == "found"
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


def test_standalone_rejects_malformed_options():
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        main(["--model", "no-equals-sign"])
