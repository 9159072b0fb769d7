"""Tracker apps in: requests shaped exactly as Traccar Client (OsmAnd), OwnTracks and GPSLogger send them.

Each test replays an app's request byte for byte (query strings, form bodies, JSON, headers) to a
real server, then checks both what was stored (the driver's hash in Redis) and what the customer
of the driver's live order received on their socket: units converted (knots, km/h, 0..1 battery
levels), unknowns (-1, missing) left empty rather than zero, every clock format read as the same
instant.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from string import Template

import httpx
import pytest

from conftest import RedisTarget, Server, Shop, Socket, along, customer_socket, new_shop, server_env, wait
from livemap.storage.connection import connect
from livemap.storage.keys import Keys

KNOT = 1852 / 3600


async def _setup(shop: Shop, did: str) -> tuple[str, Socket]:
    """A driver with a live order and its customer's socket (snapshot read): the token and the socket."""
    order = await shop.live_order(f"O-{did}", did)
    sock = await customer_socket(shop.server, order)
    assert (await sock.recv())["type"] == "snapshot"
    return shop.drivers[did], sock


async def _stored(redis_target: RedisTarget, shop: Shop, did: str) -> dict[str, str]:
    client = connect(redis_target.url)
    try:
        raw = await client.hgetall(Keys(redis_target.prefix).driver(shop.id, did))
    finally:
        await client.aclose()
    return {k.decode(): v.decode() for k, v in raw.items()}


def _secs_ago(s: float) -> float:
    return time.time() - s


def _fill(template: str, **values: object) -> bytes:
    """A request body exactly as written, with `$name` placeholders filled in (repr keeps floats exact)."""
    return (
        Template(template).substitute({k: repr(v) if isinstance(v, float) else v for k, v in values.items()}).encode()
    )


async def test_osmand_query_post_converts_knots_and_keeps_attributes(shop: Shop, redis_target: RedisTarget) -> None:
    """Traccar Client's classic request: POST with everything in the query and an empty body; speed in knots."""
    token, sock = await _setup(shop, "osm1")
    lat, lon = along(0.1)
    ts = int(_secs_ago(5))
    query = (
        f"token={token}&id=osm1&timestamp={ts}&lat={lat}&lon={lon}&speed=19.438445&bearing=271.5"
        f"&altitude=112.0&accuracy=4.5&batt=76.0&charge=true&driverUniqueId=ana"
    )
    r = await shop.http.post(f"{shop.server.url}/ingest/osmand?{query}", content=b"")
    assert r.status_code == 200, r.text
    event = await sock.recv_type("location")
    assert event["ts"] == ts * 1000
    assert event["speed"] == pytest.approx(19.438445 * KNOT, abs=0.01)  # 10 m/s
    assert event["heading"] == 271.5 and event["accuracy"] == 4.5
    stored = await _stored(redis_target, shop, "osm1")
    assert float(stored["battery"]) == 76.0
    attributes = json.loads(stored["attributes"])
    assert attributes == {"altitude": 112.0, "charge": True, "driverUniqueId": "ana"}
    assert token not in stored["attributes"]
    await sock.close()


async def test_osmand_get_with_location_and_space_separated_time_leaves_unknowns_empty(
    shop: Shop, redis_target: RedisTarget
) -> None:
    """The oldest clients: GET, `location=lat,lon`, `yyyy-MM-dd HH:mm:ss` (UTC), no speed, bearing or battery."""
    token, sock = await _setup(shop, "osm2")
    lat, lon = along(0.2)
    when = datetime.fromtimestamp(int(_secs_ago(7)), UTC)
    r = await shop.http.get(
        f"{shop.server.url}/ingest/osmand?token={token}&deviceid=osm2&location={lat},{lon}"
        f"&timestamp={when.strftime('%Y-%m-%d %H:%M:%S').replace(' ', '%20')}"
    )
    assert r.status_code == 200, r.text
    event = await sock.recv_type("location")
    assert event["ts"] == int(when.timestamp() * 1000)
    assert (event["lat"], event["lon"]) == pytest.approx((lat, lon))
    assert event["speed"] is None and event["heading"] is None and event["accuracy"] is None
    stored = await _stored(redis_target, shop, "osm2")
    assert stored["battery"] == "" and stored["speed"] == ""  # empty, not "0"
    await sock.close()


