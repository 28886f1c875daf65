"""A TCP proxy between legato and PostgreSQL that a test can cut and stall.

Example::

    with TcpProxy(5432) as proxy:
        url = proxy.url(pg_url)        # the same database and schema, through the proxy
        ...                            # worker processes connect to ``url``
        proxy.cut()                    # every open connection reset; new ones refused
        proxy.restore()                # connections are accepted again
        proxy.stall(3.0)               # no byte moves either way for 3 s; sockets stay open

The faults:

- :meth:`cut` resets every open connection (a TCP RST both to the client and to
  PostgreSQL, as when a network path or a NAT entry dies) and resets each new
  one as soon as it is accepted, until :meth:`restore`. The listening port
  stays the same, so the URL stays valid.
- :meth:`stall` stops forwarding bytes both ways, on open connections and on
  new ones, for ``seconds`` or until :meth:`resume`: nothing is closed, a
  query sent meanwhile waits and then completes (a network partition that
  heals, a frozen load balancer). ``stall(only="replies")`` holds only what
  PostgreSQL sends: a statement sent meanwhile is carried out, its client
  hears of it at :meth:`resume` (a reply lost in a congested path).
- :meth:`stall_replies_after` does that at an exact point: once a client has
  PostgreSQL execute a statement whose SQL contains a given text, the proxy
  holds every reply from then on (the statement's own too) until
  :meth:`resume`. For this it reads the messages clients send (PostgreSQL's
  frontend protocol: ``Parse`` names a statement, ``Bind`` runs it), which
  needs connections without TLS, as the test server's are (``ssl = off``).

Why a thread: the proxy runs its own event loop in a daemon thread, so it
forwards bytes however busy the test's loop is (a ``gather`` of thousands of
``result()`` calls, a synchronous read of a log file). The workers in these
tests are subprocesses and could be served from the test's loop, but then
every millisecond the test spends elsewhere would be latency added to the
workers' queries — a fault the test did not ask for. The control methods are
plain functions, safe to call from any thread; each returns once the proxy has
done what it says (all connections reset, forwarding stopped), so a test can
act right after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<ephemeral port> to ``upstream_host:upstream_port``.

    Counters (read them from the test, for evidence that a fault bit):
    ``accepted`` connections since start, ``resets`` done by :meth:`cut` or
    while cut, ``open_connections`` now.
    """

    def __init__(self, upstream_port: int = 5432, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.accepted = 0
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy",
                                        daemon=True)
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # one per accepted connection
        self._cut = False
        # set: bytes move (to PostgreSQL, to the client)
        self._requests: asyncio.Event | None = None
        self._replies: asyncio.Event | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._trigger: str | None = None  # SQL text that starts a stall of the replies
        self.tripped = threading.Event()  # set when it did

    # -- life ---------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def url(self, url: str) -> str:
        """``url`` (``postgresql://user@host:port/db?...``) with host and port of the proxy."""
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    # -- faults -------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every open connection, and every new one until :meth:`restore`.

        Returns how many open connections were reset.
        """
        return self._call(self._do_cut())

    def restore(self) -> None:
        """End a cut and a stall: connections are accepted and bytes flow again."""
        self._call(self._do_restore())

    def stall(self, seconds: float | None = None, *,
              only: Literal["requests", "replies"] | None = None) -> None:
        """Stop forwarding bytes, for ``seconds`` or (``None``) until :meth:`resume`.

        Both ways, or ``only`` those to PostgreSQL (``"requests"``) or from it
        (``"replies"``).
        """
        self._call(self._do_stall(seconds, only))

    def stall_replies_after(self, sql: str) -> None:
        """Once a statement containing ``sql`` is executed, hold every reply until :meth:`resume`.

        The statement itself is carried out; its client hears of it only at
        :meth:`resume`. :attr:`tripped` is set when the stall begins.
        """
        self.tripped.clear()
        self._trigger = sql

    def resume(self) -> None:
        """Forward bytes again after :meth:`stall`; end a :meth:`stall_replies_after` too."""
        self._call(self._do_resume())

    @property
    def stalled(self) -> bool:
        return any(e is not None and not e.is_set() for e in (self._requests, self._replies))

    # -- in the proxy's thread ------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._requests, self._replies = asyncio.Event(), asyncio.Event()
        self._requests.set()
        self._replies.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _do_cut(self) -> int:
        self._cut = True
        pairs = list(self._pairs)
        for pair in pairs:
            pair.reset()
        self.resets += len(pairs)
        return len(pairs)

    async def _do_restore(self) -> None:
        self._cut = False
        await self._do_resume()

    async def _do_stall(self, seconds: float | None,
                        only: Literal["requests", "replies"] | None) -> None:
        assert self._requests is not None and self._replies is not None
        if only != "replies":
            self._requests.clear()
        if only != "requests":
            self._replies.clear()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        self._stall_timer = None if seconds is None else self._loop.call_later(
            seconds, self._flow)

    async def _do_resume(self) -> None:
        self._trigger = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._flow()

    def _flow(self) -> None:
        assert self._requests is not None and self._replies is not None
        self._requests.set()
        self._replies.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # closing: asyncio's server callback would log a cancelled handler
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._cut:
            self.resets += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        pair = _Pair(writer, up_writer, _Frontend())
        if self._cut:  # cut while we connected upstream
            pair.reset()
            return
        self._pairs.add(pair)
        try:
            assert self._requests is not None and self._replies is not None
            await asyncio.gather(self._pump(reader, up_writer, pair, self._requests, pair.frontend),
                                 self._pump(up_reader, writer, pair, self._replies))
        finally:
            self._pairs.discard(pair)
            pair.close()

    def _inspect(self, executed: list[str]) -> None:
        """Before ``executed`` statements go out: a trigger among them stalls the replies."""
        trigger = self._trigger
        if trigger is not None and any(trigger in sql for sql in executed):
            assert self._replies is not None
            self._replies.clear()  # before the statement leaves: its reply can't slip through
            self._trigger = None
            self.tripped.set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    pair: _Pair, flowing: asyncio.Event, frontend: _Frontend | None = None
                    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await flowing.wait()  # stalled: hold the bytes, keep the sockets
                if frontend is not None:
                    self._inspect(frontend.feed(data))
                if pair.dead:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        pair.close()  # one side ended: end the other (a FIN becomes a close, as asyncpg expects)


class _Pair:
    """The two sockets of one proxied connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter,
                 frontend: _Frontend) -> None:
        self.client, self.upstream = client, upstream
        self.frontend = frontend  # reads what the client sends
        self.dead = False

    def reset(self) -> None:
        self.dead = True
        _reset(self.client)
        _reset(self.upstream)

    def close(self) -> None:
        if not self.dead:
            self.dead = True
            for w in (self.client, self.upstream):
                with contextlib.suppress(Exception):
                    w.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


