"""Counters shared by every driver of a run, and the progress line printed from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    """What a run has done so far; plain counters, updated from one event loop."""

    drivers: int = 0
    #: Fixes written to sockets (a fix re-sent after a reconnect counts again).
    fixes_sent: int = 0
    fixes_accepted: int = 0
    fixes_ignored: int = 0
    #: Fixes the server refused: error replies and a batch ack's ``rejected`` entries.
    fixes_rejected: int = 0
    #: Fixes thrown away unsent because a driver's buffer overflowed during an outage.
    fixes_dropped: int = 0
    #: Fixes the server asked to send again later (rate limit, storage briefly unavailable); resent.
    fixes_deferred: int = 0
    messages_sent: int = 0
    reply_timeouts: int = 0
    sockets_open: int = 0
    reconnects: int = 0
    orders_created: int = 0
    deliveries: int = 0
    api_errors: int = 0

    @property
    def fixes_acked(self) -> int:
        return self.fixes_accepted + self.fixes_ignored

    def progress_line(self, elapsed_s: float) -> str:
        """One line for the console: pings, sockets, orders."""
        errors = self.fixes_rejected + self.reply_timeouts
        return (
            f"[{_hms(elapsed_s)}] pings sent {self.fixes_sent}, acked {self.fixes_acked}"
            f" (ignored {self.fixes_ignored}), errors {errors}"
            f" | sockets {self.sockets_open}/{self.drivers}, reconnects {self.reconnects}"
            f" | orders {self.orders_created}, deliveries {self.deliveries}"
            + (f", api errors {self.api_errors}" if self.api_errors else "")
            + (f" | dropped {self.fixes_dropped}" if self.fixes_dropped else "")
        )


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
