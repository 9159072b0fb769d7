"""Wire message validation: what a driver, a shop or a dispatcher may send, and how refusals read."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest

from livemap.domain.messages import CreateOrder, Fix, Viewport, describe


def now_ms() -> int:
    return int(time.time() * 1000)


def fix_bytes(**fields: Any) -> bytes:
    """A fix at a valid place and time, with `fields` overriding or (when None) removing keys."""
    doc: dict[str, Any] = {"lat": -23.55, "lon": -46.63, "ts": now_ms()}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def refusal(raw: bytes, type_: Any) -> str:
    """The describe()d error decoding `raw` as `type_` (fails the test if it decodes)."""
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)) as info:
        msgspec.json.decode(raw, type=type_)
    assert isinstance(info.value, (msgspec.ValidationError, msgspec.DecodeError))
    return describe(info.value)


# --- Fix -----------------------------------------------------------------------------------------


def test_valid_fix_decodes() -> None:
    """A fix with every field decodes to the same values; unknown fields are ignored."""
    ts = now_ms()
    raw = fix_bytes(ts=ts, speed=12.5, heading=90, accuracy=6, battery=55, seq=7, provider="gps")
    fix = msgspec.json.decode(raw, type=Fix)
    assert (fix.lat, fix.lon, fix.ts, fix.speed, fix.heading, fix.accuracy, fix.battery, fix.seq) == (
        -23.55,
        -46.63,
        ts,
        12.5,
        90.0,
        6.0,
        55.0,
        7,
    )


def test_integer_coordinates_are_floats() -> None:
    """JSON integers are accepted where floats are expected."""
    fix = msgspec.json.decode(fix_bytes(lat=45, lon=-9), type=Fix)
    assert (fix.lat, fix.lon) == (45.0, -9.0)
    assert isinstance(fix.lat, float)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lat": 91}, "lat must be within -85.05112878..85.05112878"),
        (
            {"lat": -85.0512},
            "lat must be within -85.05112878..85.05112878",
        ),  # within -90..90, beyond what Redis GEO indexes
        ({"lon": -181}, "lon must be within -180..180"),
        ({"lon": 180.5}, "lon must be within -180..180"),
        ({"speed": -1}, "speed must be within 0..150"),
        ({"speed": 151}, "speed must be within 0..150"),
        ({"accuracy": -3}, "accuracy must be within 0..100000"),
        ({"battery": 101}, "battery must be within 0..100"),
        ({"battery": -0.5}, "battery must be within 0..100"),
    ],
)
def test_fix_range_checks(fields: dict[str, Any], message: str) -> None:
    """Out-of-range values are refused with a message naming the field and its range."""
    assert refusal(fix_bytes(**fields), Fix) == message


@pytest.mark.parametrize("battery", [0, 0.0, 37.5, 100])
def test_battery_bounds_inclusive(battery: float) -> None:
    """Battery 0 and 100 are both valid percentages."""
    assert msgspec.json.decode(fix_bytes(battery=battery), type=Fix).battery == battery


@pytest.mark.parametrize(("lat", "lon"), [(85.05112878, 180), (-85.05112878, -180), (0, 0)])
def test_coordinate_bounds_inclusive(lat: float, lon: float) -> None:
    """The edges of what Redis GEO indexes and the antimeridian are valid coordinates."""
    fix = msgspec.json.decode(fix_bytes(lat=lat, lon=lon), type=Fix)
    assert (fix.lat, fix.lon) == (lat, lon)


def raw_json(**literals: str) -> bytes:
    """A JSON object whose values are given as literal JSON text (json.dumps cannot write 1e999)."""
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in literals.items()) + "}").encode()


@pytest.mark.parametrize("field", ["lat", "lon", "speed", "heading", "accuracy", "battery"])
@pytest.mark.parametrize("literal", ["1e999", "-1e999"])
def test_overflowing_number_refused(field: str, literal: str) -> None:
    """±1e999 (infinity once parsed; JSON has no NaN or Infinity) is refused, naming the field."""
    literals = {"lat": "0", "lon": "0", "ts": str(now_ms()), field: literal}
    raw = raw_json(**literals)
    assert abs(json.loads(raw)[field]) == float("inf")  # the input really is the overflow
    assert refusal(raw, Fix) == f"{field}: Number out of range"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lat": "12.5"}, "lat: Expected float, got str"),
        ({"lon": None, "lon_": 1}, "Object missing required field lon"),
        ({"ts": "1700000000000"}, "ts: Expected int, got str"),
        ({"ts": True}, "ts: Expected int, got bool"),
        ({"ts": 1.7e12}, "ts: Expected int, got float"),
        ({"heading": "north"}, "heading: Expected float | null, got str"),
        ({"seq": 1.5}, "seq: Expected int | null, got float"),
    ],
)
def test_fix_type_errors_name_the_field(fields: dict[str, Any], message: str) -> None:
    """A wrong type or a missing field is described with the field's name."""
    assert refusal(fix_bytes(**fields), Fix) == message


