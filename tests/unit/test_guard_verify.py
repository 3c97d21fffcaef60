"""TokenVerifier against tokens minted by the drainer's own code (waitingroom.tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from origin_guard.settings import GuardSettings
from origin_guard.verify import (
    MAX_TOKEN_BYTES,
    GuardConfigError,
    TokenRejected,
    TokenVerifier,
    bearer_token,
    cookie_value,
)
from waitingroom.tokens import KeySet

NOW = 1_700_000_000.0
ROOM = "launch"
TICKET = "1700000000.3.17"
JWKS_URL = "https://queue.example.com/.well-known/jwks.json"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetch:
    """Stands in for the HTTP GET of the JWKS; serves whatever `jwks` holds now."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.jwks: Mapping[str, Any] = jwks
        self.calls: list[str] = []
        self.fail = False

    def __call__(self, url: str) -> Mapping[str, Any]:
        self.calls.append(url)
        if self.fail:
            raise OSError("connection refused")
        return self.jwks


def mint(
    keys: KeySet,
    *,
    room: str = ROOM,
    issuer: str = "waitingroom",
    issued_at: float = NOW,
    ttl: int = 600,
) -> str:
    return keys.signer().mint(
        issuer=issuer,
        room=room,
        ticket_id=TICKET,
        issued_at=int(issued_at),
        expires_at=int(issued_at) + ttl,
        jti="jti-1",
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def good_claims(room: str = ROOM) -> dict[str, Any]:
    n = int(NOW)
    return {
        "iss": "waitingroom",
        "aud": room,
        "sub": TICKET,
        "iat": n,
        "nbf": n,
        "exp": n + 600,
        "jti": "j",
    }


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate("k1", "ES256")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(keys: KeySet, clock: Clock) -> TokenVerifier:
    return TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=clock)


def reason(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    return info.value.reason


def test_a_token_minted_by_the_drainer_passes(keys: KeySet, verifier: TokenVerifier) -> None:
    claims = verifier.verify(mint(keys))
    assert claims.room == ROOM
    assert claims.ticket == TICKET
    assert claims.expires_at == int(NOW) + 600
    assert claims.issued_at == int(NOW)
    assert claims.jti == "jti-1"
    assert claims.issuer == "waitingroom"
    assert claims.kid == "k1"


def test_rs256_keys_work_too(clock: Clock) -> None:
    rsa_keys = KeySet.generate("r1", "RS256")
    verifier = TokenVerifier(audience=ROOM, jwks=rsa_keys.jwks(), clock=clock)
    assert verifier.verify(mint(rsa_keys)).kid == "r1"


def test_a_set_of_rooms_accepts_each_and_refuses_others(keys: KeySet, clock: Clock) -> None:
    verifier = TokenVerifier(audience=["presale", ROOM], jwks=keys.jwks(), clock=clock)
    assert verifier.verify(mint(keys, room="presale")).room == "presale"
    assert verifier.verify(mint(keys)).room == ROOM
    assert reason(verifier, mint(keys, room="other")) == "wrong_audience"


def test_a_token_for_another_room_is_refused(keys: KeySet, verifier: TokenVerifier) -> None:
    assert reason(verifier, mint(keys, room="other-room")) == "wrong_audience"


def test_wrong_issuer_is_refused(keys: KeySet, verifier: TokenVerifier) -> None:
    assert reason(verifier, mint(keys, issuer="someone-else")) == "wrong_issuer"


def test_expiry_uses_the_injected_clock_with_leeway(
    keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    token = mint(keys, ttl=600)
    clock.now = NOW + 600 + 5  # inside the default 5 s leeway
    assert verifier.verify(token).ticket == TICKET
    clock.now = NOW + 600 + 6
    assert reason(verifier, token) == "expired"


def test_a_token_from_the_future_is_not_yet_valid(
    keys: KeySet, verifier: TokenVerifier, clock: Clock
) -> None:
    assert reason(verifier, mint(keys, issued_at=NOW + 60)) == "not_yet_valid"
    assert verifier.verify(mint(keys, issued_at=NOW + 4)).ticket == TICKET  # small clock skew
    clock.now = NOW + 60
    assert verifier.verify(mint(keys, issued_at=NOW + 60)).ticket == TICKET


def test_leeway_is_configurable(keys: KeySet, clock: Clock) -> None:
    strict = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=clock, leeway=0)
    assert reason(strict, mint(keys, issued_at=NOW + 1)) == "not_yet_valid"
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, jwks=keys.jwks(), leeway=-1)


