"""``python -m legato worker``: a real worker process, started, used and stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import crash_workflows
import legato
from crash_workflows import ran
from polling import eventually

TESTS = Path(__file__).parent  # on the worker processes' PYTHONPATH

def worker_process(store: str, *args: str, env: dict[str, str] | None = None,
                   ) -> subprocess.Popen[str]:
    """``python -m legato worker crash_workflows --store STORE ...`` with tests/ importable."""
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "crash_workflows", "--store", store, *args],
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(TESTS)})


async def test_worker_serves_then_drains_on_sigterm_and_another_resumes(sqlite_db, log):
    url = f"sqlite:///{sqlite_db}"  # sqlite_db is absolute: sqlite:////tmp/...
    # 3 bodies of "evolving", then steps 1-3 of ten_steps; step 4 hangs until SIGTERM
    proc = worker_process(url, "--concurrency", "4", env={"LEGATO_TEST_HANG_AFTER": "6"})
    try:
        async with legato.Runtime(sqlite_db, worker=False) as client:
            assert await client.run(crash_workflows.evolving) == ["first", "second", "third"]
            await client.start(crash_workflows.ten_steps, id="in-flight")
            await eventually(lambda: ran(log)["step-4"] == 1, timeout=15)
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""
            drained_in = time.monotonic() - signalled
            assert await client.handle("in-flight").status() == "running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    async with legato.Runtime(sqlite_db) as rt:  # lease released: taken at once, not after 1.5 s
        began = time.monotonic()
        result = await rt.handle("in-flight").result(timeout=10)
        resumed_in = time.monotonic() - began
    assert result == [i * i for i in range(1, 11)]
    counts = ran(log)
    assert [counts[f"step-{i}"] for i in range(1, 11)] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1]
    assert drained_in < 3
    assert resumed_in < 1.0


def test_a_module_that_does_not_import_is_a_clear_error(db):
    done = run_cli("worker", "no_such_workflows", "--store", db)
    assert done.returncode == 2
    assert "can't import workflow module 'no_such_workflows'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_store_url_is_a_clear_error():
    done = run_cli("worker", "crash_workflows", "--store", "mysql://db/x")
    assert done.returncode == 2
    assert "unknown store scheme 'mysql'" in done.stderr


def test_an_unreachable_postgres_is_a_clear_error():
    done = run_cli("worker", "crash_workflows", "--store", "postgresql://u@127.0.0.1:1/x")
    assert done.returncode == 1
    assert "could not reach PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_is_explained():
    done = run_cli("worker", "--help")
    assert done.returncode == 0
    assert "--store URL" in done.stdout and "--concurrency N" in done.stdout
