"""The ``legato`` commands against real stores holding a workflow in every status.

Most run in-process with Click's CliRunner; one runs ``python -m legato`` for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import legato
from inspection_workflows import populate
from legato.cli import app
from legato.cli._tail import Follower

TESTS = Path(__file__).parent


@pytest.fixture
async def store(db: str) -> str:
    await populate(db)
    return db


def cli(*args: str, store: str | None = None) -> Result:
    env = {"LEGATO_STORE": store} if store is not None else {}
    return CliRunner(env=env).invoke(app, list(args), catch_exceptions=False)


def test_list_shows_a_row_per_workflow_with_the_dead_letter_detail(store):
    done = cli("list", store=store)
    assert done.exit_code == 0, done.output
    rows = {line.split()[0]: line.split()[2] for line in done.stdout.splitlines()[1:]}
    assert rows == {"gone-1": "cancelled", "later-1": "pending", "wait-1": "waiting",
                    "bad-1": "failed", "ok-1/2": "succeeded", "ok-1": "succeeded"}
    bad = next(line for line in done.stdout.splitlines() if line.startswith("bad-1"))
    assert "CardDeclined: card declined for 900 (step 4 charge)" in bad


def test_list_json_has_a_stable_shape_and_filters(store):
    done = cli("list", "--json", "--status", "failed", "--store", store)
    assert done.exit_code == 0
    (row,) = json.loads(done.stdout)
    assert set(row) == {"id", "name", "status", "created_at", "updated_at", "finished_at",
                        "duration", "queue", "priority", "run_id", "parent_id", "error",
                        "failed_step"}
    assert (row["id"], row["status"], row["failed_step"]) == ("bad-1", "failed", "4")
    assert row["error"] == "CardDeclined: card declined for 900"
    ids = lambda *a: [r["id"] for r in json.loads(cli("list", "--json", *a, store=store).stdout)]  # noqa: E731
    assert ids("--queue", "emails") == ["later-1"]
    assert ids("--parent", "ok-1") == ["ok-1/2"]
    assert ids("--name", "shop.checkout", "--oldest") == ["ok-1", "later-1"]
    assert ids("--limit", "2", "--offset", "1") == ["later-1", "wait-1"]
    assert ids("--since", "1h") == ids()
    assert ids("--until", "1h") == []


def test_show_prints_the_summary_the_timeline_tree_and_the_traceback(store):
    done = cli("show", "bad-1", store=store)
    assert done.exit_code == 1  # a failed workflow: scripts can tell
    out = done.stdout
    assert out.splitlines()[0].split() == ["shop.doomed", "bad-1", "failed"]
    assert "args     ('mug',)" in out
    lines = out.splitlines()
    tree = lines[lines.index(next(x for x in lines if x.startswith("timeline"))):]
    assert any(x.startswith("├── 1  ✓ step flaky") and "3 attempts" in x for x in tree)
    assert any(x.startswith("│   ├── 1.1  ✗ attempt flaky") and "gateway down (1)" in x
               for x in tree)
    branch = tree.index(next(x for x in tree if x.startswith("├── 2  branch")))
    assert tree[branch + 1].startswith("│   └── 2.1  ✓ step price")
    assert any(x.startswith("└── 4  ✗ step charge") for x in tree)
    assert "error: CardDeclined: card declined for 900 (at step 4 charge)" in out
    assert 'raise CardDeclined(f"card declined for {cents}")' in out  # the failing line


def test_show_json_has_the_timeline_and_the_traceback(store):
    done = cli("show", "ok-1", "--json", store=store)
    assert done.exit_code == 0
    info = json.loads(done.stdout)
    assert info["status"] == "succeeded" and info["children"] == ["ok-1/2"]
    assert info["args"] == [{"sku": "tea", "qty": 2}] and info["kwargs"] == {"note": "gift"}
    assert info["output"] == {"cents": 300, "packed": "2xtea", "note": "gift"}
    assert [(s["position"], s["kind"], s["name"]) for s in info["steps"]] == [
        ("1", "step", "price"), ("2", "child", "shop.pack"), ("3", "event", "progress")]
    assert set(info["steps"][0]) == {"position", "kind", "name", "ok", "started_at",
                                     "finished_at", "duration", "attempts", "summary"}
    failed = json.loads(cli("show", "bad-1", "--json", store=store).stdout)
    assert "in charge" in failed["traceback"] and failed["failed_step"] == "4"


def test_show_of_an_unknown_id_or_a_missing_store_exits_1(store, tmp_path):
    done = cli("show", "nobody", store=store)
    assert done.exit_code == 1 and "no workflow with id 'nobody'" in done.stderr
    missing = cli("list", "--store", str(tmp_path / "absent.db"))
    assert missing.exit_code == 1 and "no legato store at" in missing.stderr
    assert not (tmp_path / "absent.db").exists()


def test_usage_errors_exit_2(store):
    assert cli("list", "--status", "sleepy", store=store).exit_code == 2
    assert cli("list", "--since", "yesterday-ish", store=store).exit_code == 2
    assert cli("signal", "wait-1", "approve", "{not json", store=store).exit_code == 2
    assert cli("list", "--store", "mysql://db/x").exit_code == 2


def test_events_shows_the_published_values(store):
    assert json.loads(cli("events", "ok-1", "--json", store=store).stdout) == {
        "progress": {"packed": "2xtea"}}
    table = cli("events", "ok-1", store=store).stdout.splitlines()
    assert table[0].split() == ["KEY", "VALUE"]
    assert table[1].split(maxsplit=1) == ["progress", "{'packed': '2xtea'}"]


async def test_signal_cancel_and_resume_change_the_workflows(store):
    sent = await _cli_in_thread("signal", "wait-1", "approve", '{"by": "ana"}', store=store)
    assert sent.exit_code == 0 and "signal 'approve' sent to wait-1" in sent.stdout
    async with legato.Runtime(store) as rt:  # a worker takes the signalled workflow
        assert await rt.handle("wait-1").result(timeout=10) == {"by": "ana"}
    assert (await _cli_in_thread("signal", "wait-1", "approve", store=store)).exit_code == 1
    cancelled = await _cli_in_thread("cancel", "later-1", store=store)
    assert cancelled.exit_code == 0 and "(now cancelled)" in cancelled.stdout
    resumed = await _cli_in_thread("resume", "later-1", store=store)
    assert resumed.exit_code == 0
    async with legato.Runtime(store, worker=False) as rt:
        assert await rt.handle("later-1").status() == "pending"
    done = await _cli_in_thread("resume", "ok-1", store=store)
    assert done.exit_code == 0 and "has succeeded already" in done.stdout
    assert (await _cli_in_thread("resume", "missing-1", store=store)).exit_code == 1


def test_tail_prints_each_workflow_once_and_stops_when_idle(store):
    done = cli("tail", "--since", "1h", "--count", "6", store=store)
    assert done.exit_code == 0
    seen = [line.split()[1:4] for line in done.stdout.splitlines()]
    assert ["ok-1", "shop.checkout", "succeeded"] in seen
    assert sorted(s[0] for s in seen) == ["bad-1", "gone-1", "later-1", "ok-1", "ok-1/2",
                                          "wait-1"]
    idle = cli("tail", "--since", "1h", "--name", "shop.doomed", "--until-idle", store=store)
    assert [line.split()[1:4] for line in idle.stdout.splitlines()] == [
        ["bad-1", "shop.doomed", "failed"]]
    counted = cli("tail", "--since", "1h", "--count", "2", "--json", store=store)
    rows = [json.loads(line) for line in counted.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["ok-1", "ok-1/2"]


async def test_tail_reports_a_status_change_once(store):
    follower = Follower(since=0.0)
    async with legato.Runtime(store) as rt:
        first, idle = await follower.poll(rt)
        assert {i.id for i in first} == {"ok-1", "ok-1/2", "bad-1", "wait-1", "later-1",
                                         "gone-1"} and not idle
        assert await follower.poll(rt) == ([], False)
        await rt.signal("wait-1", "approve", True)
        await rt.handle("wait-1").result(timeout=10)
        changed, _ = await follower.poll(rt)
    assert [(i.id, i.status) for i in changed] == [("wait-1", "succeeded")]
    # the window starts at the oldest unfinished one
    assert follower.since == pytest.approx(await _created("later-1", store), abs=1e-5)


async def _created(workflow_id: str, store: str) -> float:
    async with legato.Runtime(store, worker=False) as rt:
        return (await rt.get(workflow_id)).created_at.timestamp()


def test_version_and_help():
    assert cli("version").stdout.startswith(f"legato {legato.__version__} ")
    assert json.loads(cli("version", "--json").stdout)["legato"] == legato.__version__
    listing = cli("--help").stdout
    for command in ("list", "show", "signal", "cancel", "resume", "events", "tail", "worker",
                    "version"):
        assert f"  {command} " in listing


def test_python_dash_m_legato_runs_the_commands(store):
    done = subprocess.run(
        [sys.executable, "-m", "legato", "show", "bad-1", "--json"], capture_output=True,
        text=True, timeout=60, env={**os.environ, "LEGATO_STORE": store})
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["error"] == "CardDeclined: card declined for 900"


def test_import_legato_does_not_import_click_or_rich():
    code = "import sys, legato; print('click' in sys.modules, 'rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["False", "False"]


async def _cli_in_thread(*args: str, store: str) -> Result:
    # the commands run their own event loop: not inside this test's
    import asyncio

    return await asyncio.to_thread(cli, *args, store=store)
