"""Worker processes (``python -m legato worker fleet_workflows``) on one store, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fleet_workflows
from polling import eventually

TESTS = Path(__file__).parent  # on the worker processes' PYTHONPATH

LEASE = 1.0


class Fleet:
    """Worker processes serving ``fleet_workflows``; each logs to its own file."""

    def __init__(self, url: str, tmp: Path, count: int, concurrency: int,
                 step_seconds: float = fleet_workflows.STEP_SECONDS,
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        tmp.mkdir(exist_ok=True)
        self.logs = [tmp / f"worker-{n}.err" for n in range(count)]
        self.procs = []
        for err in self.logs:
            with err.open("w") as stderr:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "legato", "worker", "fleet_workflows",
                     "--store", url, "--lease", str(LEASE), "--concurrency", str(concurrency),
                     *args],
                    env={**os.environ, "PYTHONPATH": str(TESTS),
                         "LEGATO_TEST_STEP_SECONDS": str(step_seconds), **(env or {})},
                    stdout=subprocess.DEVNULL, stderr=stderr))

    async def ready(self) -> None:
        def serving() -> bool:
            return all("serving" in p.read_text() for p in self.logs)

        await eventually(serving, timeout=20)

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.procs if p.pid == pid)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


