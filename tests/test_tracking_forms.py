"""The tracking page after delivery (rating, returns) and before it (update opt-ins), in real Chromium.

Also each template's readability: WCAG contrast of every piece of text as Chromium renders it, and
screenshots at phone and desktop sizes in tests/artifacts/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Server,
    Shop,
    driver_socket,
    fix,
    now_ms,
    open_page,
    skip_without_chromium,
    wait,
)

pytestmark = pytest.mark.browser
skip_without_chromium()

from playwright.async_api import Browser, Page  # noqa: E402 - only with a browser present

NARROW = {"width": 360, "height": 740}  # the smallest phones still in use
RETURNS = "https://shop.example/returns"
CONTACT = {"name": "Ana", "email": "ana@example.com", "phone": "+595 981 123456"}


async def live_page(browser: Browser, url: str, viewport: dict[str, int], **kw: Any) -> Page:
    page = await open_page(browser, url, viewport, **kw)
    await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    return page


async def set_store(shop: Shop, server: Server, patch: dict[str, Any]) -> None:
    r = await shop.http.patch(f"{server.url}/api/store", headers=shop.auth, json=patch)
    assert r.status_code == 200, r.text


async def delivered_order(shop: Shop, oid: str, **extra: Any) -> dict[str, Any]:
    order = await shop.order(oid, **extra)
    assert (await shop.stage(oid, "delivered")).status_code == 200
    return order


async def fits(page: Page) -> bool:
    """Nothing sticks out sideways: no horizontal scrolling at this width."""
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def test_rating_form_submits_shows_thanks_and_can_change(browser: Browser, server: Server, shop: Shop) -> None:
    """At 360 px: pick 4 stars + comment, send: "Thanks! You rated 4/5", stored; after a reload too; change to 2."""
    order = await delivered_order(shop, "R1")
    page = await live_page(browser, order["tracking_url"], NARROW, locale="en-US")
    assert await page.is_visible("#lm-rate") and not await page.is_visible("#lm-thanks")
    assert await fits(page)
    # Semantics: the stars are radios in a fieldset with a legend; every control has a label; buttons are buttons.
    assert await page.inner_text("#lm-rate fieldset legend") == "Your rating"
    assert await page.evaluate("document.querySelectorAll('#lm-rate fieldset input[type=radio]').length") == 5
    assert await page.evaluate("[...document.querySelectorAll('input, textarea')].every((c) => c.labels.length)")
    assert await page.get_by_role("radio", name="4 of 5 stars", exact=True).count() == 1  # what a reader says
    await page.click("#lm-rate button[type=submit]")  # no star chosen: the browser refuses, nothing is sent
    assert await page.evaluate("document.getElementById('lm-star-1').validity.valueMissing")
    assert (await shop.get("/api/orders/R1")).json()["feedback"] is None
    await page.click("label[for=lm-star-4]")
    assert await page.eval_on_selector_all(".lm-stars label.lm-lit", "ls => ls.length") == 4
    await page.fill("#lm-comment", "Left it with the neighbour, as asked")
    await page.click("text=Send rating")
    await page.wait_for_selector("#lm-thanks >> text=Thanks! You rated 4/5.", timeout=wait(5) * 1000)
    assert not await page.is_visible("#lm-rate")
    assert await page.evaluate("document.activeElement.id") == "lm-rerate"  # focus not lost with the form
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "track-rated-narrow.png"))
    stored = (await shop.get("/api/orders/R1")).json()["feedback"]
    assert stored["rating"] == 4 and stored["comment"] == "Left it with the neighbour, as asked"
    await page.reload()
    await page.wait_for_selector("#lm-thanks >> text=Thanks! You rated 4/5.", timeout=wait(5) * 1000)
    await page.click("text=Change rating")
    assert await page.is_checked("#lm-star-4")
    assert await page.input_value("#lm-comment") == "Left it with the neighbour, as asked"
    await page.click("label[for=lm-star-2]")
    await page.click("text=Send rating")
    await page.wait_for_selector("#lm-thanks >> text=Thanks! You rated 2/5.", timeout=wait(5) * 1000)
    assert (await shop.get("/api/orders/R1")).json()["feedback"]["rating"] == 2
    await page.close()


async def test_rating_form_speaks_the_customers_language(browser: Browser, server: Server, shop: Shop) -> None:
    """The form and the thanks come in Spanish and Brazilian Portuguese too."""
    await set_store(shop, server, {"returns_url": RETURNS})
    for lang, legend, send, ret, thanks in (
        ("es", "Tu calificación", "Enviar calificación", "Iniciar una devolución", "¡Gracias! Calificaste 5/5."),
        ("pt-BR", "Sua avaliação", "Enviar avaliação", "Solicitar devolução", "Obrigado! Você deu nota 5/5."),
    ):
        order = await delivered_order(shop, f"R2-{lang}")
        page = await live_page(browser, f"{order['tracking_url']}&lang={lang}", PHONE)
        assert await page.inner_text("#lm-rate legend") == legend
        assert await page.inner_text("#lm-return a") == ret
        await page.click("label[for=lm-star-5]")
        await page.click(f"text={send}")
        await page.wait_for_selector(f"#lm-thanks >> text={thanks}", timeout=wait(5) * 1000)
        await page.close()


async def test_returns_link_only_with_a_returns_url_and_only_after_delivery(
    browser: Browser, server: Server, shop: Shop
) -> None:
    """No returns_url: no link (livemap's own returns form instead, after delivery). With one: the link, hidden
    while shipping, shown (with the rating) the moment it is delivered, and no form."""
    order = await shop.live_order("R3", "r3")
    page = await live_page(browser, order["tracking_url"], PHONE, locale="en-US")
    assert await page.query_selector("#lm-return") is None and await page.is_hidden("#lm-returns")
    await page.close()
    await set_store(shop, server, {"returns_url": RETURNS})
    page = await live_page(browser, order["tracking_url"], PHONE, locale="en-US")
    assert not await page.is_visible("#lm-return") and not await page.is_visible("#lm-feedback")
    assert await page.is_visible("#lm-updates")
    await shop.stage("R3", "delivered")  # while the page is open
    await page.wait_for_selector("#lm-return a", state="visible", timeout=wait(5) * 1000)
    assert await page.get_attribute("#lm-return a", "href") == RETURNS
    assert await page.inner_text("#lm-return a") == "Start a return"
    assert await page.query_selector("#lm-returns") is None, "the store's own returns page instead of the form"
    assert await page.is_visible("#lm-feedback") and not await page.is_visible("#lm-updates")
    await shop.stage("R3", "returned")  # returned: nothing left to rate or return
    await page.wait_for_selector("#lm-return", state="hidden", timeout=wait(5) * 1000)
    assert not await page.is_visible("#lm-feedback")
    await page.close()
    await set_store(shop, server, {"returns_url": None})  # removing it removes the link
    delivered = await delivered_order(shop, "R4")
    page = await live_page(browser, delivered["tracking_url"], PHONE, locale="en-US")
    assert await page.is_visible("#lm-feedback") and await page.query_selector("#lm-return") is None
    assert await page.is_visible("#lm-return-form")
    await page.close()


async def test_opt_in_checkboxes_persist_across_reloads(browser: Browser, server: Server, shop: Shop) -> None:
    """Email starts ticked (the store's default); unticking it, then ticking SMS, is saved: a reload shows the
    same boxes; no phone, no SMS box."""
    await shop.driver("r5")
    order = await shop.order("R5", customer=CONTACT)
    await shop.post("/api/orders/R5/assign", {"driver_id": "r5"})
    page = await live_page(browser, order["tracking_url"], NARROW, locale="en-US")
    assert await page.inner_text("#lm-updates legend") == "Send me updates about this delivery"
    assert await page.is_checked("#lm-sub-email") and not await page.is_checked("#lm-sub-sms")
    assert await fits(page)
    await page.uncheck("#lm-sub-email")
    await page.wait_for_selector("#lm-updates-status >> text=Saved", timeout=wait(5) * 1000)
    await page.reload()
    await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    assert not await page.is_checked("#lm-sub-email") and not await page.is_checked("#lm-sub-sms")
    await page.check("#lm-sub-sms")
    await page.wait_for_selector("#lm-updates-status >> text=Saved", timeout=wait(5) * 1000)
    await page.reload()
    await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    assert not await page.is_checked("#lm-sub-email") and await page.is_checked("#lm-sub-sms")
    assert (await shop.get("/api/orders/R5")).json()["subscriptions"] == {"email": False, "sms": True}
    await page.close()
    email_only = await shop.order("R6")
    page = await live_page(browser, email_only["tracking_url"], PHONE, locale="en-US")
    assert await page.is_visible("#lm-sub-email") and await page.query_selector("#lm-sub-sms") is None
    await page.close()


# --- readability: contrast of what Chromium actually renders -------------------------------------

# Every visible element with text of its own (the map's tiles and controls aside): its colour and the
# background colours from it up to the root, composited in Python.
_TEXT_COLOURS = """() => {
  const out = [];
  const layers = (el) => {
    const found = [];
    for (let a = el; a; a = a.parentElement) found.push(getComputedStyle(a).backgroundColor);
    return found;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".lm-map, script, style")) continue;
    const own = [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE);
    const text = own.map((n) => n.textContent).join("").trim();
    const box = el.getBoundingClientRect();
    if (!text || box.width <= 1 || box.height <= 1) continue;
    if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
    const what = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
    out.push({ what, text, color: getComputedStyle(el).color, layers: layers(el) });
  }
  for (const el of document.querySelectorAll(".lm-stars label")) {
    if (!el.checkVisibility()) continue;
    out.push({ what: "star", text: "", color: getComputedStyle(el, "::before").color, layers: layers(el) });
  }
  return out;
}"""
_RGBA = re.compile(r"rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)")


def _parse(css: str) -> tuple[float, float, float, float]:
    m = _RGBA.fullmatch(css)
    assert m, css
    return float(m[1]), float(m[2]), float(m[3]), float(m[4] or 1)


def _over(top: tuple[float, float, float, float], below: tuple[float, float, float]) -> tuple[float, float, float]:
    a = top[3]
    return top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a)


def _luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance (independent of livemap's own implementation)."""
    lin = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _ratio(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


async def contrast_failures(page: Page) -> list[str]:
    """Text under 4.5:1 against its background (stars, which are not text, under 3:1), as readable lines."""
    failures = []
    found = await page.evaluate(_TEXT_COLOURS)
    assert len(found) > 10  # the check saw the page
    for item in found:
        background: tuple[float, float, float] = (255, 255, 255)  # the canvas
        for layer in reversed(item["layers"]):
            background = _over(_parse(layer), background)
        ratio = _ratio(_over(_parse(item["color"]), background), background)
        least = 3.0 if item["what"] == "star" else 4.5
        if ratio < least:
            failures.append(f"{item['what']} {item['text'][:30]!r}: {ratio:.2f}:1 ({item['color']} on {background})")
    return failures


async def shipped_with_driver(shop: Shop, oid: str, did: str) -> dict[str, Any]:
    """A shipped order whose driver sent a fix halfway along the route."""
    await shop.driver(did)
    order = await shop.order(oid, customer=CONTACT, tracking_number="PY777", carrier="Correo")
    await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})
    await shop.stage(oid, "shipped")
    driver = await driver_socket(shop.server, shop.drivers[did])
    await driver.send(fix(0.5, now_ms(), 1))
    await driver.recv_type("ack")
    await driver.close()
    return order


