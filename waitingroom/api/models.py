"""Request and response bodies of every route (the OpenAPI document is built from these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    create_model,
)

from waitingroom.domain import RoomConfig
from waitingroom.page_template import check_template
from waitingroom.rooms import ROOM_FIELDS, Queueing, RoomField, RoomStatus, origin_of


class ErrorOut(BaseModel):
    error: str
    message: str


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class JwksOut(BaseModel):
    keys: list[dict[str, Any]] = Field(description="public JWKs (kid, kty, alg, ...)")


# -- queue ----------------------------------------------------------------------------------


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="allow")


LineState = Literal["moving", "paused", "scheduled", "closed"]
LINE_DESCRIPTION = (
    "what the line is doing: moving (people are let in in order), paused (the operator paused "
    "admissions: places are kept, no ETA), scheduled (not open yet: those who join before the "
    "opening are drawn into a random order then), closed (nobody more is let in: a join "
    "answers 409, a poll 410 room_closed)"
)


def line_message(line: str, position: int, exact: bool) -> str:
    """The place and the line's state in one plain English sentence."""
    if line == "scheduled":
        return (
            "The room has not opened yet: at the opening everyone in line now is drawn into "
            "a random order."
        )
    if exact and position <= 0:
        return "It is your turn: you are being let in now."
    place = (
        "You are next."
        if exact and position == 1
        else (
            f"You are number {position} in line."
            if exact
            else f"You are about number {position} in line."
        )
    )
    if line == "paused":
        return place + " The room is paused: nobody is let in for now, and you keep your place."
    if line == "closed":
        return place + " The room has closed: nobody more is let in."
    return place


class WaitingOut(BaseModel):
    state: Literal["waiting"] = "waiting"
    position: int
    eta_seconds: int | None = Field(description="seconds to wait; null when not known or paused")
    poll_after_seconds: int
    position_is_exact: bool
    waiting: int
    opens_at: float | None = None
    line: LineState = Field("moving", description=LINE_DESCRIPTION)
    you_are_next: bool = Field(False, description="nobody ahead: let in at the next free place")
    message: str = Field("", description="the place and the line's state in a plain sentence")
    state_version: int = Field(
        default=0, description="send it back as ?v= on the next poll: positions never go up"
    )


class JoinOut(BaseModel):
    ticket: str
    number: int
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    position_is_exact: bool
    opens_at: float | None = None
    line: LineState = Field("moving", description=LINE_DESCRIPTION)
    you_are_next: bool = Field(False, description="nobody ahead: let in at the next free place")
    message: str = Field("", description="the place and the line's state in a plain sentence")
    # an idle room lets a visitor straight in: the join is the pickup (token also in a cookie)
    state: Literal["waiting", "admitted"] = Field(
        default="waiting", description="admitted: let straight in, go on with the token"
    )
    token: str | None = None
    expires_at: int | None = None
    origin_url: str | None = None
    return_origins: list[str] = Field(
        default_factory=list, description="as in the admitted status answer"
    )
    slot_seconds: int = Field(
        default=1,
        description="the room's slot length: with the ticket's slot and join time, when an "
        "estimate's slot settles (CLIENTS.md §4)",
    )


class AdmittedOut(BaseModel):
    state: Literal["admitted"] = "admitted"
    token: str
    expires_at: int
    origin_url: str
    return_origins: list[str] = Field(
        default_factory=list,
        description="besides origin_url's own, the origins the page may send the visitor back "
        "to (the return_to the origin guard gave it)",
    )


class ChallengeOut(BaseModel):
    challenge: str
    difficulty_bits: int
    expires_at: int
    algorithm: Literal["sha256-leading-zero-bits"] = "sha256-leading-zero-bits"
    how: str = (
        "find a decimal counter such that sha256(challenge + ':' + counter) starts with "
        "difficulty_bits zero bits; join with headers X-Challenge: <challenge> and "
        "X-Challenge-Solution: <counter>"
    )


class RevokedOut(BaseModel):
    room: str
    revoked: list[str] = Field(description="jti's of tokens ended before their exp")
    max_age_seconds: int


# -- operators ------------------------------------------------------------------------------


def _in_type(spec: RoomField[Any]) -> Any:
    """A setting as a request accepts it: strict ints and bools, so "5" or 5.0 is refused."""
    kinds: dict[str, Any] = {
        "int": Annotated[int, Field(strict=True, ge=spec.ge, le=spec.le)],
        "bool": Annotated[bool, Field(strict=True)],
        "status": RoomStatus,
        "queueing": Queueing,
        "url": Annotated[HttpUrl, AfterValidator(_plain_origin)] | Literal[""],
        "time": AwareDatetime | float,
        "origins": Annotated[str, Field(max_length=2048)],
        "text": Annotated[str, Field(max_length=spec.max_length), AfterValidator(_plain_text)],
        "color": Annotated[str, Field(pattern=r"^(#[0-9a-fA-F]{6})?$")],
        "template": Annotated[
            str, Field(max_length=spec.max_length), AfterValidator(_usable_template)
        ],
    }
    return kinds[spec.kind]


def _plain_text(value: str) -> str:
    """Text shown on the page: any characters but controls (line breaks are kept)."""
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
        raise ValueError("control characters are not allowed (line breaks are)")
    return value


def _plain_origin(value: HttpUrl) -> HttpUrl:
    """A URL whose origin can be named in the page's CSP and in redirects as it is."""
    if origin_of(str(value)) is None:
        raise ValueError("the URL must be http(s)://host[:port]/... with no user@ (credentials)")
    return value


def _usable_template(value: str) -> str:
    if value:
        check_template(value)  # a TemplateError (a ValueError) says what to change
    return value


