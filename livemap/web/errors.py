"""Typed API errors and their JSON form: ``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.records import Conflict, NoContact, NotDelivered, NotFound, OutOfOrder
from livemap.domain.returns import ReturnRefused
from livemap.domain.stages import IllegalTransition, UnknownStage

_encode = msgspec.json.Encoder().encode


class ApiError(Exception):
    """An error a client should see, with its HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


#: No browser guesses a type other than the one sent (an answer echoing a store's text is never run as a page).
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
#: Headers of a customer's own data (proof and return photos): no shared cache keeps it, no browser guesses its type.
PRIVATE = {"Cache-Control": "private, no-store", **NOSNIFF}


def private_image(photo: tuple[bytes, str] | None, code: str, message: str) -> Response:
    """A customer's photo (proof of delivery, a return's) with the PRIVATE headers; 404 `code` without one."""
    if photo is None:
        raise ApiError(404, code, message)
    return Response(photo[0], media_type=photo[1], headers=PRIVATE)


def json_response(content: Any, status: int = 200) -> Response:
    return Response(_encode(content), status_code=status, media_type="application/json", headers=NOSNIFF)


def error_response(err: ApiError) -> Response:
    response = json_response(err.body(), err.status)
    if err.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    elif err.status in (429, 503):  # rate limits are per second; storage restarts within a second or two
        response.headers["Retry-After"] = "1"
    return response


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the same JSON shape as every other error."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(ApiError(exc.status_code, code, str(exc.detail)))


#: The domain's refusals, each answered by `domain_error` wherever it rises in an HTTP endpoint.
DOMAIN_ERRORS = (
    NotFound,
    Conflict,
    UnknownStage,
    IllegalTransition,
    NotDelivered,
    NoContact,
    OutOfOrder,
    ReturnRefused,
)


def domain_error(exc: Exception) -> ApiError:
    """What a refusal of the domain (an unknown id, a taken id, an illegal stage change...) answers.

    Mapped here once, for every endpoint: an endpoint lets them rise unless it means something else.
    """
    match exc:
        case NotFound():
            return not_found(str(exc))
        case Conflict():
            return ApiError(409, "conflict", str(exc))
        case UnknownStage():
            return ApiError(422, "unknown_stage", str(exc), known=exc.known)
        case IllegalTransition():
            return ApiError(409, "illegal_transition", str(exc), current=exc.current, allowed=exc.allowed)
        case NotDelivered():
            return ApiError(409, "not_delivered", str(exc), stage=exc.stage)
        case ReturnRefused():
            return ApiError(422 if exc.code == "unknown_reason" else 409, exc.code, str(exc), **exc.details)
        case OutOfOrder():
            return ApiError(422, "out_of_order", str(exc), previous=exc.previous)
        case NoContact():
            return ApiError(409, "no_email" if exc.channel == "email" else "no_phone", str(exc))
    raise TypeError(f"not a domain error: {exc!r}")


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    return error_response(domain_error(exc))


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, "unauthorized", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)
