"""`/track?store=ID`: a customer without the link finds their order by number and email.

Every failure (unknown store, unknown order, wrong email) gets the same answer, so the form cannot
be used to learn which order numbers exist; attempts are rate limited per client and store.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from livemap.domain.i18n import STRINGS, Lang, negotiate
from livemap.domain.messages import Customer
from livemap.domain.records import NotFound
from livemap.domain.storesettings import StoreSettings
from livemap.services import services
from livemap.storage import attempts
from livemap.web import bodies
from livemap.web.pages import embed
from livemap.web.pages.layout import Fragment, figure, render, templates
from livemap.web.pages.theme import theme_style

ATTEMPTS = 10  # failed or not, per client address and store...
WINDOW_S = 600  # ...in this many seconds

_FORM = templates.get_template("lookup.html")


def _page(
    request: Request,
    lang: Lang,
    store: StoreSettings | None,
    store_id: str,
    error: str = "",
    number: str = "",
    status: int = 200,
) -> HTMLResponse:
    s = STRINGS[lang]
    page = figure(lang, s["lookup_title"])
    if store is not None:  # the store's colours, as on its tracking pages
        page.header.add_child(Fragment(theme_style(store)), name="theme")
    embed.add_frame_script(page, request)
    form = _FORM.render(s=s, store=store.name if store else "", store_id=store_id, error=error, number=number,
                        embed=embed.in_widget(request), lang=lang)  # fmt: skip
    page.html.add_child(Fragment(form))
    return render(page, status, body_class="lm-nomap", frame_ancestors=embed.frame_ancestors(request, store))


async def lookup_form(request: Request) -> Response:
    """GET shows the form; POST checks number + email and redirects to the order's tracking link."""
    svc = services(request)
    store_id = request.query_params.get("store", "")
    try:
        settings: StoreSettings | None = await svc.repo.settings(store_id)
    except NotFound:
        settings = None  # the same form: an unknown store id is not confirmed either
    default = settings.locale if settings else "en"
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""), default)
    if request.method == "GET":
        return _page(request, lang, settings, store_id)
    s = STRINGS[lang]
    client = request.client.host if request.client else "-"
    if await attempts.take(svc.repo.redis, svc.repo.keys.lookup_attempts(store_id, client), WINDOW_S) > ATTEMPTS:
        return _page(request, lang, settings, store_id, s["lookup_limited"], status=429)
    form = await bodies.form(request)
    number = form.get("number", "")[:64]
    contact = form.get("contact", "").lower()[:254]
    url = await _match(request, store_id, number, contact) if settings and number and contact else None
    if url is None:
        return _page(request, lang, settings, store_id, s["lookup_failed"], number=number)
    # The language asked for, and the widget, carry on to the tracking page.
    keep = "".join(f"&{k}={quote(v)}" for k in ("lang", "embed") if (v := request.query_params.get(k)))
    return RedirectResponse(url + keep, status_code=303)


async def _match(request: Request, store_id: str, number: str, contact: str) -> str | None:
    svc = services(request)
    try:
        order = await svc.repo.store_order(store_id, number)
    except NotFound:
        return None
    email = (msgspec.json.decode(order["customer"], type=Customer).email or "").lower()
    if not email or not hmac.compare_digest(email.encode(), contact.encode()):
        return None
    return f"{svc.base_url(request)}/track/{order.tracking_id}?t={svc.repo.tracking_token(order)}"
