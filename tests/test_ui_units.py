"""The dashboard's pieces without a server: the Gantt rows, progress, filters, values,
the metrics format, and the ``legato ui`` command's checks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

pytest.importorskip("starlette", reason="the dashboard needs the ui extra (make test installs it)")

import legato
from legato.cli import app
from legato.ui import Settings, is_loopback, read_progress
from legato.ui._listing import BadFilter, ListQuery
from legato.ui._metrics import Tally, exposition
from legato.ui._timeline import chart
from legato.ui._values import show

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(position: str, start: float, end: float, kind: str = "step", name: str = "s",
         ok: bool = True, attempts: int = 1) -> legato.StepInfo:
    return legato.StepInfo(position, kind, name, ok, at(end), started_at=at(start),
                           attempts=attempts, summary="")


def info(*steps: legato.StepInfo, finished: float | None = 10.0,
         status: legato.Status = legato.Status.SUCCEEDED) -> legato.WorkflowInfo:
    return legato.WorkflowInfo(
        id="w", name="w", status=status, created_at=T0, updated_at=at(finished or 0),
        finished_at=None if finished is None else at(finished), error=None, steps=steps)


def test_branches_nest_as_on_the_cli_and_span_their_contents():
    c = chart(info(step("1", 0, 2), step("2.1", 2, 6), step("2.2", 6, 7), step("3.1", 2, 5),
                   step("4", 7, 10, kind="now")), now=at(99))
    rows = [(b.position, b.depth, b.kind, b.tone, round(b.left, 3), round(b.width, 3))
            for b in c.bars]
    assert rows == [
        ("1", 0, "step", "ok", 0.0, 20.0),
        ("2", 0, "branch", "branch", 20.0, 50.0),
        ("2.1", 1, "step", "ok", 20.0, 40.0),
        ("2.2", 1, "step", "ok", 60.0, 10.0),
        ("3", 0, "branch", "branch", 20.0, 30.0),
        ("3.1", 1, "step", "ok", 20.0, 30.0),
        # an instant sits at its commit time, as a sliver, whatever its inferred start
        ("4", 0, "now", "instant", 99.6, 0.4),
    ]
    assert c.span == 10.0
    assert [text for _, text in c.ticks()] == ["0", "2.5 s", "5.0 s", "7.5 s", "10.0 s"]


def test_retries_waits_and_failures_have_their_own_tones():
    c = chart(info(step("1", 0, 4, name="flaky", attempts=2),
                   step("1.1", 0, 1, kind="attempt", ok=False), step("1.2", 1, 3, kind="sleep"),
                   step("2", 4, 5, kind="signal", name="go"), step("3", 5, 6, ok=False)),
              now=at(99))
    assert [(b.position, b.tone, b.attempts) for b in c.bars] == [
        ("1", "ok", 2), ("1.1", "attempt", 1), ("1.2", "wait", 1), ("2", "wait", 1),
        ("3", "failed", 1)]
    wake = legato.StepInfo("1", "sleep", "", True, at(1), started_at=at(0),
                           summary=str(at(60).timestamp()))
    assert chart(info(wake), now=at(99)).bars[0].summary == "until 2025-01-02 03:05:05.000"


def test_an_unfinished_workflow_shows_its_current_wait_up_to_now():
    c = chart(info(step("1", 0, 2), finished=None, status=legato.Status.WAITING), now=at(8))
    last = c.bars[-1]
    assert (last.kind, last.label, last.start, last.duration) == ("open", "waiting…", 2.0, 6.0)
    assert round(last.left + last.width, 6) == 100.0


def test_progress_reads_the_convention_and_nothing_else():
    p = read_progress({"done": 3, "total": 10, "message": "fetching"})
    assert p is not None and (p.percent, p.text) == (30.0, "3/10 fetching")
    assert read_progress({"done": 12, "total": 10}).percent == 100.0  # type: ignore[union-attr]
    assert read_progress(0.25).text == "25%"  # type: ignore[union-attr]
    for other in ({"packed": "2xtea"}, {"done": 1, "total": 0}, {"done": True, "total": 2},
                  "half", 3, None, {"done": float("nan"), "total": 2}):
        assert read_progress(other) is None, other


def test_filters_parse_round_trip_and_say_what_is_wrong():
    q = ListQuery.parse({"status": "failed", "name": " report ", "window": "1h", "page": "2",
                         "since": "2025-01-02T03:04", "queue": ""})
    assert (q.status, q.name, q.queue, q.page) == ("failed", "report", None, 2)
    assert q.since == datetime(2025, 1, 2, 3, 4, tzinfo=UTC)  # no zone: UTC, as shown
    assert ListQuery.parse(dict(_pairs(q.url()))) == q
    args = q.list_args(page_size=50, now=at(3600 * 24))
    assert (args["limit"], args["offset"]) == (51, 100)
    assert args["since"] == at(3600 * 23)  # the later of the window and `since`
    for bad, says in [({"status": "sleepy"}, "unknown status"), ({"window": "1y"}, "window"),
                      ({"page": "-1"}, "negative"), ({"page": "x"}, "whole number"),
                      ({"until": "tuesday"}, "until must be a time")]:
        with pytest.raises(BadFilter, match=says):
            ListQuery.parse(bad)


def _pairs(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(url.lstrip("?"))


def test_values_are_short_until_expanded_and_capped():
    assert not show(500).expandable and not show("Ana").expandable
    nested = show({"a": [1, 2, 3], "b": "x" * 300})
    assert nested.expandable and len(nested.preview) < 200 and "x" * 300 in nested.full
    huge = show("y" * 500, limit=100)
    assert huge.full.endswith("(402 more characters not shown)")
    assert show(object()).full.startswith('"<object object')  # repr where JSON can't


def test_metrics_are_the_prometheus_text_format():
    text = exposition(Tally(by_status=Counter(waiting=2, failed=1),
                            by_name=Counter({('say "hi"\n', "failed"): 1}),
                            pending_by_queue=Counter({"": 3})))
    assert 'legato_workflows{status="running"} 0' in text  # every status, even at 0
    assert 'legato_workflows_by_name{name="say \\"hi\\"\\n",status="failed"} 1' in text
    assert 'legato_queue_depth{queue=""} 3' in text
    assert "legato_workflows_suspended 2" in text
    assert text.endswith("\n")


def test_settings_never_show_the_token():
    assert "hunter2" not in repr(Settings("legato.db", token="hunter2"))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_legato_ui_refuses_a_store_that_does_not_exist(tmp_path):
    done = CliRunner().invoke(app, ["ui", "--store", str(tmp_path / "nope.db")])
    assert done.exit_code == 1 and "no legato store at" in done.output
    helped = CliRunner().invoke(app, ["ui", "--help"])
    assert helped.exit_code == 0 and "--read-only" in helped.output and "--token" in helped.output


def test_a_long_timeline_draws_its_first_rows_and_counts_the_rest():
    steps = [step(str(i), i - 1, i) for i in range(1, 11)]
    c = chart(info(*steps), now=at(99), limit=4)
    assert [b.position for b in c.bars] == ["1", "2", "3", "4"] and c.hidden == 6


def test_legato_ui_says_so_when_the_store_does_not_answer():
    pytest.importorskip("asyncpg")
    done = CliRunner().invoke(app, ["ui", "--port", "0", "--store",
                                    "postgresql://postgres@127.0.0.1:1/nothing"])
    assert done.exit_code == 1, done.output
    assert "could not reach PostgreSQL" in done.output and "http://" not in done.output
