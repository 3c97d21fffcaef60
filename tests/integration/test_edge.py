"""The local edge (Debian's nginx, devtools/edge.py) in front of the real API and a guarded origin.

What a visitor and the API notice: the public documents come from the edge's cache (`X-Cache:
Hit`, whatever query string is added), anything personal (a join, a status, an answer that sets
a cookie) always reaches the API, a slot that does not exist yet is asked of the API at most about
once a second, and the per-client join limits still see each client behind the edge. How many
requests reached the API is read from the edge's own JSON access log.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mypy_boto3_dynamodb.client import DynamoDBClient
from pydantic import SecretStr

from devtools import dynamodb_local, edge
from devtools.demo_origin import create_app as create_origin
from tests.conftest import ADMIN_KEY, TICKET_SECRET, FakeClock, serve, wired_app
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import Store
from waitingroom.table import ensure_table
from waitingroom.tokens import KeySet

pytestmark = pytest.mark.integration

ROOM = "edge-room"
LIMITED = "edge-limited"


@dataclass
class Edge:
    url: str
    workdir: Path

    def fetches(self, path: str) -> int:
        """Requests for `path` that the edge sent on to an upstream (its access log)."""
        log = self.workdir / edge.ACCESS_LOG
        lines = log.read_text().splitlines() if log.exists() else []
        rows = [json.loads(line) for line in lines]
        return sum(1 for r in rows if r["uri"] == path and r["upstream_addr"])

    def wait_fetches(self, path: str, count: int, timeout: float = 3) -> int:
        """The count once it reaches `count` (nginx logs just after it answers), else the last
        count seen."""
        deadline = time.monotonic() + timeout
        seen = self.fetches(path)
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.02)
            seen = self.fetches(path)
        return seen


@contextmanager
def running_edge(
    api_url: str, origin_url: str, workdir: Path, cache: bool = True
) -> Iterator[Edge]:
    port = dynamodb_local.free_port()
    proc = edge.start(port, api_url, origin_url, workdir, cache=cache)
    try:
        yield Edge(f"http://127.0.0.1:{port}", workdir)
    finally:
        edge.stop(proc)


@dataclass
class Stack:
    edge: Edge
    client: httpx.Client
    service: WaitingRoom
    drainer: Drainer
    clock: FakeClock
    api_url: str


def api_settings(endpoint: str, table: str) -> ApiSettings:
    return ApiSettings(
        dynamodb_endpoint=endpoint,
        table=table,
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
        client_key="forwarded_for",
        trusted_proxies=1,
    )


@pytest.fixture(scope="module")
def stack(
    dynamodb_endpoint: str,
    dynamodb_client: DynamoDBClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    table = f"wr-edge-{time.monotonic_ns()}"
    ensure_table(dynamodb_client, table)
    clock = FakeClock()
    store = Store(dynamodb_client, table, clock=clock)
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    keyset = KeySet.generate("edge-k1")
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="edge", clock=clock)
    drainer.refresh_keys()
    service.put_room(ROOM, {"max_active": 1})
    service.put_room(LIMITED, {"max_active": 1, "max_joins_per_minute_per_client": 1})
    app = wired_app(service, api_settings(dynamodb_endpoint, table))
    with serve(app) as api_url:
        origin = create_origin(
            jwks_url=f"{api_url}/.well-known/jwks.json",
            issuer="waitingroom",
            rooms=[ROOM],
            waiting_room_url="/rooms/{room}",
        )
        with (
            serve(origin) as origin_url,
            running_edge(api_url, origin_url, tmp_path_factory.mktemp("edge")) as front,
            httpx.Client(base_url=front.url, timeout=10) as client,
        ):
            yield Stack(front, client, service, drainer, clock, api_url)


def test_the_room_state_is_answered_from_the_cache_whatever_the_query_string(
    stack: Stack,
) -> None:
    path = f"/rooms/{ROOM}/state"
    first = stack.client.get(path)
    assert first.status_code == 200, first.text
    assert first.json()["room"] == ROOM
    second = stack.client.get(path)
    busted = stack.client.get(path, params={"x": "1"})
    assert second.headers["x-cache"] == "Hit"
    assert busted.headers["x-cache"] == "Hit"
    assert busted.json() == first.json()
    assert stack.edge.wait_fetches(path, 2, timeout=0.3) == 1


def test_a_slot_that_does_not_exist_yet_reaches_the_api_about_once_a_second(
    stack: Stack,
) -> None:
    path = f"/rooms/{ROOM}/slots/{int(stack.clock()) + 10**6}"
    first = stack.client.get(path)
    assert first.status_code == 404, first.text
    asked_at = time.monotonic()
    again = stack.client.get(path)
    assert again.status_code == 404
    assert again.headers["x-cache"] == "Hit"
    assert stack.edge.wait_fetches(path, 1) == 1
    # max-age=1 on nginx's one-second clock: fresh for at most two seconds
    time.sleep(max(0.0, asked_at + 2.1 - time.monotonic()))
    later = stack.client.get(path)
    assert later.status_code == 404
    # the expired copy is answered while it is refreshed from the API, in the background
    assert later.headers["x-cache-status"] in ("STALE", "EXPIRED")
    assert stack.edge.wait_fetches(path, 2) == 2


def test_joins_and_status_polls_always_reach_the_api(stack: Stack) -> None:
    joins = [stack.client.post(f"/rooms/{ROOM}/join") for _ in range(2)]
    assert [r.status_code for r in joins] == [201, 201]
    assert [r.headers["x-cache"] for r in joins] == ["Miss", "Miss"]
    tickets = [r.json()["ticket"] for r in joins]
    assert tickets[0] != tickets[1]
    stack.client.cookies.clear()
    status_path = f"/rooms/{ROOM}/status"
    polls = [
        stack.client.get(status_path, headers={"Authorization": f"Bearer {t}"}) for t in tickets
    ]
    assert [r.status_code for r in polls] == [200, 200]
    assert [r.headers["x-cache"] for r in polls] == ["Miss", "Miss"]
    assert stack.edge.wait_fetches(f"/rooms/{ROOM}/join", 2) == 2
    assert stack.edge.wait_fetches(status_path, 2) == 2


def test_an_answer_that_sets_a_cookie_is_never_served_from_the_cache(stack: Stack) -> None:
    room = "edge-cookie"
    stack.service.put_room(room, {"max_active": 5})
    joined = stack.client.post(f"/rooms/{room}/join")
    assert joined.status_code == 201, joined.text
    stack.clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    stack.drainer.tick_room(room)
    stack.clock.advance(1.01)  # past the API's state cache
    path = f"/rooms/{room}/status"
    # the ticket cookie the join set (no Authorization header): the admitted answer sets the
    # token cookie, every time, from the API
    answers = [stack.client.get(path) for _ in range(2)]
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "admitted"
        assert "waitingroom_token=" in r.headers["set-cookie"]
        assert r.headers["x-cache"] == "Miss"
    assert stack.edge.wait_fetches(path, 2) == 2
    stack.client.cookies.clear()


def test_the_waiting_page_and_its_assets_through_the_edge(stack: Stack) -> None:
    page = stack.client.get(f"/rooms/{ROOM}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:href|src)="(_assets/[^"]+)"', page.text)
    assert assets, page.text
    for asset in assets:
        path = f"/rooms/{asset}"
        first, second = stack.client.get(path), stack.client.get(path)
        assert first.status_code == second.status_code == 200
        assert "immutable" in first.headers["cache-control"]
        assert second.headers["x-cache"] == "Hit"
        assert second.content == first.content
    keys = [stack.client.get("/.well-known/jwks.json") for _ in range(2)]
    assert keys[0].json()["keys"]
    assert keys[1].headers["x-cache"] == "Hit"


def test_everything_else_goes_to_the_guarded_origin(stack: Stack) -> None:
    browser = stack.client.get("/", headers={"Accept": "text/html"})
    assert browser.status_code == 302
    assert browser.headers["location"] == f"/rooms/{ROOM}"
    script = stack.client.get("/api/hello")
    assert script.status_code == 401
    assert script.headers["x-cache"] == "Miss"


def test_per_client_join_limits_see_the_client_behind_the_edge(stack: Stack) -> None:
    path = f"/rooms/{LIMITED}/join"
    assert stack.client.post(path).status_code == 201
    stack.client.cookies.clear()
    # a made-up X-Forwarded-For does not help: the edge appends the address it saw
    spoofed = stack.client.post(path, headers={"X-Forwarded-For": "203.0.113.7"})
    assert spoofed.status_code == 429, spoofed.text
    # another client (as another edge would forward it) has its own allowance
    other = httpx.post(
        f"{stack.api_url}{path}", headers={"X-Forwarded-For": "203.0.113.8"}, timeout=10
    )
    assert other.status_code == 201, other.text


def test_the_state_is_answered_from_the_cache_while_the_api_is_down(
    dynamodb_endpoint: str, dynamodb_client: DynamoDBClient, tmp_path: Path
) -> None:
    table = f"wr-edge-down-{time.monotonic_ns()}"
    ensure_table(dynamodb_client, table)
    service = WaitingRoom(Store(dynamodb_client, table), [TICKET_SECRET], issuer="waitingroom")
    service.put_room(ROOM, {"max_active": 1})
    app = wired_app(service, api_settings(dynamodb_endpoint, table))
    path = f"/rooms/{ROOM}/state"
    with ExitStack() as api:
        api_url = api.enter_context(serve(app))
        with (
            running_edge(api_url, api_url, tmp_path) as front,
            httpx.Client(base_url=front.url, timeout=10) as client,
        ):
            before = client.get(path)
            assert before.status_code == 200, before.text
            asked_at = time.monotonic()
            api.close()  # the API stops; the edge goes on
            time.sleep(max(0.0, asked_at + 2.1 - time.monotonic()))  # the copy has expired
            for _ in range(2):
                during = client.get(path)
                assert during.status_code == 200
                assert during.headers["x-cache"] == "Hit"
                assert during.json() == before.json()
            assert client.post(f"/rooms/{ROOM}/join").status_code == 502


def test_the_baseline_proxy_caches_nothing(stack: Stack, tmp_path: Path) -> None:
    path = f"/rooms/{ROOM}/state"
    with running_edge(stack.api_url, stack.api_url, tmp_path, cache=False) as plain:
        answers = [httpx.get(f"{plain.url}{path}", timeout=10) for _ in range(2)]
        assert [r.status_code for r in answers] == [200, 200]
        assert [r.headers["x-cache"] for r in answers] == ["Miss", "Miss"]
        assert plain.wait_fetches(path, 2) == 2


def test_the_edge_keeps_the_state_to_the_end_of_the_second_it_fetched_it(stack: Stack) -> None:
    """max-age=1 on nginx's whole-second clock would keep it up to two seconds: every other
    settle would reach visitors a second late."""
    path = f"/rooms/{ROOM}/state"
    stack.client.get(path)  # whatever was cached before
    time.sleep(math.ceil(time.time()) - time.time() + 0.05)  # just past a second's start
    fetched = stack.edge.fetches(path)
    first = stack.client.get(path)
    assert first.headers["x-cache-status"] in ("MISS", "EXPIRED", "STALE")
    assert "x-accel-expires" not in first.headers  # nginx keeps it to itself
    time.sleep(0.3)
    assert stack.client.get(path).headers["x-cache-status"] == "HIT"
    assert stack.edge.wait_fetches(path, fetched + 1) == fetched + 1
    time.sleep(math.ceil(time.time()) - time.time() + 0.05)  # into the next second
    stack.client.get(path)
    assert stack.edge.wait_fetches(path, fetched + 2) == fetched + 2  # fetched again
