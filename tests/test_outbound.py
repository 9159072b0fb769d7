"""Store-configured destinations cannot reach inside: refused when saved, and never connected to.

A listener on loopback counts every connection made to it: whatever a store saves, livemap never
opens one. Delivery-time checks (a worker vetting what was saved, redirects) are in test_notify.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import RedisTarget, Server, Shop, new_shop, server_env
from livemap.outbound.policy import OutboundPolicy, OutboundRefused, classify


class Listener:
    """A TCP listener on loopback (IPv4 and, where the machine has it, IPv6) that counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self._socks = [socket.create_server(("127.0.0.1", 0))]
        self.port = self._socks[0].getsockname()[1]
        with contextlib.suppress(OSError):  # no IPv6 loopback here: ::1 is still refused before any connect
            self._socks.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        for s in self._socks:
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        for s in self._socks:
            s.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def guarded(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose operator allows one internal address, 127.0.0.2, and nothing else inside."""
    env = server_env(redis_target, tmp_path_factory.mktemp("o"), LIVEMAP_OUTBOUND_ALLOW="127.0.0.2")
    srv = Server(env, "O")
    yield srv
    srv.stop()


@pytest.fixture
async def shop(http: httpx.AsyncClient, guarded: Server) -> Shop:
    return await new_shop(http, guarded)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::5", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("100.64.0.1", "not a public address"),
        ("93.184.215.14", None),
        ("2606:4700::6810:84e5", None),
        ("::ffff:93.184.215.14", None),
    ],
)
def test_every_internal_address_is_named_and_public_ones_pass(address: str, reason: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == reason


def test_the_operator_allows_networks_and_names_only() -> None:
    policy = OutboundPolicy.parse(" 10.0.5.0/24, hooks.Internal.example. ,::1 ")
    policy.check("10.0.5.9", "10.0.5.9")
    policy.check("hooks.internal.example", "10.9.9.9")  # allowed by name, whatever it resolves to
    policy.check("x", "::1")
    for host, address in (("10.0.6.1", "10.0.6.1"), ("other.example", "192.168.0.1")):
        with pytest.raises(OutboundRefused, match="a private address"):
            policy.check(host, address)
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        OutboundPolicy.parse("10.0.0.0/33")
    assert OutboundPolicy.parse("") == OutboundPolicy()


def _patches(port: int) -> list[tuple[str, dict[str, object]]]:
    """Every destination a store can configure, pointed inside in every way there is."""
    urls = [
        f"http://127.0.0.1:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        "http://10.20.30.40/hook",
        "http://169.254.169.254/latest/meta-data/",
        f"http://localhost:{port}/hook",  # a name that resolves to loopback
        f"https://127.0.0.1:{port}/hook",
    ]
    patches: list[tuple[str, dict[str, object]]] = []
    for url in urls:
        patches.append(("notifications.webhook.url", {"webhook": {"url": url, "secret": "s"}}))
        patches.append(("notifications.sms.url", {"sms": {"url": url}}))
    for host in ("127.0.0.1", "::1", "localhost", "10.20.30.40", "169.254.169.254"):
        patches.append(("notifications.email.host", {"email": {"host": host, "port": port, "from": "a@b.example"}}))
    return patches


async def test_internal_destinations_are_refused_when_saved_and_never_connected(shop: Shop, listener: Listener) -> None:
    for field, notifications in _patches(listener.port):
        r = await shop.http.patch(
            shop.server.url + "/api/store", json={"notifications": notifications}, headers=shop.auth
        )
        assert r.status_code == 422, (notifications, r.text)
        error = r.json()["error"]
        assert error["code"] == "outbound_refused" and error["message"].startswith(f"{field}: "), error
        assert "LIVEMAP_OUTBOUND_ALLOW" in error["message"]
    store = (await shop.http.get(shop.server.url + "/api/store", headers=shop.auth)).json()
    assert not (store.get("notifications") or {}).get("webhook"), "nothing refused was saved"
    assert listener.connections == 0


async def test_public_and_allowed_destinations_are_saved(shop: Shop, listener: Listener) -> None:
    for notifications in (
        {"webhook": {"url": "https://93.184.215.14/hook", "secret": "s"}},
        {"webhook": {"url": f"http://127.0.0.2:{listener.port}/hook", "secret": "s"}},  # the operator's exception
        {"email": {"host": "127.0.0.2", "port": listener.port, "from": "a@b.example"}},
    ):
        r = await shop.http.patch(
            shop.server.url + "/api/store", json={"notifications": notifications}, headers=shop.auth
        )
        assert r.status_code == 200, r.text
    assert listener.connections == 0  # saving vets the address; it does not connect


def test_a_bad_allow_list_stops_the_server_at_start(redis_target: RedisTarget, tmp_path: Path) -> None:
    env = server_env(redis_target, tmp_path, LIVEMAP_OUTBOUND_ALLOW="10.0.0.0/33")
    with pytest.raises(RuntimeError) as failed:
        Server(env, "bad").stop()
    assert "LIVEMAP_OUTBOUND_ALLOW" in str(failed.value)
