"""Reaching PostgreSQL: the URL, asyncpg's errors as legato's, and news by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from .._errors import LegatoError, StoreError
from ._postgres_schema import DEFAULT_SCHEMA, check_schema_name

__all__ = ["News", "parse_postgres_url", "translated"]

_NEWS_KEPT = 10_000  # unread news beyond this is dropped (the poll finds the work)


def parse_postgres_url(url: str) -> tuple[str, str]:
    """``"postgresql://u@h/db?schema=s&ssl=require"`` → (asyncpg DSN without ``schema``, schema)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{url!r} is not a PostgreSQL URL; it starts with 'postgresql://'")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    schema = check_schema_name(schemas[-1] if schemas else DEFAULT_SCHEMA)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """asyncpg's errors as :class:`StoreError`, most specific first.

    (asyncpg makes tasks of its own; the engine calls the store outside its
    workflows' positions, see ``durable.engine._unrecorded``.)
    """
    try:
        yield
    except LegatoError:
        raise
    except asyncpg.TransactionRollbackError as exc:  # deadlock, serialization failure
        raise StoreError(
            f"PostgreSQL gave up trying to {action} because of a concurrent transaction "
            f"({exc}); the operation can be retried") from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise StoreError(
            f"PostgreSQL has no such database, so legato can't {action} ({exc}); "
            "create it (createdb NAME) or fix the URL") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise StoreError(
            f"PostgreSQL refused the login, so legato can't {action} ({exc}); "
            "check the user and password in the URL") from exc
    except (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError, asyncpg.InterfaceError, OSError,
            TimeoutError) as exc:
        raise StoreError(
            f"lost or could not reach PostgreSQL while trying to {action} ({exc!r}); "
            "check that the server runs and the URL is right") from exc
    except (asyncpg.PostgresError, asyncpg.InternalClientError) as exc:
        # InternalClientError (a protocol or schema-cache fault) is no PostgresError
        raise StoreError(f"PostgreSQL failed to {action}: {exc}") from exc


_CHANNEL_MAX = 63  # bytes: PostgreSQL's identifier limit; pg_notify refuses longer channels


def news_channels(schema: str) -> tuple[str, str]:
    """The store's news channel and its channel for ends, each within 63 bytes.

    Named after the schema (``legato.<schema>``, ``legato.<schema>.ends``)
    where that fits. A longer one is named after a hash of the schema:
    ``pg_notify`` raises on a channel name over 63 bytes, and every write
    that sends news would fail with it.

    >>> news_channels("shop")
    ('legato.shop', 'legato.shop.ends')
    """
    main, ends = f"legato.{schema}", f"legato.{schema}.ends"
    digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
    if len(main.encode()) > _CHANNEL_MAX:
        main = f"legato.{digest}"
    if len(ends.encode()) > _CHANNEL_MAX:
        ends = f"legato.{digest}.ends"
    return main, ends


class News:
    """A connection that LISTENs on the store's channel and keeps what it hears.

    News of ends (finishes, events: see ``PostgresStore.follow_ends``) comes
    on a channel of its own, listened to only while :meth:`follow_ends` asks.
    """

    def __init__(self, dsn: str, channel: str, ends: str, settings: dict[str, str]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._ends = ends
        self._settings = settings
        self._conn: Any = None
        self._following = False  # whether ends news is wanted (kept across reconnects)
        self._heard: list[tuple[str, str]] = []
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()  # one connect, LISTEN or UNLISTEN at a time

    async def listen(self) -> None:
        """Connect and LISTEN (raises asyncpg's errors: call it inside :func:`translated`)."""
        conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        await conn.add_listener(self._channel, self._hear)
        if self._following:
            await conn.add_listener(self._ends, self._hear)
        self._conn = conn

    async def follow_ends(self, on: bool) -> None:
        """LISTEN on the ends channel (``on``) or stop; once this returns, it is in effect."""
        async with self._lock:
            if on == self._following:
                return
            self._following = on
            if self._conn is None or self._conn.is_closed():
                return  # the next connect listens as asked
            with translated("listen for news of ends"):
                if on:
                    await self._conn.add_listener(self._ends, self._hear)
                else:
                    await self._conn.remove_listener(self._ends, self._hear)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None

    def _hear(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        kind, _, workflow_id = payload.partition(" ")
        if len(self._heard) < _NEWS_KEPT:
            self._heard.append((kind, workflow_id))
        self._arrived.set()

    async def wait(self, timeout: float) -> list[tuple[str, str]]:
        """What was heard since the last call, waiting up to ``timeout`` s for something."""
        if self._conn is None or self._conn.is_closed():
            try:
                async with self._lock:
                    with translated("listen for news"):
                        await self.listen()
            except StoreError:
                await asyncio.sleep(timeout)
                return []
        if not self._heard:
            # Not asyncio.wait_for: on 3.11 it can swallow a cancel that arrives as
            # its timeout fires, and the relay then never stops (Runtime exit hung).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
        heard, self._heard = self._heard, []
        self._arrived.clear()
        return heard
