"""The drainer's tick as a plan: from what the drainer read to what it will write.

Pure: no store, no clock, no randomness (time and the draw's seed are arguments). The drainer
reads (config, states, the closing slots' counters, the live batches' ledgers), asks `plan_tick`
what to do, reads the queue for the tickets of the batch it admits (`place_tickets`), then writes:
settled slots, the committed state, the ticket items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from waitingroom import forecast
from waitingroom.domain import (
    ADMISSIONS_PER_LEDGER_SHARD,
    PICKUP_GRACE_SECONDS,
    RECENT_WAITS,
    Accounting,
    Batch,
    DrainerState,
    LedgerCounts,
    Pending,
    PublicState,
    RoomConfig,
    SettledSlot,
    account,
    add_admissions,
    admission_budget,
    admits_now,
    draw_windows,
    last_settleable_slot,
    percentile,
    recent_slots,
    slot_of,
    whole_windows_end,
    window_slots,
)

MAX_SETTLE_SLOTS_PER_TICK = 600
UNCAPPED = 1 << 53  # a passthrough room's budget: everyone waiting
# After a room closes, joins may still land for as long as API containers cache its config
# (WAITINGROOM_CONFIG_CACHE_SECONDS, at most 60) plus the settle delay: settle that long more.
CLOSE_MARGIN_SECONDS = 65.0


def is_dormant(cfg: RoomConfig, pub: PublicState, dst: DrainerState) -> bool:
    """A closed room whose last joins are settled and whose sessions have all run out: no
    tick can change anything until an operator reopens it, so the drainer reads nothing more."""
    return (
        cfg.status == "closed"
        and pub.closed_slot is not None
        and pub.settled_through >= pub.closed_slot
        and not dst.batches
        and dst.pending is None
    )


@dataclass(frozen=True, slots=True)
class SettleWindow:
    """The slots this tick settles, [first, last] (none when last < first), whose counters are
    read across `shards` shards; a closed room's last reachable slot."""

    first: int
    last: int
    shards: int
    closed_slot: int | None

    @property
    def slots(self) -> list[int]:
        return list(range(self.first, self.last + 1))


def settle_window(cfg: RoomConfig, pub: PublicState, dst: DrainerState, now: float) -> SettleWindow:
    """Closed slots not settled yet (at most MAX_SETTLE_SLOTS_PER_TICK); a closed room's only
    up to the last slot a join could reach."""
    closed_slot = pub.closed_slot
    if cfg.status != "closed":
        closed_slot = None
    elif closed_slot is None:
        closed_slot = slot_of(now + CLOSE_MARGIN_SECONDS, cfg.slot_seconds)
    first = pub.settled_through + 1
    last = min(last_settleable_slot(now, cfg.slot_seconds), first + MAX_SETTLE_SLOTS_PER_TICK - 1)
    if closed_slot is not None:
        last = min(last, closed_slot)
    if cfg.queueing == "random" and last != closed_slot:
        last = _draw_windows_end(cfg, first, last)
    return SettleWindow(first, last, max(dst.max_shards, cfg.shards), closed_slot)


def _draw_windows_end(cfg: RoomConfig, first: int, last: int) -> int:
    """A random room settles whole draw windows (the pre-queue slot by slot, up to the opening;
    a closed room up to its last slot), so each window is drawn at once."""
    opens_slot = cfg.opens_slot
    if opens_slot is not None and last < opens_slot:
        return last
    end = whole_windows_end(first, last, window_slots(cfg.draw_seconds, cfg.slot_seconds))
    return end if opens_slot is None else max(end, opens_slot - 1)


def settle(
    window: SettleWindow, counters: Mapping[int, Sequence[int]], total: int
) -> list[SettledSlot]:
    """The window's non-empty slots, each with the tickets before it (`total` before the first)."""
    settled: list[SettledSlot] = []
    for sl in window.slots:
        counts = tuple(counters[sl])
        if sum(counts):
            settled.append(SettledSlot(sl, counts, total))
            total += sum(counts)
    return settled


