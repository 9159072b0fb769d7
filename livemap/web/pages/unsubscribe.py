"""One-click unsubscribe from an order's email or SMS updates, by a signed link (RFC 8058 for email).

Every email carries the link in its footer and in `List-Unsubscribe` (with `List-Unsubscribe-Post`,
so a mail client's own button POSTs to it); every SMS ends with the SMS link. The link is signed
with the secret key, so it names one order and one channel and cannot be made up for another;
it opens nothing else (not the tracking page). A GET shows a confirmation button, since link
scanners fetch URLs in mail: only a POST records the choice, in the order's `subscriptions`,
which the tracking page shows.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemap.domain.i18n import Lang, negotiate
from livemap.domain.messages import Subscribe
from livemap.domain.records import NotFound
from livemap.notify import links
from livemap.services import services
from livemap.web import bodies, csp
from livemap.web.pages.layout import templates

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "ask_email": "Stop emails about order {number} from {store}?",
        "ask_sms": "Stop text messages about order {number} from {store}?",
        "button": "Unsubscribe",
        "done_email": "Done: no more emails about order {number}.",
        "done_sms": "Done: no more text messages about order {number}.",
        "again": "You can turn them on again on the tracking page.",
        "invalid": "This link is not valid.",
    },
    "es": {
        "title": "Darse de baja",
        "ask_email": "¿Dejar de recibir emails sobre el pedido {number} de {store}?",
        "ask_sms": "¿Dejar de recibir SMS sobre el pedido {number} de {store}?",
        "button": "Darme de baja",
        "done_email": "Listo: no recibirás más emails sobre el pedido {number}.",
        "done_sms": "Listo: no recibirás más SMS sobre el pedido {number}.",
        "again": "Puedes reactivarlos en la página de seguimiento.",
        "invalid": "Este enlace no es válido.",
    },
    "pt-BR": {
        "title": "Cancelar inscrição",
        "ask_email": "Parar de receber emails sobre o pedido {number} da {store}?",
        "ask_sms": "Parar de receber SMS sobre o pedido {number} da {store}?",
        "button": "Cancelar inscrição",
        "done_email": "Pronto: você não receberá mais emails sobre o pedido {number}.",
        "done_sms": "Pronto: você não receberá mais SMS sobre o pedido {number}.",
        "again": "Pode reativá-los na página de rastreio.",
        "invalid": "Este link não é válido.",
    },
}


_PAGE = templates.get_template("unsubscribe.html")


def _page(lang: Lang, text: str, status: int = 200, button: str = "") -> HTMLResponse:
    """A page without script: a sentence (store text in it escaped) and, to confirm, one button."""
    html = _PAGE.render(lang=lang, title=_TEXTS[lang]["title"], text=text, button=button)
    # The link's signature is in its query: same-origin keeps it out of any Referer, and lets the
    # confirmation form post carry our Origin.
    return csp.html_response(lambda _nonce: html, status, referrer="same-origin")


async def unsubscribe_page(request: Request) -> Response:
    """`GET` asks, `POST` records: `/unsubscribe/{tracking_id}/{channel}?sig=...` (a POST is RFC 8058's one click)."""
    svc = services(request)
    tid, channel = request.path_params["tracking_id"], request.path_params["channel"]
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""))
    t = _TEXTS[lang]
    signature = request.query_params.get("sig", "")
    try:
        order = await svc.repo.order(tid) if channel in ("email", "sms") else None
    except NotFound:
        order = None
    # The same answer for an unknown order and a wrong signature.
    if order is None or not links.verify(svc.repo.box, tid, channel, signature):
        return _page(lang, t["invalid"], 404)
    store = await svc.repo.settings(order["store"])
    values = {"number": order["id"], "store": store.name}
    if request.method == "GET":
        return _page(lang, t[f"ask_{channel}"].format(**values), button=t["button"])
    await bodies.read(request, bodies.FORM_LIMIT)  # mail clients post `List-Unsubscribe=One-Click`
    await svc.repo.subscribe(tid, Subscribe(email=False) if channel == "email" else Subscribe(sms=False))
    return _page(lang, f"{t[f'done_{channel}'].format(**values)} {t['again']}")
