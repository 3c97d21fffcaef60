"""The public documents: a client that computes its place from them sees what the server says,
and the edge's misses cost no store read in the common case."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from pydantic import SecretStr

from devtools.events import load_event
from tests.conftest import ADMIN_KEY, TICKET_SECRET, FakeClock
from waitingroom import errors
from waitingroom.api import create_app
from waitingroom.api.public import from_edge
from waitingroom.domain import (
    SETTLE_DELAY_SECONDS,
    STATE_HOLD_OVERDUE_SECONDS,
    STATE_HOLD_SECONDS,
    STATE_PUBLISH_SECONDS,
    PublicState,
    draw_place,
    rank_in_slot,
)
from waitingroom.drainer import Drainer
from waitingroom.service import Waiting, WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import StoreUnavailable
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import parse_ticket


class CountingStore:
    """The in-memory store, counting the reads a caller makes."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name.startswith(("get_", "list_", "settled_")) and callable(found):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.reads += 1
                return found(*args, **kwargs)

            return counted
        return found


def settle_and_tick(clock: FakeClock, drainer: Drainer, room: str = "demo") -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)
    drainer.tick_room(room)
    clock.advance(1.1)  # past the service's cached room state


def place_from_documents(svc: WaitingRoom, ticket_text: str) -> int:
    """CLIENTS.md §3, from the ticket and the two documents alone."""
    t = parse_ticket(svc.secrets, ticket_text)
    doc = svc.room_document(t.room)
    cfg, st = doc.config, doc.state
    ss = svc.slot_document(t.room, t.slot)
    rank = ss.cum_before + rank_in_slot(ss.counts, t.k, t.shard)
    if cfg.opens_slot is not None and t.slot < cfg.opens_slot:
        rank = draw_place(rank, st.prequeue_size, st.draw_seed)
    return rank - st.consumed + 1


def test_positions_from_the_documents_equal_the_servers(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 3, "shards": 4})
    tickets = []
    for _ in range(3):  # three slots of joins
        tickets += [memory_service.join("demo", None).ticket for _ in range(7)]
        clock.advance(1)
    settle_and_tick(clock, memory_drainer)
    waiting = []
    for text in tickets:
        answer = memory_service.poll("demo", text)
        if isinstance(answer, Waiting):
            waiting.append((text, answer.position))
    assert len(waiting) == 21 - 3  # three admitted
    for text, position in waiting:
        assert place_from_documents(memory_service, text) == position


def test_a_drawn_pre_queue_places_itself_from_the_published_seed(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    opens_at = clock.now + 5
    memory_service.put_room(
        "demo", {"max_active": 2, "shards": 3, "status": "scheduled", "opens_at": opens_at}
    )
    tickets = [memory_service.join("demo", None).ticket for _ in range(12)]
    settle_and_tick(clock, memory_drainer)
    assert memory_service.room_document("demo").state.draw_seed == ""  # not drawn yet
    clock.now = opens_at + 1 + SETTLE_DELAY_SECONDS + 0.01
    for _ in range(2):
        memory_drainer.tick_room("demo")
    clock.advance(1.1)
    st = memory_service.room_document("demo").state
    assert st.draw_seed and st.prequeue_size == 12
    positions = []
    for text in tickets:
        answer = memory_service.poll("demo", text)
        if isinstance(answer, Waiting):
            assert place_from_documents(memory_service, text) == answer.position
            positions.append(answer.position)
    assert sorted(positions) == list(range(1, 11))  # two admitted, ten drawn behind them


def test_slots_not_settled_in_the_future_or_before_the_room_are_refused_without_a_read(
    clock: FakeClock, memory_drainer: Drainer
) -> None:
    store = CountingStore(memory_drainer.store)  # type: ignore[arg-type]
    svc = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock)
    svc.put_room("demo", {"max_active": 1, "shards": 2})
    svc.join("demo", None)
    settle_and_tick(clock, memory_drainer)
    doc = svc.room_document("demo")
    settled = doc.state.settled_through
    svc.slot_document("demo", settled)  # fills the caches
    assert store.reads > 0
    store.reads = 0
    for _ in range(50):
        svc.room_document("demo")
        svc.slot_document("demo", settled)
        for slot, code in (
            (settled + 1, "slot_not_settled"),
            (10**12, "slot_not_settled"),
            (doc.config.epoch_slot - 1, "no_such_slot"),
        ):
            with pytest.raises(errors.SlotNotFound) as refused:
                svc.slot_document("demo", slot)
            assert refused.value.code == code
    assert store.reads == 0
    with pytest.raises(errors.UnknownRoom):
        svc.room_document("nowhere")


