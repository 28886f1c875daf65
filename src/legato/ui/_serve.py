"""Serving the dashboard with uvicorn on a socket bound before it starts."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Callable

import uvicorn

import legato

from ._app import create_app
from ._settings import Settings

__all__ = ["LOOPBACK_HOSTS", "dashboard_url", "is_loopback", "serve"]

#: The ``Host`` headers a dashboard bound to a loopback address accepts.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
    (True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_url(host: str, port: int, token: str | None = None) -> str:
    """The URL to open: ``http://127.0.0.1:8765/`` (ending ``?token=...`` when there is one)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8765,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard until SIGINT or SIGTERM.

    ``ready(url)`` is called once the socket listens and the store is open,
    so a client can connect at once (``port=0`` picks a free port, and the
    URL names it).

    Raises:
        LegatoError: the store can't be opened (e.g. StoreError: unreachable).
        OSError: the address can't be listened on.

    >>> serve(Settings("legato.db"), port=0, ready=print)  # doctest: +SKIP
    http://127.0.0.1:41237/
    """
    if is_loopback(host) and not settings.allowed_hosts:
        settings = dataclasses.replace(settings, allowed_hosts=LOOPBACK_HOSTS)
    sock = socket.create_server((host.strip("[]"), port))
    url = dashboard_url(host, sock.getsockname()[1], settings.token)

    async def main() -> None:
        # the store opens first: a store that doesn't answer is an error, not a page
        async with legato.Runtime(settings.store, worker=False) as rt:
            config = uvicorn.Config(create_app(settings, rt), log_level="warning",
                                    access_log=False)
            if ready is not None:
                ready(url)
            await uvicorn.Server(config).serve(sockets=[sock])

    try:
        asyncio.run(main())
    finally:
        sock.close()
