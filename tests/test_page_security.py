"""Pages against hostile store strings (stored XSS) and under their Content-Security-Policy, in real Chromium."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conftest import (
    ARTIFACTS,
    PHONE,
    Server,
    Shop,
    driver_socket,
    fix,
    now_ms,
    png,
    skip_without_chromium,
    wait,
)

pytestmark = pytest.mark.browser
skip_without_chromium()

from playwright.async_api import Browser, Dialog, Page  # noqa: E402 - only with a browser present

NAME = "</title><script>alert(document.domain)</script><title>"
LABEL = "<img src=x onerror=alert(1)>Packed"
ADDRESS = '"><svg onload=alert(2)>1 Main St'
CARRIER = "</script><script>alert(3)</script>"
CUSTOMER = "<b onmouseover=alert(4)>Ana</b>"
ATTRIBUTION = '<img src=x onerror=alert(5)><a href="https://tiles.example/about">Tiles</a>'
# Template code: shown as typed, never run by the server (7 * 191 would print 1337).
JINJA = "{{ 7 * 191 }}{% if true %}jinja-ran{% endif %}"
# Caught as they happen, before any page script runs: CSP refusals and dialogs a payload would open.
_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


class Watched:
    """A page with everything that must not happen collected: dialogs, CSP refusals, uncaught errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []

    async def violations(self) -> list[str]:
        return [*await self.page.evaluate("window.__violations"), *self.console]

    async def assert_clean(self) -> None:
        assert self.dialogs == [] and self.errors == [] and await self.violations() == []


async def watched_page(browser: Browser, viewport: dict[str, int] | None = None) -> Watched:
    page = await browser.new_page(viewport=viewport or {"width": 1280, "height": 800}, locale="en-US")
    w = Watched(page)

    async def on_dialog(dialog: Dialog) -> None:
        w.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: w.errors.append(str(exc)))
    page.on("console", lambda msg: w.console.append(msg.text) if "Content Security Policy" in msg.text else None)
    await page.add_init_script(_WATCH)
    # Offline from everything but this machine (our server; the test's tile server, also as localhost).
    local = ("//127.0.0.1:", "//localhost:")
    await page.route(
        "**/*", lambda route: route.continue_() if any(h in route.request.url for h in local) else route.abort()
    )
    return w


