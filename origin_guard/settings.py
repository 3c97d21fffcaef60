"""Guard configuration from the environment, read on first use (never at import) and kept once.

`get_settings()` and `get_verifier()` are cached for the life of the process, which in Lambda
is a warm container: the JWKS cache inside the verifier is meant to survive between invocations,
while nothing request-specific does. Tests call `GuardSettings.from_env({...})` directly, or
`get_settings.cache_clear()` after changing the environment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from origin_guard.health import Probe, RoomHealth, default_health_url, probe_room
from origin_guard.verify import (
    DEFAULT_ALGORITHMS,
    DEFAULT_BINDING_COOKIE,
    DEFAULT_ISSUER,
    Fetch,
    GuardConfigError,
    TokenVerifier,
    check_jwks_url,
    fetch_jwks,
)

DEFAULT_COOKIE_NAME = "waitingroom_token"
DEFAULT_ALLOW_PATHS = ("/health",)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class GuardSettings:
    """Env vars: GUARD_JWKS_URL or GUARD_JWKS (inline JSON), GUARD_AUDIENCE (room ids,
    comma-separated), GUARD_ISSUER, GUARD_LEEWAY_SECONDS, GUARD_COOKIE_NAME,
    GUARD_WAITING_ROOM_URL (may contain {room}), GUARD_ALGORITHMS, GUARD_ALLOW_PATHS,
    GUARD_JWKS_TTL_SECONDS; GUARD_REQUIRE_BINDING (1/true), GUARD_BINDING_KEY,
    GUARD_BINDING_COOKIE; GUARD_REVOCATION_URL (may contain {room}),
    GUARD_REVOCATION_TTL_SECONDS; GUARD_FAIL_OPEN_AFTER_SECONDS (unset: fail closed),
    GUARD_HEALTH_URL (default: /health on the JWKS host), GUARD_HEALTH_INTERVAL_SECONDS."""

    audience: tuple[str, ...]
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = field(default=None, compare=False)
    issuer: str = DEFAULT_ISSUER
    leeway_seconds: float = 5.0
    cookie_name: str = DEFAULT_COOKIE_NAME
    waiting_room_url: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    allow_paths: tuple[str, ...] = DEFAULT_ALLOW_PATHS
    jwks_ttl_seconds: float = 300.0
    require_binding: bool = False
    binding_key: bytes | None = field(default=None, repr=False)
    binding_cookie: str = DEFAULT_BINDING_COOKIE
    revocation_url: str | None = None
    revocation_ttl_seconds: float = 5.0
    fail_open_after_seconds: float | None = None
    health_url: str | None = None
    health_interval_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardSettings:
        env = os.environ if environ is None else environ
        jwks_url = env.get("GUARD_JWKS_URL", "").strip() or None
        inline = env.get("GUARD_JWKS", "").strip() or None
        if (jwks_url is None) == (inline is None):
            raise GuardConfigError(
                "set exactly one of GUARD_JWKS_URL (the waiting room's /.well-known/jwks.json) "
                "or GUARD_JWKS (the JWKS document as JSON)"
            )
        jwks: Mapping[str, Any] | None = None
        if inline is not None:
            try:
                jwks = json.loads(inline)
            except ValueError as exc:
                raise GuardConfigError(f"GUARD_JWKS is not valid JSON: {exc}") from exc
            if not isinstance(jwks, dict):
                raise GuardConfigError('GUARD_JWKS must be a JSON object {"keys": [...]}')
        if jwks_url is not None:
            check_jwks_url(jwks_url)
        audience = _csv(env.get("GUARD_AUDIENCE", ""))
        if not audience:
            raise GuardConfigError(
                "set GUARD_AUDIENCE to the room id(s) this origin serves, e.g. 'launch,drop-2'"
            )
        require_binding = env.get("GUARD_REQUIRE_BINDING", "").strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        binding_key = env.get("GUARD_BINDING_KEY", "").strip().encode() or None
        if require_binding and binding_key is None:
            raise GuardConfigError(
                "GUARD_REQUIRE_BINDING needs GUARD_BINDING_KEY (the waiting room's "
                "WAITINGROOM_BINDING_KEY)"
            )
        revocation_url = env.get("GUARD_REVOCATION_URL", "").strip() or None
        if revocation_url is not None:
            check_jwks_url(revocation_url, "GUARD_REVOCATION_URL")
        fail_open_after, health_url = _room_down_policy(env, jwks_url)
        return cls(
            fail_open_after_seconds=fail_open_after,
            health_url=health_url,
            health_interval_seconds=_number(env, "GUARD_HEALTH_INTERVAL_SECONDS", 5.0, 0.5, 300),
            require_binding=require_binding,
            binding_key=binding_key,
            binding_cookie=env.get("GUARD_BINDING_COOKIE", "").strip() or DEFAULT_BINDING_COOKIE,
            revocation_url=revocation_url,
            revocation_ttl_seconds=_number(env, "GUARD_REVOCATION_TTL_SECONDS", 5.0, 1, 300),
            audience=audience,
            jwks_url=jwks_url,
            jwks=jwks,
            issuer=env.get("GUARD_ISSUER", "").strip() or DEFAULT_ISSUER,
            leeway_seconds=_number(env, "GUARD_LEEWAY_SECONDS", 5.0, 0, 300),
            cookie_name=env.get("GUARD_COOKIE_NAME", "").strip() or DEFAULT_COOKIE_NAME,
            waiting_room_url=env.get("GUARD_WAITING_ROOM_URL", "").strip() or None,
            algorithms=_csv(env.get("GUARD_ALGORITHMS", "")) or DEFAULT_ALGORITHMS,
            allow_paths=_csv(env.get("GUARD_ALLOW_PATHS", "")) or DEFAULT_ALLOW_PATHS,
            jwks_ttl_seconds=_number(env, "GUARD_JWKS_TTL_SECONDS", 300.0, 10, 86400),
        )

    def verifier(
        self, *, clock: Callable[[], float] = time.time, fetch: Fetch = fetch_jwks
    ) -> TokenVerifier:
        return TokenVerifier(
            audience=self.audience,
            issuer=self.issuer,
            jwks=self.jwks,
            jwks_url=self.jwks_url,
            algorithms=self.algorithms,
            leeway=self.leeway_seconds,
            clock=clock,
            fetch=fetch,
            jwks_ttl=self.jwks_ttl_seconds,
            require_binding=self.require_binding,
            binding_key=self.binding_key,
            binding_cookie=self.binding_cookie,
            revocation_url=self.revocation_url,
            revocation_ttl=self.revocation_ttl_seconds,
        )

    def room_health(
        self, *, clock: Callable[[], float] = time.time, probe: Probe = probe_room
    ) -> RoomHealth | None:
        """The room's reachability, probed when a health URL is known (None: not watched)."""
        if self.health_url is None:
            return None
        return RoomHealth(
            self.health_url,
            fail_open_after=self.fail_open_after_seconds,
            interval=self.health_interval_seconds,
            clock=clock,
            probe=probe,
        )


