"""The words of customer notifications (email and SMS) in English, Spanish and Brazilian Portuguese.

Every message names the store and the order and carries the tracking link. Stages without a
wording of their own (the store's custom stages among them) use the stage's label, which the
store may translate in its settings.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from livemap.notify.base import Notice

# A return's step (`return` events) is `return_<status>`. {store} {number} {name} {label} {eta} {note} {url}
# {unsubscribe} are filled in; a line whose value is missing is left out. `shop_note`: the note the shop
# sends its customer (notify.shop), in the shop's own email around it.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "Hi {name},",
        "subject": "{store}: order {number} - {label}",
        "stage": "Your order {number} from {store} is now: {label}.",
        "shipped": "Your order {number} from {store} is on its way.",
        "delivered": "Your order {number} from {store} has been delivered. Thank you!",
        "failed_attempt": "We could not deliver your order {number} from {store} today. We will be in touch.",
        "cancelled": "Your order {number} from {store} has been cancelled.",
        "arriving_subject": "{store}: your order {number} is almost there",
        "arriving": "Your driver is close: order {number} from {store} arrives around {eta}.",
        "delayed_subject": "{store}: order {number} is running late",
        "delayed": "Your order {number} from {store} is running late. New estimate: {eta}.",
        "return_subject": "{store}: your return of order {number}",
        "return_requested": "We got your request to return order {number} from {store}. We will reply soon.",
        "return_approved": "Your return of order {number} from {store} is approved. We will tell you how to send it.",
        "return_rejected": "Your return of order {number} from {store} was not accepted.",
        "return_pickup": "A driver will collect your return of order {number} from {store}.",
        "return_dropoff": "Please bring your return of order {number} to {store}.",
        "return_received": "{store} received your return of order {number}.",
        "return_refunded": "Your return of order {number} from {store} is refunded.",
        "note": "Note: {note}",
        "track": "Follow it live: {url}",
        "shop_note": "Track your order live: {url}",
        "footer": "You get these messages about your order from {store}. To stop them: {unsubscribe}",
        "stop_sms": "Stop SMS:",
    },
    "es": {
        "greeting": "Hola {name}:",
        "subject": "{store}: pedido {number} - {label}",
        "stage": "Tu pedido {number} de {store} ahora está: {label}.",
        "shipped": "Tu pedido {number} de {store} está en camino.",
        "delivered": "Tu pedido {number} de {store} fue entregado. ¡Gracias!",
        "failed_attempt": "Hoy no pudimos entregar tu pedido {number} de {store}. Te contactaremos.",
        "cancelled": "Tu pedido {number} de {store} fue cancelado.",
        "arriving_subject": "{store}: tu pedido {number} ya casi llega",
        "arriving": "Tu repartidor está cerca: el pedido {number} de {store} llega alrededor de las {eta}.",
        "delayed_subject": "{store}: el pedido {number} viene con retraso",
        "delayed": "Tu pedido {number} de {store} viene con retraso. Nueva estimación: {eta}.",
        "return_subject": "{store}: tu devolución del pedido {number}",
        "return_requested": "Recibimos tu pedido de devolución del pedido {number} de {store}. Te responderemos.",
        "return_approved": "Tu devolución del pedido {number} de {store} fue aprobada. Te diremos cómo enviarla.",
        "return_rejected": "Tu devolución del pedido {number} de {store} no fue aceptada.",
        "return_pickup": "Un repartidor pasará a retirar tu devolución del pedido {number} de {store}.",
        "return_dropoff": "Por favor, lleva tu devolución del pedido {number} a {store}.",
        "return_received": "{store} recibió tu devolución del pedido {number}.",
        "return_refunded": "Tu devolución del pedido {number} de {store} fue reembolsada.",
        "note": "Nota: {note}",
        "track": "Síguelo en vivo: {url}",
        "shop_note": "Sigue tu pedido en vivo: {url}",
        "footer": "Recibes estos mensajes sobre tu pedido de {store}. Para dejar de recibirlos: {unsubscribe}",
        "stop_sms": "Dejar de recibir SMS:",
    },
    "pt-BR": {
        "greeting": "Olá {name},",
        "subject": "{store}: pedido {number} - {label}",
        "stage": "Seu pedido {number} da {store} agora está: {label}.",
        "shipped": "Seu pedido {number} da {store} está a caminho.",
        "delivered": "Seu pedido {number} da {store} foi entregue. Obrigado!",
        "failed_attempt": "Não conseguimos entregar hoje seu pedido {number} da {store}. Entraremos em contato.",
        "cancelled": "Seu pedido {number} da {store} foi cancelado.",
        "arriving_subject": "{store}: seu pedido {number} está quase chegando",
        "arriving": "O entregador está perto: o pedido {number} da {store} chega por volta das {eta}.",
        "delayed_subject": "{store}: o pedido {number} está atrasado",
        "delayed": "Seu pedido {number} da {store} está atrasado. Nova previsão: {eta}.",
        "return_subject": "{store}: sua devolução do pedido {number}",
        "return_requested": "Recebemos seu pedido de devolução do pedido {number} da {store}. Responderemos em breve.",
        "return_approved": "Sua devolução do pedido {number} da {store} foi aprovada. Diremos como enviá-la.",
        "return_rejected": "Sua devolução do pedido {number} da {store} não foi aceita.",
        "return_pickup": "Um entregador vai buscar sua devolução do pedido {number} da {store}.",
        "return_dropoff": "Por favor, leve sua devolução do pedido {number} até a {store}.",
        "return_received": "A {store} recebeu sua devolução do pedido {number}.",
        "return_refunded": "Sua devolução do pedido {number} da {store} foi reembolsada.",
        "note": "Observação: {note}",
        "track": "Acompanhe ao vivo: {url}",
        "shop_note": "Acompanhe seu pedido ao vivo: {url}",
        "footer": "Você recebe estas mensagens sobre seu pedido da {store}. Para não recebê-las mais: {unsubscribe}",
        "stop_sms": "Parar SMS:",
    },
}

#: Stages with a sentence of their own; any other stage says "is now: <label>".
_WORDED = ("shipped", "delivered", "failed_attempt", "cancelled")


@dataclass(frozen=True, slots=True)
class Message:
    """A notification as words: an email's subject and body, and the shorter SMS text."""

    subject: str
    text: str
    sms: str


