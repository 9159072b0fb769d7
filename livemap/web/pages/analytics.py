"""`/dispatch/analytics`: the store's figures as charts, for a signed-in dispatcher or store key holder.

The page is a shell: `static/analytics.js` asks `GET /api/analytics` (with the session cookie) for the
period the person picks and draws it with Chart.js (vendored in `static/vendor/chartjs`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.i18n import negotiate
from livemap.domain.i18n_analytics import ANALYTICS
from livemap.services import services
from livemap.web import sessions
from livemap.web.pages.layout import Fragment, Script, figure, render, script_json, templates

_PAGE = templates.get_template("analytics.html")


async def analytics_page(request: Request) -> Response:
    """The analytics page when signed in (`?lang=`, else the browser's, else the store's locale); else sign-in."""
    repo = services(request).repo
    session = await sessions.load(repo, request.cookies.get(sessions.COOKIE, ""))
    if session is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings = await repo.settings(session.store_id)
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""), settings.locale)
    words, machine = ANALYTICS[lang], settings.machine()
    config = {
        "lang": lang,
        "strings": words,
        "stages": {s: machine.label(s, lang) for s in machine.known},
        "today": dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date().isoformat(),
        "timezone": settings.timezone,
    }
    page = figure(lang, f"{words['title']} · {settings.name}", "/static/dispatch.css")
    page.header.add_child(Script("/static/vendor/chartjs/chart.umd.min.js", defer=True), name="chartjs")
    page.header.add_child(Script("/static/analytics.js", defer=True), name="js")
    body = _PAGE.render(s=words, store=settings.name, lang=lang, config=script_json(config))
    page.html.add_child(Fragment(body), name="body")
    return render(page, body_class="an-page")