@pytest.mark.parametrize("field", ["lat", "lon", "ts"])
def test_fix_missing_required_field(field: str) -> None:
    """Each of lat, lon and ts is required."""
    assert refusal(fix_bytes(**{field: None}), Fix) == f"Object missing required field {field}"


def test_ts_in_seconds_refused() -> None:
    """A ts in epoch seconds (a unit bug) is refused with a message asking for milliseconds."""
    message = refusal(fix_bytes(ts=now_ms() // 1000), Fix)
    assert "ts must be epoch milliseconds" in message


def test_ts_from_the_future() -> None:
    """A fix 11 minutes in the future is refused; 9 minutes ahead (clock drift) is accepted."""
    assert refusal(fix_bytes(ts=now_ms() + 11 * 60_000), Fix) == "ts is more than 10 minutes in the future"
    ahead = now_ms() + 9 * 60_000
    assert msgspec.json.decode(fix_bytes(ts=ahead), type=Fix).ts == ahead


def test_old_buffered_fix_accepted() -> None:
    """A fix buffered offline for a day is still a valid fix."""
    old = now_ms() - 86_400_000
    assert msgspec.json.decode(fix_bytes(ts=old), type=Fix).ts == old


@pytest.mark.parametrize(
    ("heading", "normalised"),
    [(0, 0.0), (359.5, 359.5), (360, 0.0), (450, 90.0), (720.5, 0.5), (-90, 270.0), (-450, 270.0)],
)
def test_heading_normalised(heading: float, normalised: float) -> None:
    """Headings are reduced to 0 <= heading < 360."""
    assert msgspec.json.decode(fix_bytes(heading=heading), type=Fix).heading == pytest.approx(normalised)


def test_batch_error_names_the_index() -> None:
    """In a batch, the description names the offending fix by index and field."""
    batch = b"[" + fix_bytes() + b"," + fix_bytes(lat="x") + b"]"
    assert refusal(batch, list[Fix]) == "[1].lat: Expected float, got str"


def test_describe_malformed_json() -> None:
    """Malformed JSON is described without a field path."""
    assert refusal(b'{"lat": ', Fix) == "Input data was truncated"


# --- CreateOrder ---------------------------------------------------------------------------------


def order_bytes(**fields: Any) -> bytes:
    doc: dict[str, Any] = {"id": "A-1001", "customer": {"name": "Ana"}, "destination": {"lat": -23.5, "lon": -46.6}}
    doc.update(fields)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("given", "decoded"), [(1001, 1001), ("1001", "1001"), ("A-1001", "A-1001"), ("x.y:z_", "x.y:z_")]
)
def test_order_ids_numeric_or_string(given: int | str, decoded: int | str) -> None:
    """Shops may send order ids as JSON numbers or strings; both name the same order once str()ed."""
    order = msgspec.json.decode(order_bytes(id=given), type=CreateOrder)
    assert order.id == decoded
    assert type(order.id) is type(decoded)
    assert str(order.id) == str(given)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "id: Expected str of length >= 1"),
        ("-1001", "id: Expected str matching regex"),
        ("a b", "id: Expected str matching regex"),
        ("x" * 65, "id: Expected str of length <= 64"),
        (True, "id: Expected int | str, got bool"),
        (10.5, "id: Expected int | str, got float"),
        (None, "id: Expected int | str, got null"),
    ],
)
def test_bad_order_ids(given: Any, message: str) -> None:
    """Empty, badly formed, too long or non-scalar ids are refused, naming the id field."""
    assert refusal(order_bytes(id=given), CreateOrder).startswith(message)


def test_order_with_route() -> None:
    """A route of [lat, lon] pairs decodes to tuples of floats."""
    order = msgspec.json.decode(order_bytes(route=[[-23.55, -46.63], [-23.5, -46.6]]), type=CreateOrder)
    assert order.route == [(-23.55, -46.63), (-23.5, -46.6)]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ([[-23.55, -46.63], [91, -46.6]], "route[1]: lat must be within -85.05112878..85.05112878"),
        ([[-23.55, -181], [-23.5, -46.6]], "route[0]: lon must be within -180..180"),
        ([[-23.55, -46.63]], "route: Expected array of length >= 2"),
        ([[-23.55, -46.63], [-23.5, -46.6, 10]], "route[1]: Expected array of length 2"),
        ([[-23.55, -46.63], [-23.5, "x"]], "route[1][1]: Expected float, got str"),
        ([[-23.55, -46.63], {"lat": 1, "lon": 2}], "route[1]: Expected array, got object"),
        ("-23.5,-46.6", "route: Expected array | null, got str"),
    ],
)
def test_bad_route_points(route: Any, message: str) -> None:
    """A route with an out-of-range, malformed or missing point is refused."""
    assert refusal(order_bytes(route=route), CreateOrder) == message


