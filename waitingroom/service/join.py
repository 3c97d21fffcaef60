"""Joining a room: a signed ticket for one counter bump, with the room's abuse controls
(proof of work, per-client limits) and idempotent retries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets

from waitingroom.domain import (
    PublicState,
    RoomConfig,
    admits_now,
    join_was_late,
    ledger_shard_of,
    queue_number,
    slot_of,
)
from waitingroom.errors import (
    InvalidRequest,
    NotAuthenticated,
    RoomClosedToJoins,
    RoomFull,
    TooManyRequests,
)
from waitingroom.service.context import Context
from waitingroom.service.poll import Polls, said_plainly
from waitingroom.service.results import Admitted, Joined, Waiting
from waitingroom.store import AdmittedTicket, Conflict, StoreUnavailable
from waitingroom.tokens import (
    CHALLENGE_SECONDS,
    BadChallenge,
    Challenge,
    Ticket,
    parse_challenge,
    parse_ticket,
    sign_challenge,
    sign_ticket,
    solves,
)

IDEMPOTENCY_SECONDS = 24 * 3600
REJECT_RETRY_SECONDS = 10  # a full room that keeps no line: about two drainer ticks
CLAIM_MARGIN = 5.0  # a pool entry this close to its pickup deadline is not handed out

log = logging.getLogger("waitingroom.join")


def keeps_no_line(cfg: RoomConfig, st: PublicState) -> bool:
    """A room that lets a join in or tells it the room is full (queueing "reject"), while it
    admits: paused, held (queue_all) or before its draw, its joins take numbers as anywhere."""
    return cfg.queueing == "reject" and admits_now(cfg, st)


class Joins:
    def __init__(self, ctx: Context, polls: Polls) -> None:
        self.ctx = ctx
        self.polls = polls
        self._client_key = hmac.new(ctx.secrets[0], b"waitingroom:client:v1", "sha256").digest()
        # per room, the (pool, size) this container found empty: not asked again
        self._empty_pools: dict[str, tuple[int, int]] = {}

    def join(
        self,
        room: str,
        idempotency_key: str | None,
        *,
        client: str | None = None,
        challenge: str | None = None,
        solution: str | None = None,
    ) -> Joined:
        cfg = self.ctx.reads.config(room)
        if cfg.status == "closed":
            raise RoomClosedToJoins(room)
        solved: Challenge | None = None
        if cfg.challenge_bits > 0:
            solved = self._check_solution(cfg, challenge, solution)
            # the solved challenge is the idempotency key: a replay gets the same ticket, and
            # one solution never buys two places
            idempotency_key = f"pow.{solved.nonce}"
        if idempotency_key is not None:
            existing = self.ctx.store.get_idempotent(room, idempotency_key)
            if existing is not None:
                return self._joined(cfg, existing)
        if solved is not None and solved.expires_at < self.ctx.clock():
            raise NotAuthenticated(
                "the challenge has expired: get a new one from GET /rooms/{room}/challenge",
                code="challenge_expired",
            )
        if client is not None and (
            cfg.max_tickets_per_client > 0 or cfg.max_joins_per_minute_per_client > 0
        ):
            self._count_client_join(cfg, client)
        return self._new_ticket(cfg, idempotency_key)

    def _new_ticket(self, cfg: RoomConfig, idempotency_key: str | None) -> Joined:
        st = self.ctx.reads.state(cfg)
        no_line = keeps_no_line(cfg, st)
        entry = self._claim(cfg, st, sure=no_line)
        if entry is None and no_line and not self._let_in_next_tick(cfg, st):
            raise RoomFull(
                f"room {cfg.room!r} is full and keeps no line: try again in a little while",
                retry_after=REJECT_RETRY_SECONDS,
            )
        ticket = entry[0] if entry is not None else self._take_number(cfg)
        self.ctx.metrics.count(cfg.room, "joins")
        text = sign_ticket(self.ctx.secrets[0], ticket)
        try:
            return self._answer(cfg, ticket, text, idempotency_key, entry)
        except StoreUnavailable:
            # no retry can ever be given this number (a pool entry not picked up goes back
            # when its pool is sealed or at its deadline)
            if idempotency_key is None and entry is None:
                self._unheld(cfg, ticket.slot, ticket.shard, ticket.k, "unanswered")
            raise

    def _answer(
        self,
        cfg: RoomConfig,
        ticket: Ticket,
        text: str,
        idempotency_key: str | None,
        entry: tuple[Ticket, AdmittedTicket] | None,
    ) -> Joined:
        if idempotency_key is not None:
            # written before a pool entry is picked up: a retry after a failed answer gets this
            # same entry back, instead of taking (and holding for a session) another one
            stored = self.ctx.store.put_idempotent(
                cfg.room, idempotency_key, text, IDEMPOTENCY_SECONDS
            )
            if stored != text:  # a concurrent retry with the same key won: theirs is the ticket
                return self._joined(cfg, stored)
        if entry is not None:
            return Joined(text, 0, self._pick_up(cfg, text, *entry))
        # A new number is in a slot that has not settled yet: answer from the cached state,
        # without re-reading the ticket we just signed.
        st = self.ctx.reads.state(cfg)
        if cfg.in_prequeue(ticket.slot) and not st.draw_seed:
            status = self.polls.before_the_draw(cfg, st, ticket)
        else:
            # with what this container's own joins were given since the drainer's count: a
            # burst that began after it shows in them first
            seen, whole = self.ctx.reads.seen_counts(cfg.room, st.settled_through + 1, ticket.slot)
            status = self.polls.estimate(cfg, st, ticket, seen, whole)
        status = said_plainly(cfg, st, status)
        number = queue_number(ticket.slot, ticket.k, ticket.shard, cfg.epoch_slot)
        return Joined(text, number, status)

    # -- straight in: an idle room's pool ----------------------------------------------------

    def _claim(
        self, cfg: RoomConfig, st: PublicState, *, sure: bool
    ) -> tuple[Ticket, AdmittedTicket] | None:
        """Straight in: claim an entry of the room's pool (minted ahead by the drainer while
        nobody waits) with one conditional write. None: take a number. `sure`: a store that
        hesitates is an outage (503), not a reason to take a number (a room that keeps no
        line would otherwise say it is full)."""
        if not admits_now(cfg, st):
            return None  # a scheduled room has a pool only once its pre-queue is drawn
        seq, size = st.pool_seq, st.pool_size
        if size <= 0 or self._empty_pools.get(cfg.room) == (seq, size):
            return None
        if cfg.max_active < st.pool_max_active:
            return None  # lowered since the pool was minted: the drainer shrinks it first
        store = self.ctx.store
        try:
            k = store.claim_pool(cfg.room, seq, size)
            if k is None:
                self._empty_pools[cfg.room] = (seq, size)
                return None
            now = self.ctx.clock()
            ticket = Ticket(cfg.room, -seq, 0, k, int(now * 1000))
            item = store.get_ticket(cfg.room, ticket.slot, 0, k)
        except StoreUnavailable:
            if sure:
                raise
            return None  # an entry claimed but not picked up goes back at its deadline
        if item is None or item.state != "admitted" or item.pickup_deadline <= now + CLAIM_MARGIN:
            return None  # a pool its drainer left open past its deadline: take a number
        return ticket, item

    def _pick_up(
        self, cfg: RoomConfig, text: str, ticket: Ticket, item: AdmittedTicket
    ) -> Admitted:
        """The claimed entry's token, picked up: the session starts."""
        now = self.ctx.clock()
        shard = ledger_shard_of(ticket.ticket_id, item.ledger_shards)
        try:
            self.ctx.store.pick_up(cfg.room, item, shard, now)
        except Conflict:  # picked up already, or its deadline passed in between
            status = self.polls.poll(cfg.room, text)
            if isinstance(status, Admitted):
                return status
            raise StoreUnavailable("the place held for this join has just run out") from None
        self.ctx.metrics.count(cfg.room, "pickups")
        return self.polls.admission(cfg, item.token, item.expires_at)

    # -- a room that keeps no line (queueing "reject") ---------------------------------------

    def _let_in_next_tick(self, cfg: RoomConfig, st: PublicState) -> bool:
        """Would a number taken now be let in at the next tick? The drainer's last tick allowed
        the numbers up to `numbers_until` (its free places nobody in line is owed yet); joins
        take them one by one with a conditional write, so a burst never takes more. None left:
        the room is full, and no number is taken, so nobody is ever left in a line."""
        limit = st.numbers_until if st.version else cfg.max_active  # a room not ticked yet
        return self.ctx.store.claim_free_place(cfg.room, limit)

    def _take_number(self, cfg: RoomConfig) -> Ticket:
        for _ in range(3):
            now = self.ctx.clock()
            slot = slot_of(now, cfg.slot_seconds)
            shard = self.ctx.rng.randrange(cfg.shards)
            try:
                k = self.ctx.store.bump_counter(cfg.room, slot, shard, cfg.slot_seconds)
            except StoreUnavailable as exc:
                if exc.ambiguous:
                    self._unsure(cfg, slot, shard, exc)
                raise
            self.ctx.reads.saw_number(cfg.room, slot, shard, k)
            # A bump that came back too late might be missed by the drainer's settle: leave
            # it as an unissued number and take a fresh one.
            if not join_was_late(slot, cfg.slot_seconds, self.ctx.clock()):
                return Ticket(cfg.room, slot, shard, k, int(now * 1000))
            self._unheld(cfg, slot, shard, k, "late")
        raise StoreUnavailable("the store is answering too slowly to hand out a place")

    # -- numbers nobody holds ----------------------------------------------------------------

    def _unheld(self, cfg: RoomConfig, slot: int, shard: int, k: int, reason: str) -> None:
        """A number was taken but no ticket carries it: record it, so the stats count it and
        the drainer frees its place as soon as it admits it (not after pickup_seconds)."""
        self.ctx.metrics.count(cfg.room, "numbers_unheld")
        try:
            self.ctx.store.put_unheld(cfg.room, slot, shard, k, reason)
        except StoreUnavailable:
            log.warning(
                "an unheld number could not be recorded: its place is reclaimed after "
                "pickup_seconds",
                extra={"room": cfg.room, "slot": slot, "shard": shard, "k": k, "reason": reason},
            )

    def _unsure(self, cfg: RoomConfig, slot: int, shard: int, exc: StoreUnavailable) -> None:
        """The counter bump failed after it was sent: it may still land. Never sent again, so
        this join leaves at most one number nobody holds (reclaimed after pickup_seconds)."""
        self.ctx.metrics.count(cfg.room, "joins_unsure")
        log.warning(
            "a join's number may have been taken without a ticket",
            extra={"room": cfg.room, "slot": slot, "shard": shard, "reason": str(exc)},
        )

    def _joined(self, cfg: RoomConfig, text: str) -> Joined:
        ticket = parse_ticket(self.ctx.secrets, text)
        status = self.polls.poll(cfg.room, text)
        if ticket.from_pool:
            return Joined(text, 0, status)
        if not isinstance(status, Waiting):  # a retried join after admission: still waiting-ish
            status = Waiting(0, 0, 1, True, 0)
        number = queue_number(ticket.slot, ticket.k, ticket.shard, cfg.epoch_slot)
        return Joined(text, number, status)

    # -- per-client limits -----------------------------------------------------------------

    def client_hash(self, client: str) -> str:
        """A keyed hash of the client key (an IP address is never stored, nor guessable from
        its hash: IPv4 has only 2**32 values, so a plain hash would give it away)."""
        return hmac.new(self._client_key, client.encode(), hashlib.sha256).hexdigest()[:32]

    def _count_client_join(self, cfg: RoomConfig, client: str) -> None:
        now = self.ctx.clock()
        hit = self.ctx.store.count_client_join(
            cfg.room,
            self.client_hash(client),
            now=now,
            max_total=cfg.max_tickets_per_client,
            max_per_minute=cfg.max_joins_per_minute_per_client,
        )
        if hit is None:
            return
        self.ctx.metrics.count(cfg.room, "client_limited")
        if hit == "total":
            raise TooManyRequests(
                f"room {cfg.room!r} gives at most {cfg.max_tickets_per_client} tickets per "
                "client, and this client has them all: keep polling the ticket you have",
                code="too_many_tickets",
                retry_after=3600,
            )
        wait = max(1, math.ceil(60 - now % 60))
        raise TooManyRequests(
            f"room {cfg.room!r} accepts at most {cfg.max_joins_per_minute_per_client} joins "
            f"per minute per client; retry in {wait} s",
            code="too_many_joins",
            retry_after=wait,
        )

    # -- proof of work ---------------------------------------------------------------------

    def challenge(self, room: str) -> Challenge:
        """A fresh, stateless challenge at the room's difficulty (signed, nothing stored)."""
        cfg = self.ctx.reads.config(room)
        nonce = secrets.token_hex(16)
        return Challenge(room, nonce, int(self.ctx.clock()) + CHALLENGE_SECONDS, cfg.challenge_bits)

    def sign_challenge(self, challenge: Challenge) -> str:
        return sign_challenge(self.ctx.secrets[0], challenge)

    def _check_solution(self, cfg: RoomConfig, text: str | None, solution: str | None) -> Challenge:
        """One HMAC and one hash. The expiry is checked by the caller, after a replay of an
        already used challenge has been given its ticket back."""
        if not text or not solution:
            raise NotAuthenticated(
                f"room {cfg.room!r} asks for a proof of work: GET /rooms/{cfg.room}/challenge, "
                "find a counter such that sha256(challenge + ':' + counter) starts with "
                f"{cfg.challenge_bits} zero bits, and send them as X-Challenge and "
                "X-Challenge-Solution",
                code="challenge_required",
            )
        try:
            ch = parse_challenge(self.ctx.secrets, text)
        except BadChallenge as exc:
            raise NotAuthenticated(str(exc), code=exc.code) from exc
        if ch.room != cfg.room:
            raise NotAuthenticated(
                f"this challenge belongs to room {ch.room!r}", code="bad_challenge"
            )
        if ch.bits < cfg.challenge_bits:
            raise NotAuthenticated(
                f"the room now asks for {cfg.challenge_bits} zero bits: get a new challenge",
                code="challenge_expired",
            )
        if not solves(text, solution, ch.bits):
            raise InvalidRequest(
                f"sha256(challenge + ':' + X-Challenge-Solution) does not start with {ch.bits} "
                "zero bits (the solution is a decimal counter, at most 20 digits)",
                code="wrong_solution",
            )
        return ch
