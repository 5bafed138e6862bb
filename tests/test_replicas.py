"""Processes sharing one database, over real sockets: ``serve`` replicas and CLI commands
beside them share one Booxi budget; exactly one replica polls, and another takes over
when it is killed. Changes made at Booxi (its webhooks spread over the replicas as a
load balancer would) and through either replica read the same through both, and a
write through one is read through the other within a second. The simulator limits
requests as Booxi does; its request log is the judge (no 429, at most 5 requests in any
second, for the partner key the mirror uses: the test reads the simulator's own answers
with the store's key, a budget of its own)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import (
    API_KEY,
    MERCHANT_KEY,
    PARTNER_KEY,
    WEBHOOK_SECRET,
    Sim,
    SimFactory,
    calendar_params,
    cli_env,
    rfc3339,
    sample,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, sim: Sim, url: str, *, interval: float) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[booxi]\nbase_url = "{sim.api}"\npartner_key = "{PARTNER_KEY}"\n'
        "requests_per_second = 5\nrequests_per_minute = 300\ntimeout_s = 5\n"
        f'[storage]\nurl = "{url}"\n'
        f"[sync]\nhorizon_days = 14\ncalendar_interval_s = {interval}\n"
        'reference_interval_s = 3600\n[api]\nhost = "127.0.0.1"\n'
        f'[[api.keys]]\nname = "all"\nkey = "{API_KEY}"\nscopes = ["read", "write"]\n'
        f'[webhook]\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    return path


class Serve:
    """One ``booxi-mirror serve`` process; its log goes to a file."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def metric(self, name: str) -> float:
        """A value of this replica's ``/metrics`` (``booxi_mirror_<name>``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + "/metrics") as response,
        ):
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(f"booxi_mirror_{name} "):
                return float(line.split()[1])
        raise AssertionError(f"no booxi_mirror_{name} in /metrics")

    async def polls(self) -> bool:
        """Whether this replica says it runs the poller (``booxi_mirror_poll_leader``)."""
        return await self.metric("poll_leader") == 1.0

    async def readyz_polls(self) -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + "/readyz") as response,
        ):
            return bool((await response.json())["checks"]["poller"]["polls"])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


async def _start_serve(config: Path, log: Path) -> Serve:
    port = _free_port()
    handle: IO[bytes] = log.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "--config",
            str(config),
            "serve",
            stdout=asyncio.subprocess.PIPE,
            stderr=handle,
            env=cli_env(BOOXI_MIRROR_API__PORT=str(port)),
        )
    finally:
        handle.close()
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    serve = Serve(process, port, log)
    if b"serving on" not in line:
        await asyncio.wait_for(process.wait(), 30)
        raise AssertionError(serve.log_text()[-3000:])
    return serve


async def _run_cli(config: Path, *args: str, within_s: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
    )
    _, stderr = await asyncio.wait_for(process.communicate(), within_s)
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


async def _requests(sim: Sim) -> list[dict[str, object]]:
    """The simulator's log of the mirror's requests (those the test makes with the store's
    key, ``Booxi-APIKey``, count against a budget of their own, as at Booxi)."""
    logged = (await sim.control("GET", "/_sim/requests"))["requests"]
    return [entry for entry in logged if entry["key"] != "Booxi-APIKey"]


def _most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


def _check_fair_use(requests: list[dict[str, object]]) -> None:
    statuses = [entry["status"] for entry in requests]
    assert 429 not in statuses, [entry for entry in requests if entry["status"] == 429]
    at = [float(str(entry["at"])) for entry in requests]
    assert _most_in_any_second(at) <= 5
    assert _most_in_any_minute(at) <= 300


def _most_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 60.0) for start in times), default=0)


async def test_sync_beside_serve_on_sqlite_shares_one_budget(
    tmp_path: Path, make_sim: SimFactory
) -> None:
    sim = await make_sim(rate_limit=True, stores=1, staff_per_store=3, clients=20)
    config = _config(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}", interval=2)
    serve = await _start_serve(config, tmp_path / "serve.log")
    try:
        assert await serve.polls()  # on SQLite, serve always polls
        code, err = await _run_cli(config, "sync")
        assert code == 0, err[-3000:]
    finally:
        await serve.stop()
    requests = await _requests(sim)
    assert len(requests) > 20  # both were busy: the budget was the limit
    _check_fair_use(requests)
    assert "poll.leader.acquired" in serve.log_text()


class Balancer:
    """The load balancer in front of the replicas, for the simulator's webhooks: each
    delivery goes to the next replica in turn, or to the one after it when that one
    does not answer; Booxi's status comes back, and what each replica did is counted."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.replicas: list[Serve] = []
        self.outcomes: dict[int, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self._turn = 0

    @property
    def url(self) -> str:
        return str(self.server.make_url("/webhooks/booxi"))

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name: request.headers[name] for name in ("Authorization", "Content-Type")}
        turn, self._turn = self._turn, self._turn + 1
        for step in range(len(self.replicas)):
            replica = self.replicas[(turn + step) % len(self.replicas)]
            try:
                async with self.session.post(
                    replica.base + "/webhooks/booxi", data=body, headers=headers
                ) as response:
                    answer = await response.read()
                    if response.status == 200:
                        outcome = (await response.json())["outcome"]
                        self.outcomes[replica.port][outcome] += 1
                    return web.Response(
                        status=response.status, body=answer, content_type=response.content_type
                    )
            except aiohttp.ClientConnectionError:
                continue  # a replica down: the next one
        return web.Response(status=502)


