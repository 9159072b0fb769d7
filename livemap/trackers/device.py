"""What every adapter produces: a validated fix, the device that sent it, and the app's other attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from livemap.domain.messages import Fix
from livemap.trackers.fields import BadField


@dataclass(frozen=True, slots=True)
class DeviceFix:
    """One position from a tracker app; `attributes` keeps what has no place in a fix (altitude, charging...)."""

    device_id: str
    fix: Fix
    attributes: dict[str, Any] = field(default_factory=dict)


def make_fix(
    *,
    lat: float | None,
    lon: float | None,
    ts: int,
    speed: float | None = None,
    heading: float | None = None,
    accuracy: float | None = None,
    battery: float | None = None,
) -> Fix:
    """A `Fix` checked exactly as the driver socket checks one (ranges, clock), or BadField."""
    if lat is None or lon is None:
        raise BadField("lat/lon", None, "a position: lat and lon are required")
    try:
        return msgspec.convert(
            {"lat": lat, "lon": lon, "ts": ts, "speed": speed, "heading": heading, "accuracy": accuracy,
             "battery": battery},
            Fix,
        )  # fmt: skip
    except msgspec.ValidationError as exc:
        raise BadField("fix", str(exc), "a valid fix") from None
