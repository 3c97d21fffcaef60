"""The Python client: the place it computes from the public documents is the server's own, and
its visitor waits as CLIENTS.md says (documents while waiting, /status only to check a stored
ticket and to pick the token up, back-off that honours Retry-After)."""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, TICKET_SECRET, FakeClock
from waitingroom import client
from waitingroom.api import create_app
from waitingroom.domain import RECENT_SLOTS, SETTLE_DELAY_SECONDS, settle_look_seconds
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Waiting, WaitingRoom
from waitingroom.settings import ApiSettings


class AppTransport:
    """The real app over the in-memory store, answering the visitor's calls; counts them."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.calls: list[client.Call] = []
        self.faults: list[client.Reply] = []  # answered instead of the app, first in first out

    def __call__(self, call: client.Call) -> client.Reply:
        self.calls.append(call)
        if self.faults:
            return self.faults.pop(0)
        r = self.http.request(call.method, call.path, headers=dict(call.headers), json=call.json)
        self.http.cookies.clear()  # a client that follows CLIENTS.md sends no cookies
        body = r.json() if r.content else None
        return client.Reply(r.status_code, dict(r.headers), body)

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]


@pytest.fixture
def http(memory_service: WaitingRoom) -> Iterator[TestClient]:
    settings = ApiSettings(
        dynamodb_endpoint="http://127.0.0.1:9",  # never used: the service holds its store
        table="unused",
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
    )
    with TestClient(create_app(memory_service, settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def transport(http: TestClient) -> AppTransport:
    return AppTransport(http)


def documents(http: TestClient, text: str, now: float | None = None) -> client.Place:
    """The client's place for a ticket, from the two documents the app serves (at `now`)."""
    ticket = client.read_ticket(text)
    state = client.read_state(http.get(f"/rooms/{ticket.room}/state").json())
    slot = None
    if client.needs_slot(ticket, state):
        r = http.get(f"/rooms/{ticket.room}/slots/{ticket.slot}")
        slot = client.read_slot(r.json()) if r.status_code == 200 else None
    return client.place(ticket, state, slot, now)


def settle_and_tick(clock: FakeClock, drainer: Drainer) -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer.tick_room("demo")
    clock.advance(1.1)  # past the service's cached room state


def assert_same_place(svc: WaitingRoom, http: TestClient, text: str) -> client.Place:
    mine = documents(http, text, svc.ctx.clock())
    theirs = svc.poll("demo", text)
    if isinstance(theirs, Admitted):
        assert mine.kind == "turn"
    else:
        assert (mine.position, mine.exact) == (theirs.position, theirs.exact), text
        if mine.kind != "prequeue":  # the pre-queue shows the opening time instead
            assert mine.eta == theirs.eta_seconds
    return mine


# -- the pure functions -------------------------------------------------------------------------


def test_a_ticket_is_read_without_its_secret() -> None:
    payload = base64.urlsafe_b64encode(b"demo:1764505230:7:3:1764505230412").rstrip(b"=")
    t = client.read_ticket(payload.decode() + ".bWFj")
    assert (t.room, t.slot, t.shard, t.k, t.joined_ms) == ("demo", 1764505230, 7, 3, 1764505230412)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-dot",
        "a.b.c",
        ".mac",
        "!!!.mac",
        base64.urlsafe_b64encode(b"demo:1:2").decode() + ".m",
    ],
)
def test_a_malformed_ticket_is_refused(text: str) -> None:
    with pytest.raises(client.BadDocument):
        client.read_ticket(text)


def test_the_places_from_the_documents_are_the_servers_for_every_ticket(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, http: TestClient
) -> None:
    memory_service.put_room("demo", {"max_active": 5, "shards": 4})
    tickets: list[str] = []
    for n in (9, 1, 14):  # three slots of joins
        tickets += [memory_service.join("demo", None).ticket for _ in range(n)]
        clock.advance(1)
    clock.advance(0.1)
    before = [assert_same_place(memory_service, http, t) for t in tickets]
    assert {p.kind for p in before} == {"estimate"}  # nothing settled yet: estimates, as told

    settle_and_tick(clock, memory_drainer)
    after = [assert_same_place(memory_service, http, t) for t in tickets]
    assert sum(p.kind == "turn" for p in after) == 5
    assert sorted(p.position for p in after if p.kind == "waiting") == list(range(1, 20))


