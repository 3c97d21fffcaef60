"""Waiting in a room from Python, the way CLIENTS.md describes: join once, work out the place
from the ticket and the room's two public documents (answered by the edge's cache), and call the
API again only to pick the token up.

Three layers, so that a script and a load test share one behaviour:
- pure functions (`read_ticket`, `read_state`, `read_slot`, `place`, `next_look_seconds`) over
  `waitingroom.domain`'s own maths;
- `Visitor`, a state machine without I/O: it says which request to make next and after how long
  (`Visitor.next`), and takes the answer (`Visitor.answer`);
- `wait`, a synchronous driver over the standard library's urllib.

A ticket is read without checking its signature (only the server can): a ticket read back from
storage is checked once with `/status` before any place is computed from it.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from waitingroom.domain import (
    SettledSlot,
    draw_place,
    estimated_position,
    eta_seconds,
    poll_after_seconds,
    prequeue_poll_seconds,
    settle_look_seconds,
)

PlaceKind = Literal["prequeue", "estimate", "waiting", "turn", "closed"]
RequestKind = Literal["join", "state", "slot", "status"]
OutcomeKind = Literal["admitted", "ended", "closed", "failed", "timeout"]

MAX_BACKOFF_SECONDS = 30.0
TURN_RETRY_SECONDS = 1.0  # a waiting answer at position 0: the admission is being written


class BadDocument(ValueError):
    """A ticket or a public document that cannot be read."""


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket's payload, read without checking its signature."""

    text: str
    room: str
    slot: int
    shard: int
    k: int
    joined_ms: int


def read_ticket(text: str) -> Ticket:
    """The payload of `payload.mac`: `room:slot:shard:k:joined_ms` (unverified)."""
    body, dot, mac = text.partition(".")
    if not dot or not body or not mac or "." in mac:
        raise BadDocument("a ticket is two base64url parts joined by a dot")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        room, slot, shard, k, joined = payload.split(":")
        ticket = Ticket(text, room, int(slot), int(shard), int(k), int(joined))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadDocument("the ticket's payload is not room:slot:shard:k:joined_ms") from exc
    if not room or ticket.k < 1 or ticket.shard < 0:
        raise BadDocument("the ticket's payload names no place in a queue")
    return ticket


@dataclass(frozen=True, slots=True)
class RoomState:
    """`GET /rooms/{room}/state` (CLIENTS.md §2)."""

    room: str
    version: int
    status: str
    slot_seconds: int
    settled_through: int
    settled_total: int
    consumed: int
    waiting: int
    join_rate_per_slot: float
    admit_rate: float
    expected_rate: float
    pickup_seconds: int
    opens_at: float | None
    opens_slot: int | None
    prequeue_size: int
    draw_seed: str
    closed_slot: int | None
    updated_at: float
    shards: int = 1
    unsettled_counts: tuple[int, ...] = ()
    recent_slots: tuple[SettledSlot, ...] = ()  # the newest settled slots' counts
    admit_forecast: tuple[tuple[float, int], ...] = ()

    def recent_slot(self, slot: int) -> SettledSlot | None:
        """Slot `slot`'s counts when the state carries them (then no slot document is needed)."""
        return next((r for r in self.recent_slots if r.slot == slot), None)


def _optional(value: Any, kind: Callable[[Any], Any]) -> Any:
    return None if value is None else kind(value)


