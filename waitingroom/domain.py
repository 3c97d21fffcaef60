"""Queue and admission maths. Pure: no I/O, no clock; time is always an argument.

Queue order is (slot, k, s): slot is the join time cut into `slot_seconds`, s a random shard in
[0, S), k the value the (slot, s) counter returned. Within a slot tickets interleave by k then s,
so someone who joined later can be ahead of you only within your own slot.

Ranks are global and 0-based: the rank of a ticket is the number of tickets ahead of it since the
room began (admitted or not). The drainer's cursor `consumed` is the rank of the next ticket to
admit, so a waiting ticket's position is `rank - consumed + 1`.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from waitingroom import rooms
from waitingroom.forecast import Flow, eta_from_forecast
from waitingroom.rooms import Queueing, RoomStatus

# A slot is settled (its counters read and frozen into totals) this long after it closes. A join
# whose counter update comes back later than half of it takes a new number instead, so a counter
# bump that the drainer could miss is never handed out.
SETTLE_DELAY_SECONDS = 1.0
K_BITS = 20
SHARD_BITS = 8
MAX_SHARDS = 1 << SHARD_BITS
MAX_K = (1 << K_BITS) - 1


def slot_of(t: float, slot_seconds: int) -> int:
    return int(t // slot_seconds)


def slot_end(slot: int, slot_seconds: int) -> float:
    return float((slot + 1) * slot_seconds)


def last_settleable_slot(now: float, slot_seconds: int) -> int:
    """The newest slot whose counters can no longer change."""
    return slot_of(now - SETTLE_DELAY_SECONDS, slot_seconds) - 1


# Joins per slot (the drainer's running average) past which the slot open at a tick is taken to
# be joined too, though its count then was still 0.
BUSY_JOINS_PER_SLOT = 0.5


def next_settle_at(
    settled_through: int,
    unsettled_counts: Sequence[int],
    slot_seconds: int,
    join_rate_per_slot: float = 0.0,
) -> float | None:
    """When the oldest slot that somebody joined and that has not settled yet can settle (its
    end + the settle delay): a drainer that ticks then turns those visitors' estimates into
    exact places at once rather than up to a whole tick later. While joins keep coming
    (`join_rate_per_slot`), the slot open when they were counted is one of those even with
    nobody counted in it yet. None when nobody is counted or expected."""
    for i, count in enumerate(unsettled_counts):
        if count:
            return slot_end(settled_through + 1 + i, slot_seconds) + SETTLE_DELAY_SECONDS
    if unsettled_counts and join_rate_per_slot >= BUSY_JOINS_PER_SLOT:
        last = settled_through + len(unsettled_counts)
        return slot_end(last, slot_seconds) + SETTLE_DELAY_SECONDS
    return None


# How long a copy of the room state stays good for answering polls. A copy is dropped when the
# next slot somebody joined should have settled (the drainer ticks then and publishes within
# STATE_PUBLISH_SECONDS), not up to a whole cache life later: every copy made from it (the API
# container's, the edge's) would otherwise show that slot unsettled a second or two longer.
# While that settle is overdue, the copy is read again every STATE_OVERDUE_POLL_SECONDS, for
# at most STATE_OVERDUE_LIMIT_SECONDS (then the drainer is down or far behind: the usual life).
# An API container's own copy (joins, polls that reach it) is read once more
# JOIN_OVERDUE_POLL_SECONDS past due (then the usual life): a drainer a moment late with a
# settle would otherwise leave every join of the next second a fill behind. At most two reads
# a second per container: at the burst, 2,356 containers read the room's key (STATE and
# CONFIG) at 2,945 read units/s at worst, under its partition's 3,000 (BENCHMARKS.md).
STATE_PUBLISH_SECONDS = 0.15
STATE_OVERDUE_POLL_SECONDS = 0.1
STATE_OVERDUE_LIMIT_SECONDS = 10.0
JOIN_OVERDUE_POLL_SECONDS = 0.3
JOIN_OVERDUE_LIMIT_SECONDS = 0.25  # under the poll: the read 0.3 s past due is the last
# A shared cache (the edge) that refreshes its copy just before such a publish would keep the
# old one for its whole life: its request, when the publish is due within this long, waits for
# it (and for at most STATE_HOLD_OVERDUE_SECONDS past the due moment).
STATE_HOLD_SECONDS = 0.5
STATE_HOLD_OVERDUE_SECONDS = 0.5


def publish_due(
    settled_through: int,
    unsettled_counts: Sequence[int],
    updated_at: float,
    slot_seconds: int,
    join_rate_per_slot: float = 0.0,
    joined_slot: int | None = None,
) -> float | None:
    """When the drainer should have published the next settle somebody waits on (None: nobody
    waits on one, or the drainer ticked after it and did not settle that slot, as in a draw
    window or before a scheduled opening). `joined_slot`: the oldest slot after
    `settled_through` that the caller itself gave a number in (a burst that began after the
    drainer's last count: its state counts nobody yet)."""
    settles = next_settle_at(settled_through, unsettled_counts, slot_seconds, join_rate_per_slot)
    if joined_slot is not None and joined_slot > settled_through:
        mine = slot_end(joined_slot, slot_seconds) + SETTLE_DELAY_SECONDS
        if mine > updated_at:  # else the drainer ticked after it and left it (behind, a draw)
            settles = mine if settles is None else min(settles, mine)
    if settles is None or updated_at >= settles:
        return None
    return settles + STATE_PUBLISH_SECONDS


def state_good_until(
    fetched_at: float,
    ttl: float,
    due: float | None,
    poll: float = STATE_OVERDUE_POLL_SECONDS,
    limit: float = STATE_OVERDUE_LIMIT_SECONDS,
) -> float:
    """Until when a copy of the room state read at `fetched_at` answers polls (see above);
    `due` is its `publish_due`; while that is overdue (for at most `limit`), every `poll`."""
    if due is None:
        return fetched_at + ttl
    if fetched_at < due:
        return min(fetched_at + ttl, due)
    if fetched_at - due < limit:
        return fetched_at + min(ttl, poll)
    return fetched_at + ttl


def join_was_late(slot: int, slot_seconds: int, answered_at: float) -> bool:
    """True when a counter bump came back too late to be sure the drainer will count it."""
    return answered_at > slot_end(slot, slot_seconds) + SETTLE_DELAY_SECONDS / 2


def queue_number(slot: int, k: int, shard: int, epoch_slot: int) -> int:
    """One integer that orders the queue (smaller is served first); fits in a JS number."""
    return (((slot - epoch_slot) << K_BITS) | k) << SHARD_BITS | shard


def rank_in_slot(counts: Sequence[int], k: int, shard: int) -> int:
    """Tickets of the same slot ahead of (k, shard), given the slot's final counter values."""
    before_level = sum(min(c, k - 1) for c in counts)
    same_level = sum(1 for s in range(min(shard, len(counts))) if counts[s] >= k)
    return before_level + same_level


def tickets_from(counts: Sequence[int], offset: int) -> Iterator[tuple[int, int]]:
    """(k, shard) of the slot's tickets in queue order, starting at in-slot rank `offset`."""
    if offset < 0:
        raise ValueError("offset must be >= 0")
    top = max(counts, default=0)
    rank = 0
    for k in range(1, top + 1):
        level = [s for s, c in enumerate(counts) if c >= k]
        if rank + len(level) <= offset:
            rank += len(level)
            continue
        for s in level:
            if rank >= offset:
                yield k, s
            rank += 1


@dataclass(frozen=True, slots=True)
class SettledSlot:
    """A closed slot: its counters' final values and how many tickets came before it."""

    slot: int
    counts: tuple[int, ...]
    cum_before: int
    # a random room's draw window holding this slot: ranks [draw_start, draw_start + draw_size)
    # drawn into an order by draw_seed (draw_size 0: no draw, the natural order)
    draw_start: int = 0
    draw_size: int = 0
    draw_seed: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts)

    def rank_of(self, k: int, shard: int) -> int:
        return self.cum_before + rank_in_slot(self.counts, k, shard)

    def drawn_rank(self, k: int, shard: int) -> int:
        """The place in line: the natural rank, or its drawn place in the slot's draw window."""
        rank = self.rank_of(k, shard)
        if not self.draw_size:
            return rank
        return self.draw_start + draw_place(rank - self.draw_start, self.draw_size, self.draw_seed)

    def holds(self, k: int, shard: int) -> bool:
        return 0 <= shard < len(self.counts) and 1 <= k <= self.counts[shard]


