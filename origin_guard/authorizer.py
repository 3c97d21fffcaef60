"""API Gateway Lambda authorizer: let a request through only with a valid admission token.

One handler serves every authorizer shape, told apart by the event itself:

- REST API TOKEN authorizer (`type: TOKEN`): the token is `authorizationToken`, with or without
  "Bearer ". Identity source: `method.request.header.Authorization`.
- REST API REQUEST authorizer (`type: REQUEST`), and HTTP API with payload format 1.0: the token
  is the `Authorization: Bearer` header, else the `waitingroom_token` cookie. Identity source:
  the Cookie and/or Authorization headers.
- HTTP API with payload format 2.0 (`version: "2.0"`): a simple response
  `{"isAuthorized": bool, "context": {...}}` (set `EnableSimpleResponses: true`).

A REST API refusal is `raise Exception("Unauthorized")`: that exact message is how API Gateway
is told to answer 401 (a Deny policy answers 403, any other error 500). Nothing else escapes
this module: a misconfiguration or a bug is logged and becomes a refusal too.

The Allow policy covers the whole stage (`arn:...:api-id/stage/*`), not just the method and
path of the request at hand. API Gateway caches an authorizer's answer by identity source (the
token) for the authorizer's TTL and applies the cached policy to every later request with the
same token; a policy naming one path would make the next page the browser asks for a 403. The
token grants access to the room's whole origin, so the whole stage is the right scope.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from origin_guard.health import RoomHealth
from origin_guard.settings import DEFAULT_COOKIE_NAME, get_settings
from origin_guard.verify import (
    AdmissionClaims,
    TokenRejected,
    TokenVerifier,
    bearer_token,
    cookie_value,
)

logger = logging.getLogger("origin_guard")

EventKind = Literal["rest_token", "rest_request", "http_v1", "http_v2", "unknown"]


def event_kind(event: Mapping[str, Any]) -> EventKind:
    if not isinstance(event, Mapping):
        return "unknown"
    version, kind = event.get("version"), event.get("type")
    if version == "2.0" and kind == "REQUEST":
        return "http_v2"
    if version == "1.0" and kind == "REQUEST":
        return "http_v1"
    if kind == "TOKEN":
        return "rest_token"
    if kind == "REQUEST":
        return "rest_request"
    return "unknown"


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


def token_from_event(
    event: Mapping[str, Any], kind: EventKind, cookie_name: str = DEFAULT_COOKIE_NAME
) -> str | None:
    """Where each authorizer shape carries the token: the Authorization value first (an API
    client's explicit choice), then the cookie a browser got from the waiting room."""
    if kind == "rest_token":
        token = event.get("authorizationToken")
        return bearer_token(token) if isinstance(token, str) else None
    headers = event.get("headers")
    authorization = bearer_token(_header(headers, "authorization"))
    if authorization:
        return authorization
    if kind == "http_v2":
        cookies = event.get("cookies")
        if isinstance(cookies, list):
            joined = "; ".join(c for c in cookies if isinstance(c, str))
            if found := cookie_value(joined, cookie_name):
                return found
    return cookie_value(_header(headers, "cookie"), cookie_name)


def cookie_from_event(event: Mapping[str, Any], kind: EventKind, name: str) -> str | None:
    """A cookie of the request (HTTP API v2 lists them in `cookies`, the others in the header)."""
    if kind == "http_v2":
        cookies = event.get("cookies")
        if isinstance(cookies, list):
            joined = "; ".join(c for c in cookies if isinstance(c, str))
            if found := cookie_value(joined, name):
                return found
    return cookie_value(_header(event.get("headers"), "cookie"), name)


def stage_arn(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api-id/stage/VERB/path -> .../api-id/stage/*"""
    prefix, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0]
    if not prefix.startswith("arn:") or not stage:
        raise ValueError("methodArn is not an execute-api ARN")
    return f"{prefix}/{stage}/*"


def _policy(principal: str, effect: str, resource: str) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }


class Authorizer:
    """The handler with its dependencies given: `Authorizer(verifier)(event, context)`.

    With `room_health` whose policy is to fail open, a request without a valid token is
    allowed while the waiting room has been down long enough, with the context
    `{"guard": "fail-open"}` (map it to a header or read it in the origin)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        cookie_name: str = DEFAULT_COOKIE_NAME,
        room_health: RoomHealth | None = None,
    ) -> None:
        self.verifier = verifier
        self.cookie_name = cookie_name
        self.room_health = room_health

    def __call__(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        kind = event_kind(event)
        try:
            binding = None
            if self.verifier.require_binding:
                binding = cookie_from_event(event, kind, self.verifier.binding_cookie)
            claims = self.verifier.verify(token_from_event(event, kind, self.cookie_name), binding)
            return allow(event, kind, claims)
        except TokenRejected:
            pass  # already logged by the verifier, with its reason
        except Exception:
            logger.exception("authorizer failed; refusing the request")
        if self._fails_open():
            try:
                return allow_fail_open(event, kind)
            except ValueError:
                logger.exception("cannot allow a request whose event has no execute-api ARN")
        return deny(event, kind)

    def _fails_open(self) -> bool:
        try:
            return self.room_health is not None and self.room_health.verdict() == "fail-open"
        except Exception:  # a policy that cannot be worked out is the default one: closed
            logger.exception("checking the waiting room's health failed")
            return False


def allow(event: Mapping[str, Any], kind: EventKind, claims: AdmissionClaims) -> dict[str, Any]:
    context = claims.as_context()
    if kind == "http_v2":
        return {"isAuthorized": True, "context": context}
    resource = stage_arn(str(event.get("methodArn") or event.get("routeArn") or ""))
    return {**_policy(claims.ticket, "Allow", resource), "context": context}


def allow_fail_open(event: Mapping[str, Any], kind: EventKind) -> dict[str, Any]:
    """Allowed without a token: the room is down and the operator chose to fail open."""
    context = {"guard": "fail-open"}
    if kind == "http_v2":
        return {"isAuthorized": True, "context": context}
    resource = stage_arn(str(event.get("methodArn") or event.get("routeArn") or ""))
    return {**_policy("fail-open", "Allow", resource), "context": context}


def deny(event: Mapping[str, Any], kind: EventKind) -> dict[str, Any]:
    if kind == "http_v2":
        return {"isAuthorized": False}
    if kind == "http_v1":
        arn = event.get("routeArn") or event.get("methodArn")
        if isinstance(arn, str):
            try:
                return _policy("anonymous", "Deny", stage_arn(arn))
            except ValueError:
                pass
    raise Exception("Unauthorized")  # API Gateway matches this exact message


@lru_cache(maxsize=1)
def _default_authorizer() -> Authorizer:
    settings = get_settings()
    return Authorizer(
        settings.verifier(), cookie_name=settings.cookie_name, room_health=settings.room_health()
    )


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point; configured from GUARD_* env vars on the first invocation."""
    try:
        authorizer = _default_authorizer()
    except Exception:
        logger.exception("the guard is misconfigured (GUARD_* env vars); refusing the request")
        return deny(event, event_kind(event))
    return authorizer(event, context)
