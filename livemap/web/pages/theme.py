"""A store's colours on its tracking page: text that stays readable on them (WCAG 2 contrast)."""

from __future__ import annotations

import re

from livemap.domain.storesettings import StoreSettings

WHITE, BLACK = "#ffffff", "#000000"
AA = 4.5  # WCAG 2 level AA: the least contrast for body text


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


def theme_style(settings: StoreSettings) -> str:
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