def test_rotation_both_kids_verify_then_the_retired_one_is_refused(clock: Clock) -> None:
    old = KeySet.generate("k1")
    both = old.rotated("k2")  # k2 signs, k1 still verifies
    during = TokenVerifier(audience=ROOM, jwks=both.jwks(), clock=clock)
    old_token, new_token = mint(old), mint(both)
    assert during.verify(old_token).kid == "k1"
    assert during.verify(new_token).kid == "k2"

    retired = both.rotated("k3", retire=["k1"])
    after = TokenVerifier(audience=ROOM, jwks=retired.jwks(), clock=clock)
    assert reason(after, old_token) == "unknown_kid"
    assert after.verify(new_token).kid == "k2"


@pytest.mark.parametrize("segment", [1, 2])
def test_one_changed_character_breaks_the_signature(
    keys: KeySet, verifier: TokenVerifier, segment: int
) -> None:
    parts = mint(keys).split(".")
    middle = len(parts[segment]) // 2
    char = parts[segment][middle]
    parts[segment] = (
        parts[segment][:middle] + ("A" if char != "A" else "B") + parts[segment][middle + 1 :]
    )
    assert reason(verifier, ".".join(parts)) == "bad_signature"


def test_a_token_signed_by_an_unknown_key_with_a_known_kid_is_refused(
    verifier: TokenVerifier,
) -> None:
    impostor = KeySet.generate("k1")
    assert reason(verifier, mint(impostor)) == "bad_signature"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "missing"),
        ("", "missing"),
        ("garbage", "malformed"),
        ("not a jwt at all", "malformed"),
        ("a.b", "malformed"),
        ("a.b.c", "malformed"),
        ("...", "malformed"),
        ("eyJhbGciOiJFUzI1NiJ9.e30.", "unknown_kid"),
        ("é.é.é", "malformed"),
        ("x" * (MAX_TOKEN_BYTES + 1), "too_large"),
        ("a.b." + "c" * MAX_TOKEN_BYTES, "too_large"),
        ("Bearer abc.def.ghi", "malformed"),
        (b64(b"[1,2]") + "." + b64(b"{}") + ".", "malformed"),
        (b64(b'{"alg":"ES256","kid":7}') + "." + b64(b"{}") + ".", "malformed"),
    ],
)
def test_garbage_is_refused_with_a_reason(
    verifier: TokenVerifier, token: str | None, expected: str
) -> None:
    assert reason(verifier, token) == expected


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    token = forge({"alg": "none", "kid": "k1", "typ": "JWT"}, good_claims())
    assert reason(verifier, token) == "bad_algorithm"
    assert reason(verifier, forge({"kid": "k1"}, good_claims())) == "bad_algorithm"


