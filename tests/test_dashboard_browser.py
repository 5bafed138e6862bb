"""The store dashboard in a real browser (issue #12): Playwright for Python driving the
system's Chromium (Debian's ``chromium``, which ``.ci/run`` installs; Playwright downloads
nothing). Without Playwright or a browser these tests skip, saying which is missing.

Screenshots of the dashboard and of a staff member's week, at a tablet's width, are
saved to ``tests/artifacts/`` (``dashboard.png``, ``week.png``; not committed)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mirror.sync import run_pass
from storage.times import instant_key
from tests.conftest import MirrorApp, Sim, Store, booxi_client

STORE_KEY = "browser-store-key-0123456789"
OTHER_KEY = "browser-other-key-0123456789"
HORIZON_DAYS = 21
ARTIFACTS = Path(__file__).parent / "artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TABLET = {"width": 768, "height": 1024}


def _executable() -> str:
    """The browser to drive: ``BOOXI_MIRROR_TEST_BROWSER``, else the first on PATH."""
    named = os.environ.get("BOOXI_MIRROR_TEST_BROWSER")
    if named:
        return named
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium to drive: install Debian's chromium (.ci/run does, with apt-get) "
        "or set BOOXI_MIRROR_TEST_BROWSER"
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """One Chromium for the test (its contexts keep each user's cookies apart)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[dev]'")
    executable = _executable()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        yield launched
        await launched.close()


@pytest.fixture
async def synced(make_sim, store: Store, make_mirror_app) -> AsyncIterator[Any]:
    """A simulator, a mirror synced once (calendars and queues), keys of two stores."""
    sim: Sim = await make_sim(days_before=8, days_after=30)
    client = booxi_client(sim)
    result = await run_pass(client, store.writer, store.engine, horizon_days=HORIZON_DAYS)
    assert result.ok
    first, second = sorted(sim.world.merchants)[:2]
    keys = [
        {"name": "store", "key": STORE_KEY, "merchant_ids": [first], "scopes": ["read", "write"]},
        {"name": "other", "key": OTHER_KEY, "merchant_ids": [second], "scopes": ["read", "write"]},
    ]
    app = await make_mirror_app(
        booxi=client, sync={"horizon_days": HORIZON_DAYS}, api={"keys": keys}
    )
    yield sim, app, first
    await client.close()


def dispatchable(sim: Sim, merchant_id: int) -> tuple[dict[str, Any], int]:
    """A request of the store's queue with no staff member, and a staff member of the
    store free at its time (Booxi would refuse a busy one: 409)."""
    now = dt.datetime.now(dt.UTC)
    start, end = instant_key(now), instant_key(now + dt.timedelta(days=HORIZON_DAYS))
    staff = sorted(s["id"] for s in sim.world.staff.values() if s["merchantId"] == merchant_id)
    for booking in sorted(sim.world.bookings.values(), key=lambda b: b["bookingId"]):
        if (
            booking["merchantId"] != merchant_id
            or booking.get("staffId")
            or booking["status"] == "Cancelled"
            or booking["bookingMethod"] != "Appointment"
            or not start <= instant_key(booking["startsOn"]) <= end
        ):
            continue
        span = booking["totalClientTimespan"]
        for staff_id in staff:
            if sim.world.conflict_for(staff_id, span["start"], span["end"]) is None:
                return booking, staff_id
    raise AssertionError("the simulator made no request to dispatch")


async def sign_in(page: Any, app: MirrorApp, key: str) -> None:
    await page.goto(app.url + "/")
    assert page.url == app.url + "/dashboard/sign-in"  # sent to the sign-in form
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def new_page(browser: Any, requested: list[str]) -> Any:
    context = await browser.new_context(viewport=TABLET)
    page = await context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    return page


async def test_dashboard_dispatches_a_request_into_a_staff_members_week(browser, synced) -> None:
    sim, app, first = synced
    booking, staff_id = dispatchable(sim, first)
    booking_id = booking["bookingId"]
    item = f"#request-{booking_id}"
    requested: list[str] = []

    # a bad key is refused
    page = await new_page(browser, requested)
    await sign_in(page, app, "not-a-key-of-this-mirror")
    await page.get_by_role("alert").filter(has_text="Invalid API key.").wait_for()
    assert page.url == app.url + "/dashboard/sign-in"
    await page.goto(app.url + "/")
    assert page.url == app.url + "/dashboard/sign-in"  # still not signed in

    # another store's key sees neither the request nor the staff member's week
    other = await new_page(browser, requested)
    await sign_in(other, app, OTHER_KEY)
    await other.get_by_role("heading", name="Dispatch queue").wait_for()
    assert await other.locator(item).count() == 0
    assert booking_id not in await other.content()
    response = await other.goto(app.url + f"/dashboard/staff/{staff_id}")
    assert response is not None and response.status == 404
    await other.get_by_role("heading", name="Not found").wait_for()

    # the store's key: the queue, keyboard first, then the assignment
    page = await new_page(browser, requested)
    await sign_in(page, app, STORE_KEY)
    await page.get_by_role("heading", name="Dispatch queue").wait_for()
    request = page.locator(item)
    await request.wait_for()
    assert "no staff member yet" in await request.inner_text()
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the dashboard scrolls sideways at a tablet's width"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    await page.screenshot(path=str(shot))  # what a tablet held upright shows first
    print(f"dashboard screenshot: {shot}")  # noqa: T201
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await request.get_by_label("Staff member").select_option(str(staff_id))
    await request.get_by_role("button", name="Assign and approve").click()
    await page.get_by_role("status").filter(has_text=f"Request {booking_id} assigned").wait_for()
    assert await page.locator(item).count() == 0  # left the queue

    zone = ZoneInfo(sim.world.merchants[first]["timeZone"])
    day = dt.datetime.fromisoformat(booking["startsOn"].replace("Z", "+00:00")).astimezone(zone)
    await page.goto(app.url + f"/dashboard/staff/{staff_id}?week={day.date().isoformat()}")
    entry = page.locator(f'[data-booking="{booking_id}"]').first  # one per service
    await entry.wait_for()
    assert "Approved" in await entry.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "week.png"))
    assert sim.world.bookings[booking_id]["staffId"] == staff_id  # Booxi has it too

    # and the other store still sees neither
    await other.goto(app.url + "/")
    assert booking_id not in await other.content()
    response = await other.goto(app.url + f"/dashboard/staff/{staff_id}")
    assert response is not None and response.status == 404

    elsewhere = [u for u in requested if not u.startswith(app.url + "/")]
    assert not elsewhere, f"the dashboard asked for something elsewhere: {elsewhere}"
