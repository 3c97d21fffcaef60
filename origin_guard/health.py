"""Is the waiting room answering? The guard's policy for new visitors when it is not.

Admitted visitors never depend on this: their tokens are checked locally with cached keys. A
visitor without a valid token is normally sent to the room; when the room itself is down that
sends them to a page that cannot answer (fail closed). An operator who prefers to let the site
take the load rather than turn everyone away sets `fail_open_after`: once the room has not
answered for that many seconds, requests without a valid token pass (fail open), until the room
answers again. The room is probed only while the guard is refusing requests, at most once per
`interval`, so a healthy site with admitted visitors costs no probes at all.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Literal

from origin_guard.verify import check_jwks_url

logger = logging.getLogger("origin_guard")

# What the guard did with a request it could not admit, in `X-Waitingroom-Guard`:
# "fail-closed" (the room is down and the visitor is sent to it anyway) or "fail-open".
Verdict = Literal["fail-open", "fail-closed"]
HEADER = b"x-waitingroom-guard"

Probe = Callable[[str], None]


def probe_room(url: str, timeout: float = 2.0) -> None:
    """GET `url`; returns when it answers 2xx or 3xx, raises otherwise (4xx/5xx, no answer)."""
    check_jwks_url(url, "GUARD_HEALTH_URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        response.read(4096)


def default_health_url(jwks_url: str) -> str:
    """The waiting room's `/health`, on the host that serves its JWKS."""
    parts = urllib.parse.urlsplit(jwks_url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))


class RoomHealth:
    """The room's reachability as probes saw it. `fail_open_after=None` is the fail-closed
    policy: the room's outage is only reported (header and log), never acted on."""

    def __init__(
        self,
        url: str,
        *,
        fail_open_after: float | None = None,
        interval: float = 5.0,
        probe: Probe = probe_room,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.fail_open_after = fail_open_after
        self.interval = interval
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._probed_at = float("-inf")
        self._down_since: float | None = None
        self._said: Verdict | None = None

    def would_probe(self) -> bool:
        """True when `verdict()` would go to the network (lets async callers use a thread)."""
        return self._clock() - self._probed_at >= self.interval

    def verdict(self) -> Verdict | None:
        """None while the room answers; otherwise what to do with a visitor without a token."""
        if self.would_probe():
            with self._lock:
                if self.would_probe():  # another thread may have probed while we waited
                    self._check()
        if self._down_since is None:
            return None
        down_for = self._clock() - self._down_since
        opened = self.fail_open_after is not None and down_for >= self.fail_open_after
        verdict: Verdict = "fail-open" if opened else "fail-closed"
        self._announce(verdict, down_for)
        return verdict

    def _check(self) -> None:
        now = self._clock()
        self._probed_at = now
        try:
            self._probe(self.url)
        except Exception as exc:  # no answer, an error status, a bad URL: the room is down
            if self._down_since is None:
                self._down_since = now
                logger.warning("the waiting room does not answer at %s: %s", self.url, exc)
            return
        if self._down_since is not None:
            logger.warning(
                "the waiting room answers again at %s after %.0f s: new visitors are sent to "
                "it again",
                self.url,
                now - self._down_since,
            )
        self._down_since = None
        self._said = None

    def _announce(self, verdict: Verdict, down_for: float) -> None:
        """One log line per change of policy, not one per request."""
        if verdict == self._said:
            return
        self._said = verdict
        if verdict == "fail-open":
            logger.warning(
                "the waiting room has not answered for %.0f s: requests without a valid "
                "admission token pass (fail-open) until it answers again",
                down_for,
            )
        else:
            logger.warning(
                "the waiting room does not answer: visitors without a valid admission token are "
                "still sent to it (fail-closed%s)",
                ""
                if self.fail_open_after is None
                else f"; fail-open after {self.fail_open_after:g} s",
            )