def csp_of(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy header as directive -> value."""
    header = response.headers.get("content-security-policy", "")
    directives = (d.strip().split(" ", 1) for d in header.split(";") if d.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def assert_secure_page(response: httpx.Response, referrer: str = "no-referrer") -> str:
    """The page's security headers are there; every executable script carries this response's nonce. Returns it."""
    assert response.headers["content-type"].startswith("text/html")
    csp = csp_of(response)
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{22,})'", csp["script-src"])
    assert nonce, csp
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "'self'" in csp["connect-src"] and "'self'" in csp["img-src"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == referrer
    tags = re.findall(r"<script\b[^>]*>", response.text)
    assert tags
    for tag in tags:
        assert f'nonce="{nonce.group(1)}"' in tag or 'type="application/json"' in tag, tag
    return nonce.group(1)


async def set_store(shop: Shop, settings: dict[str, Any]) -> None:
    r = await shop.http.patch(f"{shop.server.url}/api/store", headers=shop.auth, json=settings)
    assert r.status_code == 200, r.text


async def hostile_order(shop: Shop, oid: str) -> dict[str, Any]:
    """A shipped order whose store name, custom stage label, address, carrier and customer are script payloads."""
    await set_store(
        shop,
        {
            "name": NAME,
            "stages": {"custom": [{"id": "packed", "after": "processing", "labels": {"en": LABEL}}]},
            "branding": {"tile_attribution": ATTRIBUTION},
        },
    )
    await shop.driver(oid.lower())
    order = await shop.order(
        oid, address=ADDRESS, carrier=CARRIER, tracking_number=CARRIER, customer={"name": CUSTOMER, "email": "a@b.co"}
    )
    assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": oid.lower()})).status_code == 200
    assert (await shop.stage(oid, "packed")).status_code == 200
    assert (await shop.stage(oid, "shipped")).status_code == 200
    return order


async def sign_in(w: Watched, server: Server, key: str) -> None:
    await w.page.goto(f"{server.url}/dispatch")
    await w.page.fill("#dp-key", key)
    await w.page.click("#dp-key-form button")
    await w.page.wait_for_selector("#dp-conn[data-state=live]", timeout=wait(10) * 1000)


async def test_hostile_store_strings_are_shown_as_text(browser: Browser, shop: Shop, server: Server) -> None:
    """Script in a store's name, stage label, tile credit and order fields runs nowhere and reads back as text."""
    order = await hostile_order(shop, "X1")
    w = await watched_page(browser, PHONE)
    await w.page.goto(order["tracking_url"])
    await w.page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    assert w.dialogs == []
    assert await w.page.evaluate("document.title") == f"Track your order · {NAME}"
    assert await w.page.inner_text(".lm-store") == NAME
    assert LABEL in await w.page.inner_text("#lm-timeline")
    details = await w.page.inner_text("#lm-details")
    assert ADDRESS in details and CARRIER in details
    # The tile credit keeps its link, loses the rest of the markup.
    assert await w.page.get_attribute(".leaflet-control-attribution a[href^='https://tiles']", "href") == (
        "https://tiles.example/about"
    )
    assert await w.page.evaluate("document.querySelectorAll('img[src=x], svg[onload], b[onmouseover]').length") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await w.page.screenshot(path=str(ARTIFACTS / "xss-track-phone.png"))
    await w.assert_clean()
    await w.page.close()
    r = await shop.http.get(order["tracking_url"])
    assert_secure_page(r)
    assert "<script>alert" not in r.text and "<svg" not in r.text

    w = await watched_page(browser)
    await sign_in(w, server, shop.key)
    assert w.dialogs == []
    assert await w.page.evaluate("document.title") == f"Dispatch · {NAME}"
    assert (await w.page.inner_text(".dp-title")).startswith(NAME)
    row = w.page.locator("#dp-orders tbody tr", has_text="X1")
    await row.wait_for(timeout=wait(10) * 1000)
    assert CUSTOMER in await row.inner_text()
    await row.click()
    await w.page.wait_for_selector("#dp-detail:not([hidden])")
    assert ADDRESS in await w.page.inner_text("#dp-detail-sub")
    options = "[...document.querySelectorAll('#dp-bulk-stage option')].map(o => o.textContent)"
    assert LABEL in await w.page.evaluate(options)
    assert await w.page.evaluate("document.querySelectorAll('img[src=x], svg[onload], b[onmouseover]').length") == 0
    await w.assert_clean()
    await w.page.close()


async def test_every_html_page_sends_a_nonce_csp(shop: Shop, server: Server) -> None:
    """Tracking page, its error page, the lookup form, dispatch sign-in and dashboard, the driver app: same headers."""
    order = await shop.order("H1")
    http = shop.http
    signed = await http.post(f"{server.url}/dispatch", data={"key": shop.key})
    assert signed.status_code == 303
    pages = [
        await http.get(order["tracking_url"]),
        await http.get(f"{server.url}/track/{order['tracking_id']}?t=wrong"),
        await http.get(f"{server.url}/track?store={shop.id}"),
        await http.post(f"{server.url}/track?store={shop.id}", data={"number": "nope", "contact": "a@b.co"}),
        await http.get(f"{server.url}/driver"),
        await http.get(f"{server.url}/dispatch"),  # the client keeps the session cookie: the dashboard
    ]
    assert "dp-config" in pages[-1].text
    nonces = [assert_secure_page(p) for p in pages]
    # The sign-in form's post is checked for our Origin, which no-referrer would send as "null".
    http.cookies.clear()
    signin = await http.get(f"{server.url}/dispatch")
    assert "dp-key-form" in signin.text
    nonces.append(assert_secure_page(signin, referrer="same-origin"))
    assert len(set(nonces)) == len(nonces)  # a fresh nonce per response


async def test_template_code_in_any_string_is_text(shop: Shop, server: Server) -> None:
    """`{{ }}` and `{% %}` in a store's name, an order's fields, a typed order number or a URL's query stay text.

    Our markup is rendered once and added to the folium page as it is: were it read as a template
    again, anyone who can put text in a page (a store, a customer, a sign-in link) would run code.
    """
    await set_store(shop, {"name": JINJA})
    order = await shop.order("J1", address=JINJA, customer={"name": JINJA, "email": "j@b.co"})
    http = shop.http
    signed = await http.post(f"{server.url}/dispatch", data={"key": shop.key})
    assert signed.status_code == 303
    pages = [
        await http.get(order["tracking_url"]),
        await http.post(f"{server.url}/track?store={shop.id}", data={"number": JINJA, "contact": "j@b.co"}),
        await http.get(f"{server.url}/dispatch"),
    ]
    http.cookies.clear()
    pages.append(await http.get(f"{server.url}/dispatch", params={"store": JINJA}))
    for page in pages:
        assert page.status_code == 200 and JINJA in page.text, page.text
        assert "1337" not in page.text and "jinja-ran" not in page.text.replace(JINJA, "")


@pytest.fixture
def tiles() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A tile server on another origin (127.0.0.1, another port): its URL template and each request's headers."""
    seen: list[dict[str, str]] = []
    body = png(256, 256, (170, 210, 230))

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "referer": self.headers.get("Referer", "")})
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{{z}}/{{x}}/{{y}}.png", seen
    httpd.shutdown()
    httpd.server_close()