def test_a_slot_that_settled_empty_long_ago_is_final_and_read_once(
    clock: FakeClock, memory_drainer: Drainer
) -> None:
    store = CountingStore(memory_drainer.store)  # type: ignore[arg-type]
    svc = WaitingRoom(store, [b"x" * 32], issuer="waitingroom", clock=clock)
    svc.put_room("demo", {"max_active": 1})
    svc.join("demo", None)
    clock.advance(20)  # twenty empty slots
    svc.join("demo", None)
    settle_and_tick(clock, memory_drainer)
    settled = svc.room_document("demo").state.settled_through
    store.reads = 0
    for _ in range(5):
        with pytest.raises(errors.SlotNotFound) as old:
            svc.slot_document("demo", settled - 12)
        assert old.value.code == "slot_empty" and old.value.final
    assert store.reads == 1  # remembered after the first look
    with pytest.raises(errors.SlotNotFound) as recent:
        svc.slot_document("demo", settled - 1)
    assert not recent.value.final  # just settled: a replica may not have it yet


# -- how soon a settle reaches a poll -----------------------------------------------------------


def joined_and_counted(svc: WaitingRoom, drainer: Drainer, clock: FakeClock) -> int:
    """A visitor joins half-way into a slot; the drainer counts it before the slot ends.
    Returns the slot (it ends at slot + 1 with 1 s slots)."""
    svc.put_room("demo", {"max_active": 1, "straight_in": False})
    clock.now = float(int(clock.now)) + 0.5
    joined = svc.join("demo", None)
    t = parse_ticket(svc.secrets, joined.ticket)
    clock.advance(0.3)
    drainer.tick_room("demo")
    return t.slot


def edge_look(svc: WaitingRoom) -> PublicState:
    """The state as the edge's refresh gets it, when no settle is due within the hold."""
    return svc.ctx.reads.state(svc.config("demo"), for_edge=True)


