"""Admission token checks: is this JWT one the waiting room minted, for this room, right now?

Everything an origin needs to trust a token lives here, with no web framework attached: the
authorizer and the middleware only find the token in a request and call `TokenVerifier.verify`.
The algorithm always comes from our configuration and our key, never from the token's header,
and the keys come from configured JWKS (inline or fetched from the waiting room's URL), never
from `jku`, `x5u` or `jwk` headers a caller could point elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

logger = logging.getLogger("origin_guard")

Reason = Literal[
    "missing",
    "malformed",
    "too_large",
    "bad_algorithm",
    "unknown_kid",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "keys_unavailable",
    "unbound",
    "revoked",
]

MESSAGES: Mapping[Reason, str] = {
    "missing": "No admission token: join the waiting room first, then send the token it gives "
    "you (cookie or 'Authorization: Bearer <token>').",
    "malformed": "The admission token is not a well-formed JWT from the waiting room.",
    "too_large": "The admission token is longer than 8 KB; send the token exactly as issued.",
    "bad_algorithm": "The admission token is signed with an algorithm this origin does not accept.",
    "unknown_kid": "The admission token's signing key is unknown or retired: join the waiting "
    "room again for a fresh token.",
    "bad_signature": "The admission token's signature does not match: it was altered.",
    "expired": "The admission token has expired: join the waiting room again.",
    "not_yet_valid": "The admission token is not valid yet: check the clock or retry shortly.",
    "wrong_audience": "The admission token was issued for another room.",
    "wrong_issuer": "The admission token was issued by another waiting room.",
    "keys_unavailable": "The origin cannot load the waiting room's public keys right now; "
    "retry shortly.",
    "unbound": "The admission token belongs to another browser: it only works with the "
    "waiting room's binding cookie of the browser that picked it up. Join the waiting room.",
    "revoked": "The admission token's session was ended: join the waiting room again.",
}

DEFAULT_ISSUER = "waitingroom"
DEFAULT_ALGORITHMS = ("ES256", "RS256")
# Only asymmetric algorithms: with these a public key can never double as an HMAC secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
MAX_TOKEN_BYTES = 8192
MAX_JWKS_BYTES = 256 * 1024
MAX_REVOKED_BYTES = 2 * 1024 * 1024
DEFAULT_BINDING_COOKIE = "waitingroom_bind"
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenRejected(Exception):
    """The admission token is not valid here; `reason` says why in one machine-readable word."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(detail or MESSAGES[reason])
        self.reason: Reason = reason
        self.message = MESSAGES[reason]


class GuardConfigError(Exception):
    """The guard is misconfigured: the message names the setting to fix."""


@dataclass(frozen=True, slots=True)
class AdmissionClaims:
    """What a verified admission token says: which ticket was admitted to which room, until when."""

    room: str
    ticket: str
    expires_at: int
    jti: str
    issuer: str
    issued_at: int
    kid: str

    def as_context(self) -> dict[str, str | int]:
        """Flat values, as API Gateway accepts in an authorizer context."""
        return {
            "room": self.room,
            "ticket": self.ticket,
            "exp": self.expires_at,
            "jti": self.jti,
            "iss": self.issuer,
            "iat": self.issued_at,
            "kid": self.kid,
        }


Fetch = Callable[[str], Mapping[str, Any]]


def fetch_jwks(url: str, timeout: float = 3.0) -> Mapping[str, Any]:
    """GET a JWKS document with the standard library (origins install PyJWT and nothing else)."""
    check_jwks_url(url)
    return _get_json_object(url, "the JWKS", MAX_JWKS_BYTES, timeout)


def _get_json_object(url: str, what: str, limit: int, timeout: float) -> Mapping[str, Any]:
    """GET a JSON object of at most `limit` bytes; ValueError when it is larger or not one."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read(limit + 1)
    if len(body) > limit:
        raise ValueError(f"{what} at {url} is larger than {limit} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"{what} at {url} is not a JSON object")
    return data


def check_jwks_url(url: str, setting: str = "GUARD_JWKS_URL") -> None:
    """https anywhere; plain http only to this machine (the local stack)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise GuardConfigError(
        f"{setting} must be an https:// URL (http:// only for localhost), got {url!r}"
    )


