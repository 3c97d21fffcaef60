"""What the API does, without HTTP: join, poll, complete, and the operator actions.

A waiting poll is answered from caches: the room's public state (≤ 1 s old), its config, and the
settled slot of the ticket (immutable once settled, kept in a small LRU). Only a ticket the
drainer has reached costs reads and writes (pickup), once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from waitingroom.domain import (
    PublicState,
    RoomConfig,
    SettledSlot,
    draw_place,
    eta_seconds,
    join_was_late,
    ledger_shard_of,
    poll_after_seconds,
    queue_number,
    slot_of,
)
from waitingroom.observability import MetricsBuffer
from waitingroom.store import KEEP_SECONDS, Conflict, Store, StoreUnavailable
from waitingroom.tokens import (
    CHALLENGE_SECONDS,
    BadChallenge,
    BadTicket,
    BadToken,
    Challenge,
    Ticket,
    binding_value,
    parse_challenge,
    parse_ticket,
    sign_challenge,
    sign_ticket,
    solves,
    unverified_claims,
    valid_room_id,
    verify_admission_token,
)

T = TypeVar("T")


class ApiError(Exception):
    """An answer for the client: HTTP status, a code and a message that says what to fix."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def unknown_room(room: str) -> ApiError:
    return ApiError(404, "unknown_room", f"there is no room {room!r}; check the URL")


class TtlCache(Generic[T]):
    """A value per key, refetched when older than `ttl` seconds. Thread-safe, bounded."""

    def __init__(self, ttl: float, clock: Callable[[], float], size: int = 1024) -> None:
        self.ttl = ttl
        self.clock = clock
        self.size = size
        self._data: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, fetch: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        value = fetch()
        with self._lock:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


@dataclass(frozen=True, slots=True)
class Waiting:
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    exact: bool
    waiting: int
    opens_at: float | None = None  # set while a scheduled room's pre-queue awaits its draw
    state_version: int = 0  # of the room state the answer came from (see `poll`)


@dataclass(frozen=True, slots=True)
class Admitted:
    token: str
    expires_at: int
    origin_url: str
    binding: str | None = None  # the binding cookie's value, when the room binds tokens


@dataclass(frozen=True, slots=True)
class Joined:
    ticket: str
    number: int
    status: Waiting


