"""A store's own wording of its customer messages, their preview and a test send, over real HTTP, SMTP and Redis.

The server of this module runs the notifications worker inline on its own key prefix, so a saved wording is
seen in a real email; tests reach a real SMTP server (STARTTLS, login) and an HTTP receiver standing in for an
SMS provider, both on loopback, which this server allows the way an operator allows an internal relay.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from test_dispatch import desk_for

from conftest import RedisTarget, Server, Shop, new_shop, now_ms, server_env
from livemap.notify.templates import TEXTS
from receivers import HttpReceiver, SmtpReceiver, free_port, served_by

SMTP_USER, SMTP_PASSWORD = "shop", "pw-" + uuid.uuid4().hex[:10]
PREVIEW, TEST = "/api/store/notifications/preview", "/api/store/notifications/test"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def nserver(redis_target: RedisTarget, ca_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(
        redis_target,
        tmp_path_factory.mktemp("ns"),
        LIVEMAP_KEY_PREFIX=f"{redis_target.prefix}:ns",
        LIVEMAP_WORKER_INLINE="1",
        SSL_CERT_FILE=str(ca_file),  # the SMTP server's certificate comes from the test CA
    )
    srv = Server(env, "NS")
    yield srv
    srv.stop()


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
async def nshop(http: httpx.AsyncClient, nserver: Server) -> Shop:
    return await new_shop(http, nserver)


# --- helpers -------------------------------------------------------------------------------------


async def patch(shop: Shop, doc: dict[str, Any]) -> httpx.Response:
    return await shop.http.patch(shop.server.url + "/api/store", json=doc, headers=shop.auth)


async def configure(shop: Shop, doc: dict[str, Any]) -> None:
    r = await patch(shop, doc)
    assert r.status_code == 200, r.text


def email_via(smtp: SmtpReceiver, password: str = SMTP_PASSWORD) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": smtp.port,
        "username": SMTP_USER,
        "password": password,
        "from": "Loja <envios@loja.example>",
    }


def sms_via(receiver: HttpReceiver, path: str) -> dict[str, Any]:
    return {"url": receiver.url + path, "format": "form", "body": {"to": "{phone}", "text": "{message}"}}


def mailbox() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}@example.com"


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json()["error"])


# --- the wording, saved and used -----------------------------------------------------------------


async def test_saved_wording_is_what_a_real_email_and_the_preview_say(nshop: Shop, smtp: SmtpReceiver) -> None:
    """Texts saved with PATCH /api/store word the worker's real email in that language; other languages and
    other keys keep livemap's; the preview says the same."""
    await configure(
        nshop,
        {
            "name": "Tienda Sol",
            "locale": "es",
            "notifications": {
                "events": {"shipped": ["email"]},
                "email": email_via(smtp),
                "texts": {"es": {"shipped": "¡{name}, tu pedido {number} de {store} ya salió! {{con cariño}}"}},
            },
        },
    )
    saved = (await nshop.get("/api/store")).json()["notifications"]["texts"]
    assert saved == {"es": {"shipped": "¡{name}, tu pedido {number} de {store} ya salió! {{con cariño}}"}}
    to = mailbox()
    await nshop.order("W1", customer={"name": "Eva", "email": to})
    assert (await nshop.stage("W1", "shipped")).status_code == 200
    (mail,) = await smtp.wait_for(to, 1)
    assert "¡Eva, tu pedido W1 de Tienda Sol ya salió! {con cariño}" in mail.text()
    assert TEXTS["es"]["shipped"].format(number="W1", store="Tienda Sol") not in mail.text()
    assert "Hola Eva:" in mail.text(), "keys the store left alone keep livemap's wording"
    seen = (await nshop.post(PREVIEW, {"lang": "es", "event": "shipped"})).json()
    assert "¡Ana Silva, tu pedido 1001 de Tienda Sol ya salió! {con cariño}" in seen["text"]
    assert seen["sms"].startswith("¡Ana Silva, tu pedido 1001")
    english = (await nshop.post(PREVIEW, {"lang": "en", "event": "shipped"})).json()
    assert TEXTS["en"]["shipped"].format(number="1001", store="Tienda Sol") in english["text"]


