"""`/dispatch`: the dispatcher's dashboard, behind a sign-in with the store key or a dispatcher account.

Signing in opens a session (see `sessions`): the key or password is sent once, in a form post,
never in a URL. The dashboard is a folium-built Leaflet map (vendored Leaflet and
Leaflet.markercluster) plus `static/dispatch.js`, which follows `/ws/dispatch` with the session
cookie and acts through the store's own REST API with the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from livemap.domain import security
from livemap.domain.records import decode_hash
from livemap.domain.stages import FINAL
from livemap.services import services
from livemap.storage import accounts, attempts
from livemap.storage.repository import Repository
from livemap.web import bodies, csp, sessions
from livemap.web.pages.layout import Fragment, Script, figure, render, script_json, templates
from livemap.web.pages.maps import TrackingMap, tile_layer

FAILED_SIGNINS = 20  # per client address...
WINDOW_S = 600  # ...in this many seconds; then 429 until the window ends

_SIGNIN = templates.get_template("dispatch_signin.html")

_DASHBOARD = templates.get_template("dispatch.html")


class DispatchMap(TrackingMap):
    """The tracking page's map, plus Leaflet.markercluster (vendored) to cluster markers when zoomed out."""

    scripts = [  # noqa: RUF012 - as TrackingMap's
        *TrackingMap.scripts,
        ("markercluster", "/static/vendor/leaflet.markercluster/leaflet.markercluster.js"),
    ]
    default_css = [  # noqa: RUF012
        *TrackingMap.default_css,
        ("markercluster_css", "/static/vendor/leaflet.markercluster/MarkerCluster.css"),
    ]


def _signin_page(error: str = "", store_id: str = "", status: int = 200) -> HTMLResponse:
    page = figure("en", "Dispatch · sign in", "/static/dispatch.css")
    page.html.add_child(Fragment(_SIGNIN.render(error=error, store_id=store_id)))
    # Its form post must carry our Origin (`_sign_in` checks it), which no-referrer would make "null".
    return render(page, status, body_class="dp-signin-page", referrer="same-origin")


async def _dashboard(request: Request, session: sessions.Session) -> HTMLResponse:
    svc = services(request)
    settings = await svc.repo.settings(session.store_id)
    names = decode_hash(await svc.repo.redis.hgetall(svc.repo.keys.store_drivers(session.store_id)))
    machine = settings.machine()
    tiles = tile_layer(settings.branding, svc.settings)
    page = figure("en", f"Dispatch · {settings.name}", "/static/dispatch.css")
    page.header.add_child(Script("/static/reconnect.js", defer=True), name="reconnect")
    page.header.add_child(Script("/static/dispatch.js", defer=True), name="js")
    # The world until the first snapshot, which fits the map to the fleet.
    m = DispatchMap(location=[20.0, 0.0], zoom_start=2, tiles=None, control_scale=True)
    tiles.add_to(m)
    page.add_child(m)
    config: dict[str, Any] = {
        "map": m.get_name(),
        "csrf": session.csrf,
        "timezone": settings.timezone,
        "stages": [{"id": s, "label": machine.label(s, "en")} for s in machine.known],
        "allowed": {s: machine.allowed(s) for s in machine.known},
        "delivered": machine.delivered,
        "final": sorted(FINAL),
        "drivers": names,
        "stale_after_ms": svc.settings.stale_after_s * 1000,
        "online_window_ms": svc.settings.online_window_s * 1000,
        "delay_grace_ms": svc.settings.delay_grace_s * 1000,
        "viewport_drivers": svc.settings.dispatch_viewport_drivers,
    }
    panel = _DASHBOARD.render(
        store=settings.name,
        who=session.account or "Store key",
        csrf=session.csrf,
        config=script_json(config),
    )
    page.html.add_child(Fragment(panel), name="panel")
    return render(page, body_class="dp-dashboard", images=[csp.source(tiles.tiles)])


async def dispatch_page(request: Request) -> Response:
    """GET: the dashboard when signed in, else the sign-in form. POST: sign in."""
    if request.method == "POST":
        return await _sign_in(request)
    store = services(request).repo
    session = await sessions.load(store, request.cookies.get(sessions.COOKIE, ""))
    if session is None:
        return _signin_page(store_id=request.query_params.get("store", ""))
    return await _dashboard(request, session)


async def _open_session(store: Repository, form: dict[str, str], ttl_s: float) -> str | None:
    """A session's cookie value for a right key, or a right account name and password; else None."""
    key = form.get("key", "")
    if key:
        principal = await store.principal(key)
        if principal is None or principal.kind != "store":
            return None
        proof = store.keys.credential(security.digest(key))
        return await sessions.start(store, principal.store_id, "", proof, ttl_s)
    sid, name = form.get("store", ""), form.get("name", "")
    version = await accounts.verify(store, sid, name, form.get("password", ""))
    if version is None:
        return None
    return await sessions.start(store, sid, name, version, ttl_s)


async def _sign_in(request: Request) -> Response:
    svc = services(request)
    form = await bodies.form(request)
    store_id = form.get("store", "")
    # Browsers send Origin with every form post: another site must not sign people in (login CSRF).
    if "origin" in request.headers and not sessions.same_origin(request):
        return _signin_page("Sign in from this site's own page.", store_id, 403)
    client = request.client.host if request.client else "-"
    failures = svc.repo.keys.signin_failures(client)
    # Counted as a failure before the password is checked, given back if it is right: a burst of
    # guesses gets at most FAILED_SIGNINS checks, however many arrive at once.
    if await attempts.take(svc.repo.redis, failures, WINDOW_S) > FAILED_SIGNINS:
        return _signin_page("Too many failed sign-ins: try again in a few minutes.", store_id, 429)
    token = await _open_session(svc.repo, form, svc.settings.session_ttl_s)
    if token is None:
        return _signin_page("That key, name or password is not right.", store_id, 401)
    await attempts.give_back(svc.repo.redis, failures)
    response = RedirectResponse("/dispatch", status_code=303)
    sessions.set_cookie(response, request, token, svc.settings.session_ttl_s)
    return response


async def sign_out(request: Request) -> Response:
    """`POST /dispatch/signout` (form field `csrf`): ends the session everywhere and clears the cookie."""
    store = services(request).repo
    token = request.cookies.get(sessions.COOKIE, "")
    session = await sessions.load(store, token)
    given = (await bodies.form(request)).get("csrf", "")
    response = RedirectResponse("/dispatch", status_code=303)
    # Without the page's CSRF token another site could sign the dispatcher out: then nothing happens.
    if session is None or security.same_secret(given, session.csrf):
        await sessions.end(store, token)
        sessions.clear_cookie(response, request)
    return response
