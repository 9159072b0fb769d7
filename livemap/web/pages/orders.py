"""`/dispatch/orders`: every order of the store, newest first, filtered and searched, each assigned or
reassigned from its card (signed in). The page is a shell: `static/orders.js` reads `GET /api/orders` and
assigns with `POST /api/orders/{id}/assign` through the session (its CSRF token in the page config).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.i18n_orders import ORDERS
from livemap.domain.stages import FINAL
from livemap.services import services
from livemap.web.pages import backoffice
from livemap.web.pages.layout import script_json, templates

_PAGE = templates.get_template("orders.html")


async def orders_page(request: Request) -> Response:
    """The orders list when signed in; else the sign-in form."""
    office = await backoffice.signed_in(request)
    if office is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings, lang, repo = office.settings, office.lang, services(request).repo
    words, machine = ORDERS[lang], settings.machine()
    config = {
        **office.config(words),
        "drivers": await repo.driver_names(office.session.store_id),
        "stages": {s: machine.label(s, lang) for s in machine.known},
        "delivered": list(machine.delivered),
        "final": sorted(FINAL),
    }
    body = _PAGE.render(s=words, store=settings.name, lang=lang, owner=office.session.owner, config=script_json(config))
    return backoffice.page(office, words["title"], ("/static/office.js", "/static/orders.js"), body)
