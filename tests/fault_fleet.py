"""Worker processes (``python -m legato worker fault_workflows``) for the fault suite.

Worker ``n`` also serves the queue ``probe-<n>`` and nothing else serves it:
a :mod:`fault_workflows` ``probe`` started there after a fault can only be
run by that process, which shows its claim loop came back by itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import fault_workflows
import legato
from polling import eventually

TESTS = Path(__file__).parent  # on the worker processes' PYTHONPATH

LEASE = 1.0


class Workers:
    """One worker process per URL in ``urls`` (several may share one), logging to files."""

    def __init__(self, urls: list[str], tmp: Path, concurrency: int,
                 env: dict[str, str] | None = None, first: int = 0,
                 lease: float = LEASE) -> None:
        tmp.mkdir(exist_ok=True)
        self.numbers = range(first, first + len(urls))  # worker n serves queue probe-<n>
        self.logs = [tmp / f"worker-{n}.err" for n in self.numbers]
        self.procs: list[subprocess.Popen[bytes]] = []
        for n, url, err in zip(self.numbers, urls, self.logs, strict=True):
            with err.open("w") as stderr:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "legato", "worker", "fault_workflows",
                     "--store", url, "--lease", str(lease), "--concurrency", str(concurrency),
                     "--queue", f"probe-{n}"],
                    env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
                    stdout=subprocess.DEVNULL, stderr=stderr))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def ready(self) -> None:
        def serving() -> bool:
            for p, log in zip(self.procs, self.logs, strict=True):
                assert p.poll() is None, f"worker exited:\n{log.read_text()}"
            return all("serving" in log.read_text() for log in self.logs)

        await eventually(serving, timeout=20)

    def alive(self) -> list[bool]:
        return [p.poll() is None for p in self.procs]

    def log_text(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text()}" for log in self.logs)

    async def probe(self, client: legato.Runtime, name: str, timeout: float = 20) -> None:
        """Each worker runs a new workflow from its own queue (its claim loop works)."""
        handles = [await client.start(fault_workflows.probe, f"{name}-{n}", id=f"{name}-{n}",
                                      queue=f"probe-{n}") for n in self.numbers]
        pids = await asyncio.gather(*(h.result(timeout=timeout) for h in handles))
        assert pids == self.pids, (pids, self.pids)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
