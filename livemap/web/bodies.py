"""Request bodies: read with a size cap while they arrive, then decoded and validated before any write.

Every endpoint that takes a body reads it through here, so no caller can make the server buffer
more than the endpoint's limit (a declared Content-Length over it is refused before one byte is
read), a body cut short (the client left, or was too slow) ends the request quietly, and no JSON
can crash the decoder: nesting deeper than msgspec's recursion guard (Python's recursion limit,
~1,000 levels) is a 400, not a RecursionError.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qs

import msgspec
from starlette.requests import ClientDisconnect, Request

from livemap.domain.messages import describe
from livemap.storage import proofs
from livemap.web.errors import ApiError

T = TypeVar("T")

#: The REST API's bodies: an order with a 5,000-point route is ~150 KB.
JSON_LIMIT = 1024 * 1024
#: Sign-in and lookup forms: a few short fields.
FORM_LIMIT = 16 * 1024


async def read(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes: 413 `body_too_large` past it, before anything is parsed."""
    too_large = ApiError(413, "body_too_large", f"request body over {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left mid-body, or the server cut it (too slow: livemap.web.httpprotocol already sent
        # it a 408). Nobody reads this answer; it keeps a departed client out of the failsafe's
        # "internal error" log, which counts defects.
        raise ApiError(408, "body_incomplete", "the request body did not arrive whole") from None
    return b"".join(chunks)


async def image(request: Request, media_type: str) -> bytes:
    """The body, at most MAX_PHOTO_BYTES (413 past it), if its first bytes are a `media_type` image (422 else)."""
    data = await read(request, proofs.MAX_PHOTO_BYTES)
    if proofs.sniff(data) != media_type:
        raise ApiError(422, "invalid_image", f"the body is not a {media_type} image")
    return data


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower case."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def decode(raw: bytes, kind: type[T]) -> T:
    """Decode and validate JSON: 400 `invalid_json` when it is not JSON (or nests too deeply), 422 naming the field."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except RecursionError:
        # Only a field typed Any (the settings patch) can nest this deep; a typed field fails first.
        raise ApiError(400, "invalid_json", "JSON nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_field", describe(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", describe(exc)) from None


async def json(request: Request, kind: type[T], limit: int = JSON_LIMIT) -> T:
    """The JSON body as `kind`, read with `limit` and validated (400/413/422)."""
    return decode(await read(request, limit), kind)


async def form(request: Request, limit: int = FORM_LIMIT) -> dict[str, str]:
    """A urlencoded form's fields (first value of each, stripped), read with `limit`."""
    fields = parse_qs((await read(request, limit)).decode(errors="replace"))
    return {name: values[0].strip() for name, values in fields.items()}
