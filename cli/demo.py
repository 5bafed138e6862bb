"""``booxi-mirror demo``: the Booxi simulator and the mirror in one process, wired together.

The simulator (``simulator.run_simulator``) serves a generated world; the mirror
(``cli.serving.serve``) polls it with short intervals, on an SQLite file kept between
runs, and receives its webhooks. One generated partner key is shared by both; the
mirror's API key (read and write, every store) and the webhook secret are generated
too. SIGINT or SIGTERM stops the mirror, then the simulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cli.serving import serve
from mirror.config import Config
from storage.errors import UserError

if TYPE_CHECKING:
    from simulator import SimSettings

API_PREFIX = "/booking/v1"


class DemoStartError(UserError):
    """The simulator or the mirror could not start (a port in use, most often)."""


def generate_key() -> str:
    return secrets.token_urlsafe(18)


@dataclasses.dataclass(frozen=True)
class Demo:
    """Where each part listens, and the generated keys."""

    host: str
    port: int
    sim_port: int
    db: Path
    seed: int
    partner_key: str = dataclasses.field(default_factory=generate_key, repr=False)
    merchant_key: str = dataclasses.field(default_factory=generate_key, repr=False)
    api_key: str = dataclasses.field(default_factory=generate_key, repr=False)
    webhook_secret: str = dataclasses.field(default_factory=generate_key, repr=False)

    @property
    def sim_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.sim_port}"

    @property
    def mirror_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.mirror_url + "/webhooks/booxi"

    def secrets(self) -> tuple[str, ...]:
        return (self.partner_key, self.merchant_key, self.api_key, self.webhook_secret)

    def sim_settings(self) -> SimSettings:
        from simulator import SimSettings

        return SimSettings(
            partner_key=self.partner_key,
            merchant_key=self.merchant_key,
            seed=self.seed,
            webhook_urls=(self.webhook_url,),
            webhook_secret=self.webhook_secret,
        )

    def config(self) -> Config:
        """The mirror's settings: the simulator as Booxi, short poll intervals."""
        return Config.model_validate(
            {
                "booxi": {
                    "base_url": self.sim_url + API_PREFIX,
                    "partner_key": self.partner_key,
                    # under the simulator's fair use (5/s, 300/min per key, as Booxi's),
                    # leaving room for the user's own calls with the same key
                    "requests_per_second": 4,
                    "requests_per_minute": 240,
                },
                "storage": {"url": f"sqlite+aiosqlite:///{self.db.resolve()}"},
                "sync": {
                    "calendar_interval_s": 60,
                    "reference_interval_s": 600,
                    "horizon_days": 30,
                },
                "api": {
                    "host": self.host,
                    "port": self.port,
                    "keys": [
                        {
                            "name": "demo",
                            "key": self.api_key,
                            "merchant_ids": ["*"],
                            "scopes": ["read", "write"],
                        }
                    ],
                },
                "webhook": {"secret": self.webhook_secret},
            }
        )


def banner(setup: Demo, staff_id: int) -> str:
    """What to tell the user once both parts listen (the only place the keys are shown),
    with curl examples for ``staff_id``."""
    sim, mirror = setup.sim_url, setup.mirror_url
    api = f"{mirror}/booking/v1"
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = f"from={_rfc3339(today)}&to={_rfc3339(today + dt.timedelta(days=7))}"
    curl = f"curl -H 'Authorization: Bearer {setup.api_key}'"
    return "\n".join(
        [
            f"booxi-mirror demo: the Booxi simulator and the mirror, data in {setup.db}",
            f"  simulator API      {sim}/booking/v1",
            f"  simulator control  {sim}/_sim/",
            f"  partner key        {setup.partner_key}",
            f"  mirror API         {api}",
            f"  mirror API key     {setup.api_key}",
            f"  readiness          {mirror}/readyz",
            f"  metrics            {mirror}/metrics",
            f"  OpenAPI            {mirror}/openapi.json",
            f"  webhooks           simulator -> {setup.webhook_url}",
            "",
            "The mirror polls the simulator every minute. Changes made in the simulator",
            "reach the mirror as webhooks at once:",
            f"  curl -X POST {sim}/_sim/mutate -d '{{\"count\": 5}}'",
            "",
            "Try, against the mirror:",
            f"  {curl} '{api}/staff/list'",
            f"  {curl} '{api}/calendar?staffId={staff_id}&{week}"
            "&eventType=Appointment&include=Appointment'",
            f"  curl '{mirror}/readyz'",
            "",
            "Ctrl-C stops it.",
        ]
    )


async def run_demo(demo: Demo, *, ready: Callable[[int], None]) -> None:
    """Run both until SIGINT or SIGTERM; ``ready(staff_id)`` once both listen, with a
    staff member of the simulated world for the examples. Raises ``DemoStartError``."""
    from simulator import create_app, run_simulator
    from simulator.keys import WORLD

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    settings = demo.sim_settings()
    sim_app = create_app(settings)
    sim_up = asyncio.Event()
    simulator = asyncio.create_task(
        run_simulator(
            settings, demo.host, demo.sim_port, app=sim_app, ready=lambda _url: sim_up.set()
        )
    )
    try:
        await _first_of(simulator, sim_up, stop)
        if simulator.done():
            try:
                simulator.result()
            except OSError as error:
                raise DemoStartError(
                    _cannot_serve("simulator", demo.host, demo.sim_port, error)
                ) from None
        if stop.is_set():
            return
        staff_id = min(sim_app[WORLD].staff)
        try:
            await serve(demo.config(), ready=lambda _url: ready(staff_id), stop=stop)
        except OSError as error:
            raise DemoStartError(_cannot_serve("mirror", demo.host, demo.port, error)) from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        simulator.cancel()
        await asyncio.gather(simulator, return_exceptions=True)  # a start error: raised above


async def _first_of(task: asyncio.Task[None], *events: asyncio.Event) -> None:
    """Wait until ``task`` ends or one of ``events`` is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _cannot_serve(what: str, host: str, port: int, error: OSError) -> str:
    return f"cannot serve the {what} on {host}:{port}: {error.strerror or error}"


def _url_host(host: str) -> str:
    """The host to put in URLs: loopback for a wildcard address, IPv6 in brackets."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
