"""HTTP routes: parse, call the service, shape the answer. Errors are mapped in one place."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import boto3
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waitingroom import page
from waitingroom.observability import MetricsBuffer, emit_emf, emit_nothing
from waitingroom.service import Admitted, ApiError, Waiting, WaitingRoom
from waitingroom.settings import ApiSettings, get_api_settings
from waitingroom.store import Store, StoreUnavailable, make_client
from waitingroom.tokens import BINDING_COOKIE, MAX_CHALLENGE_BITS

log = logging.getLogger("waitingroom.api")

TICKET_COOKIE = "waitingroom_ticket"
TOKEN_COOKIE = "waitingroom_token"
RETRY_AFTER_SECONDS = "5"
_IDEM_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NO_STORE = {"Cache-Control": "no-store"}
REVOKED_MAX_AGE = 5


# -- wiring: the one place real dependencies are built ---------------------------------------


def _ticket_secrets(settings: ApiSettings) -> list[bytes]:
    if settings.ticket_secret is not None:
        raw = settings.ticket_secret.get_secret_value()
    else:
        assert settings.ticket_secret_id is not None  # the settings validator ensures one
        client = boto3.client("secretsmanager", region_name=settings.region)
        raw = client.get_secret_value(SecretId=settings.ticket_secret_id)["SecretString"]
    return [s.strip().encode() for s in raw.split(",") if s.strip()]


@lru_cache(maxsize=1)
def build_room_service() -> WaitingRoom:
    """Built once per container, on the first request (never at import)."""
    settings = get_api_settings()
    return WaitingRoom(
        Store(make_client(settings), settings.table),
        _ticket_secrets(settings),
        issuer=settings.issuer,
        state_ttl=settings.state_cache_seconds,
        config_ttl=settings.config_cache_seconds,
        room_defaults=settings.room_defaults(),
        metrics=MetricsBuffer("api", emit_emf if settings.metrics_enabled() else emit_nothing),
        cookie_secure=settings.cookie_secure,
        binding_key=(
            settings.binding_key.get_secret_value().encode() if settings.binding_key else None
        ),
        admin_max_failures_per_minute=settings.admin_max_failures_per_minute,
        revocation_list=settings.revocation_list,
    )


async def get_room_service() -> WaitingRoom:
    # async, so FastAPI resolves it on the event loop instead of a worker-thread hop per request
    return build_room_service()


ServiceDep = Annotated[WaitingRoom, Depends(get_room_service)]
SettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
ROOM_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
RoomPath = Annotated[
    str,
    Path(
        max_length=63,
        description="room id: lowercase letters, digits, dashes",
        json_schema_extra={"pattern": ROOM_PATTERN},  # documented; enforced as a clear 400
    ),
]


def _settings(request: Request) -> ApiSettings:
    """The settings, for the few requests that need them (honours test overrides)."""
    factory = request.app.dependency_overrides.get(get_api_settings, get_api_settings)
    settings: ApiSettings = factory()
    return settings


def source_ip(request: Request) -> str | None:
    """The caller's address: API Gateway's (HTTP API v2 or REST v1, through Mangum's
    `scope["aws.event"]`), else the ASGI client's (locally)."""
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        ctx = event.get("requestContext") or {}
        ip = (ctx.get("http") or {}).get("sourceIp") or (ctx.get("identity") or {}).get("sourceIp")
        if isinstance(ip, str) and ip:
            return ip
    return request.client.host if request.client else None


def client_address(request: Request, settings: ApiSettings) -> str | None:
    """The client's IP address, from X-Forwarded-For when proxies we trust sit in front."""
    if settings.client_key == "forwarded_for":
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= settings.trusted_proxies:
            return hops[-settings.trusted_proxies]
    return source_ip(request)


