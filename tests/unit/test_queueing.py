"""Queueing methods per room, as visitors and operators see them (memory store): fifo with or
without straight-in, passthrough, reject, and the queue_all switch."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.conftest import FakeClock
from tests.unit.test_service_memory import fresh, settle
from waitingroom import errors
from waitingroom.drainer import Drainer
from waitingroom.observability import MetricsBuffer
from waitingroom.planning import POOL_MIN
from waitingroom.service import Admitted, Waiting, WaitingRoom
from waitingroom.store import StoreUnavailable
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet


def open_room(svc: WaitingRoom, drainer: Drainer, clock: FakeClock, **settings: object) -> None:
    svc.put_room("demo", {"shards": 1, **settings})
    drainer.tick_room("demo")
    fresh(clock)


def test_without_straight_in_every_visitor_sees_the_line_first(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=10, straight_in=False)
    joined = memory_service.join("demo", None)
    assert isinstance(joined.status, Waiting)
    settle(clock)
    assert memory_drainer.tick_room("demo").admitted == 1


def test_queue_all_holds_new_visitors_while_admitted_sessions_go_on(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=10)
    inside = memory_service.join("demo", None)
    assert isinstance(inside.status, Admitted)
    memory_service.put_room("demo", {"queue_all": True})
    clock.advance(2.1)  # past the cached config
    held = [memory_service.join("demo", None) for _ in range(3)]
    assert all(isinstance(j.status, Waiting) for j in held)
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.active, report.waiting) == (0, 1, 3)
    assert memory_service.poll("demo", inside.ticket) == inside.status  # still in
    memory_service.put_room("demo", {"queue_all": False})
    assert memory_drainer.tick_room("demo").admitted == 3


def test_passthrough_lets_everybody_in_and_counts_the_sessions(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=2, queueing="passthrough")
    joins = [memory_service.join("demo", None) for _ in range(POOL_MIN + 5)]
    assert sum(isinstance(j.status, Admitted) for j in joins) == POOL_MIN
    settle(clock)
    report = memory_drainer.tick_room("demo")  # the five who missed the pool: all in now
    assert (report.admitted, report.waiting) == (5, 0)
    assert memory_service.stats("demo")["active"] == POOL_MIN + 5  # counted, not capped
    fresh(clock)
    assert all(isinstance(memory_service.poll("demo", j.ticket), Admitted) for j in joins)


def test_reject_turns_visitors_away_when_full_and_lets_them_in_when_a_place_frees(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=2, queueing="reject")
    first, second = (memory_service.join("demo", None) for _ in range(2))
    with pytest.raises(errors.RoomFull) as full:
        memory_service.join("demo", None)
    assert full.value.code == "room_full" and full.value.retry_after
    assert "full" in str(full.value)
    assert isinstance(first.status, Admitted) and isinstance(second.status, Admitted)
    memory_service.complete("demo", first.status.token)
    memory_drainer.tick_room("demo")
    memory_drainer.tick_room("demo")
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Admitted)
    assert memory_service.stats("demo")["waiting"] == 0  # nobody was ever kept in a line


def test_a_scheduled_room_lets_joins_straight_in_once_drawn_and_empty(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 10, "opens_at": clock() + 5})
    early = memory_service.join("demo", None)
    assert isinstance(early.status, Waiting) and early.status.opens_at is not None
    memory_drainer.tick_room("demo")  # before the opening: nobody is let in, no pool
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Waiting)
    clock.advance(10)
    memory_drainer.tick_room("demo")  # drawn: the two in the pre-queue are let in
    memory_drainer.tick_room("demo")  # nobody waits: places minted ahead
    fresh(clock)
    assert isinstance(memory_service.poll("demo", early.ticket), Admitted)
    assert isinstance(memory_service.join("demo", None).status, Admitted)


def test_reject_lets_a_burst_into_a_nearly_empty_room_however_small_its_pool(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=1000, queueing="reject")
    joins = [memory_service.join("demo", None) for _ in range(30)]  # nobody told "full"
    straight = [j for j in joins if isinstance(j.status, Admitted)]
    assert len(straight) == POOL_MIN
    settle(clock)
    report = memory_drainer.tick_room("demo")  # the others: let in at the next tick
    assert (report.admitted, report.waiting) == (30 - POOL_MIN, 0)
    fresh(clock)
    assert all(isinstance(memory_service.poll("demo", j.ticket), Admitted) for j in joins)


def test_reject_takes_only_as_many_numbers_as_there_are_free_places(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=POOL_MIN + 5, queueing="reject")
    joins = []
    for _ in range(POOL_MIN + 5):
        joins.append(memory_service.join("demo", None))
    with pytest.raises(errors.RoomFull):
        memory_service.join("demo", None)  # 15 places, 15 visitors: the 16th is told
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.waiting) == (5, 0)  # nobody left in a line
    fresh(clock)
    assert all(isinstance(memory_service.poll("demo", j.ticket), Admitted) for j in joins)


def test_a_paused_reject_room_says_it_is_paused_not_full(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=1000, queueing="reject")
    memory_service.put_room("demo", {"status": "paused"})
    fresh(clock)
    joined = memory_service.join("demo", None)
    assert isinstance(joined.status, Waiting) and joined.status.line == "paused"
    memory_service.put_room("demo", {"status": "open"})
    settle(clock)
    assert memory_drainer.tick_room("demo").admitted == 1  # in as soon as it resumes


def test_a_reject_room_whose_store_hesitates_says_so_not_full(
    memory_service: WaitingRoom,
    memory_drainer: Drainer,
    memory_store: MemoryStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_room(memory_service, memory_drainer, clock, max_active=POOL_MIN, queueing="reject")

    def hesitates(room: str, seq: int, size: int) -> int | None:
        raise StoreUnavailable("claim_pool: throttled")

    monkeypatch.setattr(memory_store, "claim_pool", hesitates)
    with pytest.raises(StoreUnavailable):  # a 503 that says the store is busy: retry
        memory_service.join("demo", None)
    monkeypatch.undo()
    assert isinstance(memory_service.join("demo", None).status, Admitted)


@pytest.mark.parametrize("hold", [{"queue_all": True}, {"status": "paused"}])
def test_a_line_held_on_purpose_does_not_page_anybody_as_stalled(
    memory_store: MemoryStore, clock: FakeClock, keyset: KeySet, hold: dict[str, object]
) -> None:
    gauges: list[dict[str, float]] = []

    def emit(service: str, room: str, counts: Mapping[str, float], g: Mapping[str, float]) -> None:
        gauges.append(dict(g))

    metrics = MetricsBuffer("drainer", emit, flush_seconds=0, clock=clock)
    svc = WaitingRoom(memory_store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(
        memory_store, lambda: keyset, issuer="waitingroom", clock=clock, metrics=metrics
    )
    open_room(svc, drainer, clock, max_active=10, **hold)
    for _ in range(3):
        svc.join("demo", None)
    settle(clock)
    report = drainer.tick_room("demo")
    metrics.flush()
    assert (report.admitted, report.waiting) == (0, 3)  # held, places free
    assert gauges[-1]["stalled"] == 0


def test_a_reject_room_not_ticked_yet_lets_its_first_visitors_in_at_its_first_tick(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 3, "shards": 1, "queueing": "reject"})
    joins = [memory_service.join("demo", None) for _ in range(3)]
    with pytest.raises(errors.RoomFull):
        memory_service.join("demo", None)
    settle(clock)
    assert memory_drainer.tick_room("demo").admitted == 3
    fresh(clock)
    assert all(isinstance(memory_service.poll("demo", j.ticket), Admitted) for j in joins)


def test_reject_never_gives_more_numbers_than_places_across_containers_and_ticks(
    memory_store: MemoryStore, clock: FakeClock, keyset: KeySet
) -> None:
    a, b = (WaitingRoom(memory_store, [b"t" * 32], issuer="waitingroom", clock=clock) for _ in "ab")
    drainer = Drainer(memory_store, lambda: keyset, issuer="waitingroom", clock=clock)
    open_room(a, drainer, clock, max_active=POOL_MIN + 5, queueing="reject")
    joins = [a.join("demo", None) for _ in range(POOL_MIN + 2)]  # the pool, then 2 numbers
    drainer.tick_room("demo")  # their slot not settled yet: 3 places left, minted ahead
    joins += [b.join("demo", None) for _ in range(3)]  # b reads the new state: straight in
    for container in (a, b):  # a still answers from the state before that tick
        with pytest.raises(errors.RoomFull):
            container.join("demo", None)
    settle(clock)
    report = drainer.tick_room("demo")
    assert (report.admitted, report.waiting, report.active) == (2, 0, POOL_MIN + 5)
    fresh(clock)
    assert all(isinstance(a.poll("demo", j.ticket), Admitted) for j in joins)
