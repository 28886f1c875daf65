"""The dashboard for real: ``python -m legato ui`` in a child process on a free port,
and the browser (Debian's Chromium driven by Playwright) when there is one."""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LEGATO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"


class Dashboard:
    """``legato ui --port 0`` running in a child process; ``url`` ends with ``/``."""

    def __init__(self, store: str, *options: str) -> None:
        """Launch it; :meth:`start` also waits until it serves."""
        env = {k: v for k, v in os.environ.items() if k != "LEGATO_UI_TOKEN"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "legato", "ui", "--store", store, "--port", "0", *options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.url = ""
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        # drained all along: a full pipe would block the server
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    @classmethod
    async def start(cls, store: str, *options: str, timeout: float = 30.0) -> Dashboard:
        """Launch it and wait (at most ``timeout`` s) for the line naming its URL.

        The socket is listening before that line is printed: no retry needed.
        """
        self = cls(store, *options)
        try:
            line = await asyncio.to_thread(self._lines.get, timeout=timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"legato ui printed nothing in {timeout} s") from None
        if line is None or " on http://" not in line:
            raise AssertionError(f"legato ui did not start:\n{self.stop()}")
        self.url = line.rsplit(" on ", 1)[1].strip().split("?", 1)[0]
        return self

    def stop(self) -> str:
        """Stop it (SIGTERM, as Ctrl-C would) and return everything it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        return "".join(self.output)


def need_browser() -> str:
    """The Chromium to drive; skips (fails in CI) when there is none."""
    pytest.importorskip("playwright", reason="Playwright is not installed: make test installs "
                                             "the dev extra")
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = (f"no Chromium at {CHROMIUM}: `make browser` installs Debian's (apt-get, as root), "
              "or set LEGATO_CHROMIUM to one")
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser tests must not skip")
    pytest.skip(reason)
