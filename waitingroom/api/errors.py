"""Domain errors to HTTP, in one place: status code, `{"error", "message"}`, Retry-After.

Every error answer is JSON with `Cache-Control: no-store`; nothing returns a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from waitingroom.api.models import ErrorOut
from waitingroom.errors import (
    AdminKeyRequired,
    ConfigConflict,
    Gone,
    InvalidConfig,
    InvalidRequest,
    NotAuthenticated,
    RoomClosedToJoins,
    SlotNotFound,
    TooManyRequests,
    Unavailable,
    UnknownRoom,
    WaitingRoomError,
)
from waitingroom.store import StoreUnavailable

log = logging.getLogger("waitingroom.api")

NO_STORE = {"Cache-Control": "no-store"}
RETRY_AFTER_SECONDS = 5

STATUS: dict[type[WaitingRoomError], int] = {
    InvalidRequest: 400,
    NotAuthenticated: 401,
    UnknownRoom: 404,
    SlotNotFound: 404,
    RoomClosedToJoins: 409,
    ConfigConflict: 409,
    Gone: 410,
    InvalidConfig: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
# what every route may answer besides its own success, for the OpenAPI document
RESPONSES: dict[int | str, dict[str, Any]] = {
    **{s: {"model": ErrorOut} for s in (400, 401, 404, 409, 410, 413, 422, 503)},
    429: {
        "model": ErrorOut,
        "description": "Over a limit (the message says which): retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}},
    },
}


def status_of(exc: WaitingRoomError) -> int:
    """The status code of a domain error (its nearest mapped class)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message}, status, headers={**NO_STORE, **(headers or {})}
    )


def _headers(exc: WaitingRoomError, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if isinstance(exc, AdminKeyRequired):
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def _count(request: Request, name: str) -> None:
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.count(request.path_params.get("room", "-"), name)


def note_unavailable(request: Request, exc: StoreUnavailable) -> None:
    """Count and log a store outage answered with a 503 (JSON here, or a page for a browser)."""
    _count(request, "unavailable")
    log.warning("store unavailable", extra={"reason": str(exc)})


def install(app: FastAPI) -> None:
    """Register the app's exception handlers."""

    @app.exception_handler(WaitingRoomError)
    async def _domain(request: Request, exc: WaitingRoomError) -> JSONResponse:
        status = status_of(exc)
        _count(request, "errors_4xx" if status < 500 else "errors_5xx")
        return error_response(status, exc.code, exc.message, _headers(exc, status))

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        note_unavailable(request, exc)
        return error_response(
            503,
            "unavailable",
            "the waiting room's store is not answering; retry in a few seconds",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the body is not valid JSON")
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in errors
        ]
        return error_response(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal", "something went wrong on our side; retry shortly")