def test_a_paused_room_gives_no_wait_from_the_documents_nor_the_server(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, http: TestClient
) -> None:
    memory_service.put_room("demo", {"max_active": 2, "shards": 4})
    tickets = [memory_service.join("demo", None).ticket for _ in range(6)]
    settle_and_tick(clock, memory_drainer)
    memory_service.put_room("demo", {"status": "paused"})
    clock.advance(3)
    tickets.append(memory_service.join("demo", None).ticket)  # an estimate, while paused
    places = [assert_same_place(memory_service, http, t) for t in tickets]
    waiting = [p for p in places if p.kind in ("waiting", "estimate")]
    assert len(waiting) == 5 and all(p.eta is None for p in waiting)


def test_a_pre_queue_places_itself_before_and_after_the_draw(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, http: TestClient
) -> None:
    opens_at = clock.now + 40
    memory_service.put_room(
        "demo", {"max_active": 3, "shards": 3, "status": "scheduled", "opens_at": opens_at}
    )
    tickets = [memory_service.join("demo", None).ticket for _ in range(8)]
    clock.advance(1)
    tickets += [memory_service.join("demo", None).ticket for _ in range(9)]
    settle_and_tick(clock, memory_drainer)
    before = [assert_same_place(memory_service, http, t) for t in tickets]
    assert {(p.kind, p.position) for p in before} == {("prequeue", 17)}
    state = client.read_state(http.get("/rooms/demo/state").json())
    look = client.next_look_seconds(before[0], state, clock.now, u=0.5)
    assert 30 <= look <= 60  # 40 s before the opening: a look every half minute at most

    clock.now = opens_at + 1 + SETTLE_DELAY_SECONDS + 0.01
    memory_drainer.tick_room("demo")
    memory_drainer.tick_room("demo")
    clock.advance(1.1)
    after = [assert_same_place(memory_service, http, t) for t in tickets]
    assert sum(p.kind == "turn" for p in after) == 3
    assert sorted(p.position for p in after if p.kind == "waiting") == list(range(1, 15))


def test_an_older_state_never_moves_a_place_back() -> None:
    doc: dict[str, Any] = {
        "room": "demo", "version": 7, "status": "open", "slot_seconds": 1,
        "settled_through": 100, "settled_total": 50, "consumed": 20, "waiting": 30,
        "join_rate_per_slot": 2.0, "admit_rate": 1.0, "expected_rate": 1.0,
        "pickup_seconds": 120,
    }  # fmt: skip
    held = client.read_state(doc)
    older = client.read_state({**doc, "version": 6, "consumed": 10})
    assert client.newest(held, older) is held
    newer = client.read_state({**doc, "version": 8, "consumed": 25})
    assert client.newest(held, newer) is newer
    with pytest.raises(client.BadDocument):
        client.read_state({**doc, "consumed": "many"})


def test_looks_are_spaced_by_the_wait_and_sooner_when_unsettled() -> None:
    state = client.read_state(
        {
            "room": "demo", "version": 1, "status": "open", "slot_seconds": 1,
            "settled_through": 100, "settled_total": 0, "consumed": 0, "waiting": 0,
            "join_rate_per_slot": 0, "admit_rate": 1.0, "expected_rate": 1.0,
            "pickup_seconds": 300,
        }
    )  # fmt: skip
    far = client.Place("waiting", 600, True, 600)
    near = client.Place("waiting", 3, True, 3)
    guess = client.Place("estimate", 600, False, 600)
    assert client.next_look_seconds(far, state, 0, 0) == 60  # capped at a minute
    assert client.next_look_seconds(near, state, 0, 0) == 2
    assert 1 <= client.next_look_seconds(guess, state, 0, 0) <= 3


# -- the visitor --------------------------------------------------------------------------------


