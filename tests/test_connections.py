"""Connection hygiene of ``booxi-mirror serve`` (``api.connections``), against a real
process over loopback: slow or silent connections are closed within the header timeout,
idle ones within the keep-alive timeout, connections beyond ``max_connections`` are
answered 503 and closed at once, and ``/livez`` answers throughout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import API_KEY, PARTNER_KEY

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _serve(tmp_path: Path, **api: float) -> AsyncIterator[str]:
    """A ``booxi-mirror serve`` process with these ``[api]`` settings; its base URL."""
    port = _free_port()
    settings = "".join(f"{key} = {value}\n" for key, value in api.items())
    config = tmp_path / "config.toml"
    config.write_text(
        '[booxi]\nbase_url = "http://127.0.0.1:9/booking/v1"\n'
        f'partner_key = "{PARTNER_KEY}"\ntimeout_s = 1\n'
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "mirror.db"}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n{settings}'
        f'[[api.keys]]\nname = "all"\nkey = "{API_KEY}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOXI_")}
    with (tmp_path / "serve.log").open("wb") as log:  # a file: a full pipe would stall it
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "--config",
            str(config),
            "serve",
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
        )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"serving on" in line, (tmp_path / "serve.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _livez(url: str) -> int:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url + "/livez") as response,
    ):
        return response.status


_OPENED: list[Conn] = []  # every test's sockets, closed after it whatever happened


@pytest.fixture(autouse=True)
async def _close_opened() -> AsyncIterator[None]:
    yield
    conns, _OPENED[:] = list(_OPENED), []
    for _, writer in conns:
        writer.close()
    for _, writer in conns:
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _open(url: str, count: int, send: bytes = b"") -> list[Conn]:
    port = int(url.rpartition(":")[2])
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    _OPENED.extend(conns)
    for _, writer in conns:
        if send:
            writer.write(send)
            await writer.drain()
    return conns


async def _until_closed(conn: Conn, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection ("" if it reset it)."""
    reader, writer = conn
    received = b""
    try:
        async with asyncio.timeout(within_s):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return received


async def _silent_for(conn: Conn, seconds: float) -> bool:
    """Whether the server neither answers nor closes ``conn`` for ``seconds``."""
    try:
        await asyncio.wait_for(conn[0].read(1), seconds)
    except TimeoutError:
        return True
    return False


def _close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()


async def test_half_sent_and_silent_connections_are_closed_within_the_header_timeout(
    tmp_path: Path,
) -> None:
    async with _serve(tmp_path, header_timeout_s=1, keepalive_timeout_s=60) as url:
        started = time.monotonic()
        half = await _open(url, 200, b"GET /livez HTT")
        silent = await _open(url, 200)

        assert await _livez(url) == 200  # answered while 400 connections hang

        received = await asyncio.gather(*(_until_closed(c, 30) for c in half + silent))
        elapsed = time.monotonic() - started
        assert elapsed < 30  # the header timeout closed them, not the 60 s keep-alive
        for answer in received[:200]:
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        # most get the 408 before the close; under load a reset may beat it to the client
        assert any(answer.startswith(b"HTTP/1.1 408") for answer in received[:200])
        assert b'"code": 408' in next(a for a in received if a)
        assert all(answer == b"" for answer in received[200:])
        assert await _livez(url) == 200


async def test_idle_keep_alive_connections_are_closed_within_the_keepalive_timeout(
    tmp_path: Path,
) -> None:
    request = b"GET /livez HTTP/1.1\r\nHost: mirror\r\n\r\n"
    # 3 s: on a loaded machine, 200 connections take a while to open and be answered
    async with _serve(tmp_path, header_timeout_s=60, keepalive_timeout_s=3) as url:
        started = time.monotonic()
        idle = await _open(url, 100, request)
        then_half = await _open(url, 100, request)
        for reader, _writer in idle + then_half:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        for _, writer in then_half:  # the next request never completes
            writer.write(b"GET /livez HTTP/1.1\r\nHost: mi")
            await writer.drain()

        received = await asyncio.gather(*(_until_closed(c, 30) for c in idle + then_half))

        assert time.monotonic() - started < 30  # well before the 60 s header timeout
        assert all(answer == b"" for answer in received)
        assert await _livez(url) == 200


async def test_connections_beyond_max_connections_are_refused_at_once(tmp_path: Path) -> None:
    settings = {"header_timeout_s": 60, "keepalive_timeout_s": 60, "max_connections": 50}
    async with _serve(tmp_path, **settings) as url:
        held = await _open(url, 50)
        assert all(await asyncio.gather(*(_silent_for(c, 1) for c in held)))

        extra = await _open(url, 20, b"GET /livez HTTP/1.1\r\nHost: mirror\r\n\r\n")
        received = await asyncio.gather(*(_until_closed(c, 10) for c in extra))

        for answer in received:
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable"), answer
            assert b"Retry-After: 1" in answer
            assert b'"code": 503' in answer
        assert await _livez(url) == 503  # over the cap too

        _close_all(held)
        deadline = time.monotonic() + 15
        while await _livez(url) != 200:
            assert time.monotonic() < deadline, "the slots never came back"
            await asyncio.sleep(0.1)
        again = await _open(url, 49)  # every slot is free again
        assert all(await asyncio.gather(*(_silent_for(c, 0.5) for c in again)))
        _close_all(again)


@pytest.mark.parametrize("bad", [0, -1])
def test_connection_guard_refuses_nonsense_limits(bad: int) -> None:
    from api.connections import ConnectionGuard

    with pytest.raises(ValueError):
        ConnectionGuard(header_timeout_s=bad, max_connections=10)
    with pytest.raises(ValueError):
        ConnectionGuard(header_timeout_s=1, max_connections=bad)
