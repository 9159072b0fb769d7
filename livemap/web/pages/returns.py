"""`/dispatch/returns`: the store's returns, filtered by status, each moved on with a click (signed in).

The page is a shell: `static/returns.js` reads `GET /api/returns` and moves a return with
`POST /api/orders/{id}/return` through the session (its CSRF token in the page config). Its words
are in English, Spanish or Brazilian Portuguese (`?lang=`, else the browser's, else the store's locale).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.i18n_returns import RETURNS
from livemap.services import services
from livemap.web.pages import backoffice
from livemap.web.pages.layout import script_json, templates

_PAGE = templates.get_template("returns.html")
#: The CSV button's period: the last 90 days, today (in the store's zone) included.
EXPORT_DAYS = 90


async def returns_page(request: Request) -> Response:
    """The returns list when signed in; else the sign-in form."""
    office = await backoffice.signed_in(request)
    if office is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings, lang, repo = office.settings, office.lang, services(request).repo
    words = RETURNS[lang]
    today = dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date()
    config = {**office.config(words), "drivers": await repo.driver_names(office.session.store_id)}
    # Built here, not in returns.js: the store's "today" is known here and the link works before any script.
    export = f"/api/returns.csv?from={today - dt.timedelta(days=EXPORT_DAYS - 1)}&to={today}"
    body = _PAGE.render(s=words, store=settings.name, lang=lang, export=export, config=script_json(config))
    return backoffice.page(office, words["title"], ("/static/office.js", "/static/returns.js"), body)
