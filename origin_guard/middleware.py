"""ASGI middleware that lets a request reach the app only with a valid admission token.

Pure ASGI, no framework import, so it wraps FastAPI, Starlette or any ASGI app and installs with
PyJWT alone. A browser navigating without a valid token is sent to the waiting room (302); an
API client gets 401 JSON with `WWW-Authenticate: Bearer`. The verified claims are put on
`scope["state"]["admission"]` (Starlette's `request.state.admission`) and `scope["admission"]`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from origin_guard.health import HEADER, RoomHealth, Verdict
from origin_guard.settings import DEFAULT_ALLOW_PATHS, DEFAULT_COOKIE_NAME, get_settings
from origin_guard.verify import (
    AdmissionClaims,
    Reason,
    TokenRejected,
    TokenVerifier,
    bearer_token,
    cookie_value,
)

logger = logging.getLogger("origin_guard")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_URL_FIELDS = {"room", "return_to"}
# The waiting page ignores a longer return_to (it sends the visitor to the origin's root).
MAX_RETURN_TO = 2048


@dataclass(frozen=True)
class _Config:
    verifier: TokenVerifier
    cookie_name: str
    waiting_room_url: str | None
    allow_paths: tuple[str, ...]
    health: RoomHealth | None = None


class AdmissionGuardMiddleware:
    """`app.add_middleware(AdmissionGuardMiddleware, verifier=TokenVerifier(...), ...)`.

    Without `verifier`, everything not given here comes from the GUARD_* environment variables,
    read on the first request (not when the app is built, which is often import time).
    `waiting_room_url` may contain `{room}` (the first room the verifier serves) and
    `{return_to}` (the path and query the browser asked for); without `{return_to}`, the path
    and query are added as a `return_to` query parameter, which the waiting page follows once
    the visitor is admitted. `allow_paths` are path prefixes
    that pass without a token (`/health` matches `/health` and `/health/db`, not `/healthz`).
    With `trust_authorizer_context=True`, a request that API Gateway already ran through our
    Lambda authorizer (Mangum puts the event in `scope["aws.event"]`) is not verified again;
    only its room and expiry are checked, since API Gateway may have cached the answer.
    `room_health` (a `RoomHealth`) says what to do with requests without a valid token while
    the waiting room is down: still refuse them (fail closed) or, after its `fail_open_after`
    seconds, let them through with `admission` None (fail open); either way the response says
    which in `X-Waitingroom-Guard`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier | None = None,
        cookie_name: str | None = None,
        waiting_room_url: str | None = None,
        allow_paths: Sequence[str] | None = None,
        trust_authorizer_context: bool = False,
        room_health: RoomHealth | None = None,
    ) -> None:
        if allow_paths is not None:
            _check_allow_paths(allow_paths)
        if waiting_room_url is not None:
            _check_waiting_room_url(waiting_room_url)
        if cookie_name is not None and (not cookie_name or any(c in cookie_name for c in ";= ")):
            raise ValueError(f"cookie_name {cookie_name!r} is not a valid cookie name")
        self.app = app
        self.trust_authorizer_context = trust_authorizer_context
        self._verifier = verifier
        self._cookie_name = cookie_name
        self._waiting_room_url = waiting_room_url
        self._allow_paths = tuple(allow_paths) if allow_paths is not None else None
        self._room_health = room_health
        self._config: _Config | None = None

    def config(self) -> _Config:
        """Resolved once: explicit arguments first, then GUARD_* settings if no verifier."""
        if self._config is None:
            if self._verifier is not None:
                self._config = _Config(
                    verifier=self._verifier,
                    cookie_name=self._cookie_name or DEFAULT_COOKIE_NAME,
                    waiting_room_url=self._waiting_room_url,
                    allow_paths=self._allow_paths
                    if self._allow_paths is not None
                    else DEFAULT_ALLOW_PATHS,
                    health=self._room_health,
                )
            else:
                settings = get_settings()
                url = self._waiting_room_url or settings.waiting_room_url
                if url is not None:
                    _check_waiting_room_url(url)
                paths = self._allow_paths if self._allow_paths is not None else settings.allow_paths
                _check_allow_paths(paths)
                self._config = _Config(
                    verifier=settings.verifier(),
                    cookie_name=self._cookie_name or settings.cookie_name,
                    waiting_room_url=url,
                    allow_paths=paths,
                    health=self._room_health or settings.room_health(),
                )
        return self._config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan passes; websockets are not guarded here
            await self.app(scope, receive, send)
            return
        try:
            config = self.config()
        except Exception:
            logger.exception("the origin guard is misconfigured; refusing the request")
            message = "The origin's admission guard is misconfigured; its logs say what to fix."
            await _send_json(send, 500, {"error": "guard_misconfigured", "message": message}, [])
            return
        if _allowed(scope.get("path", ""), config.allow_paths):
            await self.app(scope, receive, send)
            return
        try:
            claims = await self._claims(scope, config)
        except TokenRejected as exc:
            await self._not_admitted(scope, receive, send, config, exc.reason)
            return
        except Exception:
            logger.exception("admission check failed; refusing the request")
            await self._not_admitted(scope, receive, send, config, "keys_unavailable")
            return
        scope.setdefault("state", {})["admission"] = claims
        scope["admission"] = claims
        await self.app(scope, receive, send)

    async def _claims(self, scope: Scope, config: _Config) -> AdmissionClaims:
        verifier = config.verifier
        if self.trust_authorizer_context:
            context = authorizer_context(scope.get("aws.event"))
            if context is not None:
                return verifier.claims_from_authorizer(context)
        token = token_from_scope(scope, config.cookie_name)
        binding = (
            cookie_from_scope(scope, verifier.binding_cookie) if verifier.require_binding else None
        )
        if verifier.would_fetch(token):  # keep the event loop free while the JWKS downloads
            return await asyncio.to_thread(verifier.verify, token, binding)
        return verifier.verify(token, binding)

    async def _not_admitted(
        self, scope: Scope, receive: Receive, send: Send, config: _Config, reason: Reason
    ) -> None:
        """No valid token: refuse, unless the room is down and the policy is to fail open
        (ours, or that of our Lambda authorizer in front, which says so in its context)."""
        verdict: Verdict | None = "fail-open"
        if not (self.trust_authorizer_context and _authorizer_failed_open(scope.get("aws.event"))):
            verdict = await _room_verdict(config.health)
        if verdict == "fail-open":
            logger.info("no valid admission token (%s); the room is down: passing it", reason)
            scope.setdefault("state", {})["admission"] = None
            scope["admission"] = None
            await self.app(scope, receive, _with_header(send, HEADER, verdict.encode()))
            return
        extra = [(HEADER, verdict.encode())] if verdict is not None else []
        await self._refuse(scope, send, config, reason, extra)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        config: _Config,
        reason: Reason,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        if reason == "keys_unavailable":
            await _send_json(
                send,
                503,
                {"error": "unavailable", "reason": reason, "message": _message(reason)},
                [(b"retry-after", b"5"), *extra],
            )
            return
        url = config.waiting_room_url
        if url is not None and _is_navigation(scope):
            location = _format_url(url, config.verifier.rooms[0], _return_to(scope))
            body = b'<!doctype html><a href="%s">Join the waiting room</a>\n' % (
                _html_attr(location).encode()
            )
            await _send(
                send,
                302,
                [
                    (b"location", location.encode()),
                    (b"content-type", b"text/html; charset=utf-8"),
                    *extra,
                ],
                body,
            )
            return
        challenge = b"Bearer" if reason == "missing" else b'Bearer error="invalid_token"'
        await _send_json(
            send,
            401,
            {"error": "unauthorized", "reason": reason, "message": _message(reason)},
            [(b"www-authenticate", challenge), *extra],
        )


