"""Security over real sockets: each party sees and writes only its own data."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from pathlib import Path

import httpx
import pytest
import websockets

from conftest import (
    ADMIN,
    RedisTarget,
    Server,
    Shop,
    Socket,
    connect,
    customer_socket,
    driver_socket,
    fix,
    new_shop,
    now_ms,
    sync_client,
    wait,
)
from livemap.storage.keys import Keys


async def refused(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    """The HTTP status and JSON body a refused websocket handshake got."""
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(url, additional_headers=headers or {})
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def test_tracking_token_is_required_and_checked(shop: Shop, server: Server) -> None:
    """A missing, wrong or other order's token gets 401/404 and no order data, over REST and websocket."""
    mine = await shop.order("S1")
    other = await shop.order("S2")
    base = f"{server.url}/api/track/{mine['tracking_id']}"
    r = await shop.http.get(base)
    assert r.status_code == 401 and "Ana" not in r.text and "S1" not in r.text
    for wrong in ("nope", other["tracking_token"], mine["tracking_token"][:-1]):
        r = await shop.http.get(base, params={"t": wrong})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert mine["tracking_id"] not in r.text.replace(base, "")
    ws = f"{server.ws_url}/ws/track/{mine['tracking_id']}"
    assert (await refused(ws))[0] == 401
    status, body = await refused(f"{ws}?t={other['tracking_token']}")
    assert status == 404 and body["error"]["code"] == "not_found"  # type: ignore[index]
    # Unknown tracking id: the same answer as a wrong token (no way to probe which ids exist).
    assert (await refused(f"{server.ws_url}/ws/track/doesnotexist?t={mine['tracking_token']}"))[0] == 404
    # The right token works, also as a bearer header.
    r = await shop.http.get(base, headers={"Authorization": f"Bearer {mine['tracking_token']}"})
    assert r.status_code == 200 and r.json()["order"]["number"] == "S1"


async def test_store_key_sees_only_its_own_store(http: httpx.AsyncClient, server: Server) -> None:
    """Another store's key gets 404 for our orders and drivers, and cannot change or assign them."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    await a.order("1001")
    await a.driver("da")
    await b.driver("db")
    assert (await b.get("/api/orders/1001")).status_code == 404
    assert (await b.stage("1001", "processing")).status_code == 404
    assert (await b.post("/api/orders/1001/assign", {"driver_id": "db"})).status_code == 404
    assert (await b.get("/api/drivers/da")).status_code == 404
    # b assigning its own order to a's driver: no such driver in b.
    await b.order("1001")  # same number, other store: allowed
    r = await b.post("/api/orders/1001/assign", {"driver_id": "da"})
    assert r.status_code == 404
    assert (await a.get("/api/orders/1001")).json()["stage"] == "received"


async def test_json_answers_are_never_sniffed_as_a_page(shop: Shop, server: Server) -> None:
    """Answers that echo a store's or customer's text carry nosniff, errors included."""
    await shop.order("sniff-1", customer={"name": "<script>alert(1)</script>", "email": "a@example.com"})
    order = (await shop.get("/api/orders/sniff-1")).json()
    snapshot = await shop.http.get(
        f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]}
    )
    answers = [await shop.get("/api/orders/sniff-1"), await shop.get("/api/orders/nope"), snapshot]
    for r in [*answers, await shop.http.get(f"{server.url}/openapi.json")]:
        assert r.headers["content-type"] == "application/json", r.headers
        assert r.headers["x-content-type-options"] == "nosniff", (r.status_code, r.headers)


async def test_credentials_of_the_wrong_kind_are_refused(shop: Shop, server: Server) -> None:
    """No key, a bad key, a driver token on the store API, a store key on the driver socket: all refused."""
    token = await shop.driver("dx")
    assert (await shop.http.post(f"{server.url}/api/orders", json={})).status_code == 401
    bad = await shop.http.get(f"{server.url}/api/orders/1", headers={"Authorization": "Bearer lmk_nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    as_driver = await shop.http.get(f"{server.url}/api/drivers/dx", headers={"Authorization": f"Bearer {token}"})
    assert as_driver.status_code == 403
    assert (await refused(f"{server.ws_url}/ws/driver?token={shop.key}"))[0] == 403
    assert (await refused(f"{server.ws_url}/ws/driver"))[0] == 401
    assert (await refused(f"{server.ws_url}/ws/dispatch?token={token}"))[0] == 403
    assert (await refused(f"{server.ws_url}/ws/dispatch?token=wrong"))[0] == 401
    # Only the admin token creates stores.
    r = await shop.http.post(f"{server.url}/api/stores", json={"name": "x"}, headers=shop.auth)
    assert r.status_code == 401
    r = await shop.http.post(
        f"{server.url}/api/stores", json={"name": "x"}, headers={"Authorization": f"Bearer {ADMIN}x"}
    )
    assert r.status_code == 401


async def test_driver_writes_only_its_own_position(shop: Shop, server: Server) -> None:
    """A driver token moves only its own driver: fields naming another driver change nothing."""
    order = await shop.live_order("S9", "victim")
    attacker = await shop.driver("attacker")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    sock = await driver_socket(server, attacker)
    await sock.send(fix(0.5, now_ms(), 1, driver_id="victim", tracking_id=order["tracking_id"]))
    assert (await sock.recv_type("ack"))["accepted"] == 1
    await customer.nothing_within(0.5)
    assert (await shop.get("/api/drivers/victim")).json()["position"] is None
    assert (await shop.get("/api/drivers/attacker")).json()["position"] is not None
    await sock.close()
    await customer.close()


async def test_secrets_are_redacted_from_logs(shop: Shop, server: Server) -> None:
    """Tokens in websocket query strings never reach the server's log."""
    token = await shop.driver("dlog")
    order = await shop.order("L1")
    sock = await connect(f"{server.ws_url}/ws/driver?token={token}")
    await sock.close()
    cust = await customer_socket(server, order)
    await cust.close()
    await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    log = "".join(server.output)
    assert "/ws/driver?token=[redacted]" in log  # the access log is on, so the check below means something
    assert token not in log and order["tracking_token"] not in log and shop.key not in log


