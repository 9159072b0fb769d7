"""HTML pages. The customer's tracking page: a folium-built Leaflet map plus static/tracking.js.

folium builds the map scaffolding (the Leaflet map, tile layer, route, destination) into a
branca Figure; the page's own markup and assets are added to the same Figure. Leaflet and every
other asset are served from `static/` (no CDN at run time); only map tiles come from the
configured tile server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import folium
import msgspec
from branca.element import Element, Figure
from folium.template import Template as FoliumTemplate
from jinja2 import Environment, Template
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from livemap.domain.i18n import STRINGS, Lang, negotiate
from livemap.domain.responses import Snapshot
from livemap.domain.stages import EXCEPTIONS, StageMachine
from livemap.domain.storesettings import Branding, StoreSettings
from livemap.services import services
from livemap.settings import Settings
from livemap.web import csp
from livemap.web.auth import authorize_tracking
from livemap.web.errors import ApiError
from livemap.web.presenters import customer_snapshot

# The repository's top-level static/, through the `livemap/static` link in a checkout; a wheel carries
# the files themselves there (package data), so an installed livemap serves them too.
STATIC_DIR = Path(__file__).resolve().parent / "static"
WHITE, BLACK = "#ffffff", "#000000"
AA = 4.5  # WCAG 2 level AA: the least contrast for body text
_encode = msgspec.json.Encoder().encode
# Every template that takes a store's strings escapes them (jinja2's Template() alone does not).
_HTML = Environment(autoescape=True)
# Characters that end or confuse a <script> element, or end a line in older JavaScript: only ever
# inside JSON strings, where their \u escapes mean the same.
_SCRIPT_UNSAFE = str.maketrans({c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})


def script_json(value: Any) -> str:
    """`value` as JSON that is safe inside a <script> element (`</script>`, `<!--` and the like cannot appear)."""
    return _encode(value).decode().translate(_SCRIPT_UNSAFE)


class Page(Figure):
    """branca's Figure with an escaped title, the page's language and body class, and a nonce on its script.

    The nonce reaches the page only here and in `Script`: as the value of our own templates' `nonce`
    attributes, filled in by jinja from `self.nonce` when the page is rendered. Store strings are
    escaped where they are inserted, and nothing searches the rendered page for tags to stamp, so a
    `<script>` a store wrote, even one that slipped through unescaped, never gets the nonce.
    """

    _template = _HTML.from_string(
        """<!DOCTYPE html>
<html lang="{{ this.lang }}">
<head>
{% if this.title %}<title>{{ this.title }}</title>{% endif %}
{{ this.header.render(**kwargs)|safe }}
</head>
<body class="{{ this.body_class }}">
{{ this.html.render(**kwargs)|safe }}
<script nonce="{{ this.nonce }}">
{{ this.script.render(**kwargs)|safe }}
</script>
</body>
</html>
"""
    )

    def __init__(self, lang: Lang, title: str) -> None:
        super().__init__(title=title)
        self.lang = lang
        self.body_class = ""
        self.nonce = ""  # set by `render` (folium's elements take no render arguments to pass it down)


class Script(Element):
    """`<script src>` of our own, carrying the response's nonce."""

    _template = _HTML.from_string(
        '<script src="{{ this.url }}" nonce="{{ this.get_root().nonce }}"{% if this.defer %} defer{% endif %}></script>'
    )

    def __init__(self, url: str, defer: bool = False) -> None:
        super().__init__()
        self.url, self.defer = url, defer


class _Attribution(HTMLParser):
    """A tile credit a store wrote, reduced to text and plain http(s) links (Leaflet shows it as HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links = 0  # open <a> we kept

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") or ""
        if tag == "a" and re.match(r"https?://", href, re.IGNORECASE):
            self.out.append(f'<a href="{escape(href)}">')
            self.links += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            self.out.append("</a>")
            self.links -= 1

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data))


def safe_attribution(html: str) -> str:
    """`html` with only its text and its http(s) links left, every other tag and attribute dropped."""
    parser = _Attribution()
    parser.feed(html)
    parser.close()
    return "".join(parser.out) + "</a>" * parser.links


_PANEL = Template(
    """
