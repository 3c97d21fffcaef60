"""GET /health follows the store: the origin guard's probe must see a room that cannot answer."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import TICKET_SECRET, FakeClock, wired_app
from waitingroom.api.health import CACHE_SECONDS, StoreHealth
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import StoreUnavailable


class FlakyPing:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("get_item: throttled")


def test_the_store_is_pinged_at_most_once_per_cache_period_and_its_outage_is_seen() -> None:
    ping, clock = FlakyPing(), FakeClock()
    health = StoreHealth(ping, clock=clock)
    assert all(health.up() for _ in range(50)) and ping.calls == 1
    ping.down = True
    assert health.up(), "the last answer holds for the cache period"
    clock.advance(CACHE_SECONDS)
    assert not health.up() and not health.up() and ping.calls == 2
    ping.down = False
    clock.advance(CACHE_SECONDS)
    assert health.up() and ping.calls == 3


def test_a_ping_that_fails_in_an_unexpected_way_is_not_up() -> None:
    def denied() -> None:
        raise PermissionError("AccessDenied")

    assert not StoreHealth(denied).up()


def test_health_is_a_503_with_retry_after_while_the_store_is_down(
    memory_service: WaitingRoom,
) -> None:
    ping = FlakyPing()
    settings = ApiSettings(ticket_secret=SecretStr(TICKET_SECRET.decode()), cookie_secure=False)
    app = wired_app(memory_service, settings)
    app.state.store_health = StoreHealth(ping, ttl=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.get("/health")
        assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
        assert ok.headers["cache-control"] == "no-store"
        ping.down = True
        down = client.get("/health")
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert down.json()["error"] == "unavailable" and "retry" in down.json()["message"]
