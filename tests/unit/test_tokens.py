"""Queue tickets (HMAC) and admission tokens (JWT): what a forger or a rotation would meet."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import jwt
import pytest

from origin_guard.verify import CallableKeys, TokenRejected, TokenVerifier
from waitingroom.tokens import (
    SUPPORTED_ALGORITHMS,
    BadKeySet,
    BadTicket,
    KeySet,
    Ticket,
    parse_ticket,
    sign_ticket,
)

SECRET = b"s" * 32
NOW = 1_800_000_000


def test_a_ticket_round_trips_and_names_its_place() -> None:
    t = Ticket("demo", 1_800_000_000, 7, 42, 1_800_000_000_123)
    assert parse_ticket([SECRET], sign_ticket(SECRET, t)) == t
    assert t.ticket_id == "1800000000.7.42"


def test_an_altered_ticket_is_refused() -> None:
    text = sign_ticket(SECRET, Ticket("demo", 1, 2, 3, 4))
    _, sig = text.split(".")
    forged_body = base64.urlsafe_b64encode(b"demo:1:2:1:4").rstrip(b"=").decode()
    with pytest.raises(BadTicket, match="altered or forged"):
        parse_ticket([SECRET], f"{forged_body}.{sig}")
    with pytest.raises(BadTicket):
        parse_ticket([b"another-secret-of-32-bytes-long!"], text)
    for junk in ["", "x", "a.b.c", "!!!.???", "a" * 600]:
        with pytest.raises(BadTicket):
            parse_ticket([SECRET], junk)


def test_old_ticket_secrets_still_verify_after_rotation() -> None:
    old, new = b"o" * 32, b"n" * 32
    text = sign_ticket(old, Ticket("demo", 1, 2, 3, 4))
    assert parse_ticket([new, old], text).k == 3


def mint(ks: KeySet, room: str = "demo", exp: int = NOW + 600) -> str:
    return ks.signer().mint(
        issuer="waitingroom",
        room=room,
        ticket_id="1.2.3",
        issued_at=NOW,
        expires_at=exp,
        jti="j1",
    )


def verifier(
    jwks: Mapping[str, Any], audience: str = "demo", issuer: str = "waitingroom", now: float = NOW
) -> TokenVerifier:
    """As the API's complete checks a token: keys from its cached JWKS, time from its clock."""
    return TokenVerifier(
        audience=audience,
        issuer=issuer,
        key_source=CallableKeys(lambda refetch: jwks, SUPPORTED_ALGORITHMS),
        clock=lambda: now,
    )


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    return info.value.reason


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_an_admission_token_carries_the_claims_and_kid(alg: str) -> None:
    ks = KeySet.generate("k1", alg)
    token = mint(ks)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == "k1" and header["alg"] == alg
    verified = verifier(ks.jwks()).verify(token)
    assert (verified.room, verified.ticket, verified.jti) == ("demo", "1.2.3", "j1")
    assert (verified.issued_at, verified.expires_at, verified.kid) == (NOW, NOW + 600, "k1")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {k: claims[k] for k in ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")} == {
        "iss": "waitingroom",
        "aud": "demo",
        "sub": "1.2.3",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": "j1",
    }
    private_members = {"d", "p", "q", "dp", "dq", "qi"}
    assert all(not private_members & set(jwk) for jwk in ks.jwks()["keys"])


def test_tokens_are_refused_on_the_wrong_room_after_expiry_or_when_tampered() -> None:
    ks = KeySet.generate("k1")
    token = mint(ks)
    jwks = ks.jwks()
    assert verifier(jwks).verify(token).ticket == "1.2.3"
    assert refusal(verifier(jwks, audience="other"), token) == "wrong_audience"
    assert refusal(verifier(jwks, now=NOW + 700), token) == "expired"
    assert refusal(verifier(jwks, issuer="evil"), token) == "wrong_issuer"
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert refusal(verifier(jwks), tampered) == "bad_signature"
    hs = jwt.encode({"aud": "demo"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})
    assert refusal(verifier(jwks), hs) == "bad_algorithm"


def test_rotation_keeps_old_tokens_valid_until_the_kid_is_retired() -> None:
    ks = KeySet.generate("k1")
    old_token = mint(ks)
    rotated = ks.rotated("k2")
    new_token = mint(rotated)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    for token in (old_token, new_token):
        verifier(rotated.jwks()).verify(token)
    retired = rotated.rotated("k3", retire=["k1"])
    assert refusal(verifier(retired.jwks()), old_token) == "unknown_kid"


def test_a_key_set_survives_its_json_and_refuses_nonsense() -> None:
    ks = KeySet.generate("k1").rotated("k2")
    again = KeySet.from_json(ks.to_json())
    assert again.active_kid == "k2" and again.jwks() == ks.jwks()
    for bad in [
        "",
        "{}",
        '{"active": "x", "keys": {}}',
        '{"active": "a", "keys": {"a": {"alg": "HS256", "pem": "x"}}}',
    ]:
        with pytest.raises(BadKeySet):
            KeySet.from_json(bad)
