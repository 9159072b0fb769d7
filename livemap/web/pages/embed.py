"""The tracking widget a store puts on its own site: `/embed.js` frames our lookup form and tracking page.

A page is in widget mode with `?embed=1`: then (and only then) it may be framed, by the origins the
store listed in `embed.origins` and by nobody else (CSP `frame-ancestors`; with none listed, still
'none'), and it tells its frame's page how tall it is (`static/embed-frame.js`), which `/embed.js`
uses to size the iframe. Links and redirects inside the widget keep `embed=1`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from livemap.domain.storesettings import StoreSettings
from livemap.web import csp
from livemap.web.pages.layout import STATIC_DIR, Page, Script


def in_widget(request: Request) -> bool:
    return request.query_params.get("embed") == "1"


def frame_ancestors(request: Request, settings: StoreSettings | None) -> tuple[str, ...]:
    """Who may frame this response: the store's listed origins in widget mode, else nobody."""
    if not in_widget(request) or settings is None:
        return csp.FRAME_ANCESTORS
    return tuple(settings.embed.origins) or csp.FRAME_ANCESTORS


def add_frame_script(page: Page, request: Request) -> None:
    """In widget mode, the script that reports the page's height to the framing page."""
    if in_widget(request):
        page.header.add_child(Script("/static/embed-frame.js", defer=True), name="embed")


async def embed_js(request: Request) -> Response:
    """`GET /embed.js`: the store's `<script src=".../embed.js" data-store="ID">` (see the README)."""
    return FileResponse(
        STATIC_DIR / "embed.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