def clock(epoch_ms: int, timezone: str) -> str:
    """`14:05`: a time of day in the store's time zone."""
    when = dt.datetime.fromtimestamp(epoch_ms / 1000, zoneinfo.ZoneInfo(timezone))
    return when.strftime("%H:%M")


def render(notice: Notice) -> Message:
    """The customer's message for `notice`, in `notice.lang`."""
    t = TEXTS[notice.lang]
    data = notice.data
    eta_at = data.get("eta_at")
    values = {
        "store": notice.store.name,
        "number": notice.order["id"],
        "name": notice.order.customer.name,
        "url": notice.tracking_url,
        "unsubscribe": notice.unsubscribe_email,
        "label": notice.store.machine().label(notice.key, notice.lang),
        "eta": clock(int(eta_at), notice.store.timezone) if isinstance(eta_at, int | float) else "",
        "note": (data.get("note") or "").strip() if notice.kind in ("stage", "return") else "",
    }
    if notice.kind in ("arriving", "delayed"):
        subject, line = t[f"{notice.kind}_subject"], t[notice.kind]
    elif notice.kind == "return":
        subject, line = t["return_subject"], t[f"return_{data.get('status')}"]
    else:
        subject, line = t["subject"], t[notice.key if notice.key in _WORDED else "stage"]
    headline = line.format(**values)
    note = t["note"].format(**values) if values["note"] else ""
    track = t["track"].format(**values)
    body = [t["greeting"].format(**values), "", headline]
    if note:
        body.append(note)
    body += ["", track, "", "-- ", t["footer"].format(**values)]
    sms_config = notice.store.notifications.sms
    stop = (sms_config.opt_out if sms_config and sms_config.opt_out else None) or t["stop_sms"]
    sms = " ".join(part for part in (headline, note, track, f"{stop} {notice.unsubscribe_sms}") if part)
    return Message(subject=subject.format(**values), text="\n".join(body) + "\n", sms=sms)


def shop_note(notice: Notice) -> str:
    """The tracking link as a note on the shop's order, in `notice.lang`."""
    return TEXTS[notice.lang]["shop_note"].format(url=notice.tracking_url)
