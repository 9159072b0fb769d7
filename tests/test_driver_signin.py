"""The store's driver list (`GET /api/drivers`) and a driver's sign-in link with its QR code, on a real server."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
import zxingcpp
from PIL import Image
from test_dispatch import desk_for

from conftest import RedisTarget, Server, Shop, driver_socket, fix, new_shop, now_ms, server_env
from livemap.domain import responses as r

SVG = "{http://www.w3.org/2000/svg}"
PUBLIC_URL = "https://track.example.com"


@pytest.fixture(scope="module")
def public_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server behind a public address (trailing slash and all, as an operator may write it)."""
    env = server_env(redis_target, tmp_path_factory.mktemp("public"), LIVEMAP_PUBLIC_URL=PUBLIC_URL + "/")
    srv = Server(env, "public")
    yield srv
    srv.stop()


async def created(shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    res = await shop.post("/api/drivers", body)
    assert res.status_code == 201, res.text
    msgspec.json.decode(res.content, type=r.DriverCreated)  # strictly the documented shape
    return dict(res.json())


def fragment_token(url: str) -> str:
    """The token of a sign-in link, read the way static/driver.js reads it: from the fragment, never the query."""
    parts = urlsplit(url)
    assert parts.query == "", url
    (token,) = parse_qs(parts.fragment)["token"]
    return token


async def me(shop: Shop, token: str) -> httpx.Response:
    return await shop.http.get(f"{shop.server.url}/api/driver", headers={"Authorization": f"Bearer {token}"})


# --- the list ------------------------------------------------------------------------------------


async def test_each_store_lists_its_own_drivers_with_devices_and_fix(http: httpx.AsyncClient, server: Server) -> None:
    """By name then id, vehicle, devices as registered, `last_seen` the fix time of the newest accepted fix
    (an older one sent after it changes nothing); another store's drivers never show."""
    a, b = await new_shop(http, server), await new_shop(http, server)
    assert (await a.get("/api/drivers")).json() == {"drivers": []}
    await created(a, {"id": "a0", "name": "Bea"})
    await created(a, {"id": "z2", "name": "Amy", "vehicle": "van"})
    token = (await created(a, {"id": "z1", "name": "Amy", "vehicle": "bicycle"}))["token"]
    await created(b, {"id": "b1", "name": "Cy"})
    devices = {"devices": ["imei-2", "imei-1"]}
    assert (await http.put(f"{server.url}/api/drivers/z2/devices", json=devices, headers=a.auth)).status_code == 200
    newest = now_ms() - 2_000
    sock = await driver_socket(server, token)
    await sock.send(fix(0.1, newest))
    assert (await sock.recv_type("ack"))["accepted"] == 1
    await sock.send(fix(0.05, newest - 5_000))
    assert (await sock.recv_type("ack"))["ignored"] == 1
    await sock.close()

    listed = await a.get("/api/drivers")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "drivers": [
            {"id": "z1", "name": "Amy", "vehicle": "bicycle", "devices": [], "last_seen": newest},
            {"id": "z2", "name": "Amy", "vehicle": "van", "devices": ["imei-1", "imei-2"], "last_seen": None},
            {"id": "a0", "name": "Bea", "vehicle": "car", "devices": [], "last_seen": None},
        ]
    }
    msgspec.json.decode(listed.content, type=r.DriverList)
    assert (await b.get("/api/drivers")).json() == {
        "drivers": [{"id": "b1", "name": "Cy", "vehicle": "car", "devices": [], "last_seen": None}]
    }
    assert (await http.get(f"{server.url}/api/drivers")).status_code == 401
    driver_token = await http.get(f"{server.url}/api/drivers", headers={"Authorization": f"Bearer {token}"})
    assert driver_token.status_code in (401, 403), "a driver's token cannot list its store's drivers"


async def test_a_dispatcher_account_cannot_list_drivers_but_the_key_session_can(shop: Shop, server: Server) -> None:
    """The settings page's list: a named account's session gets 403 `key_required`, the store key's session the list."""
    await created(shop, {"id": "d1", "name": "Dee"})
    assert (await shop.post("/api/dispatchers", {"name": "desk", "password": "0123456789ab"})).status_code == 201
    account = await desk_for(shop.http, server, {"store": shop.id, "name": "desk", "password": "0123456789ab"})
    refused = await account.call("GET", "/api/drivers")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "key_required", refused.text
    owner = await desk_for(shop.http, server, {"key": shop.key})
    listed = await owner.call("GET", "/api/drivers")
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["drivers"]] == ["d1"], listed.text


# --- the sign-in link ------------------------------------------------------------------------------


