"""`/dispatch/analytics`: the store's figures as charts, for a signed-in dispatcher or store key holder.

The page is a shell: `static/analytics.js` asks `GET /api/analytics` (with the session cookie) for the
period the person picks and draws it with Chart.js (vendored in `static/vendor/chartjs`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.i18n_analytics import ANALYTICS
from livemap.web.pages import backoffice
from livemap.web.pages.layout import script_json, templates

_PAGE = templates.get_template("analytics.html")
_CHARTJS = "/static/vendor/chartjs/chart.umd.min.js"


async def analytics_page(request: Request) -> Response:
    """The analytics page when signed in; else the sign-in form."""
    office = await backoffice.signed_in(request)
    if office is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings, lang = office.settings, office.lang
    words, machine = ANALYTICS[lang], settings.machine()
    config = {
        "lang": lang,
        "strings": words,
        "stages": {s: machine.label(s, lang) for s in machine.known},
        "today": dt.datetime.now(zoneinfo.ZoneInfo(settings.timezone)).date().isoformat(),
        "timezone": settings.timezone,
    }
    body = _PAGE.render(s=words, store=settings.name, lang=lang, config=script_json(config))
    return backoffice.page(
        office, words["title"], ("/static/vendor/chartjs/chart.umd.min.js", "/static/analytics.js"), body
    )
