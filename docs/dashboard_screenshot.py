"""Make docs/dashboard.png: the demo's workflow on the dashboard, in headless Chromium.

Run ``make demo`` first (it writes ``legato.db``), then ``make screenshot``
(or ``python docs/dashboard_screenshot.py [STORE] [OUT.png]``). Needs the
``ui`` extra, Playwright and a Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("LEGATO_CHROMIUM", "/usr/bin/chromium")
WORKFLOW = "trip-ana-lisbon"


def main(store: str = "legato.db", out: str = "docs/dashboard.png") -> None:
    """Serve ``store`` with ``legato ui`` and screenshot the demo workflow's page to ``out``."""
    server = subprocess.Popen(
        [sys.executable, "-m", "legato", "ui", "--store", store, "--port", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "legato ui: serving ... on http://127.0.0.1:PORT/"
        if "http://" not in line:
            raise SystemExit(f"legato ui did not start: {line!r}")
        asyncio.run(_shoot(line.rsplit(" ", 1)[-1].strip(), out))
        print(f"wrote {Path(out).resolve()}")
    finally:
        server.terminate()
        server.wait()


async def _shoot(url: str, out: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page(viewport={"width": 1280, "height": 900},
                                      device_scale_factor=1)
        await page.goto(f"{url}workflows/{WORKFLOW}")
        await page.wait_for_selector("#gantt .bar")
        await page.screenshot(path=out, full_page=True)
        await browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
