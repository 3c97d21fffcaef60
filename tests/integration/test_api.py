"""The HTTP contract as browsers, origins and operators meet it, on DynamoDB Local."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import TICKET_SECRET, Api, FakeClock, wired_app
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings, StoreSettings
from waitingroom.store import Store, make_client

pytestmark = pytest.mark.integration


def make_room(api: Api, room: str = "demo", **config: object) -> None:
    body = {"max_active": 2, "origin_url": "http://127.0.0.1:9/"} | config
    r = api.client.put(f"/admin/rooms/{room}", json=body, headers=api.admin)
    assert r.status_code in (200, 201), r.text


def test_join_poll_admit_complete_over_http(api: Api, drainer: Drainer, clock: FakeClock) -> None:
    make_room(api)
    r = api.client.post("/rooms/demo/join")
    assert r.status_code == 201
    body = r.json()
    assert set(body) >= {"ticket", "number", "position", "eta_seconds", "poll_after_seconds"}
    assert body["position"] == 1
    assert r.headers["cache-control"] == "no-store"
    assert "waitingroom_ticket=" in r.headers["set-cookie"]
    # a second visitor joins behind
    api.client.cookies.clear()
    second = api.client.post("/rooms/demo/join").json()
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("demo")
    clock.advance(1.01)

    r = api.client.get("/rooms/demo/status", headers={"Authorization": f"Bearer {body['ticket']}"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "admitted"
    token = r.json()["token"]
    assert f"waitingroom_token={token}" in r.headers["set-cookie"]
    assert r.json()["origin_url"] == "http://127.0.0.1:9/"
    # the ticket cookie alone works too (a browser never sees the header)
    api.client.cookies.clear()
    api.client.cookies.set("waitingroom_ticket", second["ticket"])
    r = api.client.get("/rooms/demo/status")
    assert r.json()["state"] == "admitted"

    r = api.client.post("/rooms/demo/complete", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204
    r = api.client.get("/rooms/demo/status", headers={"Authorization": f"Bearer {body['ticket']}"})
    assert r.status_code == 410
    assert r.json()["error"] == "completed"


def test_jwks_is_served_once_the_drainer_published_it(api: Api, drainer: Drainer) -> None:
    r = api.client.get("/.well-known/jwks.json")
    assert r.status_code == 503 and "Retry-After" in r.headers
    drainer.refresh_keys()
    api.service.jwks(refetch=True)
    r = api.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert [k["kid"] for k in r.json()["keys"]] == ["test-k1"]
    assert all("d" not in k for k in r.json()["keys"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "post",
            "/rooms/demo/join",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        ("post", "/rooms/nope/join", {}, 404, "unknown_room"),
        ("post", "/rooms/Bad_Room!/join", {}, 400, "invalid_room"),
        (
            "post",
            "/rooms/demo/join",
            {
                "content": b"[" + b"1," * 20_000 + b"1]",
                "headers": {"content-type": "application/json"},
            },
            413,
            "body_too_large",
        ),
        (
            "post",
            "/rooms/demo/join",
            {"headers": {"Idempotency-Key": "has spaces"}},
            400,
            "bad_idempotency_key",
        ),
        ("get", "/rooms/demo/status", {}, 401, "missing_ticket"),
        (
            "get",
            "/rooms/demo/status",
            {"headers": {"Authorization": "Bearer garbage"}},
            401,
            "bad_ticket",
        ),
        (
            "post",
            "/rooms/demo/complete",
            {"headers": {"Authorization": "Bearer not.a.jwt"}},
            401,
            "bad_token",
        ),
        ("post", "/rooms/demo/complete", {}, 401, "missing_token"),
        ("get", "/admin/rooms/demo/stats", {}, 401, "unauthorized"),
        ("get", "/admin/rooms/nope/stats", {}, 401, "unauthorized"),
        (
            "get",
            "/admin/rooms/demo/stats",
            {"headers": {"Authorization": "Bearer wrong"}},
            401,
            "unauthorized",
        ),
        ("put", "/admin/rooms/demo", {"json": {"max_active": -1}}, 401, "unauthorized"),
        ("get", "/no/such/route", {}, 404, "not_found"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    api: Api, method: str, path: str, kwargs: dict[str, object], status: int, code: str
) -> None:
    make_room(api)
    api.client.cookies.clear()
    r = getattr(api.client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert r.json()["message"]
    assert "Traceback" not in r.text


def test_a_ticket_for_another_room_is_refused(api: Api) -> None:
    make_room(api, "a")
    make_room(api, "b")
    ticket = api.client.post("/rooms/a/join").json()["ticket"]
    api.client.cookies.clear()
    r = api.client.get("/rooms/b/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 401 and "room 'a'" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"max_active": 0}, "max_active"),
        ({"max_active": 5, "colour": "red"}, "colour"),
        ({"max_active": 5, "origin_url": "not a url"}, "origin_url"),
        ({"max_active": 5, "session_seconds": -3}, "session_seconds"),
        ({"max_admits_per_minute": 5}, "max_active"),
    ],
)
def test_invalid_room_config_is_a_422_saying_what_to_fix(
    api: Api, body: dict[str, object], fragment: str
) -> None:
    r = api.client.put("/admin/rooms/fresh", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["message"]


def test_operators_create_tune_pause_and_read_stats(
    api: Api, drainer: Drainer, clock: FakeClock
) -> None:
    r = api.client.put("/admin/rooms/live", json={"max_active": 3}, headers=api.admin)
    assert r.status_code == 201 and r.json()["version"] == 1
    again = api.client.put("/admin/rooms/live", json={"max_active": 3}, headers=api.admin)
    assert again.status_code == 200 and again.json()["version"] == 1  # idempotent
    r = api.client.put("/admin/rooms/live", json={"max_active": 7}, headers=api.admin)
    assert r.json()["max_active"] == 7 and r.json()["session_seconds"] == 600
    for _ in range(4):
        api.client.post("/rooms/live/join")
    assert (
        api.client.post("/admin/rooms/live/pause", headers=api.admin).json()["status"] == "paused"
    )
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("live")
    stats = api.client.get("/admin/rooms/live/stats", headers=api.admin).json()
    assert (stats["waiting"], stats["active"], stats["status"]) == (4, 0, "paused")
    api.client.post("/admin/rooms/live/resume", headers=api.admin)
    r = api.client.post("/admin/rooms/live/drain", headers=api.admin)
    assert r.status_code == 202
    drainer.tick_room("live")
    stats = api.client.get("/admin/rooms/live/stats", headers=api.admin).json()
    assert (stats["waiting"], stats["active"], stats["admitted_total"]) == (0, 4, 4)
    api.client.post("/admin/rooms/live/close", headers=api.admin)
    clock.advance(3)
    r = api.client.post("/rooms/live/join")
    assert r.status_code == 409 and r.json()["error"] == "room_closed"


def test_openapi_docs_are_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/rooms/{room}/join", "/rooms/{room}/status", "/rooms/{room}/complete"} <= set(paths)


@pytest.fixture
def api_without_store(clock: FakeClock) -> Iterator[TestClient]:
    """The API pointed at a port where nothing listens: DynamoDB is unreachable."""
    from devtools import dynamodb_local

    endpoint = f"http://127.0.0.1:{dynamodb_local.free_port()}"
    store = Store(make_client(StoreSettings(dynamodb_endpoint=endpoint)), "waitingroom", clock)
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    settings = ApiSettings(
        dynamodb_endpoint=endpoint,
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr("k"),
    )
    with TestClient(wired_app(service, settings), raise_server_exceptions=False) as client:
        yield client


def test_a_store_outage_is_a_503_with_retry_after(api_without_store: TestClient) -> None:
    for method, path in [("post", "/rooms/demo/join"), ("get", "/admin/rooms/demo/stats")]:
        r = getattr(api_without_store, method)(path, headers={"Authorization": "Bearer k"})
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
        assert r.json()["error"] == "unavailable"
    # the guard's probe sees it too (its opt-in fail-open needs that)
    health = api_without_store.get("/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.json()["error"] == "unavailable"


def test_health_is_200_while_the_store_answers(api: Api) -> None:
    r = api.client.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
