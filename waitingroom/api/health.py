"""GET /health: can the room answer a visitor now? The origin guard probes it (every few seconds
per origin process) to decide whether the room is down, and may then let new visitors through
(its opt-in fail-open), so it must fail when the store does, not only when this process is gone.

The store is pinged at most once per `CACHE_SECONDS` per container, whatever the number of
guards probing; the answer in between is the last ping's. A ping takes at most the store's own
short budget (ApiSettings.store_*: about 2.5 s), so a store that hangs is a 503, not a hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from waitingroom.api.errors import NO_STORE, RETRY_AFTER_SECONDS, error_response
from waitingroom.api.models import HealthOut
from waitingroom.store import StoreUnavailable

CACHE_SECONDS = 2.0
log = logging.getLogger("waitingroom.api")
router = APIRouter(tags=["ops"])


class StoreHealth:
    """The last ping's outcome, kept for `ttl` seconds: True while the store answers."""

    def __init__(
        self,
        ping: Callable[[], None],
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._up = True

    def up(self) -> bool:
        with self._lock:  # one ping at a time; the others read its outcome
            if self._clock() - self._checked_at >= self._ttl:
                self._up = self._check()
                self._checked_at = self._clock()
            return self._up

    def _check(self) -> bool:
        try:
            self._ping()
        except StoreUnavailable as exc:
            log.warning("health: the store does not answer", extra={"reason": str(exc)})
            return False
        except Exception:  # an unexpected answer (a missing permission, say) is not "up"
            log.exception("health: the store ping failed")
            return False
        return True


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"description": "The store does not answer: the room cannot serve now"}},
)
def health(request: Request) -> Response:
    """200 while the room can answer (its store answers), 503 with Retry-After when not."""
    checker: StoreHealth | None = request.app.state.store_health
    if checker is not None and not checker.up():
        return error_response(
            503,
            "unavailable",
            "the waiting room's store is not answering; retry in a few seconds",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return Response(HealthOut().model_dump_json(), media_type="application/json", headers=NO_STORE)