def test_hs256_signed_with_the_public_key_pem_is_refused(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    private = serialization.load_pem_private_key(keys.private_pems["k1"].encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(good_claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert reason(verifier, f"{header}.{payload}.{b64(mac)}") == "bad_algorithm"


def test_hmac_or_none_can_not_be_configured(keys: KeySet) -> None:
    for algorithms in (["HS256"], ["ES256", "none"], []):
        with pytest.raises(GuardConfigError):
            TokenVerifier(audience=ROOM, jwks=keys.jwks(), algorithms=algorithms)


def test_symmetric_keys_in_a_jwks_are_ignored(keys: KeySet) -> None:
    oct_only = {"keys": [{"kty": "oct", "k": b64(b"secret"), "kid": "k1", "alg": "HS256"}]}
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, jwks=oct_only)


def test_a_token_whose_alg_does_not_match_its_key_is_refused(
    keys: KeySet, verifier: TokenVerifier
) -> None:
    _, payload, signature = mint(keys).split(".")
    rs_header = b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
    assert reason(verifier, f"{rs_header}.{payload}.{signature}") == "bad_algorithm"


def test_embedded_key_headers_are_ignored(verifier: TokenVerifier) -> None:
    attacker = KeySet.generate("k1")
    signer = attacker.signer()
    public = attacker.jwks()["keys"][0]
    claims = good_claims()
    token = jwt.encode(
        claims,
        signer.key,
        algorithm="ES256",
        headers={"kid": "k1", "jwk": public, "jku": "https://evil.test/jwks", "x5u": "https://e"},
    )
    assert reason(verifier, token) == "bad_signature"
    token_new_kid = jwt.encode(
        claims, signer.key, algorithm="ES256", headers={"kid": "evil", "jwk": public}
    )
    assert reason(verifier, token_new_kid) == "unknown_kid"


def test_crit_headers_are_refused(keys: KeySet, verifier: TokenVerifier) -> None:
    token = jwt.encode(
        good_claims(),
        keys.signer().key,
        algorithm="ES256",
        headers={"kid": "k1", "crit": ["b64"], "b64": True},
    )
    assert reason(verifier, token) == "malformed"


def test_missing_or_mistyped_claims_are_malformed(keys: KeySet, verifier: TokenVerifier) -> None:
    key = keys.signer().key
    for change in ({"exp": None}, {"sub": 5}, {"exp": "soon"}, {"aud": {"room": ROOM}}):
        claims = {k: v for k, v in {**good_claims(), **change}.items() if v is not None}
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
        assert reason(verifier, token) == "malformed", change


def test_a_list_audience_matches_any_served_room(keys: KeySet, verifier: TokenVerifier) -> None:
    claims = {**good_claims(), "aud": ["other", ROOM]}
    token = jwt.encode(claims, keys.signer().key, algorithm="ES256", headers={"kid": "k1"})
    assert verifier.verify(token).room == ROOM


def test_refusals_log_the_reason_never_the_token(
    keys: KeySet, verifier: TokenVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint(keys, room="other-room")
    with caplog.at_level(logging.INFO, logger="origin_guard"), pytest.raises(TokenRejected):
        verifier.verify(token)
    assert "wrong_audience" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


def test_public_key_pems_can_be_given_instead_of_a_jwks(keys: KeySet, clock: Clock) -> None:
    private = serialization.load_pem_private_key(keys.private_pems["k1"].encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(audience=ROOM, public_keys={"k1": pem}, clock=clock)
    assert verifier.verify(mint(keys)).kid == "k1"


def test_exactly_one_key_source(keys: KeySet) -> None:
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM)
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, jwks=keys.jwks(), jwks_url=JWKS_URL)
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=[], jwks=keys.jwks())


def test_a_jwks_url_must_be_https_except_on_localhost(keys: KeySet) -> None:
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, jwks_url="http://queue.example.com/jwks.json")
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, jwks_url="file:///etc/passwd")
    for url in ("http://localhost:8000/.well-known/jwks.json", "http://127.0.0.1:9/j", JWKS_URL):
        TokenVerifier(audience=ROOM, jwks_url=url, fetch=FakeFetch(keys.jwks()))


# --- JWKS fetched from a URL ---------------------------------------------------------------


def url_verifier(fetch: FakeFetch, clock: Clock) -> TokenVerifier:
    return TokenVerifier(
        audience=ROOM,
        jwks_url=JWKS_URL,
        fetch=fetch,
        clock=clock,
        jwks_ttl=300,
        jwks_min_refetch_interval=30,
    )


def test_the_jwks_is_fetched_lazily_once_and_cached(keys: KeySet, clock: Clock) -> None:
    fetch = FakeFetch(keys.jwks())
    verifier = url_verifier(fetch, clock)
    assert fetch.calls == []  # nothing at construction
    token = mint(keys)
    assert verifier.would_fetch(token)
    for _ in range(5):
        verifier.verify(token)
    assert fetch.calls == [JWKS_URL]
    assert not verifier.would_fetch(token)