def test_the_edges_copy_is_read_again_as_soon_as_a_settle_is_due(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    slot = joined_and_counted(svc, memory_drainer, clock)
    settles = slot + 1 + SETTLE_DELAY_SECONDS
    clock.now = settles - 0.2
    assert edge_look(svc).settled_through < slot  # copy read now
    clock.now = settles + 0.05
    memory_drainer.tick_room("demo")  # the drainer settles the slot on time
    clock.now = settles + STATE_PUBLISH_SECONDS + 0.01  # the copy is 0.36 s old
    assert edge_look(svc).settled_through >= slot
    assert svc.room_document("demo").state.settled_through >= slot


def test_a_joins_copy_is_read_again_once_when_a_settle_is_due(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    """The settling tick may admit a crowd: a join answered just after it must not place
    itself with the count of admissions from before (a whole fill too far back)."""
    counting = CountingStore(memory_store)
    svc = WaitingRoom(counting, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    slot = joined_and_counted(svc, memory_drainer, clock)
    settles = slot + 1 + SETTLE_DELAY_SECONDS
    clock.now = settles - 0.2
    assert svc.room_document("demo").state.settled_through < slot  # a join's copy, read now
    clock.now = settles + 0.05
    memory_drainer.tick_room("demo")
    clock.now = settles + STATE_PUBLISH_SECONDS + 0.01
    assert svc.room_document("demo").state.settled_through >= slot


def test_while_a_settle_is_overdue_the_edges_copy_is_read_again_every_tenth_of_a_second(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    counting = CountingStore(memory_store)
    svc = WaitingRoom(counting, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    slot = joined_and_counted(svc, memory_drainer, clock)
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    edge_look(svc)
    reads = counting.reads
    for _ in range(40):  # a drainer two seconds late, the edge asking every 50 ms
        clock.advance(0.05)
        assert edge_look(svc).settled_through < slot
    assert 15 <= counting.reads - reads <= 23  # about ten reads a second, not one per request
    memory_drainer.tick_room("demo")
    clock.advance(0.11)
    assert edge_look(svc).settled_through >= slot


def test_joins_and_polls_read_an_overdue_settle_once_more_then_once_a_second(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    counting = CountingStore(memory_store)
    svc = WaitingRoom(counting, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    slot = joined_and_counted(svc, memory_drainer, clock)
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    svc.room_document("demo")
    reads = counting.reads
    for _ in range(40):  # a drainer two seconds late, a join every 50 ms
        clock.advance(0.05)
        svc.room_document("demo")
    assert 2 <= counting.reads - reads <= 3  # once 0.3 s past due, then once a second


def test_a_join_a_moment_after_a_late_settle_is_answered_from_it(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    """The drainer commits the settle 0.25 s late: the joins after it are answered from the
    settled state 0.3 s past due, not a second later (a fill behind, to every joiner)."""
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    slot = joined_and_counted(svc, memory_drainer, clock)
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    assert svc.room_document("demo").state.settled_through < slot
    clock.advance(0.25)
    memory_drainer.tick_room("demo")
    clock.advance(0.06)
    assert svc.room_document("demo").state.settled_through >= slot


def test_a_burst_the_drainer_has_not_counted_yet_is_awaited_at_its_settle(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    """The state says nobody joined (counted before the burst began): the container that gave
    the burst its numbers reads the state again when their slot settles, not a second later."""
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    svc.put_room("demo", {"max_active": 2, "shards": 4, "straight_in": False})
    memory_drainer.tick_room("demo")  # an empty room's state, counted now
    clock.advance(0.3)
    joined = [svc.join("demo", None) for _ in range(6)]
    slot = parse_ticket(svc.secrets, joined[0].ticket).slot
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS - 0.4
    assert svc.room_document("demo").state.unsettled_counts in ((), (0,))  # read just now
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS
    memory_drainer.tick_room("demo")  # settles the burst's slot on time
    clock.advance(STATE_PUBLISH_SECONDS + 0.01)
    assert svc.room_document("demo").state.settled_through >= slot


class DrainerOnTime:
    """A sleep that moves the fake clock and lets the drainer tick when its moment comes."""

    def __init__(self, clock: FakeClock, drainer: Drainer | None, at: float) -> None:
        self.clock, self.drainer, self.at, self.slept = clock, drainer, at, 0.0

    def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.slept += seconds
        if self.drainer is not None and self.clock.now >= self.at:
            self.drainer.tick_room("demo")
            self.drainer = None


def test_a_shared_cache_asking_just_before_a_settle_gets_the_settled_state(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    settles = 0.0
    sleep = DrainerOnTime(clock, memory_drainer, at=math.inf)
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock, sleep=sleep)
    slot = joined_and_counted(svc, memory_drainer, clock)
    settles = slot + 1 + SETTLE_DELAY_SECONDS
    sleep.at = settles + 0.08  # the drainer's settling tick publishes then
    clock.now = settles - 0.2
    # a visitor's own poll gets the copy there is; the edge's request waits for the settle
    assert svc.room_document("demo").state.settled_through < slot
    st = svc.room_document("demo", hold=STATE_HOLD_SECONDS).state
    assert st.settled_through >= slot
    assert sleep.slept <= 0.2 + STATE_PUBLISH_SECONDS + 0.1 + 1e-9


def test_a_shared_cache_waits_at_most_half_a_second_past_a_settle_that_does_not_come(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    sleep = DrainerOnTime(clock, None, at=math.inf)  # the drainer is down
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock, sleep=sleep)
    slot = joined_and_counted(svc, memory_drainer, clock)
    due = slot + 1 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    clock.now = due - 0.3
    assert svc.room_document("demo", hold=STATE_HOLD_SECONDS).state.settled_through < slot
    assert clock.now <= due + STATE_HOLD_OVERDUE_SECONDS + 0.1
    # asked again while it is overdue, it answers at once with what there is
    sleep.slept = 0.0
    svc.room_document("demo", hold=STATE_HOLD_SECONDS)
    assert sleep.slept == 0.0
    # and a settle further off than the hold is not waited for either
    clock.now = due - 0.9
    svc.room_document("demo", hold=STATE_HOLD_SECONDS)
    assert sleep.slept == 0.0


def test_the_edge_says_it_is_a_shared_cache_and_gets_the_settled_state(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    sleep = DrainerOnTime(clock, memory_drainer, at=math.inf)
    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock, sleep=sleep)
    settings = ApiSettings(
        dynamodb_endpoint="http://127.0.0.1:9",  # never used: the service holds its store
        table="unused",
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
    )
    slot = joined_and_counted(svc, memory_drainer, clock)
    settles = slot + 1 + SETTLE_DELAY_SECONDS
    sleep.at = settles + 0.08
    with TestClient(create_app(svc, settings)) as http:
        clock.now = settles - 0.3
        direct = http.get("/rooms/demo/state").json()
        via_edge = http.get("/rooms/demo/state", headers={"Via": "1.1 abc.cloudfront.net"})
    assert direct["settled_through"] < slot <= via_edge.json()["settled_through"]
    assert via_edge.json()["committed_at"] >= via_edge.json()["updated_at"] > 0  # CLIENTS.md §2
    assert via_edge.headers["Cache-Control"].startswith("public, max-age=1")


def test_one_thread_reads_an_expired_state_again_while_the_others_answer_from_the_copy(
    memory_store: MemoryStore, clock: FakeClock
) -> None:
    class SlowStore(CountingStore):
        def __init__(self, inner: MemoryStore) -> None:
            super().__init__(inner)
            self.reading, self.go_on = threading.Event(), threading.Event()

        def get_public_state(self, room: str) -> Any:
            self.reads += 1
            self.reading.set()
            self.go_on.wait(5)
            return self.inner.get_public_state(room)

    slow = SlowStore(memory_store)
    svc = WaitingRoom(slow, [TICKET_SECRET], issuer="waitingroom", clock=clock)  # type: ignore[arg-type]
    svc.put_room("demo", {"max_active": 5})
    slow.go_on.set()
    svc.room_document("demo")
    slow.go_on.clear()
    clock.advance(1.5)  # the copy expired
    reader = threading.Thread(target=svc.room_document, args=("demo",))
    reader.start()
    assert slow.reading.wait(5)
    reads = slow.reads
    for _ in range(10):  # requests arriving while that read is slow
        svc.room_document("demo")
    assert slow.reads == reads
    slow.go_on.set()
    reader.join(5)


@pytest.mark.parametrize(
    ("event", "via", "held"),
    [
        (None, "1.1 waitingroom-edge", True),  # an ASGI server behind nginx
        ("lambda-url-via-cloudfront", "2.0 abc.cloudfront.net (CloudFront)", True),
        ("apigw-http-api-v2-proxy", "2.0 abc.cloudfront.net (CloudFront)", False),  # spoofed
        ("lambda-url-via-cloudfront", None, False),
        (None, None, False),
    ],
)
def test_only_the_edge_may_have_a_state_request_wait_for_a_settle(
    event: str | None, via: str | None, held: bool
) -> None:
    """A held request costs a Lambda environment for up to a second: only CloudFront (the only
    caller the function URL lets in) or a local edge may ask for it, not anyone who sends Via to
    the HTTP API."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/rooms/demo/state",
        "headers": [(b"via", via.encode())] if via else [],
    }
    if event is not None:
        scope["aws.event"] = load_event(event)
    assert from_edge(Request(scope)) is held


def test_one_request_at_a_time_waits_for_a_settle_the_others_answer_at_once(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    """However many requests say they come from the edge, one thread per room waits."""
    waiting, go_on = threading.Event(), threading.Event()
    sleepers: set[int] = set()

    def sleep(seconds: float) -> None:
        sleepers.add(threading.get_ident())
        waiting.set()
        go_on.wait(1)
        clock.advance(seconds)

    svc = WaitingRoom(memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock, sleep=sleep)
    slot = joined_and_counted(svc, memory_drainer, clock)
    clock.now = slot + 1 + SETTLE_DELAY_SECONDS - 0.2
    held = threading.Thread(target=svc.room_document, args=("demo", STATE_HOLD_SECONDS))
    held.start()
    assert waiting.wait(5)
    others = [svc.room_document("demo", STATE_HOLD_SECONDS) for _ in range(5)]  # not held
    assert all(d.state.settled_through < slot for d in others)
    assert len(sleepers) == 1  # only the first request waited
    go_on.set()
    held.join(5)
    assert not held.is_alive()


class RefusingStore(CountingStore):
    """Refuses the state reads once told to (throttled, or down)."""

    refuse = False

    def get_public_state(self, room: str, consistent: bool = False) -> PublicState | None:
        if self.refuse:
            raise StoreUnavailable("throttled")
        return self.inner.get_public_state(room, consistent)


def test_a_refused_state_read_answers_from_the_copy_held_unless_the_client_saw_newer(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    store = RefusingStore(memory_store)
    svc = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    joined_and_counted(svc, memory_drainer, clock)
    held = svc.room_document("demo").state
    store.refuse = True
    clock.advance(5)  # long expired
    assert svc.ctx.reads.state(svc.config("demo")) == held  # not a 503 while it is held
    with pytest.raises(StoreUnavailable):  # the client saw a newer one elsewhere
        svc.ctx.reads.state(svc.config("demo"), min_version=held.version + 1)
