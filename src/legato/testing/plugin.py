"""pytest fixtures for testing workflows: a fresh store, a started Runtime in virtual time.

Registered through the ``pytest11`` entry point: with legato installed, a test
asks for them by name, no import or ``conftest.py`` needed.

Example::

    async def test_onboarding(legato_runtime):
        handle = await legato_runtime.start(onboard, "ana")
        assert await handle.result() == "welcome ana"   # a 7-day sleep inside takes no time

Fixtures:
    legato_store_url: a fresh store URL per test, a SQLite file in ``tmp_path``.
        With ``--legato-postgres URL`` (or ``$LEGATO_TEST_POSTGRES``) tests that
        use it run twice, on SQLite and on a fresh schema of that PostgreSQL
        database, dropped after the test.
    legato_runtime: a started :class:`legato.Runtime` (with a worker) on
        ``legato_store_url`` with a :class:`legato.VirtualClock`; closed after
        the test. Needs pytest-asyncio (``async def`` fixtures).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import legato

__all__ = ["legato_runtime", "legato_store_url"]

_ENV = "LEGATO_TEST_POSTGRES"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--legato-postgres URL``: also run store-using tests on this PostgreSQL database."""
    parser.getgroup("legato").addoption(
        "--legato-postgres", metavar="URL", default=None,
        help=f"also run tests using legato_store_url on PostgreSQL (or set ${_ENV})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``legato_store_url`` over SQLite and, when configured, PostgreSQL."""
    if "legato_store_url" not in metafunc.fixturenames:
        return
    kinds = ["sqlite", "postgres"] if _postgres_url(metafunc.config) else ["sqlite"]
    metafunc.parametrize("legato_store_url", kinds, indirect=True)


@pytest.fixture
def legato_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL for one test (SQLite in ``tmp_path``, or a PostgreSQL schema).

    >>> def test_url(legato_store_url):
    ...     assert legato_store_url.startswith(("sqlite:///", "postgresql://"))
    """
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
        return
    base = _postgres_url(request.config)
    assert base is not None
    schema = f"legato_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        _in_thread(_drop_schema(base, schema))


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def legato_runtime(legato_store_url: str) -> AsyncIterator[legato.Runtime]:
        """A started Runtime with a worker, on a fresh store, in virtual time.

        >>> async def test_sleeps(legato_runtime):
        ...     assert await legato_runtime.run(waits_a_week) == "done"
        """
        async with legato.Runtime(legato_store_url, clock=legato.VirtualClock()) as rt:
            yield rt
else:  # pragma: no cover
    @pytest.fixture
    def legato_runtime() -> None:
        """Needs pytest-asyncio: ``pip install pytest-asyncio``."""
        pytest.fail("the legato_runtime fixture needs pytest-asyncio: pip install pytest-asyncio")


def _postgres_url(config: pytest.Config) -> str | None:
    url: str | None = config.getoption("--legato-postgres") or os.environ.get(_ENV)
    return url or None


async def _drop_schema(base: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _in_thread(coro: Any) -> None:
    # a fixture's teardown may run while a test's event loop is still set
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