def draw_due(cfg: RoomConfig, pub: PublicState, now: float, settled_through: int) -> bool:
    """A scheduled room opens: its opening time has passed and its pre-queue has settled."""
    opens_slot = cfg.opens_slot
    return (
        opens_slot is not None
        and not pub.draw_seed
        and cfg.opens_at is not None
        and now >= cfg.opens_at
        and settled_through >= opens_slot - 1
    )


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What a tick writes. `pub` and `dst` are committed together (conditioned on the version
    read); `admit` is the batch they admit, whose tickets `place_tickets` fills in first."""

    pub: PublicState
    dst: DrainerState
    settled: tuple[SettledSlot, ...]  # to write before committing
    admit: Pending | None
    opened: bool  # this tick drew the pre-queue (pub holds its size and seed)
    joined: int  # tickets in the slots settled now
    reclaimed: int
    completed: int

    @property
    def admitted(self) -> int:
        return self.admit.batch.count if self.admit else 0


def plan_tick(
    cfg: RoomConfig,
    pub: PublicState,
    dst: DrainerState,
    *,
    now: float,
    counters: Mapping[int, Sequence[int]],
    ledger: Mapping[int, LedgerCounts],
    first_after_open: SettledSlot | None = None,
    draw_seed: str = "",
    recorded_draws: Mapping[int, str] | None = None,
) -> TickPlan:
    """Settle, account, open (draw), admit min(max_active - active, rate budget, waiting).

    `counters` hold the counters of `settle_window(...)`'s slots, `ledger` the counts of the live
    batches (read after `now`); when a draw is due, `first_after_open` is the first slot from the
    opening slot on among those settled before this tick (if any), and `draw_seed` its seed.
    """
    window = settle_window(cfg, pub, dst, now)
    settled = settle(window, counters, pub.settled_total)
    if cfg.queueing == "random":
        settled = draw_settled(cfg, settled, draw_seed, recorded_draws)
    joined = sum(s.total for s in settled)
    acc = account(dst.batches, dict(ledger), now)
    settled_through = max(pub.settled_through, window.last)
    cursor = (dst.cursor_slot, dst.cursor_offset)
    opened = draw_due(cfg, pub, now, settled_through)
    if opened:
        pub, cursor = _draw(cfg, pub, dst, settled, first_after_open, draw_seed, now)
    n = min(_budget(cfg, pub, dst, acc.active, now), pub.settled_total + joined - pub.consumed)
    batches, admit, next_seq = acc.batches, None, dst.next_seq
    if n > 0:
        batches, batch, next_seq = add_admissions(
            batches,
            dst.next_seq,
            start=pub.consumed,
            count=n,
            now=now,
            pickup_seconds=cfg.pickup_seconds,
            session_seconds=cfg.session_seconds,
        )
        admit = Pending(batch, *cursor)
    rates = dst.rates.add(now, n)
    new_dst = replace(
        dst,
        cursor_slot=cursor[0],
        cursor_offset=cursor[1],
        next_seq=next_seq,
        batches=batches,
        pending=admit,
        rates=rates,
        max_shards=window.shards,
        flow=observe_flow(cfg, pub, dst, ledger, acc, now=now, admitted=n, joined=joined),
    )
    new_pub = _public_after(
        pub, new_dst, window=window, joined=joined, admitted=n, acc=acc, now=now
    )
    new_pub = replace(new_pub, recent_slots=recent_slots(pub.recent_slots, settled))
    new_pub = with_forecast(cfg, new_pub, new_dst, acc.active + n, now)
    return TickPlan(
        pub=new_pub,
        dst=new_dst,
        settled=tuple(settled),
        admit=admit,
        opened=opened,
        joined=joined,
        reclaimed=acc.newly_reclaimed,
        completed=acc.newly_completed,
    )


def observe_flow(
    cfg: RoomConfig,
    pub: PublicState,
    dst: DrainerState,
    ledger: Mapping[int, LedgerCounts],
    acc: Accounting,
    *,
    now: float,
    admitted: int,
    joined: int,
) -> forecast.Flow:
    """What this tick saw of the room's visitors (pickups since the last tick, from the line
    and from a pool; no-shows reclaimed; sessions ended), then its admissions from the line
    (`pub` as before this tick; `joined` tickets it settled)."""
    line = pool = 0
    for b in dst.batches:
        c = ledger.get(b.seq)
        picked = max(0, c.picked - b.picked) if c else 0
        pool, line = (pool + picked, line) if b.pool else (pool, line + picked)
    keep = cfg.pickup_seconds + PICKUP_GRACE_SECONDS + cfg.session_seconds + 10
    flow = dst.flow
    if not flow.seeded:  # new, or a room this code has not followed before (a new release)
        flow = flow.seed(
            unresolved=sum(b.count - b.picked for b in dst.batches if not b.pool and not b.final),
            in_session=sum(max(0, b.picked - b.completed) for b in dst.batches),
        )
    return flow.observe(
        now,
        admitted=admitted,
        fresh=max(0, admitted - dst.flow.waited(now, pub.consumed)),
        settled_total=pub.settled_total + joined,
        line_picked=line,
        pool_picked=pool,
        reclaimed=acc.newly_reclaimed,
        ended=acc.newly_completed + acc.newly_expired,
        keep_seconds=keep,
    )


def with_forecast(
    cfg: RoomConfig, pub: PublicState, dst: DrainerState, held: int, now: float
) -> PublicState:
    """The admissions to expect while the room admits (`held`: places held after this tick),
    and past that forecast the rate of a full room; no forecast while nobody is let in, nor
    in a room that keeps no line."""
    if not admits_now(cfg, pub) or cfg.queueing in ("passthrough", "reject"):
        return replace(pub, admit_forecast=())
    flow = dst.flow
    hold = flow.hold_seconds(cfg.session_seconds)
    points = forecast.forecast(
        flow.frees(now, cfg.session_seconds),
        now=now,
        free_now=max(0, cfg.max_active - held),
        hold=hold,
        excess=max(0, held - cfg.max_active),
        per_minute=cfg.max_admits_per_minute,
        recent=dst.rates.points,
    )
    rate = forecast.steady_rate(cfg.max_active, hold, cfg.max_admits_per_minute / 60)
    return replace(pub, admit_forecast=points, admit_rate=rate)


def draw_settled(
    cfg: RoomConfig,
    settled: Sequence[SettledSlot],
    tick_seed: str,
    recorded: Mapping[int, str] | None = None,
) -> list[SettledSlot]:
    """A random room's newly settled slots (after the pre-queue), drawn window by window (with
    the seeds `recorded` by a failed attempt that wrote them: see domain.draw_windows)."""
    opens_slot = cfg.opens_slot if cfg.opens_slot is not None else -1
    prequeue = [s for s in settled if s.slot < opens_slot]
    line = [s for s in settled if s.slot >= opens_slot]
    assert tick_seed or not line, "a draw needs its seed"
    per_window = window_slots(cfg.draw_seconds, cfg.slot_seconds)
    return prequeue + draw_windows(line, per_window, tick_seed, recorded)


def draws_of(settled: Sequence[SettledSlot]) -> list[dict[str, int | str]]:
    """The draws a tick made, for the audit trail: each window's slots, first rank, size, seed."""
    out: list[dict[str, int | str]] = []
    for s in settled:
        if not s.draw_size:
            continue
        if out and out[-1]["seed"] == s.draw_seed:
            out[-1]["last_slot"] = s.slot
        else:
            out.append(
                {
                    "first_slot": s.slot,
                    "last_slot": s.slot,
                    "start": s.draw_start,
                    "size": s.draw_size,
                    "seed": s.draw_seed,
                }
            )
    return out


