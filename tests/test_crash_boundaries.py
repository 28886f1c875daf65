"""Crash at every commit point: the result never changes and no committed step runs again.

``boundary_child.py`` runs a workflow that uses steps, a gather, a race, a
signal wait, a child workflow, a durable sleep and a saga, and kills itself
with SIGKILL the moment its Nth write is durable. This process then
recovers the workflow and checks: the same result as an uncrashed run, no
step whose outcome was committed before the crash ran again, nothing ended
in ``NonDeterminismError``. Steps sleep a seeded random moment, so
concurrent branches finish in another order in each run and each recovery.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import boundary_workflows
import legato
from pg_schema import fresh_pg_schema

CHILD = Path(__file__).parent / "boundary_child.py"


def run_child(url: str, crash_at: int, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), url, str(crash_at)], capture_output=True, text=True,
        env={**_env(), "LEGATO_TEST_LOG": str(log)}, timeout=60, check=False)


def _env() -> dict[str, str]:
    return dict(os.environ)


@contextlib.asynccontextmanager
async def fresh_store(kind: str, tmp_path: Path, n: int) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / f"crash-{n}.db")
    else:
        async with fresh_pg_schema() as url:
            yield url


async def committed_steps(url: str) -> set[str]:
    """The names of the steps whose outcome is in the store (all workflows)."""
    async with legato.Runtime(url, worker=False) as client:
        names: set[str] = set()
        for info in await client.list():
            runs = [None] if info.previous_run_id is None else [None, info.previous_run_id]
            for run_id in runs:  # the run it continued from too
                names |= {r.name for r in await client.history(info.id, run_id)
                          if r.kind == "step"}
        return names


async def recover(url: str) -> tuple[Any, list[legato.WorkflowInfo]]:
    async with legato.Runtime(url) as rt:
        with contextlib.suppress(legato.LegatoError):  # finished already
            await rt.signal("trip", "go", "yes")  # in case the crash came before the first
        result = await rt.handle("trip").result(timeout=30)
        return result, await rt.list()


# A child process per commit point (more than 20): about 30 s on an idle machine,
# twice that with both cores busy, so past the suite's 60 s default
@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_crash_at_any_commit_point_changes_neither_result_nor_effects(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with fresh_store(kind, tmp_path, 0) as url:
        clean = run_child(url, 0, tmp_path / "log-0")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    lines = dict(line.split(" ", 1) for line in clean.stdout.splitlines())
    expected, commits = lines["result"], int(lines["commits"])
    assert commits > 20  # every kind of write is in there
    for n in range(1, commits + 1):
        log = tmp_path / f"log-{n}"
        log.touch()
        monkeypatch.setenv("LEGATO_TEST_LOG", str(log))
        random.seed(n)  # another completion order for the recovery
        async with fresh_store(kind, tmp_path, n) as url:
            crashed = run_child(url, n, log)
            assert crashed.returncode == -9, f"commit {n}: {crashed.stdout}{crashed.stderr}"
            before, ran_before = await committed_steps(url), Counter(log.read_text().split())
            result, infos = await recover(url)
        ran_after = Counter(log.read_text().split()) - ran_before
        where = f"crashed at commit {n} of {commits}"
        assert str(result) == expected, where
        assert all(i.status == "succeeded" for i in infos), (where, infos)
        assert not {name for name in before if ran_after[name]}, where  # committed: not again
        assert set(ran_before + ran_after) >= set(boundary_workflows.STEPS), where
