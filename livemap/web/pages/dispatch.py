"""`/dispatch`: the dispatcher's dashboard, behind a sign-in with the store key or a dispatcher account.

Signing in opens a session (see `sessions`): the key or password is sent once, in a form post,
never in a URL. The dashboard is a folium-built Leaflet map (vendored Leaflet and
Leaflet.markercluster) plus `static/dispatch.js`, which follows `/ws/dispatch` with the session
cookie and acts through the store's own REST API with the session's CSRF token. Its words are in English,
Spanish or Brazilian Portuguese: `?lang=`, else the browser's, else (once signed in) the store's locale.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from livemap.domain import security
from livemap.domain.i18n import negotiate
from livemap.domain.i18n_dispatch import DISPATCH
from livemap.domain.stages import FINAL
from livemap.services import services
from livemap.storage import accounts, attempts
from livemap.storage.repository import Repository
from livemap.web import bodies, csp, sessions
from livemap.web.pages import backoffice
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


def _lang_query(request: Request) -> str:
    """`?lang=` as asked, kept through the sign-in post and the redirects around it ("" when none was asked).

    Passed on as given, not as negotiated: an unsupported one falls back the same way on every page, and
    without one the dashboard still falls back to the store's locale, which is unknown before the sign-in.
    """
    asked = request.query_params.get("lang")
    return f"?{urlencode({'lang': asked})}" if asked else ""


def _signin_page(request: Request, store_id: str, error: str = "", status: int = 200) -> HTMLResponse:
    """The sign-in form, in `?lang=` else the browser's language (no store is known yet); `error` names its words."""
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""))
    words = DISPATCH[lang]
    page = figure(lang, f"{words['title']} · {words['signin']}", "/static/dispatch.css")
    action = f"/dispatch{_lang_query(request)}"
    body = _SIGNIN.render(s=words, error=words[error] if error else "", store_id=store_id, action=action)
    page.html.add_child(Fragment(body))
    # Its form post must carry our Origin (`_sign_in` checks it), which no-referrer would make "null".
    return render(page, status, body_class="dp-signin-page", referrer="same-origin")


def _config(request: Request, office: backoffice.Office, map_name: str, drivers: dict[str, str]) -> dict[str, Any]:
    """What static/dispatch.js needs: the stages in the page's language, thresholds, the page's words."""
    svc, lang = services(request), office.lang
    machine = office.settings.machine()
    return {
        "map": map_name,
        **office.config(DISPATCH[lang]),
        "stages": [{"id": s, "label": machine.label(s, lang)} for s in machine.known],
        "allowed": {s: machine.allowed(s) for s in machine.known},
        "delivered": machine.delivered,
        "final": sorted(FINAL),
        "drivers": drivers,
        "stale_after_ms": svc.settings.stale_after_s * 1000,
        "online_window_ms": svc.settings.online_window_s * 1000,
        "delay_grace_ms": svc.settings.delay_grace_s * 1000,
        "viewport_drivers": svc.settings.dispatch_viewport_drivers,
    }


async def _dashboard(request: Request, office: backoffice.Office) -> HTMLResponse:
    svc, settings, lang = services(request), office.settings, office.lang
    words = DISPATCH[lang]
    names = await svc.repo.driver_names(office.session.store_id)
    tiles = tile_layer(settings.branding, svc.settings)
    page = figure(lang, f"{words['title']} · {settings.name}", "/static/dispatch.css")
    # office.js first: dispatch.js fills its words' {n} fields with the back office's helper.
    for n, src in enumerate(("/static/reconnect.js", "/static/office.js", "/static/dispatch.js")):
        page.header.add_child(Script(src, defer=True), name=f"script{n}")
    # The world until the first snapshot, which fits the map to the fleet.
    m = DispatchMap(location=[20.0, 0.0], zoom_start=2, tiles=None, control_scale=True)
    tiles.add_to(m)
    page.add_child(m)
    panel = _DASHBOARD.render(
        s=words,
        lang=lang,
        store=settings.name,
        who=office.session.account or words["store_key"],
        owner=office.session.owner,
        csrf=office.session.csrf,
        signout=f"/dispatch/signout{_lang_query(request)}",
        config=script_json(_config(request, office, m.get_name(), names)),
    )
    page.html.add_child(Fragment(panel), name="panel")
    return render(page, body_class="dp-dashboard", images=[csp.source(tiles.tiles)])


async def dispatch_page(request: Request) -> Response:
    """GET: the dashboard when signed in, else the sign-in form. POST: sign in."""
    if request.method == "POST":
        return await _sign_in(request)
    office = await backoffice.signed_in(request)
    if office is None:
        return _signin_page(request, request.query_params.get("store", ""))
    return await _dashboard(request, office)


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
        return _signin_page(request, store_id, "err_origin", 403)
    client = request.client.host if request.client else "-"
    failures = svc.repo.keys.signin_failures(client)
    # Counted as a failure before the password is checked, given back if it is right: a burst of
    # guesses gets at most FAILED_SIGNINS checks, however many arrive at once.
    if await attempts.take(svc.repo.redis, failures, WINDOW_S) > FAILED_SIGNINS:
        return _signin_page(request, store_id, "err_limited", 429)
    token = await _open_session(svc.repo, form, svc.settings.session_ttl_s)
    if token is None:
        return _signin_page(request, store_id, "err_wrong", 401)
    await attempts.give_back(svc.repo.redis, failures)
    response = RedirectResponse(f"/dispatch{_lang_query(request)}", status_code=303)
    sessions.set_cookie(response, request, token, svc.settings.session_ttl_s)
    return response


async def sign_out(request: Request) -> Response:
    """`POST /dispatch/signout` (form field `csrf`): ends the session everywhere and clears the cookie."""
    store = services(request).repo
    token = request.cookies.get(sessions.COOKIE, "")
    session = await sessions.load(store, token)
    given = (await bodies.form(request)).get("csrf", "")
    response = RedirectResponse(f"/dispatch{_lang_query(request)}", status_code=303)
    # Without the page's CSRF token another site could sign the dispatcher out: then nothing happens.
    if session is None or security.same_secret(given, session.csrf):
        await sessions.end(store, token)
        sessions.clear_cookie(response, request)
    return response