@pytest.fixture
async def balancer() -> AsyncIterator[Balancer]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        balancer = Balancer(server, session)
        app.router.add_post("/webhooks/booxi", balancer.forward)
        await server.start_server()
        yield balancer
        await server.close()


@pytest.fixture
async def store_key_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session that asks the simulator with the store's key (``Booxi-APIKey``)."""
    async with aiohttp.ClientSession(
        headers={"Booxi-APIKey": MERCHANT_KEY}, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


async def _read(replica: Serve, path: str, params: Any = None) -> Any:
    """A replica's answer to a read of its API (``/booking/v1`` + ``path``): 200 only."""
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(replica.base + "/booking/v1" + path, params=params) as response,
    ):
        assert response.status == 200, (path, response.status, await response.text())
        return await response.json()


async def _replica_calendar(replica: Serve, params: Any) -> dict[str, Any]:
    """A staff member's calendar as a replica answers it, the pages joined (no cursor)."""
    joined: dict[str, Any] = {}
    while True:
        page = await _read(replica, "/calendar", params)
        for key, value in page.items():
            if isinstance(value, list):
                joined.setdefault(key, []).extend(value)
            elif key != "cursor":
                joined[key] = value
        if not page["cursor"]:
            return joined
        params = {"cursor": page["cursor"]}


def _bookings(calendar: dict[str, Any]) -> dict[str, str]:
    """A calendar's bookings: their ``modifiedOn`` by id."""
    return {booking["bookingId"]: booking["modifiedOn"] for booking in calendar["bookings"]}


class Truth:
    """The simulator's own answers, asked with the store's key (``Booxi-APIKey``, a
    fair-use budget apart from the mirror's partner key) at most 4 times a second."""

    def __init__(self, sim: Sim, session: aiohttp.ClientSession) -> None:
        self.sim = Sim(sim.server, session)
        self._last = -1.0

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self._last + 0.25 - loop.time()))
        self._last = loop.time()
        status, body = await self.sim.call(method, path, **kwargs)
        assert status == 200, body
        return body

    async def bookings(self, params: Any) -> dict[str, str]:
        """A calendar's bookings (``_bookings``) as Booxi answers them."""
        bookings: list[Any] = []
        while True:
            page = await self.call("GET", "/calendar", params=params)
            bookings.extend(page["bookings"])
            if not page["cursor"]:
                return _bookings({"bookings": bookings})
            params = {"cursor": page["cursor"]}