def _draw(
    cfg: RoomConfig,
    pub: PublicState,
    dst: DrainerState,
    settled: Sequence[SettledSlot],
    first_after_open: SettledSlot | None,
    seed: str,
    now: float,
) -> tuple[PublicState, tuple[int, int]]:
    """Open a scheduled room: everyone who joined before the opening slot is in the pre-queue,
    drawn into an order by `seed`; the natural order resumes at the opening slot."""
    assert cfg.opens_slot is not None and seed, "a due draw needs its seed"
    first_after = first_after_open or next((s for s in settled if s.slot >= cfg.opens_slot), None)
    size = (
        first_after.cum_before if first_after else pub.settled_total + sum(s.total for s in settled)
    )
    pub = replace(pub, prequeue_size=size, draw_seed=seed, opened_at=now)
    return pub, (max(dst.cursor_slot, cfg.opens_slot), 0)


def _public_after(
    pub: PublicState,
    dst: DrainerState,
    *,
    window: SettleWindow,
    joined: int,
    admitted: int,
    acc: Accounting,
    now: float,
) -> PublicState:
    """The public state after this tick (`dst`: the drainer's state after it)."""
    join_rate = pub.join_rate_per_slot
    if window.slots:
        join_rate = 0.7 * join_rate + 0.3 * (joined / len(window.slots))
    return replace(
        pub,
        settled_through=max(pub.settled_through, window.last),
        settled_total=pub.settled_total + joined,
        consumed=pub.consumed + admitted,
        active=acc.active + admitted - pool_held(dst),
        admit_rate=dst.rates.rate(now),
        join_rate_per_slot=join_rate,
        admitted_total=pub.admitted_total + admitted,
        completed_total=pub.completed_total + acc.newly_completed,
        reclaimed_total=pub.reclaimed_total + acc.newly_reclaimed,
        expired_total=pub.expired_total + acc.newly_expired,
        last_tick_admitted=admitted,
        closed_slot=window.closed_slot,
        wait_p50=percentile(dst.waits, 50),
        wait_p90=percentile(dst.waits, 90),
        updated_at=now,
    )


