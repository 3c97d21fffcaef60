"""AdmissionGuardMiddleware, each test with its own tiny ASGI app."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devtools.events import load_event
from origin_guard.middleware import (
    AdmissionGuardMiddleware,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)
from origin_guard.settings import get_settings, get_verifier
from origin_guard.verify import TokenVerifier
from waitingroom.tokens import KeySet

NOW = 1_700_000_000.0
ROOM = "launch"
TICKET = "1700000000.3.17"
WAITING_ROOM = "https://queue.example.com/rooms/{room}?return_to={return_to}"
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate("k1")


@pytest.fixture
def verifier(keys: KeySet) -> TokenVerifier:
    return TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=lambda: NOW)


def mint(keys: KeySet, *, room: str = ROOM, issued_at: float = NOW) -> str:
    return keys.signer().mint(
        issuer="waitingroom",
        room=room,
        ticket_id=TICKET,
        issued_at=int(issued_at),
        expires_at=int(issued_at) + 600,
        jti="jti-1",
    )


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the admission it was given (or null)."""
    admission = scope.get("state", {}).get("admission")
    body = json.dumps(
        {
            "admission": dataclasses.asdict(admission) if admission else None,
            "same": scope.get("admission") is admission,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def guarded(verifier: TokenVerifier | None, **options: Any) -> AdmissionGuardMiddleware:
    return AdmissionGuardMiddleware(echo_app, verifier=verifier, **options)


def call(
    app: ASGIApp,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin.test") as client:
            if cookies:
                cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
                headers_ = {**(headers or {}), "cookie": cookie}
            else:
                headers_ = dict(headers or {})
            return await client.request(method, path, headers=headers_)

    return asyncio.run(go())


def test_a_valid_cookie_passes_with_the_claims_on_the_scope(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    response = call(guarded(verifier), cookies={"waitingroom_token": mint(keys)})
    assert response.status_code == 200
    admission = response.json()["admission"]
    assert admission["room"] == ROOM
    assert admission["ticket"] == TICKET
    assert response.json()["same"] is True


def test_a_valid_bearer_header_passes(keys: KeySet, verifier: TokenVerifier) -> None:
    response = call(guarded(verifier), "/api/x", headers={"authorization": f"Bearer {mint(keys)}"})
    assert response.status_code == 200
    assert response.json()["admission"]["ticket"] == TICKET


def test_an_api_request_without_a_token_gets_401_json(verifier: TokenVerifier) -> None:
    response = call(guarded(verifier, waiting_room_url=WAITING_ROOM), "/api/x")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["reason"] == "missing"
    assert "waiting room" in body["message"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("token_for", "expected"),
    [("other-room", "wrong_audience"), ("garbage", "malformed"), ("expired", "expired")],
)
def test_an_invalid_token_gets_401_with_the_reason(
    keys: KeySet, verifier: TokenVerifier, token_for: str, expected: str
) -> None:
    token = {
        "other-room": mint(keys, room="other-room"),
        "garbage": "not.a.token",
        "expired": mint(keys, issued_at=NOW - 3600),
    }[token_for]
    response = call(guarded(verifier), "/api/x", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["reason"] == expected
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_browser_navigation_is_sent_to_the_waiting_room(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url=WAITING_ROOM)
    response = call(app, "/shop/item?id=7", headers=BROWSER)
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://queue.example.com/rooms/launch?return_to=%2Fshop%2Fitem%3Fid%3D7"
    )
    assert response.headers["cache-control"] == "no-store"


def test_a_browser_with_a_bad_cookie_is_sent_back_too(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url="/queue/{room}")
    response = call(app, headers=BROWSER, cookies={"waitingroom_token": "junk"})
    assert response.status_code == 302
    assert response.headers["location"] == "/queue/launch"


def test_no_waiting_room_url_means_401_for_browsers_too(verifier: TokenVerifier) -> None:
    assert call(guarded(verifier), headers=BROWSER).status_code == 401


def test_only_get_navigations_redirect(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url=WAITING_ROOM)
    assert call(app, method="POST", headers=BROWSER).status_code == 401
    assert call(app, headers={"accept": "application/json"}).status_code == 401


def test_allow_listed_prefixes_pass_without_a_token(verifier: TokenVerifier) -> None:
    app = guarded(verifier, allow_paths=["/health", "/static/"])
    assert call(app, "/health").status_code == 200
    assert call(app, "/health/db").status_code == 200
    assert call(app, "/static/app.css").status_code == 200
    assert call(app, "/static").status_code == 200
    assert call(app, "/healthz").status_code == 401
    assert call(app, "/").status_code == 401


def test_dot_segments_do_not_sneak_past_the_allow_list(verifier: TokenVerifier) -> None:
    app = guarded(verifier, allow_paths=["/static"])

    async def raw(path: str) -> int:
        statuses: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await app(scope, receive, send)
        return statuses[0]

    assert asyncio.run(raw("/static/../admin")) == 401
    assert asyncio.run(raw("/static/./x")) == 401
    assert asyncio.run(raw("/static/x")) == 200


def test_the_default_allow_list_is_health(verifier: TokenVerifier) -> None:
    assert call(guarded(verifier), "/health").status_code == 200


def test_non_http_scopes_pass_through(verifier: TokenVerifier) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    middleware = AdmissionGuardMiddleware(app, verifier=verifier)
    asyncio.run(middleware({"type": "lifespan"}, receive, send))
    asyncio.run(middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send))
    assert seen == ["lifespan", "websocket"]


def test_a_custom_cookie_name(keys: KeySet, verifier: TokenVerifier) -> None:
    app = guarded(verifier, cookie_name="admit")
    assert call(app, cookies={"admit": mint(keys)}).status_code == 200
    assert call(app, cookies={"waitingroom_token": mint(keys)}).status_code == 401


def test_options_are_validated_up_front(verifier: TokenVerifier) -> None:
    with pytest.raises(ValueError):
        guarded(verifier, allow_paths="/health")
    with pytest.raises(ValueError):
        guarded(verifier, allow_paths=["health"])
    with pytest.raises(ValueError):
        guarded(verifier, allow_paths=["/"])
    with pytest.raises(ValueError):
        guarded(verifier, waiting_room_url="https://q.example.com/{roomz}")
    with pytest.raises(ValueError):
        guarded(verifier, waiting_room_url="javascript:alert(1)")
    with pytest.raises(ValueError):
        guarded(verifier, cookie_name="a=b")


def test_works_inside_starlette_with_request_state(keys: KeySet, verifier: TokenVerifier) -> None:
    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"ticket": request.state.admission.ticket})

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(AdmissionGuardMiddleware, verifier=verifier)
    response = call(app, cookies={"waitingroom_token": mint(keys)})
    assert response.status_code == 200
    assert response.json() == {"ticket": TICKET}
    assert call(app).status_code == 401


# --- JWKS from a URL: the fetch leaves the event loop ------------------------------------------


def test_a_jwks_url_is_fetched_once_off_the_event_loop(keys: KeySet) -> None:
    calls: list[str] = []

    def fetch(url: str) -> Mapping[str, Any]:
        calls.append(url)
        return keys.jwks()

    verifier = TokenVerifier(
        audience=ROOM,
        jwks_url="http://127.0.0.1:8000/.well-known/jwks.json",
        fetch=fetch,
        clock=lambda: NOW,
    )
    app = guarded(verifier)
    for _ in range(3):
        assert call(app, cookies={"waitingroom_token": mint(keys)}).status_code == 200
    assert len(calls) == 1


def test_unreachable_keys_give_503_not_a_redirect_loop(keys: KeySet) -> None:
    def fetch(url: str) -> Mapping[str, Any]:
        raise OSError("connection refused")

    verifier = TokenVerifier(
        audience=ROOM, jwks_url="https://queue.example.com/jwks", fetch=fetch, clock=lambda: NOW
    )
    app = guarded(verifier, waiting_room_url=WAITING_ROOM)
    response = call(app, headers=BROWSER, cookies={"waitingroom_token": mint(keys)})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["reason"] == "keys_unavailable"


# --- API Gateway authorizer context (Mangum puts the Lambda event in scope["aws.event"]) -------


def with_event(app: ASGIApp, event: Mapping[str, Any]) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "aws.event": event}, receive, send)

    return wrapper


