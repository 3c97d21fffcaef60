"""What routes depend on: the service and settings the app was built with, who the caller is,
and the admin check. `Annotated` aliases keep route signatures short."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request

from waitingroom.errors import AdminKeyRequired, NotAuthenticated, TooManyRequests
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

ROOM_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
RoomPath = Annotated[
    str,
    Path(
        max_length=63,
        description="room id: lowercase letters, digits, dashes",
        json_schema_extra={"pattern": ROOM_PATTERN},  # documented; enforced as a clear 400
    ),
]


async def get_service(request: Request) -> WaitingRoom:
    # async, so FastAPI resolves it on the event loop instead of a worker-thread hop per request
    service: WaitingRoom = request.app.state.service
    return service


def settings_of(request: Request) -> ApiSettings:
    """The settings, read directly by the hot routes (a dependency costs each poll a little)."""
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_settings(request: Request) -> ApiSettings:
    return settings_of(request)


ServiceDep = Annotated[WaitingRoom, Depends(get_service)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# -- who the caller is --------------------------------------------------------------------------


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
    if settings.client_key == "cloudfront_viewer" and via_function_url(
        request.scope.get("aws.event")
    ):
        # only CloudFront can call the function URL (origin access control): the header is its
        viewer = request.headers.get("cloudfront-viewer-address", "")
        host = viewer.rpartition(":")[0].strip("[]")  # "203.0.113.7:4711", "[2001:db8::1]:4711"
        if host:
            return host
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


# -- operators ----------------------------------------------------------------------------------


class AdminFailures:
    """Failed admin key checks per client in the last minute: in memory, per container. An
    attacker spread over many containers gets up to N tries per minute from each, which still
    stops guessing."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def refused(self, client: str, limit: int, now: float) -> int | None:
        """Seconds to wait when this client failed `limit` times in the last minute."""
        if limit <= 0:
            return None
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if t > now - 60]
        if len(recent) < limit:
            return None
        return max(1, math.ceil(recent[0] + 60 - now))

    def failed(self, client: str, limit: int, now: float) -> None:
        if limit <= 0:
            return
        with self._lock:
            recent = [t for t in self._seen.pop(client, []) if t > now - 60]
            self._seen[client] = [*recent, now][-limit:]
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)


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
        arn = iam_caller(request.scope.get("aws.event"))
        if arn:
            return arn
        raise NotAuthenticated("admin routes need IAM (SigV4) authorisation", code="unauthorized")
    expected = settings.admin_key.get_secret_value() if settings.admin_key else ""
    given = bearer(authorization) or ""
    who = client_address(request, settings) or "-"
    failures: AdminFailures = request.app.state.admin_failures
    limit = settings.admin_max_failures_per_minute
    now = svc.clock()
    wait = failures.refused(who, limit, now)
    if wait is not None:
        raise TooManyRequests(
            f"more than {limit} failed admin key checks from this client in a minute; "
            f"retry in {wait} s",
            code="too_many_failures",
            retry_after=wait,
        )
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        failures.failed(who, limit, now)
        raise AdminKeyRequired(
            "admin routes need 'Authorization: Bearer <admin key>' (WAITINGROOM_ADMIN_KEY)"
        )
    return "admin-key:" + hashlib.sha256(expected.encode()).hexdigest()[:8]


def via_function_url(event: Any) -> bool:
    """The request came through the API function's URL (which only CloudFront may call)."""
    if not isinstance(event, dict):
        return False
    ctx = event.get("requestContext") or {}
    return ".lambda-url." in str(ctx.get("domainName") or "")


def iam_caller(event: Any) -> str | None:
    """The caller's ARN from an IAM-authorised API Gateway event (HTTP API v2 or REST v1).

    Never from a Lambda function URL: its events carry an IAM block too, but the URL is there
    for CloudFront (the public routes); operators go through API Gateway."""
    if not isinstance(event, dict):
        return None
    if via_function_url(event):
        return None
    ctx = event.get("requestContext") or {}
    iam = ((ctx.get("authorizer") or {}).get("iam")) or {}
    arn = iam.get("userArn") or (ctx.get("identity") or {}).get("userArn")
    return str(arn) if arn else None


AdminDep = Annotated[str, Depends(require_admin)]
