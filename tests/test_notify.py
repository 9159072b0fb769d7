"""Notifications out: real workers (`livemap worker` processes) deliver to a real SMTP server and HTTP receiver.

The server and workers of this module use their own key prefix, so the outbox holds only what
these tests create. Each test leaves the outbox settled: every entry read and acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trustme

from conftest import (
    DEST,
    ORIGIN,
    ROOT,
    RedisTarget,
    Server,
    Shop,
    along,
    driver_socket,
    new_shop,
    now_ms,
    server_env,
    wait,
)
from livemap.domain.i18n import LANGS
from livemap.domain.records import Order
from livemap.domain.storesettings import QuietHours, StoreSettings
from livemap.notify.base import Notice
from livemap.notify.policy import backoff_s, quiet_until
from livemap.notify.templates import TEXTS, render
from livemap.settings import Settings
from livemap.storage.connection import connect
from livemap.storage.db import Client
from livemap.storage.keys import Keys
from receivers import HttpReceiver, SmtpReceiver, served_by

SECRET = "whsec-" + uuid.uuid4().hex
PUBLIC = "https://track.example"
SMTP_USER, SMTP_PASSWORD = "shop", "s3cret-" + uuid.uuid4().hex[:8]
ROUTE_M = 3705


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefix(redis_target: RedisTarget) -> str:
    return f"{redis_target.prefix}:notify"


@pytest.fixture(scope="module")
def nserver(redis_target: RedisTarget, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # 127.0.0.2 too: the redirect test's first hop (its workers allow less; see the outbound safety section).
    env = server_env(
        redis_target,
        tmp_path_factory.mktemp("n"),
        LIVEMAP_KEY_PREFIX=prefix,
        LIVEMAP_OUTBOUND_ALLOW="127.0.0.1,127.0.0.2",
    )
    srv = Server(env, "N")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def smtp(ca: trustme.CA) -> Iterator[SmtpReceiver]:
    context = served_by(ca)
    server = SmtpReceiver(context, {SMTP_USER: SMTP_PASSWORD})
    yield server
    server.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
async def rdb(redis_target: RedisTarget) -> AsyncIterator[Client]:
    client = connect(redis_target.url)
    yield client
    await client.aclose()


@pytest.fixture
async def nshop(http: httpx.AsyncClient, nserver: Server) -> Shop:
    return await new_shop(http, nserver)


class WorkerProc:
    """A `livemap worker` child process."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livemap", "worker", "--log-level", "info"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + wait(30)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("livemap worker started"):
                break
        else:
            self.stop()
        if not self.output or not self.output[-1].startswith("livemap worker started"):
            raise RuntimeError(f"worker {name} did not start:\n{''.join(self.output)}")
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, like a crashed machine."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(wait(10))
        self.stop()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(wait(20))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_drainer"):
            self._drainer.join(wait(5))
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.proc.returncode

    @property
    def log(self) -> str:
        return "".join(self.output)


@pytest.fixture
def start_worker(
    redis_target: RedisTarget, prefix: str, ca_file: Path, tmp_path: Path
) -> Iterator[Callable[..., WorkerProc]]:
    started: list[WorkerProc] = []

    def start(name: str = "W", outbound_allow: str = "127.0.0.1", **settings: str) -> WorkerProc:
        tuned = {"backoff_base_s": "0.2", "timeout_s": "10"} | settings  # tiny backoff: the whole file runs fast
        env = server_env(
            redis_target,
            tmp_path,
            LIVEMAP_KEY_PREFIX=prefix,
            LIVEMAP_OUTBOUND_ALLOW=outbound_allow,
            LIVEMAP_PUBLIC_URL=PUBLIC,
            SSL_CERT_FILE=str(ca_file),  # the SMTP server's certificate comes from the test CA
            **{f"LIVEMAP_WORKER_{k.upper()}": v for k, v in tuned.items()},
        )
        worker = WorkerProc(env, name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        assert worker.stop() in (0, -signal.SIGKILL), worker.log


# --- helpers -------------------------------------------------------------------------------------

Start = Callable[..., WorkerProc]


def path() -> str:
    return f"/hooks/{uuid.uuid4().hex[:10]}"


async def configure(shop: Shop, notifications: dict[str, Any], **settings: Any) -> None:
    r = await shop.http.patch(
        shop.server.url + "/api/store", json={"notifications": notifications, **settings}, headers=shop.auth
    )
    assert r.status_code == 200, r.text
    assert (r.json()["notifications"].get("webhook") or {}).get("secret") in (None, "********")


def webhook_to(receiver: HttpReceiver, hook: str) -> dict[str, str]:
    receiver.secrets[hook] = SECRET
    return {"url": receiver.url + hook, "secret": SECRET}


def email_via(smtp: SmtpReceiver) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": smtp.port,
        "starttls": True,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "Tienda <envios@tienda.example>",
    }


