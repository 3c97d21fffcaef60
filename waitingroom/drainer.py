"""The drainer: the only writer of room state and the only holder of the signing key.

Each tick, per room, under a lease: settle the slots that have closed (read their counters once,
publish totals), account the live batches (pickups, completions, no-shows, expiries), then admit
min(max_active - active, rate budget) tickets in queue order and mint one JWT each. A tick reads,
asks `waitingroom.planning` (pure) what to write, then writes; this module is the I/O around it.

Admission is committed before it is materialised: the state write (version-conditioned, one
transaction) is the single point where tickets become admitted, recorded as a pending batch; the
ticket items (with their tokens) are written after it with conditional puts, and a later tick
finishes a pending batch that a crash interrupted. Two drainers can therefore never admit the same
ticket twice, and no committed admission is lost.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from waitingroom.domain import (
    Batch,
    DrainerState,
    Pending,
    PublicState,
    RoomConfig,
    SettledSlot,
    draw_place,
    drawn_cursor,
    next_settle_at,
    recorded_draws,
    slot_of,
    take_tickets,
    ticket_at,
    tickets_at_ranks,
)
from waitingroom.observability import MetricsBuffer, configure_logging
from waitingroom.planning import (
    SettleWindow,
    TickPlan,
    draw_due,
    draws_of,
    free_places,
    grow_pool,
    is_dormant,
    numbers_allowed,
    place_tickets,
    plan_tick,
    pool_entries_to_write,
    pool_held,
    pool_seals_for_the_line,
    pool_step,
    seal_pool,
    settle_window,
    the_pool,
)
from waitingroom.settings import DrainerSettings
from waitingroom.store import (
    KEEP_SECONDS,
    SEALED_POOL,
    AdmittedTicket,
    Conflict,
    StoreUnavailable,
    WaitingRoomStore,
)
from waitingroom.tokens import KeySet, TokenSigner

log = logging.getLogger("waitingroom.drainer")

DORMANT = "closed and settled: nothing to do"
LEASE_HELD = "another drainer holds the lease"
# how long after another drainer's lease runs out a drainer standing by tries to take it
LEASE_MARGIN_SECONDS = 0.2
# how often a dormant (closed, settled, empty) room is looked at again, in case it reopens
DORMANT_RECHECK_SECONDS = 60.0
# how often the loop lists the rooms again (a new room is nudged: it is listed and ticked at once)
ROOM_LIST_SECONDS = 10.0
# slots not settled yet whose counters a tick reads for the estimates (a drainer that keeps up
# has about three: settling waits SETTLE_DELAY_SECONDS after a slot closes)
MAX_COUNTED_SLOTS = 8
# a room with joins in a slot not settled yet is ticked as soon as that slot can settle (plus
# this margin), not up to a tick period later: visitors see an exact place sooner
SETTLE_MARGIN_SECONDS = 0.05
MIN_NAP_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class TickReport:
    room: str
    ran: bool
    reason: str = ""
    settled_slots: int = 0
    admitted: int = 0
    active: int = 0
    waiting: int = 0
    reclaimed: int = 0
    completed: int = 0
    settle_at: float | None = None  # tick again then: a slot somebody joined can settle


class Drainer:
    def __init__(
        self,
        store: WaitingRoomStore,
        keys: Callable[[], KeySet],
        *,
        issuer: str,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        metrics: MetricsBuffer | None = None,
    ) -> None:
        self.store = store
        self._load_keys = keys
        self._signer: TokenSigner | None = None
        self.issuer = issuer
        self.owner = owner or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.clock = clock
        # emitted after every tick: a drainer writes one EMF line per room per tick
        self.metrics = metrics or MetricsBuffer("drainer", flush_seconds=0, clock=clock)
        self._prequeue_cache: dict[tuple[str, str], list[SettledSlot]] = {}

    # -- keys ------------------------------------------------------------------------------

    def refresh_keys(self) -> None:
        """Load the key set, publish its public half (JWKS) if it changed."""
        keyset = self._load_keys()
        self._signer = keyset.signer()
        jwks = keyset.jwks()
        if self.store.get_jwks() != jwks:
            self.store.put_jwks(jwks)
            log.info("published signing keys", extra={"kids": [k["kid"] for k in jwks["keys"]]})

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self.refresh_keys()
        assert self._signer is not None
        return self._signer

    # -- one tick --------------------------------------------------------------------------

    def tick_all(self) -> list[TickReport]:
        return [self.tick_room(room) for room in self.store.list_rooms()]

    def tick_room(self, room: str) -> TickReport:
        cfg = self.store.get_room_config(room, consistent=True)
        if cfg is None:
            return TickReport(room, False, "no such room")
        pub = self.store.get_public_state(room, consistent=True) or PublicState(
            settled_through=cfg.epoch_slot - 1
        )
        dst = self.store.get_drainer_state(room) or DrainerState(
            cursor_slot=cfg.epoch_slot, max_shards=cfg.shards
        )
        if is_dormant(cfg, pub, dst):
            return TickReport(room, False, DORMANT, active=0, waiting=pub.waiting_settled)
        if not self.store.acquire_lease(room, self.owner, self.lease_seconds):
            return TickReport(room, False, LEASE_HELD)
        # read again under the lease: another drainer may have committed meanwhile
        pub = self.store.get_public_state(room, consistent=True) or pub
        dst = self.store.get_drainer_state(room) or dst
        try:
            if dst.pending is not None:
                pub, dst = self._finish_interrupted(cfg, pub, dst)
            return self._tick(cfg, pub, dst)
        except Conflict:
            log.warning(
                "state changed under us; leaving the room to the lease holder", extra={"room": room}
            )
            return TickReport(room, False, "lost a state race")

    def _finish_interrupted(
        self, cfg: RoomConfig, pub: PublicState, dst: DrainerState
    ) -> tuple[PublicState, DrainerState]:
        """A batch committed by a tick that never wrote its tickets (that drainer died, or the
        store failed under it): write them now, keeping any token already written."""
        assert dst.pending is not None
        b = dst.pending.batch
        out = self._materialise(cfg, pub, dst)
        log.warning(
            "finished a batch an interrupted tick had committed",
            extra={
                "room": cfg.room,
                "seq": b.seq,
                "tickets": b.count,
                "committed_seconds_ago": round(self.clock() - b.admitted_at, 1),
            },
        )
        return out

    def _tick(self, cfg: RoomConfig, pub: PublicState, dst: DrainerState) -> TickReport:
        """Read, plan (pure), write: settled slots, the committed state, then the tickets."""
        room = cfg.room
        now = self.clock()
        window = settle_window(cfg, pub, dst, now)
        slots = window.slots
        counters = self.store.read_counters(room, slots, window.shards) if slots else {}
        line = pub.waiting_settled or any(map(sum, counters.values()))
        if dst.pool_seq and line and pool_seals_for_the_line(cfg):
            # somebody is in line: the places held for joins go to them, in this very tick
            pub, dst = self._seal_pool(cfg, pub, dst)
        ledger = self.store.read_ledger(room, dst.batches) if dst.batches else {}
        first_after_open = None
        if draw_due(cfg, pub, now, max(pub.settled_through, window.last)):
            first_after_open = self._first_settled_after_open(cfg, pub)
        plan = plan_tick(
            cfg,
            pub,
            dst,
            now=now,
            counters=counters,
            ledger=ledger,
            first_after_open=first_after_open,
            draw_seed=secrets.token_hex(16),
            recorded_draws=self._recorded_draws(cfg, window),
        )
        if plan.settled:
            self.store.put_settled_slots(room, plan.settled, int(now) + KEEP_SECONDS)
            for drawn in draws_of(plan.settled):
                self.store.append_audit(room, "drainer", "draw", drawn)
        if plan.opened:
            opened = {"prequeue_size": plan.pub.prequeue_size, "draw_seed": plan.pub.draw_seed}
            self.store.append_audit(room, "drainer", "open", opened)
            log.info("room opened", extra={"room": room, "prequeue_size": opened["prequeue_size"]})
        if plan.admit is not None:
            tickets, slot, offset = self._tickets_for(
                cfg, plan.pub, plan.pub.settled_through, plan.admit
            )
            plan = place_tickets(
                plan, tickets, slot, offset, now=now, slot_seconds=cfg.slot_seconds
            )
        # a reject room's numbers given: read before the counts, so a number given in between
        # is subtracted twice (one fewer for a moment), never given twice
        given = self.store.free_places_given(room) if cfg.queueing == "reject" else 0
        plan = replace(plan, pub=self._count_unsettled(cfg, plan.pub, window.shards, now))
        held = pool_held(plan.dst)
        plan, open_pool = self._pool(cfg, plan, now)  # leaves whoever is in line their places
        free = free_places(cfg, plan.pub, plan.dst, now)
        if cfg.queueing == "reject":
            grown = max(0, pool_held(plan.dst) - held)
            plan = replace(plan, pub=self._numbers_allowed(cfg, plan.pub, free, given, grown))
        plan = replace(plan, pub=replace(plan.pub, committed_at=self.clock()))
        self.store.commit_state(room, plan.pub, plan.dst, dst.version)
        new_pub = replace(plan.pub, version=dst.version + 1)
        new_dst = replace(plan.dst, version=dst.version + 1)
        if plan.admit is not None:
            new_pub, new_dst = self._materialise(cfg, new_pub, new_dst)
        new_pub, new_dst = self._fill_pool(cfg, new_pub, new_dst, open_pool, now)
        report = self._report(room, plan, new_pub, free=free)
        # tick again as soon as a slot somebody joined can settle (a random room settles whole
        # draw windows: its regular ticks will do)
        settle_at = (
            None
            if cfg.queueing == "random"
            else next_settle_at(
                new_pub.settled_through,
                new_pub.unsettled_counts,
                cfg.slot_seconds,
                new_pub.join_rate_per_slot,
            )
        )
        return replace(report, settle_at=settle_at)

    def _numbers_allowed(
        self, cfg: RoomConfig, pub: PublicState, free: int, given: int, grown: int
    ) -> PublicState:
        """A reject room: the places its pool grew by this tick count as given, so a join still
        answering from the previous state cannot give them as numbers too."""
        if grown:
            self.store.add_free_places_given(cfg.room, grown)
        return numbers_allowed(pub, free, given + grown)

    def _recorded_draws(self, cfg: RoomConfig, window: SettleWindow) -> dict[int, str]:
        """A random room's draws already written for the slots this tick settles (a previous
        attempt failed before committing): one query, only when a window settles."""
        if cfg.queueing != "random" or not window.slots:
            return {}
        return recorded_draws(self.store.settled_slots_from(cfg.room, window.first, window.last))

    # -- an idle room's pool (planning.pool_step) ---------------------------------------------

    def _pool(self, cfg: RoomConfig, plan: TickPlan, now: float) -> tuple[TickPlan, bool]:
        """Count the pool's claims; seal it, or grow it. True: (re)open it once written."""
        seq = plan.dst.pool_seq
        n = self.store.read_counters(cfg.room, [-seq], 1)[-seq][0] if seq else 0
        # a counter already sealed (by a tick whose commit was lost) still tells its claims
        sealed = n >= SEALED_POOL
        plan, move = pool_step(cfg, plan, now=now, claims=n % SEALED_POOL, sealed=sealed)
        if move == "keep":
            return plan, False
        line = pool_seals_for_the_line(cfg)
        if move != "seal" and line and self._joined_unsettled(cfg, plan, now):
            move = "seal"  # somebody queued: they go first
        if move == "seal":
            pub, dst = self._seal_pool(cfg, plan.pub, plan.dst)
            return replace(plan, pub=pub, dst=dst), False
        return grow_pool(cfg, plan, move, now=now), True

    def _seal_pool(
        self, cfg: RoomConfig, pub: PublicState, dst: DrainerState
    ) -> tuple[PublicState, DrainerState]:
        claimed = self.store.seal_pool(cfg.room, dst.pool_seq) if dst.pool_seq else None
        return seal_pool(pub, dst, claimed)

    def _joined_unsettled(self, cfg: RoomConfig, plan: TickPlan, now: float) -> bool:
        """Did anybody take a number in the slots not settled yet (up to the next one, for the
        API containers' clocks)? This tick's published counts answer for the slots they cover;
        only the slots past them are read."""
        if any(plan.pub.unsettled_counts):
            return True
        first = plan.pub.settled_through + 1 + len(plan.pub.unsettled_counts)
        slots = list(range(first, slot_of(now, cfg.slot_seconds) + 2))
        counts = self.store.read_counters(cfg.room, slots, plan.dst.max_shards)
        return any(sum(c) for c in counts.values())

    def _fill_pool(
        self, cfg: RoomConfig, pub: PublicState, dst: DrainerState, open_pool: bool, now: float
    ) -> tuple[PublicState, DrainerState]:
        """Write the pool's new entries (with their tokens), then let joins claim them."""
        todo = pool_entries_to_write(dst)
        if todo is None and not open_pool:
            return pub, dst
        new_dst = dst
        if todo is not None:
            batch, ks = todo
            # claimable until the batch's deadline (never later: its places are then counted
            # from its ledger), the session running from then
            entries = [(-batch.seq, k, 0) for k in ks]
            self.store.put_admitted(
                cfg.room, self._mint(cfg, replace(batch, admitted_at=now), entries)
            )
            new_dst = replace(dst, pool_written=batch.count)
        new_pub = pub
        pool = the_pool(new_dst)
        if open_pool and pool is not None:
            new_pub = replace(
                pub, pool_seq=pool.seq, pool_size=pool.count, pool_max_active=cfg.max_active
            )
        self.store.commit_state(cfg.room, new_pub, new_dst, dst.version)
        return replace(new_pub, version=dst.version + 1), replace(new_dst, version=dst.version + 1)

    def _count_unsettled(
        self, cfg: RoomConfig, pub: PublicState, shards: int, now: float
    ) -> PublicState:
        """Publish how many have joined so far in each slot not settled yet (one batch read of
        a few slots' counters), so a visitor's place is estimated from every shard's count."""
        first = pub.settled_through + 1
        last = min(slot_of(now, cfg.slot_seconds), first + MAX_COUNTED_SLOTS - 1)
        if cfg.status == "closed" or last < first:
            return replace(pub, unsettled_counts=())
        counters = self.store.read_counters(cfg.room, list(range(first, last + 1)), shards)
        counts = tuple(sum(counters.get(sl, ())) for sl in range(first, last + 1))
        return replace(pub, unsettled_counts=counts)

    def _first_settled_after_open(self, cfg: RoomConfig, pub: PublicState) -> SettledSlot | None:
        """The first slot settled before this tick from the opening slot on (the pre-queue's
        size is the tickets before it)."""
        assert cfg.opens_slot is not None
        if cfg.opens_slot > pub.settled_through:
            return None
        found = self.store.settled_slots_from(cfg.room, cfg.opens_slot, pub.settled_through)
        return next(iter(found), None)

    def _report(self, room: str, plan: TickPlan, pub: PublicState, free: int = 0) -> TickReport:
        report = TickReport(
            room,
            True,
            settled_slots=len(plan.settled),
            admitted=plan.admitted,
            active=pub.active,
            waiting=pub.waiting_settled,
            reclaimed=plan.reclaimed,
            completed=plan.completed,
        )
        if plan.admitted or plan.settled or plan.reclaimed or plan.completed:
            log.info("tick", extra={"report": _as_dict(report)})
        # for the alarms and the dashboard (infra/template.yaml): a tick that admitted nobody
        # while people waited and places were free, and the recent admissions' time in queue
        stalled = pub.waiting_settled > 0 and free > 0 and not plan.admitted
        self.metrics.gauge(room, "stalled", int(stalled))
        if pub.wait_p50 is not None:
            self.metrics.gauge(room, "wait_p50_seconds", pub.wait_p50)
            self.metrics.gauge(room, "wait_p90_seconds", pub.wait_p90 or pub.wait_p50)
        self._record(report, plan.joined)
        return report

    def _record(self, report: TickReport, joined: int) -> None:
        m = self.metrics
        m.gauge(report.room, "active", report.active)
        m.gauge(report.room, "waiting", report.waiting)
        m.gauge(report.room, "admissions", report.admitted)
        m.gauge(report.room, "joins", joined)
        m.gauge(report.room, "reclaimed", report.reclaimed)
        m.gauge(report.room, "completed", report.completed)
        m.flush()

    def _tickets_for(
        self, cfg: RoomConfig, pub: PublicState, settled_through: int, p: Pending
    ) -> tuple[list[tuple[int, int, int]], int, int]:
        """The tickets of a batch, and the natural-order cursor after it.

        Ranks below the pre-queue size are drawn places (inverse of the draw); the rest follow
        the natural order from the batch's cursor."""
        b = p.batch
        out: list[tuple[int, int, int]] = []
        size = pub.prequeue_size if pub.draw_seed else 0
        drawn = range(b.start, min(size, b.start + b.count))
        if drawn:
            slots = self._prequeue_slots(cfg, pub)
            out = [
                ticket_at(slots, draw_place(r, size, pub.draw_seed, inverse=True)) for r in drawn
            ]
        rest = b.count - len(out)
        if rest <= 0:
            return out, p.from_slot, p.from_offset
        found = iter(self.store.settled_slots_from(cfg.room, p.from_slot, settled_through))
        head = next(found, None)
        found = itertools.chain([head] if head else [], found)
        if head is not None and (head.draw_size or p.from_offset < 0):
            # a draw window (whatever the room's queueing is now): by place, as clients count
            more, slot, offset = self._drawn_tickets(found, b.start + len(out), rest)
        else:
            more, slot, offset = take_tickets(found, p.from_slot, p.from_offset, rest)
        return out + more, slot, offset

    @staticmethod
    def _drawn_tickets(
        found: Iterable[SettledSlot], first_rank: int, n: int
    ) -> tuple[list[tuple[int, int, int]], int, int]:
        """The tickets at places [first_rank, first_rank + n) from the settled slots `found`
        from the cursor on (the first slot of the draw window holding the next place); each
        window wanted is read whole."""
        end = first_rank + n
        slots: list[SettledSlot] = []
        for ss in found:
            past = slots and ss.cum_before >= end
            if past and (not ss.draw_size or ss.draw_seed != slots[-1].draw_seed):
                break  # the last window wanted is read whole
            slots.append(ss)
        tickets = tickets_at_ranks(slots, range(first_rank, end))
        slot, offset = drawn_cursor(slots, end)
        return tickets, slot, offset

    def _prequeue_slots(self, cfg: RoomConfig, pub: PublicState) -> list[SettledSlot]:
        """The pre-queue's settled slots (immutable once drawn: read once per container)."""
        key = (cfg.room, pub.draw_seed)
        if key not in self._prequeue_cache:
            assert cfg.opens_slot is not None
            self._prequeue_cache = {
                key: list(
                    self.store.settled_slots_from(cfg.room, cfg.epoch_slot - 1, cfg.opens_slot - 1)
                )
            }
        return self._prequeue_cache[key]

    def _materialise(
        self, cfg: RoomConfig, pub: PublicState, dst: DrainerState
    ) -> tuple[PublicState, DrainerState]:
        """Write the ticket items (and tokens) of the pending batch, then clear it."""
        assert dst.pending is not None
        p = dst.pending
        b = p.batch
        tickets, _, _ = self._tickets_for(cfg, pub, pub.settled_through, p)
        self.store.put_admitted(cfg.room, self._mint(cfg, b, tickets))
        self._release_unheld(cfg.room, b, tickets)
        new_pub = replace(pub, materialized=b.start + b.count)
        new_dst = replace(dst, pending=None)
        self.store.commit_state(cfg.room, new_pub, new_dst, dst.version)
        return replace(new_pub, version=dst.version + 1), replace(new_dst, version=dst.version + 1)

    def _mint(
        self, cfg: RoomConfig, b: Batch, tickets: list[tuple[int, int, int]]
    ) -> list[AdmittedTicket]:
        """One signed admission token per ticket (slot, k, shard) of batch `b`."""
        signer = self.signer
        items = []
        for slot, k, shard in tickets:
            ticket_id = f"{slot}.{shard}.{k}"
            token = signer.mint(
                issuer=self.issuer,
                room=cfg.room,
                ticket_id=ticket_id,
                issued_at=int(b.admitted_at),
                expires_at=int(b.expires_at),
                jti=f"{cfg.room}.{b.seq}.{ticket_id}",
            )
            items.append(
                AdmittedTicket(
                    slot=slot,
                    shard=shard,
                    k=k,
                    state="admitted",
                    token=token,
                    seq=b.seq,
                    ledger_shards=b.ledger_shards,
                    admitted_at=b.admitted_at,
                    pickup_deadline=b.pickup_deadline,
                    expires_at=b.expires_at,
                )
            )
        return items

    def _release_unheld(self, room: str, b: Batch, tickets: list[tuple[int, int, int]]) -> None:
        """Numbers the API knows nobody holds (their join got no ticket) free their places at
        the next tick instead of holding them until the pickup deadline."""
        if not tickets:
            return
        slots = [slot for slot, _, _ in tickets]  # drawn places come in any order
        found = self.store.unheld_numbers(room, min(slots), max(slots))
        n = sum(1 for slot, k, shard in tickets if (slot, shard, k) in found)
        if n:
            self.store.release_unheld(room, b, n)
            log.info("admitted numbers nobody holds: places freed", extra={"room": room, "n": n})

    # -- loops -----------------------------------------------------------------------------

    def _safe_tick(self, room: str) -> TickReport:
        """One room's trouble (other than the store being down) must not stop the others."""
        try:
            return self.tick_room(room)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("tick failed", extra={"room": room})
            return TickReport(room, False, "tick failed")

    def run(
        self,
        *,
        seconds: float,
        tick_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
        stop_when_idle: bool = False,
    ) -> int:
        """Tick every `tick_seconds` for `seconds`; an operator's nudge ticks a room at once.
        With `stop_when_idle`, return as soon as no room has anything to do (in Lambda: an idle
        deployment costs one short invocation a minute, not a minute of compute)."""
        start = self.clock()
        ticks = 0
        backoff = 0.0
        last_tick: dict[str, float] = {}
        settle_at: dict[str, float] = {}  # room -> when a slot somebody joined can settle
        dormant: dict[str, float] = {}  # room -> when it was last found dormant
        leased: set[str] = set()  # rooms whose lease this drainer may hold
        rooms: list[str] = []
        rooms_at = float("-inf")
        while not should_stop() and self.clock() - start < seconds:
            try:
                nudges = self.store.get_nudges()
                # a room created (or nudged) since the last listing is listed, and ticked, now
                unknown = any(room not in rooms for room in nudges)
                if unknown or self.clock() - rooms_at >= ROOM_LIST_SECONDS:
                    rooms, rooms_at = self.store.list_rooms(), self.clock()
                # the room whose settle comes first goes first: its visitors wait on it for
                # their exact places (and joins for the admissions it makes); a regular tick
                # of another room can wait a moment
                for room in sorted(rooms, key=lambda r: settle_at.get(r, math.inf)):
                    now = self.clock()
                    nudged = nudges.get(room, 0.0) > last_tick.get(room, 0.0)
                    if room in dormant and not nudged:  # a reopened room is nudged
                        if now - dormant[room] < DORMANT_RECHECK_SECONDS:
                            continue
                        due = True
                    else:
                        due = now - last_tick.get(room, 0.0) >= tick_seconds
                        due = due or now >= settle_at.get(room, math.inf)
                    if due or nudged:
                        last_tick[room] = self.clock()
                        report = self._safe_tick(room)
                        ticks += 1
                        _remember_settle(settle_at, room, report, last_tick[room])
                        if report.reason == LEASE_HELD:
                            last_tick[room] = self._standby(room, tick_seconds)
                        elif report.reason != DORMANT:
                            leased.add(room)
                        if report.reason == DORMANT:
                            dormant[room] = now
                        else:
                            dormant.pop(room, None)
                backoff = 0.0
            except StoreUnavailable as exc:
                # the store is down or throttling: wait longer each time, up to 30 s
                backoff = min(30.0, max(1.0, backoff * 2))
                log.warning(
                    "store unavailable; backing off",
                    extra={"reason": str(exc), "seconds": backoff},
                )
                sleep(backoff)
                continue
            if stop_when_idle and all(room in dormant for room in rooms):
                break  # nothing open anywhere: the next scheduled run looks again
            sleep(_nap(tick_seconds, settle_at, self.clock()))
        self._release_leases(leased)
        return ticks

    def _standby(self, room: str, tick_seconds: float) -> float:
        """Another drainer holds the room: look again just as its lease runs out (if it died,
        admissions resume then, not up to a tick later), and not every tick meanwhile. Returns
        the time to count the next tick from."""
        expiry = self.store.lease_expiry(room)
        if expiry is None:
            return self.clock()
        return expiry + LEASE_MARGIN_SECONDS - tick_seconds

    def _release_leases(self, rooms: set[str]) -> None:
        """Hand the rooms over at the end of a run: a drainer already running (the next
        scheduled run overlaps this one) takes them at its next look, not when the lease runs
        out 30 s later. A drainer that dies cannot do this; its leases run out instead."""
        for room in sorted(rooms):
            try:
                self.store.release_lease(room, self.owner)
            except StoreUnavailable:
                return  # the leases run out by themselves