class WaitingRoom:
    """The API's use cases. One per container, built lazily; caches live here, not in globals."""

    def __init__(
        self,
        store: Store,
        ticket_secrets: Sequence[bytes],
        *,
        issuer: str,
        state_ttl: float = 1.0,
        config_ttl: float = 2.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        room_defaults: dict[str, Any] | None = None,
        metrics: MetricsBuffer | None = None,
        binding_key: bytes | None = None,
        admin_max_failures_per_minute: int = 0,
        revocation_list: bool = False,
        cookie_secure: bool = True,
    ) -> None:
        if not ticket_secrets:
            raise ValueError("at least one ticket secret is needed")
        self.store = store
        self.secrets = list(ticket_secrets)
        self.issuer = issuer
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.room_defaults = dict(room_defaults or {})  # for fields a new room leaves out
        self.metrics = metrics or MetricsBuffer("api", clock=clock)
        self.cookie_secure = cookie_secure  # cookies only over HTTPS (off for plain-HTTP dev)
        self._configs: TtlCache[RoomConfig | None] = TtlCache(config_ttl, clock)
        self._states: TtlCache[PublicState] = TtlCache(state_ttl, clock)
        self._slots: TtlCache[SettledSlot | None] = TtlCache(float("inf"), clock, size=20_000)
        self._jwks: TtlCache[dict[str, Any]] = TtlCache(300.0, clock, size=1)
        self._jwks_refetched_at = 0.0
        self.binding_key = binding_key
        self._client_key = hmac.new(self.secrets[0], b"waitingroom:client:v1", "sha256").digest()
        self.revocation_list = revocation_list  # complete also lists the token as revoked
        self._revoked: TtlCache[list[str]] = TtlCache(2.0, clock, size=256)
        # failed admin attempts per client: in memory, per container (see admin_refused)
        self.admin_max_failures_per_minute = admin_max_failures_per_minute
        self._admin_failures: OrderedDict[str, list[float]] = OrderedDict()
        self._admin_lock = threading.Lock()

    # -- cached reads ----------------------------------------------------------------------

    def config(self, room: str) -> RoomConfig:
        if not valid_room_id(room):
            raise ApiError(
                400, "invalid_room", "room ids are 1-63 lowercase letters, digits and dashes"
            )
        cfg = self._configs.get(room, lambda: self.store.get_room_config(room))
        if cfg is None:
            raise unknown_room(room)
        return cfg

    def state(self, cfg: RoomConfig, min_version: int = 0) -> PublicState:
        def fetch() -> PublicState:
            return self.store.get_public_state(cfg.room) or PublicState(
                settled_through=cfg.epoch_slot - 1
            )

        st = self._states.get(cfg.room, fetch)
        if st.version < min_version:
            # the client has seen a newer state from another container: read it again once,
            # so a position it was shown never goes back up
            self._states.forget(cfg.room)
            st = self._states.get(cfg.room, fetch)
        return st

    def settled_slot(self, room: str, slot: int) -> SettledSlot | None:
        key = f"{room}#{slot}"
        found = self._slots.get(key, lambda: self.store.get_settled_slot(room, slot))
        if found is None:
            self._slots.forget(key)  # only a settled, non-empty slot is immutable
        return found

    def jwks(self, refetch: bool = False) -> dict[str, Any]:
        now = self.clock()
        if refetch and now - self._jwks_refetched_at > 30:
            self._jwks_refetched_at = now
            self._jwks.forget("jwks")
        jwks = self._jwks.get("jwks", lambda: self.store.get_jwks() or {"keys": []})
        if not jwks["keys"]:
            self._jwks.forget("jwks")
        return jwks

    # -- join ------------------------------------------------------------------------------

    def join(
        self,
        room: str,
        idempotency_key: str | None,
        *,
        client: str | None = None,
        challenge: str | None = None,
        solution: str | None = None,
    ) -> Joined:
        cfg = self.config(room)
        if cfg.status == "closed":
            raise ApiError(409, "room_closed", f"room {room!r} is closed to new joins")
        solved: Challenge | None = None
        if cfg.challenge_bits > 0:
            solved = self._check_solution(cfg, challenge, solution)
            # the solved challenge is the idempotency key: a replay gets the same ticket, and
            # one solution never buys two places
            idempotency_key = f"pow.{solved.nonce}"
        if idempotency_key is not None:
            existing = self.store.get_idempotent(room, idempotency_key)
            if existing is not None:
                return self._joined(cfg, existing)
        if solved is not None and solved.expires_at < self.clock():
            raise ApiError(
                401,
                "challenge_expired",
                "the challenge has expired: get a new one from GET /rooms/{room}/challenge",
            )
        if client is not None and (
            cfg.max_tickets_per_client > 0 or cfg.max_joins_per_minute_per_client > 0
        ):
            self._count_client_join(cfg, client)
        ticket = self._take_number(cfg)
        self.metrics.count(room, "joins")
        text = sign_ticket(self.secrets[0], ticket)
        if idempotency_key is not None:
            stored = self.store.put_idempotent(room, idempotency_key, text, 24 * 3600)
            if stored != text:  # a concurrent retry with the same key won: theirs is the ticket
                return self._joined(cfg, stored)
        # A new number is in a slot that has not settled yet: answer from the cached state,
        # without re-reading the ticket we just signed.
        st = self.state(cfg)
        if cfg.in_prequeue(ticket.slot) and not st.draw_seed:
            status = self._before_the_draw(cfg, st)
        else:
            status = self._estimate(cfg, st, ticket)
        number = queue_number(ticket.slot, ticket.k, ticket.shard, cfg.epoch_slot)
        return Joined(text, number, status)

    def client_hash(self, client: str) -> str:
        """A keyed hash of the client key (an IP address is never stored, nor guessable from
        its hash: IPv4 has only 2**32 values, so a plain hash would give it away)."""
        return hmac.new(self._client_key, client.encode(), hashlib.sha256).hexdigest()[:32]

    def _count_client_join(self, cfg: RoomConfig, client: str) -> None:
        now = self.clock()
        hit = self.store.count_client_join(
            cfg.room,
            self.client_hash(client),
            now=now,
            max_total=cfg.max_tickets_per_client,
            max_per_minute=cfg.max_joins_per_minute_per_client,
        )
        if hit == "total":
            self.metrics.count(cfg.room, "client_limited")
            raise ApiError(
                429,
                "too_many_tickets",
                f"room {cfg.room!r} gives at most {cfg.max_tickets_per_client} tickets per "
                "client, and this client has them all: keep polling the ticket you have",
                {"Retry-After": "3600"},
            )
        if hit is not None:
            self.metrics.count(cfg.room, "client_limited")
            wait = max(1, math.ceil(60 - now % 60))
            raise ApiError(
                429,
                "too_many_joins",
                f"room {cfg.room!r} accepts at most {cfg.max_joins_per_minute_per_client} joins "
                f"per minute per client; retry in {wait} s",
                {"Retry-After": str(wait)},
            )

    # -- proof of work ---------------------------------------------------------------------

    def challenge(self, room: str) -> Challenge:
        """A fresh, stateless challenge at the room's difficulty (signed, nothing stored)."""
        cfg = self.config(room)
        nonce = secrets.token_hex(16)
        return Challenge(room, nonce, int(self.clock()) + CHALLENGE_SECONDS, cfg.challenge_bits)

    def sign_challenge(self, challenge: Challenge) -> str:
        return sign_challenge(self.secrets[0], challenge)

    def _check_solution(self, cfg: RoomConfig, text: str | None, solution: str | None) -> Challenge:
        """One HMAC and one hash. The expiry is checked by the caller, after a replay of an
        already used challenge has been given its ticket back."""
        if not text or not solution:
            raise ApiError(
                401,
                "challenge_required",
                f"room {cfg.room!r} asks for a proof of work: GET /rooms/{cfg.room}/challenge, "
                "find a counter such that sha256(challenge + ':' + counter) starts with "
                f"{cfg.challenge_bits} zero bits, and send them as X-Challenge and "
                "X-Challenge-Solution",
            )
        try:
            ch = parse_challenge(self.secrets, text)
        except BadChallenge as exc:
            raise ApiError(401, exc.code, str(exc)) from exc
        if ch.room != cfg.room:
            raise ApiError(401, "bad_challenge", f"this challenge belongs to room {ch.room!r}")
        if ch.bits < cfg.challenge_bits:
            raise ApiError(
                401,
                "challenge_expired",
                f"the room now asks for {cfg.challenge_bits} zero bits: get a new challenge",
            )
        if not solves(text, solution, ch.bits):
            raise ApiError(
                400,
                "wrong_solution",
                f"sha256(challenge + ':' + X-Challenge-Solution) does not start with {ch.bits} "
                "zero bits (the solution is a decimal counter, at most 20 digits)",
            )
        return ch

    # -- failed admin attempts -------------------------------------------------------------

    def admin_refused(self, client: str) -> int | None:
        """Seconds to wait when this client failed the admin check too often in the last
        minute (None: go ahead). Counted in memory, per container: an attacker spread over
        many containers gets up to N tries per minute from each, which still stops guessing."""
        limit = self.admin_max_failures_per_minute
        if limit <= 0:
            return None
        now = self.clock()
        with self._admin_lock:
            recent = [t for t in self._admin_failures.get(client, []) if t > now - 60]
            if len(recent) < limit:
                return None
            return max(1, math.ceil(recent[0] + 60 - now))

    def admin_failed(self, client: str) -> None:
        if self.admin_max_failures_per_minute <= 0:
            return
        now = self.clock()
        with self._admin_lock:
            recent = [t for t in self._admin_failures.pop(client, []) if t > now - 60]
            self._admin_failures[client] = [*recent, now][-self.admin_max_failures_per_minute :]
            while len(self._admin_failures) > 10_000:
                self._admin_failures.popitem(last=False)

    def _take_number(self, cfg: RoomConfig) -> Ticket:
        for _ in range(3):
            now = self.clock()
            slot = slot_of(now, cfg.slot_seconds)
            shard = self.rng.randrange(cfg.shards)
            k = self.store.bump_counter(cfg.room, slot, shard, cfg.slot_seconds)
            # A bump that came back too late might be missed by the drainer's settle: leave
            # it as an unissued number and take a fresh one.
            if not join_was_late(slot, cfg.slot_seconds, self.clock()):
                return Ticket(cfg.room, slot, shard, k, int(now * 1000))
        raise StoreUnavailable("the store is answering too slowly to hand out a place")

    def _joined(self, cfg: RoomConfig, text: str) -> Joined:
        ticket = parse_ticket(self.secrets, text)
        status = self.poll(cfg.room, text)
        if not isinstance(status, Waiting):  # a retried join after admission: still waiting-ish
            status = Waiting(0, 0, 1, True, 0)
        number = queue_number(ticket.slot, ticket.k, ticket.shard, cfg.epoch_slot)
        return Joined(text, number, status)

    # -- poll ------------------------------------------------------------------------------

    def read_ticket(self, room: str, text: str | None) -> Ticket:
        if not text:
            raise ApiError(
                401,
                "missing_ticket",
                "send the ticket from join as 'Authorization: Bearer <ticket>' or its cookie",
            )
        try:
            ticket = parse_ticket(self.secrets, text)
        except BadTicket as exc:
            raise ApiError(401, "bad_ticket", str(exc)) from exc
        if ticket.room != room:
            raise ApiError(401, "bad_ticket", f"this ticket belongs to room {ticket.room!r}")
        return ticket

    def poll(self, room: str, text: str | None, min_version: int = 0) -> Waiting | Admitted:
        """Where the ticket stands. `min_version` is the newest room-state version the client
        has been answered from (any container): the answer is never from an older one."""
        ticket = self.read_ticket(room, text)
        cfg = self.config(room)
        st = self.state(cfg, min_version)
        result = self._poll(room, ticket, cfg, st)
        if isinstance(result, Waiting):
            result = replace(result, state_version=st.version)
        return result

    def _poll(
        self, room: str, ticket: Ticket, cfg: RoomConfig, st: PublicState
    ) -> Waiting | Admitted:
        prequeue = cfg.in_prequeue(ticket.slot)
        closed = ApiError(410, "room_closed", f"room {room!r} has closed: nobody more is let in")
        if prequeue and not st.draw_seed:
            if cfg.status == "closed":
                raise closed
            return self._before_the_draw(cfg, st)
        if ticket.slot > st.settled_through:
            if cfg.status == "closed":
                raise closed
            return self._estimate(cfg, st, ticket)
        ss = self.settled_slot(room, ticket.slot)
        if ss is None or not ss.holds(ticket.k, ticket.shard):
            # Signed by us but absent from its settled slot: the state we hold is older than
            # the slot (another container settled it): poll again shortly.
            return self._estimate(cfg, st, ticket)
        rank = ss.rank_of(ticket.k, ticket.shard)
        if prequeue:  # a drawn place: the recorded draw, computed from the ticket alone
            rank = draw_place(rank, st.prequeue_size, st.draw_seed)
        self.metrics.count(room, "polls")
        if rank >= st.consumed and cfg.status == "closed":
            raise closed
        if rank >= st.consumed:
            position = rank - st.consumed + 1
            eta = eta_seconds(position, st.admit_rate, cfg.fallback_rate())
            return Waiting(
                position, eta, poll_after_seconds(position, eta), True, st.waiting_settled
            )
        return self._admitted(cfg, st, ticket, rank)

    def _before_the_draw(self, cfg: RoomConfig, st: PublicState) -> Waiting:
        """In the pre-queue: everyone here is drawn into a random order at opening."""
        assert cfg.opens_at is not None
        in_line = max(1, st.settled_total)
        until_open = max(0, math.ceil(cfg.opens_at - self.clock()))
        rate = cfg.fallback_rate()
        eta = until_open + (math.ceil(in_line / 2 / rate) if rate > 0 else 0)
        poll = max(2, min(15, until_open // 10)) if until_open else 2
        return Waiting(in_line, eta, poll, False, st.settled_total, opens_at=cfg.opens_at)

    def _estimate(self, cfg: RoomConfig, st: PublicState, t: Ticket) -> Waiting:
        unsettled_before = max(0, t.slot - st.settled_through - 1) * st.join_rate_per_slot
        position = st.waiting_settled + int(unsettled_before) + t.k
        eta = eta_seconds(position, st.admit_rate, cfg.fallback_rate())
        poll = max(1, min(poll_after_seconds(position, eta), 3))  # exact soon: slot settles
        return Waiting(position, eta, poll, False, st.waiting_settled)

    def _admitted(
        self, cfg: RoomConfig, st: PublicState, t: Ticket, rank: int
    ) -> Waiting | Admitted:
        item = self.store.get_ticket(cfg.room, t.slot, t.shard, t.k)
        now = self.clock()
        if item is None:
            if rank >= st.materialized:
                return Waiting(0, 0, 1, True, st.waiting_settled)  # being admitted this second
            raise ApiError(410, "expired", "this ticket's admission has ended")
        if item.state == "admitted":
            if item.pickup_deadline <= now:
                raise ApiError(410, "expired", "this ticket was admitted but not picked up in time")
            try:
                self.store.pick_up(
                    cfg.room, item, ledger_shard_of(t.ticket_id, item.ledger_shards), now
                )
            except Conflict:
                again = self.store.get_ticket(cfg.room, t.slot, t.shard, t.k)
                if again is None or again.state != "picked":
                    raise ApiError(
                        410, "expired", "this ticket was admitted but not picked up in time"
                    ) from None
            else:
                self.metrics.count(cfg.room, "pickups")
            return self._admission(cfg, item.token, item.expires_at)
        if item.state == "picked" and item.expires_at > now:
            return self._admission(cfg, item.token, item.expires_at)
        if item.state == "completed":
            raise ApiError(410, "completed", "this ticket's session was completed")
        raise ApiError(410, "expired", "this ticket's session has expired")

    def _admission(self, cfg: RoomConfig, token: str, expires_at: float) -> Admitted:
        binding = None
        if cfg.bind_tokens and self.binding_key:
            binding = binding_value(
                self.binding_key, cfg.room, str(unverified_claims(token)["jti"])
            )
        return Admitted(token, int(expires_at), cfg.origin_url, binding)

    # -- complete --------------------------------------------------------------------------

    def complete(self, room: str, token: str | None) -> None:
        cfg = self.config(room)
        if not token:
            raise ApiError(
                401, "missing_token", "send the admission token as 'Authorization: Bearer <token>'"
            )
        now = self.clock()
        try:
            claims = self._verify(token, room, now)
        except BadToken as exc:
            raise ApiError(401, "bad_token", str(exc)) from exc
        try:
            slot, shard, k = (int(x) for x in str(claims["sub"]).split("."))
        except ValueError as exc:
            raise ApiError(401, "bad_token", "the token's subject is not a ticket") from exc
        item = self.store.get_ticket(cfg.room, slot, shard, k)
        if item is not None and item.state == "picked":
            self.metrics.count(room, "completions")
            # a Conflict: completed concurrently or expired meanwhile
            with contextlib.suppress(Conflict):
                self.store.complete(
                    room, item, ledger_shard_of(f"{slot}.{shard}.{k}", item.ledger_shards), now
                )
        if self.revocation_list:
            # whatever the ticket's state, the token is now useless to a guard that checks the
            # revocation list (GET /rooms/{room}/revoked); completing again changes nothing
            self.store.add_revoked(room, str(claims["jti"]), float(claims["exp"]))
            self._revoked.forget(room)

    def revoked(self, room: str) -> list[str]:
        """The room's revoked, unexpired jti's (cached for 2 s per container)."""
        self.config(room)
        return self._revoked.get(room, lambda: self.store.list_revoked(room, self.clock()))

    def _verify(self, token: str, room: str, now: float) -> dict[str, Any]:
        try:
            return verify_admission_token(
                token, self.jwks(), issuer=self.issuer, audience=room, now=now
            )
        except BadToken:
            # a rotated key the cache has not seen yet: refetch once (rate-limited), retry
            return verify_admission_token(
                token, self.jwks(refetch=True), issuer=self.issuer, audience=room, now=now
            )

    # -- operators -------------------------------------------------------------------------

    def put_room(
        self, room: str, changes: dict[str, Any], actor: str = "system", action: str = "update"
    ) -> tuple[RoomConfig, bool]:
        """Create or update a room; returns (config, created). Same input, same result; every
        change is written to the room's audit trail."""
        if not valid_room_id(room):
            raise ApiError(
                400, "invalid_room", "room ids are 1-63 lowercase letters, digits and dashes"
            )
        if changes.get("bind_tokens") and not self.binding_key:
            raise ApiError(
                422,
                "invalid_config",
                "bind_tokens needs a binding key shared with the origin guard: set "
                "WAITINGROOM_BINDING_KEY here and GUARD_BINDING_KEY at the origin",
            )
        current = self.store.get_room_config(room, consistent=True)
        if current is None:
            fields = {**self.room_defaults, **changes}
            if fields.get("opens_at") is not None:
                fields.setdefault("status", "scheduled")
            if fields.get("status") == "scheduled" and fields.get("opens_at") is None:
                raise ApiError(422, "invalid_config", "a scheduled room needs opens_at")
            if "max_active" not in fields:
                raise ApiError(422, "invalid_config", "a new room needs max_active (>= 1)")
            slot_seconds = int(fields.get("slot_seconds", 1))
            cfg = RoomConfig(room=room, epoch_slot=slot_of(self.clock(), slot_seconds), **fields)
            created = self.store.put_room_config(cfg, expected_version=None)
            self._configs.forget(room)
            self.store.append_audit(room, actor, "create", {"config": fields})
            return created, True
        if "slot_seconds" in changes and changes["slot_seconds"] != current.slot_seconds:
            raise ApiError(409, "conflict", "slot_seconds is fixed when a room is created")
        if changes.get("opens_at", current.opens_at) != current.opens_at:
            self._check_opens_at_may_move(current)
        if changes.get("status") == "scheduled" and current.status != "scheduled":
            raise ApiError(409, "conflict", "only a new room can be scheduled; pause it instead")
        updated = replace(current, **changes)
        if updated == current:
            return current, False
        try:
            saved = self.store.put_room_config(updated, expected_version=current.version)
        except Conflict as exc:
            raise ApiError(409, "conflict", "the room changed meanwhile; send it again") from exc
        self._configs.forget(room)
        diff = {k: [getattr(current, k), v] for k, v in changes.items() if getattr(current, k) != v}
        self.store.append_audit(room, actor, action, {"changes": diff})
        return saved, False

    def _check_opens_at_may_move(self, current: RoomConfig) -> None:
        """opens_at may move until the pre-queue has been drawn, and only on a room created
        scheduled (a room that admitted people in join order cannot start a draw)."""
        if current.opens_at is None:
            raise ApiError(409, "conflict", "opens_at can only be set when a room is created")
        st = self.store.get_public_state(current.room, consistent=True)
        if st is not None and st.draw_seed:
            raise ApiError(409, "conflict", "the room has opened and its pre-queue was drawn")

    def set_status(self, room: str, status: str, actor: str) -> RoomConfig:
        if self.store.get_room_config(room, consistent=True) is None:
            raise unknown_room(room)
        action = {"paused": "pause", "open": "resume", "closed": "close"}[status]
        cfg, _ = self.put_room(room, {"status": status}, actor=actor, action=action)
        return cfg

    def audit(self, room: str, limit: int = 50) -> list[dict[str, Any]]:
        if self.store.get_room_config(room) is None:
            raise unknown_room(room)
        return self.store.list_audit(room, limit)

    def stats(self, room: str) -> dict[str, Any]:
        cfg = self.store.get_room_config(room, consistent=True)
        if cfg is None:
            raise unknown_room(room)
        st = self.store.get_public_state(room, consistent=True) or PublicState(
            settled_through=cfg.epoch_slot - 1
        )
        eta_all = eta_seconds(st.waiting_settled, st.admit_rate, cfg.fallback_rate())
        status = cfg.status
        if status == "scheduled" and st.draw_seed:
            status = "open"
        return {
            "room": room,
            "status": status,
            "opens_at": cfg.opens_at,
            "prequeue_size": st.prequeue_size if st.draw_seed else None,
            "draw_seed": st.draw_seed or None,
            "max_active": cfg.max_active,
            "max_admits_per_minute": cfg.max_admits_per_minute,
            "waiting": st.waiting_settled,
            "active": st.active,
            "admitted_total": st.admitted_total,
            "completed_total": st.completed_total,
            "reclaimed_total": st.reclaimed_total,
            "expired_total": st.expired_total,
            "joined_total": st.settled_total,
            "admissions_per_minute": round(st.admit_rate * 60, 2),
            "admitted_last_tick": st.last_tick_admitted,
            "estimated_seconds_to_empty": eta_all,
            "wait_seconds_p50": st.wait_p50,
            "wait_seconds_p90": st.wait_p90,
            "updated_at": st.updated_at,
        }

    def request_drain(self, room: str, actor: str = "system") -> None:
        if self.store.get_room_config(room) is None:
            raise unknown_room(room)
        self.store.put_nudge(room)
        self.store.append_audit(room, actor, "drain", {})

    def keep_seconds(self) -> int:
        return KEEP_SECONDS
