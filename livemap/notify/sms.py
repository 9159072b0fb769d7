"""SMS through the store's HTTP provider: a POST whose form or JSON body the store describes.

The store's ``sms.body`` maps each field the provider expects to a template; ``{phone}``,
``{message}``, ``{event_id}``, ``{order}``, ``{tracking_url}`` and ``{store}`` are filled in, any other
text is sent as written (an account id, a sender name). Provider credentials go in the URL (its
user-info or query) or in the body, but only ``username``/``password`` (HTTP Basic) are sealed at rest and
masked when the settings are read: the way to give them. The request also carries ``X-Livemap-Event-Id`` and
``Idempotency-Key`` so a provider that supports either drops a resent message.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from livemap.domain.storesettings import Sms
from livemap.notify.base import DeliveryError, Notice, post

DEFAULT_BODY = {"to": "{phone}", "text": "{message}"}
_PLACEHOLDER = re.compile(r"\{(phone|message|event_id|order|tracking_url|store)\}")


def fill(template: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """The provider's body: known placeholders replaced, every other character kept (JSON braces too)."""
    return {k: _PLACEHOLDER.sub(lambda m: values[m.group(1)], v) for k, v in template.items()}


async def send(client: httpx.AsyncClient, notice: Notice, text: str, config: Sms | None, phone: str) -> None:
    """POST the message to the provider; any answer but 2xx is a failed attempt."""
    if config is None or not config.url:
        raise DeliveryError("notifications.sms.url is not set", permanent=True)
    values = {
        "phone": phone,
        "message": text,
        "event_id": notice.event_id,
        "order": notice.order["id"],
        "tracking_url": notice.tracking_url,
        "store": notice.store.name,
    }
    fields = fill(config.body or DEFAULT_BODY, values)
    headers = {"X-Livemap-Event-Id": notice.event_id, "Idempotency-Key": notice.event_id}
    body: dict[str, Any] = {"json": fields} if config.format == "json" else {"data": fields}
    if config.password:
        body["auth"] = httpx.BasicAuth(config.username or "", config.password)
    await post(client, "SMS provider", config.url, headers=headers, **body)