def test_route_overflow_refused() -> None:
    """A route coordinate that overflows to infinity is refused, naming the point."""
    raw = order_bytes(route=[[-23.55, -46.63], [-23.5, 7]]).replace(b"7]]", b"1e999]]")
    assert b"1e999" in raw
    assert refusal(raw, CreateOrder) == "route[1][1]: Number out of range"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"destination": {"lat": 91, "lon": 0}}, "destination: lat must be within -85.05112878..85.05112878"),
        ({"origin": {"lat": 0, "lon": 200}}, "origin: lon must be within -180..180"),
        ({"customer": {}}, "customer: Object missing required field name"),
        ({"customer": {"name": "Ana", "email": "not-an-email"}}, "customer.email: Expected str matching regex"),
        ({"promised_by": 1_700_000_000}, "promised_by must be epoch milliseconds between 2001 and 2100"),
        ({"promised_by": 10**400}, "promised_by must be epoch milliseconds between 2001 and 2100"),
    ],
)
def test_bad_order_fields_named(fields: dict[str, Any], message: str) -> None:
    """Nested errors name the path to the field."""
    assert refusal(order_bytes(**fields), CreateOrder).startswith(message)


# --- Viewport ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "viewport", "bbox": [-46.7, -23.6, -46.5, -23.4]}', b'{"bbox": [-46.7, -23.6, -46.5, -23.4]}'],
)
def test_viewport_decodes(raw: bytes) -> None:
    """A bbox [min_lon, min_lat, max_lon, max_lat] decodes, with or without its type tag."""
    assert msgspec.json.decode(raw, type=Viewport).bbox == (-46.7, -23.6, -46.5, -23.4)


def test_whole_world_viewport() -> None:
    """The whole world is a valid viewport."""
    assert msgspec.json.decode(b'{"bbox": [-180, -90, 180, 90]}', type=Viewport).bbox == (-180, -90, 180, 90)


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ([-46.5, -23.6, -46.7, -23.4], "bbox must be [min_lon, min_lat, max_lon, max_lat]"),  # lons swapped
        ([-46.7, -23.4, -46.5, -23.6], "bbox must be [min_lon, min_lat, max_lon, max_lat]"),  # lats swapped
        ([35.6, 139.6, 35.7, 139.8], "bbox: lat must be within -90..90"),  # Tokyo given as [lat, lon, ...]
        ([-181, -23.6, -46.5, -23.4], "bbox: lon must be within -180..180"),
        ([-46.7, -23.6, -46.5, 90.5], "bbox: lat must be within -90..90"),
        ([-46.7, -23.6, -46.5], "bbox: Expected array of length 4"),
        ([-46.7, -23.6, -46.5, "x"], "bbox[3]: Expected float, got str"),
    ],
)
def test_bad_viewport(bbox: Any, message: str) -> None:
    """An inverted, out-of-range or malformed bbox is refused."""
    raw = json.dumps({"type": "viewport", "bbox": bbox}).encode()
    assert refusal(raw, Viewport) == message


def test_viewport_wrong_tag() -> None:
    """A message tagged as something else is not a viewport."""
    raw = b'{"type": "subscribe", "bbox": [-46.7, -23.6, -46.5, -23.4]}'
    assert refusal(raw, Viewport) == "type: Invalid value 'subscribe'"


@pytest.mark.parametrize("bad_id", [b'"A1\\n"', b"-5", b"1000000000000000000000"])
def test_order_ids_refuse_trailing_newline_negative_and_huge(bad_id: bytes) -> None:
    """A trailing newline, a negative number or an id over 18 digits is not an order id."""
    body = b'{"id": ' + bad_id + b', "customer": {"name": "A"}, "destination": {"lat": 1, "lon": 1}}'
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=CreateOrder)


def test_heading_just_below_zero_wraps_to_zero() -> None:
    """-1e-20 degrees is 0, not 360 (floating-point modulo rounds it up)."""
    fix = msgspec.json.decode(
        b'{"lat": 1, "lon": 1, "ts": %d, "heading": -1e-20}' % (int(time.time() * 1000)), type=Fix
    )
    assert fix.heading == 0.0