def _budget(cfg: RoomConfig, pub: PublicState, dst: DrainerState, active: int, now: float) -> int:
    """Free places capped by the rate; nobody before a scheduled room's draw, nor while it is
    paused or closed."""
    if not admits_now(cfg, pub):
        return 0
    if cfg.queueing == "passthrough":  # sessions are counted, nobody is kept waiting
        return UNCAPPED
    return admission_budget(
        max_active=cfg.max_active,
        active=active,
        max_admits_per_minute=cfg.max_admits_per_minute,
        admitted_last_minute=dst.rates.admitted_since(now - 60),
    )


def free_places(cfg: RoomConfig, pub: PublicState, dst: DrainerState, now: float) -> int:
    """How many the room could let in now (after a tick: `pub`, `dst`): places free of sessions
    and of pool entries nobody claimed, within the rate cap; none when it admits nobody."""
    return _budget(cfg, pub, dst, pub.active + pool_held(dst), now)


def numbers_allowed(pub: PublicState, free: int, given: int) -> PublicState:
    """A room that keeps no line: joins that miss the pool may take numbers until its count of
    numbers given (`given` when read this tick) has grown by the free places nobody already in
    line (settled or not) is owed; the next tick admits them all."""
    owed = pub.waiting_settled + sum(pub.unsettled_counts)
    return replace(pub, numbers_until=given + max(0, free - owed))


def place_tickets(
    plan: TickPlan,
    tickets: Sequence[tuple[int, int, int]],
    cursor_slot: int,
    cursor_offset: int,
    *,
    now: float,
    slot_seconds: int,
) -> TickPlan:
    """The admitted batch's tickets (slot, k, shard) are known: move the natural-order cursor
    past them and count their time in the queue (from the start of each one's join slot)."""
    waits = (*plan.dst.waits, *(int(now - slot * slot_seconds) for slot, _, _ in tickets))
    waits = waits[-RECENT_WAITS:]
    return replace(
        plan,
        pub=replace(plan.pub, wait_p50=percentile(waits, 50), wait_p90=percentile(waits, 90)),
        dst=replace(plan.dst, cursor_slot=cursor_slot, cursor_offset=cursor_offset, waits=waits),
    )


# -- an idle room's pool: tokens minted ahead, claimed by joins ---------------------------------
# While nobody waits and places are free, the drainer mints a few admissions ahead, as a batch
# of its own (a "pool"), and joins claim its entries with one conditional write each: a visitor
# is let in at join, without waiting for a tick, and the API still holds no signing key. The
# entries hold places from the moment they are minted (max_active holds), a claim is exactly
# once (the pool's claim counter), and an entry nobody claims is given back when the pool is
# sealed (its counter closed to further claims) or at its deadline. The pool is sealed as soon
# as anybody waits, and opened only when nobody joined the queue in the slots not settled yet:
# a burst takes the pool's entries, then queues in order.

POOL_SECONDS = 60.0  # how long a minted entry may be claimed
POOL_RENEW_SECONDS = 10.0  # a pool this close to its entries' deadline is sealed and replaced
POOL_MIN = 10
POOL_MAX = ADMISSIONS_PER_LEDGER_SHARD  # one ledger shard per pool

# What the drainer does with the pool this tick: keep it as it is, seal it, or (a number) mint
# that many more entries and (re)open it, if nobody joined the queue in the unsettled slots.
PoolMove = Literal["keep", "seal"] | int


def the_pool(dst: DrainerState) -> Batch | None:
    """The pool batch joins may claim from (not sealed)."""
    return next((b for b in dst.batches if b.pool and b.seq == dst.pool_seq), None)


def pool_held(dst: DrainerState) -> int:
    """Places held by pool entries nobody has claimed (as far as the ledgers tell)."""
    return sum(b.count - b.picked for b in dst.batches if b.pool and not b.final)


def pool_room_idle(cfg: RoomConfig, pub: PublicState) -> bool:
    """Joins may be let straight in: the room admits now, and nobody waits in a settled slot
    (a room that keeps no line lets joins in whoever waits: passthrough admits them all at the
    next tick, reject has nobody waiting)."""
    wanted = cfg.straight_in or cfg.queueing not in ("fifo", "random")
    nobody_waits = pub.waiting_settled == 0 or cfg.queueing not in ("fifo", "random")
    return admits_now(cfg, pub) and wanted and nobody_waits


def pool_seals_for_the_line(cfg: RoomConfig) -> bool:
    """A room with a line (fifo, random) gives the pool's places to whoever waits in it."""
    return cfg.queueing in ("fifo", "random")


