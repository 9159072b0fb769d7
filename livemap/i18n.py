"""The customer-facing languages: English, Spanish, Brazilian Portuguese; chosen per request."""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "es", "pt-BR"]
LANGS: tuple[Lang, ...] = ("en", "es", "pt-BR")

# Keys used by the page's server-side HTML and by static/tracking.js (passed in the page config).
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "lookup_title": "Track your order",
        "lookup_number": "Order number",
        "lookup_contact": "Email used for the order",
        "lookup_submit": "Track",
        "lookup_failed": "We could not find an order with those details. Check them and try again.",
        "lookup_limited": "Too many attempts. Please wait a few minutes and try again.",
        "title": "Track your order",
        "order": "Order {number}",
        "status": "Order status",
        "eta_minutes": "Arriving in {n} min",
        "eta_now": "Arriving now",
        "delivered_at": "Delivered at {time}",
        "on_its_way": "Your order is on its way",
        "not_yet": "We will show the driver here once your order leaves",
        "last_seen": "Driver last seen {ago} ago",
        "live": "Live",
        "connecting": "Connecting…",
        "reconnecting": "Reconnecting…",
        "polling": "Live updates blocked: refreshing every 15 s",
        "tracking_number": "Tracking number",
        "carrier": "Carrier",
        "promised": "Promised by",
        "address": "Delivery address",
        "delayed": "Running late: new estimate shown",
        "off_route": "Your driver took another way; estimate adjusted",
        "arriving": "Your driver is close",
        "another": "Track another order",
        "invalid_title": "This tracking link does not work",
        "invalid_body": "The link may be incomplete or expired. Check the message you received, or look your order up.",
        "map": "Map with your driver's position and your delivery address",
        "driver": "Driver",
        "destination": "Delivery address",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "feedback_title": "How was your delivery?",
        "rating": "Your rating",
        "stars": "{n} of 5 stars",
        "comment": "Comment (optional)",
        "send_rating": "Send rating",
        "thanks": "Thanks! You rated {n}/5.",
        "change_rating": "Change rating",
        "start_return": "Start a return",
        "updates": "Send me updates about this delivery",
        "by_email": "By email",
        "by_sms": "By SMS",
        "saved": "Saved",
        "failed": "That did not work. Please try again.",
    },
    "es": {
        "lookup_title": "Sigue tu pedido",
        "lookup_number": "Número de pedido",
        "lookup_contact": "Correo usado en el pedido",
        "lookup_submit": "Seguir",
        "lookup_failed": "No encontramos un pedido con esos datos. Revísalos e inténtalo de nuevo.",
        "lookup_limited": "Demasiados intentos. Espera unos minutos e inténtalo de nuevo.",
        "title": "Sigue tu pedido",
        "order": "Pedido {number}",
        "status": "Estado del pedido",
        "eta_minutes": "Llega en {n} min",
        "eta_now": "Llegando ahora",
        "delivered_at": "Entregado a las {time}",
        "on_its_way": "Tu pedido está en camino",
        "not_yet": "Verás al repartidor aquí cuando tu pedido salga",
        "last_seen": "Repartidor visto hace {ago}",
        "live": "En vivo",
        "connecting": "Conectando…",
        "reconnecting": "Reconectando…",
        "polling": "Actualización en vivo bloqueada: se actualiza cada 15 s",
        "tracking_number": "Número de seguimiento",
        "carrier": "Transportista",
        "promised": "Prometido para",
        "address": "Dirección de entrega",
        "delayed": "Con demora: nueva estimación",
        "off_route": "El repartidor tomó otro camino; estimación ajustada",
        "arriving": "Tu repartidor está cerca",
        "another": "Seguir otro pedido",
        "invalid_title": "Este enlace de seguimiento no funciona",
        "invalid_body": "Puede estar incompleto o vencido. Revisa el mensaje que recibiste o busca tu pedido.",
        "map": "Mapa con la posición del repartidor y tu dirección de entrega",
        "driver": "Repartidor",
        "destination": "Dirección de entrega",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "feedback_title": "¿Qué tal fue tu entrega?",
        "rating": "Tu calificación",
        "stars": "{n} de 5 estrellas",
        "comment": "Comentario (opcional)",
        "send_rating": "Enviar calificación",
        "thanks": "¡Gracias! Calificaste {n}/5.",
        "change_rating": "Cambiar calificación",
        "start_return": "Iniciar una devolución",
        "updates": "Quiero recibir novedades de esta entrega",
        "by_email": "Por correo",
        "by_sms": "Por SMS",
        "saved": "Guardado",
        "failed": "No funcionó. Inténtalo de nuevo.",
    },
    "pt-BR": {
        "lookup_title": "Acompanhe seu pedido",
        "lookup_number": "Número do pedido",
        "lookup_contact": "E-mail usado no pedido",
        "lookup_submit": "Acompanhar",
        "lookup_failed": "Não encontramos um pedido com esses dados. Confira e tente de novo.",
        "lookup_limited": "Muitas tentativas. Aguarde alguns minutos e tente de novo.",
        "title": "Acompanhe seu pedido",
        "order": "Pedido {number}",
        "status": "Status do pedido",
        "eta_minutes": "Chega em {n} min",
        "eta_now": "Chegando agora",
        "delivered_at": "Entregue às {time}",
        "on_its_way": "Seu pedido está a caminho",
        "not_yet": "O entregador aparecerá aqui quando seu pedido sair",
        "last_seen": "Entregador visto há {ago}",
        "live": "Ao vivo",
        "connecting": "Conectando…",
        "reconnecting": "Reconectando…",
        "polling": "Atualização ao vivo bloqueada: atualizando a cada 15 s",
        "tracking_number": "Código de rastreio",
        "carrier": "Transportadora",
        "promised": "Prometido para",
        "address": "Endereço de entrega",
        "delayed": "Atrasado: nova estimativa",
        "off_route": "O entregador pegou outro caminho; estimativa ajustada",
        "arriving": "Seu entregador está perto",
        "another": "Acompanhar outro pedido",
        "invalid_title": "Este link de rastreio não funciona",
        "invalid_body": "O link pode estar incompleto ou expirado. Confira a mensagem recebida ou procure seu pedido.",
        "map": "Mapa com a posição do entregador e seu endereço de entrega",
        "driver": "Entregador",
        "destination": "Endereço de entrega",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "feedback_title": "Como foi sua entrega?",
        "rating": "Sua avaliação",
        "stars": "{n} de 5 estrelas",
        "comment": "Comentário (opcional)",
        "send_rating": "Enviar avaliação",
        "thanks": "Obrigado! Você deu nota {n}/5.",
        "change_rating": "Alterar avaliação",
        "start_return": "Solicitar devolução",
        "updates": "Quero receber atualizações desta entrega",
        "by_email": "Por e-mail",
        "by_sms": "Por SMS",
        "saved": "Salvo",
        "failed": "Não deu certo. Tente de novo.",
    },
}


def negotiate(query_lang: str | None, accept_language: str, default: str = "en") -> Lang:
    """`?lang=` if supported, else the best `Accept-Language` match, else the store's default."""
    for candidate in [query_lang or "", *_ranked(accept_language), default]:
        match = _match(candidate)
        if match:
            return match
    return "en"


def _ranked(header: str) -> list[str]:
    ranked = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag:
            ranked.append((q, tag.strip()))
    return [tag for q, tag in sorted(ranked, key=lambda x: -x[0]) if q > 0]


def _match(tag: str) -> Lang | None:
    tag = tag.lower()
    if tag in ("pt-br", "pt"):  # Portuguese speakers elsewhere read Brazilian Portuguese fine
        return "pt-BR"
    if tag.startswith("pt-"):
        return "pt-BR"
    base = tag.split("-")[0]
    if base == "es":
        return "es"
    if base == "en":
        return "en"
    return None
