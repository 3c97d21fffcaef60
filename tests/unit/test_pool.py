"""Straight through when there is room: an idle room's pool of tokens minted ahead (memory store).

What a visitor notices: in an empty room the join answer already carries the token; what an
operator relies on: the places handed out this way never exceed max_active, and once anybody
waits nobody jumps ahead of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from tests.conftest import FakeClock
from tests.unit.test_service_memory import fresh, settle
from waitingroom import errors
from waitingroom.domain import DrainerState, PublicState
from waitingroom.drainer import Drainer
from waitingroom.planning import POOL_MIN, POOL_SECONDS
from waitingroom.service import Admitted, Joined, Waiting, WaitingRoom
from waitingroom.store import AdmittedTicket, StoreUnavailable
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import KeySet


def straight_in(joined: Joined) -> Admitted:
    assert isinstance(joined.status, Admitted), joined.status
    return joined.status


def test_an_idle_room_lets_a_join_straight_in_with_its_token(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 50, "origin_url": "https://shop.example"})
    memory_drainer.tick_room("demo")
    fresh(clock)
    joined = memory_service.join("demo", None)
    admitted = straight_in(joined)
    assert admitted.origin_url == "https://shop.example"
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    assert claims["aud"] == "demo" and claims["exp"] > clock() + 600
    # the ticket picks the same token up again (a reload), and ends the session like any other
    assert memory_service.poll("demo", joined.ticket) == admitted
    memory_service.complete("demo", admitted.token)
    with pytest.raises(errors.Gone) as gone:
        memory_service.poll("demo", joined.ticket)
    assert gone.value.code == "completed"


def test_a_retried_join_gets_the_same_admission_back(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 5})
    memory_drainer.tick_room("demo")
    fresh(clock)
    first = memory_service.join("demo", "same-key")
    again = memory_service.join("demo", "same-key")
    assert again.ticket == first.ticket and straight_in(again) == straight_in(first)
    assert memory_service.stats("demo")["active"] == 0  # not counted until the drainer reads it
    memory_drainer.tick_room("demo")
    stats = memory_service.stats("demo")
    assert (stats["active"], stats["admitted_total"]) == (1, 1)  # the retry took nothing


def test_places_handed_out_at_join_count_against_max_active(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 3, "shards": 1})
    memory_drainer.tick_room("demo")
    fresh(clock)
    joins = [memory_service.join("demo", None) for _ in range(5)]
    assert [isinstance(j.status, Admitted) for j in joins] == [True] * 3 + [False] * 2
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.active, report.waiting) == (0, 3, 2)
    memory_service.complete("demo", straight_in(joins[0]).token)
    report = memory_drainer.tick_room("demo")
    assert (report.admitted, report.active, report.waiting) == (1, 3, 1)
    assert memory_service.stats("demo")["admitted_total"] == 4  # three at join, one in line
    fresh(clock)
    assert isinstance(memory_service.poll("demo", joins[3].ticket), Admitted)  # in line order
    assert isinstance(memory_service.poll("demo", joins[4].ticket), Waiting)


def test_once_anybody_waits_new_joins_queue_behind_them(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 100, "shards": 1})
    memory_drainer.tick_room("demo")
    fresh(clock)
    burst = [memory_service.join("demo", None) for _ in range(POOL_MIN + 2)]
    assert sum(isinstance(j.status, Admitted) for j in burst) == POOL_MIN
    queued = [j for j in burst if isinstance(j.status, Waiting)]
    memory_drainer.tick_room("demo")  # the two in line have not settled: no new pool
    fresh(clock)
    late = memory_service.join("demo", None)
    assert isinstance(late.status, Waiting)
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert report.admitted == 3  # the two in line, then the late one, in that order
    fresh(clock)
    for j in [*queued, late]:
        assert isinstance(memory_service.poll("demo", j.ticket), Admitted)
    # nobody waits any more: the room lets joins straight in again
    memory_drainer.tick_room("demo")
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Admitted)


def test_a_paused_room_lets_nobody_straight_in(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 5})
    memory_drainer.tick_room("demo")
    memory_service.set_status("demo", "paused", actor="ops")
    fresh(clock)
    clock.advance(2)  # past the cached config
    assert isinstance(memory_service.join("demo", None).status, Waiting)


def test_unclaimed_places_are_given_back_and_not_counted_as_no_shows(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 2})
    memory_drainer.tick_room("demo")
    clock.advance(POOL_SECONDS + 5)
    memory_drainer.tick_room("demo")  # the first pool's places are free again: a new one
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Admitted)
    stats = memory_service.stats("demo")
    assert (stats["reclaimed_total"], stats["active"]) == (0, 0)


def test_each_place_goes_to_one_join_however_many_arrive_at_once(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    services = [
        WaitingRoom(memory_store, [b"t" * 32], issuer="waitingroom", clock=clock) for _ in range(4)
    ]  # four API containers
    services[0].put_room("demo", {"max_active": 7})
    memory_drainer.tick_room("demo")
    fresh(clock)
    with ThreadPoolExecutor(8) as pool:
        joins = list(pool.map(lambda i: services[i % 4].join("demo", None), range(40)))
    tokens = [j.status.token for j in joins if isinstance(j.status, Admitted)]
    assert len(tokens) == len(set(tokens)) == 7
    settle(clock)
    report = memory_drainer.tick_room("demo")
    assert (report.active, report.waiting, report.admitted) == (7, 33, 0)


def test_lowering_max_active_shrinks_what_joins_may_still_claim(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 50, "shards": 1})
    memory_drainer.tick_room("demo")  # a pool sized for 50
    memory_service.put_room("demo", {"max_active": 2})
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Waiting)  # not from the old pool
    clock.advance(5)
    memory_drainer.tick_room("demo")  # the one in line goes first
    memory_drainer.tick_room("demo")  # then the pool is sized for 2: one place left
    fresh(clock)
    joins = [memory_service.join("demo", None) for _ in range(3)]
    assert [isinstance(j.status, Admitted) for j in joins] == [True, False, False]


def test_a_visitor_in_line_is_not_kept_waiting_by_places_held_for_joins(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 3, "shards": 1})
    memory_service.state(memory_service.config("demo"))  # this container caches: no pool yet
    memory_drainer.tick_room("demo")  # nobody waits: a pool holding all three places
    clock.advance(0.5)
    inline = memory_service.join("demo", None)  # from the cached state: it takes a number
    assert isinstance(inline.status, Waiting)
    settle(clock)
    report = memory_drainer.tick_room("demo")  # the pool is sealed: its places go to the line
    assert (report.admitted, report.active, report.waiting) == (1, 1, 0)


def test_a_max_active_still_above_the_pool_keeps_it_open_for_joins(
    memory_service: WaitingRoom, memory_drainer: Drainer, clock: FakeClock
) -> None:
    memory_service.put_room("demo", {"max_active": 50})
    memory_drainer.tick_room("demo")
    memory_service.put_room("demo", {"max_active": 20})  # still room for the pool's ten
    memory_drainer.tick_room("demo")
    fresh(clock)
    assert isinstance(memory_service.join("demo", None).status, Admitted)


class FailingPuts(MemoryStore):
    """Loses the connection on the next `fail` writes of ticket items."""

    fail = 0

    def put_admitted(self, room: str, tickets: Sequence[AdmittedTicket]) -> int:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("connection reset")
        return super().put_admitted(room, tickets)


def test_a_drainer_that_fails_writing_the_pool_finishes_it_at_the_next_tick(
    clock: FakeClock, keyset: KeySet
) -> None:
    store = FailingPuts(clock=clock)
    svc = WaitingRoom(store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    svc.put_room("demo", {"max_active": 4})
    store.fail = 1
    with pytest.raises(StoreUnavailable):
        drainer.tick_room("demo")  # the pool is committed, its entries not written
    fresh(clock)
    assert isinstance(svc.join("demo", None).status, Waiting)  # nothing claimable yet
    clock.advance(30)  # the lease of the drainer that failed runs out
    settle(clock)
    drainer.tick_room("demo")  # the one in line first: the unwritten pool is sealed
    drainer.tick_room("demo")
    fresh(clock)
    joins = [svc.join("demo", None) for _ in range(4)]
    assert sum(isinstance(j.status, Admitted) for j in joins) == 3  # 4 places, 1 taken


def test_entries_left_unwritten_by_a_failed_tick_are_written_by_the_next(
    clock: FakeClock, keyset: KeySet
) -> None:
    store = FailingPuts(clock=clock)
    svc = WaitingRoom(store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    svc.put_room("demo", {"max_active": 4})
    store.fail = 1
    with pytest.raises(StoreUnavailable):
        drainer.tick_room("demo")
    drainer.tick_room("demo")  # same drainer, same lease: it writes them now
    fresh(clock)
    joins = [svc.join("demo", None) for _ in range(5)]
    assert [isinstance(j.status, Admitted) for j in joins] == [True] * 4 + [False]


class LosesACommit(MemoryStore):
    """The next `fail` commits of the drainer's state time out (not applied)."""

    fail = 0

    def commit_state(
        self, room: str, pub: PublicState, dst: DrainerState, expected_version: int
    ) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("commit_state: timed out")
        super().commit_state(room, pub, dst, expected_version)


