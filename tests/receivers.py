"""Real servers that notifications are delivered to: an HTTP receiver and an SMTP server (aiosmtpd).

The HTTP receiver checks webhook signatures with its own code (hmac + hashlib, not livemap's), can
answer a scripted series of statuses and a JSON body (a shop's API), can hold a request open (to kill a
worker mid-delivery), and can speak HTTPS with a test CA's certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from conftest import wait

#: Receivers refuse a signature whose timestamp is older than this (the documented replay window).
TOLERANCE_S = 300


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """A receiver's check of `X-Livemap-Signature: t=...,v1=...`, written from the documentation alone."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def served_by(ca: trustme.CA) -> ssl.SSLContext:
    """A TLS server context with a certificate from the test CA `ca` for 127.0.0.1 and localhost (the
    server under test trusts `ca` through SSL_CERT_FILE)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    """One request as the HTTP receiver got it, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    signature_ok: bool | None
    method: str
    query: str

    @property
    def event_id(self) -> str:
        return self.headers.get("x-livemap-event-id", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class _Plan:
    statuses: list[int] = field(default_factory=list)
    always: int | None = None
    hold: threading.Event | None = None
    reply: Any = None


class HttpReceiver:
    """A threaded HTTP server on a free port; each path answers 200 unless scripted otherwise.

    With `tls` (a server context holding a certificate for 127.0.0.1) it speaks HTTPS.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        #: Path -> webhook secret: requests to that path get their signature checked.
        self.secrets: dict[str, str] = {}
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._answer(self, raw)

            def do_GET(self) -> None:
                receiver._answer(self, b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a worker killed mid-request: the receiver's write fails, as it would in real life

        self._server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        path, _, query = handler.path.partition("?")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        secret = self.secrets.get(path)
        ok = verify_signature(secret, headers.get("x-livemap-signature", ""), raw) if secret else None
        with self._lock:
            plan = self._plans.setdefault(path, _Plan())
            hold, plan.hold = plan.hold, None
            status = plan.statuses.pop(0) if plan.statuses else (plan.always or 200)
            request = Request(path, headers, raw, time.monotonic(), status, ok, handler.command, query)
            self.requests.append(request)
            reply = json.dumps(plan.reply).encode() if plan.reply is not None and 200 <= status < 300 else b""
        if hold is not None:
            hold.wait(wait(30))
        handler.send_response(status)
        if reply:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    def script(self, path: str, statuses: list[int]) -> None:
        """Answer the next requests to `path` with `statuses`, in order, then 200."""
        self._plans[path] = _Plan(statuses=list(statuses))

    def fail_always(self, path: str, status: int) -> None:
        self._plans[path] = _Plan(always=status)

    def reply(self, path: str, body: Any) -> None:
        """Answer successful requests to `path` with `body` as JSON (as a shop's API answers a GET)."""
        self._plans.setdefault(path, _Plan()).reply = body

    def hold_next(self, path: str) -> threading.Event:
        """The next request to `path` is held open until the returned event is set."""
        event = threading.Event()
        self._plans.setdefault(path, _Plan()).hold = event
        return event

    def on(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 15) -> list[Request]:
        """The first `count` requests to `path`, waiting for them to arrive."""
        deadline = time.monotonic() + wait(timeout)
        while len(self.on(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.on(path))} of {count} requests arrived")
            await asyncio.sleep(0.02)
        return self.on(path)[:count]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Mail:
    """One email as the SMTP server accepted it."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return cast(str, cast(EmailMessage, part).get_content())

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return cast(str, cast(EmailMessage, part).get_content())


class SmtpReceiver:
    """aiosmtpd on a free port: STARTTLS required (certificate from `tls`) and AUTH with `users`."""

    def __init__(self, tls: ssl.SSLContext, users: dict[str, str]) -> None:
        self.mails: list[Mail] = []
        self.users = users
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=True,
        )
        self.controller.start()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = cast(EmailMessage, email.message_from_bytes(content, policy=email.policy.default))
        mail = Mail(
            sender=str(envelope.mail_from),
            recipients=list(envelope.rcpt_tos),
            message=message,
            tls=session.ssl is not None,
            login=cast(str | None, session.auth_data),
        )
        with self._lock:
            self.mails.append(mail)
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [m for m in self.mails if address in m.recipients]

    async def wait_for(self, address: str, count: int, timeout: float = 15) -> list[Mail]:
        deadline = time.monotonic() + wait(timeout)
        while len(self.to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{address}: {len(self.to(address))} of {count} emails arrived")
            await asyncio.sleep(0.02)
        return self.to(address)[:count]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.controller.stop()
