"""The tracking widget on a store's own site: `/embed.js` frames the lookup form and then the order's
tracking page on an origin the store allowed, sized to its content; on any other origin the browser
refuses to show them (CSP frame-ancestors)."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Frame, Page

from conftest import ARTIFACTS, DESKTOP, PHONE, Shop, skip_without_chromium, wait

skip_without_chromium()


class _Site:
    """A store's web site on an origin of its own (a port of 127.0.0.1), serving one page."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[_Site, _Site]]:
    allowed, other = _Site(tmp_path), _Site(tmp_path)
    yield allowed, other
    for site in (allowed, other):
        site.httpd.shutdown()
        site.httpd.server_close()


def _shop_page(root: Path, shop: Shop) -> None:
    (root / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Loja Exemplo</title></head>
<body style="font-family:sans-serif;margin:0;background:#faf7f2">
<header style="background:#5b3a29;color:#fff;padding:1rem">
<b>Loja Exemplo</b> &middot; Início &middot; Produtos &middot; Rastrear pedido</header>
<main style="padding:1rem"><h2>Rastreie seu pedido</h2>
<script src="{shop.server.url}/embed.js" data-store="{shop.id}" data-lang="pt-BR" async></script>
<p>Dúvidas? Fale com a gente.</p></main></body></html>""")


async def _widget(page: Page) -> Frame | None:
    """The widget's frame once it shows our lookup form, or None when the browser would not show it."""
    await page.wait_for_selector("iframe.livemap-widget")
    for _ in range(int(wait(5) * 10)):
        frame = next((f for f in page.frames if f.parent_frame is not None), None)
        if frame is not None and await frame.query_selector("#number"):
            return frame
        await asyncio.sleep(0.1)
    return None


async def test_the_widget_shows_on_an_allowed_site_and_nowhere_else(
    browser: Browser, shop: Shop, sites: tuple[_Site, _Site], tmp_path: Path
) -> None:
    allowed, other = sites
    r = await shop.http.patch(shop.server.url + "/api/store", json={"embed": {"origins": [allowed.origin]}},
                              headers=shop.auth)  # fmt: skip
    assert r.status_code == 200, r.text
    order = await shop.order("5001", customer={"name": "Ana", "email": "ana@example.com"})
    _shop_page(tmp_path, shop)
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await browser.new_page(viewport=viewport)
        await page.goto(allowed.origin + "/index.html")
        frame = await _widget(page)
        assert frame is not None, "the allowed site shows the form"
        await page.wait_for_function("document.querySelector('iframe').style.height !== '420px'",
                                     timeout=wait(5) * 1000)  # fmt: skip
        await frame.fill("#number", "5001")
        await frame.fill("#contact", "ana@example.com")
        await frame.click("button[type=submit]")
        await frame.wait_for_url(f"**/track/{order['tracking_id']}?**", timeout=wait(10) * 1000)
        await frame.wait_for_selector("#lm-conn", timeout=wait(10) * 1000)
        assert "embed=1" in frame.url and "lang=pt-BR" in frame.url
        assert "Pedido recebido" in await frame.inner_text("body"), "the site's language carries on"
        await page.wait_for_function("document.querySelector('iframe').style.height === '640px'",
                                     timeout=wait(5) * 1000)  # fmt: skip
        await asyncio.sleep(0.5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"embed-{name}.png"), full_page=True)
        await page.close()
    page = await browser.new_page(viewport=DESKTOP)
    await page.goto(other.origin + "/index.html")
    assert await _widget(page) is None, "another site's frame stays empty"
    await page.close()


async def test_only_widget_pages_of_a_store_that_listed_origins_may_be_framed(
    shop: Shop, http: httpx.AsyncClient
) -> None:
    url = shop.server.url
    r = await http.patch(url + "/api/store", json={"embed": {"origins": ["https://shop.example"]}}, headers=shop.auth)
    assert r.status_code == 200
    order = await shop.order("5002")

    async def ancestors(path: str) -> str:
        policy = (await http.get(url + path)).headers["content-security-policy"]
        return next(d for d in policy.split("; ") if d.startswith("frame-ancestors"))

    assert await ancestors(f"/track?store={shop.id}&embed=1") == "frame-ancestors https://shop.example"
    assert await ancestors(f"/track/{order['tracking_id']}?t={order['tracking_token']}&embed=1") == (
        "frame-ancestors https://shop.example")  # fmt: skip
    assert await ancestors(f"/track?store={shop.id}") == "frame-ancestors 'none'", "outside the widget: never"
    assert await ancestors("/track?store=st_unknown&embed=1") == "frame-ancestors 'none'"
    for bad in ("https://shop.example/path", "javascript:alert(1)", "https://a.example; script-src *", "HTTPS://X.EX"):
        r = await http.patch(url + "/api/store", json={"embed": {"origins": [bad]}}, headers=shop.auth)
        assert r.status_code == 422, bad
    script = await http.get(url + "/embed.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
