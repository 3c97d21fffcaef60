"""The drainer's tick as a pure plan: inputs in, what to write out; no store, no clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from waitingroom.domain import (
    PICKUP_GRACE_SECONDS,
    Batch,
    DrainerState,
    LedgerCounts,
    PublicState,
    RateWindow,
    RoomConfig,
    SettledSlot,
    last_settleable_slot,
    slot_of,
)
from waitingroom.planning import (
    CLOSE_MARGIN_SECONDS,
    MAX_SETTLE_SLOTS_PER_TICK,
    TickPlan,
    is_dormant,
    place_tickets,
    plan_tick,
    settle_window,
)

NOW = 1_000_000.0
SETTLED = last_settleable_slot(NOW, 1)  # everything closed is settled: nothing to read


def room(**changes: object) -> RoomConfig:
    return replace(RoomConfig("demo", max_active=5, shards=2), **changes)  # type: ignore[arg-type]


def waiting(n: int, consumed: int = 0) -> PublicState:
    """A room with n settled tickets, `consumed` of them admitted, every closed slot settled."""
    return PublicState(settled_through=SETTLED, settled_total=n, consumed=consumed)


def plan(
    cfg: RoomConfig,
    pub: PublicState,
    dst: DrainerState | None = None,
    *,
    now: float = NOW,
    counters: Mapping[int, Sequence[int]] | None = None,
    ledger: dict[int, LedgerCounts] | None = None,
    first_after_open: SettledSlot | None = None,
    seed: str = "",
) -> TickPlan:
    dst = dst or DrainerState(cursor_slot=0, max_shards=cfg.shards)
    if counters is None:  # nobody joined in the slots that closed since `pub`
        window = settle_window(cfg, pub, dst, now)
        counters = {sl: (0,) * window.shards for sl in window.slots}
    return plan_tick(
        cfg,
        pub,
        dst,
        now=now,
        counters=counters,
        ledger=ledger or {},
        first_after_open=first_after_open,
        draw_seed=seed,
    )


def held(count: int, *, admitted_at: float = NOW - 5, seq: int = 1, start: int = 0) -> Batch:
    return Batch(seq, start, count, admitted_at, admitted_at + 120, admitted_at + 720, 1)


def test_admits_the_free_places_in_queue_order() -> None:
    p = plan(room(max_active=5), waiting(20, consumed=3))
    assert p.admitted == 5
    assert p.admit is not None and (p.admit.batch.start, p.admit.batch.count) == (3, 5)
    assert (p.pub.consumed, p.pub.active, p.pub.admitted_total) == (8, 5, 5)
    assert p.dst.pending == p.admit  # committed first, materialised after
    assert p.settled == () and p.joined == 0


def test_admits_only_what_active_sessions_leave_free() -> None:
    dst = DrainerState(next_seq=2, batches=(held(3),), max_shards=2)
    p = plan(room(max_active=5), waiting(20, consumed=3), dst)
    assert p.admitted == 2
    assert p.pub.active == 5


def test_the_rate_budget_caps_admissions() -> None:
    dst = DrainerState(rates=RateWindow(((NOW - 30, 3),)), max_shards=2)
    p = plan(room(max_active=50, max_admits_per_minute=4), waiting(20), dst)
    assert p.admitted == 1
    later = plan(room(max_active=50, max_admits_per_minute=4), waiting(20), dst, now=NOW + 31)
    assert later.admitted == 4  # the earlier admissions have left the minute


def test_nobody_is_admitted_beyond_the_queue_or_when_full() -> None:
    assert plan(room(max_active=5), waiting(2)).admitted == 2
    assert plan(room(max_active=5), waiting(2, consumed=2)).admit is None
    full = DrainerState(batches=(held(5),), max_shards=2)
    assert plan(room(max_active=5), waiting(20, consumed=5), full).admitted == 0


def test_closed_slots_are_settled_with_the_tickets_before_them() -> None:
    pub = PublicState(settled_through=SETTLED - 3, settled_total=10, join_rate_per_slot=1.0)
    counters = {SETTLED - 2: (2, 1), SETTLED - 1: (0, 0), SETTLED: (0, 4)}
    p = plan(room(max_active=0), pub, counters=counters)
    assert p.settled == (SettledSlot(SETTLED - 2, (2, 1), 10), SettledSlot(SETTLED, (0, 4), 13))
    assert (p.joined, p.pub.settled_total, p.pub.settled_through) == (7, 17, SETTLED)
    assert p.pub.join_rate_per_slot == 0.7 * 1.0 + 0.3 * (7 / 3)


def test_a_tick_settles_at_most_a_bounded_number_of_slots() -> None:
    w = settle_window(room(), PublicState(settled_through=0), DrainerState(max_shards=8), NOW)
    assert (w.first, w.last, w.shards) == (1, MAX_SETTLE_SLOTS_PER_TICK, 8)


def test_no_shows_are_reclaimed_after_the_pickup_window() -> None:
    batch = held(5, admitted_at=NOW - 200)  # pickup deadline NOW - 80
    dst = DrainerState(next_seq=2, batches=(batch,), max_shards=2)
    ledger = {1: LedgerCounts(picked=2, completed=1)}
    p = plan(room(max_active=5), waiting(20, consumed=5), dst, ledger=ledger)
    assert (p.reclaimed, p.completed) == (3, 1)
    assert p.admitted == 4  # one picked up and still in session holds a place
    assert p.pub.reclaimed_total == 3 and p.pub.completed_total == 1
    assert batch.pickup_deadline + PICKUP_GRACE_SECONDS < NOW


def test_paused_and_closed_rooms_admit_nobody() -> None:
    assert plan(room(status="paused"), waiting(20)).admitted == 0
    closed = plan(room(status="closed"), waiting(20))
    assert closed.admitted == 0
    assert closed.pub.closed_slot == slot_of(NOW + CLOSE_MARGIN_SECONDS, 1)
    # nothing live, everything settled up to the closing slot: the room is dormant
    done = replace(closed.pub, settled_through=closed.pub.closed_slot or 0)
    assert is_dormant(room(status="closed"), done, closed.dst)


def test_a_scheduled_room_draws_its_prequeue_when_it_opens() -> None:
    opens_at = NOW - 10
    cfg = room(status="scheduled", opens_at=opens_at, max_active=3)
    opens_slot = slot_of(opens_at, 1)
    before = plan(cfg, waiting(8), now=opens_at - 1)
    assert before.admitted == 0 and not before.opened and not before.pub.draw_seed
    after_open = SettledSlot(opens_slot + 1, (1, 1), 6)  # 6 joined before the opening
    p = plan(cfg, waiting(8), first_after_open=after_open, seed="s33d")
    assert p.opened and p.pub.draw_seed == "s33d" and p.pub.opened_at == NOW
    assert p.pub.prequeue_size == 6
    assert (p.dst.cursor_slot, p.dst.cursor_offset) == (opens_slot, 0)
    assert p.admitted == 3
    nobody_after = plan(cfg, waiting(8), seed="s33d")
    assert nobody_after.pub.prequeue_size == 8


def test_placing_the_tickets_moves_the_cursor_and_records_waits() -> None:
    p = plan(room(max_active=2), waiting(5))
    tickets = [(SETTLED - 9, 1, 0), (SETTLED - 4, 1, 1)]
    placed = place_tickets(p, tickets, SETTLED - 4, 2, now=NOW, slot_seconds=1)
    assert (placed.dst.cursor_slot, placed.dst.cursor_offset) == (SETTLED - 4, 2)
    assert placed.dst.waits == (int(NOW - (SETTLED - 9)), int(NOW - (SETTLED - 4)))
    assert placed.pub.wait_p90 == float(int(NOW - (SETTLED - 9)))


def test_the_plan_is_a_function_of_its_inputs() -> None:
    dst = DrainerState(next_seq=2, batches=(held(3),), max_shards=2)
    assert plan(room(), waiting(20), dst) == plan(room(), waiting(20), dst)
