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
        "invalid_body": "The link may be incomplete, or this delivery is no longer tracked (links end"
        " some time after delivery). Check the message you received, or look your order up.",
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
        "return_reason": "Why are you returning it?",
        "return_note": "Anything to add? (optional)",
        "return_photo": "A photo of it (optional)",
        "return_photo_failed": "Your return was sent, but its photo was not. The store will ask if it needs one.",
        "return_until": "You can ask for a return until {date}.",
        "return_is": "Your return: {status}",
        "return_title": "Return",
        "ret_requested": "asked for; the store will answer soon",
        "ret_approved": "approved; the store will tell you how to send it",
        "ret_rejected": "not accepted",
        "ret_pickup": "a driver will collect it",
        "ret_dropoff": "please bring it to the store",
        "ret_received": "received by the store",
        "ret_refunded": "refunded",
        "pickup_eta": "Collecting your return in {n} min",
        "pickup_on_way": "A driver is on the way to collect your return",
        "updates": "Send me updates about this delivery",
        "by_email": "By email",
        "by_sms": "By SMS",
        "saved": "Saved",
        "failed": "That did not work. Please try again.",
        "proof_title": "Proof of delivery",
        "proof_recipient": "Received by {name}",
        "proof_photo": "Photo taken by the driver at delivery",
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
        "invalid_body": "Puede estar incompleto, o esta entrega ya no se sigue (los enlaces vencen un"
        " tiempo después de la entrega). Revisa el mensaje que recibiste o busca tu pedido.",
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
        "return_reason": "¿Por qué lo devuelves?",
        "return_note": "¿Algo más? (opcional)",
        "return_photo": "Una foto (opcional)",
        "return_photo_failed": "Tu devolución fue enviada, pero la foto no. La tienda te contactará si la necesita.",
        "return_until": "Puedes pedir la devolución hasta el {date}.",
        "return_is": "Tu devolución: {status}",
        "return_title": "Devolución",
        "ret_requested": "solicitada; la tienda responderá pronto",
        "ret_approved": "aprobada; la tienda te dirá cómo enviarla",
        "ret_rejected": "no aceptada",
        "ret_pickup": "un repartidor la retirará",
        "ret_dropoff": "llévala a la tienda, por favor",
        "ret_received": "recibida por la tienda",
        "ret_refunded": "reembolsada",
        "pickup_eta": "Retiramos tu devolución en {n} min",
        "pickup_on_way": "Un repartidor va en camino a retirar tu devolución",
        "updates": "Quiero recibir novedades de esta entrega",
        "by_email": "Por correo",
        "by_sms": "Por SMS",
        "saved": "Guardado",
        "failed": "No funcionó. Inténtalo de nuevo.",
        "proof_title": "Comprobante de entrega",
        "proof_recipient": "Recibido por {name}",
        "proof_photo": "Foto tomada por el repartidor al entregar",
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
        "invalid_body": "O link pode estar incompleto, ou esta entrega não é mais rastreada (os links"
        " expiram algum tempo depois da entrega). Confira a mensagem recebida ou procure seu pedido.",
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
        "return_reason": "Por que você está devolvendo?",
        "return_note": "Algo a acrescentar? (opcional)",
        "return_photo": "Uma foto (opcional)",
        "return_photo_failed": "Sua devolução foi enviada, mas a foto não. A loja entrará em contato se precisar dela.",
        "return_until": "Você pode pedir a devolução até {date}.",
        "return_is": "Sua devolução: {status}",
        "return_title": "Devolução",
        "ret_requested": "solicitada; a loja responderá em breve",
        "ret_approved": "aprovada; a loja dirá como enviá-la",
        "ret_rejected": "não aceita",
        "ret_pickup": "um entregador vai buscá-la",
        "ret_dropoff": "leve-a até a loja, por favor",
        "ret_received": "recebida pela loja",
        "ret_refunded": "reembolsada",
        "pickup_eta": "Buscamos sua devolução em {n} min",
        "pickup_on_way": "Um entregador está a caminho para buscar sua devolução",
        "updates": "Quero receber atualizações desta entrega",
        "by_email": "Por e-mail",
        "by_sms": "Por SMS",
        "saved": "Salvo",
        "failed": "Não deu certo. Tente de novo.",
        "proof_title": "Comprovante de entrega",
        "proof_recipient": "Recebido por {name}",
        "proof_photo": "Foto tirada pelo entregador na entrega",
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