async def subscribe(shop: Shop, order: dict[str, Any], **choice: bool) -> None:
    url = f"{shop.server.url}/api/track/{order['tracking_id']}/subscriptions"
    r = await shop.http.post(url, params={"t": order["tracking_token"]}, json=choice)
    assert r.status_code == 200, r.text


async def stage(shop: Shop, oid: str, to: str, note: str | None = None) -> None:
    r = await shop.stage(oid, to, note)
    assert r.status_code == 200, r.text


async def settled(rdb: Client, prefix: str, timeout: float = 15, delayed: int = 0) -> None:
    """Wait until the workers read and acknowledged every outbox entry, with `delayed` deliveries scheduled."""
    outbox = Keys(prefix).outbox()
    deadline = time.monotonic() + wait(timeout)
    while True:
        last = await rdb.xrevrange(outbox, count=1)
        groups = {g["name"]: g for g in await rdb.xinfo_groups(outbox)} if last else {}
        group = groups.get(b"notify")
        scheduled = await rdb.zcard(Keys(prefix).outbox_delayed())
        if group and group["pending"] == 0 and group["last-delivered-id"] == last[0][0] and scheduled == delayed:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox not settled: group {group}, {scheduled} scheduled, last {last}")
        await asyncio.sleep(0.05)


async def dead_letters(rdb: Client, prefix: str, event_id: str) -> list[dict[str, str]]:
    entries = await rdb.xrange(Keys(prefix).outbox_dead())
    out = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [f for f in out if f["event_id"] == event_id]


# --- delivery to real servers --------------------------------------------------------------------


async def test_webhook_email_and_sms_reach_real_servers_in_the_customers_language(
    nshop: Shop,
    receiver: HttpReceiver,
    smtp: SmtpReceiver,
    start_worker: Start,
    rdb: Client,
    prefix: str,
) -> None:
    """A signed webhook, an email over STARTTLS with login and an SMS, each in the customer's language with the link."""
    hook, sms_path = path(), path()
    await configure(
        nshop,
        {
            "events": {"shipped": ["webhook", "email", "sms"], "delivered": ["webhook", "email"]},
            "webhook": webhook_to(receiver, hook),
            "email": email_via(smtp),
            "sms": {
                "url": receiver.url + sms_path,
                "username": "AC123",
                "password": "sms-token-1",
                "format": "form",
                "body": {"to": "{phone}", "text": "{message}"},
            },
        },
        locale="es",
    )
    worker = start_worker()
    br_mail, es_mail = f"bia-{uuid.uuid4().hex[:6]}@example.com", f"eva-{uuid.uuid4().hex[:6]}@example.com"
    br = await nshop.order(
        "N1", customer={"name": "Bia", "email": br_mail, "phone": "+55 11 99999-0000"}, locale="pt-BR"
    )
    es = await nshop.order("N2", customer={"name": "Eva", "email": es_mail})
    await subscribe(nshop, br, email=True, sms=True)
    await subscribe(nshop, es, email=True)
    await stage(nshop, "N1", "processing")  # not configured: nothing is sent
    await stage(nshop, "N1", "shipped")
    await stage(nshop, "N2", "shipped")

    hooks = await receiver.wait_for(hook, 2)
    assert all(h.signature_ok for h in hooks)
    by_order = {h.json()["order_id"]: h for h in hooks}
    assert by_order.keys() == {"N1", "N2"}
    shipped = by_order["N1"].json()
    assert shipped["id"] == by_order["N1"].event_id and shipped["event"] == "shipped"
    assert shipped["data"]["stage"] == "shipped" and shipped["tracking_id"] == br["tracking_id"]
    br_link = f"{PUBLIC}/track/{br['tracking_id']}?t={br['tracking_token']}&lang=pt-BR"
    assert shipped["tracking_url"] == br_link

    (br_shipped,) = await smtp.wait_for(br_mail, 1)
    (es_shipped,) = await smtp.wait_for(es_mail, 1)
    assert br_shipped.tls and br_shipped.login == SMTP_USER
    assert br_shipped.message["From"] == "Tienda <envios@tienda.example>"
    assert br_shipped.message["Content-Language"] == "pt-BR"
    assert "N1" in br_shipped.message["Subject"] and "Enviado" in br_shipped.message["Subject"]
    assert "está a caminho" in br_shipped.text() and br_link in br_shipped.text()
    assert f'href="{br_link.replace("&", "&amp;")}"' in br_shipped.html()
    assert by_order["N1"].event_id in br_shipped.message["Message-ID"]
    assert br_shipped.message["X-Livemap-Event-Id"] == by_order["N1"].event_id
    es_link = f"{PUBLIC}/track/{es['tracking_id']}?t={es['tracking_token']}&lang=es"
    assert "está en camino" in es_shipped.text() and es_link in es_shipped.text()

    (sms,) = await receiver.wait_for(sms_path, 1)
    assert sms.form()["to"] == "+55 11 99999-0000"
    assert "a caminho" in sms.form()["text"] and br_link in sms.form()["text"]
    assert sms.event_id == by_order["N1"].event_id
    assert sms.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:sms-token-1").decode()

    await stage(nshop, "N1", "delivered")
    delivered = (await receiver.wait_for(hook, 3))[2]
    assert delivered.signature_ok and delivered.json()["event"] == "delivered"
    assert "foi entregue" in (await smtp.wait_for(br_mail, 2))[1].text()
    await settled(rdb, prefix)
    assert len(receiver.on(hook)) == 3 and len(receiver.on(sms_path)) == 1  # no SMS for `delivered`
    assert len(smtp.to(br_mail)) == 2 and len(smtp.to(es_mail)) == 1
    assert br["tracking_token"] not in worker.log and SMTP_PASSWORD not in worker.log


