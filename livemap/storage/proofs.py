"""An order's photos: proof of delivery (who took the parcel, a photo of it) and the customer's photo of a
return, kept in Redis next to the order.

One hash per order (`Keys.order_proof`, the order's hash tag, so one Redis Cluster slot). Orders
are not expired, so neither is their proof; whatever later expires or deletes an order must take
this key with it. A photo is at most `MAX_PHOTO_BYTES`; its type comes from its first bytes, never
from what the client claimed, so the customer's browser is only ever handed a real image.
"""

from __future__ import annotations

from livemap.domain.clock import now_ms
from livemap.domain.records import text
from livemap.domain.responses import Proof
from livemap.storage.repository import Repository

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_PHOTO_BYTES = 2 * 1024 * 1024


def sniff(data: bytes) -> str | None:
    """The image type the bytes start like (JPEG, PNG, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def set_recipient(store: Repository, tid: str, recipient: str) -> None:
    await store.redis.hset(store.keys.order_proof(tid), mapping={"recipient": recipient, "at": now_ms()})


async def set_photo(store: Repository, tid: str, data: bytes, media_type: str) -> None:
    """Keep the photo (a new one replaces it)."""
    await store.redis.hset(store.keys.order_proof(tid), mapping={"photo": data, "type": media_type, "at": now_ms()})


async def proof(store: Repository, tid: str) -> Proof | None:
    """What proof order `tid` has, without the photo's bytes; None when there is none."""
    raw = await store.redis.hmget(store.keys.order_proof(tid), ["recipient", "type", "at"])
    recipient, media_type, at = raw
    if at is None:
        return None
    return Proof(recipient=text(recipient) if recipient else None, photo=media_type is not None, at=int(at))


async def photo(store: Repository, tid: str) -> tuple[bytes, str] | None:
    """The delivery photo and its media type, or None."""
    return await _image(store, tid, "photo", "type")


async def _image(store: Repository, tid: str, field: str, type_field: str) -> tuple[bytes, str] | None:
    data, media_type = await store.redis.hmget(store.keys.order_proof(tid), [field, type_field])
    if data is None or media_type is None:
        return None
    return data if isinstance(data, bytes) else data.encode(), text(media_type)


async def set_return_photo(store: Repository, tid: str, data: bytes, media_type: str) -> None:
    """Keep the customer's photo of the return (a new one replaces it); the order shows that it has one."""
    async with store.redis.pipeline(transaction=True) as pipe:  # one slot: the order's hash tag
        pipe.hset(store.keys.order_proof(tid), mapping={"return_photo": data, "return_type": media_type})
        pipe.hset(store.keys.order(tid), "return_photo", "1")
        await pipe.execute()


async def return_photo(store: Repository, tid: str) -> tuple[bytes, str] | None:
    """The return's photo and its media type, or None."""
    return await _image(store, tid, "return_photo", "return_type")
