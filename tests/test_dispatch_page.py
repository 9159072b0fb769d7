"""The dispatcher dashboard in real headless Chromium against a real server and the simulator's drivers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from conftest import (
    ADMIN,
    ARTIFACTS,
    DEST,
    ROOT,
    RedisTarget,
    Server,
    Socket,
    along,
    customer_socket,
    driver_socket,
    fix,
    new_shop,
    now_ms,
    server_env,
    skip_without_chromium,
    wait,
)

pytestmark = pytest.mark.browser
skip_without_chromium()

from playwright.async_api import Browser, Page  # noqa: E402 - only with a browser present

SCREEN = {"width": 1440, "height": 900}
STALE_AFTER_S = 3
AREA_ABOVE = 100


@pytest.fixture(scope="module")
def site(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose drivers go stale after 3 s, and whose page asks for its map area above 100 drivers."""
    env = server_env(
        redis_target,
        tmp_path_factory.mktemp("dispatch-page"),
        LIVEMAP_STALE_AFTER_S=str(STALE_AFTER_S),
        LIVEMAP_WATCHDOG_INTERVAL_S="0.5",
        LIVEMAP_DISPATCH_VIEWPORT_DRIVERS=str(AREA_ABOVE),
    )
    srv = Server(env, "dispatch-page")
    yield srv
    srv.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=wait(20)) as client:
        yield client


async def open_signin(browser: Browser, server: Server) -> Page:
    page = await browser.new_page(viewport=SCREEN, locale="en-US")
    # Offline from everything but our server: map tiles are refused, the page must work without them.
    await page.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    await page.goto(f"{server.url}/dispatch")
    return page


async def signed_in(browser: Browser, server: Server, key: str) -> Page:
    page = await open_signin(browser, server)
    await page.fill("#dp-key", key)
    await page.click("#dp-key-form button")
    await page.wait_for_selector("#dp-conn[data-state=live]", timeout=wait(10) * 1000)
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dispatch-{name}.png"))


# Drivers the map shows: single markers plus the counts on driver clusters.
_ON_MAP = """document.querySelectorAll('.dp-drv').length +
  [...document.querySelectorAll('.dp-cluster-drv')].reduce((n, c) => n + Number(c.textContent), 0)"""


async def wait_for_drivers_on_map(page: Page, n: int, timeout: float = 10) -> None:
    await page.wait_for_function(f"() => ({_ON_MAP}) === {n}", timeout=wait(timeout) * 1000)


async def position(page: Page, selector: str) -> dict[str, float] | None:
    box = await page.evaluate(
        "(sel) => { const e = document.querySelector(sel); if (!e) return null;"
        " const r = e.getBoundingClientRect(); return {x: r.x, y: r.y}; }",
        selector,
    )
    return box  # type: ignore[no-any-return]


async def marker_state(page: Page, selector: str) -> str | None:
    """The state class (`ontime`, `risk`, `late`, `stale`, `idle`) of the marker holding `selector`."""
    cls = await page.evaluate(
        "(sel) => { const e = document.querySelector(sel); return e ? e.parentElement.className : null; }", selector
    )
    match = re.search(r"dp-s-(\w+)", cls or "")
    return match.group(1) if match else None


async def wait_for_state(page: Page, selector: str, state: str, timeout: float) -> None:
    await page.wait_for_function(
        "([sel, cls]) => { const e = document.querySelector(sel);"
        " return !!e && e.parentElement.classList.contains(cls); }",
        arg=[selector, f"dp-s-{state}"],
        timeout=wait(timeout) * 1000,
    )


