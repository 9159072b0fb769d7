"""The page security helpers on their own: CSP sources, JSON inside <script>, tile credits, theme colours."""

from __future__ import annotations

import json

import pytest

from conftest import Server, Shop
from livemap.web import csp
from livemap.web.pages.layout import script_json
from livemap.web.pages.maps import safe_attribution


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
        ("http://127.0.0.1:8081/{z}/{x}/{y}.png", "http://127.0.0.1:8081"),
        ("https://CDN.Shop.example/logo.png?v=2", "https://cdn.shop.example"),
        ("https://user:pw@cdn.shop.example/logo.png", "https://cdn.shop.example"),
        # Whatever else a store writes there never adds a directive: the scheme alone.
        ("https://evil.example;script-src *;/x.png", "https:"),
        ("https://evil.example,script-src/x.png", "https:"),
        ("https://tiles.{r}.example/{z}/{x}/{y}.png", "https:"),
        ("https://[::1/x.png", "https:"),
    ],
)
def test_image_sources_are_origins_or_a_scheme(url: str, expected: str) -> None:
    """A tile or logo URL becomes its origin (a `{s}` subdomain a wildcard), else its scheme: never more text."""
    assert csp.source(url) == expected


def test_the_policy_names_the_nonce_and_the_image_origins() -> None:
    """One nonce, scripts by nonce only, images from us, data: and the given origins; no framing."""
    policy = csp.policy("abc", ["https://tiles.example", "https://tiles.example", "https://cdn.example"])
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["script-src"] == "'nonce-abc'"
    assert directives["img-src"] == "'self' data: https://cdn.example https://tiles.example"
    assert directives["frame-ancestors"] == "'none'" and csp.FRAME_ANCESTORS == ("'none'",)
    assert directives["object-src"] == directives["base-uri"] == "'none'"


def test_json_in_a_script_cannot_close_or_confuse_it() -> None:
    """`</script>`, `<!--`, `&` and the JavaScript line separators come out escaped, and decode to the same value."""
    value = {"name": "</script><!--<script>a & b\u2028c\u2029", "n": [1, "<b>"]}
    text = script_json(value)
    assert not any(c in text for c in "<>&\u2028\u2029")
    assert json.loads(text) == value


@pytest.mark.parametrize(
    ("credit", "expected"),
    [
        (
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
            '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        ),
        (
            '<img src=x onerror=alert(1)><a href="https://t.example" onclick="x()">T</a>',
            '<a href="https://t.example">T</a>',
        ),
        ('<a href="javascript:alert(1)">T</a> &lt;b&gt;', "T &lt;b&gt;"),
        ('<a href="https://t.example/?a=1&b=&quot;2">T', '<a href="https://t.example/?a=1&amp;b=&quot;2">T</a>'),
        ("<script>alert(1)</script>Tiles", "alert(1)Tiles"),
    ],
)
def test_a_stores_tile_credit_keeps_text_and_links_only(credit: str, expected: str) -> None:
    """Leaflet shows the credit as HTML: only text (escaped) and http(s) links survive."""
    assert safe_attribution(credit) == expected


async def test_a_colour_that_could_leave_the_style_block_is_refused(shop: Shop, server: Server) -> None:
    """Brand colours are #rrggbb or the PATCH fails, so nothing can close the page's <style> block."""
    for bad in ("red;}</style><script>alert(1)</script>", "#fff", "#0a7d5a;}", "#0a7d5a\n"):
        r = await shop.http.patch(
            f"{server.url}/api/store", headers=shop.auth, json={"branding": {"primary_color": bad}}
        )
        assert r.status_code == 422, (bad, r.text)
    order = await shop.order("C1")
    page = await shop.http.get(order["tracking_url"])
    assert "--lm-primary: #0a7d5a;" in page.text
