"""``legato schedules``: the list (table and JSON), pause, resume, delete, exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

import legato
from legato.cli import app
from schedule_workflows import MINUTE, T0, gate, tick


def cli(*args: str, store: str) -> Result:
    return CliRunner(env={"LEGATO_STORE": store}).invoke(app, list(args),
                                                         catch_exceptions=False)


@pytest.fixture
async def store(db: str) -> str:
    async with legato.Runtime(db, clock=legato.VirtualClock(T0), worker=False) as rt:
        await rt.schedule(tick, MINUTE, name="every-minute")
        await rt.schedule(gate, "0 9 * * mon-fri", name="weekdays", timezone="Europe/Riga",
                          overlap="buffer_one", catch_up="all")
    return db


def test_schedules_lists_each_with_its_next_tick(store):
    done = cli("schedules", store=store)
    assert done.exit_code == 0, done.output
    header, *rows = done.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "WORKFLOW", "CRON", "TZ"]
    assert rows[0].split()[:2] == ["every-minute", "sched_tick"]
    assert "2027-01-15 08:01:00" in rows[0] and rows[0].endswith("active")
    assert rows[1].split()[:2] == ["weekdays", "sched_gate"]
    assert "Europe/Riga" in rows[1] and "2027-01-18 07:00:00" in rows[1]  # Monday 09:00 EET


def test_schedules_json_has_a_stable_shape(store):
    done = cli("schedules", "--json", store=store)
    assert done.exit_code == 0, done.output
    first, second = json.loads(done.stdout)
    assert set(first) == {"name", "workflow", "cron", "timezone", "overlap", "catch_up",
                          "paused", "next_tick", "last_tick", "last_run", "buffered", "args",
                          "kwargs"}
    assert (first["name"], first["next_tick"], first["last_run"]) == (
        "every-minute", "2027-01-15T08:01:00+00:00", None)
    assert (second["overlap"], second["catch_up"], second["paused"]) == (
        "buffer_one", "all", False)


def test_pause_resume_and_delete(store):
    paused = cli("schedules", "pause", "weekdays", store=store)
    assert (paused.exit_code, paused.stdout) == (0, "schedule weekdays paused\n")
    rows = json.loads(cli("schedules", "--json", store=store).stdout)
    assert [r["paused"] for r in rows] == [False, True]
    assert cli("schedules", "resume", "weekdays", store=store).exit_code == 0
    rows = json.loads(cli("schedules", "--json", store=store).stdout)
    assert [r["paused"] for r in rows] == [False, False]
    deleted = cli("schedules", "delete", "every-minute", store=store)
    assert (deleted.exit_code, deleted.stdout) == (0, "schedule every-minute deleted\n")
    assert [r["name"] for r in json.loads(cli("schedules", "--json", store=store).stdout)] == [
        "weekdays"]


def test_an_unknown_schedule_exits_1_and_a_missing_name_2(store):
    for verb in ("pause", "resume", "delete"):
        done = CliRunner(env={"LEGATO_STORE": store}).invoke(app, ["schedules", verb, "nope"])
        assert done.exit_code == 1
        assert "no schedule named 'nope'" in done.output
    assert CliRunner(env={"LEGATO_STORE": store}).invoke(
        app, ["schedules", "pause"]).exit_code == 2
