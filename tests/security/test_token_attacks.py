"""One table of forged, altered and misplaced admission tokens, tried on every surface that
checks them: the verifier, the API Gateway authorizer (REST TOKEN and HTTP API v2 payloads), the
ASGI middleware and the waiting room's own `POST /rooms/{room}/complete`.

Every attack must be refused the way that surface refuses (TokenRejected, the "Unauthorized"
exception or a simple `isAuthorized: false`, a 401), never by an unexpected exception, a 500 or
a logged crash. A genuine token passes on every surface, so a refusal here means the check
worked, not that the surface refuses everything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from mypy_boto3_dynamodb.client import DynamoDBClient
from pydantic import SecretStr

from devtools.events import load_event
from origin_guard.authorizer import Authorizer
from origin_guard.middleware import AdmissionGuardMiddleware, Receive, Scope, Send
from origin_guard.verify import MAX_TOKEN_BYTES, TokenRejected, TokenVerifier
from tests.conftest import TICKET_SECRET, wired_app
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import Store
from waitingroom.table import ensure_table
from waitingroom.tokens import KeySet, Ticket, sign_ticket

NOW = 1_800_000_000
ROOM = "launch"
OTHER_ROOM = "other"
KID = "k1"
TICKET_ID = f"{NOW}.3.17"
JWKS_URL = "https://queue.example.com/.well-known/jwks.json"
EVIL_JWKS = "https://evil.example/.well-known/jwks.json"


# -- the attacker's toolbox -------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    keys: KeySet  # the drainer's real signing keys
    attacker: KeySet  # a key pair the attacker made, with the same kid as the real one
    ticket: str  # a genuine queue ticket (HMAC), as join hands it out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**changes: Any) -> dict[str, Any]:
    """The claims the drainer would put in a token for ROOM, with changes (None removes)."""
    base: dict[str, Any] = {
        "iss": "waitingroom",
        "aud": ROOM,
        "sub": TICKET_ID,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": f"{ROOM}.1.{TICKET_ID}",
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def sign(key: KeySet, body: Mapping[str, Any], **headers: Any) -> str:
    """ES256 over `body` with `key`'s private key; headers default to kid k1."""
    return jwt.encode(
        dict(body), key.signer().key, algorithm="ES256", headers={"kid": KID, **headers}
    )


def genuine(ctx: Ctx, **changes: Any) -> str:
    """Signed with the drainer's real key: only the claims are wrong, if anything."""
    return sign(ctx.keys, claims(**changes))


def unsigned(header: Mapping[str, Any], body: Mapping[str, Any], signature: str = "") -> str:
    return f"{b64json(header)}.{b64json(body)}.{signature}"


def with_header(token: str, header: Mapping[str, Any]) -> str:
    _, payload, signature = token.split(".")
    return f"{b64json(header)}.{payload}.{signature}"


def with_payload(token: str, body: Mapping[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64json(body)}.{signature}"


def flip_middle(text: str) -> str:
    i = len(text) // 2
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]