def admission_budget(
    *, max_active: int, active: int, max_admits_per_minute: int, admitted_last_minute: int
) -> int:
    """How many to admit now: free places, capped by the rate budget (0 means no cap)."""
    free = max(0, max_active - active)
    if max_admits_per_minute > 0:
        free = min(free, max(0, max_admits_per_minute - admitted_last_minute))
    return free


@dataclass(frozen=True, slots=True)
class Batch:
    """The tickets one tick admitted: ranks [start, start + count).

    Timeline of a batch:
      admitted_at ── pickup_deadline ─(+grace)─ finalised ─────────── expires_at
      holds `count - completed`     │ holds `picked - completed`       │ holds 0, dropped
    Until the pickup window has closed everyone admitted holds a place; after it, only those who
    picked up their token (no-shows are reclaimed); at the tokens' exp everyone is released.
    """

    seq: int
    start: int
    count: int
    admitted_at: float
    pickup_deadline: float
    expires_at: float
    ledger_shards: int
    picked: int = 0
    completed: int = 0
    final: bool = False
    # a pool of tokens minted ahead for an idle room (`start` and `count`: its entries, not
    # ranks in the queue); an unclaimed entry is reclaimed at the deadline like a no-show
    pool: bool = False

    def holds(self, now: float) -> int:
        if now >= self.expires_at:
            return 0
        held = self.picked if self.final else self.count
        return max(0, held - self.completed)

    @property
    def reclaimed(self) -> int:
        return self.count - self.picked if self.final else 0

    @property
    def spent(self) -> bool:
        """Final and nobody holds a place in it any more: nothing can change it again."""
        return self.final and self.picked <= self.completed


# How long after a pickup deadline the drainer waits before trusting the pickup counters
# (clock skew between API containers and the drainer).
PICKUP_GRACE_SECONDS = 2.0
# One ledger shard per this many admissions in a batch keeps each ledger key well under
# DynamoDB's ~1,000 writes/s per key even when a whole batch picks up at once.
ADMISSIONS_PER_LEDGER_SHARD = 250
MAX_LEDGER_SHARDS = 32


