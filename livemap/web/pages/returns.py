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

from livemap.domain.i18n import negotiate
from livemap.domain.i18n_returns import RETURNS
from livemap.domain.records import decode_hash
from livemap.services import services
from livemap.web import sessions
from livemap.web.pages.layout import Fragment, Script, figure, render, script_json, templates

_PAGE = templates.get_template("returns.html")
#: The CSV button's period: the last 90 days, today (in the store's zone) included.
EXPORT_DAYS = 90


async def returns_page(request: Request) -> Response:
    """The returns list when signed in; else the sign-in form."""
    repo = services(request).repo
    session = await sessions.load(repo, request.cookies.get(sessions.COOKIE, ""))
    if session is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings = await repo.settings(session.store_id)
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""), settings.locale)
    words = RETURNS[lang]
    drivers = decode_hash(await repo.redis.hgetall(repo.keys.store_drivers(session.store_id)))
    today = dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date()
    config = {
        "csrf": session.csrf,
        "lang": lang,
        "strings": words,
        "timezone": settings.timezone,
        "drivers": drivers,
    }
    # Built here, not in returns.js: the store's "today" is known here and the link works before any script.
    export = f"/api/returns.csv?from={today - dt.timedelta(days=EXPORT_DAYS - 1)}&to={today}"
    page = figure(lang, f"{words['title']} · {settings.name}", "/static/dispatch.css")
    page.header.add_child(Script("/static/returns.js", defer=True), name="js")
    body = _PAGE.render(s=words, store=settings.name, lang=lang, export=export, config=script_json(config))
    page.html.add_child(Fragment(body), name="body")
    return render(page, body_class="an-page")