async def test_a_drivers_rate_budget_is_shared_by_its_sockets_and_tracker_requests(shop: Shop, server: Server) -> None:
    """Ten sockets with one driver token get one budget (50/s, bursts of 100), not ten; the tracker
    endpoint draws on the same budget and answers 429 `rate_limited` once it is spent."""
    token = await shop.driver("rl1")
    sockets = [await driver_socket(server, token) for _ in range(10)]
    t = now_ms() - 600_000
    started = time.monotonic()

    async def flood(s: Socket, offset: int) -> list[str]:
        for i in range(40):
            await s.send({"lat": 1, "lon": 1, "ts": t + offset * 40 + i})
        return [(await s.recv()).get("code", "ack") for _ in range(40)]

    replies = [code for codes in await asyncio.gather(*(flood(s, n) for n, s in enumerate(sockets))) for code in codes]
    elapsed = time.monotonic() - started
    served = len(replies) - replies.count("rate_limited")
    assert served <= 100 + 50 * elapsed + 1, (served, elapsed)  # per socket it was 10 x 40 = 400
    assert replies.count("rate_limited") > 0
    answers = [
        await shop.http.get(f"{server.url}/ingest/osmand", params={"id": "rl1", "lat": 1, "lon": 1, "token": token})
        for _ in range(60)
    ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and limited[0].json()["error"]["code"] == "rate_limited" and limited[0].headers["retry-after"]
    for s in sockets:
        await s.close()


async def test_a_burst_of_sign_ins_gets_at_most_the_limit_of_password_checks(shop: Shop, server: Server) -> None:
    """200 wrong sign-ins at once from one address: at most 20 are checked (401), the rest 429."""
    address = {"X-Forwarded-For": f"198.51.100.{random.randint(1, 254)}", "Origin": server.url}
    burst = [shop.http.post(f"{server.url}/dispatch", data={"key": "lmk_guess"}, headers=address) for _ in range(200)]
    statuses = [r.status_code for r in await asyncio.gather(*burst)]
    assert statuses.count(401) <= 20 and statuses.count(401) + statuses.count(429) == 200, statuses


async def test_a_percent_encoded_credential_name_is_redacted_too(shop: Shop, server: Server) -> None:
    """`?%74=TOKEN` authenticates as `t` (the name is decoded), so it is redacted from the log as `t` is."""
    order = await shop.order("L2")
    url = f"{server.url}/api/track/{order['tracking_id']}?%74={order['tracking_token']}"
    assert (await shop.http.get(url)).status_code == 200
    logged = await asyncio.to_thread(server.wait_for_output, f"/api/track/{order['tracking_id']}?", 5)
    assert "%74=[redacted]" in logged and order["tracking_token"] not in "".join(server.output)


async def test_stored_secrets_are_sealed_and_still_work(shop: Shop, server: Server, redis_target: RedisTarget) -> None:
    """Redis holds neither the customer's tracking token nor the store's webhook/SMTP/shop secrets in plain
    text; the API still hands the link out, and the token opens the order's page and socket."""
    order = await shop.order("S1")
    secrets_set = {"webhook": "whsec-plain-1", "password": "smtp-plain-2", "woo": "woo-plain-3", "sms": "sms-plain-4"}
    patch = {
        "notifications": {
            "webhook": {"url": "https://shop.example/hook", "secret": secrets_set["webhook"]},
            "email": {"host": "smtp.example", "password": secrets_set["password"]},
            "sms": {"url": "https://sms.example/send", "username": "AC1", "password": secrets_set["sms"]},
        },
        "integrations": {"woocommerce": {"secret": secrets_set["woo"]}},
    }
    assert (await shop.http.patch(f"{server.url}/api/store", json=patch, headers=shop.auth)).status_code == 200
    keys = Keys(redis_target.prefix)
    with sync_client(redis_target.url) as admin:
        stored_order = {k.decode(): v.decode() for k, v in admin.hgetall(keys.order(order["tracking_id"])).items()}
        stored_settings = admin.hget(keys.store(shop.id), "settings").decode()
    assert order["tracking_token"] not in "".join(stored_order.values())
    assert stored_order["token_digest"] == hashlib.sha256(order["tracking_token"].encode()).hexdigest()
    assert not any(plain in stored_settings for plain in secrets_set.values())
    assert stored_settings.count('"sealed:') == 4
    again = (await shop.get("/api/orders/S1")).json()
    assert again["tracking_token"] == order["tracking_token"] and again["tracking_url"] == order["tracking_url"]
    cust = await customer_socket(server, order)
    assert (await cust.recv_type("snapshot"))["order"]["number"] == "S1"
    await cust.close()
    notifications = (await shop.get("/api/store")).json()["notifications"]
    assert notifications["webhook"]["secret"] == notifications["sms"]["password"] == "********"


async def test_orders_stored_before_sealing_still_open(shop: Shop, server: Server, redis_target: RedisTarget) -> None:
    """An order hash written with the plain `token` field (before sealing) still authenticates its customer."""
    order = await shop.order("S2")
    key = Keys(redis_target.prefix).order(order["tracking_id"])
    with sync_client(redis_target.url) as admin:
        admin.hdel(key, "token_digest", "token_sealed")
        admin.hset(key, "token", order["tracking_token"])
    r = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]})
    assert r.status_code == 200
    assert (await shop.get("/api/orders/S2")).json()["tracking_token"] == order["tracking_token"]
    wrong = await shop.http.get(f"{server.url}/api/track/{order['tracking_id']}", params={"t": "x" * 32})
    assert wrong.status_code == 404


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _post_huge(server: Server, path: str, size: int, chunked: bool) -> int:
    """POST `size` bytes of form body to `path` (as fast as the server takes them); the status it answered."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    form = "Content-Type: application/x-www-form-urlencoded"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\n{form}\r\n{length}\r\n\r\n".encode())
    status = asyncio.create_task(reader.readline())
    block = b"a" * (1024 * 1024)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        for _ in range(size // len(block)):
            if status.done():  # the server answered: it will not read the rest
                break
            writer.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            await asyncio.wait_for(writer.drain(), wait(10))
    line = await asyncio.wait_for(status, wait(10))
    writer.close()
    return int(line.split()[1])


async def test_unauthenticated_bodies_are_capped_while_they_are_read(server: Server) -> None:
    """Three 200 MB posts at once to the sign-in and lookup forms (no credential needed) are refused with 413
    after at most the form's 16 KiB: the server's memory does not grow with them."""
    before = _rss_bytes(server.proc.pid)
    size = 200 * 1024 * 1024
    posts = [
        _post_huge(server, "/dispatch", size, chunked=True),
        _post_huge(server, "/track?store=st_x", size, chunked=True),
        _post_huge(server, "/dispatch", size, chunked=False),
    ]
    assert await asyncio.gather(*posts) == [413, 413, 413]
    grown = _rss_bytes(server.proc.pid) - before
    print(f"server RSS {before / 2**20:.0f} MiB before, grew {grown / 2**20:.1f} MiB under 3 x 200 MB posts")
    assert grown < 50 * 2**20
    assert (await asyncio.to_thread(lambda: httpx.get(f"{server.url}/healthz"))).status_code == 200
