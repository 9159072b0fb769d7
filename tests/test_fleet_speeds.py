"""Street speeds learned from the fleet (issue 20, step 3): one driver crawls through a jam, and every
other leg on those streets hears of it, in its ETA and in its route.

A real server with the embedded router on streets the test writes, and a real Redis; the pure parts
(which streets a driver drove whole, the fleet's time ahead) are tested on their own first.

S -- M1 -- M2 -- M3 -- T      the main street: 4 x 150 m (the road route from S to T)
|                      |
D1 -- D2 -- D3 -- D4 - D5     the way round: 200 + 600 + 200 m
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from streets import near, osm_xml

from conftest import RedisTarget, Server, Shop, customer_socket, driver_socket, new_shop, now_ms, server_env
from livemap.domain.streetpace import KnownAhead, crossed
from livemap.storage.connection import open_db
from livemap.storage.db import STANDALONE
from livemap.tracking.fleet import PRIOR_WEIGHT, TAU_S, estimate, observed

LatLon = tuple[float, float]
_LAT, _LON, _STEP = 60.1700, 24.9400, 0.0027  # 0.0027 degrees east: about 150 m at this latitude
MAIN = [(_LAT, _LON + i * _STEP) for i in range(5)]  # S, M1, M2, M3, T
ROUND = [(_LAT - 0.0018, _LON + i * _STEP) for i in range(5)]  # D1 .. D5, 200 m south
S, M2, T, D3 = MAIN[0], MAIN[2], MAIN[4], ROUND[2]


def write_streets(path: Any) -> Any:
    nodes = {1 + i: p for i, p in enumerate(MAIN)} | {11 + i: p for i, p in enumerate(ROUND)}
    ways = {
        30: ([1, 2, 3, 4, 5], {"highway": "residential"}),
        31: ([1, 11, 12, 13, 14, 15, 5], {"highway": "residential"}),
    }
    return osm_xml(path, nodes, ways)


# --- the pure parts ---


def test_a_whole_traversal_is_a_pace_and_a_piece_entered_unseen_is_none() -> None:
    cum, ids = [0.0, 100.0, 250.0, 400.0], [7, 8, -1]
    # From 50 m to 300 m in 25 s (10 m/s): piece 0 was entered before the first fix (unknown), piece 1
    # driven whole (100 -> 250 m, 15 s), piece 2 entered at 250 m, 20 s after the first fix.
    seen, entered = crossed(cum, ids, (50.0, 0), (300.0, 25_000), (-1, -1))
    assert seen == [(8, pytest.approx(0.1), 20_000)] and entered == (2, 20_000)
    # Entered piece 0 at a known time: it counts too; a piece without a street (-1) never does.
    seen, _ = crossed(cum, ids, (50.0, 10_000), (260.0, 31_000), (0, 5_000))
    assert [s for s, _, _ in seen] == [7, 8]
    assert crossed(cum, ids, (260.0, 0), (400.0, 14_000), (2, 0))[0] == []


def test_no_traversal_from_standing_still_or_from_an_implausible_speed() -> None:
    cum, ids = [0.0, 100.0, 200.0], [1, 2]
    assert crossed(cum, ids, (50.0, 0), (50.0, 60_000), (0, 0)) == ([], (0, 0))
    # 100 m in 0.1 s is a GPS jump, not 1000 m/s.
    assert crossed(cum, ids, (0.0, 0), (150.0, 150), (0, 0))[0] == []


def test_the_fleets_time_ahead_counts_only_the_streets_it_knows() -> None:
    known = KnownAhead([0.0, 100.0, 300.0, 400.0], [5, 6, 7], {6: 0.5})  # 200 m of street 6 at 2 m/s
    assert known.any and known.ahead(0.0) == (200.0, 100.0)
    assert known.ahead(200.0) == (100.0, 50.0)  # half of street 6 left
    assert known.ahead(350.0) == (0.0, 0.0)
    assert not KnownAhead([0.0, 100.0], [5], {}).any


def test_the_estimate_leans_on_observations_by_weight_and_scales_the_rest_of_the_map() -> None:
    lengths, prior = np.full(20, 100.0, dtype=np.float32), np.full(20, 10.0)  # 10 m/s by the map
    # Ten streets driven at half the map's speed, each with weight 1: the city drives 2x slower.
    seen = {seg: (0.2, 1.0) for seg in range(10)}
    paces, factor = estimate(seen, lengths, prior)
    assert factor == pytest.approx(2.0)
    assert paces[3] == pytest.approx(0.2) and 15 not in paces  # the map x factor is 0.2 too
    # A jammed street seen a while ago (weight 0.5): halfway between its pace and the city's.
    paces, _ = estimate(seen | {12: (1.0, PRIOR_WEIGHT)}, lengths, prior)
    assert paces[12] == pytest.approx((0.5 * 1.0 + PRIOR_WEIGHT * 0.2 * 10.5 / 10) / (0.5 + PRIOR_WEIGHT), rel=0.05)
    assert estimate({1: (0.5, 1.0)}, lengths, prior)[1] is None  # too little seen to say


async def test_traversals_fold_into_a_decayed_pace_and_unseen_streets_are_forgotten(
    redis_target: RedisTarget,
) -> None:
    db = await open_db(redis_target.url)
    script, prefix = STANDALONE["fleet_observe"], f"{redis_target.prefix}:{{fleet:test}}"
    keys = [f"{prefix}:pace", f"{prefix}:updated"]
    try:
        now, hour = now_ms(), 3_600_000
        # Fix times, not the server's clock: a drive two hours ago, then two traversals now.
        await script.call(db.client, keys, [now, TAU_S, hour, 99, 0.5, now - 2 * hour])
        await script.call(db.client, keys, [now, TAU_S, hour, 1, 0.1, now, 1, 0.3, now])  # prunes 99
        raw = await db.client.hgetall(keys[0])
        assert set(raw) == {b"1"}  # a segment id and numbers: no driver, order or store
        pace, weight, _ = raw[b"1"].split()
        assert float(pace) == pytest.approx(0.2) and float(weight) == pytest.approx(2.0)
        # A traversal that ended a tau earlier but arrives now weighs e^-1 of a new one.
        await script.call(db.client, keys, [now, TAU_S, hour, 1, 1.2, now - round(TAU_S * 1000)])
        pace, weight, updated = (await db.client.hget(keys[0], "1")).split()
        assert float(weight) == pytest.approx(2 + math.exp(-1), abs=1e-3) and int(updated) == now
        assert float(pace) == pytest.approx((0.4 + 1.2 * math.exp(-1)) / (2 + math.exp(-1)), abs=1e-5)
        raw = await db.client.hgetall(keys[0])
        assert observed(raw, now) == {1: (pytest.approx(float(pace)), pytest.approx(float(weight)))}
        # Aged by the fleet's newest fix time, capped by the server's clock: as heavy while no newer
        # drive came, forgotten once one came five taus later (2.37 e^-5 < MIN_WEIGHT).
        assert observed(raw, now + hour)[1][1] == pytest.approx(float(weight))
        later = {**raw, b"2": f"0.1 1 {now + round(TAU_S * 5000)}".encode()}
        assert set(observed(later, now + hour)) == {2}
        assert 0 < await db.client.pttl(keys[0]) <= hour
    finally:
        await db.client.delete(*keys)
        await db.client.aclose()


# --- end to end ---


@pytest.fixture(scope="module")
def fleet_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fleet")
    streets = write_streets(data / "streets.osm")
    env = server_env(redis_target, data, LIVEMAP_OSM_PBF=str(streets), LIVEMAP_FLEET_REFRESH_S="0.5")
    srv = Server(env, "fleet")
    yield srv
    srv.stop()


async def routed_order(shop: Shop, oid: str, did: str) -> tuple[dict[str, Any], Any, Any, dict[str, Any]]:
    """An order from S to T without a route, live, its customer's socket, its driver's, and its road route."""
    await shop.driver(did)
    order = await shop.order(oid, origin={"lat": S[0], "lon": S[1]}, destination={"lat": T[0], "lon": T[1]})
    assert (await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})).status_code == 200
    assert (await shop.stage(oid, "shipped")).json()["live"]
    customer = await customer_socket(shop.server, order)
    assert (await customer.recv())["type"] == "snapshot"
    driver = await driver_socket(shop.server, shop.drivers[did])
    return order, customer, driver, await customer.recv_type("route", timeout=20)


def through(points: list[list[float]], corner: LatLon) -> bool:
    return any(near((p[0], p[1]), corner) for p in points)


def left_s(location: dict[str, Any]) -> float:
    return (location["eta_at"] - location["ts"]) / 1000


async def wait_for_fleet(redis_target: RedisTarget, streets: int, timeout: float = 20.0) -> None:
    db = await open_db(redis_target.url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            keys = [k async for k in db.client.scan_iter(match=f"{redis_target.prefix}:{{fleet:*}}:pace")]
            if keys and await db.client.hlen(keys[0]) >= streets:
                await asyncio.sleep(1.0)  # the same refresh read them back; the router's costs follow it
                return
            await asyncio.sleep(0.2)
        raise AssertionError("the fleet's street speeds never reached Redis")
    finally:
        await db.client.aclose()


async def test_a_jam_one_driver_crawls_through_slows_the_others_eta_and_routes_them_round_it(
    http: httpx.AsyncClient, fleet_server: Server, redis_target: RedisTarget
) -> None:
    shop = await new_shop(http, fleet_server)
    # Two legs on the main street, routed before anyone knows of the jam.
    _, c1, d1, r1 = await routed_order(shop, "F1", "f1")
    _, c2, d2, r2 = await routed_order(shop, "F2", "f2")
    assert through(r1["points"], M2) and through(r2["points"], M2) and not through(r1["points"], D3)
    # Driver 1 crawls the main street at 1.5 m/s (a fix every 5 s), as in a jam.
    t0 = now_ms() - 20 * 60_000
    for i in range(81):
        lat, lon = S[0], S[1] + (T[1] - S[1]) * min(i * 7.5 / 600, 1.0)
        await d1.send({"lat": lat, "lon": lon, "ts": t0 + i * 5000, "accuracy": 5, "seq": i})
        await d1.recv_type("ack")
    first = await c1.recv_type("location")
    await wait_for_fleet(redis_target, streets=2)  # M1-M2 and M2-M3 driven whole
    # Driver 2 sets off from S: its ETA counts the jam ahead (300 m at 1.5 m/s), driver 1's did not.
    await d2.send({"lat": S[0], "lon": S[1], "ts": now_ms() - 1000, "accuracy": 5, "seq": 1})
    await d2.recv_type("ack")
    informed = await c2.recv_type("location")
    assert left_s(informed) > left_s(first) + 100, (left_s(first), left_s(informed))
    # A leg routed now goes round the jam.
    _, c3, d3, r3 = await routed_order(shop, "F3", "f3")
    assert through(r3["points"], D3) and not through(r3["points"], M2)
    for sock in (c1, d1, c2, d2, c3, d3):
        await sock.close()


async def test_without_fleet_speeds_nothing_is_learned(
    http: httpx.AsyncClient, redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("nofleet")
    streets = write_streets(data / "streets.osm")
    env = server_env(
        redis_target,
        data,
        LIVEMAP_OSM_PBF=str(streets),
        LIVEMAP_FLEET_SPEEDS="0",
        LIVEMAP_FLEET_REFRESH_S="0.5",
        LIVEMAP_KEY_PREFIX=f"{redis_target.prefix}nofleet",
    )
    srv = Server(env, "nofleet")
    try:
        shop = await new_shop(http, srv)
        _, customer, driver, _ = await routed_order(shop, "N1", "n1")
        t0 = now_ms() - 20 * 60_000
        for i in range(81):
            lon = S[1] + (T[1] - S[1]) * min(i * 7.5 / 600, 1.0)
            await driver.send({"lat": S[0], "lon": lon, "ts": t0 + i * 5000, "accuracy": 5, "seq": i})
            await driver.recv_type("ack")
        await asyncio.sleep(1.5)
        db = await open_db(redis_target.url)
        try:
            assert [k async for k in db.client.scan_iter(match=f"{redis_target.prefix}nofleet:{{fleet:*}}")] == []
        finally:
            await db.client.aclose()
        for sock in (customer, driver):
            await sock.close()
    finally:
        srv.stop()
