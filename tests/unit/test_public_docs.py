"""The public documents: a client that computes its place from them sees what the server says,
and the edge's misses cost no store read in the common case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeClock
from waitingroom import errors
from waitingroom.domain import SETTLE_DELAY_SECONDS, draw_place, rank_in_slot
from waitingroom.drainer import Drainer
from waitingroom.service import Waiting, WaitingRoom
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
