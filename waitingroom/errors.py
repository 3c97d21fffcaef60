"""What can go wrong in a use case, in the waiting room's own words.

Use cases raise these; the HTTP layer maps each class to a status code once
(`waitingroom.api.errors`). Every error carries a stable `code` (the `error` field clients
see) and a message that says what to fix; `retry_after` is set where waiting helps.
"""

from __future__ import annotations

from typing import ClassVar


class WaitingRoomError(Exception):
    """Base of the errors a client is told about."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # a subclass may refine its code per case
        self.retry_after = retry_after


# -- the request names something that is not there or cannot be -----------------------------


class InvalidRequest(WaitingRoomError):
    """A parameter is malformed (room id, idempotency key, proof-of-work solution)."""

    code = "invalid_request"


class UnknownRoom(WaitingRoomError):
    """No room by that id."""

    code = "unknown_room"

    def __init__(self, room: str) -> None:
        super().__init__(f"there is no room {room!r}; check the URL")


class SlotNotFound(WaitingRoomError):
    """A queue slot that is not settled yet, holds no tickets, or never existed. `final`: it
    never will (settled empty long ago), so the answer may be kept."""

    code = "slot_not_found"

    def __init__(self, message: str, *, code: str | None = None, final: bool = False) -> None:
        super().__init__(message, code=code)
        self.final = final


# -- who is asking ----------------------------------------------------------------------------


class NotAuthenticated(WaitingRoomError):
    """A ticket, token, challenge or admin credential is missing or does not check out."""

    code = "unauthorized"


class TooManyRequests(WaitingRoomError):
    """Over a limit (tickets or joins per client, failed admin checks): wait `retry_after`."""

    code = "too_many_requests"


# -- the room's state forbids it ---------------------------------------------------------------


class RoomClosedToJoins(WaitingRoomError):
    """The room is closed: no new joins."""

    code = "room_closed"

    def __init__(self, room: str) -> None:
        super().__init__(f"room {room!r} is closed to new joins")


class Gone(WaitingRoomError):
    """A ticket's turn has passed for good: reclaimed, completed, expired, or its room closed."""

    code = "expired"


class ConfigConflict(WaitingRoomError):
    """A room change conflicts with the room as it is (or changed meanwhile)."""

    code = "conflict"


class InvalidConfig(WaitingRoomError):
    """A room setting is out of bounds or incomplete."""

    code = "invalid_config"


# -- the waiting room itself -------------------------------------------------------------------


class Unavailable(WaitingRoomError):
    """Something the answer needs is not there yet or not answering: retry shortly."""

    code = "unavailable"


class AdminKeyRequired(NotAuthenticated):
    """An admin route without the right bearer admin key."""

    code = "unauthorized"


class RoomFull(Unavailable):
    """A room that lets nobody wait (queueing "reject") has no free place: try again later."""

    code = "room_full"
