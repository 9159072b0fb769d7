"""`/dispatch/returns`: the store's returns, filtered by status, each moved on with a click (signed in).

The page is a shell: `static/returns.js` reads `GET /api/returns` and moves a return with
`POST /api/orders/{id}/return` through the session (its CSRF token in the page config).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.records import decode_hash
from livemap.services import services
from livemap.web import sessions
from livemap.web.pages.layout import Fragment, Script, figure, render, script_json, templates

_PAGE = templates.get_template("returns.html")


async def returns_page(request: Request) -> Response:
    """The returns list when signed in; else the sign-in form."""
    repo = services(request).repo
    session = await sessions.load(repo, request.cookies.get(sessions.COOKIE, ""))
    if session is None:
        return RedirectResponse("/dispatch", status_code=303)
    settings = await repo.settings(session.store_id)
    drivers = decode_hash(await repo.redis.hgetall(repo.keys.store_drivers(session.store_id)))
    config = {"csrf": session.csrf, "timezone": settings.timezone, "drivers": drivers}
    page = figure("en", f"Returns · {settings.name}", "/static/dispatch.css")
    page.header.add_child(Script("/static/returns.js", defer=True), name="js")
    body = _PAGE.render(store=settings.name, config=script_json(config))
    page.html.add_child(Fragment(body), name="body")
    return render(page, body_class="an-page")