@contextlib.asynccontextmanager
async def simulator(server: Server, drivers: int) -> AsyncIterator[str]:
    """`python -m simulator run` against `server` (its own demo store); yields the store key it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")} | {"LIVEMAP_ADMIN_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "run", "--url", server.url, "--drivers", str(drivers),
        "--speedup", "4", "--seed", "11", cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    rest: asyncio.Task[bytes] | None = None
    try:
        key = await asyncio.wait_for(_printed_key(proc.stdout), wait(60))
        rest = asyncio.create_task(proc.stdout.read())  # keep its pipe from filling up
        yield key
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), wait(15))
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if rest is not None:
            await rest


async def _printed_key(out: asyncio.StreamReader) -> str:
    while line := (await out.readline()).decode():
        if match := re.search(r"Dispatcher:\s+\S+/dispatch\s+\(store key: (\S+)\)", line):
            return match.group(1)
    raise AssertionError("the simulator exited without printing the dispatcher link")


async def test_sign_in_and_the_simulators_drivers_appear_and_move(browser: Browser, site: Server) -> None:
    """A wrong key is refused; the right one opens the map, where the simulator's drivers appear and move."""
    async with simulator(site, 4) as key:
        page = await open_signin(browser, site)
        await shot(page, "signin")
        await page.fill("#dp-key", "lmk_not-the-key")
        await page.click("#dp-key-form button")
        assert "not right" in await page.inner_text(".dp-error")
        assert await page.query_selector("#dp-config") is None
        assert not [c for c in await page.context.cookies() if c["name"] == "lm_dispatch"]
        await page.fill("#dp-key", key)
        await page.click("#dp-key-form button")
        await page.wait_for_selector("#dp-conn[data-state=live]", timeout=wait(10) * 1000)
        (cookie,) = [c for c in await page.context.cookies() if c["name"] == "lm_dispatch"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in page.url
        await page.wait_for_function(
            "() => document.querySelectorAll('#dp-drivers .dp-st-online').length === 4", timeout=wait(15) * 1000
        )
        await wait_for_drivers_on_map(page, 4)
        # A shipped order's driver is on the road: focusing it zooms in past clustering, then watch it move.
        row = page.locator("#dp-orders tbody tr", has_text="Shipped").first
        await row.wait_for(timeout=wait(20) * 1000)
        # Locations carry no ETA: the socket's refresh brings the live orders' ETAs to the list.
        await page.wait_for_function(
            "() => [...document.querySelectorAll('#dp-orders .dp-eta')].some(td => /^\\d/.test(td.textContent))",
            timeout=wait(15) * 1000,
        )
        await shot(page, "dashboard")
        driver_name = (await row.locator("td").nth(4).inner_text()).strip()
        await row.click()
        await page.wait_for_selector("#dp-detail:not([hidden])")
        assert driver_name in await page.inner_text("#dp-detail-sub")
        # Past the clustering zoom the driver's own marker shows (once the zoom animation is over).
        found = await page.wait_for_function(
            "(name) => [...document.querySelectorAll('.dp-drv')].find(e => e.title === name)"
            "?.firstElementChild.dataset.driver",
            arg=driver_name,
            timeout=wait(5) * 1000,
        )
        did = await found.json_value()
        marker = f'.dp-drv [data-driver="{did}"]'
        before = await position(page, marker)
        await page.wait_for_function(
            "([sel, x, y]) => { const e = document.querySelector(sel); if (!e) return false;"
            " const r = e.getBoundingClientRect(); return Math.abs(r.x - x) + Math.abs(r.y - y) > 4; }",
            arg=[marker, before["x"], before["y"]] if before else [marker, 0, 0],
            timeout=wait(15) * 1000,
        )
        await shot(page, "focus")
        await page.close()


async def test_a_late_order_turns_the_late_colour(browser: Browser, site: Server, http: httpx.AsyncClient) -> None:
    """An order promised a few seconds from now is at risk, then late once the promise passes: marker and row."""
    shop = await new_shop(http, site)
    await shop.driver("late-driver")
    promised = now_ms() + int(wait(10) * 1000)
    await shop.order("L1", promised_by=promised)
    await shop.post("/api/orders/L1/assign", {"driver_id": "late-driver"})
    await shop.stage("L1", "shipped")
    driver = await driver_socket(site, shop.drivers["late-driver"])
    near = along(0.97)

    async def ping() -> None:
        while True:
            await driver.send({"lat": near[0], "lon": near[1], "ts": now_ms(), "speed": 6.0, "battery": 64})
            await driver.recv_type("ack")
            await asyncio.sleep(1)

    pings = asyncio.create_task(ping())
    try:
        page = await signed_in(browser, site, shop.key)
        order_marker = '.dp-dest [data-order="L1"]'
        await page.wait_for_selector(order_marker, state="attached", timeout=wait(10) * 1000)
        assert await marker_state(page, order_marker) == "risk"  # promised within minutes
        assert now_ms() < promised
        await wait_for_state(page, order_marker, "late", 25)
        assert now_ms() > promised
        await wait_for_state(page, '.dp-drv [data-driver="late-driver"]', "late", 5)
        assert "dp-s-late" in (await page.get_attribute('#dp-orders tr[data-order="L1"]', "class") or "")
        await page.check("#dp-late-only")
        assert await page.locator("#dp-orders tbody tr[data-order]").count() == 1
        await shot(page, "late")
        await page.close()
    finally:
        pings.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pings
        await driver.close()


async def test_bulk_stage_change_reaches_each_customer(browser: Browser, site: Server, http: httpx.AsyncClient) -> None:
    """Three orders selected and moved to Shipped in one action: each customer's socket gets its stage event."""
    shop = await new_shop(http, site)
    customers: list[Socket] = []
    for n in (1, 2, 3):
        await shop.driver(f"bd{n}")
        order = await shop.order(f"B{n}", promised_by=now_ms() + 3_600_000)
        await shop.post(f"/api/orders/B{n}/assign", {"driver_id": f"bd{n}"})
        await shop.stage(f"B{n}", "processing")
        customers.append(await customer_socket(site, order))
        await customers[-1].recv_type("snapshot")
    await shop.order("B4")  # not assigned: not on the dashboard
    page = await signed_in(browser, site, shop.key)
    await page.wait_for_selector('#dp-orders tr[data-order="B3"]', timeout=wait(10) * 1000)
    assert await page.locator("#dp-orders tbody tr[data-order]").count() == 3
    for n in (1, 2, 3):
        await page.check(f'#dp-orders tr[data-order="B{n}"] .dp-pick')
    assert await page.inner_text("#dp-bulk-count") == "3 selected"
    await page.select_option("#dp-bulk-stage", "shipped")
    await shot(page, "bulk")
    await page.click("#dp-bulk-apply")
    for n, customer in enumerate(customers, start=1):
        event = await customer.recv_type("stage", timeout=10)
        assert event["stage"] == "shipped" and event["live"] is True, (n, event)
        await customer.close()
    await page.wait_for_function(
        "() => document.getElementById('dp-bulk-result').textContent.startsWith('3 moved to Shipped')",
        timeout=wait(5) * 1000,
    )
    for n in (1, 2, 3):
        assert (await shop.get(f"/api/orders/B{n}")).json()["stage"] == "shipped"
    await page.close()


async def test_reorder_stops_and_reassign_from_the_detail_card(
    browser: Browser, site: Server, http: httpx.AsyncClient
) -> None:
    """The card of a focused order re-orders its driver's stops and reassigns it, through the store's API."""
    shop = await new_shop(http, site)
    await shop.live_order("R1", "rx")
    await shop.order("R2")
    await shop.post("/api/orders/R2/assign", {"driver_id": "rx"})
    await shop.driver("ry")
    page = await signed_in(browser, site, shop.key)
    await page.click('#dp-orders tr[data-order="R2"]')
    await page.wait_for_selector('#dp-stops li[data-stop="R2"]')
    assert await page.inner_text("#dp-stops-h") == "Stops of Driver rx"
    await page.click('#dp-stops li[data-stop="R2"] button[data-move="-1"]')
    await page.click("#dp-stops-save")
    await page.wait_for_selector("#dp-detail-result >> text=Stop order saved.")
    stops = (await shop.get("/api/drivers/rx/stops")).json()["stops"]
    assert [s["order_id"] for s in stops] == ["R2", "R1"]
    await page.select_option("#dp-assign-to", "ry")
    await page.click("#dp-assign-form button")
    await page.wait_for_selector("#dp-detail-result >> text=Assigned to Driver ry.")
    assert (await shop.get("/api/orders/R2")).json()["driver_id"] == "ry"
    await page.wait_for_selector('#dp-orders tr[data-order="R2"] >> text=Driver ry')
    await page.close()


async def test_a_silent_driver_shows_stale(browser: Browser, site: Server, http: httpx.AsyncClient) -> None:
    """A driver that stops sending fixes is marked stale in the driver panel and greyed on the map."""
    shop = await new_shop(http, site)
    await shop.live_order("S1", "quiet")
    page = await signed_in(browser, site, shop.key)
    # The fix only once the page is up: a slow sign-in (a busy machine) must not eat the 3 s of "online".
    driver = await driver_socket(site, shop.drivers["quiet"])
    await driver.send(fix(0.5, now_ms(), battery=41))
    await driver.recv_type("ack")
    row = '#dp-drivers tr[data-driver="quiet"]'
    await page.wait_for_selector(f"{row} .dp-st-online", timeout=wait(5) * 1000)
    assert "41%" in await page.inner_text(row)
    await page.wait_for_selector(f"{row} .dp-st-stale", timeout=wait(STALE_AFTER_S + 5) * 1000)
    assert await marker_state(page, '.dp-drv [data-driver="quiet"]') == "stale"
    assert "1" in await page.inner_text("#dp-counts .dp-t-stale")
    await shot(page, "stale")
    await driver.close()
    await page.close()


async def test_another_stores_orders_never_appear(browser: Browser, site: Server, http: httpx.AsyncClient) -> None:
    """Signed in as store A, nothing of store B shows: not its orders, drivers, markers or moves."""
    a, b = await new_shop(http, site), await new_shop(http, site)
    await a.live_order("A1", "a-driver")
    await b.live_order("B-SECRET", "b-driver")
    await b.driver("b-idle")
    page = await signed_in(browser, site, a.key)
    await page.wait_for_selector('#dp-orders tr[data-order="A1"]', timeout=wait(10) * 1000)
    b_driver = await driver_socket(site, b.drivers["b-driver"])
    for i in range(3):
        await b_driver.send(fix(0.2 + i * 0.1, now_ms()))
        await b_driver.recv_type("ack")
        await asyncio.sleep(1)
    await b.stage("B-SECRET", "delivered")
    await page.wait_for_timeout(1500)
    html = await page.content()
    assert "B-SECRET" not in html and "b-driver" not in html and "b-idle" not in html
    assert await page.locator("#dp-orders tbody tr[data-order]").count() == 1
    await wait_for_drivers_on_map(page, 0)  # A's own driver has sent nothing yet
    await b_driver.close()
    await page.close()


async def test_many_drivers_cluster_and_the_page_asks_for_its_area(
    browser: Browser, site: Server, http: httpx.AsyncClient
) -> None:
    """120 drivers across a city: zoomed out they are clusters adding up to every driver; being over 100, the page
    asks its socket for the map's area only, so zoomed in on a corner it holds only the drivers there."""
    shop = await new_shop(http, site)
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            token = await shop.driver(f"c{i:03d}")
            sock = await driver_socket(site, token)
            lat, lon = DEST[0] + (i // 12 - 5) * 0.004, DEST[1] + (i % 12 - 6) * 0.004
            await sock.send({"lat": lat, "lon": lon, "ts": now_ms(), "battery": 90})
            await sock.recv_type("ack")
            await sock.close()

    await asyncio.gather(*(one(i) for i in range(120)))
    page = await signed_in(browser, site, shop.key)
    rows = "document.querySelectorAll('#dp-drivers tbody tr').length"
    await page.wait_for_function(f"() => {rows} === 120")
    await page.wait_for_selector("#dp-area-note", state="visible")
    map_js = "window[JSON.parse(document.getElementById('dp-config').textContent).map]"
    await page.evaluate(f"{map_js}.setZoom(13)")
    await page.wait_for_selector(".dp-cluster-drv", timeout=wait(5) * 1000)
    await wait_for_drivers_on_map(page, 120)
    await shot(page, "clusters")
    corner = (DEST[0] - 5 * 0.004, DEST[1] - 6 * 0.004)  # driver c000
    await page.evaluate(f"{map_js}.setView([{corner[0]}, {corner[1]}], 17)")
    await page.wait_for_function(f"() => {rows} < 20", timeout=wait(5) * 1000)
    shown = await page.evaluate("[...document.querySelectorAll('#dp-drivers tbody tr')].map(r => r.dataset.driver)")
    assert "c000" in shown and "c119" not in shown
    await page.evaluate(f"{map_js}.setZoom(13)")  # out again: the whole fleet is back
    await page.wait_for_function(f"() => {rows} === 120", timeout=wait(5) * 1000)
    await page.close()
