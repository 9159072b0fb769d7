"""One endpoint's entry in the OpenAPI table (operations.py, surfaces.py): path, audience, types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    auth: str | None  # security scheme name
    body: Any = None
    responses: dict[int, Any] = field(default_factory=dict)
    params: tuple[tuple[str, str, str], ...] = ()  # (name, in, description)
    websocket: tuple[Any, Any] | None = None  # (client -> server, server -> client) message types
    media: str = "application/json"


ORDER_ID = (("order_id", "path", "the store's own order id"),)
#: A period of a store's days (analytics, exports).
PERIOD = (
    ("from", "query", "first day, YYYY-MM-DD (default: 29 days before `to`)"),
    ("to", "query", "last day, YYYY-MM-DD (default: the store's today); at most 366 days"),
)
TRACKING = (("tracking_id", "path", "the order's public tracking id"), ("t", "query", "the tracking token"))
