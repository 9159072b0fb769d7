"""`/track/{tracking_id}`: the customer's tracking page, a folium-built Leaflet map plus static/tracking.js.

folium builds the map scaffolding (the Leaflet map, tile layer, route, destination) into a
branca Figure (`layout.Page`); the page's own markup and assets are added to the same Figure. Leaflet and every
other asset are served from `static/` (no CDN at run time); only map tiles come from the
configured tile server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import folium
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemap.domain.i18n import STRINGS, Lang, negotiate
from livemap.domain.responses import Snapshot
from livemap.domain.returns import ReturnRecord, window_closes
from livemap.domain.stages import EXCEPTIONS, StageMachine
from livemap.domain.storesettings import StoreSettings
from livemap.services import services
from livemap.web import csp
from livemap.web.auth import authorize_tracking
from livemap.web.errors import ApiError
from livemap.web.pages import embed
from livemap.web.pages.layout import Fragment, Script, figure, render, script_json, templates
from livemap.web.pages.maps import TrackingMap, tile_layer
from livemap.web.pages.theme import ink_on_white, theme_style
from livemap.web.presenters import customer_snapshot

_PANEL = templates.get_template("tracking_panel.html")
_ERROR = templates.get_template("tracking_error.html")


def _pipeline(machine: StageMachine, lang: Lang) -> list[dict[str, str]]:
    return [{"id": s, "label": machine.label(s, lang)} for s in (*machine.pipeline, *EXCEPTIONS)]


def _build_map(
    snapshot: Snapshot, strings: dict[str, str], color: str, tiles: folium.TileLayer
) -> tuple[TrackingMap, str | None]:
    """The map, and the route line's script name (tracking.js redraws it when the route changes)."""
    dest = snapshot.order.destination
    center = [dest.lat, dest.lon] if dest else [0.0, 0.0]
    m = TrackingMap(location=center, zoom_start=15, tiles=None, control_scale=True)
    tiles.add_to(m)
    route_layer = None
    if snapshot.order.route:
        line = folium.PolyLine(  # type: ignore[no-untyped-call]  # folium leaves PolyLine unannotated
            snapshot.order.route, color=color, weight=5, opacity=0.7
        )
        line.add_to(m)
        route_layer = line.get_name()
    if dest:
        folium.CircleMarker([dest.lat, dest.lon], radius=9, color="#ffffff", weight=3, fill=True,
                            fill_color="#c0392b", fill_opacity=1, tooltip=strings["destination"]).add_to(m)  # fmt: skip
    return m, route_layer


def _returns_config(settings: StoreSettings, snapshot: Snapshot, current: ReturnRecord | None) -> dict[str, Any]:
    """The built-in returns (no `returns_url`): until when one may be asked for, and the order's own."""
    closes = window_closes(snapshot.order.history, settings.returns.window_days)
    return {"closes_at": closes, "current": msgspec.to_builtins(current) if current else None}


def _page_config(
    settings: StoreSettings, snapshot: Snapshot, lang: Lang, current: ReturnRecord | None
) -> dict[str, Any]:
    """What tracking.js is told about the store and the order (see its `cfg`), map and link aside."""
    machine = settings.machine()
    return {
        "lang": lang,
        "timezone": settings.timezone,
        "strings": STRINGS[lang],
        "pipeline": _pipeline(machine, lang),
        "delivered": machine.delivered,
        "snapshot": msgspec.to_builtins(snapshot),
        "returns_url": settings.returns_url,
        "returns": _returns_config(settings, snapshot, current),
    }


def error_page(lang: Lang, status: int) -> HTMLResponse:
    s = STRINGS[lang]
    page = figure(lang, s["invalid_title"])
    page.html.add_child(Fragment(_ERROR.render(s=s)))
    return render(page, status, body_class="lm-nomap")


async def tracking_page(request: Request) -> Response:
    """`GET /track/{tracking_id}?t=TOKEN`: the customer's live tracking page."""
    svc = services(request)
    tid = request.path_params["tracking_id"]
    query_lang = request.query_params.get("lang")
    try:
        await authorize_tracking(request, tid)
    except ApiError as err:
        return error_page(negotiate(query_lang, request.headers.get("accept-language", "")), err.status)
    snapshot = await customer_snapshot(svc.repo, tid, svc.settings)
    order = await svc.repo.order(tid)
    settings = await svc.repo.settings(order["store"])
    lang = negotiate(query_lang, request.headers.get("accept-language", ""), settings.locale)
    view = Customer(order["store"], request.query_params.get("t", ""), svc.repo.return_of(order))
    return page_for(request, settings, snapshot, lang, view)


@dataclass(frozen=True, slots=True)
class Customer:
    """Whose page it is: the order's store, the link's token (the page's own API calls), the order's return.
    `preview`: the settings page's sample of it, which opens no socket and counts no view."""

    store_id: str
    token: str
    current_return: ReturnRecord | None
    preview: bool = False


def page_for(
    request: Request, settings: StoreSettings, snapshot: Snapshot, lang: Lang, customer: Customer
) -> HTMLResponse:
    """The tracking page of `snapshot` for its customer, in the store's branding."""
    strings = STRINGS[lang]
    tiles = tile_layer(settings.branding, services(request).settings)
    page = figure(lang, f"{strings['title']} · {settings.name}")
    page.header.add_child(Fragment(theme_style(settings)), name="theme")
    # Deferred: runs after the page (and folium's inline map script) has been parsed.
    for script in ("reconnect", "photo", "tracking"):
        page.header.add_child(Script(f"/static/{script}.js", defer=True), name=script)
    embed.add_frame_script(page, request)
    # The route in the brand colour, darkened if need be to stand out on light map tiles.
    route_color = ink_on_white(settings.branding.primary_color)
    m, route_layer = _build_map(snapshot, strings, route_color, tiles)
    page.add_child(m)
    config = {
        **_page_config(settings, snapshot, lang, customer.current_return),
        "map": m.get_name(),
        "route_layer": route_layer,
        "route_color": route_color,
        "tracking_id": snapshot.order.tracking_id,
        "token": customer.token,
        "preview": customer.preview,
    }
    panel = _PANEL.render(
        s=strings,
        store=settings.name,
        store_id=customer.store_id,
        logo=settings.branding.logo_url,
        returns_url=settings.returns_url,
        reasons=settings.returns.reasons,
        channels=snapshot.order.channels,
        number=strings["order"].format(number=snapshot.order.number),
        config=script_json(config),
        embed=embed.in_widget(request),
    )
    page.html.add_child(Fragment(panel), name="panel")
    logo = settings.branding.logo_url
    images = [csp.source(tiles.tiles), *([csp.source(logo)] if logo else [])]
    # The settings page frames its preview; a customer's page is framed only by the store's own sites.
    ancestors = ("'self'",) if customer.preview else embed.frame_ancestors(request, settings)
    return render(page, body_class=f"tpl-{settings.branding.template}", images=images, frame_ancestors=ancestors)
