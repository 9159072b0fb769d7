"""`/dispatch/settings`: the store's owner sets the store up in the browser, no curl.

Branding with a live preview of the tracking page (`preview.py`), custom stages, notifications (who hears
about what, the email/SMS/webhook channels, the messages' wording per language with a preview and a test
send), the shop integrations with the webhook addresses to paste into the shop, drivers with their sign-in
link and QR code, and dispatcher accounts. The page is a shell filled by static/settings*.js, and every change
goes through the same REST API the README describes, with the session of the store key (the owner: a
dispatcher account's session gets the page's explanation, not the page).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.i18n import LANGS, Lang
from livemap.domain.i18n_notify import PLACEHOLDERS, TEXTS
from livemap.domain.i18n_returns import RETURNS
from livemap.domain.i18n_settings import SETTINGS
from livemap.domain.returns import ReturnStatus
from livemap.domain.stages import StageMachine
from livemap.domain.storesettings import time_zones
from livemap.services import services
from livemap.web.pages import backoffice
from livemap.web.pages.layout import script_json, templates

_PAGE = templates.get_template("settings.html")
LANGUAGE_NAMES: dict[Lang, str] = {"en": "English", "es": "Español", "pt-BR": "Português (Brasil)"}
#: Each shop's form: platform, title, where its webhook is made, its write-back credential fields.
_SHOPS = (
    ("woocommerce", "WooCommerce", "woo_where", (("consumer_key", "woo_key"), ("consumer_secret", "woo_secret"))),
    ("shopify", "Shopify", "shopify_where", (("access_token", "shopify_token"),)),
)


def _events(machine: StageMachine, lang: Lang, words: dict[str, str]) -> list[dict[str, str]]:
    """What `notifications.events` may list: each stage of the store's machine, then the moments and returns."""
    stages = [{"id": s, "label": machine.label(s, lang)} for s in machine.known]
    return [*stages, *({"id": e, "label": words[f"ev_{e}"]} for e in ("arriving", "delayed", "return"))]


def _messages(events: list[dict[str, str]], lang: Lang, words: dict[str, str]) -> list[dict[str, str]]:
    """The messages whose wording the store may change: one per event but `return`, which has one per step
    (`return_<status>` in the templates), and a driver close to collecting a return."""
    steps = RETURNS[lang]
    returns = [{"id": f"return_{s}", "label": f"{words['ev_return']}: {steps[f'st_{s}']}"} for s in ReturnStatus]
    collect = {"id": "return_arriving", "label": f"{words['ev_return']}: {words['ev_arriving']}"}
    return [*(e for e in events if e["id"] != "return"), *returns, collect]


def _config(office: backoffice.Office) -> dict[str, Any]:
    settings, lang = office.settings, office.lang
    words = SETTINGS[lang]
    machine = settings.machine()
    events = _events(machine, lang, words)
    return {
        **office.config(words),
        "store_id": office.session.store_id,
        "stages": [{"id": s, "label": machine.label(s, lang)} for s in machine.pipeline],
        "events": events,
        "messages": _messages(events, lang, words),
        "languages": LANGUAGE_NAMES,
        "defaults": TEXTS,
        "placeholders": PLACEHOLDERS,
    }


async def settings_page(request: Request) -> Response:
    """The settings page for the store's owner; an explanation for a dispatcher account; else the sign-in."""
    office = await backoffice.owner(request)
    if not isinstance(office, backoffice.Office):
        return office
    words = SETTINGS[office.lang]
    body = _PAGE.render(
        s=words,
        store=office.settings.name,
        store_id=office.session.store_id,
        lang=office.lang,
        base=services(request).base_url(request),
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGS],
        zones=sorted(time_zones()),
        shops=_SHOPS,
        config=script_json(_config(office)),
    )
    scripts = ("/static/office.js", "/static/settings.js", "/static/settings-notify.js", "/static/settings-people.js")
    return backoffice.page(office, words["title"], scripts, body)