def read_state(doc: Any) -> RoomState:
    """The room state from its JSON (extra fields are ignored)."""
    try:
        return RoomState(
            room=str(doc["room"]),
            version=int(doc["version"]),
            status=str(doc["status"]),
            slot_seconds=int(doc["slot_seconds"]),
            settled_through=int(doc["settled_through"]),
            settled_total=int(doc["settled_total"]),
            consumed=int(doc["consumed"]),
            waiting=int(doc["waiting"]),
            join_rate_per_slot=float(doc["join_rate_per_slot"]),
            admit_rate=float(doc["admit_rate"]),
            expected_rate=float(doc["expected_rate"]),
            pickup_seconds=int(doc["pickup_seconds"]),
            opens_at=_optional(doc.get("opens_at"), float),
            opens_slot=_optional(doc.get("opens_slot"), int),
            prequeue_size=int(doc.get("prequeue_size") or 0),
            draw_seed=str(doc.get("draw_seed") or ""),
            closed_slot=_optional(doc.get("closed_slot"), int),
            updated_at=float(doc.get("updated_at") or 0.0),
            shards=int(doc.get("shards") or 1),
            unsettled_counts=tuple(int(n) for n in doc.get("unsettled_counts") or ()),
            recent_slots=tuple(read_slot(r) for r in doc.get("recent_slots") or ()),
            admit_forecast=tuple((float(t), int(n)) for t, n in doc.get("admit_forecast") or ()),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadDocument(f"not a room state document: {exc!r}") from exc


def read_slot(doc: Any) -> SettledSlot:
    """A settled slot from `GET /rooms/{room}/slots/{slot}`."""
    try:
        return SettledSlot(
            int(doc["slot"]),
            tuple(int(c) for c in doc["counts"]),
            int(doc["tickets_before"]),
            draw_start=int(doc.get("draw_start") or 0),
            draw_size=int(doc.get("draw_size") or 0),
            draw_seed=str(doc.get("draw_seed") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadDocument(f"not a settled slot document: {exc!r}") from exc


def newest(held: RoomState | None, fresh: RoomState) -> RoomState:
    """The state to keep: a copy older than one already seen is ignored (places never go up)."""
    return fresh if held is None or fresh.version >= held.version else held


# -- the place --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where a ticket stands. `position` counts the people in the pre-queue (prequeue), the
    people ahead including oneself (estimate, waiting), 0 at one's turn."""

    kind: PlaceKind
    position: int
    exact: bool
    eta: int | None


def _in_prequeue(ticket: Ticket, state: RoomState) -> bool:
    return state.opens_slot is not None and ticket.slot < state.opens_slot


def needs_slot(ticket: Ticket, state: RoomState) -> bool:
    """The ticket's slot has settled: its (immutable) document gives the exact rank, unless the
    state carries its counts. In the pre-queue too, before the draw: the opening then costs one
    look (the state) a visitor."""
    return ticket.slot <= state.settled_through and state.recent_slot(ticket.slot) is None


def place(
    ticket: Ticket, state: RoomState, slot: SettledSlot | None, now: float | None = None
) -> Place:
    """The ticket's place from the newest state and, once settled, its slot's document (or the
    slot's counts the state carries); `now`: the clock, for the ETA from a state a moment old."""
    age = 0.0 if now is None else now - state.updated_at
    closed = state.status == "closed"
    if slot is None or slot.slot != ticket.slot:
        slot = state.recent_slot(ticket.slot) or slot
    if _in_prequeue(ticket, state) and not state.draw_seed:
        if closed:
            return Place("closed", 0, False, None)
        return Place("prequeue", max(1, state.settled_total), False, None)
    settled = (
        ticket.slot <= state.settled_through
        and slot is not None
        and slot.slot == ticket.slot
        and slot.holds(ticket.k, ticket.shard)
    )
    if not settled or slot is None:
        if closed:
            return Place("closed", 0, False, None)
        position = estimated_position(
            state.waiting,
            state.settled_through,
            state.join_rate_per_slot,
            ticket.slot,
            ticket.k,
            shard=ticket.shard,
            shards=state.shards,
            unsettled=state.unsettled_counts,
            counted_at=state.updated_at,
            slot_seconds=state.slot_seconds,
            joined_at=ticket.joined_ms / 1000,
        )
        return Place("estimate", position, False, _eta(position, state, age))
    rank = slot.drawn_rank(ticket.k, ticket.shard)
    if _in_prequeue(ticket, state):
        rank = draw_place(rank, state.prequeue_size, state.draw_seed)
    if rank < state.consumed:
        return Place("turn", 0, True, 0)
    if closed:
        return Place("closed", 0, True, None)
    position = rank - state.consumed + 1
    return Place("waiting", position, True, _eta(position, state, age))


def _eta(position: int, state: RoomState, age: float) -> int | None:
    """The wait the drainer forecasts (`age`: how old the state is); none while the room is
    paused (nobody is let in)."""
    if state.status == "paused":
        return None
    rates = state.admit_rate, state.expected_rate
    return eta_seconds(position, *rates, state.admit_forecast, age)


def next_look_seconds(
    place: Place,
    state: RoomState,
    now: float,
    u: float,
    ticket: Ticket | None = None,
    since_join: float | None = None,
) -> float:
    """Seconds until the next look at the state, before the ±20 % spread. `u` in [0, 1) is the
    visitor's own, fixed once: where in the opening's spread its first look after a draw falls
    (and just after its slot settles). 0 for a turn or a closed room: ask `/status` now. With
    the `ticket` and the seconds `since_join`, an estimate looks just after its slot settles."""
    if place.kind in ("turn", "closed"):
        return 0.0
    if place.kind == "prequeue":
        until_open = max(0.0, (state.opens_at or now) - now)
        return prequeue_poll_seconds(
            until_open, state.settled_total, state.slot_seconds, u, state.pickup_seconds
        )
    wait = float(poll_after_seconds(place.position, place.eta, state.pickup_seconds))
    if place.kind == "estimate":
        settle = None
        if ticket is not None and since_join is not None:
            joined_at = ticket.joined_ms / 1000
            settle = settle_look_seconds(ticket.slot, state.slot_seconds, joined_at, since_join, u)
        return settle if settle is not None else max(1.0, min(wait, 3.0))
    return wait


# A join answered within this long (by this visitor's clock against the ticket's server time)
# means the two clocks agree well enough to time looks by the ticket's join time (a slow answer
# in a burst takes a few seconds; a clock further off is not trusted).
PLAUSIBLE_ANSWER_SECONDS = 5.0


def join_moment(ticket: Ticket, answered_at: float) -> float:
    """When the visitor joined, by its own clock: the ticket's server time, unless the clocks
    plainly disagree (then when the answer came). A slow answer then does not delay the looks
    timed from the join by as much as it took."""
    server = ticket.joined_ms / 1000
    return server if 0 <= answered_at - server <= PLAUSIBLE_ANSWER_SECONDS else answered_at


def place_of_answer(body: Mapping[str, Any]) -> Place:
    """The place a join or a waiting `/status` answer states."""
    position = int(body["position"])
    exact = bool(body.get("position_is_exact"))
    eta = _optional(body.get("eta_seconds"), int)
    if position <= 0:
        return Place("turn", 0, True, 0)
    if not exact and body.get("opens_at") is not None:
        return Place("prequeue", position, False, eta)
    return Place("waiting" if exact else "estimate", position, exact, eta)


# -- the visitor ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A request to make `after` seconds from now. `json` is the body (join only)."""

    kind: RequestKind
    method: str
    path: str
    headers: Mapping[str, str]
    after: float = 0.0
    json: Any = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status 0 for a network error or a timeout; `body` is the parsed JSON."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the wait ended: admitted (with the token), ended (410: reclaimed, completed or
    expired), closed (the room let nobody more in), failed (an answer it cannot act on), or
    timeout (still waiting: keep `ticket` to carry on later)."""

    kind: OutcomeKind
    ticket: str | None = None
    token: str | None = None
    expires_at: int | None = None
    origin_url: str | None = None
    status: int | None = None
    error: str | None = None


Phase = Literal["join", "check", "look", "slot", "pickup", "status", "done"]


class Visitor:
    """One visitor's wait, without I/O: `next()` is the request to make (and after how long),
    `answer(reply, now)` takes its answer; `outcome` is set once the wait is over.

    By default it waits on the public documents and calls `/status` only to check a stored
    ticket and to pick its token up; `status_only` polls `/status` at the pace each answer sets,
    as clients did before the public documents."""

    def __init__(
        self,
        room: str,
        *,
        ticket: str | None = None,
        status_only: bool = False,
        rng: random.Random | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        self.room = room
        self.status_only = status_only
        self.rng = rng or random.Random()
        self.u = self.rng.random()
        self.idempotency_key = idempotency_key or uuid.UUID(int=self.rng.getrandbits(128)).hex
        self.requests: Counter[str] = Counter()
        self.ticket: Ticket | None = None
        self.state: RoomState | None = None
        self.slot: SettledSlot | None = None
        self.place: Place | None = None
        self.outcome: Outcome | None = None
        self.joined_number: int | None = None
        self._phase: Phase = "join"
        self._after = 0.0
        self._errors = 0
        self._rejoined = False
        self._closed_asked = False
        self._status_version = 0
        self._joined_at: float | None = None  # by this visitor's clock, when it joined
        if ticket is not None:
            try:
                self.ticket = read_ticket(ticket)
                self._phase = "check"
            except BadDocument:
                self._rejoined = True  # an unreadable stored ticket: one new place, as a 401
        self._stored = self.ticket is not None

    # -- what to ask ---------------------------------------------------------------------

    def next(self) -> Call | None:
        """The request to make next, or None once the wait is over."""
        base = f"/rooms/{urllib.parse.quote(self.room, safe='')}"
        after = self._after
        if self._phase == "done":
            return None
        if self._phase == "join":
            # no body: the join needs none, and behind CloudFront's signed origin a body would
            # need its hash in x-amz-content-sha256
            headers = {"Idempotency-Key": self.idempotency_key}
            return Call("join", "POST", f"{base}/join", headers, after)
        assert self.ticket is not None
        if self._phase in ("check", "pickup", "status"):
            path = f"{base}/status"
            if self._status_version:
                path += f"?v={self._status_version}"
            bearer = {"Authorization": f"Bearer {self.ticket.text}"}
            return Call("status", "GET", path, bearer, after)
        if self._phase == "slot":
            return Call("slot", "GET", f"{base}/slots/{self.ticket.slot}", {}, after)
        return Call("state", "GET", f"{base}/state", {}, after)

    # -- what it was told ----------------------------------------------------------------

    def answer(self, reply: Reply, now: float) -> None:
        """Take the answer to the request `next()` gave."""
        call = self.next()
        if call is None:
            return
        self.requests[call.kind] += 1
        if reply.status == 0 or reply.status == 429 or reply.status >= 500:
            self._back_off(reply)
            return
        try:
            {
                "join": self._joined,
                "check": self._status,
                "pickup": self._status,
                "status": self._status,
                "look": self._looked,
                "slot": self._slotted,
            }[self._phase](reply, now)
        except (BadDocument, KeyError, TypeError, ValueError, AttributeError):
            self._back_off(reply)  # a body it cannot read: as a failed request, keep the ticket
        else:
            self._errors = 0

    def _back_off(self, reply: Reply) -> None:
        wait = min(MAX_BACKOFF_SECONDS, 2.0**self._errors) * self._spread()
        self._errors += 1
        try:
            retry_after = float(reply.header("Retry-After") or 0)
        except ValueError:
            retry_after = 0.0
        self._after = max(wait, retry_after)

    def _spread(self) -> float:
        return 0.8 + 0.4 * self.rng.random()

    def _finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._phase = "done"

    def _failed(self, reply: Reply) -> None:
        error = reply.body.get("error") if isinstance(reply.body, dict) else None
        self._finish(
            Outcome("failed", self._ticket_text(), status=reply.status, error=error or None)
        )

    def _set_place(self, here: Place) -> None:
        self.place = here

    def _ticket_text(self) -> str | None:
        return self.ticket.text if self.ticket else None

    def _joined(self, reply: Reply, now: float) -> None:
        if reply.status == 409:
            self._finish(Outcome("closed", status=409, error="room_closed"))
            return
        if reply.status != 201:
            self._failed(reply)
            return
        body = reply.body
        self.ticket = read_ticket(str(body["ticket"]))
        self.joined_number = int(body["number"])
        if body.get("state") == "admitted":  # an idle room lets the visitor straight in
            self._admit(body, reply.status)
            return
        shown = place_of_answer(body)
        self._set_place(shown)
        self._joined_at = join_moment(self.ticket, now)
        self._phase = "status" if self.status_only else "look"
        self._after = self._first_look(shown, body, now)

    def _first_look(self, shown: Place, body: Mapping[str, Any], now: float) -> float:
        """An estimate looks first just after its slot settles, at this visitor's own moment
        in the spread (from the slot length the join states; else as the API said, for the
        middle of the spread and to the second); any other place as the API said, spread."""
        if shown.kind != "estimate":
            return float(body.get("poll_after_seconds") or 1) * self._spread()
        assert self.ticket is not None and self._joined_at is not None
        slot_seconds = body.get("slot_seconds")
        if isinstance(slot_seconds, int) and slot_seconds > 0:
            joined_at = self.ticket.joined_ms / 1000
            since = now - self._joined_at
            look = settle_look_seconds(self.ticket.slot, slot_seconds, joined_at, since, self.u)
            if look is not None:
                return look
        return float(body.get("poll_after_seconds") or 1)

    def _admit(self, body: dict[str, Any], status: int) -> None:
        self._set_place(Place("turn", 0, True, 0))
        self._finish(
            Outcome(
                "admitted",
                self._ticket_text(),
                token=str(body["token"]),
                expires_at=int(body["expires_at"]),
                origin_url=body.get("origin_url"),
                status=status,
            )
        )

    def _status(self, reply: Reply, now: float) -> None:
        if reply.status == 401 and not self._rejoined:
            self._rejoined = True  # a forged or stale stored ticket: take a new place, once
            self.ticket, self.state, self.slot, self._status_version = None, None, None, 0
            self._phase, self._after = "join", 0.0
            return
        if reply.status == 410:
            error = reply.body.get("error") if isinstance(reply.body, dict) else None
            kind: OutcomeKind = "closed" if error == "room_closed" else "ended"
            self._finish(Outcome(kind, self._ticket_text(), status=410, error=error))
            return
        if reply.status != 200:
            self._failed(reply)
            return
        body = reply.body
        if body.get("state") == "admitted":
            self._admit(body, 200)
            return
        self._status_version = max(self._status_version, int(body.get("state_version") or 0))
        self._closed_asked = False  # still waiting: ask again if the room still looks closed
        shown = place_of_answer(body)
        self._set_place(shown)
        poll = float(body.get("poll_after_seconds") or 1)
        if shown.kind == "turn":
            self._phase = "status" if self.status_only else "pickup"
            self._after = TURN_RETRY_SECONDS
        elif self.status_only:
            self._phase, self._after = "status", poll * self._spread()
        else:
            self._phase, self._after = "look", poll * self._spread()

    def _looked(self, reply: Reply, now: float) -> None:
        if reply.status != 200:
            self._failed(reply)
            return
        self.state = newest(self.state, read_state(reply.body))
        self._status_version = self.state.version
        self._decide(now)

    def _slotted(self, reply: Reply, now: float) -> None:
        if reply.status == 200:
            self.slot = read_slot(reply.body)
        elif reply.status != 404:  # 404: not settled here yet, an estimate until the next look
            self._failed(reply)
            return
        self._decide(now, slot_asked=True)

    def _decide(self, now: float, slot_asked: bool = False) -> None:
        assert self.ticket is not None and self.state is not None
        if self.slot is None:  # the state's counts of a slot just settled: kept like the document
            self.slot = self.state.recent_slot(self.ticket.slot)
        if self.slot is None and not slot_asked and needs_slot(self.ticket, self.state):
            self._phase, self._after = "slot", 0.0
            return
        here = place(self.ticket, self.state, self.slot, now)
        self._set_place(here)
        if here.kind == "turn" or (here.kind == "closed" and not self._closed_asked):
            self._closed_asked = self._closed_asked or here.kind == "closed"
            self._phase, self._after = "pickup", 0.0
            return
        if here.kind == "estimate" and self._joined_at is not None:
            since = now - self._joined_at
            wait = next_look_seconds(here, self.state, now, self.u, self.ticket, since)
            self._phase, self._after = "look", wait  # its own moment: spread by `u` already
            return
        wait = next_look_seconds(here, self.state, now, self.u) or 20.0
        self._phase, self._after = "look", wait * self._spread()


# -- the synchronous driver -------------------------------------------------------------------

Transport = Callable[[Call], Reply]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: the ticket never follows one to another place."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


LOOPBACK = ("localhost", "127.0.0.1", "::1")


class UrllibTransport:
    """Sends a `Call` to `base_url` with urllib: no cookies, no credentials but the ticket,
    never through a redirect, and over https (plain http only to this machine)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
            raise ValueError("base_url must be https:// (http:// only for localhost)")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __call__(self, call: Call) -> Reply:
        data = None if call.json is None else json.dumps(call.json).encode()
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.base_url + call.path, data=data, method=call.method, headers=dict(call.headers)
        )
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Reply(resp.status, dict(resp.headers.items()), _json_or_none(resp.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers.items()), _json_or_none(exc.read()))
        except (OSError, ValueError):
            return Reply(0)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def wait(
    base_url: str,
    room: str,
    *,
    ticket: str | None = None,
    on_place: Callable[[Place], None] | None = None,
    timeout: float = 3600.0,
    status_only: bool = False,
    transport: Transport | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Outcome:
    """Wait in `room` until admitted, ended, closed or `timeout` seconds have passed.

    Joins, or carries on with a stored `ticket` (checked once). `on_place` is called each time
    the place changes. The outcome carries the token when admitted and the ticket otherwise."""
    visitor = Visitor(room, ticket=ticket, status_only=status_only, rng=rng)
    send = transport or UrllibTransport(base_url)
    deadline = clock() + timeout
    shown: Place | None = None
    while (call := visitor.next()) is not None:
        if clock() + call.after > deadline:
            return Outcome("timeout", visitor.ticket.text if visitor.ticket else None)
        if call.after > 0:
            sleep(call.after)
        visitor.answer(send(call), clock())
        if on_place is not None and visitor.place is not None and visitor.place != shown:
            shown = visitor.place
            on_place(shown)
    assert visitor.outcome is not None
    return visitor.outcome
