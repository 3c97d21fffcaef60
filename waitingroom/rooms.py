"""A room's operator settings, each defined once: name, kind, default, bounds, description and
whether it may change after the room is created.

Everything else is built from `ROOM_FIELDS`: the defaults of `domain.RoomConfig`, the API's
`RoomConfigIn` and `RoomOut` bodies, the bounds of `ApiSettings.default_*`, the operator CLI's
`rooms create/set` flags, and the checks on infra/template.yaml's Default* parameters.

Pure: no web framework (the drainer's bundle has none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_args

T = TypeVar("T")

RoomStatus = Literal["scheduled", "open", "paused", "closed"]
ROOM_STATUSES: tuple[str, ...] = get_args(RoomStatus)
# How a room lets people in when it is full: fifo (a line, first come first served),
# passthrough (nobody waits: sessions are counted, not capped), reject (nobody waits: a join
# when the room is full is refused with 503 room_full).
Queueing = Literal["fifo", "passthrough", "reject", "random"]
QUEUEINGS: tuple[str, ...] = get_args(Queueing)

# What a value is on the wire: an integer, a boolean, one of ROOM_STATUSES, an http(s) URL, a
# time (ISO 8601 with a zone, or epoch seconds; stored as epoch seconds), a list of http(s)
# origins separated by spaces or commas (stored as one space-separated string), plain text, a
# colour (#rrggbb), an HTML page template (checked by waitingroom.page_template), or one of
# QUEUEINGS.
Kind = Literal[
    "int", "bool", "status", "url", "time", "origins", "text", "color", "template", "queueing"
]
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
    max_length: int | None = None  # text and templates: at most this many characters

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
RETURN_ORIGINS: RoomField[str] = RoomField(
    "return_origins",
    "origins",
    "",
    "more origins an admitted visitor may be sent back to, besides origin_url's own "
    "(space-separated, e.g. https://www.example.com)",
)
# The waiting page, as operators make it their own (all empty: the default page). A value is
# shown HTML-escaped wherever it appears; the colours reach the page in a style block the page's
# Content-Security-Policy names by its hash (waitingroom.page).
PAGE_TITLE: RoomField[str] = RoomField(
    "page_title",
    "text",
    "",
    "the waiting page's title, above the line and in the browser tab (empty: the room's name)",
    max_length=120,
)
PAGE_LOGO_URL: RoomField[str] = RoomField(
    "page_logo_url", "url", "", "an image shown at the top of the waiting page (empty: none)"
)
PAGE_ACCENT_COLOR: RoomField[str] = RoomField(
    "page_accent_color",
    "color",
    "",
    "the waiting page's accent (the place number, progress bar, buttons) as #rrggbb",
)
PAGE_BACKGROUND_COLOR: RoomField[str] = RoomField(
    "page_background_color", "color", "", "the waiting page's background as #rrggbb"
)
PAGE_MESSAGE: RoomField[str] = RoomField(
    "page_message",
    "text",
    "",
    "a message to waiting visitors, shown as plain text under the title (empty: none)",
    max_length=1000,
)
PAGE_TEMPLATE: RoomField[str] = RoomField(
    "page_template",
    "template",
    "",
    "a whole HTML page replacing the default one: {{head}} and {{queue}} once each; {{logo}} "
    "between tags; {{title}}, {{message}}, {{logo_url}}, {{room}} anywhere; no script, style "
    "or inline handlers (empty: the default page)",
    max_length=16_384,
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
    "waits; sessions are counted, not capped), reject (a join is refused: 503 room_full), "
    "random (a lottery: who joins within one draw window is drawn into a random order)",
)
QUEUE_ALL: RoomField[bool] = RoomField(
    "queue_all",
    "bool",
    False,
    "hold every new visitor in the line (admitted sessions go on) until it is switched off",
)
# A random room's line is cut into windows of this many seconds: the window's joins are drawn
# into an order once it has settled (a recorded seed), and windows are served in order.
DRAW_SECONDS: RoomField[int] = RoomField(
    "draw_seconds",
    "int",
    60,
    "queueing random: who joins within one window of this many seconds is drawn into a random "
    "order when the window closes (a whole number of slots, at most 600 slots)",
    ge=1,
    le=600,
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
    RETURN_ORIGINS,
    PAGE_TITLE,
    PAGE_LOGO_URL,
    PAGE_ACCENT_COLOR,
    PAGE_BACKGROUND_COLOR,
    PAGE_MESSAGE,
    PAGE_TEMPLATE,
    STRAIGHT_IN,
    QUEUEING,
    QUEUE_ALL,
    DRAW_SECONDS,
)
BY_NAME: dict[str, RoomField[Any]] = {f.name: f for f in ROOM_FIELDS}


MAX_RETURN_ORIGINS = 20


def parse_origins(text: str) -> tuple[str, ...]:
    """Origins (`https://host[:port]`) from a space- or comma-separated list, lower-cased and
    without duplicates; ValueError says which entry is not a bare http(s) origin."""
    found: list[str] = []
    for entry in text.replace(",", " ").split():
        origin = origin_of(entry, bare=True)
        if origin is None:
            raise ValueError(
                f"return_origins entry {entry[:100]!r} is not an origin such as "
                "https://www.example.com (scheme and host, optionally a port; no path)"
            )
        if origin not in found:
            found.append(origin)
    if len(found) > MAX_RETURN_ORIGINS:
        raise ValueError(f"return_origins lists more than {MAX_RETURN_ORIGINS} origins")
    return tuple(found)


# scheme://host[:port] and nothing else: a host of letters, digits, dots and dashes (IDN hosts
# in their xn-- form) or a bracketed IPv6 address; what follows must start a path, a query or a
# fragment. This string goes into the page's Content-Security-Policy, so nothing else may pass
# (a ";" in a host would add directives of its own).
_ORIGIN = re.compile(
    r"(https?)://([a-z0-9.-]*[a-z0-9]|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?(?=[/?#]|\Z)", re.I
)
_URL_REST = re.compile(r"[^\x00-\x20\x7f\\]*")  # no controls, spaces or backslashes


def origin_of(url: str, *, bare: bool = False) -> str | None:
    """The origin of an absolute http(s) URL, lower-cased; None when `url` is not one (another
    scheme, credentials, a host with other characters, a bad port, spaces or backslashes), or,
    with `bare`, when it has more than its origin (a path other than "/", a query, a fragment).

    The one check used wherever an origin is derived: return origins, the logo's and the page
    template's sites in the page's CSP."""
    found = _ORIGIN.match(url)
    rest = url[found.end() :] if found else ""
    if found is None or not _URL_REST.fullmatch(rest) or (bare and rest not in ("", "/")):
        return None
    scheme, host, port = found.groups()
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return f"{scheme.lower()}://{host.lower()}" + ("" if port is None else f":{port}")
