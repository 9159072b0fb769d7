"""What the back office's pages (analytics, returns, orders, settings) share: the signed-in store, its settings
and the page's language, the owner's pages' gate, and the page shell (the dashboard's stylesheet, the page's
scripts, its body).

Each page is a shell filled by its own script from the REST API through the dispatcher's session. Its
words are in English, Spanish or Brazilian Portuguese: `?lang=`, else the browser's, else the store's locale.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from livemap.domain.i18n import Lang, negotiate
from livemap.domain.i18n_settings import SETTINGS
from livemap.domain.storesettings import StoreSettings
from livemap.services import services
from livemap.web import sessions
from livemap.web.pages.layout import Fragment, Script, figure, render


@dataclass(frozen=True, slots=True)
class Office:
    """A signed-in dispatcher's page request."""

    session: sessions.Session
    settings: StoreSettings
    lang: Lang

    def config(self, words: Mapping[str, str]) -> dict[str, Any]:
        """What every back-office script is given: the session's CSRF token, the language, its words, the zone."""
        return {"csrf": self.session.csrf, "lang": self.lang, "strings": words, "timezone": self.settings.timezone}


async def signed_in(request: Request) -> Office | None:
    """The request's session, its store's settings and the page's language; None when not signed in."""
    repo = services(request).repo
    session = await sessions.load(repo, request.cookies.get(sessions.COOKIE, ""))
    if session is None:
        return None
    settings = await repo.settings(session.store_id)
    lang = negotiate(request.query_params.get("lang"), request.headers.get("accept-language", ""), settings.locale)
    return Office(session, settings, lang)


async def owner(request: Request) -> Office | Response:
    """The request of the store's owner (signed in with the store key); else what answers instead: the
    sign-in form for nobody, and for a dispatcher account a 403 page in its language saying who may."""
    office = await signed_in(request)
    if office is None:
        return RedirectResponse("/dispatch", status_code=303)
    if office.session.owner:
        return office
    words = SETTINGS[office.lang]
    body = (
        f'<main class="an-main"><p class="dp-error" role="alert">{html.escape(words["owner_only"])}</p>'
        f'<p><a href="/dispatch?lang={office.lang}">{html.escape(words["live_map"])}</a></p></main>'
    )
    return page(office, words["title"], (), body, status=403)


def page(office: Office, title: str, scripts: Sequence[str], body: str, status: int = 200) -> Response:
    """The page: `title` and the store's name, the dashboard's stylesheet, `scripts` (deferred, in order), `body`."""
    shell = figure(office.lang, f"{title} · {office.settings.name}", "/static/dispatch.css")
    for n, src in enumerate(scripts):
        shell.header.add_child(Script(src, defer=True), name=f"script{n}")
    shell.html.add_child(Fragment(body), name="body")
    return render(shell, status, body_class="an-page")
