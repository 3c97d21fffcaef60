"""The service's use cases over the in-memory store: join, poll, pickup, complete, operators."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from waitingroom import errors
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Waiting, WaitingRoom


def settle(clock: FakeClock) -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


def fresh(clock: FakeClock) -> None:
    clock.advance(1.1)  # past the service's cached room state


def test_join_hands_out_numbers_in_order_and_replays_by_idempotency_key(
    memory_service: WaitingRoom,
) -> None:
    memory_service.put_room("demo", {"max_active": 2, "shards": 1})
    first = memory_service.join("demo", "key-1")
    again = memory_service.join("demo", "key-1")
    second = memory_service.join("demo", None)
    assert again.ticket == first.ticket and again.number == first.number
    assert first.number < second.number
    assert isinstance(first.status, Waiting) and not first.status.exact  # not settled yet


def test_joins_are_refused_for_unknown_and_closed_rooms(memory_service: WaitingRoom) -> None:
    with pytest.raises(errors.UnknownRoom) as unknown:
        memory_service.join("nowhere", None)
    assert unknown.value.code == "unknown_room"
    memory_service.put_room("demo", {"max_active": 2})
    memory_service.set_status("demo", "closed", actor="ops")
    with pytest.raises(errors.RoomClosedToJoins) as closed:
        memory_service.join("demo", None)
    assert closed.value.code == "room_closed"


def test_a_waiting_ticket_gets_an_exact_position_once_its_slot_settles(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "shards": 1})
    tickets = [memory_service.join("demo", None) for _ in range(3)]
    settle(clock)
    memory_drainer.tick_room("demo")
    fresh(clock)
    last = memory_service.poll("demo", tickets[2].ticket)
    assert isinstance(last, Waiting)
    assert (last.position, last.exact, last.waiting) == (2, True, 2)


def test_pickup_then_complete(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 1})
    joined = memory_service.join("demo", None)
    settle(clock)
    memory_drainer.tick_room("demo")
    fresh(clock)
    picked = memory_service.poll("demo", joined.ticket)
    assert isinstance(picked, Admitted) and picked.token
    assert memory_service.poll("demo", joined.ticket) == picked  # the same token again
    memory_service.complete("demo", picked.token)
    with pytest.raises(errors.Gone) as gone:
        memory_service.poll("demo", joined.ticket)
    assert gone.value.code == "completed"


def test_a_ticket_not_picked_up_in_time_is_gone(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 1, "pickup_seconds": 10})
    joined = memory_service.join("demo", None)
    settle(clock)
    memory_drainer.tick_room("demo")
    clock.advance(11)
    with pytest.raises(errors.Gone) as gone:
        memory_service.poll("demo", joined.ticket)
    assert gone.value.code == "expired"


def test_a_forged_ticket_is_refused(memory_service: WaitingRoom) -> None:
    memory_service.put_room("demo", {"max_active": 1})
    with pytest.raises(errors.NotAuthenticated) as bad:
        memory_service.poll("demo", "not-a-ticket")
    assert bad.value.code == "bad_ticket"


def test_put_room_creates_updates_and_guards_its_fields(
    memory_service: WaitingRoom, clock: FakeClock
) -> None:
    cfg, created = memory_service.put_room("demo", {"max_active": 3})
    assert created and cfg.version == 1
    clock.advance(1)  # audit entries of the same instant have no order
    cfg, created = memory_service.put_room("demo", {"max_active": 7}, actor="ops")
    assert not created and (cfg.max_active, cfg.version) == (7, 2)
    assert memory_service.put_room("demo", {"max_active": 7}) == (cfg, False)  # no change
    with pytest.raises(errors.InvalidConfig) as invalid:
        memory_service.put_room("other", {"session_seconds": 60})
    assert invalid.value.code == "invalid_config"
    with pytest.raises(errors.ConfigConflict) as conflict:
        memory_service.put_room("demo", {"slot_seconds": 5})
    assert conflict.value.code == "conflict"
    actions = [e["action"] for e in memory_service.audit("demo")]
    assert actions == ["update", "create"]


def test_stats_count_what_the_drainer_did(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 4})
    for _ in range(10):
        memory_service.join("demo", None)
    settle(clock)
    memory_drainer.tick_room("demo")
    stats = memory_service.stats("demo")
    assert (stats["status"], stats["max_active"]) == ("open", 4)
    assert (stats["waiting"], stats["active"], stats["admitted_total"]) == (6, 4, 4)
    assert (stats["joined_total"], stats["admitted_last_tick"]) == (10, 4)
    with pytest.raises(errors.UnknownRoom):
        memory_service.stats("nowhere")


def test_creating_or_reopening_a_room_asks_the_drainer_to_tick_it_now(
    memory_service: WaitingRoom, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 2})
    assert memory_service.store.get_nudges()["demo"] == clock()
    memory_service.set_status("demo", "closed", actor="ops")
    clock.advance(30)
    memory_service.set_status("demo", "open", actor="ops")
    assert memory_service.store.get_nudges()["demo"] == clock()
