"""A driver's sign-in link: the driver app's URL with the token in its fragment, and that link as a QR code.

One place builds the link, for the API (`POST /api/drivers`, `.../token`) and for the demo's console alike.
The token goes after `#`: browsers never send a fragment to the server, so it reaches no request line or log
(static/driver.js moves it into the phone's storage and drops it from the address bar).
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno

#: Modules of light margin around the code: the quiet zone ISO/IEC 18004 asks for, which scanners rely on.
QUIET_ZONE = 4


def driver_sign_in_url(base_url: str, token: str) -> str:
    """`<base_url>/driver#token=<token>`: opens the driver app signed in with `token`."""
    return f"{base_url.rstrip('/')}/driver#{urlencode({'token': token})}"


def qr_svg(url: str) -> str:
    """An SVG document of a QR code of `url`: black modules on white with the quiet zone, sized by its viewBox
    only (no width or height), so it fills whatever box a page gives it, a phone's screen included."""
    # Level M at least (segno raises it when the same version has room): a code shown on a screen with glare or
    # photographed at an angle still reads. Never a Micro QR, which many phone cameras do not read.
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        border=QUIET_ZONE,
        dark="#000",
        light="#fff",
        omitsize=True,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        nl=False,
    )
    # Module edges on whole device pixels: scaled to a fractional size, anti-aliased seams between rows of
    # modules would otherwise show as grey lines.
    return out.getvalue().decode().replace("<svg ", '<svg shape-rendering="crispEdges" ', 1)
