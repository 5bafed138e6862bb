"""Connection hygiene for ``booxi-mirror serve``: every connection either makes progress
or goes, and there are never more than ``[api] max_connections`` of them.

aiohttp's own keep-alive timer (``keepalive_timeout_s``) closes a connection that has
no complete request waiting once that long has passed since it opened or since its last
answer, even when part of a request has come in. Two more rules, here, around aiohttp's
protocol (``GuardedSite`` listens with ``ConnectionGuard.factory``):

- **Header timeout**: a new connection has ``header_timeout_s`` to send its first request
  line and headers (up to the blank line). Slower, or silent, it is closed: with ``408``
  in Booxi's error shape if it sent anything, without a word if not (a slowloris holds
  nothing for long). After its first request, the keep-alive timer above bounds it.
- **Connection cap**: at most ``max_connections`` open at once. One more is answered
  ``503`` with ``Retry-After: 1`` and closed at once, never handed to aiohttp.

The first of the header timeout and the keep-alive timeout to expire applies to a new
connection. Neither limits a request the application is working on, nor a slow body
(``client_max_size`` bounds its size).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


def _answer(status: int, reason: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"message": message, "code": status}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


TIMED_OUT = _answer(
    408, "Request Timeout", "the request line and headers did not come in time: send them at once"
)
TOO_MANY = _answer(
    503,
    "Service Unavailable",
    "too many connections to the mirror: try again shortly",
    "Retry-After: 1\r\n",
)


class ConnectionGuard:
    """Counts the open connections and times their first request head; see the module doc."""

    def __init__(self, *, header_timeout_s: float, max_connections: int) -> None:
        if not header_timeout_s > 0 or max_connections < 1:
            raise ValueError("header_timeout_s must be positive and max_connections at least 1")
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.timed_out = 0

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's ``inner``."""
        return lambda: _Guarded(self, inner)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol, made only for an admitted connection, behind the two rules."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make_inner = make_inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen while the first head is incomplete
        self._got_any = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        guard = self._guard
        if guard.open >= guard.max_connections:
            guard.refused += 1
            if guard.refused == 1 or guard.refused % 1000 == 0:
                log.warning(
                    "connections.refused",
                    extra={"max_connections": guard.max_connections, "refused": guard.refused},
                )
            transport.write(TOO_MANY)
            transport.close()
            return
        guard.open += 1
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(guard.header_timeout_s, self._head_too_slow)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # refused: whatever it sends is dropped
        if self._timer is not None:
            self._got_any = True
            seen = self._tail + data
            if any(end in seen for end in HEAD_ENDS):
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inner is not None:
            self._guard.open -= 1
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _head_too_slow(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._guard.timed_out += 1
        log.debug("connections.header_timeout", extra={"sent_anything": self._got_any})
        if self._got_any:
            transport.write(TIMED_OUT)
        transport.close()


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` listening through a ``ConnectionGuard``."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner, host, port)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.factory(server), self._host, self._port, backlog=self._backlog
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