def token_from_scope(scope: Scope, cookie_name: str) -> str | None:
    """The Authorization Bearer token if there is one, else the waiting room's cookie."""
    authorization: str | None = None
    cookies: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
    return bearer_token(authorization) or cookie_value("; ".join(cookies), cookie_name)


def cookie_from_scope(scope: Scope, name: str) -> str | None:
    cookies = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie"]
    return cookie_value("; ".join(cookies), name)


def authorizer_context(event: Any) -> Mapping[str, Any] | None:
    """Our authorizer's context in a Lambda proxy event: REST puts it in
    requestContext.authorizer, HTTP API v2 in requestContext.authorizer.lambda."""
    if not isinstance(event, Mapping):
        return None
    request_context = event.get("requestContext")
    if not isinstance(request_context, Mapping):
        return None
    authorizer = request_context.get("authorizer")
    if not isinstance(authorizer, Mapping):
        return None
    lambda_context = authorizer.get("lambda")
    context = lambda_context if isinstance(lambda_context, Mapping) else authorizer
    return context if "ticket" in context and "room" in context else None


def _authorizer_failed_open(event: Any) -> bool:
    """Our authorizer let this request through because the room is down (`allow_fail_open`)."""
    request_context = event.get("requestContext") if isinstance(event, Mapping) else None
    authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
    if not isinstance(authorizer, Mapping):
        return False
    context = authorizer.get("lambda", authorizer)
    return isinstance(context, Mapping) and context.get("guard") == "fail-open"