def test_a_pool_sealed_by_a_tick_that_lost_its_commit_gives_its_places_back(
    clock: FakeClock, keyset: KeySet
) -> None:
    store = LosesACommit(clock=clock)
    svc = WaitingRoom(store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    svc.put_room("demo", {"max_active": 10, "shards": 1})
    drainer.tick_room("demo")
    fresh(clock)
    inside = [svc.join("demo", None) for _ in range(2)]
    assert all(isinstance(j.status, Admitted) for j in inside)
    svc.put_room("demo", {"status": "paused"})
    fresh(clock)
    store.fail = 1
    with pytest.raises(StoreUnavailable):
        drainer.tick_room("demo")  # the pool is sealed, the state that says so is lost
    drainer.tick_room("demo")  # sealed again: the 8 entries nobody claimed are given back
    assert svc.stats("demo")["admitted_total"] == 2
    svc.put_room("demo", {"status": "open", "straight_in": False})
    fresh(clock)
    line = [svc.join("demo", None) for _ in range(8)]
    settle(clock)
    report = drainer.tick_room("demo")  # the line goes in at once, not a minute later
    assert (report.admitted, report.waiting) == (8, 0)
    fresh(clock)
    assert all(isinstance(svc.poll("demo", j.ticket), Admitted) for j in line)


class LosesIdempotencyRecords(MemoryStore):
    """The next `fail` writes of an idempotency record time out (not applied)."""

    fail = 0

    def put_idempotent(self, room: str, key: str, ticket: str, keep_seconds: int) -> str:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("put_idempotent: timed out")
        return super().put_idempotent(room, key, ticket, keep_seconds)


def test_a_join_retried_after_failed_answers_holds_one_session_not_one_per_attempt(
    clock: FakeClock, keyset: KeySet
) -> None:
    store = LosesIdempotencyRecords(clock=clock)
    svc = WaitingRoom(store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    svc.put_room("demo", {"max_active": 4, "shards": 1})
    drainer.tick_room("demo")
    fresh(clock)
    store.fail = 3
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            svc.join("demo", "same-key")
    joined = svc.join("demo", "same-key")  # the page's fourth try goes through
    assert svc.join("demo", "same-key").ticket == joined.ticket
    line = [svc.join("demo", None) for _ in range(3)]
    assert all(isinstance(j.status, Waiting) for j in line)
    failed_at = clock()
    while clock() - failed_at < 65:  # the places held for the failed answers come back in 60 s
        settle(clock)
        drainer.tick_room("demo")
    assert svc.stats("demo")["active"] == 4
    fresh(clock)
    assert all(isinstance(svc.poll("demo", j.ticket), Admitted) for j in line)
    assert svc.poll("demo", joined.ticket) == straight_in(joined)  # still the one inside


class LosesAPickUp(MemoryStore):
    """The next `fail` pickups time out (not applied)."""

    fail = 0

    def pick_up(self, room: str, t: AdmittedTicket, ledger_shard: int, now: float) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("pick_up: timed out")
        super().pick_up(room, t, ledger_shard, now)


def test_a_join_whose_pickup_failed_gets_the_same_place_when_retried(
    clock: FakeClock, keyset: KeySet
) -> None:
    store = LosesAPickUp(clock=clock)
    svc = WaitingRoom(store, [b"t" * 32], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="a", clock=clock)
    svc.put_room("demo", {"max_active": 5, "shards": 1})
    drainer.tick_room("demo")
    fresh(clock)
    store.fail = 1
    with pytest.raises(StoreUnavailable):
        svc.join("demo", "same-key")
    again = svc.join("demo", "same-key")
    straight_in(again)  # the place claimed by the failed try, picked up now
    others = [svc.join("demo", None) for _ in range(5)]
    assert [isinstance(j.status, Admitted) for j in others] == [True] * 4 + [False]
