"""Queue tickets (HMAC, verified by the API) and admission tokens (JWT, minted by the drainer).

A ticket is self-describing: it names its room and its place in the queue (slot, shard, k), so a
poll verifies it locally and never needs a lookup to find out who is asking. An admission token is
an asymmetric JWT: the drainer holds the private keys, everybody else gets the public ones (JWKS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

# ES256 signs ~20x faster than RS256-2048 and its tokens are 200 bytes shorter (they ride in a
# cookie on every origin request); RS256 verifies faster. `make bench` prints both.
DEFAULT_ALGORITHM = "ES256"
SUPPORTED_ALGORITHMS = ("ES256", "RS256")
MAX_TICKET_LENGTH = 512
_ROOM_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class BadTicket(Exception):
    """The ticket is malformed, forged or altered."""


class BadKeySet(Exception):
    """The signing key set cannot be loaded: check the JSON and the active kid."""


def valid_room_id(room: str) -> bool:
    return bool(_ROOM_RE.match(room))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Ticket:
    """A place in a room's queue: slot (join time cut into slots), shard s, counter value k."""

    room: str
    slot: int
    shard: int
    k: int
    joined_ms: int

    @property
    def ticket_id(self) -> str:
        return f"{self.slot}.{self.shard}.{self.k}"

    @property
    def from_pool(self) -> bool:
        """Let in at join from an idle room's pool: slot -seq, entry k (no place in line)."""
        return self.slot < 0


def sign_ticket(secret: bytes, ticket: Ticket) -> str:
    payload = f"{ticket.room}:{ticket.slot}:{ticket.shard}:{ticket.k}:{ticket.joined_ms}"
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(mac)}"


def parse_ticket(secrets: Sequence[bytes], text: str) -> Ticket:
    """Verify a ticket against every accepted secret (the first one signs, older ones verify)."""
    if not text or len(text) > MAX_TICKET_LENGTH or text.count(".") != 1:
        raise BadTicket("the ticket is not in the form issued by join")
    body, sig = text.split(".")
    try:
        payload = _unb64(body)
        mac = _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise BadTicket("the ticket is not valid base64url") from exc
    if not any(
        hmac.compare_digest(hmac.new(s, payload, hashlib.sha256).digest(), mac) for s in secrets
    ):
        raise BadTicket("the ticket's signature does not match: it was altered or forged")
    try:
        room, slot, shard, k, joined = payload.decode().split(":")
        return Ticket(room, int(slot), int(shard), int(k), int(joined))
    except (ValueError, UnicodeDecodeError) as exc:  # signed by us, so only after a format change
        raise BadTicket("the ticket's payload is not understood") from exc


@dataclass(frozen=True)
class KeySet:
    """Signing keys: several kids verify, the active one signs. Lives only in the drainer."""

    active_kid: str
    private_pems: Mapping[str, str]
    algorithms: Mapping[str, str]

    @classmethod
    def generate(cls, kid: str, algorithm: str = DEFAULT_ALGORITHM) -> KeySet:
        return cls(kid, {kid: _generate_pem(algorithm)}, {kid: algorithm})

    @classmethod
    def from_json(cls, text: str) -> KeySet:
        try:
            data = json.loads(text)
            keys = data["keys"]
            active = data["active"]
            pems = {kid: k["pem"] for kid, k in keys.items()}
            algs = {kid: k.get("alg", DEFAULT_ALGORITHM) for kid, k in keys.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadKeySet(
                'expected {"active": KID, "keys": {KID: {"alg": "ES256", "pem": "..."}}}'
            ) from exc
        if active not in pems:
            raise BadKeySet(f"the active kid {active!r} is not among the keys")
        if bad := {a for a in algs.values() if a not in SUPPORTED_ALGORITHMS}:
            raise BadKeySet(f"unsupported algorithm(s) {sorted(bad)}; use ES256 or RS256")
        return cls(active, pems, algs)

    def to_json(self) -> str:
        keys = {
            kid: {"alg": self.algorithms[kid], "pem": pem} for kid, pem in self.private_pems.items()
        }
        return json.dumps({"active": self.active_kid, "keys": keys})

    def rotated(self, new_kid: str, retire: Sequence[str] = ()) -> KeySet:
        """A new key signs from now on; the old ones keep verifying until retired."""
        alg = self.algorithms[self.active_kid]
        pems = {k: v for k, v in self.private_pems.items() if k not in retire}
        algs = {k: v for k, v in self.algorithms.items() if k not in retire}
        pems[new_kid] = _generate_pem(alg)
        algs[new_kid] = alg
        return KeySet(new_kid, pems, algs)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [self._public_jwk(kid) for kid in sorted(self.private_pems)]}

    def _public_jwk(self, kid: str) -> dict[str, Any]:
        key = serialization.load_pem_private_key(self.private_pems[kid].encode(), password=None)
        alg = self.algorithms[kid]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        elif isinstance(key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            raise BadKeySet(f"key {kid!r} is neither EC nor RSA")
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def signer(self) -> TokenSigner:
        kid = self.active_kid
        key = serialization.load_pem_private_key(self.private_pems[kid].encode(), password=None)
        return TokenSigner(kid=kid, algorithm=self.algorithms[kid], key=key)


def _generate_pem(algorithm: str) -> str:
    if algorithm == "ES256":
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(
            ec.SECP256R1()
        )
    elif algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise BadKeySet(f"unsupported algorithm {algorithm!r}; use ES256 or RS256")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True)
