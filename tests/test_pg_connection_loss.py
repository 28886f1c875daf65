"""The PostgreSQL store when its connections are lost: it takes new ones by itself.

Faults come from our own TCP proxy between the store and the shared server
(see :mod:`tcp_proxy`): a cut resets every open connection, as a restarted
server or a dropped network path would.
"""

from __future__ import annotations

from typing import Any

from legato import StoreError
from legato.store import Store, open_store
from polling import eventually
from tcp_proxy import TcpProxy


async def _reads_again(store: Store, attempts: int = 20) -> None:
    """A read answers within ``attempts`` tries (the first after a cut may still fail)."""
    for _ in range(attempts):
        try:
            await store.next_lease_expiry()
            return
        except StoreError:
            continue
    raise AssertionError(f"the store still fails after {attempts} reads")


def _held_connection_dropped(store: Any) -> bool:
    """Whether asyncpg has noticed the store's idle held connection is gone (white box)."""
    held = store._conns._held
    return held is None or held._con is None


async def test_the_held_connection_lost_is_replaced_not_used_again(pg_url):
    # asyncpg puts a lost connection back in its pool by itself and detaches the store's
    # handle to it; the store used to keep that handle and fail every later call on it
    # ("connection has been released back to the pool"), so its worker never recovered
    with TcpProxy() as proxy:
        store = open_store(proxy.url(pg_url))
        await store.open()
        try:
            await store.next_lease_expiry()  # on the held connection
            assert proxy.cut() > 0
            await eventually(lambda: _held_connection_dropped(store))  # lost while idle
            proxy.restore()
            await _reads_again(store)
            for _ in range(5):  # and goes on answering, not just once
                await store.next_lease_expiry()
        finally:
            await store.close()
