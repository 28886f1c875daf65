"""An autouse fixture for test folders that want it (``from hygiene import hygiene``):
each test ends with no warning about a coroutine never awaited, an exception
never retrieved, or a task destroyed while pending."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def hygiene(recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    gc.collect()
    messages = [str(w.message) for w in recwarn]
    messages += [r.getMessage() for r in caplog.get_records("call") + caplog.records]
    bad = [m for m in messages if "never awaited" in m or "never retrieved" in m or "pending" in m]
    assert not bad, bad
