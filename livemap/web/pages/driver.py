"""`GET /driver`: the drivers' web app (static/driver.js), list first, made for a phone.

The page itself is the same for every driver and carries no credential: the driver token is typed
into its sign-in form or arrives as `/driver#token=...` (a fragment never reaches the server or
its logs), and the app keeps it in the phone's localStorage. Everything else goes through the
public API: `/ws/driver` for fixes and stops, `/api/driver/...` for stage changes and proof.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.i18n import STRINGS, negotiate
from livemap.domain.stages import LABELS
from livemap.services import services
from livemap.web import csp
from livemap.web.pages.tracking import script_json

#: Most fixes the phone keeps while offline; past it the oldest go (the newest matter most for the ETA).
MAX_BUFFER = 5000
# The page holds a credential in localStorage: its policy (csp.py) lets only our own scripts run.

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="theme-color" content="#0a7d5a">
<title>{{ s.drv_title }} · livemap</title>
<link rel="stylesheet" href="/static/driver.css">
<script src="/static/reconnect.js" nonce="{{ nonce }}" defer></script>
<script src="/static/driver.js" nonce="{{ nonce }}" defer></script>
</head>
<body>
<header class="dr-header">
  <h1 class="dr-title">{{ s.drv_title }} <span id="dr-name"></span></h1>
  <button type="button" class="dr-quiet" id="dr-signout" hidden>{{ s.drv_signout }}</button>
</header>
<main>
  <form class="dr-card dr-signin" id="dr-signin" hidden>
    <h2>{{ s.drv_signin }}</h2>
    <p class="dr-help">{{ s.drv_signin_help }}</p>
    <label for="dr-token">{{ s.drv_token }}</label>
    <input id="dr-token" name="token" type="password" required autocomplete="off" spellcheck="false"
           autocapitalize="off">
    <button type="submit">{{ s.drv_signin }}</button>
    <p class="dr-error" id="dr-signin-error" role="alert" hidden></p>
  </form>
  <div id="dr-app" hidden>
    <section class="dr-card dr-shift" aria-labelledby="dr-shift-state">
      <p class="dr-shift-state" id="dr-shift-state" role="status">{{ s.drv_off_shift }}</p>
      <button type="button" class="dr-shift-button" id="dr-shift">{{ s.drv_start_shift }}</button>
      <dl class="dr-status">
        <div><dt>{{ s.drv_connection }}</dt><dd id="dr-conn" data-state="connecting">{{ s.drv_connecting }}</dd></div>
        <div><dt>{{ s.drv_gps }}</dt><dd id="dr-gps" data-state="off">{{ s.drv_gps_off }}</dd></div>
        <div><dt>{{ s.drv_last_sent }}</dt><dd id="dr-ack">{{ s.drv_never }}</dd></div>
        <div><dt>{{ s.drv_waiting }}</dt><dd id="dr-buffered">0</dd></div>
        <div><dt>{{ s.drv_screen }}</dt><dd id="dr-wake" data-state="off">{{ s.drv_wake_off }}</dd></div>
      </dl>
      <p class="dr-note" id="dr-offline-note" hidden>{{ s.drv_offline_note }}</p>
      <p class="dr-flushed" id="dr-flushed" role="status"></p>
    </section>
    <section aria-labelledby="dr-stops-h">
      <h2 id="dr-stops-h">{{ s.drv_stops }}</h2>
      <p class="dr-empty" id="dr-no-stops">{{ s.drv_no_stops }}</p>
      <ol class="dr-stops" id="dr-stops"></ol>
    </section>
  </div>
</main>
<dialog class="dr-dialog" id="dr-deliver" aria-labelledby="dr-deliver-h">
  <form method="dialog" id="dr-deliver-form">
    <h2 id="dr-deliver-h">{{ s.drv_delivered }}</h2>
    <p class="dr-dialog-stop" id="dr-deliver-stop"></p>
    <label for="dr-recipient">{{ s.drv_recipient }}</label>
    <input id="dr-recipient" name="recipient" maxlength="200" autocomplete="off">
    <label for="dr-photo">{{ s.drv_photo }}</label>
    <input id="dr-photo" name="photo" type="file" accept="image/*" capture="environment">
    <p class="dr-error" id="dr-deliver-error" role="alert" hidden></p>
    <div class="dr-dialog-buttons">
      <button type="button" class="dr-quiet" data-close>{{ s.drv_cancel }}</button>
      <button type="submit" value="confirm">{{ s.drv_confirm_delivery }}</button>
    </div>
  </form>
</dialog>
<dialog class="dr-dialog" id="dr-fail" aria-labelledby="dr-fail-h">
  <form method="dialog" id="dr-fail-form">
    <h2 id="dr-fail-h">{{ s.drv_failed_attempt }}</h2>
    <p class="dr-dialog-stop" id="dr-fail-stop"></p>
    <label for="dr-note">{{ s.drv_note }}</label>
    <textarea id="dr-note" name="note" rows="3" maxlength="1000"></textarea>
    <p class="dr-error" id="dr-fail-error" role="alert" hidden></p>
    <div class="dr-dialog-buttons">
      <button type="button" class="dr-quiet" data-close>{{ s.drv_cancel }}</button>
      <button type="submit" value="confirm">{{ s.drv_confirm_failed }}</button>
    </div>
  </form>
</dialog>
<script type="application/json" id="dr-config">{{ config|safe }}</script>
</body>
</html>
""",
    autoescape=True,
)


async def driver_page(request: Request) -> Response:
    """`GET /driver[?lang=es]`: the driver app (sign-in form until a token is stored on the phone)."""
    settings = services(request).settings
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""))
    strings = STRINGS[lang]
    config: dict[str, Any] = {
        "lang": lang,
        "strings": {k: v for k, v in strings.items() if k.startswith("drv_")},
        "stages": {stage: labels.get(lang, labels["en"]) for stage, labels in LABELS.items()},
        "max_frame_bytes": settings.max_frame_bytes,
        "max_batch": settings.max_batch,
        "max_buffer": MAX_BUFFER,
    }
    return csp.html_response(lambda nonce: _PAGE.render(lang=lang, s=strings, nonce=nonce, config=script_json(config)))
