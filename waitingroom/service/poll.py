"""Where a ticket stands: its place while waiting, its token once the drainer has reached it.

A waiting poll is answered from caches (see `reads`); only a ticket the drainer has reached
costs reads and writes (the pickup), once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from waitingroom.domain import (
    PublicState,
    RoomConfig,
    draw_place,
    estimated_position,
    eta_seconds,
    ledger_shard_of,
    line_state,
    poll_after_seconds,
    prequeue_poll_seconds,
    settle_look_seconds,
    you_are_next,
)
from waitingroom.errors import Gone, NotAuthenticated
from waitingroom.rooms import parse_origins
from waitingroom.service.context import Context
from waitingroom.service.results import Admitted, Waiting
from waitingroom.store import Conflict
from waitingroom.tokens import BadTicket, Ticket, binding_value, parse_ticket, unverified_claims

NOT_PICKED_UP = "this ticket was admitted but not picked up in time"


def room_has_closed(room: str) -> Gone:
    return Gone(f"room {room!r} has closed: nobody more is let in", code="room_closed")


def said_plainly(cfg: RoomConfig, st: PublicState, w: Waiting) -> Waiting:
    """A waiting answer that says what the line is doing: no ETA while the room is paused
    (nobody is let in until the operator resumes it), and whether nobody is ahead."""
    line = line_state(cfg.status, bool(st.draw_seed))
    eta = None if line == "paused" else w.eta_seconds
    nobody_ahead = w.exact and you_are_next(w.position)
    return replace(w, line=line, eta_seconds=eta, you_are_next=nobody_ahead)


class Polls:
    def __init__(self, ctx: Context, binding_key: bytes | None = None) -> None:
        self.ctx = ctx
        self.binding_key = binding_key

    def read_ticket(self, room: str, text: str | None) -> Ticket:
        if not text:
            raise NotAuthenticated(
                "send the ticket from join as 'Authorization: Bearer <ticket>' or its cookie",
                code="missing_ticket",
            )
        try:
            ticket = parse_ticket(self.ctx.secrets, text)
        except BadTicket as exc:
            raise NotAuthenticated(str(exc), code="bad_ticket") from exc
        if ticket.room != room:
            raise NotAuthenticated(
                f"this ticket belongs to room {ticket.room!r}", code="bad_ticket"
            )
        return ticket

    def poll(self, room: str, text: str | None, min_version: int = 0) -> Waiting | Admitted:
        """Where the ticket stands. `min_version` is the newest room-state version the client
        has been answered from (any container): the answer is never from an older one."""
        ticket = self.read_ticket(room, text)
        cfg = self.ctx.reads.config(room)
        st = self.ctx.reads.state(cfg, min_version)
        result = self._poll(ticket, cfg, st)
        if isinstance(result, Waiting):
            result = replace(said_plainly(cfg, st, result), state_version=st.version)
        return result

    def _poll(self, ticket: Ticket, cfg: RoomConfig, st: PublicState) -> Waiting | Admitted:
        if ticket.from_pool:  # let in at join: its token again (a reload, a retried join)
            return self._admitted(cfg, st, ticket, -1)
        prequeue = cfg.in_prequeue(ticket.slot)
        unsettled = (prequeue and not st.draw_seed) or ticket.slot > st.settled_through
        if unsettled and cfg.status == "closed":
            raise room_has_closed(cfg.room)
        if prequeue and not st.draw_seed:
            return self.before_the_draw(cfg, st, ticket)
        if ticket.slot > st.settled_through:
            return self.estimate(cfg, st, ticket)
        ss = self.ctx.reads.settled_slot(cfg.room, ticket.slot)
        if ss is None or not ss.holds(ticket.k, ticket.shard):
            # Signed by us but absent from its settled slot: the state we hold is older than
            # the slot (another container settled it): poll again shortly.
            return self.estimate(cfg, st, ticket)
        rank = ss.drawn_rank(ticket.k, ticket.shard)
        if prequeue:  # a drawn place: the recorded draw, computed from the ticket alone
            rank = draw_place(rank, st.prequeue_size, st.draw_seed)
        self.ctx.metrics.count(cfg.room, "polls")
        if rank < st.consumed:
            return self._admitted(cfg, st, ticket, rank)
        if cfg.status == "closed":
            raise room_has_closed(cfg.room)
        position = rank - st.consumed + 1
        eta = self._eta(cfg, st, position)
        poll = poll_after_seconds(position, eta, cfg.pickup_seconds)
        return Waiting(position, eta, poll, True, st.waiting_settled)

    def before_the_draw(self, cfg: RoomConfig, st: PublicState, t: Ticket) -> Waiting:
        """In the pre-queue: everyone here is drawn into a random order at opening."""
        assert cfg.opens_at is not None
        in_line = max(1, st.settled_total)
        until_open = max(0.0, cfg.opens_at - self.ctx.clock())
        rate = cfg.fallback_rate()
        eta = math.ceil(until_open) + (math.ceil(in_line / 2 / rate) if rate > 0 else 0)
        # the ticket's own moment in the opening's spread, the same on every poll
        offset = (t.shard * 7919 + t.k * 104_729 + t.slot) % 1000 / 1000
        wait = prequeue_poll_seconds(
            until_open, st.settled_total, cfg.slot_seconds, offset, cfg.pickup_seconds
        )
        poll = max(1, math.ceil(wait))
        return Waiting(in_line, eta, poll, False, st.settled_total, opens_at=cfg.opens_at)

    def estimate(
        self,
        cfg: RoomConfig,
        st: PublicState,
        t: Ticket,
        seen: Sequence[int] = (),
        seen_whole: Sequence[bool] = (),
    ) -> Waiting:
        """A place before the ticket's slot has settled (exact a few seconds later); `seen`:
        the joins the caller saw per slot since the drainer's count, `seen_whole` where it gave
        every one of them (a join's own answer)."""
        position = estimated_position(
            st.waiting_settled,
            st.settled_through,
            st.join_rate_per_slot,
            t.slot,
            t.k,
            shard=t.shard,
            shards=cfg.shards,
            unsettled=st.unsettled_counts,
            counted_at=st.updated_at,
            slot_seconds=cfg.slot_seconds,
            joined_at=t.joined_ms / 1000,
            seen=seen,
            seen_whole=seen_whole,
        )
        eta = self._eta(cfg, st, position)
        soon = max(1, min(poll_after_seconds(position, eta, cfg.pickup_seconds), 3))
        poll = self._settle_poll(cfg, t, soon)
        return Waiting(position, eta, poll, False, st.waiting_settled)

    def _eta(self, cfg: RoomConfig, st: PublicState, position: int) -> int | None:
        """The wait the drainer's forecast says (as of now: the state may be a moment old)."""
        age = self.ctx.clock() - st.updated_at
        return eta_seconds(position, st.admit_rate, cfg.fallback_rate(), st.admit_forecast, age)

    def _settle_poll(self, cfg: RoomConfig, t: Ticket, soon: int) -> int:
        """Look again just after the ticket's slot settles (the middle of the short spread:
        clients spread their looks by +-20 %), or `soon` when that is long past."""
        joined_at = t.joined_ms / 1000
        since = self.ctx.clock() - joined_at
        wait = settle_look_seconds(t.slot, cfg.slot_seconds, joined_at, since, 0.5)
        return soon if wait is None else max(1, math.floor(wait + 0.5))

    def _admitted(
        self, cfg: RoomConfig, st: PublicState, t: Ticket, rank: int
    ) -> Waiting | Admitted:
        store = self.ctx.store
        item = store.get_ticket(cfg.room, t.slot, t.shard, t.k)
        now = self.ctx.clock()
        if item is None:
            if rank >= st.materialized:
                return Waiting(0, 0, 1, True, st.waiting_settled)  # being admitted this second
            raise Gone("this ticket's admission has ended")
        if item.state == "admitted":
            if item.pickup_deadline <= now:
                raise Gone(NOT_PICKED_UP)
            try:
                store.pick_up(cfg.room, item, ledger_shard_of(t.ticket_id, item.ledger_shards), now)
            except Conflict:
                again = store.get_ticket(cfg.room, t.slot, t.shard, t.k)
                if again is None or again.state != "picked":
                    raise Gone(NOT_PICKED_UP) from None
            else:
                self.ctx.metrics.count(cfg.room, "pickups")
            return self.admission(cfg, item.token, item.expires_at)
        if item.state == "picked" and item.expires_at > now:
            return self.admission(cfg, item.token, item.expires_at)
        if item.state == "completed":
            raise Gone("this ticket's session was completed", code="completed")
        raise Gone("this ticket's session has expired")

    def admission(self, cfg: RoomConfig, token: str, expires_at: float) -> Admitted:
        binding = None
        if cfg.bind_tokens and self.binding_key:
            jti = str(unverified_claims(token)["jti"])
            binding = binding_value(self.binding_key, cfg.room, jti)
        origins = parse_origins(cfg.return_origins)
        return Admitted(token, int(expires_at), cfg.origin_url, binding, origins)