def _window() -> tuple[dt.datetime, dt.datetime]:
    """A range well inside what the replicas poll (7 days back, ``horizon_days`` ahead)."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=6), today + dt.timedelta(days=13)


async def _converge(truth: Truth, replicas: list[Serve], staff: list[int]) -> set[str]:
    """Until, for every staff member, every replica answers the same calendar and its
    bookings are Booxi's (ids and ``modifiedOn``), 20 s at most; the bookings' ids."""
    start, end = _window()
    seen: set[str] = set()
    for staff_id in staff:
        params = calendar_params(staff_id, start, end)
        expected = await truth.bookings(params)
        seen.update(expected)
        async with asyncio.timeout(20):
            while True:
                calendars = [await _replica_calendar(replica, params) for replica in replicas]
                if all(calendar == calendars[0] for calendar in calendars) and (
                    _bookings(calendars[0]) == expected
                ):
                    break
                await asyncio.sleep(0.1)
    return seen


def _appointment(sim: Sim, staff_id: int) -> dict[str, Any]:
    """An appointment of the staff member's, ahead and inside ``_window()``."""
    now, (_, end) = rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)), _window()
    return min(
        (
            booking
            for booking in sim.world.bookings.values()
            if booking["staffId"] == staff_id
            and booking["bookingMethod"] == "Appointment"
            and booking["status"] != "Cancelled"
            and now <= booking["startsOn"] <= rfc3339(end)
        ),
        key=lambda booking: str(booking["startsOn"]),
    )


async def _change(truth: Truth, count: int, seed: int, staff_id: int) -> list[str]:
    """Changes at Booxi: random ones, and a note on one of the staff member's appointments
    ahead (one change at least inside ``_window()``); the bookings changed, once their
    webhooks are delivered (or given up)."""
    sim = truth.sim
    changed = (await sim.control("POST", "/_sim/mutate", {"count": count, "seed": seed}))["changed"]
    booking = _appointment(sim, staff_id)
    path = f"/booking/{booking['bookingId']}"
    await truth.call("PUT", path, json_body={"quickNote": f"changed at Booxi ({seed})"})
    await sim.control("POST", "/_sim/webhooks/drain?timeout=20")
    return [*changed, booking["bookingId"]]


async def _reads_of(replica: Serve, booking: dict[str, Any]) -> list[dict[str, Any]]:
    """A booking as a replica answers it: alone, and in its staff member's calendar."""
    starts = dt.datetime.fromisoformat(booking["startsOn"])
    alone = (await _read(replica, f"/booking/{booking['bookingId']}"))["booking"]
    params = calendar_params(
        booking["staffId"], starts - dt.timedelta(hours=1), starts + dt.timedelta(hours=1)
    )
    calendar = await _read(replica, "/calendar", params)
    assert calendar["cursor"] is None
    listed = [b for b in calendar["bookings"] if b["bookingId"] == booking["bookingId"]]
    return [alone, *listed]


async def _shown(replica: Serve, booking: dict[str, Any]) -> list[tuple[str, str]]:
    """The booking's note and ``modifiedOn`` in each read of ``_reads_of``."""
    return [(read["quickNote"], read["modifiedOn"]) for read in await _reads_of(replica, booking)]


async def _held(replica: Serve, booking: dict[str, Any]) -> None:
    """Read until both reads come from the replica's memory (ready answers), 10 s at most."""
    async with asyncio.timeout(10):
        while True:
            hits = await replica.metric("ready_hits_total")
            await _reads_of(replica, booking)
            if await replica.metric("ready_hits_total") == hits + 2:
                return
            await asyncio.sleep(0.05)


