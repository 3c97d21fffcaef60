"""A room's operator settings, each defined once: name, kind, default, bounds, description and
whether it may change after the room is created.

Everything else is built from `ROOM_FIELDS`: the defaults of `domain.RoomConfig`, the API's
`RoomConfigIn` and `RoomOut` bodies, the bounds of `ApiSettings.default_*`, the operator CLI's
`rooms create/set` flags, and the checks on infra/template.yaml's Default* parameters.

Pure: no web framework (the drainer's bundle has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_args

T = TypeVar("T")

RoomStatus = Literal["scheduled", "open", "paused", "closed"]
ROOM_STATUSES: tuple[str, ...] = get_args(RoomStatus)
# How a room lets people in when it is full: fifo (a line, first come first served),
# passthrough (nobody waits: sessions are counted, not capped), reject (nobody waits: a join
# when the room is full is refused with 503 room_full).
Queueing = Literal["fifo", "passthrough", "reject"]
QUEUEINGS: tuple[str, ...] = get_args(Queueing)

# What a value is on the wire: an integer, a boolean, one of ROOM_STATUSES, an http(s) URL, a
# time (ISO 8601 with a zone, or epoch seconds; stored as epoch seconds), or one of QUEUEINGS.
Kind = Literal["int", "bool", "status", "url", "time", "queueing"]
# When it may change: at any time, only when the room is created, or (opens_at) until the
# room's pre-queue has been drawn at opening.
Changes = Literal["any time", "at creation", "until drawn"]


@dataclass(frozen=True, slots=True)
class RoomField(Generic[T]):
    name: str
    kind: Kind
    default: T
    description: str
    ge: int | None = None
    le: int | None = None
    changes: Changes = "any time"
    required: bool = False  # a new room must set it (it has no default)

    @property
    def flag(self) -> str:
        """The CLI option: --max-active for max_active."""
        return "--" + self.name.replace("_", "-")

    @property
    def env_suffix(self) -> str:
        """ApiSettings' default_<name> reads WAITINGROOM_DEFAULT_<NAME>."""
        return self.name.upper()

    @property
    def template_parameter(self) -> str:
        """infra/template.yaml's parameter for its default: DefaultMaxActive for max_active."""
        return "Default" + "".join(part.capitalize() for part in self.name.split("_"))


MAX_ACTIVE: RoomField[int | None] = RoomField(
    "max_active",
    "int",
    None,
    "admitted sessions the room allows at once",
    ge=1,
    le=10_000_000,
    required=True,
)
MAX_ADMITS_PER_MINUTE: RoomField[int] = RoomField(
    "max_admits_per_minute",
    "int",
    0,
    "rate cap on admissions per minute (0: concurrency alone decides)",
    ge=0,
    le=100_000_000,
)
# Sessions and pickups are bounded so the drainer's live batches (one per 30 s of admissions,
# kept until their tokens expire) stay a small item and a bounded number of ledger reads per tick.
SESSION_SECONDS: RoomField[int] = RoomField(
    "session_seconds",
    "int",
    600,
    "lifetime of an admission token (its exp), in seconds",
    ge=10,
    le=6 * 3600,
)
PICKUP_SECONDS: RoomField[int] = RoomField(
    "pickup_seconds",
    "int",
    120,
    "seconds an admitted ticket has to pick up its token before its place is reclaimed",
    ge=5,
    le=3600,
)
SHARDS: RoomField[int] = RoomField(
    "shards",
    "int",
    32,
    "counter shards per slot (joins/s per key = rate / shards)",
    ge=1,
    le=256,
)
SLOT_SECONDS: RoomField[int] = RoomField(
    "slot_seconds",
    "int",
    1,
    "length of a queue slot in seconds (joins within one slot are interleaved)",
    ge=1,
    le=60,
    changes="at creation",
)
STATUS: RoomField[RoomStatus] = RoomField(
    "status",
    "status",
    "open",
    "open, paused (no admissions), closed (no new joins), or scheduled (needs opens_at)",
)
OPENS_AT: RoomField[float | None] = RoomField(
    "opens_at",
    "time",
    None,
    "when a scheduled room opens: ISO 8601 with a time zone, or epoch seconds; who joins "
    "before it is drawn into a random order at opening",
    changes="until drawn",
)
ORIGIN_URL: RoomField[str] = RoomField(
    "origin_url", "url", "", "where admitted visitors are sent (the protected site)"
)
MAX_TICKETS_PER_CLIENT: RoomField[int] = RoomField(
    "max_tickets_per_client",
    "int",
    0,
    "tickets one client may take in this room (0: no limit)",
    ge=0,
    le=1_000_000,
)
MAX_JOINS_PER_MINUTE_PER_CLIENT: RoomField[int] = RoomField(
    "max_joins_per_minute_per_client",
    "int",
    0,
    "joins one client may make per minute (0: no limit)",
    ge=0,
    le=1_000_000,
)
# waitingroom.tokens.MAX_CHALLENGE_BITS is the same bound (a test holds them equal).
CHALLENGE_BITS: RoomField[int] = RoomField(
    "challenge_bits",
    "int",
    0,
    "proof of work at join: leading zero bits of sha256 (0: none)",
    ge=0,
    le=26,
)
BIND_TOKENS: RoomField[bool] = RoomField(
    "bind_tokens",
    "bool",
    False,
    "bind admission tokens to the browser that picked them up (a cookie the origin guard "
    "checks); needs WAITINGROOM_BINDING_KEY",
)

STRAIGHT_IN: RoomField[bool] = RoomField(
    "straight_in",
    "bool",
    True,
    "while nobody waits and places are free, a join is let in at once (with its token), "
    "without a queue page",
)
QUEUEING: RoomField[Queueing] = RoomField(
    "queueing",
    "queueing",
    "fifo",
    "when the room is full: fifo (a line, first come first served), passthrough (nobody "
    "waits; sessions are counted, not capped), reject (a join is refused: 503 room_full)",
)
QUEUE_ALL: RoomField[bool] = RoomField(
    "queue_all",
    "bool",
    False,
    "hold every new visitor in the line (admitted sessions go on) until it is switched off",
)

# In the order RoomConfig declares them (and RoomOut shows them).
ROOM_FIELDS: tuple[RoomField[Any], ...] = (
    MAX_ACTIVE,
    MAX_ADMITS_PER_MINUTE,
    SESSION_SECONDS,
    PICKUP_SECONDS,
    SHARDS,
    SLOT_SECONDS,
    STATUS,
    OPENS_AT,
    ORIGIN_URL,
    MAX_TICKETS_PER_CLIENT,
    MAX_JOINS_PER_MINUTE_PER_CLIENT,
    CHALLENGE_BITS,
    BIND_TOKENS,
    STRAIGHT_IN,
    QUEUEING,
    QUEUE_ALL,
)
BY_NAME: dict[str, RoomField[Any]] = {f.name: f for f in ROOM_FIELDS}