async def test_osmand_iso_and_millisecond_timestamps_and_a_form_body(shop: Shop) -> None:
    """ISO-8601 with milliseconds and Z, epoch milliseconds, and a form body (the query holds only the token)."""
    token, sock = await _setup(shop, "osm3")
    t1 = datetime.fromtimestamp(_secs_ago(20), UTC).replace(microsecond=123000)
    lat, lon = along(0.3)
    iso = t1.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    r = await shop.http.get(
        f"{shop.server.url}/ingest/osmand?token={token}&id=osm3&lat={lat}&lon={lon}&timestamp={iso}"
    )
    assert r.status_code == 200, r.text
    assert (await sock.recv_type("location"))["ts"] == int(t1.timestamp() * 1000)
    t2 = int(_secs_ago(10) * 1000)
    lat, lon = along(0.31)
    body = f"id=osm3&timestamp={t2}&lat={lat}&lon={lon}&speed=0.0&bearing=0.0&accuracy=12.0&batt=51".encode()
    r = await shop.http.post(
        f"{shop.server.url}/ingest/osmand?token={token}",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    event = await sock.recv_type("location")
    assert event["ts"] == t2 and event["speed"] == 0.0 and event["accuracy"] == 12.0
    await sock.close()


async def test_osmand_json_reads_meters_per_second_levels_and_minus_one_unknowns(
    shop: Shop, redis_target: RedisTarget
) -> None:
    """The JSON variant: speed already in m/s, -1 for unknown speed and heading, battery level 0..1."""
    token, sock = await _setup(shop, "osm4")
    lat, lon = along(0.4)
    when = datetime.fromtimestamp(_secs_ago(3), UTC).replace(microsecond=0)
    body = (
        '{"location":{"timestamp":"$ts","coords":{"latitude":$lat,"longitude":$lon,"accuracy":8.7,"speed":-1,'
        '"heading":-1,"altitude":95.3},"is_moving":false,"odometer":1234,"event":"motionchange",'
        '"battery":{"level":0.55,"is_charging":true},"activity":{"type":"still"},"extras":{}},'
        '"device_id":"osm4"}'
    )
    body = _fill(body, ts=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), lat=lat, lon=lon)
    r = await shop.http.post(
        f"{shop.server.url}/ingest/osmand?token={token}", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    event = await sock.recv_type("location")
    assert event["ts"] == int(when.timestamp() * 1000)
    assert event["speed"] is None and event["heading"] is None and event["accuracy"] == 8.7
    stored = await _stored(redis_target, shop, "osm4")
    assert float(stored["battery"]) == 55.0
    assert json.loads(stored["attributes"]) == {
        "altitude": 95.3,
        "charge": True,
        "is_moving": False,
        "event": "motionchange",
        "odometer": 1234,
        "activity": "still",
    }
    await sock.close()


async def test_osmand_json_array_of_flat_objects_is_stored_in_time_order(shop: Shop) -> None:
    """The newer client's batch: an array of flat objects with the query names; sent newest first, stored in order."""
    token, sock = await _setup(shop, "osm5")
    now = time.time()
    items = [
        {"id": "osm5", "lat": along(f)[0], "lon": along(f)[1], "timestamp": int((now - age) * 1000), "speed": 9.7}
        for f, age in ((0.52, 10), (0.51, 20), (0.5, 30))
    ]
    r = await shop.http.post(
        f"{shop.server.url}/ingest/osmand?token={token}",
        content=json.dumps(items).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    seen = [(await sock.recv_type("location"))["ts"] for _ in items]
    assert seen == sorted(i["timestamp"] for i in items)
    await sock.close()


async def test_devices_need_a_driver_token_and_a_bound_id(shop: Shop, redis_target: RedisTarget) -> None:
    """No or wrong token: 401; a device that is not this driver's: 400 (query) / 404 (JSON); nothing stored."""
    token = await shop.driver("osm6")
    other = await shop.driver("osm7")
    lat, lon = along(0.1)
    ts = int(_secs_ago(5))
    base = f"{shop.server.url}/ingest/osmand"
    fields = f"id=osm6&timestamp={ts}&lat={lat}&lon={lon}"
    assert (await shop.http.get(f"{base}?{fields}")).status_code == 401
    assert (await shop.http.get(f"{base}?token=lmd_wrong&{fields}")).status_code == 401
    assert (await shop.http.get(f"{base}?token={shop.key}&{fields}")).status_code == 401  # a store key is not a driver
    r = await shop.http.get(f"{base}?token={other}&{fields}")  # osm7's token for osm6's device
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_device"
    body = json.dumps(
        {"device_id": "356938035643809", "location": {"timestamp": ts, "coords": {"latitude": lat, "longitude": lon}}}
    )
    r = await shop.http.post(f"{base}?token={token}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 404
    assert "ts" not in await _stored(redis_target, shop, "osm6")
    # The store registers the phone's IMEI for the driver: now it is accepted.
    r = await shop.http.put(
        f"{shop.server.url}/api/drivers/osm6/devices", json={"devices": ["356938035643809"]}, headers=shop.auth
    )
    assert r.status_code == 200 and r.json() == {"devices": ["356938035643809"]}
    r = await shop.http.post(f"{base}?token={token}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert int((await _stored(redis_target, shop, "osm6"))["ts"]) == ts * 1000
    bad = await shop.http.put(
        f"{shop.server.url}/api/drivers/osm6/devices", json={"devices": ["a b"]}, headers=shop.auth
    )
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "query, problem",
    [
        ("lat=91&lon=0", "lat"),
        ("lat=abc&lon=0", "lat"),
        ("lon=0", "lat/lon"),
        ("lat=1&lon=1&timestamp=yesterday", "timestamp"),
        ("lat=1&lon=1&speed=NaN", "speed"),
    ],
)
async def test_bad_values_get_a_typed_error_naming_the_field(shop: Shop, query: str, problem: str) -> None:
    token = await shop.driver("osm8")
    r = await shop.http.get(f"{shop.server.url}/ingest/osmand?token={token}&id=osm8&{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_fix" and problem in r.json()["error"]["message"]


async def test_a_request_without_a_device_id_is_refused(shop: Shop) -> None:
    token = await shop.driver("osm9")
    r = await shop.http.get(f"{shop.server.url}/ingest/osmand?token={token}&lat=1&lon=1")
    assert r.status_code == 400 and "id" in r.json()["error"]["message"]


async def test_owntracks_http_mode(shop: Shop, redis_target: RedisTarget) -> None:
    """OwnTracks: Basic auth (user = driver, password = token), km/h, -1 unknowns, floats for ints, `[]` replies."""
    token, sock = await _setup(shop, "ot1")
    auth = "Basic " + base64.b64encode(f"ot1:{token}".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "X-Limit-U": "ot1", "X-Limit-D": "pixel"}
    url = f"{shop.server.url}/ingest/owntracks"
    lat, lon = along(0.6)
    tst = int(_secs_ago(4))
    body = (
        '{"_type":"location","acc":9.0,"alt":101,"batt":64.0,"bs":1,"conn":"m","created_at":$tst,"lat":$lat,'
        '"lon":$lon,"m":1,"t":"u","tid":"o1","tst":$tst.0,"vac":3,"vel":36,"cog":180}'
    )
    body = _fill(body, tst=tst, lat=lat, lon=lon)
    r = await shop.http.post(url, content=body, headers=headers)
    assert r.status_code == 200 and r.json() == []
    event = await sock.recv_type("location")
    assert event["ts"] == tst * 1000
    assert event["speed"] == pytest.approx(10.0) and event["heading"] == 180.0 and event["accuracy"] == 9.0
    assert float((await _stored(redis_target, shop, "ot1"))["battery"]) == 64.0
    # Unknown velocity and course (-1): empty, not zero.
    lat, lon = along(0.61)
    body = '{"_type":"location","lat":$lat,"lon":$lon,"tst":$tst,"vel":-1,"cog":-1,"acc":-1,"tid":"o1"}'
    body = _fill(body, lat=lat, lon=lon, tst=tst + 1)
    r = await shop.http.post(url, content=body, headers=headers)
    assert r.status_code == 200 and r.json() == []
    event = await sock.recv_type("location")
    assert event["speed"] is None and event["heading"] is None and event["accuracy"] is None
    # A zero-length body (the app's test request) and other message types: 200 [] and nothing stored.
    for other in (b"", b'{"_type":"lwt","tst":1}', b'{"_type":"transition","event":"enter","tst":1}'):
        r = await shop.http.post(url, content=other, headers=headers)
        assert r.status_code == 200 and r.json() == [], other
    await sock.nothing_within(0.5)
    # The token in the query and the identity in X-Limit-U/-D work too; a wrong password does not.
    plain = {"Content-Type": "application/json", "X-Limit-U": "someone", "X-Limit-D": "ot1"}
    body = _fill('{"_type":"location","lat":$lat,"lon":$lon,"tst":$tst}', lat=lat, lon=lon, tst=tst + 2)
    assert (await shop.http.post(f"{url}?token={token}", content=body, headers=plain)).status_code == 200
    wrong = {**headers, "Authorization": "Basic " + base64.b64encode(b"ot1:nope").decode()}
    assert (await shop.http.post(url, content=body, headers=wrong)).status_code == 401
    await sock.close()


async def test_gpslogger_custom_url_in_meters_per_second(shop: Shop) -> None:
    """The README's GPSLogger template, filled in as the app does: speed in m/s, epoch seconds, an empty %DIR."""
    token, sock = await _setup(shop, "gl1")
    lat, lon = along(0.7)
    ts = int(_secs_ago(6))
    r = await shop.http.get(
        f"{shop.server.url}/ingest/gpslogger?token={token}&id=gl1&lat={lat}&lon={lon}&timestamp={ts}"
        f"&speed=12.5&heading=&accuracy=6.0&altitude=88.0&batt=42.0"
    )
    assert r.status_code == 200, r.text
    event = await sock.recv_type("location")
    assert event["speed"] == 12.5 and event["heading"] is None and event["ts"] == ts * 1000
    await sock.close()


@pytest.fixture(scope="module")
def osmand_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """`livemap serve --osmand-port 0`: the server and the URL of its devices' port (printed after the main one)."""
    srv = Server(server_env(redis_target, tmp_path_factory.mktemp("osmand")), "osmand", args=["--osmand-port", "0"])
    deadline = time.monotonic() + wait(10)
    found = None
    while found is None and time.monotonic() < deadline:
        found = next((m for line in list(srv.output) if (m := re.match(r"OsmAnd .*: (http://[^/]+)/", line))), None)
        time.sleep(0.05)
    assert found is not None, "".join(srv.output)
    yield srv, found.group(1)
    srv.stop()


async def test_osmand_port_takes_devices_at_its_root_and_nothing_else(
    osmand_server: tuple[Server, str], http: httpx.AsyncClient
) -> None:
    srv, osmand_url = osmand_server
    shop = await new_shop(http, srv)
    token, sock = await _setup(shop, "port1")
    lat, lon = along(0.8)
    r = await http.get(f"{osmand_url}/?token={token}&id=port1&lat={lat}&lon={lon}&timestamp={int(_secs_ago(2))}")
    assert r.status_code == 200, r.text
    assert (await sock.recv_type("location"))["lat"] == pytest.approx(lat)
    # The rest of livemap is not served on the devices' port.
    assert (await http.get(f"{osmand_url}/api/store", headers=shop.auth)).status_code == 404
    assert (await http.get(f"{srv.url}/api/store", headers=shop.auth)).status_code == 200
    await sock.close()