async def test_each_step_of_a_return_emails_the_customer_in_their_language(
    nshop: Shop, smtp: SmtpReceiver, start_worker: Start
) -> None:
    """A return walked from requested to refunded (drop-off): one email per step, over real SMTP, in Portuguese,
    each with its own sentence and the store's note."""
    await configure(nshop, {"events": {"return": ["email"]}, "email": email_via(smtp)}, locale="pt-BR")
    start_worker()
    mail = f"rita-{uuid.uuid4().hex[:6]}@example.com"
    order = await nshop.order("RT1", customer={"name": "Rita", "email": mail})
    for to in ("processing", "shipped", "delivered"):
        await stage(nshop, "RT1", to)
    url = f"{nshop.server.url}/api/track/{order['tracking_id']}/return"
    r = await nshop.http.post(url, params={"t": order["tracking_token"]}, json={"reason": "Damaged"})
    assert r.status_code == 201, r.text
    steps = [("approved", None), ("dropoff", "Loja da Rua Augusta, 10h-18h"), ("received", None), ("refunded", None)]
    for status, note in steps:
        r = await nshop.post("/api/orders/RT1/return", {"status": status, "note": note})
        assert r.status_code == 200, r.text
    mails = await smtp.wait_for(mail, 5)
    name = (await nshop.get("/api/store")).json()["name"]
    for got, status in zip(mails, ["requested", *(s for s, _ in steps)], strict=True):
        said = TEXTS["pt-BR"][f"return_{status}"].format(store=name, number="RT1")
        assert said in got.text(), (status, got.text())
        assert "devolução do pedido RT1" in got.message["Subject"]
    assert "Loja da Rua Augusta" in mails[2].text(), "the store's note reaches the customer"