def run(
    visitor: client.Visitor,
    transport: AppTransport,
    clock: FakeClock,
    drainer: Drainer,
    *,
    each_second: Callable[[float], None] | None = None,
    shown: list[client.Place] | None = None,
) -> list[float]:
    """Drive a visitor on the fake clock, the drainer ticking every second; the waits taken.
    `shown` collects each new place the visitor would show."""
    waits: list[float] = []
    last_tick = clock.now
    while (call := visitor.next()) is not None:
        assert len(waits) < 500, "the visitor never finished"
        waits.append(call.after)
        target = clock.now + call.after
        while last_tick + 1 <= target:
            last_tick += 1
            clock.now = last_tick
            drainer.tick_room("demo")
            if each_second is not None:
                each_second(last_tick)
        clock.now = target
        visitor.answer(transport(call), clock.now)
        if shown is not None and visitor.place is not None and visitor.place not in shown[-1:]:
            shown.append(visitor.place)
    return waits


def test_a_visitor_waits_on_the_documents_and_calls_status_once_to_pick_up(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 2, "session_seconds": 600, "shards": 4})
    ahead = [memory_service.join("demo", None).ticket for _ in range(6)]
    clock.advance(1)  # the visitor joins a slot later: behind all six, whatever the shards
    visitor = client.Visitor("demo", rng=random.Random(1))
    shown: list[client.Place] = []

    def serve_one(now: float) -> None:
        if now % 5 == 0:  # the people ahead are served, one by one
            for t in ahead:
                answer = memory_service.poll("demo", t)
                if isinstance(answer, Admitted):
                    memory_service.complete("demo", answer.token)
                    ahead.remove(t)
                    break

    run(visitor, transport, clock, memory_drainer, each_second=serve_one, shown=shown)
    assert visitor.outcome is not None and visitor.outcome.kind == "admitted"
    assert visitor.outcome.token and visitor.outcome.expires_at
    kinds = transport.kinds()
    assert kinds[0] == "join" and kinds.count("join") == 1
    assert kinds.count("status") == 1  # the pickup
    # the slot's counts came with the state that settled it: no slot document at all
    assert kinds.count("slot") == 0
    assert kinds[-1] == "status"
    exact = [p.position for p in shown if p.kind == "waiting"]
    assert exact and exact == sorted(exact, reverse=True)  # never goes up
    assert visitor.requests == {"join": 1, "state": kinds.count("state"), "status": 1}


def test_a_forged_stored_ticket_is_checked_once_and_a_new_place_taken(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 10})
    real = memory_service.join("demo", None).ticket
    payload, mac = real.split(".")
    room, slot, shard, k, joined = base64.urlsafe_b64decode(payload + "==").decode().split(":")
    moved = f"{room}:{slot}:{shard}:{int(k) + 1000}:{joined}"  # a better place, same mac
    forged = base64.urlsafe_b64encode(moved.encode()).decode().rstrip("=") + "." + mac
    visitor = client.Visitor("demo", ticket=forged, rng=random.Random(2))
    run(visitor, transport, clock, memory_drainer)
    assert visitor.outcome is not None and visitor.outcome.kind == "admitted"
    kinds = transport.kinds()
    assert kinds[:2] == ["status", "join"]  # the check (401), then one new place
    assert kinds.count("join") == 1
    assert visitor.ticket is not None and visitor.ticket.text not in (forged, real)


def test_a_stored_ticket_is_checked_with_status_before_any_place(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "session_seconds": 600})
    first = memory_service.join("demo", None).ticket
    clock.advance(1)  # the next slot: behind the first
    stored = memory_service.join("demo", None).ticket
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    memory_drainer.tick_room("demo")
    clock.advance(1.1)
    assert isinstance(memory_service.poll("demo", first), Admitted)
    visitor = client.Visitor("demo", ticket=stored, rng=random.Random(3))
    call = visitor.next()
    assert call is not None and call.kind == "status" and call.after == 0
    visitor.answer(transport(call), clock.now)
    assert visitor.place is not None
    assert (visitor.place.kind, visitor.place.position) == ("waiting", 1)
    nxt = visitor.next()
    assert nxt is not None and nxt.kind == "state" and "Authorization" not in nxt.headers


def test_a_503_is_retried_no_sooner_than_its_retry_after_with_the_same_join(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 10})
    transport.faults = [
        client.Reply(503, {"Retry-After": "7"}, {"error": "unavailable"}),
        client.Reply(0),
        client.Reply(0),
    ]
    visitor = client.Visitor("demo", rng=random.Random(4))
    waits = run(visitor, transport, clock, memory_drainer)
    assert visitor.outcome is not None and visitor.outcome.kind == "admitted"
    assert waits[1] >= 7  # after the 503
    assert 1.6 <= waits[2] <= 2.4  # then 2 s, 4 s ... (±20 %)
    assert 3.2 <= waits[3] <= 4.8
    joins = [c for c in transport.calls if c.kind == "join"]
    assert len(joins) == 4 and len({c.headers["Idempotency-Key"] for c in joins}) == 1


