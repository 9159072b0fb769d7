"""`GET /driver`: the drivers' web app (static/driver.js), list first, made for a phone.

The page itself is the same for every driver and carries no credential: the driver token is typed
into its sign-in form or arrives as `/driver#token=...` (a fragment never reaches the server or
its logs), and the app keeps it in the phone's localStorage. Everything else goes through the
public API: `/ws/driver` for fixes and stops, `/api/driver/...` for stage changes and proof.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.i18n import negotiate
from livemap.domain.i18n_driver import DRIVER
from livemap.domain.stages import LABELS
from livemap.services import services
from livemap.web import csp
from livemap.web.pages.layout import script_json, templates

#: Most fixes the phone keeps while offline; past it the oldest go (the newest matter most for the ETA).
MAX_BUFFER = 5000
# The page holds a credential in localStorage: its policy (csp.py) lets only our own scripts run.

_PAGE = templates.get_template("driver.html")


async def driver_page(request: Request) -> Response:
    """`GET /driver[?lang=es]`: the driver app (sign-in form until a token is stored on the phone)."""
    settings = services(request).settings
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""))
    strings = DRIVER[lang]
    config: dict[str, Any] = {
        "lang": lang,
        "strings": strings,
        "stages": {stage: labels.get(lang, labels["en"]) for stage, labels in LABELS.items()},
        "max_frame_bytes": settings.max_frame_bytes,
        "max_batch": settings.max_batch,
        "max_buffer": MAX_BUFFER,
    }
    return csp.html_response(lambda nonce: _PAGE.render(lang=lang, s=strings, nonce=nonce, config=script_json(config)))