<header class="lm-header">
  {% if logo %}<img class="lm-logo" src="{{ logo }}" alt="{{ store }}">
  {% else %}<span class="lm-store">{{ store }}</span>{% endif %}
  <span class="lm-conn" id="lm-conn" role="status">{{ s.connecting }}</span>
</header>
<main class="lm-panel" aria-live="polite">
  <p class="lm-number" id="lm-number">{{ number }}</p>
  <h1 class="lm-eta" id="lm-eta">{{ s.title }}</h1>
  <p class="lm-notice" id="lm-notice" hidden></p>
  <p class="lm-seen" id="lm-seen" hidden></p>
  {# Proof of delivery (who took it, the driver's photo): tracking.js fetches it once the order is delivered. #}
  <section class="lm-proof" id="lm-proof" aria-labelledby="lm-proof-h" hidden>
    <h2 id="lm-proof-h">{{ s.proof_title }}</h2>
    <p class="lm-proof-recipient" id="lm-proof-recipient" hidden></p>
    <img class="lm-proof-photo" id="lm-proof-photo" alt="{{ s.proof_photo }}" hidden>
  </section>
  {# Shown by tracking.js once the order is delivered (it may happen while the page is open). #}
  <section class="lm-feedback" id="lm-feedback" aria-labelledby="lm-feedback-h" hidden>
    <h2 id="lm-feedback-h">{{ s.feedback_title }}</h2>
    <form class="lm-form" id="lm-rate">
      <fieldset>
        <legend>{{ s.rating }}</legend>
        <div class="lm-stars">
          {% for n in range(1, 6) %}
          <input type="radio" name="rating" value="{{ n }}" id="lm-star-{{ n }}" required>
          <label for="lm-star-{{ n }}"><span class="lm-sr">{{ s.stars.format(n=n) }}</span></label>
          {% endfor %}
        </div>
      </fieldset>
      <label for="lm-comment">{{ s.comment }}</label>
      <textarea id="lm-comment" name="comment" rows="3" maxlength="2000"></textarea>
      <button type="submit">{{ s.send_rating }}</button>
      <p class="lm-failed" id="lm-rate-failed" role="alert" hidden>{{ s.failed }}</p>
    </form>
    <div class="lm-rated" id="lm-rated" hidden>
      <p class="lm-thanks" id="lm-thanks" role="status"></p>
      <button type="button" class="lm-quiet" id="lm-rerate">{{ s.change_rating }}</button>
    </div>
  </section>
  {% if returns_url %}
  <p class="lm-return" id="lm-return" hidden><a href="{{ returns_url }}">{{ s.start_return }}</a></p>
  {% endif %}
  <section aria-labelledby="lm-status-h"><h2 id="lm-status-h">{{ s.status }}</h2>
    <ol class="lm-timeline" id="lm-timeline"></ol></section>
  {% if channels %}
  <form class="lm-form lm-updates" id="lm-updates" hidden>
    <fieldset>
      <legend>{{ s.updates }}</legend>
      {% for channel in channels %}
      <div class="lm-check">
        <input type="checkbox" id="lm-sub-{{ channel }}" name="{{ channel }}">
        <label for="lm-sub-{{ channel }}">{{ s["by_" + channel] }}</label>
      </div>
      {% endfor %}
    </fieldset>
    <p class="lm-saved" id="lm-updates-status" role="status"></p>
  </form>
  {% endif %}
  <dl class="lm-details" id="lm-details"></dl>
  <p class="lm-another"><a href="/track?store={{ store_id|urlencode }}">{{ s.another }}</a></p>
</main>
<script type="application/json" id="lm-config">{{ config|safe }}</script>
""",
    autoescape=True,
)
_ERROR = Template(
    '<main class="lm-error"><h1>{{ s.invalid_title }}</h1><p>{{ s.invalid_body }}</p></main>', autoescape=True
)


class TrackingMap(folium.Map):
    """folium's Map with vendored Leaflet and a header that lets people zoom the page (accessibility)."""

    default_js = []  # noqa: RUF012 - folium's own attribute; its links have no nonce: `scripts` instead
    default_css = [("leaflet_css", "/static/vendor/leaflet/leaflet.css")]  # noqa: RUF012
    scripts: ClassVar[list[tuple[str, str]]] = [("leaflet", "/static/vendor/leaflet/leaflet.js")]
    _template = FoliumTemplate(  # folium's Template: it provides the tojavascript filter
        """
        {% macro header(this, kwargs) %}
            <style>#{{ this.get_name() }} { position: relative; width: 100%; height: 100%; }</style>
        {% endmacro %}
        {% macro html(this, kwargs) %}
            <div class="folium-map lm-map" id={{ this.get_name()|tojson }} role="region"
                 aria-label="{{ kwargs.get('label', '') }}"></div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.map({{ this.get_name()|tojson }}, {
                center: {{ this.location|tojson }}, crs: L.CRS.{{ this.crs }}, ...{{ this.options|tojavascript }}
            });
        {% endmacro %}
        """
    )

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # folium's returns None, not branca's str
        """Adds our script links (with the nonce) to the page, where folium would add its own."""
        page = self.get_root()
        assert isinstance(page, Figure), "a map renders inside a page"
        for name, url in self.scripts:
            page.header.add_child(Script(url), name=name)
        super().render(**kwargs)  # type: ignore[no-untyped-call]  # folium leaves render unannotated


def tile_layer(branding: Branding, server: Settings) -> folium.TileLayer:
    """The store's map tiles (or the server's), credited with links only, asked for with the page's origin only."""
    return folium.TileLayer(
        tiles=branding.tile_url or server.tile_url,
        # A store's credit is shown by Leaflet as HTML: it keeps its links, nothing else.
        attr=safe_attribution(branding.tile_attribution) if branding.tile_attribution else server.tile_attribution,
        max_zoom=19,
        # The page sends no Referer (its URL holds the tracking token), but tile servers such as
        # OpenStreetMap's block browsers that send none: tiles send the origin alone (nothing over http
        # from an https page). Leaflet 1.9 sets it on each tile <img>, which overrides the page's policy.
        referrer_policy="strict-origin",
    )


def figure(lang: Lang, title: str) -> Page:
    """A page with our viewport and stylesheet; callers add their markup to its `html`."""
    fig = Page(lang, title)
    fig.header.add_child(
        Element('<meta name="viewport" content="width=device-width, initial-scale=1">'), name="viewport"
    )
    fig.header.add_child(Element('<link rel="stylesheet" href="/static/tracking.css">'), name="css")
    return fig


def render(
    page: Page, status: int = 200, body_class: str = "", images: Iterable[str] = (), referrer: str = "no-referrer"
) -> HTMLResponse:
    """The finished page as a response with its security headers (`images`, `referrer`: see `csp.html_response`)."""
    page.body_class = body_class

    def build(nonce: str) -> str:
        page.nonce = nonce
        return page.render()

    return csp.html_response(build, status, images, referrer)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _luminance(color: str) -> float:
    """WCAG 2 relative luminance of a `#rrggbb` colour."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in _rgb(color)))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours, from 1 (none) to 21 (black on white)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_on(background: str) -> str:
    """White text on a store's colour when it reads well enough (WCAG AA), else black.

    Black, not the page's ink: every colour gives at least 4.58:1 with white or with black, but
    a pale grey ink would fall short on some mid tones.
    """
    return WHITE if contrast(WHITE, background) >= AA else BLACK


def ink_on_white(color: str) -> str:
    """`color` darkened just enough to read as text on the white panel (a pale brand colour as link text)."""
    rgb = _rgb(color)
    while contrast(_hex(rgb), WHITE) < AA:
        r, g, b = rgb
        rgb = (int(r * 0.9), int(g * 0.9), int(b * 0.9))  # reaches black (21:1) at worst
    return _hex(rgb)


def _color(value: str) -> str:
    # StoreSettings checks the pattern on every decode; this <style> block is where a value that
    # got past it could close the element, so it is checked again where it is used.
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return value


def _theme(settings: StoreSettings) -> str:
    primary, accent = _color(settings.branding.primary_color), _color(settings.branding.accent_color)
    on_primary = text_on(primary)
    # The connection badge sits on the brand colour: shade it away from its text, never towards it,
    # and give its "live" dot a green that shows on it (light on dark, dark on light).
    badge, live = (
        ("rgba(0, 0, 0, 0.25)", "#7dffb0") if on_primary == WHITE else ("rgba(255, 255, 255, 0.45)", "#0b6e3c")
    )
    return (
        f"<style>:root {{ --lm-primary: {primary}; --lm-on-primary: {on_primary};"
        f" --lm-primary-ink: {ink_on_white(primary)}; --lm-accent: {accent};"
        f" --lm-badge: {badge}; --lm-live: {live}; }}</style>"
    )


def _pipeline(machine: StageMachine, lang: Lang) -> list[dict[str, str]]:
    return [{"id": s, "label": machine.label(s, lang)} for s in (*machine.pipeline, *EXCEPTIONS)]


def _build_map(snapshot: Snapshot, strings: dict[str, str], color: str, tiles: folium.TileLayer) -> TrackingMap:
    dest = snapshot.order.destination
    center = [dest.lat, dest.lon] if dest else [0.0, 0.0]
    m = TrackingMap(location=center, zoom_start=15, tiles=None, control_scale=True)
    tiles.add_to(m)
    if snapshot.order.route:
        folium.PolyLine(  # type: ignore[no-untyped-call]  # folium leaves PolyLine unannotated
            snapshot.order.route, color=color, weight=5, opacity=0.7
        ).add_to(m)
    if dest:
        folium.CircleMarker([dest.lat, dest.lon], radius=9, color="#ffffff", weight=3, fill=True,
                            fill_color="#c0392b", fill_opacity=1, tooltip=strings["destination"]).add_to(m)  # fmt: skip
    return m


def error_page(lang: Lang, status: int) -> HTMLResponse:
    s = STRINGS[lang]
    page = figure(lang, s["invalid_title"])
    page.html.add_child(Element(_ERROR.render(s=s)))
    return render(page, status)


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
    strings = STRINGS[lang]
    tiles = tile_layer(settings.branding, svc.settings)
    page = figure(lang, f"{strings['title']} · {settings.name}")
    page.header.add_child(Element(_theme(settings)), name="theme")
    # Deferred: runs after the page (and folium's inline map script) has been parsed.
    page.header.add_child(Script("/static/reconnect.js", defer=True), name="reconnect")
    page.header.add_child(Script("/static/tracking.js", defer=True), name="js")
    # The route in the brand colour, darkened if need be to stand out on light map tiles.
    m = _build_map(snapshot, strings, ink_on_white(settings.branding.primary_color), tiles)
    page.add_child(m)
    machine = settings.machine()
    config: dict[str, Any] = {
        "map": m.get_name(),
        "tracking_id": tid,
        "token": request.query_params.get("t", ""),
        "lang": lang,
        "timezone": settings.timezone,
        "strings": strings,
        "pipeline": _pipeline(machine, lang),
        "delivered": machine.delivered,
        "snapshot": msgspec.to_builtins(snapshot),
        "returns_url": settings.returns_url,
    }
    panel = _PANEL.render(
        s=strings,
        store=settings.name,
        store_id=order["store"],
        logo=settings.branding.logo_url,
        returns_url=settings.returns_url,
        channels=snapshot.order.channels,
        number=strings["order"].format(number=snapshot.order.number),
        config=script_json(config),
    )
    page.html.add_child(Element(panel), name="panel")
    logo = settings.branding.logo_url
    images = [csp.source(tiles.tiles), *([csp.source(logo)] if logo else [])]
    return render(page, body_class=f"tpl-{settings.branding.template}", images=images)