def test_a_closed_room_ends_the_wait_with_a_410(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "session_seconds": 600})
    memory_service.join("demo", None)
    clock.advance(1)  # the visitor joins a slot later: behind, whatever the shards
    visitor = client.Visitor("demo", rng=random.Random(5))
    call = visitor.next()
    assert call is not None
    visitor.answer(transport(call), clock.now)  # joined, behind the first
    settle_and_tick(clock, memory_drainer)
    memory_service.put_room("demo", {"status": "closed"})
    clock.advance(3)
    memory_drainer.tick_room("demo")
    clock.advance(1.1)
    run(visitor, transport, clock, memory_drainer)
    assert visitor.outcome is not None
    assert (visitor.outcome.kind, visitor.outcome.status) == ("closed", 410)
    assert transport.kinds().count("status") == 1
    assert visitor.outcome.ticket is not None  # the ticket is kept


def test_status_only_polls_status_at_the_servers_pace(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "session_seconds": 30, "pickup_seconds": 30})
    for _ in range(3):
        memory_service.join("demo", None)
    clock.advance(1)  # the visitor joins a slot later: behind all three
    visitor = client.Visitor("demo", status_only=True, rng=random.Random(6))
    run(visitor, transport, clock, memory_drainer)
    assert visitor.outcome is not None and visitor.outcome.kind == "admitted"
    kinds = set(transport.kinds())
    assert kinds == {"join", "status"}
    assert visitor.requests["status"] > 1


def test_wait_drives_the_visitor_without_sleeping(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 5})
    places: list[client.Place] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        memory_drainer.tick_room("demo")

    outcome = client.wait(
        "http://127.0.0.1:9",
        "demo",
        on_place=places.append,
        transport=transport,
        clock=clock,
        sleep=sleep,
        rng=random.Random(7),
    )
    assert outcome.kind == "admitted" and outcome.token
    assert places[0].kind in ("estimate", "waiting") and places[-1].kind == "turn"
    assert slept and transport.kinds().count("status") == 1


def test_wait_gives_up_at_its_timeout_and_keeps_the_ticket(
    memory_service: WaitingRoom, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 1})
    memory_service.put_room("demo", {"status": "paused"})
    outcome = client.wait(
        "http://127.0.0.1:9",
        "demo",
        transport=transport,
        clock=clock,
        sleep=clock.advance,
        timeout=120,
        rng=random.Random(8),
    )
    assert outcome.kind == "timeout" and outcome.ticket
    assert isinstance(memory_service.poll("demo", outcome.ticket), Waiting)


def test_the_transport_keeps_the_ticket_on_https_or_this_machine() -> None:
    for url in ("http://queue.example.com", "ftp://127.0.0.1", "file:///etc"):
        with pytest.raises(ValueError, match="https"):
            client.UrllibTransport(url)
    client.UrllibTransport("https://queue.example.com")
    client.UrllibTransport("http://127.0.0.1:8000")


def test_a_join_carries_no_body() -> None:
    # behind CloudFront's signed origin a body would need its hash in x-amz-content-sha256
    call = client.Visitor("demo", rng=random.Random(1)).next()
    assert call is not None and call.kind == "join"
    assert call.json is None and "Content-Type" not in call.headers


