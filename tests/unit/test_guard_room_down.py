"""The guard while the waiting room itself is down: admitted visitors are unaffected, new ones
are still sent to the room (fail closed) unless the operator chose to let them through after
N seconds (fail open); the response header and the log say which."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from devtools.events import load_event
from origin_guard.authorizer import Authorizer
from origin_guard.health import RoomHealth, default_health_url
from origin_guard.middleware import AdmissionGuardMiddleware
from origin_guard.settings import GuardSettings
from origin_guard.verify import GuardConfigError, TokenVerifier
from tests.unit.test_guard_middleware import BROWSER, ROOM, call, echo_app, mint
from waitingroom.tokens import KeySet

NOW = 1_700_000_000.0
HEALTH = "https://queue.example.com/health"
WAITING_ROOM = "https://queue.example.com/rooms/{room}"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Room:
    """A probe target that is up or down, counting probes."""

    def __init__(self) -> None:
        self.up = True
        self.probes = 0

    def __call__(self, url: str) -> None:
        assert url == HEALTH
        self.probes += 1
        if not self.up:
            raise ConnectionRefusedError("connection refused")


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate("k1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def room() -> Room:
    return Room()


def health(room: Room, clock: Clock, after: float | None) -> RoomHealth:
    return RoomHealth(HEALTH, fail_open_after=after, interval=5, probe=room, clock=clock)


def guarded(keys: KeySet, room_health: RoomHealth) -> AdmissionGuardMiddleware:
    verifier = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=lambda: NOW)
    return AdmissionGuardMiddleware(
        echo_app, verifier=verifier, waiting_room_url=WAITING_ROOM, room_health=room_health
    )


def test_a_room_that_answers_changes_nothing(keys: KeySet, room: Room, clock: Clock) -> None:
    app = guarded(keys, health(room, clock, after=0))
    response = call(app, headers=BROWSER)
    assert response.status_code == 302
    assert "x-waitingroom-guard" not in response.headers
    assert call(app, headers={"accept": "application/json"}).status_code == 401
    assert room.probes == 1  # once per interval, not once per request


def test_admitted_visitors_pass_and_cost_no_probe(keys: KeySet, room: Room, clock: Clock) -> None:
    room.up = False
    app = guarded(keys, health(room, clock, after=None))
    response = call(app, cookies={"waitingroom_token": mint(keys)})
    assert response.status_code == 200
    assert response.json()["admission"]["ticket"] == "1700000000.3.17"
    assert "x-waitingroom-guard" not in response.headers
    assert room.probes == 0


def test_fail_closed_sends_new_visitors_to_the_room_and_says_so(
    keys: KeySet, room: Room, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    room.up = False
    app = guarded(keys, health(room, clock, after=None))
    with caplog.at_level(logging.WARNING, logger="origin_guard"):
        for _ in range(3):
            response = call(app, "/shop", headers=BROWSER)
            assert response.status_code == 302
            assert response.headers["x-waitingroom-guard"] == "fail-closed"
            clock.now += 60
        api = call(app, headers={"accept": "application/json"})
    assert api.status_code == 401
    assert api.headers["x-waitingroom-guard"] == "fail-closed"
    said = [r.getMessage() for r in caplog.records]
    assert any("does not answer at https://queue.example.com/health" in m for m in said)
    assert sum("(fail-closed)" in m for m in said) == 1, said  # once, not once per request


def test_fail_open_after_n_seconds_lets_new_visitors_through(
    keys: KeySet, room: Room, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    app = guarded(keys, health(room, clock, after=30))
    assert call(app, headers=BROWSER).status_code == 302
    room.up = False
    clock.now += 5  # the next probe finds the room down
    with caplog.at_level(logging.WARNING, logger="origin_guard"):
        first = call(app, headers=BROWSER)
        assert first.status_code == 302
        assert first.headers["x-waitingroom-guard"] == "fail-closed"
        clock.now += 29
        assert call(app, headers=BROWSER).headers["x-waitingroom-guard"] == "fail-closed"
        clock.now += 1
        passed = call(app, "/shop?id=7", headers=BROWSER)
        assert passed.status_code == 200
        assert passed.headers["x-waitingroom-guard"] == "fail-open"
        assert passed.json()["admission"] is None
        api = call(app, cookies={"waitingroom_token": "forged"})
        assert api.status_code == 200 and api.headers["x-waitingroom-guard"] == "fail-open"
    assert any("(fail-open)" in r.getMessage() for r in caplog.records)

    room.up = True  # back: the next probe, within the interval, closes the door again
    clock.now += 5
    back = call(app, headers=BROWSER)
    assert back.status_code == 302
    assert "x-waitingroom-guard" not in back.headers


def test_fail_open_also_covers_keys_that_cannot_be_loaded(
    keys: KeySet, room: Room, clock: Clock
) -> None:
    def no_keys(url: str) -> dict[str, Any]:
        raise ConnectionRefusedError

    room.up = False
    verifier = TokenVerifier(
        audience=ROOM, jwks_url="https://queue.example.com/jwks", fetch=no_keys, clock=clock
    )
    app = AdmissionGuardMiddleware(
        echo_app, verifier=verifier, room_health=health(room, clock, after=0)
    )
    response = call(app, cookies={"waitingroom_token": mint(keys)})
    assert response.status_code == 200
    assert response.headers["x-waitingroom-guard"] == "fail-open"
    closed = AdmissionGuardMiddleware(
        echo_app, verifier=verifier, room_health=health(room, clock, after=None)
    )
    refused = call(closed, cookies={"waitingroom_token": mint(keys)})
    assert refused.status_code == 503
    assert refused.headers["x-waitingroom-guard"] == "fail-closed"


def test_the_authorizer_fails_open_only_when_chosen(keys: KeySet, room: Room, clock: Clock) -> None:
    room.up = False
    verifier = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=lambda: NOW)
    event = load_event("authorizer-http-api-v2-request")
    event.pop("cookies", None)
    event["headers"].pop("cookie", None)
    event["headers"].pop("authorization", None)
    closed = Authorizer(verifier, room_health=health(room, clock, after=None))
    assert closed(event, None) == {"isAuthorized": False}
    opened = Authorizer(verifier, room_health=health(room, clock, after=0))
    assert opened(event, None) == {"isAuthorized": True, "context": {"guard": "fail-open"}}
    rest = load_event("authorizer-rest-request")
    rest["headers"] = {}
    answer = opened(rest, None)
    assert answer["principalId"] == "fail-open"
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"] == {"guard": "fail-open"}
    room.up = True
    clock.now += 5
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        opened(rest, None)


def test_the_trusted_authorizer_context_carries_its_fail_open(keys: KeySet) -> None:
    verifier = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=lambda: NOW)
    app = AdmissionGuardMiddleware(echo_app, verifier=verifier, trust_authorizer_context=True)

    async def with_event(scope: Any, receive: Any, send: Any) -> None:
        scope["aws.event"] = {"requestContext": {"authorizer": {"lambda": {"guard": "fail-open"}}}}
        await app(scope, receive, send)

    response = call(with_event)
    assert response.status_code == 200
    assert response.headers["x-waitingroom-guard"] == "fail-open"


ENV = {"GUARD_JWKS_URL": "https://queue.example.com/.well-known/jwks.json", "GUARD_AUDIENCE": ROOM}


def test_settings_fail_closed_and_unwatched_by_default() -> None:
    settings = GuardSettings.from_env(ENV)
    assert settings.fail_open_after_seconds is None
    assert settings.room_health() is None
    never = GuardSettings.from_env({**ENV, "GUARD_FAIL_OPEN_AFTER_SECONDS": "never"})
    assert never.room_health() is None


def test_settings_fail_open_probes_the_rooms_health_by_default() -> None:
    settings = GuardSettings.from_env({**ENV, "GUARD_FAIL_OPEN_AFTER_SECONDS": "20"})
    watched = settings.room_health()
    assert watched is not None
    assert watched.url == HEALTH == default_health_url(ENV["GUARD_JWKS_URL"])
    assert watched.fail_open_after == 20 and watched.interval == 5
    closed = GuardSettings.from_env(
        {**ENV, "GUARD_HEALTH_URL": "https://api.example.com/health"}
    ).room_health()
    assert closed is not None and closed.fail_open_after is None


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"GUARD_FAIL_OPEN_AFTER_SECONDS": "soon"}, "GUARD_FAIL_OPEN_AFTER_SECONDS"),
        ({"GUARD_FAIL_OPEN_AFTER_SECONDS": "-1"}, "GUARD_FAIL_OPEN_AFTER_SECONDS"),
        ({"GUARD_HEALTH_URL": "http://queue.example.com/health"}, "GUARD_HEALTH_URL"),
        ({"GUARD_HEALTH_INTERVAL_SECONDS": "0"}, "GUARD_HEALTH_INTERVAL_SECONDS"),
    ],
)
def test_settings_refuse_bad_values(env: dict[str, str], names: str) -> None:
    with pytest.raises(GuardConfigError, match=names):
        GuardSettings.from_env({**ENV, **env})


def test_inline_keys_need_a_health_url_to_fail_open() -> None:
    inline = {"GUARD_JWKS": '{"keys": []}', "GUARD_AUDIENCE": ROOM}
    with pytest.raises(GuardConfigError, match="GUARD_HEALTH_URL"):
        GuardSettings.from_env({**inline, "GUARD_FAIL_OPEN_AFTER_SECONDS": "10"})


def test_the_demo_origin_reads_the_room_down_policy_with_the_guards_own_checks() -> None:
    from origin_guard.settings import room_health_from_env

    jwks = "https://queue.example.com/.well-known/jwks.json"
    health = room_health_from_env({"GUARD_FAIL_OPEN_AFTER_SECONDS": "20"}, jwks)
    assert (health.url, health.fail_open_after, health.interval) == (HEALTH, 20.0, 5.0)
    closed = room_health_from_env({"GUARD_FAIL_OPEN_AFTER_SECONDS": "never"}, jwks)
    assert closed.fail_open_after is None and closed.url == HEALTH, "watched, never opened"
    for bad in ({"GUARD_FAIL_OPEN_AFTER_SECONDS": "-1"}, {"GUARD_HEALTH_INTERVAL_SECONDS": "0"}):
        with pytest.raises(GuardConfigError, match="must be between"):
            room_health_from_env(bad, jwks)
