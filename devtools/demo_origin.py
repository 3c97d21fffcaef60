"""A tiny origin behind origin_guard, for the local stack: what a protected site looks like.

`make dev` serves `create_app(...)` next to the API; a browser that comes through the waiting
room sees "You're in", anyone else is sent back to the queue (or gets 401 JSON on /api).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from origin_guard.health import RoomHealth
from origin_guard.middleware import AdmissionGuardMiddleware
from origin_guard.verify import AdmissionClaims, TokenVerifier, fetch_jwks

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>You're in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;
padding:0 1rem}} code{{font-size:.9em}}</style></head>
<body>
<h1>You're in</h1>
<p>Room <strong>{room}</strong>, ticket <code>{ticket}</code>.</p>
<p>Your admission is valid until <time>{expires}</time> (UTC).</p>
</body>
</html>
"""

_OPEN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>You're in</title></head>
<body>
<h1>You're in</h1>
<p>The waiting room does not answer, so this site lets visitors in without a token for now.</p>
</body>
</html>
"""


def _claims(request: Request) -> AdmissionClaims | None:
    """The visitor's admission; None when the guard failed open (the room is down)."""
    claims: AdmissionClaims | None = request.state.admission
    return claims


def create_app(
    *,
    jwks_url: str,
    issuer: str,
    rooms: list[str],
    waiting_room_url: str,
    fetch: Callable[[str], Mapping[str, Any]] = fetch_jwks,
    clock: Callable[[], float] = time.time,
    room_health: RoomHealth | None = None,
) -> FastAPI:
    """The demo origin. `waiting_room_url` may contain `{room}` and `{return_to}`;
    `room_health` is the guard's policy while the room is down."""
    verifier = TokenVerifier(
        audience=rooms, issuer=issuer, jwks_url=jwks_url, fetch=fetch, clock=clock
    )
    app = FastAPI(title="waitingroom demo origin", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        AdmissionGuardMiddleware,
        verifier=verifier,
        waiting_room_url=waiting_room_url,
        allow_paths=["/health"],
        room_health=room_health,
    )

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        claims = _claims(request)
        if claims is None:
            return HTMLResponse(_OPEN_PAGE)
        expires = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(claims.expires_at))
        return HTMLResponse(
            _PAGE.format(
                room=html.escape(claims.room),
                ticket=html.escape(claims.ticket),
                expires=expires,
            )
        )

    @app.get("/api/hello")
    def hello(request: Request) -> dict[str, Any]:
        claims = _claims(request)
        if claims is None:
            return {"message": "hello, visitor (the waiting room is down)", "sub": None}
        return {
            "message": f"hello, ticket {claims.ticket}",
            "sub": claims.ticket,
            "room": claims.room,
            "expires_at": claims.expires_at,
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
