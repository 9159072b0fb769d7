"""The Content-Security-Policy and the other headers every HTML page is served with.

Scripts run only with this response's nonce: an injected `<script>` or `onerror=` does nothing
even if some store string ever reached a page unescaped. Every page is answered through
`html_response`, so the policy is written once, here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

#: Who may frame our pages: nobody, but a store's own sites (its `embed.origins`) its widget's pages.
FRAME_ANCESTORS: tuple[str, ...] = ("'none'",)

# A host a CSP source may name as-is; anything else (a `{s}` subdomain placeholder in the middle,
# stray characters) must never reach the header, where `;` or `,` would start a directive of its own.
_HOST = re.compile(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?")
_PLACEHOLDER = re.compile(r"^\{[a-z]+\}\.")  # Leaflet's `{s}.tile.example.org`


def new_nonce() -> str:
    """A fresh script nonce (128 bits), one per response."""
    return secrets.token_urlsafe(16)


def source(url: str) -> str:
    """The CSP source that allows images from `url`, a tile URL template or a logo URL.

    `https://{s}.tile.example.org/{z}/...` gives `https://*.tile.example.org`; a URL whose host
    cannot be written as a source falls back to its scheme (`https:`), wider but still no script.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket: the scheme alone, not a broken page
        return f"{scheme}:"
    host = _PLACEHOLDER.sub("*.", netloc.rsplit("@", 1)[-1].lower())
    return f"{scheme}://{host}" if _HOST.fullmatch(host) else f"{scheme}:"


def policy(nonce: str, images: Iterable[str] = (), frame_ancestors: Sequence[str] = FRAME_ANCESTORS) -> str:
    """The policy for a page whose scripts carry `nonce`, which shows images from `images` (sources) and
    may be framed by `frame_ancestors` (origins, already checked as such; none: 'none')."""
    return "; ".join(
        (
            "default-src 'self'",
            # Only our own script tags: each carries the nonce (no 'self': a same-origin URL that
            # echoes store text could otherwise be loaded as a script).
            f"script-src 'nonce-{nonce}'",
            # folium and Leaflet position the map, its tiles and markers with inline style attributes,
            # and the store's theme is a <style> block: styles cannot run script.
            "style-src 'self' 'unsafe-inline'",
            # data: for the 1x1 GIF Leaflet puts in tiles it drops; tiles and a store's logo: their own origins.
            " ".join(("img-src 'self' data:", *sorted(set(images)))),
            # 'self' covers our own ws:// and wss:// too (CSP 3; the live pages' sockets are checked in Chromium).
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors " + (" ".join(frame_ancestors) or "'none'"),
        )
    )


def html_response(
    build: Callable[[str], str],
    status: int = 200,
    images: Iterable[str] = (),
    referrer: str = "no-referrer",
    frame_ancestors: Sequence[str] = FRAME_ANCESTORS,
) -> HTMLResponse:
    """A page built by `build(nonce)`, with its policy and the headers every page carries.

    `referrer`: tracking links carry their token in the query, so by default a page sends no Referer
    at all (map tiles ask with the origin only, by their own policy: see `pages.tile_layer`). Under
    no-referrer a browser also sends `Origin: null` with the page's form posts: a page whose form
    post is checked for our Origin (the dispatcher's sign-in, against login CSRF) uses "same-origin".
    """
    nonce = new_nonce()
    return HTMLResponse(
        build(nonce),
        status_code=status,
        headers={
            "Cache-Control": "no-store",  # personal (tracking token, session), and the nonce must not be reused
            "Content-Security-Policy": policy(nonce, images, frame_ancestors),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": referrer,
        },
    )