def client_key(request: Request, settings: ApiSettings) -> tuple[str | None, str | None]:
    """(who the client is, a new client cookie to set) for the per-client join limits."""
    if settings.client_key != "cookie":
        ip = client_address(request, settings)
        return (f"ip:{ip}" if ip else None), None
    value = request.cookies.get(settings.client_cookie)
    if value and len(value) <= 64:
        return f"cookie:{value}", None
    fresh = secrets.token_urlsafe(18)
    return f"cookie:{fresh}", fresh


def require_admin(
    request: Request,
    settings: SettingsDep,
    svc: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """Who is asking, for the audit trail; 401 for anyone else, whether or not the room exists.

    Locally: a bearer admin key, compared in constant time. In AWS: API Gateway's IAM (SigV4)
    authorisation, checked again here from the identity it passes on."""
    if settings.admin_auth == "iam":
        arn = _iam_caller(request.scope.get("aws.event"))
        if arn:
            return arn
        raise ApiError(401, "unauthorized", "admin routes need IAM (SigV4) authorisation")
    expected = settings.admin_key.get_secret_value() if settings.admin_key else ""
    given = _bearer(authorization) or ""
    who = client_address(request, settings) or "-"
    wait = svc.admin_refused(who)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_failures",
            f"more than {svc.admin_max_failures_per_minute} failed admin key checks from this "
            f"client in a minute; retry in {wait} s",
            {"Retry-After": str(wait)},
        )
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        svc.admin_failed(who)
        raise ApiError(
            401,
            "unauthorized",
            "admin routes need 'Authorization: Bearer <admin key>' (WAITINGROOM_ADMIN_KEY)",
            {"WWW-Authenticate": "Bearer"},
        )
    return "admin-key:" + hashlib.sha256(expected.encode()).hexdigest()[:8]


def _iam_caller(event: Any) -> str | None:
    """The caller's ARN from an IAM-authorised API Gateway event (HTTP API v2 or REST v1)."""
    if not isinstance(event, dict):
        return None
    ctx = event.get("requestContext") or {}
    iam = ((ctx.get("authorizer") or {}).get("iam")) or {}
    arn = iam.get("userArn") or (ctx.get("identity") or {}).get("userArn")
    return str(arn) if arn else None


AdminDep = Annotated[str, Depends(require_admin)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# -- models ---------------------------------------------------------------------------------


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="allow")


class WaitingOut(BaseModel):
    state: Literal["waiting"] = "waiting"
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    position_is_exact: bool
    waiting: int
    opens_at: float | None = None
    state_version: int = Field(
        default=0, description="send it back as ?v= on the next poll: positions never go up"
    )


class JoinOut(BaseModel):
    ticket: str
    number: int
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    position_is_exact: bool
    opens_at: float | None = None


class AdmittedOut(BaseModel):
    state: Literal["admitted"] = "admitted"
    token: str
    expires_at: int
    origin_url: str


class ErrorOut(BaseModel):
    error: str
    message: str


