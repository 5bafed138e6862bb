"""Run the simulator as a server until cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from simulator.app import create_app
from simulator.settings import SimSettings

log = logging.getLogger(__name__)


async def run_simulator(
    settings: SimSettings,
    host: str,
    port: int,
    *,
    ready: Callable[[str], None] | None = None,
    app: web.Application | None = None,
) -> None:
    """Serve ``create_app(settings)`` on ``host:port``; call ``ready(base_url)`` once up.

    ``app``: an application made beforehand with ``create_app(settings)``, to serve instead
    (the demo reads its world before serving it).
    """
    runner = web.AppRunner(app if app is not None else create_app(settings), handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        base_url = f"http://{host}:{port}"
        log.info("sim.started", extra={"url": base_url, "settings": repr(settings)})
        if ready is not None:
            ready(base_url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
