"""Request and response bodies of every route (the OpenAPI document is built from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from waitingroom.tokens import MAX_CHALLENGE_BITS


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


class WaitingOut(BaseModel):
    state: Literal["waiting"] = "waiting"
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    position_is_exact: bool
    waiting: int
    opens_at: float | None = None
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


class AdmittedOut(BaseModel):
    state: Literal["admitted"] = "admitted"
    token: str
    expires_at: int
    origin_url: str


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


class RoomConfigIn(BaseModel):
    """Create (max_active required) or update a room; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    max_active: int | None = Field(default=None, strict=True, ge=1, le=10_000_000)
    max_admits_per_minute: int | None = Field(default=None, strict=True, ge=0, le=100_000_000)
    # bounded so the drainer's live batches (one per 30 s of admissions, kept until their
    # tokens expire) stay a small item and a bounded number of ledger reads per tick
    session_seconds: int | None = Field(default=None, strict=True, ge=10, le=6 * 3600)
    pickup_seconds: int | None = Field(default=None, strict=True, ge=5, le=3600)
    shards: int | None = Field(default=None, strict=True, ge=1, le=256)
    slot_seconds: int | None = Field(default=None, strict=True, ge=1, le=60)
    status: Literal["scheduled", "open", "paused", "closed"] | None = None
    origin_url: HttpUrl | None = None
    opens_at: AwareDatetime | float | None = Field(
        default=None,
        description="when a scheduled room opens: ISO 8601 with a time zone, or epoch seconds; "
        "who joins before it is drawn into a random order at opening",
    )
    max_tickets_per_client: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="tickets one client may take in this room (0: no limit)",
    )
    max_joins_per_minute_per_client: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="joins one client may make per minute (0: no limit)",
    )
    challenge_bits: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=MAX_CHALLENGE_BITS,
        description="proof of work at join: leading zero bits of sha256 (0: none)",
    )
    bind_tokens: bool | None = Field(
        default=None,
        strict=True,
        description="bind admission tokens to the browser that picked them up (a cookie the "
        "origin guard checks); needs WAITINGROOM_BINDING_KEY",
    )


class RoomOut(BaseModel):
    room: str
    max_active: int
    max_admits_per_minute: int
    session_seconds: int
    pickup_seconds: int
    shards: int
    slot_seconds: int
    status: str
    origin_url: str
    opens_at: float | None
    version: int
    max_tickets_per_client: int = 0
    max_joins_per_minute_per_client: int = 0
    challenge_bits: int = 0
    bind_tokens: bool = False


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
    estimated_seconds_to_empty: int | None
    wait_seconds_p50: float | None
    wait_seconds_p90: float | None
    updated_at: float


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