def rest_event(context: Mapping[str, Any]) -> dict[str, Any]:
    event = load_event("apigw-rest-proxy")
    event["requestContext"]["authorizer"] = {"principalId": TICKET, **context}
    return event


def test_a_trusted_authorizer_context_is_used_without_a_token(verifier: TokenVerifier) -> None:
    context = {"room": ROOM, "ticket": TICKET, "exp": str(int(NOW) + 60), "jti": "j"}
    app = guarded(verifier, trust_authorizer_context=True)
    response = call(with_event(app, rest_event(context)))
    assert response.status_code == 200
    assert response.json()["admission"]["ticket"] == TICKET


def test_the_authorizer_context_is_ignored_unless_trusted(verifier: TokenVerifier) -> None:
    context = {"room": ROOM, "ticket": TICKET, "exp": int(NOW) + 60, "jti": "j"}
    assert call(with_event(guarded(verifier), rest_event(context))).status_code == 401


def test_a_trusted_context_is_still_checked_for_room_and_expiry(verifier: TokenVerifier) -> None:
    app = guarded(verifier, trust_authorizer_context=True)
    expired = {"room": ROOM, "ticket": TICKET, "exp": int(NOW) - 60, "jti": "j"}
    elsewhere = {"room": "other", "ticket": TICKET, "exp": int(NOW) + 60, "jti": "j"}
    broken = {"room": ROOM, "ticket": TICKET, "exp": "soon", "jti": "j"}
    for context in (expired, elsewhere, broken):
        assert call(with_event(app, rest_event(context))).status_code == 401


