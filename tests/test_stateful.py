"""A stateful test of the whole mirror against the simulator.

Hypothesis interleaves random changes at Booxi (their webhooks dropped, duplicated,
reordered or late), poll passes, writes through the mirror, restarts of the mirror over
the same SQLite file, and reads through the mirror. After every step a reader reads
again every booking seen so far: none has gone back to an older ``modifiedOn`` (than a
read or a write's answer showed before), none is newer than Booxi's, and a version Booxi
holds comes back exactly as Booxi holds it; no background task died. At the end, with
the webhooks drained and the faults cleared, one poll pass brings the mirror to Booxi's
state: every booking in the polled window equal (stored JSON), every staff calendar
over the window equal (``Both.same_pages``), and a booking outside the window read once.

Hypothesis' stateful API is synchronous: each example runs its own event loop, and each
rule runs to completion on it. The simulator's webhook deliveries (and the mirror's
re-polls) run on the same loop, so they progress during whichever rules come next.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import json
import os
import tempfile
from operator import itemgetter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from api.keys import REPOLL
from mirror.repoll import Repoller
from mirror.sync import run_pass
from simulator import SimSettings
from simulator import create_app as create_sim_app
from simulator.keys import WEBHOOKS
from tests.conftest import (
    API_KEY,
    MERCHANT_KEY,
    PARTNER_KEY,
    UNLIMITED_FILLS,
    WEBHOOK_SECRET,
    Sim,
    booxi_client,
    calendar_params,
    owned_by_the_app,
    rfc3339,
)
from tests.differential import Both

HORIZON_DAYS = 20  # the polled window: [now - 7 days, now + 20 days]; changes reach beyond
REPOLL_DELAY_S = 0.5
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WORLD = {"stores": 2, "staff_per_store": 2, "clients": 20, "days_after": 10, "page_size": 100}


@dataclasses.dataclass(frozen=True)
class Faults:
    """What happens to Booxi's webhooks (until the next ``Mutate``): some dropped, some
    sent twice, shuffled in batches, half of them late by ``webhook_delay_ms``."""

    webhook_drop_rate: float
    webhook_duplicate_rate: float
    webhook_reorder: bool
    webhook_delay_ms: int
    webhook_delay_rate: float = 0.5


FAULTS = st.builds(
    Faults,
    webhook_drop_rate=st.sampled_from([0.0, 0.3, 1.0]),
    webhook_duplicate_rate=st.sampled_from([0.0, 0.5]),
    webhook_reorder=st.booleans(),
    webhook_delay_ms=st.sampled_from([0, 300]),
)


@dataclasses.dataclass(frozen=True)
class Mutate:
    """``count`` random changes at Booxi, their webhooks under ``faults`` from now on."""

    count: int
    seed: int
    faults: Faults


@dataclasses.dataclass(frozen=True)
class Poll:
    """One poll pass over every staff member."""


@dataclasses.dataclass(frozen=True)
class Write:
    """Through the mirror: create an appointment, reschedule one, change its note, or
    cancel a booking (``pick`` chooses which; a new time is the first free hour from
    ``day``/``hour``); then change an appointment's note ``again`` times right away, so
    that several versions of it are in flight together."""

    kind: str
    pick: int
    day: int
    hour: int
    again: int


@dataclasses.dataclass(frozen=True)
class Read:
    """After ``pause`` seconds, read bookings through the mirror: for each pick, one of
    the bookings changed so far (``True``) or any booking (``False``)."""

    picks: tuple[tuple[bool, int], ...]
    pause: float


@dataclasses.dataclass(frozen=True)
class Restart:
    """Stop the mirror (app, reader, writer, engine) and start it over the same file."""


Action = Mutate | Poll | Write | Read | Restart
PICKS = st.lists(st.tuples(st.booleans(), st.integers(0, 2**16)), min_size=1, max_size=4)

# One rule drawing any action, rather than a rule per action: Hypothesis' swarm testing
# turns rules off per example, and with a handful of examples most would then use one
# or two kinds of step. Polls last: Hypothesis draws the first branches more often, and
# a poll repairs what webhooks got wrong (and takes the longest).
ACTIONS: st.SearchStrategy[Action] = st.one_of(
    st.builds(Read, picks=PICKS.map(tuple), pause=st.sampled_from([0.0, 0.05, 0.3])),
    st.builds(
        Write,
        kind=st.sampled_from(["create", "reschedule", "note", "cancel"]),
        pick=st.integers(0, 2**16),
        day=st.integers(1, 12),
        hour=st.integers(0, 23),
        again=st.integers(0, 2),
    ),
    st.builds(Mutate, count=st.integers(1, 5), seed=st.integers(0, 2**16), faults=FAULTS),
    st.just(Poll()),
    st.just(Restart()),
)


class RunningMirror:
    """One mirror process: engine, writer, Booxi client and the HTTP app, which starts
    and stops them (``create_app``'s ``parts``) with its reader and re-polls."""

    def __init__(self, engine: Any, writer: Any, booxi: Any, server: TestServer):
        self.engine, self.writer, self.booxi = engine, writer, booxi
        self.server = server

    @classmethod
    async def start(cls, path: Path, sim: Sim, port: int | None) -> RunningMirror:
        from api.app import create_app
        from mirror.config import Config
        from storage.engine import make_engine
        from storage.writer import Writer

        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        writer = Writer(engine)
        booxi = booxi_client(sim)

        config = Config.model_validate(
            {
                "webhook": {"secret": WEBHOOK_SECRET},
                "sync": {"horizon_days": HORIZON_DAYS},
                "api": {
                    **UNLIMITED_FILLS,
                    "keys": [{"name": "all", "key": API_KEY, "scopes": ["read", "write"]}],
                },
            }
        )
        app = create_app(
            config,
            engine=engine,
            writer=writer,
            booxi=booxi,
            parts=[owned_by_the_app(engine, writer, booxi, migrate=True)],
        )
        # re-polls after webhooks come sooner than in production (2 s), so that they run
        # between the rules, racing polls, writes and webhooks
        app[REPOLL] = Repoller(booxi, writer, horizon_days=HORIZON_DAYS, delay_s=REPOLL_DELAY_S)
        # the same port on every start: Booxi's webhooks keep their one URL (a fixed
        # port, so not ``aiohttp_server``: Hypothesis runs this outside any fixture)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        return cls(engine, writer, booxi, server)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    async def stop(self) -> None:
        await self.server.close()  # in-flight requests finish; then every part stops

    async def settle(self) -> None:
        """Wait for the re-polls that applied webhooks asked for."""
        await self.server.app[REPOLL].drain()


class MirrorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.history: list[str] = []
        self.loop_errors: list[str] = []  # what background tasks died of, in either server
        self.loop.set_exception_handler(self._on_loop_error)
        self.tmp = tempfile.TemporaryDirectory(prefix="stateful-")
        self.path = Path(self.tmp.name) / "mirror.db"
        self.sim: Sim | None = None
        self.mirror: RunningMirror | None = None
        self.session: aiohttp.ClientSession | None = None
        # the newest modifiedOn seen through the mirror per booking, and how it was seen
        self.floor: dict[str, tuple[str, str]] = {}
        # bookings changed by mutations and writes, the last changed last
        self.touched: dict[str, None] = {}
        self.healthy = False  # every step so far passed: the final check is meaningful

    def run(self, coroutine: Any) -> Any:
        self.healthy = False
        try:
            result = self.loop.run_until_complete(coroutine)
        except BaseException as error:
            # the steps of this very run: a failure that depends on timing may not come
            # back when Hypothesis replays the steps, and then it prints none
            error.add_note("steps run: " + "; ".join(self.history))
            raise
        self.healthy = True
        return result

    # ---- setup -----------------------------------------------------------------
    @initialize(seed=st.integers(1, 1000), faults=FAULTS)
    def start(self, seed: int, faults: Faults) -> None:
        self.history.append(f"start(seed={seed}, faults={faults})")
        self.run(self._start(seed, faults))

    async def _start(self, seed: int, faults: Faults) -> None:
        settings_ = SimSettings(
            partner_key=PARTNER_KEY,
            merchant_key=MERCHANT_KEY,
            seed=seed,
            rate_limit=False,
            webhook_secret=WEBHOOK_SECRET,
            **WORLD,  # type: ignore[arg-type]
        )
        server = TestServer(create_sim_app(settings_), host="127.0.0.1")
        await server.start_server()
        sim_session = aiohttp.ClientSession(
            headers={"Booxi-PartnerKey": PARTNER_KEY}, timeout=aiohttp.ClientTimeout(total=30)
        )
        self.sim = Sim(server, sim_session)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.mirror = await RunningMirror.start(self.path, self.sim, None)
        self.sim.server.app[WEBHOOKS].urls = (self.mirror.url + "/webhooks/booxi",)
        await self._poll()
        await self._set_faults(faults)

    # ---- the one rule: any of the actions -------------------------------------
    @rule(action=ACTIONS)
    def step(self, action: Action) -> None:
        self.history.append(repr(action))
        self.run(self._step(action))

    async def _step(self, action: Action) -> None:
        match action:
            case Mutate():
                await self._mutate(action)
            case Poll():
                await self._poll()
            case Write():
                await self._write(action)
            case Read():
                await self._read(action)
            case Restart():
                await self._restart()

    async def _set_faults(self, faults: Faults) -> None:
        await self._sim().control("POST", "/_sim/faults", dataclasses.asdict(faults))

    async def _mutate(self, action: Mutate) -> None:
        sim = self._sim()
        await self._set_faults(action.faults)
        body = {"count": action.count, "seed": action.seed}
        for booking_id in (await sim.control("POST", "/_sim/mutate", body))["changed"]:
            self._touch(booking_id)

    async def _poll(self) -> None:
        mirror = self._mirror()
        result = await run_pass(
            mirror.booxi, mirror.writer, mirror.engine, horizon_days=HORIZON_DAYS
        )
        assert result.ok, result

    async def _write(self, action: Write) -> None:
        kind, pick, day, hour = action.kind, action.pick, action.day, action.hour
        sim = self._sim()
        world = sim.world
        now = dt.datetime.now(dt.UTC)
        start = now.replace(hour=hour, minute=0, second=0, microsecond=0) + dt.timedelta(days=day)
        soon = rfc3339(now + dt.timedelta(hours=2))
        bodies: list[dict[str, Any]] = []  # more changes to the same booking, at once
        booking: dict[str, Any] = {}
        if kind == "create":
            staff = world.staff[sorted(world.staff)[pick % len(world.staff)]]
            service = next(
                s
                for s in sorted(world.services.values(), key=lambda s: s["id"])
                if s["merchantId"] == staff["merchantId"] and s["bookingMethod"] == "Appointment"
            )
            clients = sorted(
                c["id"] for c in world.clients.values() if c["merchantId"] == staff["merchantId"]
            )
            free = _free_start(sim, staff["id"], start, service["duration"])
            method, path = "POST", "/booking"
            body: dict[str, Any] = {
                "merchantId": staff["merchantId"],
                "bookingMethod": "Appointment",
                "startsOn": rfc3339(free),
                "status": "Approved",
                "staffId": staff["id"],
                "items": [{"serviceId": service["id"]}],
                "client": {"id": clients[pick % len(clients)]},
            }
        else:
            methods = None if kind == "cancel" else ("Appointment",)
            candidates = sorted(
                b["bookingId"]
                for b in world.bookings.values()
                if b["status"] != "Cancelled"
                and b["startsOn"] >= soon
                and (methods is None or b["bookingMethod"] in methods)
            )
            # versions of one booking in flight together are what ordering bugs need:
            # a pick divisible by 3 changes the booking changed last (if it can), one
            # more than that any booking changed before, the rest any booking
            again = [i for i in reversed(self.touched) if i in candidates]
            pool = (again[:1], again, candidates)[pick % 3] or candidates
            if not pool:
                return
            booking = world.bookings[pool[pick // 3 % len(pool)]]
            method, path = "PUT", f"/booking/{booking['bookingId']}"
            if kind == "cancel":
                body = {"status": "Cancelled"}
            elif kind == "note":
                body = {"quickNote": f"note {pick}"}
            else:
                minutes = booking["totalClientTimespan"]["duration"]
                free = _free_start(sim, booking["staffId"], start, minutes, booking["bookingId"])
                body = {"startsOn": rfc3339(free)}
        if kind != "create" and booking["bookingMethod"] == "Appointment":
            bodies = [{"quickNote": f"note {pick} again {n}"} for n in range(action.again)]
        for sent in [body, *bodies]:
            async with self._session().request(
                method, self._mirror().url + "/booking/v1" + path, json=sent, headers=AUTH
            ) as response:
                answer = await response.text()
                assert response.status == 200, (method, path, sent, response.status, answer)
            written = json.loads(answer)["booking"]
            self._touch(written["bookingId"])
            self._raise_floor(written, "a write's answer")
        await self._read_one(written["bookingId"])  # read your writes

    async def _read(self, action: Read) -> None:
        await asyncio.sleep(action.pause)  # let webhooks and re-polls in flight land, or not
        world = self._sim().world
        touched = sorted(set(self.touched) & set(world.bookings))
        everything = sorted(world.bookings)
        for from_touched, index in action.picks:
            pool = touched if from_touched and touched else everything
            await self._read_one(pool[index % len(pool)])

    async def _read_one(self, booking_id: str) -> dict[str, Any]:
        url = f"{self._mirror().url}/booking/v1/booking/{booking_id}"
        async with self._session().get(url, headers=AUTH) as response:
            answer = await response.text()
            assert response.status == 200, (booking_id, response.status, answer)
        booking = json.loads(answer)["booking"]
        assert booking["bookingId"] == booking_id
        seen = booking["modifiedOn"]
        truth = self._sim().world.bookings[booking_id]
        floor = self.floor.get(booking_id)
        assert floor is None or seen >= floor[0], (
            f"booking {booking_id} went back: read modifiedOn {seen} after {floor[1]} "
            f"showed {floor[0]}"
        )
        assert seen <= truth["modifiedOn"], (booking_id, seen, truth["modifiedOn"])
        if seen == truth["modifiedOn"]:  # the same version: the same booking, field for field
            assert booking == truth, booking_id
        self._raise_floor(booking, "a read")
        return dict(booking)

    async def _restart(self) -> None:
        mirror = self._mirror()
        port = mirror.port
        self.mirror = None
        await mirror.stop()
        self.mirror = await RunningMirror.start(self.path, self._sim(), port)
        assert self.mirror.port == port

    @invariant()
    def no_background_task_died(self) -> None:
        assert not self.loop_errors, self.loop_errors

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_errors.append(f"{context.get('message')}: {context.get('exception')!r}")
        loop.default_exception_handler(context)

    @invariant()
    def nothing_went_back(self) -> None:
        """After every step, a reader reads again every booking seen so far."""
        if self.healthy and self.mirror is not None:
            self.run(self._read_seen())

    async def _read_seen(self) -> None:
        await asyncio.gather(*(self._read_one(i) for i in sorted(self.floor)))

    # ---- the end ---------------------------------------------------------------
    def teardown(self) -> None:
        check = self.healthy and self.mirror is not None  # no step failed before
        try:
            if check:
                self.run(self._converged())
        finally:
            self.loop.run_until_complete(self._close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            gc.collect()  # a task that died unobserved says so when collected
            self.loop.close()
            self.tmp.cleanup()
        if check:  # stopping the mirror left nothing running against a closed writer
            assert not self.loop_errors, self.loop_errors

    async def _converged(self) -> None:
        sim, mirror = self._sim(), self._mirror()
        await sim.control("DELETE", "/_sim/faults")
        await sim.control("POST", "/_sim/webhooks/drain")
        await mirror.settle()
        await self._read_seen()  # every webhook in: still nothing went back
        await self._poll()
        await mirror.settle()
        start, end = await _window(mirror)
        lo, hi = rfc3339(start), rfc3339(end)
        truth = {b["bookingId"]: b for b in (await sim.control("GET", "/_sim/state"))["bookings"]}
        async with mirror.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT booking_id, raw FROM booking"))).all()
        held = {row.booking_id: json.loads(row.raw) for row in rows}

        def in_window(booking: dict[str, Any]) -> bool:
            if booking.get("staffId") in (None, 0):
                # on no calendar: only the store's listing finds it, by its start (a
                # request that began before the window and ends inside is not listed)
                return bool(lo <= booking["startsOn"] <= hi)
            span = booking["totalClientTimespan"]
            return bool(span["start"] <= hi and span["end"] >= lo)

        missing = sorted(i for i, b in truth.items() if in_window(b) and b["status"] != "Cancelled")
        missing = [i for i in missing if i not in held]
        assert not missing, f"live bookings in the window not mirrored: {missing}"
        invented = sorted(set(held) - set(truth))
        assert not invented, f"bookings Booxi does not have: {invented}"
        differing = sorted(
            i
            for i, raw in held.items()
            if (in_window(truth[i]) or in_window(raw)) and raw != truth[i]
        )
        assert not differing, [
            (i, held[i]["modifiedOn"], truth[i]["modifiedOn"]) for i in differing
        ]
        # outside the window: read once through the mirror (fills what it lacks)
        for booking_id in sorted(self.touched):
            if not in_window(truth[booking_id]):
                await self._read_one(booking_id)
        both = Both(sim, mirror.url, self._session())
        calendar_from = start + dt.timedelta(minutes=1)
        for staff_id in sorted(sim.world.staff):
            params = calendar_params(staff_id, calendar_from, end - dt.timedelta(minutes=1))
            try:
                await both.same_pages("/calendar", params)
            except AssertionError as error:
                booxi = await both.pages("booxi", "/calendar", params)
                ours = await both.pages("mirror", "/calendar", params)
                error.add_note(f"staff {staff_id}: {_differences(booxi, ours)}")
                raise

    async def _close(self) -> None:
        if self.mirror is not None:
            await self.mirror.stop()
        if self.session is not None:
            await self.session.close()
        if self.sim is not None:
            await self.sim.session.close()
            await self.sim.server.close()

    # ---- helpers ---------------------------------------------------------------
    def _touch(self, booking_id: str) -> None:
        self.touched.pop(booking_id, None)
        self.touched[booking_id] = None

    def _raise_floor(self, booking: dict[str, Any], how: str) -> None:
        booking_id, version = booking["bookingId"], booking["modifiedOn"]
        floor = self.floor.get(booking_id)
        if floor is None or version > floor[0]:
            self.floor[booking_id] = (version, how)

    def _sim(self) -> Sim:
        assert self.sim is not None
        return self.sim

    def _mirror(self) -> RunningMirror:
        assert self.mirror is not None
        return self.mirror

    def _session(self) -> aiohttp.ClientSession:
        assert self.session is not None
        return self.session


def _differences(booxi: dict[str, Any], mirror: dict[str, Any]) -> str:
    """Which calendar events and bookings only one side has, or has otherwise."""

    def event_key(event: dict[str, Any]) -> tuple[Any, ...]:  # a provisional id is null
        return (event.get("id"), event.get("bookingId"), event.get("start"))

    found = []
    for key, ident in (("calendarEvents", event_key), ("bookings", itemgetter("bookingId"))):
        left = {ident(item): item for item in booxi.get(key) or []}
        right = {ident(item): item for item in mirror.get(key) or []}
        only_booxi = sorted(set(left) - set(right), key=repr)
        only_mirror = sorted(set(right) - set(left), key=repr)
        changed = sorted((i for i in set(left) & set(right) if left[i] != right[i]), key=repr)
        found.append(
            f"{key}: only at Booxi {only_booxi}, only in the mirror {only_mirror}, "
            f"different {changed}"
        )
    return "; ".join(found)


def _free_start(
    sim: Sim, staff_id: int, start: dt.datetime, minutes: int, ignore: str | None = None
) -> dt.datetime:
    """The first hour from ``start`` on when the staff member is free (with room to spare)."""
    for hours in range(0, 24 * 14):
        begin = start + dt.timedelta(hours=hours)
        end = begin + dt.timedelta(minutes=2 * minutes)
        if sim.world.conflict_for(staff_id, rfc3339(begin), rfc3339(end), ignore=ignore) is None:
            return begin
    raise AssertionError(f"staff {staff_id} has no free time")


async def _window(mirror: RunningMirror) -> tuple[dt.datetime, dt.datetime]:
    """The window the last pass polled: the latest start and the earliest end of any staff."""
    async with mirror.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT window_start, window_end FROM sync_state WHERE kind = 'staff'")
            )
        ).all()
    assert rows

    def aware(value: object) -> dt.datetime:
        moment = dt.datetime.fromisoformat(str(value))
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

    return max(aware(r.window_start) for r in rows), min(aware(r.window_end) for r in rows)


def test_the_mirror_converges_and_never_goes_back_whatever_the_interleaving() -> None:
    # Shrinking a failure takes minutes (each example starts two servers) and, when the
    # failure depends on timing, is itself flaky: off in the suite, where the steps of
    # the failing run are printed; STATEFUL_SHRINK=1 (with -p no:timeout) turns it on.
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("STATEFUL_SHRINK"):
        phases.append(Phase.shrink)
    run_state_machine_as_test(
        MirrorMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=15,
            deadline=None,
            phases=phases,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
