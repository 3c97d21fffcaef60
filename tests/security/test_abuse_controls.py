"""Abuse controls at join and on the admin routes, on DynamoDB Local.

Per-client ticket and join-rate limits (one conditional UpdateItem per join, shared by every
container), the proof-of-work challenge, and the rate limit on failed admin key checks. Each
test fails when its protection is taken away.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from tests.conftest import TICKET_SECRET, Api, FakeClock
from waitingroom.api.deps import client_address, client_key, source_ip
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import Store
from waitingroom.tokens import Challenge, sign_challenge, solve_challenge, solves

pytestmark = pytest.mark.integration

ROOM = "drop"


def _room(api: Api, **fields: Any) -> None:
    r = api.client.put(f"/admin/rooms/{ROOM}", json={"max_active": 5, **fields}, headers=api.admin)
    assert r.status_code in (200, 201), r.text


def _use(api: Api, **changes: Any) -> ApiSettings:
    settings: ApiSettings = api.app.state.settings.model_copy(update=changes)
    api.app.state.settings = settings
    return settings


def _join(api: Api, ip: str = "203.0.113.7", **headers: str) -> Any:
    return api.client.post(
        f"/rooms/{ROOM}/join", headers={"X-Forwarded-For": f"{ip}, 198.51.100.1", **headers}
    )


# -- per-client limits ----------------------------------------------------------------------


def test_a_client_gets_at_most_its_tickets_and_others_still_join(api: Api, store: Store) -> None:
    _use(api, client_key="forwarded_for", trusted_proxies=2)
    _room(api, max_tickets_per_client=2)
    assert [_join(api).status_code for _ in range(2)] == [201, 201]
    r = _join(api)
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_tickets"
    assert "at most 2 tickets per client" in r.json()["message"]
    assert r.headers["Retry-After"].isdigit()
    assert _join(api, ip="203.0.113.8").status_code == 201  # another client
    # the limit's item holds a keyed hash of the client, never its address
    items = store.client.scan(TableName=store.table)["Items"]
    clients = [i for i in items if "#CLIENT#" in i["pk"]["S"]]
    assert len(clients) == 2
    assert "203.0.113" not in repr(items)


def test_joins_per_minute_per_client(api: Api, clock: FakeClock) -> None:
    _use(api, client_key="forwarded_for", trusted_proxies=2)
    _room(api, max_joins_per_minute_per_client=3)
    clock.now = (clock.now // 60) * 60 + 10  # 50 s left in this minute
    assert [_join(api).status_code for _ in range(3)] == [201, 201, 201]
    r = _join(api)
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_joins"
    assert "at most 3 joins per minute per client" in r.json()["message"]
    assert r.headers["Retry-After"] == "50"
    clock.advance(60)
    assert _join(api).status_code == 201


def test_the_limits_hold_across_containers(api: Api, store: Store, clock: FakeClock) -> None:
    _room(api, max_tickets_per_client=3)
    other = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    for svc in (api.service, other, api.service):
        svc.join(ROOM, None, client="ip:192.0.2.1")
    with pytest.raises(Exception, match="at most 3 tickets"):
        other.join(ROOM, None, client="ip:192.0.2.1")


def test_an_idempotent_retry_is_not_counted(api: Api) -> None:
    _use(api, client_key="forwarded_for", trusted_proxies=2)
    _room(api, max_tickets_per_client=1)
    first = _join(api, **{"Idempotency-Key": "same"})
    again = _join(api, **{"Idempotency-Key": "same"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["ticket"] == first.json()["ticket"]


def test_limits_are_off_by_default(api: Api) -> None:
    _room(api)
    assert {_join(api).status_code for _ in range(12)} == {201}


def test_a_spoofed_forwarded_for_does_not_change_who_you_are(api: Api) -> None:
    _use(api, client_key="forwarded_for", trusted_proxies=2)
    _room(api, max_tickets_per_client=1)
    assert _join(api, ip="1.1.1.1, 203.0.113.7").status_code == 201
    assert _join(api, ip="2.2.2.2, 203.0.113.7").status_code == 429  # same real address


def test_behind_cloudfront_the_viewer_address_is_the_client(api: Api) -> None:
    from fastapi.testclient import TestClient

    from tests.integration.test_operators import AwsEventMiddleware

    _use(api, client_key="cloudfront_viewer")
    _room(api, max_tickets_per_client=1)
    url = {"requestContext": {"domainName": "abc.lambda-url.eu-west-1.on.aws", "http": {}}}
    gateway = {
        "requestContext": {
            "domainName": "x.execute-api.eu-west-1.amazonaws.com",
            "http": {"sourceIp": "192.0.2.9"},
        }
    }

    def join(event: dict[str, Any], viewer: str) -> int:
        with TestClient(AwsEventMiddleware(api.app, event)) as c:
            r = c.post(f"/rooms/{ROOM}/join", headers={"CloudFront-Viewer-Address": viewer})
            return r.status_code

    assert join(url, "203.0.113.7:4711") == 201
    assert join(url, "203.0.113.7:5000") == 429  # another port, the same viewer
    assert join(url, "[2001:db8::1]:4711") == 201  # another viewer (IPv6)
    assert join(url, "[2001:db8::1]:4712") == 429
    # straight to API Gateway the header is anybody's: the source IP decides
    assert join(gateway, "198.51.100.1:1") == 201
    assert join(gateway, "198.51.100.2:1") == 429


def test_the_cookie_client_key(api: Api) -> None:
    _use(api, client_key="cookie")
    _room(api, max_tickets_per_client=1)
    first = api.client.post(f"/rooms/{ROOM}/join")
    assert first.status_code == 201
    assert "waitingroom_client=" in first.headers["set-cookie"]
    assert api.client.post(f"/rooms/{ROOM}/join").status_code == 429  # the cookie came back
    api.client.cookies.clear()
    assert api.client.post(f"/rooms/{ROOM}/join").status_code == 201  # a new browser


def _request(scope: dict[str, Any]) -> Request:
    return Request({"type": "http", "headers": [], "client": ("127.0.0.9", 5), **scope})


def test_source_ip_from_api_gateway_events() -> None:
    v2 = {"requestContext": {"http": {"sourceIp": "198.51.100.20"}}}
    v1 = {"requestContext": {"identity": {"sourceIp": "198.51.100.21"}}}
    assert source_ip(_request({"aws.event": v2})) == "198.51.100.20"
    assert source_ip(_request({"aws.event": v1})) == "198.51.100.21"
    assert source_ip(_request({})) == "127.0.0.9"
    settings = ApiSettings(
        ticket_secret=SecretStr("x" * 16), client_key="forwarded_for", trusted_proxies=1
    )
    spoofed = _request({"headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.22")]})
    assert client_address(spoofed, settings) == "198.51.100.22"
    # fewer hops than trusted proxies: the request did not come through them
    assert client_address(_request({}), settings) == "127.0.0.9"
    assert client_key(_request({}), settings.model_copy(update={"client_key": "source_ip"})) == (
        "ip:127.0.0.9",
        None,
    )


# -- proof of work --------------------------------------------------------------------------


def _challenge(api: Api, room: str = ROOM) -> dict[str, Any]:
    r = api.client.get(f"/rooms/{room}/challenge")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _solved(api: Api) -> dict[str, str]:
    ch = _challenge(api)
    solution = solve_challenge(ch["challenge"], ch["difficulty_bits"])
    return {"X-Challenge": ch["challenge"], "X-Challenge-Solution": solution}


def test_a_room_with_a_proof_of_work_refuses_a_join_without_one(api: Api) -> None:
    _room(api, challenge_bits=8)
    r = api.client.post(f"/rooms/{ROOM}/join")
    assert r.status_code == 401
    assert r.json()["error"] == "challenge_required"
    assert "8 zero bits" in r.json()["message"]
    ch = _challenge(api)
    assert ch["difficulty_bits"] == 8
    r = api.client.post(f"/rooms/{ROOM}/join", headers=_solved(api))
    assert r.status_code == 201, r.text


def test_a_replayed_solution_gets_the_same_ticket(api: Api, clock: FakeClock) -> None:
    _room(api, challenge_bits=6)
    headers = _solved(api)
    first = api.client.post(f"/rooms/{ROOM}/join", headers=headers)
    again = api.client.post(f"/rooms/{ROOM}/join", headers={**headers, "Idempotency-Key": "k2"})
    assert again.json()["ticket"] == first.json()["ticket"]
    clock.advance(3600)  # even once the challenge has expired
    late = api.client.post(f"/rooms/{ROOM}/join", headers=headers)
    assert late.status_code == 201 and late.json()["ticket"] == first.json()["ticket"]


@pytest.mark.parametrize("case", ["wrong", "altered", "other_room", "expired", "too_easy"])
def test_bad_challenges_are_refused_clearly(api: Api, clock: FakeClock, case: str) -> None:
    _room(api, challenge_bits=6)
    headers = _solved(api)
    if case == "wrong":
        bad = next(str(n) for n in range(1000) if not solves(headers["X-Challenge"], str(n), 6))
        headers["X-Challenge-Solution"] = bad
        expected = (400, "wrong_solution")
    elif case == "altered":
        body, sig = headers["X-Challenge"].split(".")
        headers["X-Challenge"] = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + sig
        expected = (401, "bad_challenge")
    elif case == "other_room":
        _room_named(api, "other", challenge_bits=6)
        ch = _challenge(api, "other")
        headers = {
            "X-Challenge": ch["challenge"],
            "X-Challenge-Solution": solve_challenge(ch["challenge"], 6),
        }
        expected = (401, "bad_challenge")
    elif case == "expired":
        clock.advance(301)
        expected = (401, "challenge_expired")
    else:  # signed by us, but easier than the room asks now
        text = sign_challenge(TICKET_SECRET, Challenge(ROOM, "ab" * 16, int(clock()) + 60, 1))
        headers = {"X-Challenge": text, "X-Challenge-Solution": solve_challenge(text, 1)}
        expected = (401, "challenge_expired")
    r = api.client.post(f"/rooms/{ROOM}/join", headers=headers)
    assert (r.status_code, r.json()["error"]) == expected, r.text
    assert r.json()["message"]


def _room_named(api: Api, room: str, **fields: Any) -> None:
    r = api.client.put(f"/admin/rooms/{room}", json={"max_active": 5, **fields}, headers=api.admin)
    assert r.status_code in (200, 201), r.text


def test_a_challenge_is_not_a_ticket(api: Api) -> None:
    _room(api, challenge_bits=4)
    ch = _challenge(api)["challenge"]
    r = api.client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {ch}"})
    assert r.status_code == 401 and r.json()["error"] == "bad_ticket"


# -- admin key guessing ---------------------------------------------------------------------


def test_failed_admin_attempts_are_rate_limited(api: Api, clock: FakeClock) -> None:
    _use(api, admin_max_failures_per_minute=3)
    wrong = {"Authorization": "Bearer guess"}
    codes = [api.client.get("/admin/rooms/x/stats", headers=wrong).status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    r = api.client.get("/admin/rooms/x/stats", headers=api.admin)  # even the right key now
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "too_many_failures"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    clock.advance(61)
    assert api.client.get("/admin/rooms/x/stats", headers=api.admin).status_code == 404
