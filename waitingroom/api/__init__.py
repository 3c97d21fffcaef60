"""The HTTP API: one FastAPI app, routers by audience, domain errors mapped in one place.

`create_app(service, settings)` is called by the composition root (`waitingroom.bootstrap`),
never at import: routes reach the service and settings through `app.state` (see `deps`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from waitingroom import page
from waitingroom.api import errors, operators, queue, tokens
from waitingroom.api.body_limit import BodyLimit
from waitingroom.api.deps import AdminFailures
from waitingroom.api.models import ErrorOut, HealthOut
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

__all__ = ["create_app"]

RESPONSES: dict[int | str, dict[str, Any]] = {
    **{s: {"model": ErrorOut} for s in (400, 401, 404, 409, 410, 413, 422, 503)},
    429: {
        "model": ErrorOut,
        "description": "Over a limit (the message says which): retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}},
    },
}


def create_app(service: WaitingRoom | None, settings: ApiSettings | None) -> FastAPI:
    """The app around a service and its settings (None only for documentation: the OpenAPI
    document needs neither)."""
    app = FastAPI(
        title="waitingroom",
        version="0.1.0",
        description="A virtual waiting room: join, wait your turn, get an admission token.",
        responses=RESPONSES,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.admin_failures = AdminFailures()
    errors.install(app)

    @app.get("/health", tags=["ops"], response_model=HealthOut)
    def health() -> HealthOut:
        return HealthOut()

    app.include_router(tokens.router)
    app.include_router(page.router)  # the page's own files, before /rooms/{room}
    app.include_router(queue.router)
    app.include_router(operators.router)
    limit = settings.max_body_bytes if settings is not None else 16_384
    app.add_middleware(BodyLimit, limit=limit)
    return app
