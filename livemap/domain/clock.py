"""Wall-clock time in epoch milliseconds: the unit of every time livemap stores and sends."""

from __future__ import annotations

import time

#: A day in milliseconds (retention, return windows: whole days after a moment, not calendar days).
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)