def fetch_revoked(url: str, timeout: float = 3.0) -> Mapping[str, Any]:
    """GET a room's revocation list (`GET /rooms/{room}/revoked` of the waiting room)."""
    check_jwks_url(url, "GUARD_REVOCATION_URL")
    return _get_json_object(url, "the revocation list", MAX_REVOKED_BYTES, timeout)


def binding_value(key: bytes, room: str, jti: str) -> str:
    """The binding cookie the waiting room sets with a bound token: HMAC(key, room and jti).
    (The same function as waitingroom.tokens.binding_value; the guard never imports it.)"""
    mac = hmac.new(key, f"waitingroom-bind:v1:{room}:{jti}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


class RevocationCache:
    """Each room's revoked jti's, fetched from `url` (`{room}` in it is replaced) at most once
    per `ttl` seconds: a token completed at the waiting room is refused here within `ttl`
    (plus the list's own cache age). When a fetch fails the last list keeps being used: the
    guard fails open on revocation (tokens still expire at their exp), never on signatures."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 5.0,
        fetch: Fetch = fetch_revoked,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._lists: dict[str, tuple[float, frozenset[str]]] = {}

    def would_fetch(self, room: str) -> bool:
        hit = self._lists.get(room)
        return hit is None or self._clock() - hit[0] >= self.ttl

    def revoked(self, room: str) -> frozenset[str]:
        if self.would_fetch(room):
            with self._lock:
                if self.would_fetch(room):
                    self._refresh(room)
        hit = self._lists.get(room)
        return hit[1] if hit else frozenset()

    def _refresh(self, room: str) -> None:
        now = self._clock()
        old = self._lists.get(room, (now, frozenset()))[1]
        self._lists[room] = (now, old)  # one attempt per ttl, even when it fails
        url = self.url.replace("{room}", urllib.parse.quote(room, safe=""))
        try:
            data = self._fetch(url)
            jtis = data.get("revoked")
            if not isinstance(jtis, list):
                raise ValueError("no 'revoked' list")
            self._lists[room] = (now, frozenset(j for j in jtis if isinstance(j, str)))
        except Exception as exc:  # keep the last list: revocation fails open, logged
            logger.warning("fetching the revocation list at %s failed: %s", url, exc)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_jwks(jwks: Mapping[str, Any], algorithms: Iterable[str]) -> dict[str, jwt.PyJWK]:
    """Usable signing keys by kid. Symmetric keys, keys without a kid, encryption keys and keys
    for algorithms we do not accept are left out, never turned into something that verifies."""
    allowed = set(algorithms)
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError('a JWKS is a JSON object {"keys": [...]}')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") not in ("EC", "RSA", "OKP") or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            logger.warning("skipping JWKS key %r: not a usable public key", entry["kid"][:64])
            continue
        if key.algorithm_name not in allowed:
            continue
        # PyJWT warned about short keys on every decode; we verify with the key directly, so
        # say it once, when the key is loaded
        check_length = getattr(key.Algorithm, "check_key_length", None)
        if check_length is not None and (message := check_length(key.key)):
            logger.warning("JWKS key %r: %s", entry["kid"][:64], message)
        keys[entry["kid"]] = key
    return keys


def public_keys_to_jwks(public_keys: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Turn {kid: public key PEM} into a JWKS (EC P-256 -> ES256, RSA -> RS256)."""
    out: list[dict[str, Any]] = []
    for kid, pem in public_keys.items():
        key = serialization.load_pem_public_key(pem.encode())
        alg: str | None = None
        if isinstance(key, ec.EllipticCurvePublicKey):
            jwk: dict[str, Any] = ECAlgorithm.to_jwk(key, as_dict=True)
            alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(jwk["crv"])
        elif isinstance(key, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
            alg = "RS256"
        if alg is None:
            raise GuardConfigError(f"public key {kid!r} is neither EC (P-256/384/521) nor RSA")
        out.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    return {"keys": out}


class KeySource(Protocol):
    """Where a TokenVerifier finds the public key for a kid (None: no such key)."""

    def get(self, kid: str) -> jwt.PyJWK | None: ...

    def would_fetch(self, kid: str) -> bool: ...


class _StaticKeys:
    def __init__(self, keys: dict[str, jwt.PyJWK]) -> None:
        self._keys = keys

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    def would_fetch(self, kid: str) -> bool:
        return False


class JwksCache:
    """Keys fetched from a JWKS URL: on first use, again after `ttl` seconds, and once more when a
    token names a kid we do not know (a rotation), but never twice within `min_refetch_interval`
    seconds, so a stream of made-up kids cannot turn into a stream of fetches.

    When a refresh fails, the keys we already have keep verifying until the next attempt.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Iterable[str],
        fetch: Fetch = fetch_jwks,
        clock: Callable[[], float] = time.time,
        ttl: float = 300.0,
        min_refetch_interval: float = 30.0,
    ) -> None:
        self.url = url
        self._algorithms = tuple(algorithms)
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._min_interval = min_refetch_interval
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")

    def _due(self, kid: str, now: float) -> bool:
        if now - self._attempted_at < self._min_interval:
            return False
        if self._keys is None or now - self._fetched_at >= self._ttl:
            return True
        return kid not in self._keys

    def would_fetch(self, kid: str) -> bool:
        """True when `get(kid)` would go to the network (lets async callers use a thread)."""
        return self._due(kid, self._clock())

    def get(self, kid: str) -> jwt.PyJWK | None:
        # With no keys yet, wait for a fetch another thread may have in flight rather than
        # refuse: a burst at start-up must not turn into a burst of 503s.
        if self._keys is None or self._due(kid, self._clock()):
            with self._lock:
                now = self._clock()
                if self._due(kid, now):  # another thread may have refreshed while we waited
                    self._refresh(now)
        if self._keys is None:
            raise TokenRejected("keys_unavailable")
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = parse_jwks(self._fetch(self.url), self._algorithms)
        except Exception as exc:  # any failure to fetch or parse: keep the keys we have
            logger.warning("fetching the JWKS at %s failed: %s", self.url, type(exc).__name__)
            return
        self._keys = keys
        self._fetched_at = now
        logger.info("loaded %d signing key(s) from %s", len(keys), self.url)


class CallableKeys:
    """Keys from a function that returns a JWKS document and caches it itself, as the waiting
    room's API does: `load(False)` for the current document, `load(True)` when a token names a
    kid the document lacks (the function decides whether to really refetch, and how often).
    Each document is parsed once, when the function first returns it."""

    def __init__(
        self, load: Callable[[bool], Mapping[str, Any]], algorithms: Iterable[str]
    ) -> None:
        self._load = load
        self._algorithms = tuple(algorithms)
        self._parsed: tuple[Mapping[str, Any], dict[str, jwt.PyJWK]] | None = None

    def _keys(self, refetch: bool) -> dict[str, jwt.PyJWK]:
        document = self._load(refetch)
        parsed = self._parsed
        if parsed is None or parsed[0] is not document:
            try:
                parsed = (document, parse_jwks(document, self._algorithms))
            except ValueError as exc:
                raise TokenRejected("keys_unavailable") from exc
            self._parsed = parsed
        return parsed[1]

    def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys(False).get(kid)
        if key is None:  # a key rotated in since the document was cached
            key = self._keys(True).get(kid)
        return key

    def would_fetch(self, kid: str) -> bool:
        return False


class TokenVerifier:
    """Checks admission tokens against the waiting room's public keys.

    Give exactly one of `jwks` (a JWKS document), `public_keys` ({kid: PEM}), `jwks_url` or
    `key_source` (a KeySource such as CallableKeys, which several verifiers may share).
    `audience` is the room (or rooms) this origin serves; a token for another room is refused.
    """

    def __init__(
        self,
        *,
        audience: str | Iterable[str],
        issuer: str = DEFAULT_ISSUER,
        jwks: Mapping[str, Any] | None = None,
        public_keys: Mapping[str, str] | None = None,
        jwks_url: str | None = None,
        key_source: KeySource | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: float = 5.0,
        clock: Callable[[], float] = time.time,
        fetch: Fetch = fetch_jwks,
        jwks_ttl: float = 300.0,
        jwks_min_refetch_interval: float = 30.0,
        binding_key: bytes | None = None,
        require_binding: bool = False,
        binding_cookie: str = DEFAULT_BINDING_COOKIE,
        revocation_url: str | None = None,
        revocation_ttl: float = 5.0,
        fetch_revocations: Fetch = fetch_revoked,
    ) -> None:
        rooms = (audience,) if isinstance(audience, str) else tuple(audience)
        if not rooms or not all(isinstance(r, str) and r for r in rooms):
            raise GuardConfigError("audience: name at least one room id (GUARD_AUDIENCE)")
        if not algorithms or set(algorithms) - ASYMMETRIC_ALGORITHMS:
            raise GuardConfigError(
                "algorithms must be asymmetric JWS algorithms such as ES256 or RS256, not "
                f"{sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS) or 'an empty list'}"
            )
        if sum(x is not None for x in (jwks, public_keys, jwks_url, key_source)) != 1:
            raise GuardConfigError(
                "give exactly one of jwks, public_keys, jwks_url or key_source (GUARD_JWKS or "
                "GUARD_JWKS_URL)"
            )
        if not 0 <= leeway <= 300:
            raise GuardConfigError("leeway must be between 0 and 300 seconds")
        if require_binding and not binding_key:
            raise GuardConfigError(
                "require_binding needs the binding key the waiting room uses (GUARD_BINDING_KEY "
                "= WAITINGROOM_BINDING_KEY)"
            )
        if revocation_url is not None:
            check_jwks_url(revocation_url, "GUARD_REVOCATION_URL")
        self.binding_key = binding_key
        self.require_binding = require_binding
        self.binding_cookie = binding_cookie
        self.revocations = (
            RevocationCache(
                revocation_url, ttl=revocation_ttl, fetch=fetch_revocations, clock=clock
            )
            if revocation_url is not None
            else None
        )
        self.rooms: tuple[str, ...] = rooms
        self.issuer = issuer
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self._clock = clock
        self._keys: KeySource
        if key_source is not None:
            self._keys = key_source
        elif jwks_url is not None:
            check_jwks_url(jwks_url)
            self._keys = JwksCache(
                jwks_url,
                algorithms=self.algorithms,
                fetch=fetch,
                clock=clock,
                ttl=jwks_ttl,
                min_refetch_interval=jwks_min_refetch_interval,
            )
        else:
            document = jwks if jwks is not None else public_keys_to_jwks(public_keys or {})
            try:
                keys = parse_jwks(document, self.algorithms)
            except ValueError as exc:
                raise GuardConfigError(f"GUARD_JWKS: {exc}") from exc
            if not keys:
                raise GuardConfigError(
                    f"GUARD_JWKS holds no signing key for the algorithms {list(self.algorithms)}"
                )
            self._keys = _StaticKeys(keys)

    def would_fetch(self, token: str | None) -> bool:
        """True when verifying this token would first fetch the JWKS or a revocation list."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            return False
        if self.revocations is not None and any(
            self.revocations.would_fetch(r) for r in self.rooms
        ):
            return True
        if not isinstance(self._keys, JwksCache):
            return False
        try:
            kid = _json_object(_unb64(token.partition(".")[0])).get("kid")
        except TokenRejected:
            return False
        return isinstance(kid, str) and self._keys.would_fetch(kid)

    def verify(self, token: str | None, binding: str | None = None) -> AdmissionClaims:
        """The token's claims, or TokenRejected with a reason. Logs the reason, never the token.

        `binding` is the binding cookie sent with the token; with `require_binding` a token
        without its browser's binding is refused (`unbound`). With a revocation URL, a token
        the waiting room has listed as ended is refused (`revoked`)."""
        try:
            claims = self._verify(token)
            if self.require_binding:
                assert self.binding_key is not None
                expected = binding_value(self.binding_key, claims.room, claims.jti)
                if not binding or not hmac.compare_digest(binding.encode(), expected.encode()):
                    raise TokenRejected("unbound")
            if self.revocations is not None and claims.jti in self.revocations.revoked(claims.room):
                raise TokenRejected("revoked")
            return claims
        except TokenRejected as exc:
            logger.info("admission token refused: %s", exc.reason)
            raise

    def _verify(self, token: str | None) -> AdmissionClaims:
        # One pass over the token: each segment is decoded once, the key is picked from the
        # header, the signature is checked with that key's own algorithm, then the claims.
        if not token:
            raise TokenRejected("missing")
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("too_large")
        if not token.isascii() or token.count(".") != 2:
            raise TokenRejected("malformed")
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = _json_object(_unb64(header_b64))
        payload = _unb64(payload_b64)
        signature = _unb64(signature_b64)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("malformed", "the kid header must be a string")
        # we use no critical extensions, nor an unencoded payload: refuse rather than
        # half-understand
        if "crit" in header or header.get("b64", True) is False:
            raise TokenRejected("malformed")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenRejected("bad_algorithm", f"algorithm {str(alg)[:16]!r} is not accepted")
        if not kid:
            raise TokenRejected("unknown_kid")
        key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("unknown_kid")
        if key.algorithm_name != alg:
            raise TokenRejected("bad_algorithm", "the token's algorithm does not match its key")
        signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
        if not key.Algorithm.verify(signing_input, key.key, signature):
            raise TokenRejected("bad_signature")
        return self._check_claims(_json_object(payload), kid)

    def _check_claims(self, claims: Mapping[str, Any], kid: str) -> AdmissionClaims:
        # By hand, not by PyJWT: its claim checks run only inside decode(), which would parse
        # the token a second time; they read the wall clock, where we use the clock we were
        # given (as the API and the tests do); and they take "exp": "1700000000" or "iat": true
        # for times (PyJWT calls int() on them). tests/unit/test_guard_verify.py shows each.
        if any(claims.get(name) is None for name in _REQUIRED_CLAIMS):
            raise TokenRejected("malformed", f"the token must carry {', '.join(_REQUIRED_CLAIMS)}")
        exp, nbf, iat = claims["exp"], claims["nbf"], claims["iat"]
        sub, jti, iss, aud = claims["sub"], claims["jti"], claims["iss"], claims["aud"]
        if not all(_is_number(v) for v in (exp, nbf, iat)):
            raise TokenRejected("malformed", "exp, nbf and iat must be numbers")
        if not (isinstance(sub, str) and sub and isinstance(jti, str) and isinstance(iss, str)):
            raise TokenRejected("malformed", "sub, jti and iss must be strings")
        if iss != self.issuer:
            raise TokenRejected("wrong_issuer")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list):
            raise TokenRejected("malformed", "aud must be a string or a list of strings")
        room = next((a for a in audiences if isinstance(a, str) and a in self.rooms), None)
        if room is None:
            raise TokenRejected("wrong_audience")
        now = self._clock()
        if now > exp + self.leeway:
            raise TokenRejected("expired")
        if now < nbf - self.leeway or now < iat - self.leeway:
            raise TokenRejected("not_yet_valid")
        return AdmissionClaims(
            room=room,
            ticket=sub,
            expires_at=int(exp),
            jti=jti,
            issuer=iss,
            issued_at=int(iat),
            kid=kid,
        )

    def claims_from_authorizer(self, context: Mapping[str, Any]) -> AdmissionClaims:
        """Rebuild claims that our API Gateway authorizer already verified. Room and expiry are
        checked again: a cached authorizer answer can outlive the token it was given for."""
        try:
            claims = AdmissionClaims(
                room=str(context["room"]),
                ticket=str(context["ticket"]),
                expires_at=int(context["exp"]),
                jti=str(context["jti"]),
                issuer=str(context.get("iss", self.issuer)),
                issued_at=int(context.get("iat", 0)),
                kid=str(context.get("kid", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenRejected("malformed", "the authorizer context is incomplete") from exc
        if claims.room not in self.rooms:
            raise TokenRejected("wrong_audience")
        if self._clock() > claims.expires_at + self.leeway:
            raise TokenRejected("expired")
        return claims


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unb64(segment: str) -> bytes:
    """One base64url segment of a JWT: the URL-safe alphabet, no padding, and the canonical
    encoding of its bytes (so the same token can not be spelled two ways)."""
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        raise TokenRejected("malformed")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if len(segment) % 4 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
        raise TokenRejected("malformed")
    return raw


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise TokenRejected("malformed") from exc
    if not isinstance(value, dict):
        raise TokenRejected("malformed")
    return value


def bearer_token(authorization: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` value (a bare token is accepted too)."""
    if not authorization:
        return None
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip() or None
    if " " in value or value.lower() == "bearer":  # another scheme (Basic ...), or no token
        return None
    return value or None


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """One cookie's value from a Cookie header, without SimpleCookie's quirks on odd input."""
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None
