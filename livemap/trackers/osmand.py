"""The OsmAnd protocol as Traccar Client speaks it, and GPSLogger's custom URL (the same shape, in m/s).

Three request shapes reach one parser each:
- query string or form body: `id`/`deviceid`, `lat`+`lon` or `location=lat,lon`, `timestamp`
  (epoch s or ms, ISO-8601, `yyyy-MM-dd HH:mm:ss`), `speed` in knots, `bearing`/`heading`,
  `altitude`, `accuracy`, `batt` (%), `charge`; any other parameter is kept as an attribute;
- JSON (`Content-Type: application/json`): `{"device_id", "location": {"timestamp", "coords":
  {latitude, longitude, speed m/s, heading, accuracy, altitude}, "battery": {"level" 0..1,
  "is_charging"}, "is_moving", "event", ...}}`, where -1 means unknown;
- the newer client's JSON array: a list of such objects, or of flat objects with the query names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livemap.domain.clock import now_ms
from livemap.trackers.device import DeviceFix, make_fix
from livemap.trackers.fields import KNOT_MPS, BadField, flag, number, timestamp_ms

# Parameters that are part of the fix or of the request, not attributes to keep (`token` is a secret).
_FIX_KEYS = frozenset(
    {"id", "deviceid", "lat", "lon", "location", "timestamp", "speed", "bearing", "heading", "accuracy", "batt",
     "token"}
)  # fmt: skip


def parse_params(params: Mapping[str, Any], *, speed_unit_mps: float = KNOT_MPS) -> DeviceFix:
    """One fix from query/form parameters (or a flat JSON object using the same names)."""
    device = params.get("id") or params.get("deviceid")
    if not device:
        raise BadField("id", device, "a device id (id or deviceid)")
    lat, lon = number("lat", params.get("lat")), number("lon", params.get("lon"))
    if "location" in params and (lat is None or lon is None):
        lat, lon = _location(params["location"])
    raw_ts = params.get("timestamp")
    ts = timestamp_ms("timestamp", raw_ts) if raw_ts not in (None, "") else now_ms()
    speed = number("speed", params.get("speed"), unknown_below=0)
    heading = number("heading", params.get("heading", params.get("bearing")), unknown_below=0)
    fix = make_fix(
        lat=lat,
        lon=lon,
        ts=ts,
        speed=None if speed is None else speed * speed_unit_mps,
        heading=heading,
        accuracy=number("accuracy", params.get("accuracy"), unknown_below=0),
        battery=number("batt", params.get("batt"), unknown_below=0),
    )
    attributes = {k: _attribute(v) for k, v in params.items() if k not in _FIX_KEYS}
    if "charge" in attributes:
        attributes["charge"] = flag("charge", params["charge"])
    return DeviceFix(str(device), fix, attributes)


def parse_json(body: Any) -> list[DeviceFix]:
    """Fixes from the JSON variant: one object, or an array of nested or flat objects."""
    items = body if isinstance(body, list) else [body]
    fixes: list[DeviceFix] = []
    for item in items:
        if not isinstance(item, dict):
            raise BadField("body", type(item).__name__, "a JSON object")
        fixes.append(_nested(item) if isinstance(item.get("location"), dict) else parse_params(item))
    return fixes


def _nested(item: dict[str, Any]) -> DeviceFix:
    device = item.get("device_id")
    if not device:
        raise BadField("device_id", device, "a device id")
    location: dict[str, Any] = item["location"]
    coords = location.get("coords")
    if not isinstance(coords, dict):
        raise BadField("location.coords", coords, "an object with latitude and longitude")
    battery: dict[str, Any] = location["battery"] if isinstance(location.get("battery"), dict) else {}
    level = number("battery.level", battery.get("level"), unknown_below=0)
    fix = make_fix(
        lat=number("latitude", coords.get("latitude")),
        lon=number("longitude", coords.get("longitude")),
        ts=timestamp_ms("location.timestamp", location.get("timestamp")),
        speed=number("speed", coords.get("speed"), unknown_below=0),  # already m/s here
        heading=number("heading", coords.get("heading"), unknown_below=0),
        accuracy=number("accuracy", coords.get("accuracy"), unknown_below=0),
        battery=None if level is None else round(level * 100, 1),
    )
    attributes: dict[str, Any] = {}
    altitude = number("altitude", coords.get("altitude"))
    if altitude is not None:
        attributes["altitude"] = altitude
    charging = flag("battery.is_charging", battery.get("is_charging"))
    if charging is not None:
        attributes["charge"] = charging
    for key in ("is_moving", "event", "odometer", "mock"):
        if key in location:
            attributes[key] = location[key]
    activity = location.get("activity")
    if isinstance(activity, dict) and "type" in activity:
        attributes["activity"] = activity["type"]
    return DeviceFix(str(device), fix, attributes)


def _location(value: Any) -> tuple[float | None, float | None]:
    parts = str(value).split(",")
    if len(parts) != 2:
        raise BadField("location", value, "'lat,lon'")
    return number("location", parts[0]), number("location", parts[1])


def _attribute(value: Any) -> Any:
    """Keep an extra parameter typed like the reference server does: number, then boolean, else text."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return {"true": True, "false": False}.get(value, value)
