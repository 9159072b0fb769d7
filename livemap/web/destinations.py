"""The destinations in a store's settings patch (webhook, SMS gateway, SMTP server, shops' APIs), vetted before saving.

A store learns at once that an internal address is refused, rather than from dead letters later.
Saving is the first check only: every connection vets the name's addresses again (`outbound.connect`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from livemap.outbound.connect import vetted
from livemap.outbound.policy import OutboundPolicy, OutboundRefused
from livemap.web.errors import ApiError

#: Settings that hold a URL livemap sends requests to.
URL_FIELDS = (
    ("notifications", "webhook", "url"),
    ("notifications", "sms", "url"),
    ("integrations", "woocommerce", "write_back", "url"),
    ("integrations", "shopify", "write_back", "url"),
)
#: The SMTP server: host, port (and the port's default when the patch leaves it).
SMTP_FIELDS = (("notifications", "email", "host"), ("notifications", "email", "port"), 587)


async def vet_patch(patch: dict[str, Any], policy: OutboundPolicy) -> None:
    """ApiError 422 `outbound_refused` naming the field when a destination in ``patch`` is internal.

    A name that does not resolve (yet) is let through: there is nothing to vet until it does, and
    every connection vets it then.
    """
    for field, host, port in _destinations(patch):
        try:
            await vetted(host, port, policy)
        except OutboundRefused as exc:
            raise ApiError(422, "outbound_refused", f"{field}: {exc}") from None
        except (OSError, TimeoutError):
            continue


def _destinations(patch: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    for path in URL_FIELDS:
        url = _at(patch, path)
        if isinstance(url, str):
            try:
                parts = urlsplit(url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue  # not a URL: the settings' own validation says so
            if parts.hostname:
                yield ".".join(path), parts.hostname, port
    host_path, port_path, default_port = SMTP_FIELDS
    host, port = _at(patch, host_path), _at(patch, port_path)
    if isinstance(host, str) and host:
        yield ".".join(host_path), host, port if isinstance(port, int) else default_port


def _at(patch: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = patch
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
