"""Parsing the loosely typed values tracker apps send: numbers as text, `-1` for unknown, many clock formats."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

KNOT_MPS = 1852 / 3600  # one knot in m/s (a nautical mile an hour)
KMH_MPS = 1 / 3.6

# Epoch values below this are seconds, at or above it milliseconds: 2**31 s is the year 2038, while
# 2**31 ms is January 1970, so the two ranges never meet for a real fix (the reference server's rule).
_SECONDS_BELOW = 2**31


class BadField(ValueError):
    """A value that cannot mean what its field says; the message names the field."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        super().__init__(f"{name}: {value!r} is not {expected}")


def number(name: str, value: Any, *, unknown_below: float | None = None) -> float | None:
    """A finite float from a JSON number or text; None when absent, or below `unknown_below` (apps send -1)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadField(name, value, "a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadField(name, value, "a number") from None
    if not math.isfinite(result):
        raise BadField(name, value, "a finite number")
    if unknown_below is not None and result < unknown_below:
        return None
    return result


def flag(name: str, value: Any) -> bool | None:
    """A boolean from JSON or text (`true`/`false`/`1`/`0`)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise BadField(name, value, "true or false")


def timestamp_ms(name: str, value: Any) -> int:
    """Epoch milliseconds from epoch seconds, epoch ms, ISO-8601 or `yyyy-MM-dd HH:mm:ss` (UTC when no zone)."""
    if isinstance(value, bool):
        raise BadField(name, value, "a time")
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        epoch = float(value)
        if not math.isfinite(epoch) or epoch <= 0:
            raise BadField(name, value, "a time")
        return round(epoch * 1000) if epoch < _SECONDS_BELOW else round(epoch)
    if not isinstance(value, str) or not value.strip():
        raise BadField(name, value, "a time")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)  # also takes "2024-05-01 10:20:30": a space separator is ISO too
    except ValueError:
        raise BadField(name, value, "epoch seconds, epoch ms, ISO-8601 or 'yyyy-MM-dd HH:mm:ss'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