async def test_shipping_email_reaches_a_customer_who_never_opted_in_and_one_click_unsubscribes(
    nshop: Shop, smtp: SmtpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """A new store with SMTP and `shipped: ["email"]`: an order with an email and no opt-in, marked shipped, gets
    exactly one email with the tracking link and an RFC 8058 unsubscribe; after a POST to it, the next stage
    change sends none, and the order's subscriptions (what the tracking page shows) say email is off."""
    await configure(nshop, {"events": {"shipped": ["email"], "delivered": ["email"]}, "email": email_via(smtp)})
    start_worker()
    mail = f"nina-{uuid.uuid4().hex[:6]}@example.com"
    order = await nshop.order("U1", customer={"name": "Nina", "email": mail, "phone": "+1 555 0199"})
    assert order["subscriptions"] == {"email": True, "sms": False}  # email on by default, SMS opt-in
    await stage(nshop, "U1", "shipped")
    (shipped,) = await smtp.wait_for(mail, 1)
    link = f"{PUBLIC}/track/{order['tracking_id']}?t={order['tracking_token']}&lang=en"
    assert link in shipped.text()
    unsubscribe = shipped.message["List-Unsubscribe"].strip("<>")
    assert shipped.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in shipped.text() and unsubscribe.startswith(
        f"{PUBLIC}/unsubscribe/{order['tracking_id']}/email"
    )
    assert order["tracking_token"] not in unsubscribe
    local = unsubscribe.replace(PUBLIC, nshop.server.url)
    forged = await nshop.http.post(local[:-4] + "0000", content=b"List-Unsubscribe=One-Click")
    assert forged.status_code == 404
    asked = await nshop.http.get(local)  # a link scanner's GET changes nothing
    assert asked.status_code == 200 and "U1" in asked.text and "<form" in asked.text
    assert (await nshop.get("/api/orders/U1")).json()["subscriptions"]["email"] is True
    done = await nshop.http.post(
        local, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200
    assert (await nshop.get("/api/orders/U1")).json()["subscriptions"] == {"email": False, "sms": False}
    snapshot = await nshop.http.get(
        f"{nshop.server.url}/api/track/{order['tracking_id']}", params={"t": order["tracking_token"]}
    )
    assert snapshot.json()["order"]["subscriptions"]["email"] is False
    await stage(nshop, "U1", "delivered")
    await settled(rdb, prefix)
    assert len(smtp.to(mail)) == 1


async def test_per_order_consent_and_the_sms_opt_out(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """An order created with `subscriptions: {sms: true}` (consent taken at checkout) gets SMS without opting in,
    ending with the store's opt-out wording and link; `{email: true}` without an email address is a 422."""
    sms_path = path()
    sms = {"url": receiver.url + sms_path, "format": "json", "opt_out": "Basta:"}
    await configure(nshop, {"events": {"shipped": ["sms"]}, "sms": sms})
    start_worker()
    order = await nshop.order("U2", customer={"name": "Ugo", "phone": "+1 555 0142"}, subscriptions={"sms": True})
    assert order["subscriptions"] == {"email": False, "sms": True}
    refused = await nshop.post(
        "/api/orders",
        {"id": "U3", "customer": {"name": "X"}, "destination": {"lat": 1, "lon": 1}, "subscriptions": {"email": True}},
    )
    assert refused.status_code == 422 and "subscriptions.email" in refused.json()["error"]["message"]
    await stage(nshop, "U2", "shipped")
    (message,) = await receiver.wait_for(sms_path, 1)
    text = message.json()["text"]
    assert f"Basta: {PUBLIC}/unsubscribe/{order['tracking_id']}/sms?sig=" in text
    stop = text.rsplit(" ", 1)[1].replace(PUBLIC, nshop.server.url)
    assert (await nshop.http.post(stop)).status_code == 200
    assert (await nshop.get("/api/orders/U2")).json()["subscriptions"]["sms"] is False
    await settled(rdb, prefix)


async def test_with_email_default_opt_in_customers_get_email_and_sms_only_after_opting_in(
    nshop: Shop,
    receiver: HttpReceiver,
    smtp: SmtpReceiver,
    start_worker: Start,
    rdb: Client,
    prefix: str,
) -> None:
    """A store whose email default is `opt_in`: its webhook fires for every event; email and SMS go out only
    on the channels the customer opted in to."""
    hook, sms_path = path(), path()
    body = {"to": "{phone}", "text": "{message}", "ref": "{event_id}", "sender": "Tienda{1}"}
    await configure(
        nshop,
        {
            "events": {"*": ["webhook", "email", "sms"]},
            "webhook": webhook_to(receiver, hook),
            "email": {**email_via(smtp), "default": "opt_in"},
            "sms": {"url": receiver.url + sms_path, "format": "json", "body": body},
        },
    )
    start_worker()
    mail = f"olga-{uuid.uuid4().hex[:6]}@example.com"
    order = await nshop.order("P1", customer={"name": "Olga", "email": mail, "phone": "+1 555 0100"})
    await stage(nshop, "P1", "processing")
    await receiver.wait_for(hook, 1)
    await settled(rdb, prefix)
    assert not receiver.on(sms_path) and not smtp.to(mail)

    await subscribe(nshop, order, sms=True)
    await stage(nshop, "P1", "shipped")
    (sms,) = await receiver.wait_for(sms_path, 1)
    hooks = await receiver.wait_for(hook, 2)
    sent = sms.json()
    assert sent["to"] == "+1 555 0100" and sent["ref"] == hooks[1].event_id and sent["sender"] == "Tienda{1}"
    assert "on its way" in sent["text"] and sms.headers["idempotency-key"] == hooks[1].event_id

    await subscribe(nshop, order, sms=False, email=True)
    await stage(nshop, "P1", "failed_attempt", note="Nobody answered the door")
    (email,) = await smtp.wait_for(mail, 1)
    assert "could not deliver" in email.text() and "Nobody answered the door" in email.text()
    await settled(rdb, prefix)
    assert len(receiver.on(hook)) == 3 and len(receiver.on(sms_path)) == 1 and len(smtp.to(mail)) == 1


async def test_every_notifiable_event_reaches_the_store_webhook(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """Stage changes (failed_attempt, delivered too), `delayed` and `arriving` from driver fixes: one webhook each."""
    hook = path()
    await configure(nshop, {"events": {"*": ["webhook"]}, "webhook": webhook_to(receiver, hook)})
    start_worker()
    t0 = now_ms() - 30 * 60_000
    await nshop.driver("nd")
    order = await nshop.order("E1", promised_by=t0 + 240_000)
    assert (await nshop.post("/api/orders/E1/assign", {"driver_id": "nd"})).status_code == 200
    await stage(nshop, "E1", "shipped")
    driver = await driver_socket(nshop.server, nshop.drivers["nd"])
    # Standing at the origin: the ETA passes the promise (delayed); then 30 m/s to the door (arriving).
    fixes = [(*ORIGIN, 0.0), (*ORIGIN, 0.0)] + [(*along(i * 150 / ROUTE_M), 30.0) for i in range(1, 25)]
    fixes += [(*DEST, 0.0)] * 2
    for i, (lat, lon, speed) in enumerate(fixes):
        await driver.send({"lat": lat, "lon": lon, "ts": t0 + i * 5000, "speed": speed, "accuracy": 5})
        assert (await driver.recv_type("ack"))["accepted"] == 1
    await driver.close()
    for to in ("failed_attempt", "shipped", "delivered"):
        await stage(nshop, "E1", to)
    await settled(rdb, prefix)

    # What the customer's stream recorded as notifiable, the store heard about, in the same order.
    events = await rdb.xrange(Keys(prefix).order_events(order["tracking_id"]))
    recorded = []
    for _, fields in events:
        e = json.loads(fields[b"data"])
        if e["type"] in ("arriving", "delayed") or (e["type"] == "stage" and e["stage"] != "received"):
            recorded.append(e.get("stage", e["type"]))
    got = receiver.on(hook)
    assert [h.json()["event"] for h in got] == recorded
    assert recorded[0] == "shipped" and recorded[-3:] == ["failed_attempt", "shipped", "delivered"]
    assert {"delayed", "arriving"} <= set(recorded)
    assert all(h.signature_ok for h in got) and len({h.event_id for h in got}) == len(got)
    delayed = next(h.json() for h in got if h.json()["event"] == "delayed")
    assert delayed["data"]["resolved"] is False and delayed["data"]["promised_by"] == t0 + 240_000


# --- faults --------------------------------------------------------------------------------------


async def test_receiver_failing_three_times_gets_exactly_one_delivery_after_growing_backoff(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """500, 500, 500, then 200: four tries of the same event id, waits growing between them, one 200, no more."""
    hook = path()
    await configure(nshop, {"events": {"shipped": ["webhook"]}, "webhook": webhook_to(receiver, hook)})
    receiver.script(hook, [500, 500, 500])
    start_worker(max_tries="5", backoff_base_s="0.3")
    await nshop.order("R1")
    await stage(nshop, "R1", "shipped")
    tries = await receiver.wait_for(hook, 4, timeout=20)
    await settled(rdb, prefix)
    await asyncio.sleep(wait(1))

    assert len(receiver.on(hook)) == 4
    assert [t.status for t in tries] == [500, 500, 500, 200]
    assert len({t.event_id for t in tries}) == 1 and len({t.body for t in tries}) == 1
    assert all(t.signature_ok for t in tries)
    assert [t.headers["x-livemap-attempt"] for t in tries] == ["1", "2", "3", "4"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert await rdb.exists(Keys(prefix).notify_done(tries[0].event_id, "webhook"))
    assert not await dead_letters(rdb, prefix, tries[0].event_id)


async def test_worker_killed_mid_delivery_is_finished_by_another(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """SIGKILL while the webhook request is in flight: a new worker claims the entry and delivers the same event."""
    hook = path()
    await configure(nshop, {"events": {"shipped": ["webhook"]}, "webhook": webhook_to(receiver, hook)})
    held = receiver.hold_next(hook)
    first = start_worker("A")
    await nshop.order("K1")
    await stage(nshop, "K1", "shipped")
    (in_flight,) = await receiver.wait_for(hook, 1)
    first.kill()
    assert first.proc.returncode == -signal.SIGKILL
    held.set()  # the receiver answers into a dead connection
    pending = await rdb.xpending(Keys(prefix).outbox(), "notify")
    assert pending["pending"] == 1  # read by the dead worker, never acknowledged

    second = start_worker("B", claim_idle_ms="300")
    tries = await receiver.wait_for(hook, 2)
    await settled(rdb, prefix)
    await asyncio.sleep(wait(1))
    assert len(receiver.on(hook)) == 2
    assert tries[1].event_id == in_flight.event_id and tries[1].body == in_flight.body
    assert tries[1].status == 200 and tries[1].signature_ok
    assert "took over outbox entry" in second.log
    assert await rdb.exists(Keys(prefix).notify_done(in_flight.event_id, "webhook"))


async def test_permanently_failing_endpoint_ends_in_the_dead_letter_stream(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """A webhook that always answers 503 is tried LIVEMAP_WORKER_MAX_TRIES times, then dead-lettered with its error."""
    hook = path()
    await configure(nshop, {"events": {"shipped": ["webhook"]}, "webhook": webhook_to(receiver, hook)})
    receiver.fail_always(hook, 503)
    start_worker(max_tries="3")
    order = await nshop.order("D1")
    await stage(nshop, "D1", "shipped")
    tries = await receiver.wait_for(hook, 3)
    await settled(rdb, prefix)
    await asyncio.sleep(wait(1))
    assert len(receiver.on(hook)) == 3 and len({t.event_id for t in tries}) == 1
    (dead,) = await dead_letters(rdb, prefix, tries[0].event_id)
    assert dead["channel"] == "webhook" and dead["attempt"] == "3"
    assert dead["error"] == "webhook answered HTTP 503"
    assert dead["store"] == nshop.id and dead["tracking_id"] == order["tracking_id"]
    assert json.loads(dead["data"])["stage"] == "shipped"


# --- outbound safety ------------------------------------------------------------------------------


async def test_the_worker_vets_each_destination_again_when_it_connects(
    nshop: Shop, receiver: HttpReceiver, smtp: SmtpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """Saved while allowed, refused when sent (the operator's allowance gone, or the name resolving elsewhere now):
    dead-lettered at the first try, naming the address, and nothing reaches the receivers."""
    hook, sms_path = path(), path()
    await configure(
        nshop,
        {
            "events": {"shipped": ["webhook", "email", "sms"]},
            "webhook": webhook_to(receiver, hook),
            "email": email_via(smtp),
            "sms": {"url": receiver.url + sms_path},
        },
    )
    start_worker(outbound_allow="")
    mail = f"val-{uuid.uuid4().hex[:6]}@example.com"
    order = await nshop.order("V1", customer={"name": "Val", "email": mail, "phone": "+595 981 000 000"})
    await subscribe(nshop, order, email=True, sms=True)
    await stage(nshop, "V1", "shipped")
    await settled(rdb, prefix)
    entries = await rdb.xrange(Keys(prefix).outbox_dead())
    dead = [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
    mine = {d["channel"]: d for d in dead if d["tracking_id"] == order["tracking_id"]}
    assert mine.keys() == {"webhook", "email", "sms"}, dead
    for channel, what in (("webhook", "webhook"), ("sms", "SMS provider"), ("email", "SMTP server")):
        assert mine[channel]["attempt"] == "1", mine[channel]  # permanent: retrying cannot help
        assert mine[channel]["error"].startswith(f"{what}: 127.0.0.1 is a loopback address"), mine[channel]
    assert receiver.on(hook) == [] and receiver.on(sms_path) == [] and smtp.to(mail) == []


async def test_a_redirect_inside_is_not_followed(
    nshop: Shop, receiver: HttpReceiver, start_worker: Start, rdb: Client, prefix: str
) -> None:
    """An allowed destination answering 302 to a loopback address: a failed attempt, nothing connects there."""
    hook = path()

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", receiver.url + hook)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    bouncer = ThreadingHTTPServer(("127.0.0.2", 0), Redirect)
    threading.Thread(target=bouncer.serve_forever, daemon=True).start()
    try:
        bounce = f"http://127.0.0.2:{bouncer.server_address[1]}/hook"
        await configure(nshop, {"events": {"shipped": ["webhook"]}, "webhook": {"url": bounce, "secret": SECRET}})
        start_worker(outbound_allow="127.0.0.2", max_tries="1")
        order = await nshop.order("R1")
        await stage(nshop, "R1", "shipped")
        await settled(rdb, prefix)
        entries = await rdb.xrange(Keys(prefix).outbox_dead())
        dead = [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
        (mine,) = [d for d in dead if d["tracking_id"] == order["tracking_id"]]
        assert mine["error"] == "webhook answered HTTP 302"
        assert receiver.on(hook) == []
    finally:
        bouncer.shutdown()
        bouncer.server_close()


# --- quiet hours, inline worker ------------------------------------------------------------------


async def test_quiet_hours_hold_email_until_they_end_but_not_the_webhook(
    nshop: Shop,
    receiver: HttpReceiver,
    smtp: SmtpReceiver,
    start_worker: Start,
    rdb: Client,
    prefix: str,
) -> None:
    """Inside the store's quiet hours the webhook goes at once; the email waits for the window's end, then goes."""
    hook = path()
    now = dt.datetime.now(dt.UTC)
    window_end = (now + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    quiet = {"from": (now - dt.timedelta(hours=1)).strftime("%H:%M"), "to": window_end.strftime("%H:%M")}
    await configure(
        nshop,
        {
            "events": {"shipped": ["webhook", "email"]},
            "webhook": webhook_to(receiver, hook),
            "email": email_via(smtp),
            "quiet_hours": quiet,
        },
        timezone="UTC",
    )
    start_worker()
    mail = f"quinn-{uuid.uuid4().hex[:6]}@example.com"
    order = await nshop.order("Q1", customer={"name": "Quinn", "email": mail})
    await subscribe(nshop, order, email=True)
    await stage(nshop, "Q1", "shipped")
    (webhook,) = await receiver.wait_for(hook, 1)
    await settled(rdb, prefix, delayed=1)
    assert not smtp.to(mail)
    [(member, due)] = await rdb.zrange(Keys(prefix).outbox_delayed(), 0, -1, withscores=True)
    held = json.loads(member)
    fields = dict(zip(held[::2], held[1::2], strict=True))
    assert fields["channel"] == "email" and fields["event_id"] == webhook.event_id and fields["attempt"] == "0"
    assert int(due) == int(window_end.timestamp() * 1000)

    # The window ends: (the store lifts it and) the clock reaches the due time.
    await configure(nshop, {"quiet_hours": None})
    await rdb.zadd(Keys(prefix).outbox_delayed(), {member: now_ms()}, xx=True)
    (email,) = await smtp.wait_for(mail, 1)
    assert email.message["X-Livemap-Event-Id"] == webhook.event_id
    await settled(rdb, prefix)
    assert len(receiver.on(hook)) == 1


async def test_inline_worker_runs_inside_the_server_process(
    http: httpx.AsyncClient, redis_target: RedisTarget, receiver: HttpReceiver, tmp_path: Path
) -> None:
    """LIVEMAP_WORKER_INLINE=1 (what `livemap demo` sets): the server sends notifications itself, and stops cleanly."""
    env = server_env(redis_target, tmp_path, LIVEMAP_KEY_PREFIX=f"{redis_target.prefix}:inline")
    srv = Server(env | {"LIVEMAP_WORKER_INLINE": "1", "LIVEMAP_PUBLIC_URL": PUBLIC}, "inline")
    try:
        shop = await new_shop(http, srv)
        hook = path()
        await configure(shop, {"events": {"shipped": ["webhook"]}, "webhook": webhook_to(receiver, hook)})
        created = await shop.order("I1")
        await stage(shop, "I1", "shipped")
        (got,) = await receiver.wait_for(hook, 1)
        assert got.signature_ok and got.json()["tracking_url"].startswith(f"{PUBLIC}/track/{created['tracking_id']}")
        srv.proc.send_signal(signal.SIGINT)  # Ctrl-C, as in `make run`
        assert srv.proc.wait(wait(20)) == 0
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.output), "".join(srv.output)


# --- rules without I/O ---------------------------------------------------------------------------


def _ms(year: int, month: int, day: int, hour: int, minute: int, zone: str) -> int:
    import zoneinfo

    return int(dt.datetime(year, month, day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone)).timestamp() * 1000)


def test_quiet_hours_window_in_the_stores_time_zone() -> None:
    """Inside an overnight window the end is the next morning; a same-day window works; DST shifts the end's UTC."""
    night = QuietHours(start="22:00", end="08:00")
    zone = "America/Asuncion"
    assert quiet_until(night, zone, _ms(2026, 5, 4, 23, 30, zone)) == _ms(2026, 5, 5, 8, 0, zone)
    assert quiet_until(night, zone, _ms(2026, 5, 5, 7, 59, zone)) == _ms(2026, 5, 5, 8, 0, zone)
    assert quiet_until(night, zone, _ms(2026, 5, 5, 8, 0, zone)) is None
    assert quiet_until(night, zone, _ms(2026, 5, 5, 12, 0, zone)) is None
    day = QuietHours(start="12:00", end="14:00")
    assert quiet_until(day, "UTC", _ms(2026, 5, 5, 13, 0, "UTC")) == _ms(2026, 5, 5, 14, 0, "UTC")
    assert quiet_until(day, "UTC", _ms(2026, 5, 5, 11, 59, "UTC")) is None
    assert quiet_until(None, "UTC", _ms(2026, 5, 5, 13, 0, "UTC")) is None
    # Berlin springs forward on 2026-03-29 at 02:00: 06:00 that morning is 04:00 UTC, not 05:00.
    early = QuietHours(start="01:00", end="06:00")
    until = quiet_until(early, "Europe/Berlin", _ms(2026, 3, 29, 1, 30, "Europe/Berlin"))
    assert until == int(dt.datetime(2026, 3, 29, 4, 0, tzinfo=dt.UTC).timestamp() * 1000)


def test_backoff_grows_until_the_cap() -> None:
    """Each wait is longer than the one before (jitter included) until the cap, which is never exceeded."""
    settings = Settings(worker_backoff_base_s=1.0, worker_backoff_cap_s=20.0)
    for _ in range(50):
        waits = [backoff_s(n, settings) for n in range(1, 8)]
        assert waits[0] < waits[1] < waits[2] < waits[3] < waits[4] <= 20.0 and waits[-1] <= 20.0


def test_a_driver_coming_to_collect_a_return_is_not_worded_as_a_delivery() -> None:
    """`arriving` while the order is on its return's pickup leg says the return is collected, in every language."""
    customer = msgspec.json.encode({"name": "Ana", "email": "ana@example.com"}).decode()
    store = StoreSettings(name="Tienda", timezone="America/Sao_Paulo")
    data = {"type": "arriving", "eta_at": 1_780_000_000_000, "remaining_m": 140, "ts": 1}
    for lang in LANGS:
        words = {}
        for leg in ("", "1"):
            order = Order({"id": "1001", "tid": "tid1", "token": "tok", "customer": customer, "return_leg": leg})
            notice = Notice("1-0", "arriving", "arriving", 0, "st", store, order, data, lang, "https://t.example/x")
            words[leg] = render(notice)
        t, values = TEXTS[lang], {"store": "Tienda", "number": "1001", "eta": "17:26"}
        assert words["1"].subject == t["return_subject"].format(**values)
        assert t["return_arriving"].format(**values) in words["1"].text and "https://t.example/x" in words["1"].sms
        assert t["arriving"].format(**values) in words[""].text, "a delivery keeps the delivery's words"
        assert t["arriving"].format(**values) not in words["1"].text


def test_every_language_words_every_event_with_the_link() -> None:
    """en, es and pt-BR have the same texts; each event's message names the order and carries the tracking link."""
    assert all(TEXTS[lang].keys() == TEXTS["en"].keys() for lang in LANGS)
    customer = msgspec.json.encode({"name": "Ana", "email": "ana@example.com"}).decode()
    order = Order({"id": "1001", "tid": "tid1", "token": "tok", "customer": customer})
    store = StoreSettings(name="Tienda", timezone="America/Sao_Paulo")
    cases = [
        ("shipped", {"type": "stage", "stage": "shipped", "note": None}),
        ("processing", {"type": "stage", "stage": "processing", "note": "Packed"}),
        ("arriving", {"type": "arriving", "eta_at": 1_780_000_000_000, "remaining_m": 140, "ts": 1}),
        ("delayed", {"type": "delayed", "eta_at": 1_780_000_000_000, "promised_by": 1, "resolved": False, "ts": 1}),
    ]
    for lang in LANGS:
        for key, data in cases:
            notice = Notice("1-0", key, str(data["type"]), 0, "st", store, order, data, lang, "https://t.example/x")
            words = render(notice)
            assert "1001" in words.subject and "Tienda" in words.subject
            assert "https://t.example/x" in words.text and "https://t.example/x" in words.sms
            if key in ("arriving", "delayed"):
                assert "17:26" in words.text  # 1_780_000_000_000 ms in Sao Paulo (UTC-3)
            if key == "processing":
                assert store.machine().label("processing", lang) in words.text and "Packed" in words.text
