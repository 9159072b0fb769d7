"""The maps' parts drawn by folium: Leaflet from `static/` with our script tags, and the tile layer."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from typing import Any, ClassVar

import folium
from branca.element import Figure
from folium.template import Template as FoliumTemplate

from livemap.domain.storesettings import Branding
from livemap.settings import Settings
from livemap.web.pages.layout import Script


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
