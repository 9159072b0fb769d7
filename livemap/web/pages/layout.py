"""What every page is made of: the templates, the page shell with its CSP nonce, script tags, JSON for scripts.

Every template is a file in `templates/`, loaded by one autoescaping environment: a store's strings
are escaped wherever they are inserted. `|safe` marks only what we produced ourselves (rendered
children, JSON made safe by `script_json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
from branca.element import Element, Figure
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from livemap.domain.i18n import Lang
from livemap.web import csp

# The repository's top-level static/, through the `static` link beside this module in a checkout; a
# wheel carries the files themselves there (package data), so an installed livemap serves them too.
STATIC_DIR = Path(__file__).resolve().parent / "static"
templates = Environment(loader=PackageLoader("livemap.web.pages", "templates"), autoescape=select_autoescape(["html"]))
_encode = msgspec.json.Encoder().encode
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

    _template = templates.get_template("page.html")

    def __init__(self, lang: Lang, title: str) -> None:
        super().__init__(title=title)
        self.lang = lang
        self.body_class = ""
        self.nonce = ""  # set by `render` (folium's elements take no render arguments to pass it down)


class Script(Element):
    """`<script src>` of our own, carrying the response's nonce."""

    _template = templates.get_template("script.html")

    def __init__(self, url: str, defer: bool = False) -> None:
        super().__init__()
        self.url, self.defer = url, defer


class Fragment(Element):
    """Markup we rendered, added to a page as it is.

    Never `Element(markup)` for markup that holds anyone's text: branca compiles an Element's text
    as a Jinja template, so a store's or a visitor's `{{ ... }}` in it would run on the server.
    """

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.markup = markup

    def render(self, **kwargs: Any) -> str:
        return self.markup


def figure(lang: Lang, title: str, stylesheet: str = "/static/tracking.css") -> Page:
    """A page with our viewport and a stylesheet of ours; callers add their markup to its `html`."""
    fig = Page(lang, title)
    fig.header.add_child(
        Element('<meta name="viewport" content="width=device-width, initial-scale=1">'), name="viewport"
    )
    fig.header.add_child(Element(f'<link rel="stylesheet" href="{stylesheet}">'), name="css")
    return fig


def render(
    page: Page,
    status: int = 200,
    body_class: str = "",
    images: Iterable[str] = (),
    referrer: str = "no-referrer",
    frame_ancestors: Sequence[str] = csp.FRAME_ANCESTORS,
) -> HTMLResponse:
    """The finished page as a response with its security headers (`images`, `referrer`, `frame_ancestors`:
    see `csp.html_response`)."""
    page.body_class = body_class

    def build(nonce: str) -> str:
        page.nonce = nonce
        return page.render()

    return csp.html_response(build, status, images, referrer, frame_ancestors)
