"""The place a visitor is shown before its slot settles, against the exact place it turns out
to have: a burst of joins replayed through the drainer's counting and the domain's estimate."""

from __future__ import annotations

import random

from waitingroom.domain import (
    estimated_position,
    last_settleable_slot,
    rank_in_slot,
    slot_of,
)

SHARDS = 32


def _burst(joins: int, seconds: float, seed: int) -> list[tuple[float, int, int, int]]:
    """(joined at, slot, shard, k) for `joins` visitors spread evenly over `seconds`."""
    rng = random.Random(seed)
    counters: dict[tuple[int, int], int] = {}
    out = []
    for t in sorted(rng.uniform(0, seconds) for _ in range(joins)):
        slot, shard = slot_of(t, 1), rng.randrange(SHARDS)
        counters[slot, shard] = counters.get((slot, shard), 0) + 1
        out.append((t, slot, shard, counters[slot, shard]))
    return out


def _counts(joins: list[tuple[float, int, int, int]], slot: int, until: float) -> list[int]:
    counts = [0] * SHARDS
    for t, sl, shard, _ in joins:
        if sl == slot and t <= until:
            counts[shard] += 1
    return counts


def _shown(joins: list[tuple[float, int, int, int]], state_age: float) -> list[tuple[int, int]]:
    """(estimate shown at join, exact place) per visitor, nobody admitted yet; the drainer
    ticks every second and the API answers from a copy of its state up to `state_age` old."""
    final = {sl: _counts(joins, sl, 1e9) for _, sl, _, _ in joins}
    before = {}
    total = 0
    for sl in sorted(final):
        before[sl] = total
        total += sum(final[sl])
    rng = random.Random(7)
    out = []
    for t, slot, shard, k in joins:
        tick = float(int(t - rng.uniform(0, state_age)))
        settled = last_settleable_slot(tick, 1)
        waiting = sum(sum(c) for sl, c in final.items() if sl <= settled)
        counted = [sum(_counts(joins, sl, tick)) for sl in range(settled + 1, slot_of(tick, 1) + 1)]
        shown = estimated_position(
            waiting,
            settled,
            0.0,
            slot,
            k,
            shard=shard,
            shards=SHARDS,
            unsettled=counted,
            counted_at=tick,
            slot_seconds=1,
            joined_at=t,
        )
        exact = before[slot] + rank_in_slot(final[slot], k, shard) + 1
        out.append((shown, exact))
    return out


def _within(pairs: list[tuple[int, int]], tolerance: float = 0.25) -> float:
    return sum(abs(s - e) <= tolerance * e for s, e in pairs) / len(pairs)


def test_after_a_burst_most_visitors_are_shown_a_place_within_a_quarter_of_the_exact_one() -> None:
    """Those who are not joined in the burst's first two seconds, before the drainer had
    counted any of it."""
    for seed in (1, 2, 3):
        for joins, seconds in ((600, 5.0), (600, 12.0), (2000, 5.0)):
            burst = _burst(joins, seconds, seed)
            pairs = _shown(burst, state_age=1.0)
            assert _within(pairs) >= 0.8, (joins, seconds)
            later = [p for (t, *_), p in zip(burst, pairs, strict=True) if t >= 2]
            assert _within(later) >= 0.97, (joins, seconds)


def test_one_shard_alone_would_have_been_far_off() -> None:
    """The same burst estimated from the ticket's own counter only (as before): mostly wrong."""
    joins = _burst(600, 5.0, 1)
    one_shard = [
        (estimated_position(0, -1, 0.0, slot, k), s_e[1])
        for (_, slot, _, k), s_e in zip(joins, _shown(joins, 1.0), strict=True)
    ]
    assert _within(one_shard) < 0.5


def test_a_lone_visitor_in_a_quiet_room_is_told_it_is_first() -> None:
    assert estimated_position(0, 99, 0.2, 100, 1, shard=31, shards=SHARDS) == 1
    assert estimated_position(30, 99, 0.2, 101, 1, shard=17, shards=SHARDS) == 31


def test_a_high_counter_in_a_thin_slot_is_not_taken_for_a_crowd() -> None:
    """k = 4 in one of 32 shards while the drainer counted 48 joins a slot: about 48, not 128."""
    shown = estimated_position(
        0, 99, 0.0, 101, 4, shard=5, shards=SHARDS, unsettled=(48, 40), counted_at=102.0
    )
    assert 48 + 30 <= shown <= 48 + 70
