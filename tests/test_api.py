"""The REST API against a real server: stores, drivers, orders, custom stages, settings."""

from __future__ import annotations

import httpx

from conftest import DEST, ORIGIN, Server, Shop, customer_socket, new_shop


async def test_order_creation_returns_the_contract_fields(shop: Shop, server: Server) -> None:
    """POST /api/orders -> 201 with id, an unguessable tracking id and token, a working tracking URL."""
    r = await shop.post(
        "/api/orders",
        {
            "id": 1001,
            "customer": {"name": "Ana", "phone": "+595 981 123456"},
            "address": "Palma 123",
            "destination": {"lat": DEST[0], "lon": DEST[1]},
            "route": [list(ORIGIN), [-25.29, -57.62], list(DEST)],
            "promised_by": 1_900_000_000_000,
            "tracking_number": "PY123",
            "carrier": "Correo",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "1001" and body["stage"] == "received"
    assert len(body["tracking_id"]) >= 16 and len(body["tracking_token"]) >= 22  # >= 128 random bits
    assert body["tracking_url"] == f"{server.url}/track/{body['tracking_id']}?t={body['tracking_token']}"
    assert body["route"] == [list(ORIGIN), [-25.29, -57.62], list(DEST)]
    got = (await shop.get("/api/orders/1001")).json()
    assert got["customer"]["phone"] == "+595 981 123456" and got["carrier"] == "Correo"
    assert [h["stage"] for h in got["history"]] == ["received"]
    snap = (
        await shop.http.get(f"{server.url}/api/track/{body['tracking_id']}", params={"t": body["tracking_token"]})
    ).json()
    assert snap["order"]["number"] == "1001" and snap["order"]["tracking_number"] == "PY123"
    assert snap["order"]["promised_by"] == 1_900_000_000_000
    assert "customer" not in snap["order"] and "store" not in snap["order"]


async def test_same_order_number_in_two_stores(http: httpx.AsyncClient, server: Server) -> None:
    """Order ids are unique within a store only; each gets its own tracking id."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    oa, ob = await a.order("1001"), await b.order("1001")
    assert oa["tracking_id"] != ob["tracking_id"]
    assert (
        await a.post("/api/orders", {"id": "1001", "customer": {"name": "x"}, "destination": {"lat": 0, "lon": 0}})
    ).status_code == 409


async def test_history_is_timestamped_and_complete(shop: Shop) -> None:
    """Every stage change is kept with its time and note, in order, including exception stages."""
    await shop.live_order("H1", "dh")
    await shop.stage("H1", "failed_attempt", "nobody home")
    await shop.stage("H1", "shipped", "second try")
    await shop.stage("H1", "delivered")
    history = (await shop.get("/api/orders/H1")).json()["history"]
    assert [h["stage"] for h in history] == ["received", "shipped", "failed_attempt", "shipped", "delivered"]
    assert [h["note"] for h in history][2:4] == ["nobody home", "second try"]
    times = [h["at"] for h in history]
    assert times == sorted(times)


async def test_custom_stages_from_store_settings(shop: Shop, server: Server) -> None:
    """A store's custom live stage joins its pipeline: legal transitions, live location, 409 naming it."""
    r = await shop.http.patch(
        f"{server.url}/api/store",
        headers=shop.auth,
        json={
            "stages": {
                "custom": [
                    {
                        "id": "out_for_delivery",
                        "after": "shipped",
                        "live": True,
                        "labels": {"en": "Out for delivery", "es": "En reparto"},
                    }
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["stages"]["custom"][0]["id"] == "out_for_delivery"
    await shop.driver("dc")
    order = await shop.order("C1")
    await shop.post("/api/orders/C1/assign", {"driver_id": "dc"})
    r = await shop.stage("C1", "out_for_delivery")
    assert r.status_code == 200 and r.json()["live"] is True
    r = await shop.stage("C1", "shipped")
    assert r.status_code == 409 and r.json()["error"]["allowed"][0] == "delivered"
    sock = await customer_socket(server, order)
    assert (await sock.recv_type("snapshot"))["order"]["live"] is True
    await sock.close()


async def test_store_settings_patch_merges_validates_and_masks(shop: Shop, server: Server) -> None:
    """PATCH /api/store merges, rejects invalid values naming them, and never reads secrets back."""
    url = f"{server.url}/api/store"
    r = await shop.http.patch(
        url,
        headers=shop.auth,
        json={
            "timezone": "America/Asuncion",
            "locale": "es",
            "branding": {"primary_color": "#112233"},
            "notifications": {"webhook": {"url": "https://shop.example/hook", "secret": "s3cret"}},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "America/Asuncion" and body["branding"]["primary_color"] == "#112233"
    assert body["branding"]["accent_color"] == "#f2a900"  # untouched default kept
    assert body["notifications"]["webhook"]["secret"] == "********" and "s3cret" not in r.text
    assert "s3cret" not in (await shop.get("/api/store")).text
    # Sending the mask back keeps the stored secret; the url can change alone.
    r = await shop.http.patch(
        url,
        headers=shop.auth,
        json={"notifications": {"webhook": {"url": "https://shop.example/new", "secret": "********"}}},
    )
    assert r.json()["notifications"]["webhook"]["secret"] == "********"
    r = await shop.http.patch(url, headers=shop.auth, json={"timezone": "Mars/Olympus"})
    assert r.status_code == 422 and "timezone" in r.json()["error"]["message"]
    r = await shop.http.patch(url, headers=shop.auth, json={"branding": {"primary_color": "red"}})
    assert r.status_code == 422 and "branding.primary_color" in r.json()["error"]["message"]
    r = await shop.http.patch(
        url, headers=shop.auth, json={"stages": {"custom": [{"id": "shipped", "after": "received"}]}}
    )
    assert r.status_code == 422
    assert (await shop.get("/api/store")).json()["timezone"] == "America/Asuncion"


async def test_driver_ids_are_unique_per_store(shop: Shop) -> None:
    """Creating a driver with a taken id is a 409; without an id one is generated."""
    await shop.driver("dup")
    r = await shop.post("/api/drivers", {"id": "dup", "name": "Again"})
    assert r.status_code == 409
    r = await shop.post("/api/drivers", {"name": "No id"})
    assert r.status_code == 201 and r.json()["id"].startswith("drv_") and r.json()["token"].startswith("lmd_")


async def test_health_endpoints(server: Server) -> None:
    """/healthz answers while the process is up; /readyz while Redis answers."""
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.url}/healthz")).json() == {"status": "ok"}
        assert (await http.get(f"{server.url}/readyz")).json() == {"status": "ready"}
