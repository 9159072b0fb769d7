"""What every channel shares: the notice being delivered and the error a failed attempt raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livemap.domain.i18n import Lang
from livemap.domain.records import Order
from livemap.domain.storesettings import StoreSettings


class DeliveryError(Exception):
    """One attempt failed. `permanent`: retrying cannot help (a 5xx SMTP reply, a channel not configured)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Notice:
    """One notifiable event of one order, with everything a channel needs to word and address it."""

    #: The idempotency key: the id the event got in the outbox stream, kept across retries.
    event_id: str
    #: What the store's `notifications.events` map is keyed by: the stage (`shipped`...), `arriving`, `delayed`.
    key: str
    #: The event's own type: `stage`, `arriving` or `delayed`.
    kind: str
    #: Epoch ms when the event happened (from the outbox id).
    created_at: int
    store_id: str
    store: StoreSettings
    order: Order
    #: The event as dispatchers see it (`order_id`, `tracking_id`, `type` and the event's fields).
    data: dict[str, Any]
    lang: Lang
    tracking_url: str
    #: One-click unsubscribe links of this order (signed), for the email's footer and headers and the SMS's end.
    unsubscribe_email: str = ""
    unsubscribe_sms: str = ""
    #: 1 for the first attempt of this delivery, then 2, 3...
    attempt: int = 1