class RoomConfigIn(BaseModel):
    """Create (max_active required) or update a room; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    max_active: int | None = Field(default=None, strict=True, ge=1, le=10_000_000)
    max_admits_per_minute: int | None = Field(default=None, strict=True, ge=0, le=100_000_000)
    # bounded so the drainer's live batches (one per 30 s of admissions, kept until their
    # tokens expire) stay a small item and a bounded number of ledger reads per tick
    session_seconds: int | None = Field(default=None, strict=True, ge=10, le=6 * 3600)
    pickup_seconds: int | None = Field(default=None, strict=True, ge=5, le=3600)
    shards: int | None = Field(default=None, strict=True, ge=1, le=256)
    slot_seconds: int | None = Field(default=None, strict=True, ge=1, le=60)
    status: Literal["scheduled", "open", "paused", "closed"] | None = None
    origin_url: HttpUrl | None = None
    opens_at: AwareDatetime | float | None = Field(
        default=None,
        description="when a scheduled room opens: ISO 8601 with a time zone, or epoch seconds; "
        "who joins before it is drawn into a random order at opening",
    )
    max_tickets_per_client: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="tickets one client may take in this room (0: no limit)",
    )
    max_joins_per_minute_per_client: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="joins one client may make per minute (0: no limit)",
    )
    challenge_bits: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=MAX_CHALLENGE_BITS,
        description="proof of work at join: leading zero bits of sha256 (0: none)",
    )
    bind_tokens: bool | None = Field(
        default=None,
        strict=True,
        description="bind admission tokens to the browser that picked them up (a cookie the "
        "origin guard checks); needs WAITINGROOM_BINDING_KEY",
    )


class RoomOut(BaseModel):
    room: str
    max_active: int
    max_admits_per_minute: int
    session_seconds: int
    pickup_seconds: int
    shards: int
    slot_seconds: int
    status: str
    origin_url: str
    opens_at: float | None
    version: int
    max_tickets_per_client: int = 0
    max_joins_per_minute_per_client: int = 0
    challenge_bits: int = 0
    bind_tokens: bool = False


class ChallengeOut(BaseModel):
    challenge: str
    difficulty_bits: int
    expires_at: int
    algorithm: Literal["sha256-leading-zero-bits"] = "sha256-leading-zero-bits"
    how: str = (
        "find a decimal counter such that sha256(challenge + ':' + counter) starts with "
        "difficulty_bits zero bits; join with headers X-Challenge: <challenge> and "
        "X-Challenge-Solution: <counter>"
    )


class RevokedOut(BaseModel):
    room: str
    revoked: list[str] = Field(description="jti's of tokens ended before their exp")
    max_age_seconds: int


# -- body limit -----------------------------------------------------------------------------


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(self.limit)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # an HTTPException passes through FastAPI's body parsing unchanged
                raise StarletteHTTPException(
                    413, f"request bodies are limited to {self.limit} bytes"
                )
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, "body_too_large", f"request bodies are limited to {limit} bytes")


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message}, status, headers={**NO_STORE, **(headers or {})}
    )


# -- app ------------------------------------------------------------------------------------


def _json(model: BaseModel, status: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(), status, headers=dict(NO_STORE))


def _cookie(
    response: Response, name: str, value: str, max_age: int, path: str, secure: bool
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, samesite="lax", secure=secure
    )


def _status_route(status: str) -> Any:
    def change(room: RoomPath, actor: AdminDep, svc: ServiceDep) -> dict[str, Any]:
        return {"room": room, "status": svc.set_status(room, status, actor).status}

    return change


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (400, 401, 404, 409, 410, 413, 422, 503)
}
TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "Over a limit (the message says which): retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}},
    }
}


def create_app(max_body_bytes: int = 16_384) -> FastAPI:
    app = FastAPI(
        title="waitingroom",
        version="0.1.0",
        description="A virtual waiting room: join, wait your turn, get an admission token.",
        responses={**ERRORS, **TOO_MANY},
    )

    def count_error(request: Request, name: str) -> None:
        factory = request.app.dependency_overrides.get(get_room_service, build_room_service)
        try:
            service: WaitingRoom = factory()
        except Exception:  # not configured: nothing to count with
            return
        service.metrics.count(request.path_params.get("room", "-"), name)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        count_error(request, "errors_4xx" if exc.status < 500 else "errors_5xx")
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        count_error(request, "unavailable")
        log.warning("store unavailable", extra={"reason": str(exc)})
        return _error(
            503,
            "unavailable",
            "the waiting room's store is not answering; retry in a few seconds",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the body is not valid JSON")
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in errors
        ]
        return _error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "error"
        )
        return _error(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal", "something went wrong on our side; retry shortly")

    app.include_router(page.router)  # the page's own files, before /rooms/{room}

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/.well-known/jwks.json", tags=["tokens"])
    def jwks(svc: ServiceDep, response: Response) -> dict[str, Any]:
        keys = svc.jwks()
        if not keys["keys"]:
            raise ApiError(
                503,
                "keys_not_published",
                "no signing keys yet: the drainer publishes them when it first runs",
                {"Retry-After": RETRY_AFTER_SECONDS},
            )
        response.headers["Cache-Control"] = "public, max-age=300"
        return keys

    @app.get(
        "/rooms/{room}",
        tags=["queue"],
        responses={
            200: {
                "description": "The waiting page",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
    )
    def waiting_page(room: RoomPath, request: Request, svc: ServiceDep) -> Response:
        svc.config(room)  # 400/404 for a bad or unknown room
        return page.waiting_page_response(room, request.headers.get("if-none-match"))

    @app.post(
        "/rooms/{room}/join",
        status_code=201,
        response_model=JoinOut,
        tags=["queue"],
        responses=TOO_MANY,
    )
    def join(
        room: RoomPath,
        request: Request,
        svc: ServiceDep,
        body: JoinIn | None = None,
        idempotency_key: Annotated[
            str | None, Header(json_schema_extra={"pattern": _IDEM_RE.pattern})
        ] = None,
        x_challenge: Annotated[
            str | None,
            Header(
                description="a challenge from GET /rooms/{room}/challenge (rooms with a "
                "proof of work)"
            ),
        ] = None,
        x_challenge_solution: Annotated[
            str | None, Header(description="the counter that solves X-Challenge")
        ] = None,
    ) -> Response:
        if idempotency_key is not None and not _IDEM_RE.match(idempotency_key):
            raise ApiError(
                400,
                "bad_idempotency_key",
                "Idempotency-Key must be 1-128 letters, digits or . _ : -",
            )
        cfg = svc.config(room)
        client: str | None = None
        cookies: list[tuple[str, str, str]] = []
        if cfg.max_tickets_per_client > 0 or cfg.max_joins_per_minute_per_client > 0:
            settings = _settings(request)
            client, new_cookie = client_key(request, settings)
            if new_cookie is not None:
                cookies.append((settings.client_cookie, new_cookie, f"/rooms/{room}"))
        joined = svc.join(
            room,
            idempotency_key,
            client=client,
            challenge=x_challenge,
            solution=x_challenge_solution,
        )
        s = joined.status
        # the hot routes answer with a JSONResponse (the model documents it; nothing to
        # re-validate), which saves FastAPI's second pass over the result
        out = _json(
            JoinOut(
                ticket=joined.ticket,
                number=joined.number,
                position=s.position,
                eta_seconds=s.eta_seconds,
                poll_after_seconds=s.poll_after_seconds,
                position_is_exact=s.exact,
                opens_at=s.opens_at,
            ),
            201,
        )
        for name, value, path in [*cookies, (TICKET_COOKIE, joined.ticket, f"/rooms/{room}")]:
            _cookie(out, name, value, svc.keep_seconds(), path, svc.cookie_secure)
        return out

    @app.get(
        "/rooms/{room}/status",
        response_model=WaitingOut | AdmittedOut,
        tags=["queue"],
    )
    def status(
        room: RoomPath,
        request: Request,
        svc: ServiceDep,
        authorization: Annotated[str | None, Header()] = None,
        v: Annotated[
            int, Query(ge=0, le=2**53, description="state_version of the previous answer")
        ] = 0,
    ) -> Response:
        text = _bearer(authorization) or request.cookies.get(TICKET_COOKIE)
        result = svc.poll(room, text, min_version=v)
        if isinstance(result, Waiting):
            return _json(
                WaitingOut(
                    position=result.position,
                    eta_seconds=result.eta_seconds,
                    poll_after_seconds=result.poll_after_seconds,
                    position_is_exact=result.exact,
                    waiting=result.waiting,
                    opens_at=result.opens_at,
                    state_version=result.state_version,
                )
            )
        assert isinstance(result, Admitted)
        out = _json(
            AdmittedOut(
                token=result.token, expires_at=result.expires_at, origin_url=result.origin_url
            )
        )
        max_age = max(1, result.expires_at - int(svc.clock()))
        _cookie(out, TOKEN_COOKIE, result.token, max_age, "/", svc.cookie_secure)
        if result.binding is not None:
            _cookie(out, BINDING_COOKIE, result.binding, max_age, "/", svc.cookie_secure)
        return out

    @app.get("/rooms/{room}/challenge", response_model=ChallengeOut, tags=["queue"])
    def challenge(room: RoomPath, svc: ServiceDep, response: Response) -> ChallengeOut:
        """A proof-of-work challenge for joining (rooms with challenge_bits > 0)."""
        ch = svc.challenge(room)
        response.headers.update(NO_STORE)
        return ChallengeOut(
            challenge=svc.sign_challenge(ch), difficulty_bits=ch.bits, expires_at=ch.expires_at
        )

    @app.get("/rooms/{room}/revoked", response_model=RevokedOut, tags=["tokens"])
    def revoked(room: RoomPath, svc: ServiceDep, response: Response) -> RevokedOut:
        """jti's of the room's tokens ended before their exp (origin guards cache this)."""
        jtis = svc.revoked(room)
        response.headers["Cache-Control"] = f"public, max-age={REVOKED_MAX_AGE}"
        return RevokedOut(room=room, revoked=jtis, max_age_seconds=REVOKED_MAX_AGE)

    @app.post("/rooms/{room}/complete", status_code=204, tags=["queue"])
    def complete(
        room: RoomPath,
        request: Request,
        svc: ServiceDep,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        svc.complete(room, _bearer(authorization) or request.cookies.get(TOKEN_COOKIE))
        return Response(status_code=204)

    @app.put(
        "/admin/rooms/{room}",
        response_model=RoomOut,
        tags=["operators"],
        responses={201: {"model": RoomOut, "description": "Room created"}},
    )
    def put_room(
        room: RoomPath, body: RoomConfigIn, actor: AdminDep, svc: ServiceDep, response: Response
    ) -> RoomOut:
        changes = body.model_dump(exclude_none=True)
        if "origin_url" in changes:
            changes["origin_url"] = str(changes["origin_url"])
        if isinstance(changes.get("opens_at"), datetime):
            changes["opens_at"] = changes["opens_at"].timestamp()
        cfg, created = svc.put_room(room, changes, actor=actor)
        response.status_code = 201 if created else 200
        return RoomOut(
            room=cfg.room,
            max_active=cfg.max_active,
            max_admits_per_minute=cfg.max_admits_per_minute,
            session_seconds=cfg.session_seconds,
            pickup_seconds=cfg.pickup_seconds,
            shards=cfg.shards,
            slot_seconds=cfg.slot_seconds,
            status=cfg.status,
            origin_url=cfg.origin_url,
            opens_at=cfg.opens_at,
            version=cfg.version,
            max_tickets_per_client=cfg.max_tickets_per_client,
            max_joins_per_minute_per_client=cfg.max_joins_per_minute_per_client,
            challenge_bits=cfg.challenge_bits,
            bind_tokens=cfg.bind_tokens,
        )

    @app.get("/admin/rooms/{room}/stats", tags=["operators"])
    def stats(room: RoomPath, _: AdminDep, svc: ServiceDep) -> dict[str, Any]:
        return svc.stats(room)

    @app.get("/admin/rooms/{room}/audit", tags=["operators"])
    def audit(
        room: RoomPath,
        _: AdminDep,
        svc: ServiceDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return {"room": room, "entries": svc.audit(room, limit)}

    @app.post("/admin/rooms/{room}/drain", status_code=202, tags=["operators"])
    def drain(room: RoomPath, actor: AdminDep, svc: ServiceDep) -> dict[str, Any]:
        """Ask the drainer to tick this room now (it does within a second)."""
        svc.request_drain(room, actor)
        return {"room": room, "drain": "requested"}

    for action, new_status in (("pause", "paused"), ("resume", "open"), ("close", "closed")):
        app.add_api_route(
            f"/admin/rooms/{{room}}/{action}",
            _status_route(new_status),
            methods=["POST"],
            tags=["operators"],
            name=action,
            summary=f"{action.capitalize()} a room",
        )

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app