async def test_tracking_page_works_under_its_policy(
    browser: Browser, shop: Shop, server: Server, tiles: tuple[str, list[dict[str, str]]]
) -> None:
    """Map, tiles and logo from other origins, live location, lookup form: no CSP refusal, and no token to the tiles."""
    tile_url, seen = tiles
    # The logo from a third origin (localhost is not 127.0.0.1 to a browser): the policy names both.
    logo = tile_url.replace("127.0.0.1", "localhost").replace("{z}/{x}/{y}", "logo")
    await set_store(shop, {"branding": {"tile_url": tile_url, "tile_attribution": "Test tiles", "logo_url": logo}})
    await shop.driver("t1")
    order = await shop.order("T1")
    await shop.post("/api/orders/T1/assign", {"driver_id": "t1"})
    await shop.stage("T1", "shipped")
    w = await watched_page(browser, PHONE)
    await w.page.goto(order["tracking_url"])
    await w.page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    driver = await driver_socket(server, shop.drivers["t1"])
    await driver.send(fix(0.5, now_ms(), 1))
    await driver.recv_type("ack")
    await w.page.wait_for_selector(".lm-driver", timeout=wait(5) * 1000)
    assert (await w.page.inner_text("#lm-eta")).startswith("Arriving in ")
    await w.page.wait_for_function(
        "() => [...document.querySelectorAll('img.leaflet-tile')].some(i => i.complete && i.naturalWidth === 256)",
        timeout=wait(10) * 1000,
    )
    await w.page.wait_for_function("() => document.querySelector('.lm-logo').naturalWidth > 0", timeout=wait(5) * 1000)
    tile_requests = [s for s in seen if s["path"] != "/logo.png"]
    assert tile_requests
    # The tile server learns which site asked (OSM's policy wants a Referer), never the page's path or token;
    # anything else (the logo) gets no Referer at all.
    assert {s["referer"] for s in tile_requests} == {server.url + "/"}
    assert {s["referer"] for s in seen if s["path"] == "/logo.png"} == {""}
    await driver.close()
    # "Track another order": the lookup form, then the order's page again.
    await w.page.click("text=Track another order")
    await w.page.fill("#number", "T1")
    await w.page.fill("#contact", "ana@example.com")
    await w.page.click("button[type=submit]")
    await w.page.wait_for_selector("#lm-number >> text=Order T1", timeout=wait(10) * 1000)
    await w.assert_clean()
    await w.page.close()


async def test_dispatch_and_driver_pages_work_under_their_policy(browser: Browser, shop: Shop, server: Server) -> None:
    """The dispatcher signs in, sees a live driver and uses the detail card; the driver app signs in: no CSP refusal."""
    await shop.driver("d1")
    await shop.order("D1")
    await shop.post("/api/orders/D1/assign", {"driver_id": "d1"})
    await shop.stage("D1", "shipped")
    w = await watched_page(browser)
    await sign_in(w, server, shop.key)
    driver = await driver_socket(server, shop.drivers["d1"])
    await driver.send(fix(0.3, now_ms(), 1))
    await driver.recv_type("ack")
    await w.page.wait_for_selector(".dp-drv, .dp-cluster-drv", timeout=wait(10) * 1000)
    await w.page.locator("#dp-orders tbody tr", has_text="D1").click()
    await w.page.wait_for_selector("#dp-detail:not([hidden])")
    await w.page.click("#dp-detail-close")
    await w.page.wait_for_selector("#dp-detail", state="hidden")
    await driver.close()
    await w.assert_clean()
    await w.page.close()

    w = await watched_page(browser, PHONE)
    await w.page.goto(f"{server.url}/driver")
    await w.page.fill("#dr-token", shop.drivers["d1"])
    await w.page.click("#dr-signin button[type=submit]")
    await w.page.wait_for_selector('.dr-stop[data-stage="shipped"]', timeout=wait(10) * 1000)
    await w.page.wait_for_function(
        "() => document.getElementById('dr-conn').dataset.state === 'online'", timeout=wait(10) * 1000
    )
    await w.assert_clean()
    await w.page.close()
