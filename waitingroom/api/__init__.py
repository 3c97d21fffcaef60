"""The HTTP API: one FastAPI app, routers by audience, domain errors mapped in one place.

`create_app(service, settings)` is called by the composition root (`waitingroom.bootstrap`),
never at import: routes reach the service and settings through `app.state` (see `deps`).
"""

from __future__ import annotations

from fastapi import FastAPI

from waitingroom import page
from waitingroom.api import docs, errors, health, operators, public, queue, tokens
from waitingroom.api.body_limit import BodyLimit
from waitingroom.api.deps import AdminFailures
from waitingroom.api.errors import RESPONSES
from waitingroom.api.health import StoreHealth
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

# a room's settings with the largest page template (16,384 characters, each up to 6 bytes once
# JSON-escaped as \uXXXX), and the rest
ADMIN_MAX_BODY_BYTES = 128 * 1024

__all__ = ["create_app"]


def create_app(service: WaitingRoom | None, settings: ApiSettings | None) -> FastAPI:
    """The app around a service and its settings (None only for documentation: the OpenAPI
    document needs neither)."""
    app = FastAPI(
        title="waitingroom",
        version="0.1.0",
        description="A virtual waiting room: join, wait your turn, get an admission token.",
        responses=RESPONSES,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN: /docs is served by `docs`
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.admin_failures = AdminFailures()
    errors.install(app)
    docs.install(app)

    app.state.store_health = StoreHealth(service.ctx.store.ping) if service is not None else None

    # the page's own files come before /rooms/{room}
    routers = (health.router, tokens.router, page.router, public.router, queue.router)
    for router in (*routers, operators.router):
        # the routers' routes join the app's own list: FastAPI matches an included router as
        # one more level on every request, which every waiting poll would pay for
        app.router.routes.extend(router.routes)
    limit = settings.max_body_bytes if settings is not None else 16_384
    app.add_middleware(BodyLimit, limit=limit, admin_limit=ADMIN_MAX_BODY_BYTES)
    return app
