"""Domain errors and their RFC 9457 problem+json rendering.

Services raise `DossierError` subclasses; one handler turns every error,
FastAPI's own included, into a problem document carrying a stable `code` and
the request id. Nothing internal (stack traces, SQL) ever reaches the client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.kit.request_context import current_request_id

logger = logging.getLogger("dossier.errors")

PROBLEM_JSON = "application/problem+json"


class DossierError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class MalformedRequest(DossierError):
    status, code = 400, "malformed_request"


class Unauthenticated(DossierError):
    status, code = 401, "unauthenticated"

    def __init__(self, detail: str = "Not authenticated", **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="dossier"'}, **extra)


class PermissionDenied(DossierError):
    status, code = 403, "permission_denied"


class NotFound(DossierError):
    status, code = 404, "not_found"


class Conflict(DossierError):
    status, code = 409, "conflict"


class PreconditionFailed(DossierError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(DossierError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(DossierError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(DossierError):
    status, code = 422, "validation_error"


class RateLimited(DossierError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int, detail: str = "Too many requests") -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(DossierError):
    status, code = 503, "service_unavailable"


class ProblemDetail(BaseModel):
    """The error body of every 4xx/5xx answer (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    request_id: str | None = None


class ValidationProblemDetail(ProblemDetail):
    errors: list[dict[str, Any]] = []


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_HTTP_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """`loc`, `msg` and `type` only: never echo the (possibly secret) input."""
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]


def _is_unparseable_body(errors: list[dict[str, Any]]) -> bool:
    return any(error["type"] == "json_invalid" for error in errors)


def error_response(exc: DossierError) -> JSONResponse:
    return problem_response(
        exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers, **exc.extra
    )


async def _dossier_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DossierError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc)
    if _is_unparseable_body(errors):
        return problem_response(400, "malformed_request", "The request body is not valid JSON")
    return problem_response(422, "validation_error", "The request did not validate", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="dossier"')
    return problem_response(exc.status_code, code, detail, headers=headers)


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL or Redis unreachable: 503, and the pool reconnects by itself
    once the service is back."""
    logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
    return problem_response(
        503,
        "service_unavailable",
        "A backing service is unavailable; try again shortly",
        headers={"Retry-After": "5"},
    )


# PostgreSQL's answers to a NUL character in text (`invalid byte sequence
# for encoding "UTF8": 0x00`) and in JSONB (`unsupported Unicode escape
# sequence`): text PostgreSQL cannot store, whichever field carried it.
_NUL_SQLSTATES = frozenset({"22021", "22P05"})
NUL_MESSAGE = "Text may not contain NUL (\\u0000) characters"


def nul_error(loc: list[str]) -> ValidationFailed:
    return ValidationFailed(
        NUL_MESSAGE, errors=[{"loc": loc, "msg": NUL_MESSAGE, "type": "string_nul"}]
    )


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    original = exc.orig
    cause = getattr(original, "__cause__", None)
    state = getattr(original, "sqlstate", None) or getattr(cause, "sqlstate", None)
    return str(state) if state else None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A connection that died under the request (asyncpg reports most of
    those as a generic error, which SQLAlchemy recognises as a disconnect and
    marks `connection_invalidated`): 503 like any outage. A NUL character in
    any text field of the body is a 422 (the whole API's one check for it:
    every body field that is stored reaches PostgreSQL). Other database errors
    are bugs: re-raised, answered as a 500."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return await _dependency_down(request, exc)
    if isinstance(exc, sa_exc.DBAPIError) and _sqlstate(exc) in _NUL_SQLSTATES:
        return error_response(nul_error(["body"]))
    raise exc


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A constraint the service did not pre-check (a race): a conflict, not a 500."""
    logger.info("integrity conflict", extra={"error": type(exc).__name__})
    return problem_response(409, "conflict", "The change conflicts with the current state")


_DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def install_error_handlers(app: FastAPI) -> None:
    """Unhandled exceptions are answered by `RequestContextMiddleware`."""
    for error in _DEPENDENCY_ERRORS:
        app.add_exception_handler(error, _dependency_down)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    app.add_exception_handler(DossierError, _dossier_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _problem_response_doc(status: int, model: type[ProblemDetail]) -> dict[str, Any]:
    return {"model": model, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _problem_response_doc(status, ProblemDetail)
    for status in (400, 401, 403, 404, 409, 429)
}
ERROR_RESPONSES[422] = _problem_response_doc(422, ValidationProblemDetail)
