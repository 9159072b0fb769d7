"""Wall-clock time in epoch milliseconds: the unit of every time livemap stores and sends."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
