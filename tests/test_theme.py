"""Readable store branding (WCAG contrast of text on brand colours) and complete translations of the page."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import pytest

from conftest import Server, Shop
from livemap.domain.i18n import LANGS, STRINGS
from livemap.domain.i18n_analytics import ANALYTICS
from livemap.domain.i18n_dispatch import DISPATCH
from livemap.domain.i18n_driver import DRIVER
from livemap.domain.i18n_orders import ORDERS
from livemap.domain.i18n_returns import RETURNS
from livemap.domain.i18n_settings import SETTINGS
from livemap.web.pages.theme import contrast, ink_on_white, text_on

# Every 17th level of each channel: 4,096 colours from black to white, greys and saturated hues included.
_GRID = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in itertools.product(range(0, 256, 17), repeat=3)]


def test_contrast_matches_the_wcag_reference_values() -> None:
    """Black on white is 21:1, a colour on itself 1:1, #767676 on white just passes AA (4.54:1); either order."""
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#0a7d5a", "#0a7d5a") == pytest.approx(1)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast("#ffffff", "#777777") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ff0000") == contrast("#ff0000", "#ffffff")


def test_text_on_any_brand_colour_reaches_aa() -> None:
    """Whatever a store's primary colour, the text on its buttons and header reads at 4.5:1 or better."""
    worst = min(contrast(text_on(color), color) for color in _GRID)
    assert worst >= 4.5


@pytest.mark.parametrize(
    ("primary", "text"),
    [("#0a7d5a", "#ffffff"), ("#1565c0", "#ffffff"), ("#ffd400", "#000000"), ("#7fdbff", "#000000")],
)
def test_white_text_stays_unless_it_would_be_unreadable(primary: str, text: str) -> None:
    """The default and dark brand colours keep white text; pale ones (yellow, sky blue) get black text."""
    assert text_on(primary) == text


def test_brand_colour_as_text_on_white_is_darkened_only_as_needed() -> None:
    """Links and the bold ETA use the brand colour: unchanged when it reads on white, else darkened to 4.5:1."""
    assert ink_on_white("#0a7d5a") == "#0a7d5a"
    for color in _GRID:
        ink = ink_on_white(color)
        assert contrast(ink, "#ffffff") >= 4.5
    yellow = ink_on_white("#ffd400")
    r, g, b = (int(yellow[i : i + 2], 16) for i in (1, 3, 5))
    assert r > g > b  # still a yellow-brown, not grey or black
    assert contrast(yellow, "#ffffff") < 6  # darkened just past AA, not all the way


async def test_the_page_carries_the_readable_colours(shop: Shop, server: Server) -> None:
    """A pale primary colour reaches the page as black text on it and a darkened ink for text on white."""
    order = await shop.order("T1")
    r = await shop.http.patch(
        f"{server.url}/api/store", headers=shop.auth, json={"branding": {"primary_color": "#ffd400"}}
    )
    assert r.status_code == 200
    html = (await shop.http.get(order["tracking_url"])).text
    style = re.search(r"<style>:root \{([^}]*)\}</style>", html)
    assert style is not None
    theme = dict(re.findall(r"(--lm-[a-z-]+): ([^;]+);", style.group(1)))
    assert theme["--lm-primary"] == "#ffd400" and theme["--lm-on-primary"] == "#000000"
    assert theme["--lm-primary-ink"] == ink_on_white("#ffd400")


@pytest.mark.parametrize(
    "table",
    [STRINGS, DRIVER, ANALYTICS, RETURNS, DISPATCH, ORDERS, SETTINGS],
    ids=["pages", "driver", "analytics", "returns", "dispatch", "orders", "settings"],
)
def test_every_language_has_every_string(table: Mapping[str, dict[str, str]]) -> None:
    """en, es and pt-BR define the same keys (the page and its script would show a blank otherwise)."""
    keys = set(table["en"])
    # Templates read them as `s.key`, which Jinja resolves to a dict's own method first (`s.clear`).
    assert not keys & set(dir(dict))
    for lang in LANGS:
        assert set(table[lang]) == keys, lang
        assert all(value.strip() for value in table[lang].values()), lang
        placeholders = {k: set(re.findall(r"\{(\w+)\}", v)) for k, v in table[lang].items()}
        assert placeholders == {k: set(re.findall(r"\{(\w+)\}", v)) for k, v in table["en"].items()}, lang
