"""One contract, two stores: every scenario runs on MemoryStore and on the DynamoDB Store (DynamoDB
Local, marked integration), so the in-memory twin cannot drift from the real thing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import FakeClock
from waitingroom.domain import (
    Batch,
    DrainerState,
    LedgerCounts,
    Pending,
    PublicState,
    RateWindow,
    RoomConfig,
    SettledSlot,
)
from waitingroom.store import SEALED_POOL, AdmittedTicket, Conflict, Store, WaitingRoomStore
from waitingroom.store.memory import MemoryStore


def _both_implement_the_interface(m: MemoryStore, s: Store) -> list[WaitingRoomStore]:
    return [m, s]  # checked by mypy


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.integration)])
def any_store(request: pytest.FixtureRequest, clock: FakeClock) -> WaitingRoomStore:
    if request.param == "memory":
        return MemoryStore(clock=clock)
    store: Store = request.getfixturevalue("store")  # same clock: the fixture is shared
    return store


def test_rooms_are_created_once_and_updated_by_version(any_store: WaitingRoomStore) -> None:
    cfg = RoomConfig("demo", max_active=5, opens_at=1_700_000_000.5, bind_tokens=True)
    created = any_store.put_room_config(cfg, expected_version=None)
    assert created.version == 1
    with pytest.raises(Conflict):
        any_store.put_room_config(cfg, expected_version=None)
    assert any_store.get_room_config("demo", consistent=True) == created
    updated = any_store.put_room_config(
        RoomConfig("demo", max_active=9, version=1), expected_version=1
    )
    assert updated.version == 2
    with pytest.raises(Conflict):
        any_store.put_room_config(RoomConfig("demo", max_active=1, version=1), 1)
    any_store.put_room_config(RoomConfig("alpha", max_active=1), None)
    assert any_store.list_rooms() == ["alpha", "demo"]
    assert any_store.get_room_config("nope") is None


def test_counters_count_per_slot_and_shard(any_store: WaitingRoomStore) -> None:
    assert [any_store.bump_counter("demo", 100, 1, 1) for _ in range(3)] == [1, 2, 3]
    assert any_store.bump_counter("demo", 100, 0, 1) == 1
    assert any_store.bump_counter("demo", 101, 1, 1) == 1
    assert any_store.read_counters("demo", [100, 101, 102], 3) == {
        100: (1, 3, 0),
        101: (0, 1, 0),
        102: (0, 0, 0),
    }


def test_unheld_numbers_are_recorded_once_and_found_by_slot(any_store: WaitingRoomStore) -> None:
    any_store.put_unheld("demo", 100, 2, 7, "late")
    any_store.put_unheld("demo", 100, 2, 7, "late")  # sent twice: still one number
    any_store.put_unheld("demo", 103, 0, 1, "unanswered")
    any_store.put_unheld("other", 100, 0, 1, "late")
    assert any_store.count_unheld("demo") == 2
    assert any_store.unheld_numbers("demo", 100, 102) == {(100, 2, 7)}
    assert any_store.unheld_numbers("demo", 99, 103) == {(100, 2, 7), (103, 0, 1)}
    assert any_store.unheld_numbers("demo", 101, 102) == set()
    assert any_store.count_unheld("nobody") == 0


def test_released_unheld_numbers_count_as_picked_and_completed_once(
    any_store: WaitingRoomStore, clock: FakeClock
) -> None:
    now = clock()
    batch = Batch(3, 0, 5, now, now + 10, now + 100, ledger_shards=2)
    any_store.release_unheld("demo", batch, 2)
    any_store.release_unheld("demo", batch, 2)  # an interrupted batch finished again
    assert any_store.read_ledger("demo", [batch]) == {3: LedgerCounts(2, 2)}


def test_idempotency_records_keep_the_first_ticket_until_they_expire(
    any_store: WaitingRoomStore, clock: FakeClock
) -> None:
    assert any_store.get_idempotent("demo", "k1") is None
    assert any_store.put_idempotent("demo", "k1", "first", 60) == "first"
    assert any_store.put_idempotent("demo", "k1", "second", 60) == "first"
    assert any_store.get_idempotent("demo", "k1") == "first"
    clock.advance(61)
    assert any_store.get_idempotent("demo", "k1") is None
    assert any_store.put_idempotent("demo", "k1", "third", 60) == "third"


def test_client_join_limits(any_store: WaitingRoomStore, clock: FakeClock) -> None:
    def join(client: str, total: int, per_minute: int) -> str | None:
        return any_store.count_client_join(
            "demo", client, now=clock(), max_total=total, max_per_minute=per_minute
        )

    assert [join("a", 2, 0) for _ in range(3)] == [None, None, "total"]
    clock.advance(60 - clock() % 60)  # the start of a minute
    assert [join("b", 0, 2) for _ in range(3)] == [None, None, "per_minute"]
    clock.advance(60)
    assert join("b", 0, 2) is None
    assert join("c", 0, 0) is None  # no limits: counted, never refused


def test_settled_slots_read_back_in_order(any_store: WaitingRoomStore) -> None:
    slots = [SettledSlot(12, (2, 0, 1), 5), SettledSlot(10, (1, 1), 0), SettledSlot(11, (3,), 2)]
    any_store.put_settled_slots("demo", slots, keep_until=2_000_000_000)
    assert any_store.get_settled_slot("demo", 10) == SettledSlot(10, (1, 1), 0)
    assert any_store.get_settled_slot("demo", 13) is None
    assert [s.slot for s in any_store.settled_slots_from("demo", 11, 20)] == [11, 12]
    assert list(any_store.settled_slots_from("other", 0, 20)) == []


def test_state_commits_are_conditioned_on_the_version(any_store: WaitingRoomStore) -> None:
    batch = Batch(1, 0, 3, 10.5, 20.0, 30.0, 1, picked=1)
    dst = DrainerState(
        cursor_slot=7,
        cursor_offset=2,
        next_seq=2,
        batches=(batch,),
        pending=Pending(batch, 7, 0),
        rates=RateWindow(((10.5, 3),)),
        max_shards=4,
        waits=(3, 4),
    )
    pub = PublicState(settled_through=9, consumed=3, active=3, admit_rate=0.25, wait_p50=3.0)
    assert any_store.get_public_state("demo") is None
    any_store.commit_state("demo", pub, dst, expected_version=0)
    with pytest.raises(Conflict):
        any_store.commit_state("demo", pub, dst, expected_version=0)
    assert any_store.get_public_state("demo", consistent=True) == PublicState(
        version=1, settled_through=9, consumed=3, active=3, admit_rate=0.25, wait_p50=3.0
    )
    assert any_store.get_drainer_state("demo") == DrainerState(
        1, 7, 2, 2, (batch,), Pending(batch, 7, 0), RateWindow(((10.5, 3),)), 4, (3, 4)
    )
    any_store.commit_state("demo", pub, DrainerState(), expected_version=1)
    with pytest.raises(Conflict):
        any_store.commit_state("demo", pub, DrainerState(), expected_version=1)
    assert any_store.get_drainer_state("demo") == DrainerState(version=2)


def test_the_state_keeps_the_newest_settled_slots_counts_and_its_commit_time(
    any_store: WaitingRoomStore,
) -> None:
    recent = (SettledSlot(8, (3, 2, 2), 40), SettledSlot(9, (1, 0, 1), 47))
    pub = PublicState(
        settled_through=9,
        unsettled_counts=(4,),
        recent_slots=recent,
        updated_at=100.25,
        committed_at=100.75,
    )
    any_store.commit_state("demo", pub, DrainerState(), expected_version=0)
    assert any_store.get_public_state("demo", consistent=True) == replace(pub, version=1)


def test_one_lease_holder_until_it_runs_out_or_is_released(
    any_store: WaitingRoomStore, clock: FakeClock
) -> None:
    assert any_store.lease_expiry("demo") is None
    assert any_store.acquire_lease("demo", "a", 30)
    assert not any_store.acquire_lease("demo", "b", 30)
    clock.advance(5)
    assert any_store.acquire_lease("demo", "a", 30)  # the holder renews
    assert any_store.lease_expiry("demo") == pytest.approx(clock() + 30)
    clock.advance(31)
    assert any_store.acquire_lease("demo", "b", 30)
    any_store.release_lease("demo", "a")  # not the holder: nothing happens
    assert not any_store.acquire_lease("demo", "a", 30)
    any_store.release_lease("demo", "b")
    assert any_store.acquire_lease("demo", "a", 30)


def _ticket(k: int, now: float, seq: int = 1) -> AdmittedTicket:
    return AdmittedTicket(100, 0, k, "admitted", f"tok{k}", seq, 2, now, now + 10, now + 100)


def test_tickets_are_admitted_once_then_picked_up_then_completed(
    any_store: WaitingRoomStore, clock: FakeClock
) -> None:
    now = clock()
    tickets = [_ticket(k, now) for k in (1, 2, 3)]
    assert any_store.put_admitted("demo", tickets) == 3
    assert any_store.put_admitted("demo", [*tickets, _ticket(4, now)]) == 1
    assert any_store.get_ticket("demo", 100, 0, 1) == tickets[0]
    assert any_store.get_ticket("demo", 100, 1, 1) is None
    with pytest.raises(Conflict):
        any_store.complete("demo", tickets[0], 0, now)  # not picked up yet
    any_store.pick_up("demo", tickets[0], 0, now)
    any_store.pick_up("demo", tickets[1], 1, now + 9)
    with pytest.raises(Conflict):
        any_store.pick_up("demo", tickets[0], 0, now)  # once
    with pytest.raises(Conflict):
        any_store.pick_up("demo", tickets[2], 0, now + 10)  # the window has closed
    any_store.complete("demo", tickets[0], 1, now + 50)
    with pytest.raises(Conflict):
        any_store.complete("demo", tickets[0], 1, now + 50)
    with pytest.raises(Conflict):
        any_store.complete("demo", tickets[1], 1, now + 100)  # the session has expired
    picked = any_store.get_ticket("demo", 100, 0, 2)
    assert picked is not None and picked.state == "picked"
    done = any_store.get_ticket("demo", 100, 0, 1)
    assert done is not None and done.state == "completed"
    batch = Batch(1, 0, 4, now, now + 10, now + 100, ledger_shards=2)
    assert any_store.read_ledger("demo", [batch]) == {1: LedgerCounts(2, 1)}
    one_shard = Batch(1, 0, 4, now, now + 10, now + 100, ledger_shards=1)
    assert any_store.read_ledger("demo", [one_shard]) == {1: LedgerCounts(1, 0)}
    with pytest.raises(Conflict):
        any_store.pick_up("demo", _ticket(9, now), 0, now)  # never admitted


def test_audit_newest_first(any_store: WaitingRoomStore, clock: FakeClock) -> None:
    any_store.append_audit("demo", "ops", "create", {"config": {"max_active": 5}})
    clock.advance(1)
    any_store.append_audit("demo", "ops", "pause", {"changes": {"status": ("open", "paused")}})
    entries = any_store.list_audit("demo")
    assert [e["action"] for e in entries] == ["pause", "create"]
    assert entries[0] == {
        "at": clock(),
        "actor": "ops",
        "action": "pause",
        "details": {"changes": {"status": ["open", "paused"]}},
    }
    assert [e["action"] for e in any_store.list_audit("demo", limit=1)] == ["pause"]


def test_nudges_keys_and_revocations(any_store: WaitingRoomStore, clock: FakeClock) -> None:
    assert any_store.get_nudges() == {}
    any_store.put_nudge("demo")
    assert any_store.get_nudges() == {"demo": clock()}
    assert any_store.get_jwks() is None
    jwks = {"keys": [{"kid": "k1", "kty": "EC"}]}
    any_store.put_jwks(jwks)
    assert any_store.get_jwks() == jwks
    now = clock()
    any_store.add_revoked("demo", "live", now + 300)
    any_store.add_revoked("demo", "also-live", now + 300)
    any_store.add_revoked("demo", "long-gone", now - 600)
    assert any_store.list_revoked("demo", now) == ["also-live", "live"]
    assert any_store.list_revoked("other", now) == []
    any_store.ping()


def test_a_pool_entry_is_claimed_once_and_its_claims_read_like_a_counter(
    any_store: WaitingRoomStore,
) -> None:
    assert [any_store.claim_pool("demo", 7, 3) for _ in range(4)] == [1, 2, 3, None]
    assert any_store.claim_pool("demo", 7, 5) == 4  # the pool grew: its next entry
    assert any_store.claim_pool("demo", 8, 0) is None  # a closed pool
    assert any_store.read_counters("demo", [-7], 1) == {-7: (4,)}
    assert any_store.seal_pool("demo", 7) == 4  # taken before it was sealed
    assert any_store.claim_pool("demo", 7, 10) is None  # nobody claims from a sealed pool
    assert any_store.seal_pool("demo", 9) == 0  # never claimed from


def test_a_pool_batch_and_its_counters_survive_a_commit(any_store: WaitingRoomStore) -> None:
    pool = Batch(3, 0, 10, 5.0, 65.0, 665.0, 1, picked=2, pool=True)
    dst = DrainerState(batches=(pool,), pool_seq=3, pool_claimed=2, pool_written=10)
    any_store.commit_state("demo", PublicState(pool_seq=3, pool_size=10), dst, 0)
    assert any_store.get_drainer_state("demo") == DrainerState(
        version=1, batches=(pool,), pool_seq=3, pool_claimed=2, pool_written=10
    )
    public = any_store.get_public_state("demo")
    assert public is not None and (public.pool_seq, public.pool_size) == (3, 10)


def test_sealing_a_pool_again_answers_the_claims_taken_before_the_first_seal(
    any_store: WaitingRoomStore,
) -> None:
    # a tick that sealed the pool may lose its commit: the next tick seals it again and must
    # not count the entries nobody claimed as taken
    assert [any_store.claim_pool("demo", 4, 10) for _ in range(2)] == [1, 2]
    assert any_store.seal_pool("demo", 4) == 2
    assert any_store.seal_pool("demo", 4) == 2
    assert any_store.claim_pool("demo", 4, 10) is None
    assert any_store.seal_pool("demo", 4) == 2
    (n,) = any_store.read_counters("demo", [-4], 1)[-4]
    assert n >= SEALED_POOL and n % SEALED_POOL == 2  # sealed, its claims still readable


def test_places_given_as_numbers_never_pass_the_limit(any_store: WaitingRoomStore) -> None:
    assert any_store.free_places_given("demo") == 0
    assert [any_store.claim_free_place("demo", 2) for _ in range(3)] == [True, True, False]
    assert any_store.free_places_given("demo") == 2
    assert any_store.claim_free_place("demo", 3)  # the next tick allowed one more
    assert not any_store.claim_free_place("demo", 3)
    assert any_store.claim_free_place("other", 1)  # per room
    assert not any_store.claim_free_place("demo", 0)
    assert any_store.free_places_given("demo") == 3
    any_store.add_free_places_given("demo", 4)  # places the drainer gave its pool
    assert any_store.free_places_given("demo") == 7
    assert not any_store.claim_free_place("demo", 7)
