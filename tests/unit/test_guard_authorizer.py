"""The API Gateway authorizer against real authorizer payloads (tests/events/)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.events import load_event
from origin_guard import authorizer as authorizer_module
from origin_guard.authorizer import Authorizer, event_kind, handler, stage_arn, token_from_event
from origin_guard.settings import get_settings, get_verifier
from origin_guard.verify import AdmissionClaims, TokenVerifier
from waitingroom.tokens import KeySet

NOW = 1_700_000_000.0
ROOM = "launch"
TICKET = "1700000000.3.17"


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate("k1")


def mint(keys: KeySet, *, room: str = ROOM, issued_at: float = NOW) -> str:
    return keys.signer().mint(
        issuer="waitingroom",
        room=room,
        ticket_id=TICKET,
        issued_at=int(issued_at),
        expires_at=int(issued_at) + 600,
        jti="jti-1",
    )


@pytest.fixture
def authorize(keys: KeySet) -> Authorizer:
    verifier = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=lambda: NOW)
    return Authorizer(verifier)


def assert_unauthorized(authorize: Authorizer, event: dict[str, Any]) -> None:
    with pytest.raises(Exception) as info:
        authorize(event, None)
    assert type(info.value) is Exception
    assert str(info.value) == "Unauthorized"


def rest_token_event(token: str) -> dict[str, Any]:
    event = load_event("authorizer-rest-token")
    event["authorizationToken"] = token
    return event


def rest_request_event(headers: dict[str, str]) -> dict[str, Any]:
    event = load_event("authorizer-rest-request")
    event["headers"].update(headers)
    return event


def http_v2_event(*, cookies: list[str] | None = None, **headers: str) -> dict[str, Any]:
    event = load_event("authorizer-http-api-v2-request")
    event["cookies"] = cookies if cookies is not None else ["theme=dark"]
    event["headers"].update(headers)
    return event


def test_each_event_shape_is_recognised() -> None:
    assert event_kind(load_event("authorizer-rest-token")) == "rest_token"
    assert event_kind(load_event("authorizer-rest-request")) == "rest_request"
    assert event_kind(load_event("authorizer-http-api-v2-request")) == "http_v2"
    assert event_kind({"version": "1.0", "type": "REQUEST"}) == "http_v1"
    assert event_kind({}) == "unknown"


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", ""])
def test_rest_token_allows_the_whole_stage(
    keys: KeySet, authorize: Authorizer, prefix: str
) -> None:
    result = authorize(rest_token_event(prefix + mint(keys)), None)
    assert result["principalId"] == TICKET
    statement = result["policyDocument"]["Statement"]
    assert statement == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:example/prod/*",
        }
    ]
    context = result["context"]
    assert context["room"] == ROOM
    assert context["ticket"] == TICKET
    assert context["exp"] == int(NOW) + 600
    assert context["jti"] == "jti-1"
    assert all(isinstance(v, str | int | bool) for v in context.values())  # API Gateway's rule
    json.dumps(result)


@pytest.mark.parametrize(
    "token",
    ["incoming-client-token", "", "Bearer ", "Bearer a.b.c", "x" * 9000, "Basic dXNlcjpwdw=="],
)
def test_rest_token_refusals_are_the_401_exception(authorize: Authorizer, token: str) -> None:
    assert_unauthorized(authorize, rest_token_event(token))


def test_rest_token_for_another_room_or_expired(keys: KeySet, authorize: Authorizer) -> None:
    assert_unauthorized(authorize, rest_token_event(mint(keys, room="other")))
    assert_unauthorized(authorize, rest_token_event(mint(keys, issued_at=NOW - 3600)))
    assert_unauthorized(authorize, rest_token_event(mint(KeySet.generate("k1"))))


def test_rest_token_event_without_the_token_field(authorize: Authorizer) -> None:
    event = load_event("authorizer-rest-token")
    del event["authorizationToken"]
    assert_unauthorized(authorize, event)


def test_rest_request_reads_the_cookie(keys: KeySet, authorize: Authorizer) -> None:
    event = rest_request_event({"Cookie": f"theme=dark; waitingroom_token={mint(keys)}"})
    result = authorize(event, None)
    assert result["principalId"] == TICKET
    assert result["policyDocument"]["Statement"][0]["Resource"] == (
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*"
    )


def test_rest_request_reads_the_authorization_header(keys: KeySet, authorize: Authorizer) -> None:
    result = authorize(rest_request_event({"authorization": f"Bearer {mint(keys)}"}), None)
    assert result["context"]["ticket"] == TICKET


def test_rest_request_refusals(keys: KeySet, authorize: Authorizer) -> None:
    assert_unauthorized(authorize, load_event("authorizer-rest-request"))
    assert_unauthorized(authorize, rest_request_event({"Cookie": "waitingroom_token=junk"}))
    assert_unauthorized(
        authorize, rest_request_event({"Cookie": f"other={mint(keys)}"})
    )  # wrong cookie name


def test_http_api_v2_simple_responses(keys: KeySet, authorize: Authorizer) -> None:
    allowed = authorize(http_v2_event(cookies=["a=b", f"waitingroom_token={mint(keys)}"]), None)
    assert allowed["isAuthorized"] is True
    assert allowed["context"]["room"] == ROOM
    assert allowed["context"]["ticket"] == TICKET
    by_header = authorize(http_v2_event(authorization=f"Bearer {mint(keys)}"), None)
    assert by_header["isAuthorized"] is True
    assert authorize(http_v2_event(), None) == {"isAuthorized": False}
    refused = authorize(http_v2_event(cookies=["waitingroom_token=a.b.c"]), None)
    assert refused == {"isAuthorized": False}


def test_http_api_payload_1_0_gets_a_deny_policy(keys: KeySet, authorize: Authorizer) -> None:
    event = load_event("authorizer-rest-request")
    event["version"] = "1.0"
    denied = authorize(event, None)
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    event["headers"]["Cookie"] = f"waitingroom_token={mint(keys)}"
    assert authorize(event, None)["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_no_other_exception_escapes(keys: KeySet) -> None:
    class Broken(TokenVerifier):
        def verify(self, token: str | None, binding: str | None = None) -> AdmissionClaims:
            raise RuntimeError("bug")

    broken = Authorizer(Broken(audience=ROOM, jwks=keys.jwks()))
    assert_unauthorized(broken, rest_token_event(mint(keys)))
    assert broken(http_v2_event(), None) == {"isAuthorized": False}


@pytest.mark.parametrize("event", [{}, {"type": "TOKEN"}, {"type": "SOMETHING"}, {"type": None}])
def test_odd_events_are_refused(authorize: Authorizer, event: dict[str, Any]) -> None:
    assert_unauthorized(authorize, event)


def test_a_bad_method_arn_refuses(keys: KeySet, authorize: Authorizer) -> None:
    event = rest_token_event(mint(keys))
    event["methodArn"] = "nonsense"
    assert_unauthorized(authorize, event)


def test_stage_arn() -> None:
    arn = "arn:aws:execute-api:eu-west-1:1:abc/prod/GET/a/b"
    assert stage_arn(arn) == "arn:aws:execute-api:eu-west-1:1:abc/prod/*"
    with pytest.raises(ValueError):
        stage_arn("arn:aws:execute-api:eu-west-1:1:abc")


def test_token_from_event_prefers_authorization() -> None:
    event = rest_request_event(
        {"Authorization": "Bearer from-header", "Cookie": "waitingroom_token=c"}
    )
    assert token_from_event(event, "rest_request") == "from-header"
    event = rest_request_event({"Cookie": "waitingroom_token=c"})
    assert token_from_event(event, "rest_request") == "c"
    assert token_from_event(event, "rest_request", cookie_name="other") is None


# --- the Lambda entry point, configured from the environment ---------------------------------


@pytest.fixture
def fresh_config() -> Iterator[None]:
    def clear() -> None:
        get_settings.cache_clear()
        get_verifier.cache_clear()
        authorizer_module._default_authorizer.cache_clear()

    clear()
    yield
    clear()


def test_handler_reads_its_settings_on_first_call(
    keys: KeySet, monkeypatch: pytest.MonkeyPatch, fresh_config: None
) -> None:
    monkeypatch.setenv("GUARD_JWKS", json.dumps(keys.jwks()))
    monkeypatch.setenv("GUARD_AUDIENCE", "presale,launch")
    monkeypatch.delenv("GUARD_JWKS_URL", raising=False)
    token = mint(keys, issued_at=time.time())
    assert handler(rest_token_event(f"Bearer {token}"), None)["principalId"] == TICKET
    assert handler(http_v2_event(authorization=token), None)["isAuthorized"] is True


def test_handler_misconfigured_refuses_without_leaking_the_error(
    monkeypatch: pytest.MonkeyPatch, fresh_config: None
) -> None:
    monkeypatch.delenv("GUARD_JWKS", raising=False)
    monkeypatch.delenv("GUARD_JWKS_URL", raising=False)
    monkeypatch.delenv("GUARD_AUDIENCE", raising=False)
    with pytest.raises(Exception) as info:
        handler(rest_token_event("Bearer a.b.c"), None)
    assert type(info.value) is Exception
    assert str(info.value) == "Unauthorized"
    assert handler(http_v2_event(), None) == {"isAuthorized": False}