# Admissions within this many seconds share one batch (one ledger, one entry in the drainer's
# state): the state and the ledger reads per tick stay bounded by (pickup + session) / 30 s.
COALESCE_SECONDS = 30.0


def add_admissions(
    batches: Sequence[Batch],
    next_seq: int,
    *,
    start: int,
    count: int,
    now: float,
    pickup_seconds: int,
    session_seconds: int,
) -> tuple[tuple[Batch, ...], Batch, int]:
    """Record `count` admissions from rank `start`: (live batches, the admitted range as a
    batch of its own for writing the tickets, next sequence number).

    They join the newest batch when it is recent, still in its pickup window and has ledger
    shards enough; its deadline and expiry then stretch to cover them (holding places a little
    longer, never shorter), while each ticket keeps its own deadline and expiry."""
    own_deadline = now + pickup_seconds
    own_expiry = own_deadline + session_seconds
    last = batches[-1] if batches else None
    if (
        last is not None
        and not last.final
        and not last.pool
        and now - last.admitted_at < COALESCE_SECONDS
        and last.start + last.count == start
        and ledger_shards_for(last.count + count) <= last.ledger_shards
    ):
        merged = replace(
            last,
            count=last.count + count,
            pickup_deadline=max(last.pickup_deadline, own_deadline),
            expires_at=max(last.expires_at, own_expiry),
        )
        admitted = Batch(last.seq, start, count, now, own_deadline, own_expiry, last.ledger_shards)
        return (*batches[:-1], merged), admitted, next_seq
    shards = ledger_shards_for(count)
    batch = Batch(next_seq, start, count, now, own_deadline, own_expiry, shards)
    return (*batches, batch), batch, next_seq + 1


def ledger_shards_for(count: int) -> int:
    return max(1, min(MAX_LEDGER_SHARDS, math.ceil(count / ADMISSIONS_PER_LEDGER_SHARD)))


def ledger_shard_of(ticket_id: str, shards: int) -> int:
    """Stable shard for a ticket's pickup/complete counters (no hashing randomisation)."""
    return sum(ticket_id.encode()) % shards


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    picked: int
    completed: int


@dataclass(frozen=True, slots=True)
class Accounting:
    batches: tuple[Batch, ...]
    active: int
    newly_reclaimed: int
    newly_expired: int
    newly_completed: int


def account(batches: Sequence[Batch], counts: dict[int, LedgerCounts], now: float) -> Accounting:
    """Fold fresh ledger counts into the live batches; drop the expired ones.

    `counts` must have been read after `now` was taken, so a batch whose pickup deadline (plus
    grace) is before `now` has its final pickup count.
    """
    kept: list[Batch] = []
    reclaimed = expired = completed = 0
    for b in batches:
        c = counts.get(b.seq, LedgerCounts(b.picked, b.completed))
        completed += max(0, c.completed - b.completed)
        nb = replace(b, picked=c.picked, completed=c.completed)
        if not nb.final and now >= nb.pickup_deadline + PICKUP_GRACE_SECONDS:
            nb = replace(nb, final=True)
            # a pool's unclaimed entries were places held for visitors who did not come
            reclaimed += 0 if nb.pool else nb.count - nb.picked
        if nb.pool and nb.spent:
            continue  # every claimed session ended (or none was claimed): nothing held
        if now >= nb.expires_at:
            expired += max(0, nb.picked - nb.completed) if nb.final else nb.count - nb.completed
            continue
        kept.append(nb)
    active = sum(b.holds(now) for b in kept)
    return Accounting(tuple(kept), active, reclaimed, expired, completed)


@dataclass(frozen=True, slots=True)
class RateWindow:
    """Admissions per tick over the recent past: the rate budget and the observed rate."""

    points: tuple[tuple[float, int], ...] = field(default_factory=tuple)
    horizon: float = 300.0

    def add(self, t: float, n: int) -> RateWindow:
        pts = tuple(p for p in self.points if p[0] > t - self.horizon)
        return replace(self, points=(*pts, (t, n)) if n else pts)

    def admitted_since(self, t: float) -> int:
        return sum(n for ts, n in self.points if ts > t)

    def rate(self, now: float, window: float = 120.0, intervals: int = 30) -> float:
        """Admissions per second observed lately (0 when not known yet): the median of the
        rates between consecutive admitting ticks over the most recent `intervals` of them.

        A median, because the first admissions after a quiet spell fill free places at once
        and are followed by a pause while those sessions run: neither says how fast places
        come free once the room is full, and an average over a fixed span (as this was, with a
        30 s floor) underestimates the rate several times over in the first minute. The
        higher of the two middle ones: with only the pause and one pace seen, the pace."""
        pts = [(ts, n) for ts, n in self.points if now - window < ts <= now]
        rates = [n / (b - a) for (a, _), (b, n) in itertools.pairwise(pts) if b > a]
        rates = rates[-intervals:]
        if len(rates) < 2:
            return 0.0
        return float(statistics.median_high(rates))


def _partial_slot(
    count: int, slot: int, slot_seconds: int, counted_at: float, rate: float
) -> float:
    """Joins of a whole slot from its count at `counted_at`: as counted once it had closed;
    while it was open, scaled up to the whole slot, unless it had barely begun (then at least
    the recent rate)."""
    done = (counted_at - slot * slot_seconds) / slot_seconds
    if done >= 1:
        return float(count)
    if done >= 0.25:
        return count / done
    return max(float(count), rate)


