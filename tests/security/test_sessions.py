"""Sessions: tokens bound to the browser that picked them up, and tokens revoked on complete.

The waiting room on DynamoDB Local admits a visitor; the guard (verifier, ASGI middleware, API
Gateway authorizer) then sees the token with and without the browser's binding cookie, and
before and after the origin completed the session. Each test fails without its protection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from starlette.testclient import TestClient

from origin_guard import AdmissionGuardMiddleware, TokenRejected, TokenVerifier
from origin_guard.authorizer import Authorizer
from origin_guard.verify import binding_value as guard_binding_value
from tests.conftest import Api, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.tokens import KeySet, binding_value

pytestmark = pytest.mark.integration

ROOM = "bound"
KEY = b"binding-key-0123456789abcdef"


def _room(api: Api, **fields: Any) -> None:
    r = api.client.put(f"/admin/rooms/{ROOM}", json={"max_active": 5, **fields}, headers=api.admin)
    assert r.status_code in (200, 201), r.text


def _admit(api: Api, drainer: Drainer, clock: FakeClock) -> tuple[str, str | None]:
    """Join, get admitted, pick up: (the token, the binding cookie the browser got)."""
    ticket = api.client.post(f"/rooms/{ROOM}/join").json()["ticket"]
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer.tick_room(ROOM)
    clock.advance(1.01)
    r = api.client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    token: str = r.json()["token"]
    return token, r.cookies.get("waitingroom_bind")


def _verifier(keyset: KeySet, clock: FakeClock, **options: Any) -> TokenVerifier:
    return TokenVerifier(audience=ROOM, jwks=keyset.jwks(), clock=clock, **options)


# -- binding ----------------------------------------------------------------------------------


@pytest.fixture
def bound(api: Api) -> Api:
    api.service.binding_key = KEY
    _room(api, bind_tokens=True)
    return api


def test_a_bound_token_needs_its_browsers_cookie(
    bound: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    token, cookie = _admit(bound, drainer, clock)
    assert cookie, "the pickup sets the binding cookie"
    assert cookie not in json.dumps(bound.client.get("/health").json())
    guard = _verifier(keyset, clock, require_binding=True, binding_key=KEY)
    assert guard.verify(token, cookie).room == ROOM
    for copied in (None, "", "x" * 43, guard_binding_value(KEY, ROOM, "another.jti")):
        with pytest.raises(TokenRejected) as refused:
            guard.verify(token, copied)
        assert refused.value.reason == "unbound"


def test_the_guard_computes_the_same_binding_as_the_waiting_room() -> None:
    assert guard_binding_value(KEY, "r", "r.1.2.3.4") == binding_value(KEY, "r", "r.1.2.3.4")
    assert guard_binding_value(KEY, "r", "j") != guard_binding_value(b"other" * 4, "r", "j")


async def _origin(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"origin"})


def test_the_middleware_refuses_a_token_pasted_into_another_browser(
    bound: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    token, cookie = _admit(bound, drainer, clock)
    guard = _verifier(keyset, clock, require_binding=True, binding_key=KEY)
    app = AdmissionGuardMiddleware(_origin, verifier=guard)
    origin = TestClient(app)
    r = origin.get("/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["reason"] == "unbound"
    r = origin.get("/", headers={"Cookie": f"waitingroom_token={token}"})
    assert r.status_code == 401 and r.json()["reason"] == "unbound"
    both = f"waitingroom_token={token}; waitingroom_bind={cookie}"
    assert origin.get("/", headers={"Cookie": both}).status_code == 200


def test_the_authorizer_refuses_an_unbound_token(
    bound: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    token, cookie = _admit(bound, drainer, clock)
    authorize = Authorizer(_verifier(keyset, clock, require_binding=True, binding_key=KEY))
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abc/$default/GET/",
        "headers": {},
        "cookies": [f"waitingroom_token={token}"],
    }
    assert authorize(event, None) == {"isAuthorized": False}
    event["cookies"].append(f"waitingroom_bind={cookie}")
    assert authorize(event, None)["isAuthorized"] is True


def test_a_room_without_binding_sets_no_cookie(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    api.service.binding_key = KEY
    _room(api)
    _, cookie = _admit(api, drainer, clock)
    assert cookie is None


def test_binding_needs_a_key(api: Api) -> None:
    r = api.client.put(
        f"/admin/rooms/{ROOM}", json={"max_active": 5, "bind_tokens": True}, headers=api.admin
    )
    assert r.status_code == 422 and "WAITINGROOM_BINDING_KEY" in r.json()["message"]


# -- revocation -------------------------------------------------------------------------------


def _fetch_from(api: Api, calls: list[str]) -> Any:
    def fetch(url: str) -> Mapping[str, Any]:
        calls.append(url)
        r = api.client.get(url.removeprefix("http://127.0.0.1"))
        assert r.status_code == 200, r.text
        body: Mapping[str, Any] = r.json()
        return body

    return fetch


def test_a_completed_token_is_refused_within_the_cache_ttl(
    api: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    api.service.revocation_list = True
    _room(api)
    token, _ = _admit(api, drainer, clock)
    calls: list[str] = []
    guard = _verifier(
        keyset,
        clock,
        revocation_url="http://127.0.0.1/rooms/{room}/revoked",
        revocation_ttl=5,
        fetch_revocations=_fetch_from(api, calls),
    )
    assert guard.verify(token).room == ROOM
    r = api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204
    listed = api.client.get(f"/rooms/{ROOM}/revoked")
    assert listed.headers["Cache-Control"] == "public, max-age=5"
    jti = guard.verify(token).jti  # still cached: the documented delay (<= the TTL)
    assert listed.json()["revoked"] == [jti]
    clock.advance(5)
    with pytest.raises(TokenRejected) as refused:
        guard.verify(token)
    assert refused.value.reason == "revoked"
    assert calls == ["http://127.0.0.1/rooms/bound/revoked"] * 2  # once per TTL


def test_the_middleware_refuses_a_revoked_token(
    api: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    api.service.revocation_list = True
    _room(api)
    token, _ = _admit(api, drainer, clock)
    api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {token}"})
    guard = _verifier(
        keyset,
        clock,
        revocation_url="http://127.0.0.1/rooms/{room}/revoked",
        fetch_revocations=_fetch_from(api, []),
    )
    origin = TestClient(AdmissionGuardMiddleware(_origin, verifier=guard))
    r = origin.get("/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["reason"] == "revoked"


def test_an_unreachable_list_keeps_the_last_one(
    api: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    _room(api)
    token, _ = _admit(api, drainer, clock)

    def down(url: str) -> Mapping[str, Any]:
        raise OSError("connection refused")

    guard = _verifier(
        keyset,
        clock,
        revocation_url="https://wait.example/rooms/{room}/revoked",
        fetch_revocations=down,
    )
    assert guard.verify(token).room == ROOM  # fails open on revocation, tokens still expire


def test_the_revocation_list_is_off_by_default(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    _room(api)
    token, _ = _admit(api, drainer, clock)
    api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {token}"})
    assert api.client.get(f"/rooms/{ROOM}/revoked").json()["revoked"] == []


# -- complete after a key rotation ------------------------------------------------------------


def test_complete_accepts_a_token_signed_by_a_key_rotated_in_after_the_jwks_was_cached(
    api: Api, drainer: Drainer, clock: FakeClock, keyset: KeySet
) -> None:
    """The API caches the JWKS; a token naming a kid it has not seen makes it re-read the keys
    (once, rate-limited) rather than refuse the token."""
    _room(api, straight_in=False)  # every token minted at its tick (none ahead, by the old key)
    first, _ = _admit(api, drainer, clock)
    r = api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 204, r.text  # the JWKS with test-k1 only is now cached
    rotated = keyset.rotated("test-k2")
    successor = Drainer(api.service.store, lambda: rotated, issuer="waitingroom", clock=clock)
    successor.refresh_keys()
    clock.advance(31)
    ticket = api.client.post(f"/rooms/{ROOM}/join").json()["ticket"]
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    successor.tick_room(ROOM)
    clock.advance(1.01)
    r = api.client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    second = r.json()["token"]
    assert _verifier(rotated, clock).verify(second).kid == "test-k2"
    r = api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {second}"})
    assert r.status_code == 204, r.text
    forged = (
        KeySet.generate("test-k9")
        .signer()
        .mint(
            issuer="waitingroom",
            room=ROOM,
            ticket_id="1.2.3",
            issued_at=int(clock()),
            expires_at=int(clock()) + 60,
            jti="x",
        )
    )
    r = api.client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["error"] == "bad_token", r.text