def test_the_jwks_is_refetched_after_its_ttl(keys: KeySet, clock: Clock) -> None:
    fetch = FakeFetch(keys.jwks())
    verifier = url_verifier(fetch, clock)
    verifier.verify(mint(keys))
    clock.now = NOW + 299
    verifier.verify(mint(keys, issued_at=clock.now))
    assert len(fetch.calls) == 1
    clock.now = NOW + 300
    verifier.verify(mint(keys, issued_at=clock.now))
    assert len(fetch.calls) == 2


def test_an_unknown_kid_refetches_once_then_waits_the_minimum_interval(
    keys: KeySet, clock: Clock
) -> None:
    fetch = FakeFetch(keys.jwks())
    verifier = url_verifier(fetch, clock)
    verifier.verify(mint(keys))
    clock.now = NOW + 40
    stranger = mint(KeySet.generate("nobody"), issued_at=clock.now)
    assert reason(verifier, stranger) == "unknown_kid"
    assert len(fetch.calls) == 2  # one refetch, in case the key was just rotated in
    for _ in range(10):
        assert reason(verifier, stranger) == "unknown_kid"
    assert len(fetch.calls) == 2  # not on every request
    clock.now = NOW + 70
    assert reason(verifier, stranger) == "unknown_kid"
    assert len(fetch.calls) == 3


def test_a_rotated_in_key_is_picked_up_by_the_refetch(clock: Clock) -> None:
    old = KeySet.generate("k1")
    fetch = FakeFetch(old.jwks())
    verifier = url_verifier(fetch, clock)
    verifier.verify(mint(old))
    new = old.rotated("k2")
    fetch.jwks = new.jwks()
    clock.now = NOW + 31
    assert verifier.verify(mint(new, issued_at=clock.now)).kid == "k2"
    assert verifier.verify(mint(old, issued_at=clock.now)).kid == "k1"
    assert len(fetch.calls) == 2


def test_a_failed_fetch_refuses_as_unavailable_and_is_not_retried_at_once(
    keys: KeySet, clock: Clock
) -> None:
    fetch = FakeFetch(keys.jwks())
    fetch.fail = True
    verifier = url_verifier(fetch, clock)
    token = mint(keys)
    assert reason(verifier, token) == "keys_unavailable"
    assert reason(verifier, token) == "keys_unavailable"
    assert len(fetch.calls) == 1
    fetch.fail = False
    clock.now = NOW + 30
    assert verifier.verify(token).kid == "k1"


def test_known_keys_keep_working_when_a_refresh_fails(keys: KeySet, clock: Clock) -> None:
    fetch = FakeFetch(keys.jwks())
    verifier = url_verifier(fetch, clock)
    verifier.verify(mint(keys))
    fetch.fail = True
    clock.now = NOW + 400
    assert verifier.verify(mint(keys, issued_at=clock.now)).kid == "k1"
    assert len(fetch.calls) == 2


def test_a_junk_jwks_document_is_treated_as_a_failed_fetch(keys: KeySet, clock: Clock) -> None:
    fetch = FakeFetch({"not": "a jwks"})
    verifier = url_verifier(fetch, clock)
    assert reason(verifier, mint(keys)) == "keys_unavailable"


# --- settings and request helpers ------------------------------------------------------------


def test_settings_from_env(keys: KeySet) -> None:
    settings = GuardSettings.from_env(
        {
            "GUARD_JWKS": json.dumps(keys.jwks()),
            "GUARD_AUDIENCE": " launch , presale ",
            "GUARD_LEEWAY_SECONDS": "2.5",
            "GUARD_WAITING_ROOM_URL": "https://queue.example.com/rooms/{room}",
        }
    )
    assert settings.audience == ("launch", "presale")
    assert settings.issuer == "waitingroom"
    assert settings.cookie_name == "waitingroom_token"
    assert settings.leeway_seconds == 2.5
    assert settings.waiting_room_url == "https://queue.example.com/rooms/{room}"
    verifier = settings.verifier(clock=Clock())
    assert verifier.verify(mint(keys)).room == ROOM