# Past this many joins per shard per slot a shard's counter is about the same in every shard.
DENSE_PER_SHARD = 30.0


def ahead_in_slot(k: int, shard: int, shards: int, per_shard: float) -> float:
    """Tickets of its own slot expected ahead of (k, shard) when each shard ends the slot with
    about `per_shard` joins (Poisson): k - 1 in its own shard; E[min(c, k - 1)] in each other
    shard; and the shards before it whose counter reaches k. Dense slots: (k - 1) x S."""
    before = min(shard, shards - 1)
    if per_shard >= DENSE_PER_SHARD:
        below, at_level = min(k - 1, per_shard), (1.0 if k <= per_shard else 0.0)
    else:
        pmf, tail, below = math.exp(-per_shard), 1.0, 0.0
        for j in range(1, min(k, 100) + 1):
            tail = max(0.0, tail - pmf)  # P(c >= j)
            pmf = pmf * per_shard / j
            if j < k:
                below += tail
        at_level = tail if k <= 100 else 0.0
    return (k - 1) + (shards - 1) * below + math.floor(before * at_level)


def estimated_position(
    waiting_settled: int,
    settled_through: int,
    join_rate_per_slot: float,
    slot: int,
    k: int,
    *,
    shard: int = 0,
    shards: int = 1,
    unsettled: Sequence[int] = (),
    counted_at: float = 0.0,
    slot_seconds: int = 1,
    joined_at: float | None = None,
    seen: Sequence[int] = (),
    seen_whole: Sequence[bool] = (),
) -> int:
    """A place before the ticket's slot has settled: everyone waiting in settled slots, the
    joins the drainer counted in every shard of the slots between (`unsettled`: one count per
    slot from `settled_through + 1`, the last one taken at `counted_at`, maybe while it was
    open) or, past those, the recent join rate; then the ticket's place in its own slot
    (`ahead_in_slot` at that rate). Before anything was counted, the ticket's own k reached
    `joined_at` into its slot is the only sign of the rate: k in one of S shards means about
    k x S joiners.
    `seen`: what the caller itself saw of the counters since (the highest k it was given in
    each shard), per slot from `settled_through + 1`, as of `joined_at`: a floor under each
    slot's count fresher than the drainer's (a burst that began after its last count);
    `seen_whole`: where the caller gave every one of those numbers itself, what it saw is the
    slot's count so far, not merely a floor (one API container, as locally)."""
    s = max(1, shards)
    rate = join_rate_per_slot
    ahead = float(waiting_settled)
    own = slot - settled_through - 1  # slots between the settled ones and the ticket's
    counted = min(max(0, own), len(unsettled))
    floor = [float(n) for n in seen]
    for i in range(counted):
        p = settled_through + 1 + i
        # closed when the ticket joined: what the caller saw of it is a floor, and where it gave
        # every number of it, its count: that replaces the pace carried from the slot before (a
        # count the drainer took as the slot began says little; the burst may have thinned)
        seen_in = floor[i] if i < len(floor) else 0.0
        carried = 0.0 if i < len(seen_whole) and seen_whole[i] else rate
        rate = max(_partial_slot(unsettled[i], p, slot_seconds, counted_at, carried), seen_in)
        ahead += rate
    if 0 <= own < len(unsettled):
        rate = _partial_slot(unsettled[own], slot, slot_seconds, counted_at, rate)
    if rate <= 0 and joined_at is not None and k > 1:
        into = (joined_at - slot * slot_seconds) / slot_seconds
        rate = (k - 1) * s / max(into, 0.5)
    if 0 <= own < len(floor) and floor[own] and joined_at is not None:
        rate = max(rate, _partial_slot(int(floor[own]), slot, slot_seconds, joined_at, 0.0))
    for i in range(counted, max(counted, own)):
        # a slot between, closed when the ticket joined: its count where the caller gave every
        # number of it (one shard's k in the ticket's own slot says little about another
        # slot), else at least the pace its own slot suggests
        seen_in = floor[i] if i < len(floor) else 0.0
        ahead += seen_in if i < len(seen_whole) and seen_whole[i] else max(rate, seen_in)
    ahead += ahead_in_slot(k, shard, s, rate / s)
    return int(ahead) + 1


def eta_seconds(
    position: int,
    admit_rate: float,
    fallback_rate: float,
    forecast: Sequence[Sequence[float]] = (),
    age: float = 0.0,
) -> int | None:
    """Seconds until admission: from the drainer's forecast of admissions (made `age` seconds
    ago) when the state carries one, else at the observed rate (or the configured one before
    any)."""
    rate = admit_rate if admit_rate > 0 else fallback_rate
    if forecast:
        return eta_from_forecast(position, forecast, rate, age)
    if rate <= 0:
        return None
    return math.ceil(position / rate)


# What a waiting visitor's line is doing, said plainly in every waiting answer:
#   moving     the room admits people in order;
#   paused     the operator paused admissions: places are kept, nobody moves, no ETA;
#   scheduled  the room has not opened yet: everyone who joined before the opening is drawn
#              into a random order then;
#   closed     the room lets nobody more in (a poll answers 410 room_closed, a join 409).
LINE_STATES = ("moving", "paused", "scheduled", "closed")