def _room_down_policy(
    env: Mapping[str, str], jwks_url: str | None
) -> tuple[float | None, str | None]:
    """GUARD_FAIL_OPEN_AFTER_SECONDS and the URL probed to know the room is down."""
    raw = env.get("GUARD_FAIL_OPEN_AFTER_SECONDS", "").strip().lower()
    after = (
        None if raw in ("", "never") else _number(env, "GUARD_FAIL_OPEN_AFTER_SECONDS", 0, 0, 86400)
    )
    url = env.get("GUARD_HEALTH_URL", "").strip() or None
    if url is None and after is not None:
        if jwks_url is None:
            raise GuardConfigError(
                "GUARD_FAIL_OPEN_AFTER_SECONDS needs GUARD_HEALTH_URL (the waiting room's "
                "/health) when the keys come from GUARD_JWKS"
            )
        url = default_health_url(jwks_url)
    if url is not None:
        check_jwks_url(url, "GUARD_HEALTH_URL")
    return after, url


def room_health_from_env(env: Mapping[str, str], jwks_url: str) -> RoomHealth:
    """The room-down policy of GUARD_FAIL_OPEN_AFTER_SECONDS, GUARD_HEALTH_URL and
    GUARD_HEALTH_INTERVAL_SECONDS for an app that takes its other settings elsewhere (the demo
    origin): parsed and checked as `GuardSettings.from_env` does, and always watched (outages
    are reported even when the policy is fail-closed)."""
    after, url = _room_down_policy(env, jwks_url)
    return RoomHealth(
        url or default_health_url(jwks_url),
        fail_open_after=after,
        interval=_number(env, "GUARD_HEALTH_INTERVAL_SECONDS", 5.0, 0.5, 300),
    )


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise GuardConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise GuardConfigError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> GuardSettings:
    return GuardSettings.from_env()


@lru_cache(maxsize=1)
def get_verifier() -> TokenVerifier:
    return get_settings().verifier()