@pytest.mark.parametrize(
    ("texts", "named", "why"),
    [
        ({"es": {"shiped": "Va en camino"}}, "notifications.texts.es.shiped", "not a text"),
        ({"en": {"shipped": "Hi {customer}"}}, "notifications.texts.en.shipped", "{customer} is not a placeholder"),
        ({"en": {"track": "{url.__class__}"}}, "notifications.texts.en.track", "is not a placeholder"),
        ({"en": {"subject": "{store:>999999999}"}}, "notifications.texts.en.subject", "is not a placeholder"),
        ({"pt-BR": {"footer": "Parar: } {unsubscribe}"}}, "notifications.texts.pt-BR.footer", "single { or }"),
        ({"es": {"greeting": "Hola {name"}}, "notifications.texts.es.greeting", "single { or }"),
        ({"en": {"shipped": " "}}, "notifications.texts.en.shipped", "empty"),
        ({"en": {"arriving": "x" * 1001}}, "notifications.texts.en.arriving", "1000 characters"),
        ({"en": {"subject": "Two\nlines"}}, "notifications.texts.en.subject", "one line"),
    ],
)
async def test_bad_wording_is_refused_naming_it(nshop: Shop, texts: Any, named: str, why: str) -> None:
    """An unknown key, a placeholder render() cannot or must not fill, a stray brace, an empty, long or two-line
    subject: 422 `invalid_field` naming the language and key, and nothing is saved."""
    err = error(await patch(nshop, {"notifications": {"texts": texts}}), 422)
    assert err["code"] == "invalid_field" and named in err["message"] and why in err["message"], err
    assert (await nshop.get("/api/store")).json()["notifications"].get("texts") == {}
    (lang, words), *_ = texts.items()
    err = error(await nshop.post(PREVIEW, {"lang": lang, "event": "shipped", "texts": words}), 422)
    assert err["code"] == "invalid_field" and f"texts.{next(iter(words))}" in err["message"], err


async def test_a_key_set_to_null_goes_back_to_the_default(nshop: Shop) -> None:
    """Merge-patching a text to null removes it: the preview says livemap's words again."""
    await configure(nshop, {"notifications": {"texts": {"en": {"delivered": "Done, {name}!"}}}})
    assert "Done, Ana Silva!" in (await nshop.post(PREVIEW, {"lang": "en", "event": "delivered"})).json()["text"]
    await configure(nshop, {"notifications": {"texts": {"en": {"delivered": None}}}})
    text = (await nshop.post(PREVIEW, {"lang": "en", "event": "delivered"})).json()["text"]
    assert "Done," not in text and "has been delivered" in text


# --- preview -------------------------------------------------------------------------------------