async def test_the_sign_in_link_signs_in_and_a_new_one_retires_the_old(shop: Shop, server: Server) -> None:
    """`sign_in_url` is the server's own `/driver#token=...`; its token opens `GET /api/driver`; after
    `POST .../token` the old link's token is refused and the new one works. Neither token reaches the log."""
    first = await created(shop, {"id": "s1", "name": "Sam"})
    assert first["sign_in_url"] == f"{server.url}/driver#token={first['token']}"
    old = fragment_token(first["sign_in_url"])
    signed_in = await me(shop, old)
    assert signed_in.status_code == 200 and signed_in.json()["driver_id"] == "s1", signed_in.text
    page = await shop.http.get(first["sign_in_url"])  # what the phone loads: the fragment is not sent
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]

    again = await shop.post("/api/drivers/s1/token", None)
    assert again.status_code == 200, again.text
    second = msgspec.to_builtins(msgspec.json.decode(again.content, type=r.DriverCreated))
    assert (second["id"], second["name"]) == ("s1", "Sam")
    new = fragment_token(second["sign_in_url"])
    assert new == second["token"] != old and second["sign_in_url"] == f"{server.url}/driver#token={new}"
    assert (await me(shop, old)).status_code == 401
    assert (await me(shop, new)).json()["driver_id"] == "s1"
    assert decode_qr(second["sign_in_qr"]) == second["sign_in_url"] != decode_qr(first["sign_in_qr"])
    log = "".join(server.output)
    assert old not in log and new not in log


async def test_the_link_uses_the_public_url(http: httpx.AsyncClient, public_server: Server) -> None:
    """With LIVEMAP_PUBLIC_URL set, the link (and its QR code) point there, not at the address the request used."""
    shop = await new_shop(http, public_server)
    body = await created(shop, {"id": "p1", "name": "Pat"})
    assert body["sign_in_url"] == f"{PUBLIC_URL}/driver#token={body['token']}"
    assert decode_qr(body["sign_in_qr"]) == body["sign_in_url"]


# --- the QR code -----------------------------------------------------------------------------------


async def test_the_qr_code_is_a_scalable_svg_that_reads_back_as_the_link(shop: Shop) -> None:
    """An SVG document sized by its viewBox alone, black modules on a white square with a 4-module quiet zone,
    which a QR reader (zxing-cpp) decodes to exactly `sign_in_url`."""
    body = await created(shop, {"id": "q1", "name": "Quinn"})
    root = ET.fromstring(body["sign_in_qr"])
    assert root.tag == f"{SVG}svg" and "width" not in root.attrib and "height" not in root.attrib
    x0, y0, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert (x0, y0) == (0, 0) and width == height
    size, dark = modules(root)
    xs, ys = {x for x, _ in dark}, {y for _, y in dark}
    # Finder patterns sit in three corners of the symbol, so its dark modules span it edge to edge.
    assert (min(xs), min(ys), max(xs), max(ys)) == (4, 4, size - 5, size - 5)
    assert decode_qr(body["sign_in_qr"]) == body["sign_in_url"]


def modules(root: ET.Element) -> tuple[int, set[tuple[int, int]]]:
    """The symbol's side (in modules, quiet zone included) and its dark modules, read from the SVG's two paths:
    a white square under everything and black horizontal runs one module thick."""
    side = int(float(root.attrib["viewBox"].split()[2]))
    (light,) = [p for p in root.iter(f"{SVG}path") if p.get("fill")]
    (ink,) = [p for p in root.iter(f"{SVG}path") if p.get("stroke")]
    assert light.get("fill") == "#fff" and ink.get("stroke") == "#000" and ink.get("stroke-width", "1") == "1"
    assert trace(light.attrib["d"])[1] == {(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)}, "a white square"
    dark, _ = trace(ink.attrib["d"])
    return side, dark


def trace(d: str) -> tuple[set[tuple[int, int]], set[tuple[float, float]]]:
    """Follow an SVG path of the commands segno writes (M, m, h, v, z): the modules its horizontal runs cover
    (a run at y + 0.5 covers row y) and the points it visits."""
    x = y = 0.0
    covered: set[tuple[int, int]] = set()
    points: set[tuple[float, float]] = set()
    for cmd, args in re.findall(r"([A-Za-z])([^A-Za-z]*)", d):
        nums = [float(n) for n in args.replace(",", " ").split()]
        if cmd in "Mm":
            dx, dy = nums
            x, y = (dx, dy) if cmd == "M" else (x + dx, y + dy)
        elif cmd == "h":
            (dx,) = nums
            assert x == int(x) and dx == int(dx), d
            covered |= {(int(min(x, x + dx)) + i, int(y)) for i in range(int(abs(dx)))}
            x += dx
        elif cmd == "v":
            (dy,) = nums
            y += dy
        else:
            assert cmd == "z" and not nums, f"unexpected path command {cmd!r}"
        points.add((x, y))
    return covered, points


def decode_qr(svg: str) -> str:
    """Draw the SVG's modules (8 px each) and read the QR code back with zxing-cpp."""
    side, dark = modules(ET.fromstring(svg))
    image = Image.new("L", (side, side), 255)
    for xy in dark:
        image.putpixel(xy, 0)
    found = zxingcpp.read_barcodes(image.resize((side * 8, side * 8), Image.Resampling.NEAREST))
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode, found
    return found[0].text