def test_without_an_authorizer_context_the_token_is_verified(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    app = with_event(
        guarded(verifier, trust_authorizer_context=True), load_event("apigw-rest-proxy")
    )
    assert call(app).status_code == 401
    assert call(app, cookies={"waitingroom_token": mint(keys)}).status_code == 200


def test_through_mangum_with_an_http_api_v2_lambda_context(verifier: TokenVerifier) -> None:
    event = load_event("apigw-http-api-v2-proxy")
    event["requestContext"]["authorizer"] = {
        "lambda": {"room": ROOM, "ticket": TICKET, "exp": int(NOW) + 60, "jti": "j", "iat": 1}
    }
    event["requestContext"]["http"]["method"] = "GET"
    event["body"], event["isBase64Encoded"] = "", False
    app = guarded(verifier, trust_authorizer_context=True)
    loop = asyncio.new_event_loop()  # Mangum runs on the current loop; close it afterwards
    asyncio.set_event_loop(loop)
    lambda_context: Any = None
    try:
        response = Mangum(app, lifespan="off")(event, lambda_context)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["admission"]["ticket"] == TICKET


# --- configured from the environment ---------------------------------------------------------


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    get_verifier.cache_clear()
    yield
    get_settings.cache_clear()
    get_verifier.cache_clear()


def test_without_a_verifier_the_environment_is_read_on_first_request(
    keys: KeySet, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    for name in ("GUARD_JWKS", "GUARD_JWKS_URL", "GUARD_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    app = AdmissionGuardMiddleware(echo_app)  # building the app reads nothing
    monkeypatch.setenv("GUARD_JWKS", json.dumps(keys.jwks()))
    monkeypatch.setenv("GUARD_AUDIENCE", ROOM)
    monkeypatch.setenv("GUARD_WAITING_ROOM_URL", "https://queue.example.com/{room}")
    monkeypatch.setenv("GUARD_COOKIE_NAME", "admit")
    token = mint(keys, issued_at=time.time())
    assert call(app, cookies={"admit": token}).status_code == 200
    response = call(app, headers=BROWSER)
    assert response.headers["location"] == "https://queue.example.com/launch"


def test_a_misconfigured_guard_answers_json_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    for name in ("GUARD_JWKS", "GUARD_JWKS_URL", "GUARD_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    response = call(AdmissionGuardMiddleware(echo_app))
    assert response.status_code == 500
    assert response.json()["error"] == "guard_misconfigured"


def test_the_page_asked_for_rides_along_as_return_to(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url="https://queue.example.com/rooms/{room}")
    response = call(app, "/api/hello?x=1&y=a+b", headers=BROWSER)
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://queue.example.com/rooms/launch?return_to=%2Fapi%2Fhello%3Fx%3D1%26y%3Da%2Bb"
    )
    with_query = guarded(verifier, waiting_room_url="/rooms/{room}?lang=ja#top")
    assert call(with_query, "/cart", headers=BROWSER).headers["location"] == (
        "/rooms/launch?lang=ja&return_to=%2Fcart#top"
    )


def test_the_root_and_overlong_paths_are_not_carried(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url="https://queue.example.com/rooms/{room}")
    assert call(app, "/", headers=BROWSER).headers["location"] == (
        "https://queue.example.com/rooms/launch"
    )
    long = "/a?" + "b" * 2100
    assert call(app, long, headers=BROWSER).headers["location"] == (
        "https://queue.example.com/rooms/launch"
    )


def test_return_to_keeps_the_path_as_the_visitor_sent_it(verifier: TokenVerifier) -> None:
    app = guarded(verifier, waiting_room_url="https://queue.example.com/rooms/{room}")
    location = call(app, "/docs/a%3Fb%23c%2Fd%25e?x=1", headers=BROWSER).headers["location"]
    return_to = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["return_to"]
    assert return_to == ["/docs/a%3Fb%23c%2Fd%25e?x=1"], "the same page, not /docs/a?b#c/d%e"


def test_return_to_without_a_raw_path_or_under_a_prefix() -> None:
    from origin_guard.middleware import _return_to

    lambda_scope = {"path": "/docs/a?b#c", "raw_path": None, "query_string": b"x=1"}
    assert _return_to(lambda_scope) == "/docs/a%3Fb%23c?x=1"
    mounted = {"path": "/shop/a b", "raw_path": b"/a%20b", "query_string": b""}
    assert _return_to(mounted) == "/shop/a%20b"