class TokenSigner:
    kid: str
    algorithm: str
    key: Any

    def mint(
        self,
        *,
        issuer: str,
        room: str,
        ticket_id: str,
        issued_at: int,
        expires_at: int,
        jti: str,
    ) -> str:
        claims = {
            "iss": issuer,
            "aud": room,
            "sub": ticket_id,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": jti,
        }
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})


# -- proof of work at join ----------------------------------------------------------------------
# A challenge is stateless: room, a random nonce, an expiry and the difficulty, HMAC-signed with a
# key derived from the ticket secret (so a challenge is never a valid ticket, nor the reverse).
# The client finds a counter such that sha256(challenge + ":" + counter) starts with `bits` zero
# bits; the server checks it with one hash and one HMAC.

CHALLENGE_SECONDS = 300
MAX_CHALLENGE_BITS = 26
MAX_CHALLENGE_LENGTH = 256
_SOLUTION_RE = re.compile(r"^[0-9]{1,20}$")


class BadChallenge(Exception):
    """The challenge or its solution is not acceptable; `code` says which way."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Challenge:
    room: str
    nonce: str
    expires_at: int
    bits: int


def _challenge_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"waitingroom:challenge:v1", hashlib.sha256).digest()


def sign_challenge(secret: bytes, challenge: Challenge) -> str:
    payload = f"c1:{challenge.room}:{challenge.nonce}:{challenge.expires_at}:{challenge.bits}"
    mac = hmac.new(_challenge_key(secret), payload.encode(), hashlib.sha256).digest()
    return f"{_b64(payload.encode())}.{_b64(mac)}"


def parse_challenge(secrets: Sequence[bytes], text: str) -> Challenge:
    """Verify a challenge's signature (any accepted secret) and read it; time is not checked."""
    if not text or len(text) > MAX_CHALLENGE_LENGTH or text.count(".") != 1:
        raise BadChallenge("bad_challenge", "X-Challenge is not a challenge issued by this room")
    body, sig = text.split(".")
    try:
        payload, mac = _unb64(body), _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise BadChallenge("bad_challenge", "X-Challenge is not valid base64url") from exc
    if not any(
        hmac.compare_digest(hmac.new(_challenge_key(s), payload, hashlib.sha256).digest(), mac)
        for s in secrets
    ):
        raise BadChallenge(
            "bad_challenge", "X-Challenge's signature does not match: it was altered"
        )
    try:
        tag, room, nonce, expires, bits = payload.decode().split(":")
        if tag != "c1":
            raise ValueError(tag)
        return Challenge(room, nonce, int(expires), int(bits))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadChallenge("bad_challenge", "X-Challenge's payload is not understood") from exc


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solves(challenge_text: str, solution: str, bits: int) -> bool:
    """One hash: does sha256(challenge ":" solution) start with `bits` zero bits?"""
    if not _SOLUTION_RE.match(solution):
        return False
    digest = hashlib.sha256(f"{challenge_text}:{solution}".encode()).digest()
    return leading_zero_bits(digest) >= bits


def solve_challenge(challenge_text: str, bits: int) -> str:
    """What a client does (about 2**bits hashes): the first counter that solves the challenge."""
    counter = 0
    while not solves(challenge_text, str(counter), bits):
        counter += 1
    return str(counter)


# -- binding a token to the browser that picked it up ----------------------------------------------
# origin_guard.verify.binding_value computes the same value (it never imports this module).

BINDING_COOKIE = "waitingroom_bind"


def binding_value(key: bytes, room: str, jti: str) -> str:
    """The binding cookie for an admission token: HMAC(binding key, room and jti)."""
    return _b64(
        hmac.new(key, f"waitingroom-bind:v1:{room}:{jti}".encode(), hashlib.sha256).digest()
    )


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token this service stored itself (no signature check: never use this on
    a token that came from a request)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
