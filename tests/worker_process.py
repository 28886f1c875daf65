"""A real worker process for crash tests, read line by line and killed with SIGKILL."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).parent


class Child:
    """A real worker process running ``script`` (``tests/crash_child.py``); killed with SIGKILL."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 script: Path = TESTS / "crash_child.py") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 15.0) -> str:
        """The next line the process prints (steps print their name when they run)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"worker printed nothing for {timeout} s") from None
        if line is None:
            raise AssertionError("worker exited; it printed:\n" + "\n".join(self.seen))
        self.seen.append(line)
        return line

    def wait_for(self, line: str, timeout: float = 15.0) -> None:
        """Block until the process prints ``line``."""
        deadline = time.monotonic() + timeout
        while self.next_line(max(0.01, deadline - time.monotonic())) != line:
            pass

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
