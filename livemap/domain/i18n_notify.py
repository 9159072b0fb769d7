"""The words of customer notifications (email and SMS) in English, Spanish and Brazilian Portuguese, and what a
store's own wording of them (`notifications.texts`) must keep to.

`notify.templates` fills them in. A store may reword any of them per language; its text must use only the
placeholders below (each a plain `{name}`: no attribute, index, conversion or format spec, so filling one
in cannot fail, reach into an object or pad a line to any length), and a brace meant as itself is doubled.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from livemap.domain.i18n import Lang

# A return's step (`return` events) is `return_<status>`; `return_arriving`: `arriving` while a driver comes to
# collect a return (its subject is `return_subject`). {store} {number} {name} {label} {eta} {note} {url}
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
        "return_arriving": "Your driver is close: your return of order {number} from {store} is collected "
        "around {eta}.",
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
        "return_arriving": "Tu repartidor está cerca: retira tu devolución del pedido {number} de {store} "
        "alrededor de las {eta}.",
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
        "return_arriving": "O entregador está perto: ele busca sua devolução do pedido {number} da {store} "
        "por volta das {eta}.",
        "note": "Observação: {note}",
        "track": "Acompanhe ao vivo: {url}",
        "shop_note": "Acompanhe seu pedido ao vivo: {url}",
        "footer": "Você recebe estas mensagens sobre seu pedido da {store}. Para não recebê-las mais: {unsubscribe}",
        "stop_sms": "Parar SMS:",
    },
}

#: What a text may say in braces; each is filled in (with nothing when the event has no such value: {eta} outside
#: arriving / delayed, {note} when the store wrote none).
PLACEHOLDERS = ("store", "number", "name", "label", "eta", "note", "url", "unsubscribe")
#: The keys a store may reword (each language has the same).
KEYS = tuple(TEXTS["en"])
#: Longest text a store may set for one key.
MAX_TEXT = 1000
#: Email subjects: a header, so one line.
_ONE_LINE = frozenset(k for k in KEYS if k.endswith("subject")) | {"stop_sms"}
#: Control characters, but for the line break a body's text may hold.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_FORMATTER = string.Formatter()


def check_text(key: str, text: str) -> None:
    """ValueError `<key>: <why>` unless `text` may stand for TEXTS' `key` (see the module's docstring).

    An empty text is refused rather than taken to mean the default: a store goes back to livemap's wording by
    leaving the key out (a settings patch sets it to null).
    """
    if key not in TEXTS["en"]:
        raise ValueError(f"{key}: not a text livemap words; known: {', '.join(KEYS)}")
    if not text.strip():
        raise ValueError(f"{key}: empty; leave the key out (null in a settings patch) for the default wording")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{key}: longer than {MAX_TEXT} characters")
    if _CONTROL.search(text) or (key in _ONE_LINE and "\n" in text):
        where = "one line" if key in _ONE_LINE else "text and line breaks"
        raise ValueError(f"{key}: control characters; it takes {where} only")
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in _FORMATTER.parse(text) if name is not None]
    except ValueError:
        raise ValueError(
            f"{key}: a single {{ or }}; write {{{{ or }}}} for the brace itself, {{name}} for a placeholder"
        ) from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            allowed = " ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"{key}: {shown} is not a placeholder; a text may use {allowed}")
    text.format(**dict.fromkeys(PLACEHOLDERS, ""))  # what render() does; after the checks above it cannot fail


def check_texts(texts: Mapping[Lang, Mapping[str, str]], where: str = "notifications.texts") -> None:
    """ValueError `<where>.<lang>.<key>: <why>` for the first text in `texts` (language -> key -> text) that
    `check_text` refuses."""
    for lang, words in texts.items():
        for key, text in words.items():
            try:
                check_text(key, text)
            except ValueError as exc:
                raise ValueError(f"{where}.{lang}.{exc}") from None
