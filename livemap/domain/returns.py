"""Returns as a workflow: the customer asks after delivery, the store decides and brings the parcel back.

    requested -> approved -> pickup (a driver collects it) -> received -> refunded
              \\-> rejected          \\-> dropoff (the customer brings it) -/

A return may be asked for within the store's `returns.window_days` of the delivery, with one of
the store's `returns.reasons`; each order has at most one. Every step is kept with its time and
note, in the order's history (as `return_<status>`) and in the return itself, and is announced to
the customer through the outbox like a stage change.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import msgspec

from livemap.domain.clock import DAY_MS

if TYPE_CHECKING:  # responses imports this module (ReturnStep)
    from livemap.domain.responses import HistoryEntry


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    RECEIVED = "received"
    REFUNDED = "refunded"


NEXT: dict[str, tuple[str, ...]] = {
    ReturnStatus.REQUESTED: (ReturnStatus.APPROVED, ReturnStatus.REJECTED),
    ReturnStatus.APPROVED: (ReturnStatus.PICKUP, ReturnStatus.DROPOFF),
    ReturnStatus.PICKUP: (ReturnStatus.RECEIVED,),
    ReturnStatus.DROPOFF: (ReturnStatus.RECEIVED,),
    ReturnStatus.RECEIVED: (ReturnStatus.REFUNDED,),
    ReturnStatus.REJECTED: (),
    ReturnStatus.REFUNDED: (),
}
#: A return in one of these is over: the store's list shows it as closed.
CLOSED = frozenset({ReturnStatus.REJECTED, ReturnStatus.REFUNDED})
#: History entries of returns are these stages: `return_requested`, `return_approved`...
HISTORY_PREFIX = "return_"

Note = Annotated[str, msgspec.Meta(max_length=1000)]


class ReturnStep(msgspec.Struct):
    status: str
    at: int
    note: str | None = None


class ReturnRecord(msgspec.Struct):
    """An order's return: its reason, where it stands, and every step so far."""

    status: str
    reason: str
    note: str | None
    requested_at: int
    steps: list[ReturnStep]
    #: The driver collecting it (status `pickup`).
    driver_id: str | None = None


class StartReturn(msgspec.Struct):
    """The customer asks to return a delivered order: one of the store's reasons and a note."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    note: Note | None = None


class ReturnChange(msgspec.Struct):
    """The store moves a return on: `approved`/`rejected`, `pickup` (with the driver) or `dropoff`,
    `received`, `refunded`."""

    status: ReturnStatus
    note: Note | None = None
    driver_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class ReturnRefused(Exception):
    """A return that cannot be started or moved: `code` says why (the API's error code)."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code, self.details = code, details


def window_closes(history: Iterable[HistoryEntry], window_days: int) -> int | None:
    """When the order's return window closes: `window_days` after its delivery; None if it was never delivered."""
    delivered = next((h.at for h in history if h.stage == "delivered"), None)
    return None if delivered is None else delivered + window_days * DAY_MS


def check_step(current: str, target: str) -> None:
    """Raise ReturnRefused unless a return may go from `current` to `target`."""
    allowed = NEXT.get(current, ())
    if target not in allowed:
        detail = ", ".join(allowed) or "none (the return is closed)"
        raise ReturnRefused(
            "illegal_return_step",
            f"a return cannot go from {current!r} to {target!r}; from {current!r}: {detail}",
            current=current,
            allowed=list(allowed),
        )