@pytest.mark.parametrize("template", ["classic", "compact", "bold"])
async def test_each_template_is_readable_at_phone_and_desktop_size(
    browser: Browser, server: Server, shop: Shop, template: str
) -> None:
    """On the way and delivered (rating form, returns link), each template's text reaches 4.5:1; screenshots saved."""
    await set_store(shop, server, {"returns_url": RETURNS, "branding": {"template": template}})
    states = {
        "shipped": await shipped_with_driver(shop, "M1", "m1"),
        "delivered": await delivered_order(shop, "M2", tracking_number="PY778", carrier="Correo"),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for state, order in states.items():
        for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page = await live_page(browser, order["tracking_url"], viewport, locale="en-US")
            if state == "shipped":
                await page.wait_for_selector(".lm-driver", timeout=wait(5) * 1000)
                await page.wait_for_timeout(300)  # the map's fit-to-driver settles
            else:
                assert await page.is_visible("#lm-rate") and await page.is_visible("#lm-return")
            assert await page.evaluate("document.body.className") == f"tpl-{template}"
            assert await contrast_failures(page) == [], f"{template} {state} {size}"
            assert await fits(page)
            await page.screenshot(path=str(ARTIFACTS / f"track-{template}-{state}-{size}.png"))
            await page.close()
    page = await live_page(browser, states["delivered"]["tracking_url"], NARROW, locale="en-US")
    assert await fits(page) and await contrast_failures(page) == []
    await page.close()


async def test_a_pale_brand_colour_gets_dark_text(browser: Browser, server: Server, shop: Shop) -> None:
    """A yellow primary colour: black text on the header and buttons, darkened yellow for links; all readable."""
    await set_store(shop, server, {"returns_url": RETURNS, "branding": {"primary_color": "#ffd400"}})
    order = await delivered_order(shop, "M3")
    page = await live_page(browser, order["tracking_url"], PHONE, locale="en-US")
    colours = [
        await page.eval_on_selector(selector, "el => getComputedStyle(el).color")
        for selector in (".lm-header", "#lm-rate button", "#lm-return a")
    ]
    assert colours[:2] == ["rgb(0, 0, 0)", "rgb(0, 0, 0)"] and colours[2] != "rgb(255, 212, 0)"
    assert await contrast_failures(page) == []
    await page.screenshot(path=str(ARTIFACTS / "track-pale-brand-delivered-phone.png"))
    await page.close()


async def test_lookup_page_has_the_store_colours_and_no_empty_map_area(
    browser: Browser, shop: Shop, server: Server
) -> None:
    """The order lookup has no map: on a phone its form starts under the header, in the store's colour."""
    await set_store(shop, server, {"branding": {"primary_color": "#6a1b9a"}})
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await open_page(browser, f"{server.url}/track?store={shop.id}", viewport)
        header = await page.locator(".lm-header").bounding_box()
        title = await page.locator(".lm-lookup h1").bounding_box()
        assert header and title and title["y"] - (header["y"] + header["height"]) < 100, (name, header, title)
        button = await page.eval_on_selector(".lm-lookup button", "b => getComputedStyle(b).backgroundColor")
        assert button == "rgb(106, 27, 154)", (name, button)
        await page.screenshot(path=str(ARTIFACTS / f"lookup-{name}.png"))
        await page.close()
