"""What operators rely on: an audit trail, IAM-only admin in AWS, room defaults, wait figures."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, FakeClock, wired_app
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.observability import MetricsBuffer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import Store

pytestmark = pytest.mark.integration


def test_every_change_lands_in_the_audit_trail(api: Api, clock: FakeClock) -> None:
    for method, path, body in [
        ("put", "/admin/rooms/show", {"max_active": 10}),
        ("put", "/admin/rooms/show", {"max_active": 25}),
        ("put", "/admin/rooms/show", {"max_active": 25}),  # no change, no entry
        ("post", "/admin/rooms/show/pause", None),
        ("post", "/admin/rooms/show/drain", None),
    ]:
        getattr(api.client, method)(path, headers=api.admin, **({"json": body} if body else {}))
        clock.advance(1)
    r = api.client.get("/admin/rooms/show/audit", headers=api.admin)
    assert r.status_code == 200
    entries = r.json()["entries"]
    assert [e["action"] for e in entries] == ["drain", "pause", "update", "create"]
    assert entries[2]["details"] == {"changes": {"max_active": [10, 25]}}
    assert entries[1]["details"] == {"changes": {"status": ["open", "paused"]}}
    assert all(e["actor"].startswith("admin-key:") and e["at"] > 0 for e in entries)
    assert "test-admin-key" not in r.text  # the key itself is never written down
    assert api.client.get("/admin/rooms/show/audit").status_code == 401


class AwsEventMiddleware:
    """Puts an API Gateway event in the scope, as Mangum does."""

    def __init__(self, app: Any, event: dict[str, Any]) -> None:
        self.app = app
        self.event = event

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app({**scope, "aws.event": self.event}, receive, send)


def test_in_aws_admin_routes_need_the_iam_identity_api_gateway_passes_on(
    service: WaitingRoom, api_settings: ApiSettings
) -> None:
    settings = api_settings.model_copy(update={"admin_auth": "iam", "admin_key": None})
    app = wired_app(service, settings)
    with TestClient(app, raise_server_exceptions=False) as plain:
        r = plain.put("/admin/rooms/iam", json={"max_active": 3})
        assert r.status_code == 401  # no IAM identity: refused even with IAM mode on
    arn = "arn:aws:iam::123456789012:user/operator"
    event = {"requestContext": {"authorizer": {"iam": {"userArn": arn}}}}
    with TestClient(AwsEventMiddleware(app, event), raise_server_exceptions=False) as signed:
        r = signed.put("/admin/rooms/iam", json={"max_active": 3})
        assert r.status_code == 201, r.text
        entries = signed.get("/admin/rooms/iam/audit").json()["entries"]
        assert entries[0]["actor"] == arn
    # the same identity through the API function's URL (there for CloudFront): refused
    via_url = {
        "requestContext": {
            **event["requestContext"],
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
        }
    }
    with TestClient(AwsEventMiddleware(app, via_url), raise_server_exceptions=False) as signed:
        r = signed.put("/admin/rooms/iam", json={"max_active": 4})
        assert r.status_code == 401


def test_room_defaults_fill_what_a_new_room_leaves_out(store: Store, clock: FakeClock) -> None:
    svc = WaitingRoom(
        store,
        [b"x" * 32],
        issuer="waitingroom",
        clock=clock,
        room_defaults=ApiSettings(
            ticket_secret="x" * 32,  # type: ignore[arg-type]
            default_max_active=300,
            default_session_seconds=120,
        ).room_defaults(),
    )
    cfg, created = svc.put_room("defaults", {})
    assert created and (cfg.max_active, cfg.session_seconds) == (300, 120)
    cfg, _ = svc.put_room("explicit", {"max_active": 5})
    assert (cfg.max_active, cfg.session_seconds) == (5, 120)


def test_stats_report_time_in_queue(
    service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room("stats", {"max_active": 4})
    for _ in range(8):
        service.join("stats", None)
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("stats")
    stats = service.stats("stats")
    assert stats["admitted_total"] == 4 and stats["waiting"] == 4
    assert stats["wait_seconds_p50"] == pytest.approx(1 + SETTLE_DELAY_SECONDS, abs=1.01)
    assert stats["wait_seconds_p90"] >= stats["wait_seconds_p50"]
    assert stats["admissions_per_minute"] > 0
    assert stats["estimated_seconds_to_empty"] is not None


def test_joins_polls_and_admissions_reach_the_metrics(
    store: Store, clock: FakeClock, make_drainer: Any
) -> None:
    emitted: list[tuple[str, str, dict[str, float], dict[str, float]]] = []

    def emit(service: str, room: str, c: Any, g: Any) -> None:
        emitted.append((service, room, dict(c), dict(g)))

    api_metrics = MetricsBuffer("api", emit, flush_seconds=60, clock=clock)
    svc = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock, metrics=api_metrics)
    svc.put_room("m", {"max_active": 1})
    tickets = [svc.join("m", None) for _ in range(3)]
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer: Drainer = make_drainer()
    drainer.metrics = MetricsBuffer("drainer", emit, flush_seconds=0, clock=clock)
    drainer.tick_room("m")
    assert emitted[-1][:2] == ("drainer", "m")
    gauges = emitted[-1][3]
    assert {k: gauges[k] for k in ("admissions", "waiting", "active", "joins")} == {
        "admissions": 1,
        "waiting": 2,
        "active": 1,
        "joins": 3,
    }
    clock.advance(1.01)
    for t in tickets:
        svc.poll("m", t.ticket)
    clock.advance(60)
    api_metrics.flush()
    assert emitted[-1] == ("api", "m", {"joins": 3.0, "polls": 3.0, "pickups": 1.0}, {})