async def test_preview_in_spanish_with_a_custom_stage_label(nshop: Shop, nserver: Server) -> None:
    """A custom stage reads with its Spanish label, the sample order and this server's links; unsaved texts
    show over the saved ones without being saved; an arriving message has the ETA in the store's time zone."""
    await configure(
        nshop,
        {
            "name": "Tienda Sol",
            "timezone": "America/Asuncion",
            "stages": {"custom": [{"id": "packed", "after": "processing", "labels": {"es": "Empaquetado"}}]},
            "notifications": {"texts": {"es": {"greeting": "¡Buenas, {name}!"}}},
        },
    )
    r = await nshop.post(PREVIEW, {"lang": "es", "event": "packed"})
    assert r.status_code == 200 and set(r.json()) == {"subject", "text", "sms"}, r.text
    seen = r.json()
    assert seen["subject"] == "Tienda Sol: pedido 1001 - Empaquetado"
    assert seen["text"].startswith("¡Buenas, Ana Silva!\n\nTu pedido 1001 de Tienda Sol ahora está: Empaquetado.")
    assert f"{nserver.url}/track/" in seen["text"] and "lang=es" in seen["text"]
    assert f"{nserver.url}/unsubscribe/" in seen["text"] and f"{nserver.url}/unsubscribe/" in seen["sms"]
    unsaved = {"stage": "{label}: su pedido {number} ({store})", "subject": "{store} | {label}"}
    draft = (await nshop.post(PREVIEW, {"lang": "es", "event": "packed", "texts": unsaved})).json()
    assert (
        "Empaquetado: su pedido 1001 (Tienda Sol)" in draft["text"] and draft["subject"] == "Tienda Sol | Empaquetado"
    )
    assert draft["text"].startswith("¡Buenas, Ana Silva!"), "unsaved texts go over the saved ones, not instead"
    assert (await nshop.get("/api/store")).json()["notifications"]["texts"] == {"es": {"greeting": "¡Buenas, {name}!"}}
    soon = [now_ms() + 8 * 60_000 + d for d in (-60_000, 0, 60_000)]
    zone = zoneinfo.ZoneInfo("America/Asuncion")
    clocks = {dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%H:%M") for ms in soon}
    arriving = (await nshop.post(PREVIEW, {"lang": "es", "event": "arriving"})).json()
    assert any(f"alrededor de las {c}." in arriving["text"] for c in clocks), arriving["text"]
    refund = (await nshop.post(PREVIEW, {"lang": "pt-BR", "event": "return_refunded"})).json()
    assert "Sua devolução do pedido 1001 da Tienda Sol foi reembolsada." in refund["text"]
    collect = (await nshop.post(PREVIEW, {"lang": "es", "event": "return_arriving"})).json()
    assert collect["subject"] == "Tienda Sol: tu devolución del pedido 1001", collect
    assert "retira tu devolución del pedido 1001 de Tienda Sol" in collect["text"], collect["text"]


async def test_an_unknown_event_is_refused_with_the_known_ones(nshop: Shop) -> None:
    """422 `unknown_event` listing the store's stages, arriving, delayed and the return steps."""
    for event in ("teleported", "return_lost", "return_"):
        err = error(await nshop.post(PREVIEW, {"lang": "en", "event": event}), 422)
        assert err["code"] == "unknown_event" and event in err["message"], err
        assert {"shipped", "arriving", "delayed", "return_approved"} <= set(err["known"])
    err = error(await nshop.post(PREVIEW, {"lang": "fr", "event": "shipped"}), 422)
    assert err["code"] == "invalid_field" and "lang" in err["message"]


# --- test sends ----------------------------------------------------------------------------------


async def test_a_test_email_arrives_marked_as_a_test(nshop: Shop, smtp: SmtpReceiver) -> None:
    """Through the store's own SMTP server (STARTTLS, login), to the address given, worded in the language asked,
    its subject starting `[Test] `."""
    await configure(nshop, {"name": "Loja Lua", "notifications": {"email": email_via(smtp)}})
    to = mailbox()
    r = await nshop.post(TEST, {"channel": "email", "to": to, "lang": "pt-BR", "event": "shipped"})
    assert r.status_code == 200 and r.json() == {"sent": True, "channel": "email", "to": to}, r.text
    (mail,) = smtp.to(to)  # sent before the answer: no waiting
    assert mail.recipients == [to] and mail.tls and mail.login == SMTP_USER
    assert mail.message["Subject"] == "[Test] Loja Lua: pedido 1001 - Enviado"
    assert mail.message["From"] == "Loja <envios@loja.example>"
    assert "Olá Ana Silva," in mail.text() and "Seu pedido 1001 da Loja Lua está a caminho." in mail.text()


async def test_a_test_sms_reaches_the_provider(nshop: Shop, receiver: HttpReceiver) -> None:
    """The store's SMS provider gets the body the store described, the message starting `[Test] `."""
    hook = f"/sms/{uuid.uuid4().hex[:8]}"
    await configure(nshop, {"name": "Tienda Sol", "notifications": {"sms": sms_via(receiver, hook)}})
    r = await nshop.post(TEST, {"channel": "sms", "to": "+595 981 123456", "lang": "es", "event": "arriving"})
    assert r.status_code == 200 and r.json() == {"sent": True, "channel": "sms", "to": "+595 981 123456"}, r.text
    (got,) = receiver.on(hook)
    assert got.form()["to"] == "+595 981 123456"
    assert got.form()["text"].startswith("[Test] Tu repartidor está cerca: el pedido 1001 de Tienda Sol llega")


async def test_bad_addresses_and_unconfigured_channels_send_nothing(nshop: Shop, smtp: SmtpReceiver) -> None:
    """No SMTP host or SMS url: 409 `channel_not_configured`; an address that is not one: 422."""
    to = mailbox()
    for channel, address in (("email", to), ("sms", "+1 555 0100")):
        err = error(await nshop.post(TEST, {"channel": channel, "to": address, "lang": "en", "event": "shipped"}), 409)
        assert err["code"] == "channel_not_configured" and f"notifications.{channel}" in err["message"]
    await configure(nshop, {"notifications": {"email": {"host": "127.0.0.1", "port": smtp.port}}})
    err = error(await nshop.post(TEST, {"channel": "email", "to": to, "lang": "en", "event": "shipped"}), 409)
    assert "from" in err["message"], "an SMTP host without a sender is not configured either"
    for channel, address in (("email", "not an address"), ("email", "a@b@c"), ("sms", "call me")):
        err = error(await nshop.post(TEST, {"channel": channel, "to": address, "lang": "en", "event": "shipped"}), 422)
        assert err["code"] == "invalid_field" and "to" in err["message"], err
    assert smtp.to(to) == []


async def test_a_refusing_smtp_server_answers_502_with_its_reason(nshop: Shop, smtp: SmtpReceiver) -> None:
    """The SMTP server's refusal (a wrong password) and a server that is not there: 502 `send_failed` saying why."""
    to = mailbox()
    await configure(nshop, {"notifications": {"email": email_via(smtp, password="wrong")}})
    err = error(await nshop.post(TEST, {"channel": "email", "to": to, "lang": "en", "event": "delivered"}), 502)
    assert err["code"] == "send_failed" and "SMTP 535" in err["message"], err
    assert "wrong" not in err["message"]
    await configure(nshop, {"notifications": {"email": email_via(smtp) | {"port": free_port()}}})
    err = error(await nshop.post(TEST, {"channel": "email", "to": to, "lang": "en", "event": "delivered"}), 502)
    assert err["code"] == "send_failed" and "cannot connect" in err["message"], err
    assert smtp.to(to) == []


async def test_test_sends_are_rate_limited_per_store(nshop: Shop, receiver: HttpReceiver, nserver: Server) -> None:
    """Five tests a minute per store, then 429 `rate_limited` with Retry-After; another store keeps its own five."""
    hook = f"/sms/{uuid.uuid4().hex[:8]}"
    await configure(nshop, {"notifications": {"sms": sms_via(receiver, hook)}})
    body = {"channel": "sms", "to": "+1 555 0100", "lang": "en", "event": "shipped"}
    for _ in range(5):
        assert (await nshop.post(TEST, body)).status_code == 200
    r = await nshop.post(TEST, body)
    assert error(r, 429)["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert len(receiver.on(hook)) == 5
    other = await new_shop(nshop.http, nserver)
    await configure(other, {"notifications": {"sms": sms_via(receiver, hook)}})
    assert (await other.post(TEST, body)).status_code == 200
    assert len(receiver.on(hook)) == 6


async def test_the_outbound_policy_of_the_process_holds_for_tests(
    nshop: Shop, smtp: SmtpReceiver, redis_target: RedisTarget, ca_file: Path, tmp_path: Path
) -> None:
    """Settings saved where loopback is allowed, a test asked of a process that allows no internal address: refused
    before any connection (502 naming the refusal), as the worker would refuse it."""
    await configure(nshop, {"notifications": {"email": email_via(smtp)}})
    prefix = f"{redis_target.prefix}:ns"
    env = server_env(
        redis_target, tmp_path, LIVEMAP_KEY_PREFIX=prefix, LIVEMAP_OUTBOUND_ALLOW="", SSL_CERT_FILE=str(ca_file)
    )
    strict = Server(env, "strict")
    try:
        to = mailbox()
        url = f"{strict.url}{TEST}"
        body = {"channel": "email", "to": to, "lang": "en", "event": "shipped"}
        err = error(await nshop.http.post(url, json=body, headers=nshop.auth), 502)
        assert err["code"] == "send_failed" and "127.0.0.1 is a loopback address" in err["message"], err
        assert smtp.to(to) == []
    finally:
        strict.stop()


# --- who may ask ---------------------------------------------------------------------------------


async def test_another_stores_key_sees_and_sends_only_its_own(nshop: Shop, nserver: Server, smtp: SmtpReceiver) -> None:
    """One store's wording and SMTP server are not another's: its preview has its own words, its test finds no
    channel, and its patch leaves the first store's texts alone."""
    await configure(
        nshop,
        {"name": "Store A", "notifications": {"email": email_via(smtp), "texts": {"en": {"shipped": "A ships!"}}}},
    )
    other = await new_shop(nshop.http, nserver)
    await configure(other, {"name": "Store B", "notifications": {"texts": {"en": {"shipped": "B ships!"}}}})
    seen = (await other.post(PREVIEW, {"lang": "en", "event": "shipped"})).json()
    assert "B ships!" in seen["text"] and "A ships!" not in seen["text"] and "Store A" not in seen["subject"]
    err = error(await other.post(TEST, {"channel": "email", "to": mailbox(), "lang": "en", "event": "shipped"}), 409)
    assert err["code"] == "channel_not_configured"
    assert "A ships!" in (await nshop.post(PREVIEW, {"lang": "en", "event": "shipped"})).json()["text"]
    anonymous = await nshop.http.post(f"{nserver.url}{PREVIEW}", json={"lang": "en", "event": "shipped"})
    assert anonymous.status_code == 401


async def test_an_account_session_is_refused_and_a_key_session_allowed(
    nshop: Shop, nserver: Server, receiver: HttpReceiver
) -> None:
    """A named dispatcher account's session gets 403 `key_required`; a session signed in with the store key (cookie
    and X-CSRF-Token) previews and sends; without the CSRF token it is refused."""
    hook = f"/sms/{uuid.uuid4().hex[:8]}"
    await configure(nshop, {"notifications": {"sms": sms_via(receiver, hook)}})
    assert (await nshop.post("/api/dispatchers", {"name": "desk", "password": "0123456789ab"})).status_code == 201
    account = await desk_for(nshop.http, nserver, {"store": nshop.id, "name": "desk", "password": "0123456789ab"})
    owner = await desk_for(nshop.http, nserver, {"key": nshop.key})
    send = {"channel": "sms", "to": "+1 555 0100", "lang": "en", "event": "shipped"}
    for path, body in ((PREVIEW, {"lang": "en", "event": "shipped"}), (TEST, send)):
        assert error(await account.call("POST", path, body), 403)["code"] == "key_required"
        assert error(await owner.call("POST", path, body, csrf=False), 403)["code"] == "csrf_failed"
    assert receiver.on(hook) == []
    r = await owner.call("POST", PREVIEW, {"lang": "en", "event": "shipped"})
    assert r.status_code == 200 and "Ana Silva" in r.json()["text"], r.text
    r = await owner.call("POST", TEST, send)
    assert r.status_code == 200 and r.json()["sent"] is True, r.text
    assert len(receiver.on(hook)) == 1