def _out_type(spec: RoomField[Any]) -> Any:
    """A setting as a response shows it (times as epoch seconds, URLs as given)."""
    kinds: dict[str, Any] = {
        "int": int,
        "bool": bool,
        "status": RoomStatus,
        "queueing": Queueing,
        "url": str,
        "time": float | None,
        "origins": str,
        "text": str,
        "color": str,
        "template": str,
    }
    return kinds[spec.kind]


if TYPE_CHECKING:

    class RoomConfigIn(BaseModel):
        """Create (max_active required) or update a room; omitted fields keep their value."""

    class RoomOut(BaseModel):
        room: str
        version: int

else:
    # Both bodies hold exactly waitingroom.rooms.ROOM_FIELDS (plus the room and its version).
    RoomConfigIn = create_model(
        "RoomConfigIn",
        __doc__="Create (max_active required) or update a room; omitted fields keep their value.",
        __config__=ConfigDict(extra="forbid"),
        **{
            spec.name: (_in_type(spec) | None, Field(default=None, description=spec.description))
            for spec in ROOM_FIELDS
        },
    )
    RoomOut = create_model(
        "RoomOut",
        room=(str, ...),
        **{
            spec.name: (_out_type(spec), Field(description=spec.description))
            for spec in ROOM_FIELDS
        },
        version=(int, Field(description="bumped by every change (lost updates are refused)")),
    )


def room_out(cfg: RoomConfig) -> RoomOut:
    return RoomOut(
        room=cfg.room,
        version=cfg.version,
        **{spec.name: getattr(cfg, spec.name) for spec in ROOM_FIELDS},
    )


class RoomStatusOut(BaseModel):
    room: str
    status: str


class StatsOut(BaseModel):
    room: str
    status: str
    opens_at: float | None
    prequeue_size: int | None = Field(description="how many were drawn at opening")
    draw_seed: str | None = Field(description="the recorded seed of the pre-queue draw")
    max_active: int
    max_admits_per_minute: int
    waiting: int
    active: int
    admitted_total: int
    completed_total: int
    reclaimed_total: int
    expired_total: int
    joined_total: int
    admissions_per_minute: float
    admitted_last_tick: int
    admitting: bool = Field(description="false while paused, closed or before the opening")
    estimated_seconds_to_empty: int | None = Field(
        description="at the observed rate; null when the room admits nobody (paused, closed, "
        "not open yet)"
    )
    wait_seconds_p50: float | None
    wait_seconds_p90: float | None
    updated_at: float
    unheld_numbers: int = Field(
        default=0,
        description="numbers taken by joins that got no ticket (answered too late, or the "
        "answer failed): each is admitted in turn and frees its place at the next tick. A join "
        "whose write timed out may leave one more (the joins_unsure metric)",
    )


class AuditEntry(BaseModel):
    at: float = Field(description="epoch seconds")
    actor: str = Field(description="an admin key's fingerprint, or the caller's IAM ARN")
    action: str = Field(description="create, update, pause, resume, close, drain, open")
    details: dict[str, Any]


class AuditOut(BaseModel):
    room: str
    entries: list[AuditEntry]


class DrainOut(BaseModel):
    room: str
    drain: Literal["requested"] = "requested"


class RecentSlotOut(BaseModel):
    """A settled slot's counts, in the room state (as `GET /rooms/{room}/slots/{slot}` says)."""

    slot: int
    counts: list[int]
    tickets_before: int


class RoomStateOut(BaseModel):
    """The public room document (CLIENTS.md §2): the same for everybody, cached by the edge."""

    room: str
    version: int = Field(description="grows with every drainer tick: keep the highest seen")
    status: str = Field(description="open, paused, closed or scheduled")
    slot_seconds: int
    settled_through: int = Field(description="the newest settled slot")
    settled_total: int = Field(description="tickets in every settled slot")
    consumed: int = Field(description="the cursor: every rank below it has been admitted")
    waiting: int = Field(description="settled tickets not admitted yet")
    join_rate_per_slot: float
    admit_rate: float = Field(
        description="admissions per second: while the room admits, the pace of a full room "
        "from the sessions observed (past admit_forecast); else the recent pace (0 before any)"
    )
    expected_rate: float = Field(description="admissions per second the settings allow")
    pickup_seconds: int
    opens_at: float | None
    opens_slot: int | None = Field(description="slots before it are the pre-queue")
    prequeue_size: int
    draw_seed: str = Field(description="the pre-queue draw's seed, once drawn")
    closed_slot: int | None
    updated_at: float = Field(description="when the drainer's tick that wrote it began")
    committed_at: float = Field(
        0.0, description="when that tick committed it: its admissions count from here"
    )
    shards: int = Field(1, description="counter shards per slot (a ticket's k is per shard)")
    unsettled_counts: list[int] = Field(
        default_factory=list,
        description="joins counted at updated_at in each slot after settled_through, the last "
        "one maybe still open then: for estimating a place before its slot settles",
    )
    recent_slots: list[RecentSlotOut] = Field(
        default_factory=list,
        description="the newest few settled slots that hold tickets, as their documents say: "
        "a ticket of one of them needs no slot document",
    )
    admit_forecast: list[tuple[float, int]] = Field(
        default_factory=list,
        description="[seconds after updated_at, admissions expected by then] while the room "
        "admits: a position's ETA is where these reach it (admit_rate past the last)",
    )


class SlotOut(BaseModel):
    """A settled slot (immutable): its counters' final values and the tickets before it."""

    room: str
    slot: int
    counts: list[int]
    tickets_before: int
    total: int
    # queueing random: the slot's draw window, places [draw_start, draw_start + draw_size) drawn
    # by draw_seed (draw_size 0: no draw)
    draw_start: int = 0
    draw_size: int = 0
    draw_seed: str = ""