def test_a_visitor_who_joins_in_a_burst_sees_an_exact_place_within_4_s(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, transport: AppTransport
) -> None:
    """Joined early, midway or late in a slot, the visitor's first look comes just after its
    slot settles (the drainer ticking every second), and it then shows an exact place: within
    4 s of joining, about a second after the slot settled, with one look at the state."""
    memory_service.put_room(
        "demo", {"max_active": 1, "session_seconds": 600, "shards": 4, "straight_in": False}
    )
    memory_drainer.tick_room("demo")
    start = clock.now
    for i, into in enumerate((0.02, 0.5, 0.97)):
        clock.now = start + 10 * (i + 1) + into
        for _ in range(40):  # a crowd in the same slot, joining with the visitor
            memory_service.join("demo", None)
        visitor = client.Visitor("demo", rng=random.Random(i))
        visitor.answer(transport(visitor.next() or _no_call()), clock.now)
        joined_at, last_tick, looks = clock.now, math.floor(clock.now), 0
        assert visitor.place is not None and not visitor.place.exact
        while not visitor.place.exact:
            call = visitor.next()
            assert call is not None and clock.now - joined_at < 10, "never exact"
            target = clock.now + call.after
            while last_tick + 1 <= target:
                last_tick += 1
                clock.now = last_tick
                memory_drainer.tick_room("demo")
            clock.now = target
            looks += call.kind == "state"
            visitor.answer(transport(call), clock.now)
        assert visitor.ticket is not None
        settled_at = visitor.ticket.slot + 1 + SETTLE_DELAY_SECONDS
        assert clock.now - joined_at <= 4.0, (into, clock.now - joined_at)
        assert clock.now - settled_at <= 1.2, (into, clock.now - settled_at)  # not a look late
        assert looks == 1  # and not a look too early


def _no_call() -> client.Call:
    raise AssertionError("the visitor has nothing to ask")


def test_a_slow_join_answer_does_not_delay_the_first_look(
    memory_service: WaitingRoom, clock: FakeClock, transport: AppTransport
) -> None:
    """The look is timed from the ticket's join time, not from when the answer came."""
    memory_service.put_room("demo", {"max_active": 1, "straight_in": False})
    memory_service.join("demo", None)  # somebody ahead: the visitor gets an estimate
    clock.now = float(int(clock.now)) + 0.4
    looks = []
    for delay in (0.0, 1.2):
        visitor = client.Visitor("demo", rng=random.Random(3))
        reply = transport(visitor.next() or _no_call())
        visitor.answer(reply, clock.now + delay)  # the answer took `delay` to arrive
        call = visitor.next()
        assert call is not None and call.kind == "state"
        assert visitor.ticket is not None
        looks.append(clock.now + delay + call.after - (visitor.ticket.slot + 1))
    # both look at the same moment after their slot's end: settle delay + 0.3 s + their spread
    assert looks[0] == pytest.approx(looks[1], abs=1e-6)
    assert SETTLE_DELAY_SECONDS + 0.3 <= looks[0] <= SETTLE_DELAY_SECONDS + 1.0


def test_a_visitor_whose_clock_disagrees_with_the_servers_times_its_looks_by_its_own(
    memory_service: WaitingRoom, clock: FakeClock, transport: AppTransport
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "straight_in": False})
    memory_service.join("demo", None)
    visitor = client.Visitor("demo", rng=random.Random(3))
    reply = transport(visitor.next() or _no_call())
    visitor.answer(reply, clock.now - 3600)  # an hour behind
    call = visitor.next()
    assert call is not None and call.kind == "state" and visitor.ticket is not None
    # timed from when the answer came, by its own clock: as if it had just joined
    joined = visitor.ticket.joined_ms / 1000
    look = settle_look_seconds(visitor.ticket.slot, 1, joined, 0.0, visitor.u)
    assert call.after == pytest.approx(look)


def test_a_visitor_whose_slot_is_no_longer_in_the_state_reads_its_document(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock, http: TestClient
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "shards": 4, "straight_in": False})
    text = memory_service.join("demo", None).ticket
    settle_and_tick(clock, memory_drainer)
    ticket = client.read_ticket(text)
    fresh = client.read_state(http.get("/rooms/demo/state").json())
    assert fresh.recent_slot(ticket.slot) is not None and not client.needs_slot(ticket, fresh)
    for _ in range(RECENT_SLOTS + 1):  # later slots with joins push it out
        memory_service.join("demo", None)
        settle_and_tick(clock, memory_drainer)
    later = client.read_state(http.get("/rooms/demo/state").json())
    assert later.recent_slot(ticket.slot) is None and client.needs_slot(ticket, later)
    doc = client.read_slot(http.get(f"/rooms/demo/slots/{ticket.slot}").json())
    # the same exact place either way
    from_state, from_doc = client.place(ticket, fresh, None), client.place(ticket, fresh, doc)
    assert from_state.exact and from_state == from_doc
    assert client.place(ticket, later, doc).exact and not client.place(ticket, later, None).exact