def pool_step(
    cfg: RoomConfig, plan: TickPlan, *, now: float, claims: int, sealed: bool = False
) -> tuple[TickPlan, PoolMove]:
    """Count the pool's claims (`claims`: taken from its claim counter, read after `now`) and
    say what to do with it: seal it when the room is not idle, when it nears its deadline, when
    places over max_active are held, or when its counter is already sealed (a tick that sealed
    it lost its commit); else grow it to about twice what was claimed since the last tick (at
    least POOL_MIN, at most the free places)."""
    pool = the_pool(plan.dst)
    claimed = min(claims, pool.count) if pool else 0
    grew = max(0, claimed - plan.dst.pool_claimed) if pool else 0
    plan = replace(
        plan,
        pub=replace(plan.pub, admitted_total=plan.pub.admitted_total + grew),
        dst=replace(plan.dst, pool_claimed=claimed),
    )
    pub, dst = plan.pub, plan.dst
    held = pub.active + pool_held(dst)
    capped = cfg.queueing != "passthrough"
    if pool is not None and (
        sealed
        or not pool_room_idle(cfg, pub)
        or now >= pool.admitted_at + POOL_SECONDS - POOL_RENEW_SECONDS
        or (capped and held > cfg.max_active)
    ):
        return plan, "seal"
    if not pool_room_idle(cfg, pub):
        return plan, "keep"
    if pool is not None:  # within max_active as it is now (else it was sealed above)
        plan = replace(plan, pub=replace(pub, pool_max_active=cfg.max_active))
        pub = plan.pub
    owed = pub.waiting_settled + sum(pub.unsettled_counts)  # numbers in line: theirs first
    free = _budget(cfg, pub, dst, held + owed, now) if capped else POOL_MAX
    if pool is None:
        return plan, min(free, POOL_MIN) if free > 0 else "keep"
    target = min(POOL_MAX, max(POOL_MIN, 2 * grew))
    add = max(0, min(free, target - (pool.count - claimed), POOL_MAX - pool.count))
    is_open = pub.pool_seq == pool.seq and pub.pool_size == pool.count
    return plan, add if add > 0 or not is_open else "keep"


def seal_pool(
    pub: PublicState, dst: DrainerState, claimed: int | None
) -> tuple[PublicState, DrainerState]:
    """The pool's counter is closed: `claimed` entries were taken before (None: no pool). The
    rest hold no place any more; the next pool is a new batch."""
    pool = the_pool(dst)
    batches, taken = dst.batches, 0
    if pool is not None and claimed is not None:
        sealed = replace(pool, count=min(pool.count, claimed))
        batches = tuple(sealed if b.seq == pool.seq else b for b in batches)
        taken = max(0, sealed.count - dst.pool_claimed)  # claimed since the last count
    return (
        replace(pub, pool_seq=0, pool_size=0, admitted_total=pub.admitted_total + taken),
        replace(dst, batches=batches, pool_seq=0, pool_claimed=0, pool_written=0),
    )


def grow_pool(cfg: RoomConfig, plan: TickPlan, add: int, *, now: float) -> TickPlan:
    """Mint `add` more entries: into the pool, or a new pool batch. They hold places (and
    count against the rate budget) from now; `pool_written` says which still need items."""
    dst = plan.dst
    pool = the_pool(dst)
    deadline = now + POOL_SECONDS
    expires = deadline + cfg.session_seconds
    batches, next_seq = dst.batches, dst.next_seq
    if pool is not None:
        grown = replace(
            pool,
            count=pool.count + add,
            pickup_deadline=max(pool.pickup_deadline, deadline),
            expires_at=max(pool.expires_at, expires),
        )
        batches = tuple(grown if b.seq == pool.seq else b for b in batches)
        written, claimed = dst.pool_written, dst.pool_claimed
    else:
        pool = Batch(next_seq, 0, add, now, deadline, expires, 1, pool=True)
        batches, next_seq, written, claimed = (*batches, pool), next_seq + 1, 0, 0
    dst = replace(
        dst,
        batches=batches,
        next_seq=next_seq,
        pool_seq=pool.seq,
        pool_claimed=claimed,
        pool_written=written,
        rates=dst.rates.add(now, add) if add else dst.rates,
    )
    return replace(plan, dst=dst)


def pool_entries_to_write(dst: DrainerState) -> tuple[Batch, range] | None:
    """The pool batch and the entries (k) it holds that have no ticket item yet."""
    pool = the_pool(dst)
    if pool is None or pool.count <= dst.pool_written:
        return None
    return pool, range(dst.pool_written + 1, pool.count + 1)
