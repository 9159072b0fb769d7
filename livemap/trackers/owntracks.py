"""OwnTracks in HTTP mode: `_type: location` messages, user and device from Basic auth or X-Limit-U/-D.

Fields: `lat`, `lon`, `tst` (epoch s), `acc` (m), `alt` (m), `vel` (km/h), `cog` (degrees),
`batt` (%), `tid`; apps send -1 for unknown and floats where ints are documented. Every other
`_type` (transition, waypoint, lwt, card...) and an empty body are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from livemap.trackers.device import DeviceFix, make_fix
from livemap.trackers.fields import KMH_MPS, BadField, number, timestamp_ms

_KEPT = ("tid", "alt", "conn", "m", "t", "bs", "topic", "SSID", "BSSID", "p", "vac")


def parse(body: Any, device_id: str) -> DeviceFix | None:
    """The fix of a location message; None for any other message type."""
    if not isinstance(body, dict):
        raise BadField("body", type(body).__name__, "a JSON object")
    if body.get("_type") != "location":
        return None
    if "tst" not in body:
        raise BadField("tst", None, "the fix time in epoch seconds")
    vel = number("vel", body.get("vel"), unknown_below=0)
    cog = number("cog", body.get("cog"), unknown_below=0)
    fix = make_fix(
        lat=number("lat", body.get("lat")),
        lon=number("lon", body.get("lon")),
        ts=timestamp_ms("tst", body["tst"]),
        speed=None if vel is None else vel * KMH_MPS,
        # OwnTracks reports a course only while moving; 0 km/h with a course is still "no heading".
        heading=None if vel == 0 else cog,
        accuracy=number("acc", body.get("acc"), unknown_below=0),
        battery=number("batt", body.get("batt"), unknown_below=0),
    )
    attributes = {k: body[k] for k in _KEPT if k in body and body[k] != -1}
    return DeviceFix(device_id, fix, attributes)