def hs256_with_public_key(ctx: Ctx) -> str:
    """The classic confusion: HMAC keyed with the public key PEM that anyone can download."""
    private = serialization.load_pem_private_key(ctx.keys.private_pems[KID].encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{b64json(claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def hs256_with_public_jwk(ctx: Ctx) -> str:
    """The same with the JWKS entry's JSON as the HMAC secret."""
    secret = json.dumps(ctx.keys.jwks()["keys"][0]).encode()
    signing_input = f"{b64json({'alg': 'HS256', 'kid': KID})}.{b64json(claims())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), 'sha256').digest())}"


def attacker_jwk(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.attacker.jwks()["keys"][0])


def truncated_by(n: int) -> Callable[[Ctx], str]:
    return lambda ctx: genuine(ctx)[:-n]


def signed_with_kid(kid: str) -> Callable[[Ctx], str]:
    return lambda ctx: sign(ctx.attacker, claims(), kid=kid)


def oversized(ctx: Ctx) -> str:
    """Properly signed by the real key, just longer than 8 KB."""
    token = genuine(ctx, pad="x" * MAX_TOKEN_BYTES)
    assert len(token) > MAX_TOKEN_BYTES
    return token


def signature_from_another_token(ctx: Ctx) -> str:
    other = genuine(ctx, sub=f"{NOW}.0.1").split(".")[2]
    header, payload, _ = genuine(ctx).split(".")
    return f"{header}.{payload}.{other}"


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Ctx], str]
    reason: str  # the verifier's reason; the middleware reports the same one

    def __str__(self) -> str:
        return self.name


KID_TRICKS = [
    "../../../../../../dev/null",
    "/etc/passwd",
    "k1/../k1",
    "k1' OR '1'='1",
    'k1"; DROP TABLE keys; --',
    "https://evil.example/key.pem",
    "file:///etc/passwd",
    "k1%00",
    "k1\u0000",
    " k1",
    "K1",
    "*",
]

ATTACKS: list[Attack] = [
    # algorithm confusion
    Attack(
        "alg-none",
        lambda c: unsigned({"alg": "none", "typ": "JWT", "kid": KID}, claims()),
        "bad_algorithm",
    ),
    Attack("alg-None", lambda c: unsigned({"alg": "None", "kid": KID}, claims()), "bad_algorithm"),
    Attack("alg-NONE", lambda c: unsigned({"alg": "NONE", "kid": KID}, claims()), "bad_algorithm"),
    Attack("alg-missing", lambda c: unsigned({"kid": KID}, claims()), "bad_algorithm"),
    Attack(
        "alg-none-real-signature",
        lambda c: with_header(genuine(c), {"alg": "none", "kid": KID}),
        "bad_algorithm",
    ),
    Attack("hs256-public-key-pem", hs256_with_public_key, "bad_algorithm"),
    Attack("hs256-public-jwk", hs256_with_public_jwk, "bad_algorithm"),
    Attack(
        "rs256-header-on-es256-key",
        lambda c: with_header(genuine(c), {"alg": "RS256", "kid": KID}),
        "bad_algorithm",
    ),
    # keys the verifier does not have
    Attack("unknown-kid", lambda c: sign(c.attacker, claims(), kid="attacker"), "unknown_kid"),
    Attack("no-kid", lambda c: unsigned({"alg": "ES256"}, claims(), "c2ln"), "unknown_kid"),
    Attack("empty-kid", lambda c: sign(c.attacker, claims(), kid=""), "unknown_kid"),
    Attack("known-kid-attacker-key", lambda c: sign(c.attacker, claims()), "bad_signature"),
    *(
        Attack(f"kid-trick-{i}", signed_with_kid(kid), "unknown_kid")
        for i, kid in enumerate(KID_TRICKS)
    ),
    Attack(
        "kid-not-a-string",
        lambda c: unsigned({"alg": "ES256", "kid": {"$ne": None}}, claims(), "c2ln"),
        "malformed",
    ),
    # key-carrying headers: a verifier that followed them would trust the attacker's key
    Attack("jku-known-kid", lambda c: sign(c.attacker, claims(), jku=EVIL_JWKS), "bad_signature"),
    Attack(
        "jku-new-kid",
        lambda c: sign(c.attacker, claims(), kid="evil", jku=EVIL_JWKS),
        "unknown_kid",
    ),
    Attack(
        "x5u-known-kid",
        lambda c: sign(c.attacker, claims(), x5u="https://evil.example/cert.pem"),
        "bad_signature",
    ),
    Attack(
        "x5u-new-kid",
        lambda c: sign(c.attacker, claims(), kid="evil", x5u="https://evil.example/c.pem"),
        "unknown_kid",
    ),
    Attack(
        "jwk-known-kid", lambda c: sign(c.attacker, claims(), jwk=attacker_jwk(c)), "bad_signature"
    ),
    Attack(
        "jwk-new-kid",
        lambda c: sign(c.attacker, claims(), kid="evil", jwk={**attacker_jwk(c), "kid": "evil"}),
        "unknown_kid",
    ),
    Attack(
        "x5c-known-kid",
        lambda c: sign(c.attacker, claims(), x5c=[b64(b"not a certificate")]),
        "bad_signature",
    ),
    # time
    Attack(
        "expired-an-hour-ago",
        lambda c: genuine(c, iat=NOW - 4200, nbf=NOW - 4200, exp=NOW - 3600),
        "expired",
    ),
    Attack(
        "expired-past-leeway",
        lambda c: genuine(c, iat=NOW - 700, nbf=NOW - 700, exp=NOW - 6),
        "expired",
    ),
    Attack("nbf-in-an-hour", lambda c: genuine(c, nbf=NOW + 3600, exp=NOW + 4200), "not_yet_valid"),
    Attack("nbf-past-leeway", lambda c: genuine(c, nbf=NOW + 6), "not_yet_valid"),
    Attack(
        "iat-in-the-future",
        lambda c: genuine(c, iat=NOW + 3600, nbf=NOW + 3600, exp=NOW + 4200),
        "not_yet_valid",
    ),
    Attack("no-exp", lambda c: genuine(c, exp=None), "malformed"),
    # audience and issuer
    Attack("room-b-token-on-room-a", lambda c: genuine(c, aud=OTHER_ROOM), "wrong_audience"),
    Attack("aud-list-without-room", lambda c: genuine(c, aud=[OTHER_ROOM, "x"]), "wrong_audience"),
    Attack("aud-prefix-of-room", lambda c: genuine(c, aud=ROOM[:-1]), "wrong_audience"),
    Attack("no-aud", lambda c: genuine(c, aud=None), "malformed"),
    Attack("wrong-iss", lambda c: genuine(c, iss="someone-else"), "wrong_issuer"),
    Attack("no-iss", lambda c: genuine(c, iss=None), "malformed"),
    # altered after signing
    Attack(
        "payload-exp-extended",
        lambda c: with_payload(genuine(c), claims(exp=NOW + 86_400 * 365)),
        "bad_signature",
    ),
    Attack(
        "payload-room-b-to-a",
        lambda c: with_payload(genuine(c, aud=OTHER_ROOM), claims()),
        "bad_signature",
    ),
    Attack(
        "payload-one-char",
        lambda c: ".".join(
            p if i != 1 else flip_middle(p) for i, p in enumerate(genuine(c).split("."))
        ),
        "bad_signature",
    ),
    Attack(
        "signature-one-char",
        lambda c: ".".join(
            p if i != 2 else flip_middle(p) for i, p in enumerate(genuine(c).split("."))
        ),
        "bad_signature",
    ),
    Attack("signature-of-another-token", signature_from_another_token, "bad_signature"),
    Attack("signature-stripped", lambda c: genuine(c).rsplit(".", 1)[0] + ".", "bad_signature"),
    Attack(
        "signature-all-zero",
        lambda c: genuine(c).rsplit(".", 1)[0] + "." + b64(bytes(64)),
        "bad_signature",
    ),
    # broken shapes
    # 8 characters off the signature: refused as malformed, or (for ~5% of signatures, whose
    # shortened base64 still decodes) as a bad signature; both are refusals
    Attack("truncated-by-8", truncated_by(8), "malformed|bad_signature"),
    Attack("truncated-to-header", lambda c: genuine(c).split(".")[0], "malformed"),
    Attack("truncated-half", lambda c: genuine(c)[: len(genuine(c)) // 2], "malformed"),
    Attack("four-segments", lambda c: genuine(c) + ".AAAA", "malformed"),
    Attack("non-ascii", lambda c: genuine(c)[:-4] + "ééé", "malformed"),
    Attack("over-8-kb", oversized, "too_large"),
    # the other credential: a queue ticket is not an admission token
    Attack("queue-ticket", lambda c: c.ticket, "malformed"),
    Attack("queue-ticket-as-jwt-parts", lambda c: c.ticket + ".", "malformed"),
]
assert len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.fixture(scope="module")
def ctx() -> Ctx:
    ticket = sign_ticket(TICKET_SECRET, Ticket(ROOM, NOW, 3, 17, NOW * 1000))
    return Ctx(keys=KeySet.generate(KID), attacker=KeySet.generate(KID), ticket=ticket)


# -- the surfaces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # when the surface says why


Surface = Callable[[str], Verdict]


def bearer(token: str) -> dict[bytes, bytes]:
    """The header as raw bytes: an attacker's client sends whatever bytes it likes."""
    return {b"authorization": f"Bearer {token}".encode()}


def make_verifier(ctx: Ctx) -> TokenVerifier:
    return TokenVerifier(audience=ROOM, jwks=ctx.keys.jwks(), clock=lambda: float(NOW))


@pytest.fixture
def verify_surface(ctx: Ctx) -> Surface:
    verifier = make_verifier(ctx)

    def check(token: str) -> Verdict:
        try:
            verifier.verify(token)
        except TokenRejected as exc:  # anything else propagates and fails the test
            return Verdict(False, exc.reason)
        return Verdict(True)

    return check


@pytest.fixture
def authorizer_rest_surface(ctx: Ctx) -> Surface:
    authorize = Authorizer(make_verifier(ctx))

    def check(token: str) -> Verdict:
        event = load_event("authorizer-rest-token")
        event["authorizationToken"] = f"Bearer {token}"
        try:
            result = authorize(event, None)
        except Exception as exc:
            # API Gateway turns exactly this into a 401; any other exception would be a 500
            assert type(exc) is Exception and str(exc) == "Unauthorized", repr(exc)
            return Verdict(False)
        [statement] = result["policyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        return Verdict(True)

    return check


@pytest.fixture
def authorizer_http_v2_surface(ctx: Ctx) -> Surface:
    authorize = Authorizer(make_verifier(ctx))

    def check(token: str) -> Verdict:
        event = load_event("authorizer-http-api-v2-request")
        event["cookies"] = ["theme=dark", f"waitingroom_token={token}"]
        result = authorize(event, None)  # HTTP API v2 simple responses never raise
        assert isinstance(result["isAuthorized"], bool)
        return Verdict(result["isAuthorized"])

    return check


async def origin_app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"origin": "reached"}'})


@pytest.fixture
def middleware_surface(ctx: Ctx) -> Surface:
    guarded = AdmissionGuardMiddleware(origin_app, verifier=make_verifier(ctx))

    async def get(token: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin.test") as c:
            return await c.get("/api/hello", headers=bearer(token))

    def check(token: str) -> Verdict:
        r = asyncio.run(get(token))
        if r.status_code == 200:
            assert r.json() == {"origin": "reached"}
            return Verdict(True)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        body = r.json()
        assert body["error"] == "unauthorized"
        return Verdict(False, body["reason"])

    return check


@dataclass
class ApiUnderAttack:
    client: TestClient
    service: WaitingRoom


@pytest.fixture(scope="module")
def api_under_attack(dynamodb_client: DynamoDBClient, ctx: Ctx) -> Iterator[ApiUnderAttack]:
    """The real API on DynamoDB Local, its JWKS published by a drainer holding ctx.keys."""
    table = "wr-security-tokens"
    ensure_table(dynamodb_client, table)
    store = Store(dynamodb_client, table, clock=lambda: float(NOW))
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=lambda: float(NOW))
    for room in (ROOM, OTHER_ROOM):
        service.put_room(room, {"max_active": 5})
    Drainer(store, lambda: ctx.keys, issuer="waitingroom", clock=lambda: float(NOW)).refresh_keys()
    settings = ApiSettings(
        table=table,
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr("admin"),
        cookie_secure=False,
    )
    with TestClient(wired_app(service, settings), raise_server_exceptions=False) as client:
        yield ApiUnderAttack(client, service)


@pytest.fixture
def api_complete_surface(api_under_attack: ApiUnderAttack) -> Surface:
    client = api_under_attack.client

    def check(token: str) -> Verdict:
        r = client.post(f"/rooms/{ROOM}/complete", headers=bearer(token))
        if r.status_code == 204:
            return Verdict(True)
        assert r.status_code == 401, r.text
        assert r.json()["error"] in ("bad_token", "missing_token")
        return Verdict(False)

    return check


SURFACES = [
    "verify_surface",
    "authorizer_rest_surface",
    "authorizer_http_v2_surface",
    "middleware_surface",
    pytest.param("api_complete_surface", marks=pytest.mark.integration),
]


@pytest.fixture
def no_crash_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The authorizer, the middleware and the API turn an unexpected exception into a refusal
    and log it at ERROR: an attack that only 'worked' by crashing a check must still fail."""
    with caplog.at_level(logging.INFO):
        yield
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not crashes, [r.getMessage() for r in crashes]


# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_a_genuine_token_passes(surface: str, ctx: Ctx, request: pytest.FixtureRequest) -> None:
    """The control: every surface lets the drainer's own token through."""
    check: Surface = request.getfixturevalue(surface)
    assert check(genuine(ctx)) == Verdict(True)


@pytest.mark.usefixtures("no_crash_logged")
@pytest.mark.parametrize("attack", ATTACKS, ids=str)
@pytest.mark.parametrize("surface", SURFACES)
def test_the_attack_is_refused(
    surface: str, attack: Attack, ctx: Ctx, request: pytest.FixtureRequest
) -> None:
    check: Surface = request.getfixturevalue(surface)
    verdict = check(attack.build(ctx))
    assert not verdict.allowed, f"{attack.name} got through {surface}"
    if verdict.reason is not None:
        assert verdict.reason in attack.reason.split("|")


def test_key_headers_never_make_the_verifier_fetch_anything_else(ctx: Ctx) -> None:
    """With a JWKS URL configured, no attack makes the verifier fetch from jku/x5u/kid URLs."""
    fetched: list[str] = []

    def fetch(url: str) -> Mapping[str, Any]:
        fetched.append(url)
        return ctx.keys.jwks()

    verifier = TokenVerifier(
        audience=ROOM, jwks_url=JWKS_URL, fetch=fetch, clock=lambda: float(NOW)
    )
    for attack in ATTACKS:
        with pytest.raises(TokenRejected):
            verifier.verify(attack.build(ctx))
    assert verifier.verify(genuine(ctx)).ticket == TICKET_ID
    assert set(fetched) == {JWKS_URL}


# -- the other way round: the API's two credentials are not interchangeable ------------------


@pytest.mark.integration
def test_an_admission_token_is_not_a_queue_ticket(
    api_under_attack: ApiUnderAttack, ctx: Ctx
) -> None:
    client = api_under_attack.client
    token = genuine(ctx)
    r = client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "bad_ticket"
    client.cookies.set("waitingroom_ticket", token)
    try:
        r = client.get(f"/rooms/{ROOM}/status")
    finally:
        client.cookies.clear()
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "bad_ticket"


@pytest.mark.integration
def test_a_ticket_from_join_is_not_an_admission_token(api_under_attack: ApiUnderAttack) -> None:
    client = api_under_attack.client
    joined = client.post(f"/rooms/{ROOM}/join")
    client.cookies.clear()
    assert joined.status_code == 201, joined.text
    ticket = joined.json()["ticket"]
    # the ticket is good where tickets go ...
    r = client.get(f"/rooms/{ROOM}/status", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 200, r.text
    # ... and refused where admission tokens go
    r = client.post(f"/rooms/{ROOM}/complete", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "bad_token"
