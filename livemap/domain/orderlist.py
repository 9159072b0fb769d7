"""The dashboard's list of a store's orders: what each filter keeps, the search, and the list's cursor.

Pure: the storage layer reads the orders newest first and asks `Query.keeps` about each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from livemap.domain.records import Order, is_done


class Show(StrEnum):
    """Which orders the list shows."""

    ALL = "all"
    OPEN = "open"  # not finished
    UNASSIGNED = "unassigned"  # open, no driver yet: the ones to assign
    IMPORTED = "imported"  # sent by a shop (WooCommerce, Shopify)
    LIVE = "live"  # a driver on the way (a delivery or a return's pickup)
    LATE = "late"  # not delivered by its promise, or its ETA past it
    FINISHED = "finished"  # completed, cancelled or returned


#: The order hash fields a list row needs (not the route, which can be ~150 KB).
FIELDS = ("id", "tid", "store", "stage", "live", "driver", "customer", "address", "created", "promised_by",
          "eta_at", "source", "return_leg", "tracking_number")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Query:
    show: Show
    #: Lower-case text to find in the order id, customer name, email or phone, address or tracking number.
    search: str
    #: The stages in which an order has reached its customer (the store's machine): never late there.
    delivered: frozenset[str]
    now_ms: int
    grace_ms: int

    def keeps(self, order: Order) -> bool:
        return self._shown(order) and (not self.search or self.search in _haystack(order))

    def _shown(self, order: Order) -> bool:
        match self.show:
            case Show.ALL:
                return True
            case Show.OPEN:
                return not is_done(order)
            case Show.UNASSIGNED:
                return not is_done(order) and not order.driver and order.stage not in self.delivered
            case Show.IMPORTED:
                return bool(order["source"])
            case Show.LIVE:
                return order.live
            case Show.LATE:
                return self.is_late(order)
            case Show.FINISHED:
                return is_done(order)

    def is_late(self, order: Order) -> bool:
        """Not delivered (nor finished) by its promise, or its driver's ETA past the promise by the grace."""
        promised = order.optional_int("promised_by")
        if promised is None or is_done(order) or order.stage in self.delivered:
            return False
        eta = order.optional_int("eta_at")
        return self.now_ms > promised or (eta is not None and order.live and eta > promised + self.grace_ms)


def _haystack(order: Order) -> str:
    customer = order.customer if order["customer"] else None
    parts = [order["id"], order["address"], order["tracking_number"]]
    if customer is not None:
        parts += [customer.name, customer.email or "", customer.phone or ""]
    return "\n".join(parts).lower()


def encode_cursor(cursor: tuple[int, int]) -> str:
    """(placed ms of the last order read, how many orders placed in that same ms were read) as text."""
    return f"{cursor[0]}.{cursor[1]}"


def decode_cursor(text: str) -> tuple[int, int]:
    """The cursor `encode_cursor` made; ValueError for anything else."""
    placed, _, seen = text.partition(".")
    at, n = int(placed), int(seen)
    if at < 0 or not 0 < n <= 1_000_000:
        raise ValueError("cursor must be the `next` of a previous page")
    return at, n