def _remember_settle(
    settle_at: dict[str, float], room: str, report: TickReport, ticked_at: float
) -> None:
    """Tick the room again when its oldest slot with joins can settle (a hair after, so the
    tick's clock is past it); a moment already past when the tick began is left to the tick
    period (that tick could not settle it: the loop must not spin on it)."""
    if report.settle_at is None or report.settle_at <= ticked_at:
        settle_at.pop(room, None)
    else:
        settle_at[room] = report.settle_at + SETTLE_MARGIN_SECONDS


def _nap(tick_seconds: float, settle_at: dict[str, float], now: float) -> float:
    """How long the loop sleeps: half a second at most (nudges), less when a slot somebody
    joined can settle sooner."""
    nap = min(0.5, tick_seconds)
    if settle_at:
        nap = min(nap, max(MIN_NAP_SECONDS, min(settle_at.values()) - now))
    return nap


def _as_dict(report: TickReport) -> dict[str, Any]:
    return {f: getattr(report, f) for f in report.__dataclass_fields__}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge, every minute: tick every few seconds until just before the next run."""
    from waitingroom import bootstrap  # the composition root imports this module

    configure_logging()
    settings, drainer = bootstrap.lambda_drainer()
    drainer.refresh_keys()  # picks up a rotated key once a minute
    seconds = settings.run_seconds
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        seconds = min(seconds, context.get_remaining_time_in_millis() / 1000 - 10)
    ticks = drainer.run(
        seconds=max(0.0, seconds), tick_seconds=settings.tick_seconds, stop_when_idle=True
    )
    return {"ticks": ticks}


def main() -> None:  # pragma: no cover - the local loop, `python -m waitingroom.drainer`
    from waitingroom import bootstrap

    configure_logging(os.environ.get("WAITINGROOM_LOG_LEVEL", "INFO"))
    settings = DrainerSettings()
    drainer = bootstrap.build_drainer(settings)
    drainer.refresh_keys()
    drainer.run(seconds=float("inf"), tick_seconds=settings.tick_seconds)


if __name__ == "__main__":  # pragma: no cover
    main()
