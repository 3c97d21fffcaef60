"""What the queue's use cases answer: plain values, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Waiting:
    position: int
    eta_seconds: int | None
    poll_after_seconds: int
    exact: bool
    waiting: int
    opens_at: float | None = None  # set while a scheduled room's pre-queue awaits its draw
    state_version: int = 0  # of the room state the answer came from (see `Polls.poll`)
    line: str = "moving"  # what the line is doing, in one word (see `domain.line_state`)
    you_are_next: bool = False


@dataclass(frozen=True, slots=True)
class Admitted:
    token: str
    expires_at: int
    origin_url: str
    binding: str | None = None  # the binding value, when the room binds tokens to the browser
    return_origins: tuple[str, ...] = ()  # where else the page may send the visitor back to


@dataclass(frozen=True, slots=True)
class Joined:
    ticket: str
    number: int
    status: Waiting | Admitted  # Admitted: let straight in (an idle room's pool)
