"""Queue order, positions, admission budget and session accounting: pure maths, no I/O."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from waitingroom.domain import (
    JOIN_OVERDUE_LIMIT_SECONDS,
    JOIN_OVERDUE_POLL_SECONDS,
    PICKUP_GRACE_SECONDS,
    RECENT_SLOTS,
    RECENT_SLOTS_MAX_SHARDS,
    SETTLE_DELAY_SECONDS,
    STATE_PUBLISH_SECONDS,
    Batch,
    LedgerCounts,
    RateWindow,
    SettledSlot,
    account,
    add_admissions,
    admission_budget,
    draw_delay_seconds,
    draw_place,
    eta_seconds,
    join_was_late,
    last_settleable_slot,
    ledger_shards_for,
    next_settle_at,
    opening_spread_seconds,
    poll_after_seconds,
    prequeue_poll_seconds,
    publish_due,
    queue_number,
    rank_in_slot,
    recent_slots,
    settle_look_seconds,
    state_good_until,
    take_tickets,
    tickets_from,
)


def brute_order(counts: list[int]) -> list[tuple[int, int]]:
    """The definition of queue order within a slot: every (k, s) sorted by k then s."""
    return sorted(((k, s) for s, c in enumerate(counts) for k in range(1, c + 1)))


@pytest.mark.parametrize("seed", range(20))
def test_rank_in_slot_matches_the_definition_of_queue_order(seed: int) -> None:
    rnd = random.Random(seed)
    counts = [rnd.choice([0, 0, 1, 2, 5, 9]) for _ in range(rnd.randint(1, 12))]
    order = brute_order(counts)
    assert [rank_in_slot(counts, k, s) for k, s in order] == list(range(len(order)))
    assert list(tickets_from(counts, 0)) == order
    for offset in range(len(order) + 1):
        assert list(tickets_from(counts, offset)) == order[offset:]


def test_queue_numbers_order_by_slot_then_k_then_shard() -> None:
    keys = [(slot, k, s) for slot in (100, 101) for k in (1, 2, 700) for s in (0, 5, 255)]
    numbers = [queue_number(slot, k, s, epoch_slot=100) for slot, k, s in keys]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    # a year of one-second slots still fits in a JavaScript number
    assert queue_number(100 + 366 * 86_400, 999_999, 255, epoch_slot=100) < 2**53


def test_take_tickets_walks_slots_in_order_and_moves_the_cursor() -> None:
    slots = [
        SettledSlot(10, (2, 0, 1), cum_before=0),
        SettledSlot(12, (0, 1), cum_before=3),
        SettledSlot(13, (1, 1), cum_before=4),
    ]
    got, slot, offset = take_tickets(slots, 10, 0, 2)
    assert got == [(10, 1, 0), (10, 1, 2)]
    assert (slot, offset) == (10, 2)
    got, slot, offset = take_tickets(slots, slot, offset, 3)
    assert got == [(10, 2, 0), (12, 1, 1), (13, 1, 0)]
    assert (slot, offset) == (13, 1)
    got, slot, offset = take_tickets(slots, slot, offset, 10)
    assert got == [(13, 1, 1)]
    assert (slot, offset) == (14, 0)


def test_ranks_are_global_across_slots() -> None:
    a = SettledSlot(10, (2, 1), cum_before=0)
    b = SettledSlot(11, (1, 3), cum_before=a.total)
    every = [a.rank_of(k, s) for k, s in brute_order(list(a.counts))] + [
        b.rank_of(k, s) for k, s in brute_order(list(b.counts))
    ]
    assert every == list(range(7))
    assert b.holds(3, 1) and not b.holds(2, 0) and not b.holds(1, 5)


def test_admission_budget_is_free_places_capped_by_rate() -> None:
    assert (
        admission_budget(max_active=50, active=0, max_admits_per_minute=0, admitted_last_minute=0)
        == 50
    )
    assert (
        admission_budget(max_active=50, active=48, max_admits_per_minute=0, admitted_last_minute=0)
        == 2
    )
    assert (
        admission_budget(max_active=50, active=60, max_admits_per_minute=0, admitted_last_minute=0)
        == 0
    )
    assert (
        admission_budget(max_active=50, active=0, max_admits_per_minute=30, admitted_last_minute=25)
        == 5
    )
    assert (
        admission_budget(max_active=50, active=0, max_admits_per_minute=30, admitted_last_minute=40)
        == 0
    )


def batch(seq: int = 1, count: int = 10, at: float = 1000.0) -> Batch:
    return Batch(
        seq=seq,
        start=0,
        count=count,
        admitted_at=at,
        pickup_deadline=at + 60,
        expires_at=at + 60 + 300,
        ledger_shards=ledger_shards_for(count),
    )


def test_everyone_admitted_holds_a_place_until_the_pickup_window_closes() -> None:
    acc = account([batch()], {1: LedgerCounts(picked=3, completed=0)}, now=1030)
    assert acc.active == 10
    assert acc.newly_reclaimed == 0


def test_no_shows_are_reclaimed_after_the_pickup_window() -> None:
    b = batch()
    now = b.pickup_deadline + PICKUP_GRACE_SECONDS
    acc = account([b], {1: LedgerCounts(picked=3, completed=0)}, now=now)
    assert acc.active == 3
    assert acc.newly_reclaimed == 7
    # counted once: the next tick reclaims nothing more
    again = account(acc.batches, {1: LedgerCounts(picked=3, completed=0)}, now=now + 5)
    assert again.newly_reclaimed == 0
    assert again.active == 3


def test_completions_free_places_at_once_and_expiry_frees_the_rest() -> None:
    b = batch()
    acc = account([b], {1: LedgerCounts(picked=10, completed=4)}, now=1010)
    assert (acc.active, acc.newly_completed) == (6, 4)
    acc = account(acc.batches, {1: LedgerCounts(picked=10, completed=4)}, now=b.expires_at)
    assert acc.active == 0
    assert acc.batches == ()
    assert acc.newly_expired == 6


def test_active_never_exceeds_max_active_over_random_ticks() -> None:
    """Simulate ticks with random pickups and completions: the invariant holds throughout."""
    rnd = random.Random(7)
    max_active, now, seq = 25, 0.0, itertools.count(1)
    batches: list[Batch] = []
    truth: dict[int, LedgerCounts] = {}
    for _ in range(300):
        now += 5
        # people pick up and complete at random (only within what is allowed)
        for b in batches:
            c = truth[b.seq]
            picked = c.picked
            if now < b.pickup_deadline:
                picked = min(b.count, c.picked + rnd.randint(0, 2))
            completed = min(picked, c.completed + rnd.randint(0, 1))
            truth[b.seq] = LedgerCounts(picked, completed)
        acc = account(batches, truth, now)
        assert acc.active <= max_active
        n = admission_budget(
            max_active=max_active,
            active=acc.active,
            max_admits_per_minute=0,
            admitted_last_minute=0,
        )
        batches = list(acc.batches)
        if n:
            s = next(seq)
            b = Batch(s, 0, n, now, now + 20, now + 120, ledger_shards_for(n))
            truth[s] = LedgerCounts(0, 0)
            batches.append(b)
        assert sum(b.holds(now) for b in batches) <= max_active


def test_ledger_shards_grow_with_batch_size() -> None:
    assert ledger_shards_for(1) == 1
    assert ledger_shards_for(250) == 1
    assert ledger_shards_for(251) == 2
    assert ledger_shards_for(10**6) == 32


def test_rate_window_counts_recent_admissions() -> None:
    w = RateWindow().add(0, 10).add(30, 20).add(90, 30)
    assert w.admitted_since(30) == 30
    assert w.admitted_since(-1) == 60
    assert w.rate(now=120, window=150) == pytest.approx(20 / 30)  # the higher middle one
    assert w.rate(now=120, window=100) == 0.0  # one interval in view: not known yet
    assert RateWindow().rate(now=5) == 0.0


def test_the_observed_rate_is_how_fast_places_come_free_not_the_first_fill() -> None:
    """150 free places filled at once, a pause while those sessions run, then 30 a second."""
    w = RateWindow().add(-8, 1).add(0, 150)
    for t in range(4, 9):
        w = w.add(t, 30)
    assert w.rate(now=8.5) == pytest.approx(30)
    early = RateWindow().add(0, 150).add(4, 20).add(5, 30)  # the pause, then one second of pace
    assert early.rate(now=5.5) == pytest.approx(30)


def test_eta_uses_the_observed_rate_then_the_configured_one() -> None:
    assert eta_seconds(100, admit_rate=2.0, fallback_rate=0.5) == 50
    assert eta_seconds(100, admit_rate=0.0, fallback_rate=0.5) == 200
    assert eta_seconds(100, admit_rate=0.0, fallback_rate=0.0) is None


def test_polling_slows_down_far_from_the_front() -> None:
    assert poll_after_seconds(0, 0) == 1
    assert poll_after_seconds(1, 3) == 2
    assert poll_after_seconds(10_000, 5_000) == 40  # a third of the 120 s pickup window
    assert poll_after_seconds(10_000, 5_000, pickup_seconds=600) == 60
    assert poll_after_seconds(10_000, None) == 20


def test_a_ten_minute_wait_costs_about_twenty_looks() -> None:
    rate, position, now, looks = 5.0, 3000, 0.0, 0  # 3,000 ahead at 5/s: 600 s
    while position > 0:
        eta = eta_seconds(position, rate, rate)
        now += poll_after_seconds(position, eta)
        looks += 1
        position = max(0, 3000 - int(now * rate))
    assert 15 <= looks <= 25, looks


def test_the_pre_queue_looks_rarely_then_spreads_its_first_look_after_the_draw() -> None:
    # an hour before: once a minute; half a minute before: not before the opening
    assert prequeue_poll_seconds(3600, 1_000_000, 1, 0.0) == 60
    first = [10 + prequeue_poll_seconds(10, 1_000_000, 1, u / 10) for u in range(10)]
    assert all(t >= 10 + draw_delay_seconds(1) for t in first)
    assert max(first) - min(first) >= 0.9 * opening_spread_seconds(1_000_000) >= 9
    # a short pickup window narrows the spread: the first batch admitted looks in time
    assert opening_spread_seconds(1_000_000, pickup_seconds=30) == 10
    assert prequeue_poll_seconds(-1, 1_000_000, 1, 0.999, pickup_seconds=30) < 30 / 2


def test_a_slot_settles_only_after_the_settle_delay() -> None:
    # slot 100 closes at 101: it settles a second later; a bump answered after 101.5 is late
    assert last_settleable_slot(now=101.95, slot_seconds=1) == 99
    assert last_settleable_slot(now=102.0, slot_seconds=1) == 100
    assert not join_was_late(100, 1, answered_at=101.45)
    assert join_was_late(100, 1, answered_at=101.55)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 97, 1000, 4097])
def test_the_pre_queue_draw_is_a_permutation_and_invertible(size: int) -> None:
    places = [draw_place(i, size, "seed-1") for i in range(size)]
    assert sorted(places) == list(range(size))
    assert all(draw_place(p, size, "seed-1", inverse=True) == i for i, p in enumerate(places))


def test_the_draw_depends_on_the_seed_and_is_not_the_join_order() -> None:
    a = [draw_place(i, 1000, "seed-a") for i in range(1000)]
    b = [draw_place(i, 1000, "seed-b") for i in range(1000)]
    assert a != b
    assert a == [draw_place(i, 1000, "seed-a") for i in range(1000)]  # recorded seed: reproducible
    # fair: early joiners are not favoured (mean drawn place of the first tenth ~ the middle)
    early = sum(a[:100]) / 100
    assert 350 < early < 650


def test_admissions_within_half_a_minute_share_a_batch_that_covers_them_all() -> None:
    batches, first, seq = add_admissions(
        (), 1, start=0, count=10, now=1000, pickup_seconds=60, session_seconds=300
    )
    assert (len(batches), first.seq, seq) == (1, 1, 2)
    batches, second, seq = add_admissions(
        batches, seq, start=10, count=5, now=1020, pickup_seconds=60, session_seconds=300
    )
    [merged] = batches
    assert (merged.seq, merged.start, merged.count, seq) == (1, 0, 15, 2)
    # the batch holds places until the last of its tickets could be picked up / expire ...
    assert (merged.pickup_deadline, merged.expires_at) == (1080, 1380)
    # ... while the newly admitted tickets keep their own times, under the shared ledger
    assert (second.seq, second.start, second.count) == (1, 10, 5)
    assert (second.pickup_deadline, second.expires_at) == (1080, 1380)
    assert merged.holds(1079) == 15 and merged.holds(1380) == 0


@pytest.mark.parametrize(
    ("now", "final", "count"),
    [(1031.0, False, 5), (1010.0, True, 5), (1010.0, False, 300)],
    ids=["half a minute later", "pickup window closed", "needs more ledger shards"],
)
def test_a_new_batch_starts_when_the_last_cannot_take_more(
    now: float, final: bool, count: int
) -> None:
    first = batch(count=10, at=1000.0)
    batches: tuple[Batch, ...] = (replace(first, final=final),)
    batches, new, seq = add_admissions(
        batches, 2, start=10, count=count, now=now, pickup_seconds=60, session_seconds=300
    )
    assert len(batches) == 2 and new.seq == 2 and seq == 3


def test_the_drainer_is_told_when_the_oldest_slot_with_joins_can_settle() -> None:
    # settled through 99; slot 100 empty, slot 101 has joins: it ends at 102, settles a delay later
    assert next_settle_at(99, (0, 7, 3), 1) == 102 + SETTLE_DELAY_SECONDS
    assert next_settle_at(99, (0, 0), 1) is None
    assert next_settle_at(19, (4,), 5) == 105 + SETTLE_DELAY_SECONDS  # slot 20 ends at 105


def test_while_joins_keep_coming_the_open_slot_is_expected_to_settle_too() -> None:
    # counted at the very start of slot 101 (nobody in it yet) while ~3 a slot join
    assert next_settle_at(100, (0,), 1, join_rate_per_slot=3.0) == 102 + SETTLE_DELAY_SECONDS
    assert next_settle_at(100, (0,), 1, join_rate_per_slot=0.1) is None  # a quiet room
    assert next_settle_at(100, (), 1, join_rate_per_slot=3.0) is None  # a closed room


def test_a_state_copy_is_good_until_the_next_settle_is_published() -> None:
    # slot 101 has joins: it settles at 102 + delay; the drainer publishes just after
    due = publish_due(100, (5,), updated_at=101.5, slot_seconds=1)
    assert due == 102 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    assert state_good_until(102.5, 1.0, due) == due  # read before: dropped when it is due
    assert state_good_until(due + 0.2, 1.0, due) == pytest.approx(due + 0.3)  # overdue: polled
    assert state_good_until(due + 60, 1.0, due) == due + 61  # the drainer is down: a second
    assert state_good_until(102.5, 1.0, None) == 103.5
    # the drainer ticked after that moment and left the slot (a draw window): nothing is due
    assert publish_due(100, (5,), updated_at=104.0, slot_seconds=1) is None


def test_a_settle_is_awaited_for_numbers_the_caller_gave_that_the_state_does_not_count() -> None:
    # counted at 101.2 with nobody in slot 101; this container gave numbers in 101 since
    quiet = publish_due(100, (0,), updated_at=101.2, slot_seconds=1)
    assert quiet is None
    due = publish_due(100, (0,), updated_at=101.2, slot_seconds=1, joined_slot=101)
    assert due == 102 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS
    # slot 101 counted already settles first; numbers in settled slots await nothing
    assert publish_due(100, (4, 0), 102.2, 1, joined_slot=102) == due
    assert publish_due(100, (0,), updated_at=101.2, slot_seconds=1, joined_slot=100) is None
    # an API container's own copy: read once more 0.3 s past due, then a second later
    poll, limit = JOIN_OVERDUE_POLL_SECONDS, JOIN_OVERDUE_LIMIT_SECONDS
    assert state_good_until(due, 1.0, due, poll, limit) == pytest.approx(due + 0.3)
    assert state_good_until(due + 0.3, 1.0, due, poll, limit) == pytest.approx(due + 1.3)
    # the drainer ticked past the end of the slot this container gave numbers in and left it:
    # a later counted settle is still awaited
    later = publish_due(100, (0, 3), 103.2, 1, joined_slot=101)
    assert later == 103 + SETTLE_DELAY_SECONDS + STATE_PUBLISH_SECONDS  # slot 102 ends at 103


def test_an_estimate_looks_just_after_its_slot_settles_then_every_second() -> None:
    # joined at 100.4 in slot 100 (1 s slots): settles at 101 + delay; first look a little after
    settles = 101 + SETTLE_DELAY_SECONDS - 100.4
    first = settle_look_seconds(100, 1, 100.4, 0.1, 0.0)
    assert first is not None and settles <= first + 0.1 <= settles + 1.0
    last = settle_look_seconds(100, 1, 100.4, 0.1, 0.999)
    assert last is not None and first < last <= first + 1.0  # a crowd spread over under a second
    assert settle_look_seconds(100, 1, 100.4, settles + 1.0, 0.5) == 1.0  # not there yet: again
    assert settle_look_seconds(100, 1, 100.4, settles + 30, 0.5) is None  # drainer behind
    # a long slot: still a look every few seconds meanwhile
    assert settle_look_seconds(10, 60, 600.0, 0.0, 0.5) == 5.0


def test_the_state_carries_the_newest_settled_slots_that_hold_tickets() -> None:
    kept = tuple(SettledSlot(s, (1, 1), 2 * (s - 7)) for s in (7, 8, 9, 10, 11))
    settled = [
        SettledSlot(12, (0, 0), 10),
        SettledSlot(13, (3, 3), 10),
        SettledSlot(14, (1, 0), 16),
    ]
    # an empty slot is left out; the oldest go first
    assert [s.slot for s in recent_slots(kept, settled)] == [9, 10, 11, 13, 14]
    assert len(recent_slots((), kept)) == RECENT_SLOTS
    drawn = SettledSlot(15, (2, 2), 11, draw_start=11, draw_size=4, draw_seed="ab")
    wide = SettledSlot(16, (1,) * (RECENT_SLOTS_MAX_SHARDS + 1), 15)
    # a slot drawn into an order, or one too wide for every look, keeps to its document
    assert recent_slots(kept, [drawn, wide]) == kept