class _Frontend:
    """Reads the messages a PostgreSQL client sends, to tell which statements it executes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._startup = True  # untyped messages first (SSLRequest, StartupMessage)
        self._statements: dict[bytes, str] = {}  # by prepared statement name

    def feed(self, data: bytes) -> list[str]:
        """The SQL of each statement that ``data`` executes (a ``Bind`` or a simple ``Query``)."""
        buf = self._buffer
        buf += data
        executed = []
        while True:
            if self._startup:
                if len(buf) < 8:
                    break
                length, code = struct.unpack("!ii", buf[:8])
                if len(buf) < length:
                    break
                del buf[:length]
                self._startup = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                continue
            if len(buf) < 5:
                break
            kind, (length,) = buf[0], struct.unpack("!i", buf[1:5])
            if len(buf) < 1 + length:
                break
            body = bytes(buf[5:1 + length])
            del buf[:1 + length]
            if kind == ord("P"):  # Parse: name, query
                name, query = body.split(b"\0")[:2]
                self._statements[name] = query.decode(errors="replace")
            elif kind == ord("B"):  # Bind: portal, statement name
                executed.append(self._statements.get(body.split(b"\0")[1], ""))
            elif kind == ord("Q"):  # a simple query
                executed.append(body.split(b"\0")[0].decode(errors="replace"))
        return executed
