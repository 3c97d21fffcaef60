"""The place a visitor is shown before its slot settles, against the exact place it turns out
to have: a burst of joins replayed through the drainer's counting and the domain's estimate."""

from __future__ import annotations

import random
from typing import Any

from tests.conftest import TICKET_SECRET, FakeClock
from waitingroom.domain import (
    ahead_in_slot,
    estimated_position,
    last_settleable_slot,
    rank_in_slot,
    slot_of,
)
from waitingroom.drainer import Drainer
from waitingroom.service import Waiting, WaitingRoom
from waitingroom.service.reads import RoomReads
from waitingroom.store.memory import MemoryStore
from waitingroom.tokens import parse_ticket

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


def _shown(
    joins: list[tuple[float, int, int, int]], state_age: float, seen_share: float = 0.0
) -> list[tuple[int, int]]:
    """(estimate shown at join, exact place) per visitor, nobody admitted yet; the drainer
    ticks every second and the API answers from a copy of its state up to `state_age` old.
    `seen_share`: the share of all joins that went through the answering container, whose
    numbers it keeps (`seen`)."""
    final = {sl: _counts(joins, sl, 1e9) for _, sl, _, _ in joins}
    before = {}
    total = 0
    for sl in sorted(final):
        before[sl] = total
        total += sum(final[sl])
    rng = random.Random(7)
    mine = random.Random(11)
    # (slot, shard) -> the highest k this container gave, and how many numbers
    given: dict[tuple[int, int], tuple[int, int]] = {}
    out = []
    for t, slot, shard, k in joins:
        if mine.random() < seen_share:
            highest, count = given.get((slot, shard), (0, 0))
            given[slot, shard] = (max(k, highest), count + 1)
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
            seen=[
                sum(h for (sl, _), (h, _) in given.items() if sl == p)
                for p in range(settled + 1, slot + 1)
            ],
            seen_whole=[
                any(sl == p for sl, _ in given)
                and all(h == n for (sl, _), (h, n) in given.items() if sl == p)
                for p in range(settled + 1, slot + 1)
            ],
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


def test_what_a_container_saw_of_its_own_joins_puts_the_burst_s_first_seconds_right() -> None:
    """The drainer counted before the burst began; the container answering the joins knows the
    numbers it gave. Seeing every join (one container, as locally) or a quarter of them (one of
    several in AWS), the first seconds of a burst are placed right too."""
    for seed in (1, 2, 3):
        for joins, seconds in ((600, 5.0), (2000, 5.0)):
            burst = _burst(joins, seconds, seed)
            alone = _within(_shown(burst, 1.0))
            assert _within(_shown(burst, 1.0, seen_share=1.0)) >= max(0.94, alone + 0.08)
            assert _within(_shown(burst, 1.0, seen_share=0.25)) >= alone  # never worse


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


def test_joins_early_in_a_burst_are_placed_behind_the_crowd_the_drainer_has_not_counted(
    memory_store: MemoryStore, memory_drainer: Drainer, clock: FakeClock
) -> None:
    """A room with a few joins a second, then a burst of 300 in a second: the drainer's last
    count saw the quiet room; the container answering the burst's joins knows the numbers it
    gave, and places them (the drainer's count alone put them among the first 40)."""
    svc = WaitingRoom(
        memory_store, [TICKET_SECRET], issuer="waitingroom", clock=clock, rng=random.Random(5)
    )
    svc.put_room("demo", {"max_active": 1, "shards": 8, "straight_in": False})
    clock.now = float(int(clock.now))
    for _ in range(6):  # a quiet room: three joins a second, the drainer ticking
        for _ in range(3):
            svc.join("demo", None)
            clock.advance(0.3)
        clock.advance(0.1)
        memory_drainer.tick_room("demo")
    waiting = svc.room_document("demo").state.waiting_settled
    clock.now = float(int(clock.now)) + 1.02
    memory_drainer.tick_room("demo")  # its last count before the burst
    shown = []
    for _ in range(300):
        joined = svc.join("demo", None)
        assert isinstance(joined.status, Waiting)
        shown.append((parse_ticket(svc.secrets, joined.ticket), joined.status.position))
        clock.advance(0.0032)
    slot = shown[0][0].slot
    counts = memory_store.read_counters("demo", [slot], 8)[slot]
    pairs = [
        (position, waiting + rank_in_slot(counts, t.k, t.shard) + 1)
        for t, position in shown[75:]  # a quarter into the slot on
        if t.slot == slot
    ]
    assert len(pairs) > 200 and _within(pairs) >= 0.85


def test_a_slot_between_counts_what_was_seen_of_it_not_the_ticket_s_own_pace() -> None:
    """The drainer's copy counted nobody (it predates the burst); the container gave all 30
    numbers of slot 221, closed when the ticket joined slot 222 with k = 3, a seventh of a
    second in. Its own shard says about 128 a slot: that is its own slot's pace, while slot 221
    had 30. A container that gave only some of slot 221's numbers keeps that pace for it."""
    args = (0, 218, 0.0, 222, 3)
    kw: dict[str, Any] = {"shard": 14, "shards": 32, "unsettled": [0, 0], "seen": [0, 0, 30, 26]}
    kw |= {"counted_at": 220.51, "slot_seconds": 1, "joined_at": 222.14}
    position = estimated_position(*args, **kw, seen_whole=[False, False, True, True])
    own_pace = (3 - 1) * 32 / 0.5  # k - 1 in one of 32 shards, at least half a slot in
    in_slot = ahead_in_slot(3, 14, 32, own_pace / 32)
    assert position == int(30 + in_slot) + 1
    one_of_many = estimated_position(*args, **kw, seen_whole=[False] * 4)
    assert one_of_many == int(own_pace + in_slot) + 1


def test_a_slot_counted_as_it_began_goes_by_what_was_seen_of_it_once_closed() -> None:
    """The drainer counted slot 307 a tenth of a second in (15 joins) and carried 119 a slot
    from slot 306; the container then gave all 75 numbers of 307 before it closed: 307 is
    taken as 75, not as the 119 carried from the burst's peak."""
    args = (0, 305, 119.0, 308, 1)
    kw: dict[str, Any] = {"shard": 20, "shards": 32, "unsettled": [119, 15]}
    kw |= {"counted_at": 307.09, "slot_seconds": 1, "joined_at": 308.14}
    position = estimated_position(*args, **kw, seen=[119, 75, 7], seen_whole=[True] * 3)
    in_slot = ahead_in_slot(1, 20, 32, 75 / 32)
    assert position == int(119 + 75 + in_slot) + 1
    # a container that gave some of its numbers only (one of many): the carried pace stands
    few = estimated_position(*args, **kw, seen=[119, 20, 7], seen_whole=[False] * 3)
    assert few == int(119 + 119 + ahead_in_slot(1, 20, 32, 119 / 32)) + 1


def test_a_container_knows_a_slot_s_count_only_when_it_gave_every_number_of_it(
    clock: FakeClock,
) -> None:
    reads = RoomReads(MemoryStore(clock=clock), clock=clock)
    for shard, k in ((0, 1), (0, 2), (1, 1)):
        reads.saw_number("demo", 5, shard, k)
    reads.saw_number("demo", 6, 0, 1)
    assert reads.seen_counts("demo", 4, 6) == ([0, 3, 1], [False, True, True])
    reads.saw_number("demo", 5, 1, 3)  # number 2 of shard 1 went to another container
    assert reads.seen_counts("demo", 5, 5) == ([5], [False])
