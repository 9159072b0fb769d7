"""Email over the store's SMTP server (aiosmtplib): STARTTLS, or implicit TLS on port 465, and login.

The Message-ID is derived from the event id, so a resent email (a redelivery after a worker crash)
carries the same Message-ID as the first and a mail system can recognise the duplicate.
"""

from __future__ import annotations

import html
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from livemap.domain.storesettings import Email
from livemap.notify.base import DeliveryError, Notice
from livemap.notify.templates import Message
from livemap.outbound.connect import smtp_socket
from livemap.outbound.policy import OutboundPolicy, OutboundRefused

#: Longest the connection, and then each SMTP command, may take (the worker bounds the whole attempt too).
SMTP_TIMEOUT_S = 10.0


def message_id(notice: Notice, sender: str) -> str:
    """`<livemap.EVENT.email@sender-domain>`: stable across retries."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "livemap.invalid"
    return f"<livemap.{notice.event_id}.email@{domain}>"


def build(notice: Notice, words: Message, config: Email, to: str) -> EmailMessage:
    """The email for `notice`: plain text with an HTML alternative, in the customer's language."""
    assert config.sender  # checked by send()
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = Address(display_name=notice.order.customer.name, addr_spec=to)
    msg["Subject"] = words.subject
    msg["Date"] = formatdate(notice.created_at / 1000, localtime=False)
    msg["Message-ID"] = message_id(notice, config.sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    msg["X-Livemap-Event-Id"] = notice.event_id
    # RFC 8058 one-click unsubscribe: mail clients show their own button and POST to the link.
    msg["List-Unsubscribe"] = f"<{notice.unsubscribe_email}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(words.text)
    links = [html.escape(notice.tracking_url), html.escape(notice.unsubscribe_email)]
    paragraphs = "".join(
        "<p>" + _linked(html.escape(p).replace("\n", "<br>"), links) + "</p>"
        for p in words.text.split("\n\n")
        if p.strip()
    )
    msg.add_alternative(f'<!doctype html><html lang="{notice.lang}"><body>{paragraphs}</body></html>', subtype="html")
    msg["Content-Language"] = notice.lang  # after the content: set_content() drops Content-* headers
    return msg


def _linked(escaped: str, urls: list[str]) -> str:
    """Escaped text with each of `urls` (escaped too) made a link."""
    for url in urls:
        if url:
            escaped = escaped.replace(url, f'<a href="{url}">{url}</a>')
    return escaped


async def send(notice: Notice, words: Message, config: Email | None, to: str, policy: OutboundPolicy) -> None:
    """Hand the email to the store's SMTP server; a 5xx reply is permanent, anything else may be retried.

    The connection goes to an address of the host that ``policy`` allows (vetted after resolving it),
    within ``SMTP_TIMEOUT_S``; TLS still verifies the certificate against the host's name.
    """
    if config is None or not config.host or not config.sender:
        raise DeliveryError("notifications.email needs host and from", permanent=True)
    implicit_tls = config.port == 465
    try:
        sock = await smtp_socket(config.host, config.port, policy, SMTP_TIMEOUT_S)
    except OutboundRefused as exc:
        raise DeliveryError(f"SMTP server: {exc}", permanent=True) from None
    except OSError as exc:
        raise DeliveryError(f"SMTP failed: cannot connect to {config.host}:{config.port}: {exc}") from None
    try:
        await aiosmtplib.send(
            build(notice, words, config, to),
            sock=sock,
            hostname=config.host,
            timeout=SMTP_TIMEOUT_S,
            username=config.username or None,
            password=config.password or None,
            use_tls=implicit_tls,
            start_tls=config.starttls and not implicit_tls,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        raise DeliveryError(f"SMTP refused the recipient ({codes})", permanent=all(c >= 500 for c in codes)) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from None
    finally:
        sock.close()  # the session closed it already, unless it failed before taking it