@pytest.mark.parametrize(
    "env",
    [
        {"GUARD_AUDIENCE": "launch"},
        {"GUARD_AUDIENCE": "launch", "GUARD_JWKS": "{}", "GUARD_JWKS_URL": JWKS_URL},
        {"GUARD_AUDIENCE": "launch", "GUARD_JWKS": "not json"},
        {"GUARD_AUDIENCE": "launch", "GUARD_JWKS_URL": "http://queue.example.com/jwks"},
        {"GUARD_JWKS_URL": JWKS_URL},
        {"GUARD_AUDIENCE": "launch", "GUARD_JWKS_URL": JWKS_URL, "GUARD_LEEWAY_SECONDS": "x"},
        {"GUARD_AUDIENCE": "launch", "GUARD_JWKS_URL": JWKS_URL, "GUARD_LEEWAY_SECONDS": "900"},
    ],
)
def test_bad_settings_fail_fast_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(GuardConfigError, match="GUARD_"):
        GuardSettings.from_env(env)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("abc", "abc"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(value: str | None, expected: str | None) -> None:
    assert bearer_token(value) == expected


def test_cookie_value() -> None:
    header = 'a=1; waitingroom_token=t.o.k; b="2"'
    assert cookie_value(header, "waitingroom_token") == "t.o.k"
    assert cookie_value(header, "b") == "2"
    assert cookie_value(header, "missing") is None
    assert cookie_value("garbage;;=;", "waitingroom_token") is None
    assert cookie_value(None, "a") is None


def test_the_guard_imports_alone() -> None:
    """Origins install origin_guard without the waiting room, FastAPI or boto3."""
    code = (
        "import sys, origin_guard, origin_guard.authorizer, origin_guard.middleware\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'waitingroom', 'fastapi', 'starlette', 'boto3', 'botocore', 'pydantic'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr


def test_requests_arriving_during_the_first_key_fetch_wait_for_it(
    keys: KeySet, clock: Clock
) -> None:
    """A burst at start-up: none of the callers is refused while the first fetch is running."""
    import threading
    import time as real_time

    started = threading.Event()

    def slow_fetch(url: str) -> Mapping[str, Any]:
        started.set()
        real_time.sleep(0.3)
        return keys.jwks()

    verifier = TokenVerifier(audience=ROOM, jwks_url=JWKS_URL, fetch=slow_fetch, clock=clock)
    token = mint(keys)
    results: list[str] = []

    def verify() -> None:
        try:
            results.append(verifier.verify(token).ticket)
        except TokenRejected as exc:
            results.append(exc.reason)

    first = threading.Thread(target=verify)
    first.start()
    started.wait(5)
    others = [threading.Thread(target=verify) for _ in range(5)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(5)
    assert results == [TICKET] * 6


def test_the_real_fetchers_read_a_bounded_json_object_over_http() -> None:
    """fetch_jwks / fetch_revoked against a tiny server on 127.0.0.1."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from origin_guard.verify import MAX_JWKS_BYTES, fetch_jwks, fetch_revoked

    bodies = {
        "/jwks": b'{"keys": []}',
        "/revoked": b'{"room": "demo", "revoked": ["j1"]}',
        "/list": b"[1, 2]",
        "/huge": b'{"k": "' + b"x" * MAX_JWKS_BYTES + b'"}',
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert fetch_jwks(f"{base}/jwks") == {"keys": []}
        assert fetch_revoked(f"{base}/revoked")["revoked"] == ["j1"]
        with pytest.raises(ValueError, match="not a JSON object"):
            fetch_jwks(f"{base}/list")
        with pytest.raises(ValueError, match="larger than"):
            fetch_jwks(f"{base}/huge")
    finally:
        server.shutdown()
        server.server_close()


# --- what PyJWT's own claim checks would get wrong here --------------------------------------


def test_time_is_judged_by_the_verifiers_clock_which_pyjwt_can_not_take(keys: KeySet) -> None:
    """Why exp/nbf/iat stay a hand check: PyJWT reads the wall clock, with no way to give it
    another; the API and these tests run on an injected one."""
    token = mint(keys)  # valid from NOW to NOW + 600, NOW being years ago
    public = jwt.PyJWK.from_dict(keys.jwks()["keys"][0])
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, public, algorithms=["ES256"], audience=ROOM, leeway=5)
    assert TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=Clock(NOW)).verify(token)
    later = Clock(NOW + 700)
    assert reason(TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=later), token) == "expired"


@pytest.mark.parametrize("change", [{"exp": str(int(NOW) + 600)}, {"iat": True}, {"nbf": "0"}])
def test_times_must_be_numbers_though_pyjwt_accepts_numeric_strings_and_booleans(
    keys: KeySet, verifier: TokenVerifier, change: dict[str, Any]
) -> None:
    """Why the types stay a hand check: PyJWT calls int() on exp, nbf and iat."""
    token = jwt.encode(
        {**good_claims(), **change}, keys.signer().key, algorithm="ES256", headers={"kid": "k1"}
    )
    public = jwt.PyJWK.from_dict(keys.jwks()["keys"][0])
    jwt.decode(token, public, algorithms=["ES256"], options={"verify_exp": False}, audience=ROOM)
    assert reason(verifier, token) == "malformed"


def test_a_token_spelled_another_way_is_malformed(keys: KeySet, verifier: TokenVerifier) -> None:
    """Each segment is decoded once, strictly: base64url, unpadded, canonical."""
    header, payload, signature = mint(keys).split(".")
    assert len(signature) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    alias = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    assert base64.urlsafe_b64decode(alias + "==") == base64.urlsafe_b64decode(signature + "==")
    for token in (
        f"{header}.{payload}.{alias}",  # the same bytes, another spelling
        f"{header}.{payload}.{signature}==",
        f"{header}.{payload}.{signature[:-2]}+/",
        f"{header}.{payload}====.{signature}",
    ):
        assert reason(verifier, token) == "malformed", token


# --- keys from a function that caches the JWKS itself (the waiting room's API) ---------------


class CachedJwks:
    """Stands in for the API's `jwks(refetch)`: the cached document, re-read on `refetch`."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.published: Mapping[str, Any] = jwks
        self.cached: Mapping[str, Any] = jwks
        self.calls: list[bool] = []

    def __call__(self, refetch: bool) -> Mapping[str, Any]:
        self.calls.append(refetch)
        if refetch:
            self.cached = dict(self.published)
        return self.cached


def test_keys_can_come_from_a_function_that_caches_the_jwks(keys: KeySet, clock: Clock) -> None:
    from origin_guard.verify import CallableKeys

    load = CachedJwks(keys.jwks())
    source = CallableKeys(load, ["ES256", "RS256"])
    for room in (ROOM, "presale"):  # one source, shared by a verifier per room
        verifier = TokenVerifier(audience=room, key_source=source, clock=clock)
        assert verifier.verify(mint(keys, room=room)).room == room
        assert not verifier.would_fetch(mint(keys, room=room))
    assert load.calls == [False, False]  # a known kid never asks for a refetch
    with pytest.raises(GuardConfigError):
        TokenVerifier(audience=ROOM, key_source=source, jwks=keys.jwks())


def test_an_unknown_kid_asks_the_function_to_refetch_and_a_rotated_key_verifies(
    clock: Clock,
) -> None:
    from origin_guard.verify import CallableKeys

    old = KeySet.generate("k1")
    load = CachedJwks(old.jwks())
    verifier = TokenVerifier(audience=ROOM, key_source=CallableKeys(load, ["ES256"]), clock=clock)
    assert verifier.verify(mint(old)).kid == "k1"
    new = old.rotated("k2")
    load.published = new.jwks()
    assert verifier.verify(mint(new)).kid == "k2"  # not in the cached document: refetched
    assert load.calls == [False, False, True]
    assert reason(verifier, mint(KeySet.generate("nobody"))) == "unknown_kid"
    assert load.calls[-2:] == [False, True]  # the function decides how often it really reads
    load.published = load.cached = {"not": "a jwks"}
    assert reason(verifier, mint(KeySet.generate("k3"))) == "keys_unavailable"