async def _write_read_elsewhere(sim: Sim, first: Serve, second: Serve, staff_id: int) -> float:
    """A note written through ``first`` onto a booking ``second`` holds a ready answer
    for: ``first`` shows it at once, ``second`` after how many seconds (returned)."""
    booking = _appointment(sim, staff_id)
    await _held(second, booking)
    note = f"written through {first.port}"
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.put(
            f"{first.base}/booking/v1/booking/{booking['bookingId']}", json={"quickNote": note}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        written = (await response.json())["booking"]
    loop = asyncio.get_running_loop()
    answered = loop.time()
    assert (written["quickNote"], written["modifiedOn"]) == (
        note,
        sim.world.bookings[booking["bookingId"]]["modifiedOn"],
    )
    expected = [(note, written["modifiedOn"])] * 2
    assert await _shown(first, booking) == expected
    async with asyncio.timeout(5):
        while await _shown(second, booking) != expected:  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.05)
    return loop.time() - answered


async def _wait_in_log(replica: Serve, text: str, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while text not in replica.log_text():  # noqa: ASYNC110 - a log file
            await asyncio.sleep(0.2)


async def test_two_replicas_converge_and_one_takes_over_polling_when_the_leader_is_killed(
    tmp_path: Path,
    make_sim: SimFactory,
    postgres_url: str,
    balancer: Balancer,
    store_key_session: aiohttp.ClientSession,
) -> None:
    interval = 4.0
    sim = await make_sim(
        rate_limit=True,
        stores=1,
        staff_per_store=3,
        clients=20,
        page_size=50,
        webhook_urls=(balancer.url,),
        webhook_secret=WEBHOOK_SECRET,
    )
    truth = Truth(sim, store_key_session)
    staff = sorted(sim.world.staff)
    config = _config(tmp_path, sim, postgres_url, interval=interval)
    first = await _start_serve(config, tmp_path / "first.log")
    second = await _start_serve(config, tmp_path / "second.log")
    replicas = balancer.replicas = [first, second]
    beside = asyncio.create_task(_run_cli(config, "sync"))  # a CLI command on the budget too
    try:
        polling = [await replica.polls() for replica in replicas]
        assert sorted(polling) == [False, True]
        leader, other = (first, second) if polling[0] else (second, first)
        assert [await replica.readyz_polls() for replica in (leader, other)] == [True, False]
        event = sample("webhook-appointment-created.json")
        event["content"]["booking"]["merchantId"] = next(iter(sim.world.merchants))
        async with (  # the replica that does not poll takes webhooks all the same
            aiohttp.ClientSession() as session,
            session.post(
                other.base + "/webhooks/booxi",
                json=event,
                headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"},
            ) as response,
        ):
            assert (await response.json())["outcome"] == "applied"
        booking = event["content"]["booking"]
        for replica in replicas:  # and both read it
            read = (await _read(replica, f"/booking/{booking['bookingId']}"))["booking"]
            assert read["modifiedOn"] == booking["modifiedOn"]

        changed = await _change(truth, 12, seed=1, staff_id=staff[1])  # webhooks to either
        assert set(changed) & await _converge(truth, replicas, staff)
        assert all(balancer.outcomes[replica.port]["applied"] for replica in replicas)
        took_s = await _write_read_elsewhere(sim, first, second, staff[0])
        assert took_s < 1.0
        await _converge(truth, replicas, staff)

        await _wait_in_log(leader, "poll.staff.done", within_s=30)  # the leader polled
        leader.process.send_signal(signal.SIGKILL)
        await leader.process.wait()
        killed_at = time.time()
        async with asyncio.timeout(2 * interval):
            while not await other.polls():  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.2)
        took_over_s = time.time() - killed_at
        assert took_over_s < 2 * interval
        assert "poll.leader.acquired" in other.log_text()
        changed = await _change(truth, 6, seed=2, staff_id=staff[2])  # all to the one left
        assert set(changed) & await _converge(truth, [other], staff)
        await _wait_in_log(other, "poll.staff.done", within_s=30)  # it polls, since it leads
        code, err = await beside
        assert code == 0, err[-3000:]
    finally:
        beside.cancel()
        for replica in replicas:
            await replica.stop()
    assert "gave_up" not in (await sim.control("GET", "/_sim/webhooks"))["stats"]
    _check_fair_use(await _requests(sim))