def line_state(status: RoomStatus, drawn: bool) -> str:
    """The line's state for a room `status` (`drawn`: a scheduled room has opened)."""
    if status == "scheduled":
        return "moving" if drawn else "scheduled"
    return {"open": "moving", "paused": "paused", "closed": "closed"}.get(status, "moving")


def you_are_next(position: int) -> bool:
    """Nobody ahead: admitted at the drainer's next tick with a free place."""
    return position <= 1


# A waiting visitor asks again after a third of its estimated wait: often near the front, rarely
# far back (a 10-minute wait costs about 20 requests), never less than 2 s apart, and never so
# rarely that an admission could wait unseen for more than a third of the pickup window.
MIN_POLL_SECONDS = 2
MAX_POLL_SECONDS = 60
UNKNOWN_ETA_POLL_SECONDS = 20


def poll_after_seconds(position: int, eta: int | None, pickup_seconds: int = 120) -> int:
    """Seconds until a waiting visitor should look at its place again."""
    if position <= 0:
        return 1
    cap = max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, pickup_seconds // 3))
    if eta is None:
        return min(UNKNOWN_ETA_POLL_SECONDS, cap)
    return max(MIN_POLL_SECONDS, min(cap, eta // 3))


# A visitor whose place is an estimate looks again just after its slot has settled: the slot's
# end + the settle delay + the settling tick's own work, at its own moment in a short spread (a
# crowd does not look in the same instant), then every second (the state document's cache life)
# for a few seconds; at most every ESTIMATE_MAX_LOOK_SECONDS before (long slots), and at the
# usual pace once that is long past (the drainer is behind).
SETTLE_LOOK_SECONDS = 0.3
SETTLE_SPREAD_SECONDS = 0.7
SETTLED_RELOOK_SECONDS = 1.0
SETTLE_RELOOK_WINDOW_SECONDS = 5.0
ESTIMATE_MAX_LOOK_SECONDS = 5.0
LOOK_TOLERANCE_SECONDS = 0.05  # a look this close to its moment is that look


def settle_look_seconds(
    slot: int, slot_seconds: int, joined_at: float, since_join: float, u: float
) -> float | None:
    """Seconds until a visitor with an estimate (ticket of `slot`, joined at `joined_at` by the
    server's clock, `since_join` seconds ago) looks again; `u` in [0, 1) is the visitor's own.
    None: its slot should have settled long ago, look at the usual pace."""
    settles = slot_end(slot, slot_seconds) + SETTLE_DELAY_SECONDS + SETTLE_LOOK_SECONDS
    first = settles - joined_at + u * SETTLE_SPREAD_SECONDS
    if since_join < first - LOOK_TOLERANCE_SECONDS:
        return min(ESTIMATE_MAX_LOOK_SECONDS, first - since_join)
    if since_join < settles - joined_at + SETTLE_RELOOK_WINDOW_SECONDS:
        return SETTLED_RELOOK_SECONDS
    return None


# A scheduled opening: everyone in the pre-queue learns the draw from the room state. Each
# visitor looks first at its own moment in [opening + DRAW_DELAY, + spread), the spread growing
# with the pre-queue (one second per PREQUEUE_PER_SECOND visitors), so the edge never sees the
# whole pre-queue in the same second; before the opening it looks at most every 30 s.
PREQUEUE_PER_SECOND = 50_000
MIN_SPREAD_SECONDS = 2.0
MAX_SPREAD_SECONDS = 60.0
PREQUEUE_MIN_POLL_SECONDS = 30.0


def draw_delay_seconds(slot_seconds: int) -> float:
    """From the opening until the draw is public: the last pre-queue slot settles, a tick runs."""
    return slot_seconds + SETTLE_DELAY_SECONDS + 2.0


def opening_spread_seconds(prequeue_size: int, pickup_seconds: int = 120) -> float:
    """How long the pre-queue's first looks after the draw are spread over: longer for more
    people, but within a third of the pickup window, so whoever the first batch admits looks
    (and picks up) before its place is reclaimed."""
    spread = min(MAX_SPREAD_SECONDS, prequeue_size / PREQUEUE_PER_SECOND, pickup_seconds / 3)
    return max(MIN_SPREAD_SECONDS, spread)


def prequeue_poll_seconds(
    until_open: float,
    prequeue_size: int,
    slot_seconds: int,
    offset: float,
    pickup_seconds: int = 120,
) -> float:
    """Seconds until a pre-queue visitor looks again, before the draw is public.

    `offset` in [0, 1) is the visitor's own, fixed once (random, or a hash of its ticket):
    where in the opening's spread its first look after the draw falls."""
    spread = opening_spread_seconds(prequeue_size, pickup_seconds)
    if until_open <= 0:  # opened, draw not public yet: look again within the spread
        return MIN_POLL_SECONDS + offset * spread
    first_after = until_open + draw_delay_seconds(slot_seconds) + offset * spread
    before = max(PREQUEUE_MIN_POLL_SECONDS, min(float(MAX_POLL_SECONDS), until_open / 2))
    # a look that would fall after the opening anyway waits for the visitor's own moment in it
    return first_after if before >= until_open else before


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """An operator's settings for one room (the CONFIG item). The settings, their defaults,
    bounds and meaning are defined in `waitingroom.rooms`; epoch_slot and version are the
    room's own bookkeeping."""

    room: str
    max_active: int
    max_admits_per_minute: int = rooms.MAX_ADMITS_PER_MINUTE.default
    session_seconds: int = rooms.SESSION_SECONDS.default
    pickup_seconds: int = rooms.PICKUP_SECONDS.default
    shards: int = rooms.SHARDS.default
    slot_seconds: int = rooms.SLOT_SECONDS.default
    status: RoomStatus = rooms.STATUS.default
    opens_at: float | None = rooms.OPENS_AT.default
    origin_url: str = rooms.ORIGIN_URL.default
    epoch_slot: int = 0
    version: int = 0
    # abuse controls (0 / False: off): tickets per client, joins per client per minute, the
    # proof of work a join must carry (leading zero bits), and binding tokens to the browser
    max_tickets_per_client: int = rooms.MAX_TICKETS_PER_CLIENT.default
    max_joins_per_minute_per_client: int = rooms.MAX_JOINS_PER_MINUTE_PER_CLIENT.default
    challenge_bits: int = rooms.CHALLENGE_BITS.default
    bind_tokens: bool = rooms.BIND_TOKENS.default
    return_origins: str = rooms.RETURN_ORIGINS.default
    # the waiting page (empty: the default page)
    page_title: str = rooms.PAGE_TITLE.default
    page_logo_url: str = rooms.PAGE_LOGO_URL.default
    page_accent_color: str = rooms.PAGE_ACCENT_COLOR.default
    page_background_color: str = rooms.PAGE_BACKGROUND_COLOR.default
    page_message: str = rooms.PAGE_MESSAGE.default
    page_template: str = rooms.PAGE_TEMPLATE.default
    # how the room lets people in: straight in while it is idle, its queueing method, and the
    # switch that holds everyone new in the line
    straight_in: bool = rooms.STRAIGHT_IN.default
    queueing: Queueing = rooms.QUEUEING.default
    queue_all: bool = rooms.QUEUE_ALL.default
    draw_seconds: int = rooms.DRAW_SECONDS.default

    @property
    def opens_slot(self) -> int | None:
        """The first slot after opening; earlier slots are the pre-queue (None: no pre-queue)."""
        return None if self.opens_at is None else slot_of(self.opens_at, self.slot_seconds)

    def in_prequeue(self, slot: int) -> bool:
        return self.opens_slot is not None and slot < self.opens_slot

    def fallback_rate(self) -> float:
        """Admissions/s to expect before any has been observed: sessions run their full length."""
        rate = self.max_active / max(1, self.session_seconds)
        if self.max_admits_per_minute > 0:
            rate = min(rate, self.max_admits_per_minute / 60)
        return rate


@dataclass(frozen=True, slots=True)
class PublicState:
    """What API containers cache (≤ 1 s) to answer polls: small, written once per tick."""

    version: int = 0
    settled_through: int = -1
    settled_total: int = 0
    consumed: int = 0
    materialized: int = 0
    active: int = 0  # sessions under way (places held for an idle room's joins not counted)
    admit_rate: float = 0.0
    join_rate_per_slot: float = 0.0
    admitted_total: int = 0
    completed_total: int = 0
    reclaimed_total: int = 0
    expired_total: int = 0
    last_tick_admitted: int = 0
    closed_slot: int | None = None  # a closed room: the last slot a join could still reach
    wait_p50: float | None = None
    wait_p90: float | None = None
    # a scheduled room's opening: how many were in the pre-queue, the draw's recorded seed
    prequeue_size: int = 0
    draw_seed: str = ""
    opened_at: float | None = None
    updated_at: float = 0.0  # when the tick that wrote it began (its counts are as of then)
    # when that tick committed it: its admissions happened here (a busy tick commits a while
    # after it began; writing the tickets afterwards keeps it)
    committed_at: float = 0.0
    # an idle room's pool of tokens minted ahead: entries 1..pool_size of batch pool_seq may be
    # claimed by joins (0: no pool open)
    pool_seq: int = 0
    pool_size: int = 0
    pool_max_active: int = 0  # the max_active it was sized for (a join with a lower one skips it)
    # a room that keeps no line (reject): a join that misses the pool takes a number only while
    # the room's count of numbers given (a counter joins bump conditionally) is below this; the
    # drainer sets it to the count it read plus the free places nobody in line is owed yet
    numbers_until: int = 0
    # joins counted at `updated_at` in every shard of each slot after `settled_through`, up to
    # the one open then (estimates before a slot settles; see `estimated_position`)
    unsettled_counts: tuple[int, ...] = ()
    # the newest settled slots that hold tickets (natural order only: `recent_slots`)
    recent_slots: tuple[SettledSlot, ...] = ()
    # admissions expected (seconds after `updated_at`, how many by then) while the room admits:
    # every client's ETA (`eta_seconds`); past its last point, `admit_rate`
    admit_forecast: tuple[tuple[float, int], ...] = ()

    def __post_init__(self) -> None:
        # stored as JSON lists and objects: always tuples and SettledSlots here, so that states
        # compare equal
        object.__setattr__(self, "unsettled_counts", tuple(self.unsettled_counts))
        object.__setattr__(self, "recent_slots", tuple(map(_settled_slot, self.recent_slots)))
        forecast = tuple((float(t), int(n)) for t, n in self.admit_forecast)
        object.__setattr__(self, "admit_forecast", forecast)

    @property
    def waiting_settled(self) -> int:
        return self.settled_total - self.consumed


def _settled_slot(s: SettledSlot | Mapping[str, Any]) -> SettledSlot:
    if isinstance(s, SettledSlot):
        return s
    counts = tuple(int(c) for c in s["counts"])
    return SettledSlot(int(s["slot"]), counts, int(s["cum_before"]))


# The room state carries the newest few settled slots that hold tickets (their final counts):
# a visitor whose slot has just settled reads its exact place from the state alone, instead of
# the whole crowd of that slot asking for its document in the same second. Not past this many
# shards (the state is read by everybody, every look), and not for slots drawn into an order.
RECENT_SLOTS = 5
RECENT_SLOTS_MAX_SHARDS = 64


def recent_slots(
    kept: Sequence[SettledSlot], settled: Sequence[SettledSlot]
) -> tuple[SettledSlot, ...]:
    """The newest RECENT_SLOTS settled slots holding tickets, after this tick settled `settled`."""
    fresh = [
        s
        for s in settled
        if s.total and not s.draw_size and len(s.counts) <= RECENT_SLOTS_MAX_SHARDS
    ]
    return tuple([*kept, *fresh][-RECENT_SLOTS:])


@dataclass(frozen=True, slots=True)
class DrainerState:
    """What only the drainer reads: its cursor within slots, live batches, recent admissions."""

    version: int = 0
    cursor_slot: int = -1
    cursor_offset: int = 0
    next_seq: int = 1
    batches: tuple[Batch, ...] = ()
    pending: Pending | None = None
    rates: RateWindow = field(default_factory=RateWindow)
    max_shards: int = 0
    waits: tuple[int, ...] = ()  # seconds in queue of the most recent admissions
    # the pool (batch pool_seq): its claim counter when last read, and how many of its entries
    # have their ticket items (with tokens) written
    pool_seq: int = 0
    pool_claimed: int = 0
    pool_written: int = 0
    # admissions, pickups and ends followed over time, and what they taught (forecast.Flow)
    flow: Flow = field(default_factory=Flow)


@dataclass(frozen=True, slots=True)
class Pending:
    """A committed batch whose ticket items are not all written yet (the drainer finishes it)."""

    batch: Batch
    from_slot: int
    from_offset: int


def ticket_at(slots: Sequence[SettledSlot], index: int) -> tuple[int, int, int]:
    """The (slot, k, shard) of the ticket with natural rank `index` among `slots` (in order)."""
    i = bisect.bisect_right([s.cum_before for s in slots], index) - 1
    if i < 0 or index >= slots[i].cum_before + slots[i].total:
        raise ValueError(f"no ticket at rank {index}")
    ss = slots[i]
    k, shard = next(tickets_from(ss.counts, index - ss.cum_before))
    return ss.slot, k, shard


def take_tickets(
    slots: Iterable[SettledSlot],
    cursor_slot: int,
    cursor_offset: int,
    n: int,
) -> tuple[list[tuple[int, int, int]], int, int]:
    """The next n tickets (slot, k, shard) in queue order from the cursor, and the new cursor.

    `slots` are the non-empty settled slots from `cursor_slot` on, in order.
    """
    out: list[tuple[int, int, int]] = []
    slot, offset = cursor_slot, cursor_offset
    for ss in slots:
        if len(out) >= n:
            break
        if ss.slot < cursor_slot:
            continue
        start = cursor_offset if ss.slot == cursor_slot else 0
        taken = 0
        for k, s in tickets_from(ss.counts, start):
            if len(out) >= n:
                break
            out.append((ss.slot, k, s))
            taken += 1
        if start + taken >= ss.total:
            slot, offset = ss.slot + 1, 0
        else:
            slot, offset = ss.slot, start + taken
    return out, slot, offset


def admits_now(cfg: RoomConfig, pub: PublicState) -> bool:
    """Does the room let anybody in now? Not while paused or closed, not before a scheduled
    room's draw, not while the operator holds everybody in line (queue_all). The one answer the
    drainer's budget, its pool, its "stalled" gauge and a join's straight-in all go by."""
    opened = cfg.opens_slot is None or bool(pub.draw_seed)
    return cfg.status in ("open", "scheduled") and opened and not cfg.queue_all


RECENT_WAITS = 500


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


# -- the pre-queue draw -----------------------------------------------------------------------
# People who join a scheduled room before it opens are all "first": at opening their order is
# drawn at random. The draw is a keyed permutation of [0, P) (a Feistel network with cycle
# walking): the seed is recorded and published, so anyone can recompute every place, and a
# place is computed from the ticket alone — no list of P entries is ever stored or read.

_FEISTEL_ROUNDS = 6


def _round(seed: bytes, rnd: int, value: int, bits: int) -> int:
    digest = hmac.new(seed, f"{rnd}:{value}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << bits) - 1)


def _feistel(x: int, half: int, seed: bytes, inverse: bool) -> int:
    mask = (1 << half) - 1
    left, right = x >> half, x & mask
    rounds = range(_FEISTEL_ROUNDS - 1, -1, -1) if inverse else range(_FEISTEL_ROUNDS)
    for r in rounds:
        if inverse:
            left, right = right ^ _round(seed, r, left, half), left
        else:
            left, right = right, left ^ _round(seed, r, right, half)
    return (left << half) | right


def draw_place(index: int, size: int, seed: str, inverse: bool = False) -> int:
    """The drawn place of pre-queue index `index` among `size` (or, inverse, whose place it is)."""
    if not 0 <= index < size:
        raise ValueError("index out of range")
    half = max(1, ((size - 1).bit_length() + 1) // 2)
    key = seed.encode()
    x = _feistel(index, half, key, inverse)
    while x >= size:  # cycle walking keeps the permutation inside [0, size)
        x = _feistel(x, half, key, inverse)
    return x


# -- draw windows (queueing "random") ----------------------------------------------------------
# A random room settles its slots a whole window at a time (windows of `draw_seconds`, aligned on
# slot numbers); the window's tickets are drawn into an order with the pre-queue's permutation
# and a seed recorded in each of its slot documents, so every client computes its own drawn place.


def window_slots(draw_seconds: int, slot_seconds: int) -> int:
    """Slots per draw window (at least one)."""
    return max(1, draw_seconds // slot_seconds)


def whole_windows_end(first: int, last: int, per_window: int) -> int:
    """The last slot in [first, last] that ends a window (first - 1: none ends there yet)."""
    end = (last + 1) // per_window * per_window - 1
    return max(first - 1, end)


def window_seed(tick_seed: str, window: int) -> str:
    """A window's seed from the drawing tick's fresh random seed (published, so recomputable)."""
    return hashlib.sha256(f"{tick_seed}:{window}".encode()).hexdigest()[:32]


def draw_windows(
    slots: Sequence[SettledSlot],
    per_window: int,
    tick_seed: str,
    recorded: Mapping[int, str] | None = None,
) -> list[SettledSlot]:
    """`slots` (settled in order, non-empty) with each window's draw: its first rank, size, seed
    (the seed `recorded` by the draw's first slot when it was written once: a settle retried
    after a failure writes the very same documents, which clients and edges may hold for good)."""
    out: list[SettledSlot] = []
    i = 0
    while i < len(slots):
        window = slots[i].slot // per_window
        group = [s for s in slots[i:] if s.slot // per_window == window]
        seed = (recorded or {}).get(group[0].slot) or window_seed(tick_seed, window)
        start, size = group[0].cum_before, sum(s.total for s in group)
        out += [replace(s, draw_start=start, draw_size=size, draw_seed=seed) for s in group]
        i += len(group)
    return out


def tickets_at_ranks(
    slots: Sequence[SettledSlot], ranks: Iterable[int]
) -> list[tuple[int, int, int]]:
    """The (slot, k, shard) whose place in line is each of `ranks` among `slots` (in order,
    covering them): in a draw window, whose drawn place it is; elsewhere the natural order."""
    starts = [s.cum_before for s in slots]
    levels: dict[int, list[int]] = {}  # per slot: tickets in levels 1..k (read once, bisected)

    def holder(rank: int) -> SettledSlot:
        i = bisect.bisect_right(starts, rank) - 1
        if i < 0 or rank >= slots[i].cum_before + slots[i].total:
            raise ValueError(f"no ticket at rank {rank}")
        return slots[i]

    out = []
    for rank in ranks:
        ss = holder(rank)
        if ss.draw_size and ss.draw_start <= rank < ss.draw_start + ss.draw_size:
            natural = draw_place(rank - ss.draw_start, ss.draw_size, ss.draw_seed, inverse=True)
            rank = ss.draw_start + natural
            ss = holder(rank)
        if ss.slot not in levels:
            levels[ss.slot] = _level_ends(ss.counts)
        k, shard = _ticket_in_slot(ss.counts, levels[ss.slot], rank - ss.cum_before)
        out.append((ss.slot, k, shard))
    return out


def _level_ends(counts: Sequence[int]) -> list[int]:
    """ends[k]: the slot's tickets with k' <= k (ends[0] = 0)."""
    ordered = sorted(counts)
    ends = [0]
    for k in range(1, (ordered[-1] if ordered else 0) + 1):
        ends.append(ends[-1] + len(ordered) - bisect.bisect_left(ordered, k))
    return ends


def _ticket_in_slot(counts: Sequence[int], ends: Sequence[int], offset: int) -> tuple[int, int]:
    """The (k, shard) at in-slot rank `offset` (as `tickets_from`, by bisection on the levels)."""
    k = bisect.bisect_right(ends, offset)
    nth = offset - ends[k - 1]
    return k, [s for s, c in enumerate(counts) if c >= k][nth]


def drawn_cursor(slots: Sequence[SettledSlot], rank: int) -> tuple[int, int]:
    """The cursor for place `rank`: its own slot and offset in the natural order, or, inside a
    draw window, the window's first slot and -1 (the next batch is found by place, not by
    offset); past `slots` (never empty), the slot after them."""
    for ss in slots:
        if ss.draw_size and ss.draw_start <= rank < ss.draw_start + ss.draw_size:
            return ss.slot, -1
        if ss.cum_before <= rank < ss.cum_before + ss.total:
            return ss.slot, rank - ss.cum_before
    return slots[-1].slot + 1, 0


def recorded_draws(written: Iterable[SettledSlot]) -> dict[int, str]:
    """The seeds of draws already written, by their first slot (see `draw_windows`)."""
    return {s.slot: s.draw_seed for s in written if s.draw_size and s.cum_before == s.draw_start}