def _message(reason: Reason) -> str:
    return TokenRejected(reason).message


def _allowed(path: str, prefixes: Sequence[str]) -> bool:
    segments = path.split("/")
    if "." in segments or ".." in segments:  # never let /health/../admin pass as /health
        return False
    for prefix in prefixes:
        base = prefix.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return True
    return False


def _check_allow_paths(paths: Sequence[str]) -> None:
    if isinstance(paths, str):
        raise ValueError("allow_paths is a list of path prefixes, e.g. ['/health', '/static']")
    for path in paths:
        if not path.startswith("/") or path.rstrip("/") == "":
            raise ValueError(
                f"allow_paths entry {path!r} must start with '/' and not be '/' itself"
            )


def _check_waiting_room_url(url: str) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError as exc:
        raise ValueError(f"waiting_room_url {url!r}: {exc}") from None
    if fields - _URL_FIELDS:
        raise ValueError(
            f"waiting_room_url may use only {{room}} and {{return_to}}, not {sorted(fields)}"
        )
    parts = urllib.parse.urlsplit(url)
    if not (parts.scheme in ("http", "https") and parts.netloc) and not url.startswith("/"):
        raise ValueError(f"waiting_room_url must be an http(s) URL or a path, got {url!r}")


def _format_url(url: str, room: str, return_to: str) -> str:
    """The waiting room's URL for this visitor; the page asked for rides along as `return_to`
    (in the template's `{return_to}`, else as a query parameter) unless it is the root or too
    long for the page to accept."""
    if len(return_to) > MAX_RETURN_TO:
        return_to = "/"
    quoted = urllib.parse.quote(return_to, safe="")
    located = url.format(room=urllib.parse.quote(room, safe=""), return_to=quoted)
    if return_to == "/" or "{return_to}" in url:
        return located
    base, _, fragment = located.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}return_to={quoted}" + (f"#{fragment}" if fragment else "")


async def _room_verdict(health: RoomHealth | None) -> Verdict | None:
    if health is None:
        return None
    if health.would_probe():  # keep the event loop free while the probe waits for an answer
        return await asyncio.to_thread(health.verdict)
    return health.verdict()


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    """`send` with one more header on the response start."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value)]}
        await send(message)

    return wrapped


# what quote() leaves alone in a path rebuilt from its decoded form (RFC 3986 pchar and "/")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _return_to(scope: Scope) -> str:
    """The path and query the visitor asked for, as they sent them: `path` is percent-decoded,
    so `/a%3Fb` would come back as `/a?b`, another page; `raw_path` keeps the encoding. A
    prefix the server mounted the app under shows in `path` but not `raw_path`: kept."""
    path = str(scope.get("path") or "/")
    raw = scope.get("raw_path")
    if raw:
        sent = raw.decode("latin-1")
        decoded = urllib.parse.unquote(sent)
        prefix = path[: len(path) - len(decoded)] if path.endswith(decoded) else ""
        path = urllib.parse.quote(prefix, safe=_PATH_SAFE) + sent
    else:  # no raw path (Mangum): encode what may be read as a query or a fragment
        path = urllib.parse.quote(path, safe=_PATH_SAFE)
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _is_navigation(scope: Scope) -> bool:
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    accept = b", ".join(v for k, v in scope.get("headers", []) if k == b"accept")
    return b"text/html" in accept.lower()


def _html_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


async def _send_json(
    send: Send, status: int, body: Mapping[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    await _send(
        send,
        status,
        [(b"content-type", b"application/json"), *headers],
        json.dumps(body).encode(),
    )


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
