"""The demo origin the local stack serves behind origin_guard."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.demo_origin import create_app
from waitingroom.tokens import KeySet

NOW = 1_700_000_000.0
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"
TICKET = "1700000000.3.17"


class FakeFetch:
    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.jwks = jwks
        self.calls = 0

    def __call__(self, url: str) -> Mapping[str, Any]:
        assert url == JWKS_URL
        self.calls += 1
        return self.jwks


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate("k1")


@pytest.fixture
def fetch(keys: KeySet) -> FakeFetch:
    return FakeFetch(keys.jwks())


@pytest.fixture
def app(fetch: FakeFetch) -> FastAPI:
    return create_app(
        jwks_url=JWKS_URL,
        issuer="waitingroom",
        rooms=["launch", "presale"],
        waiting_room_url="http://127.0.0.1:8000/rooms/{room}",
        fetch=fetch,
        clock=lambda: NOW,
    )


def mint(keys: KeySet, room: str = "launch", ticket: str = TICKET) -> str:
    return keys.signer().mint(
        issuer="waitingroom",
        room=room,
        ticket_id=ticket,
        issued_at=int(NOW),
        expires_at=int(NOW) + 600,
        jti="jti-1",
    )


def get(app: FastAPI, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path, headers=dict(headers or {}))

    return asyncio.run(go())


def test_home_page_shows_room_and_ticket(app: FastAPI, keys: KeySet) -> None:
    response = get(app, "/", {"cookie": f"waitingroom_token={mint(keys, room='presale')}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "You're in" in response.text
    assert "presale" in response.text
    assert TICKET in response.text


def test_api_hello_answers_json_with_the_claims(app: FastAPI, keys: KeySet) -> None:
    response = get(app, "/api/hello", {"authorization": f"Bearer {mint(keys)}"})
    assert response.status_code == 200
    body = response.json()
    assert body["sub"] == TICKET
    assert body["room"] == "launch"


def test_health_needs_no_token(app: FastAPI, fetch: FakeFetch) -> None:
    response = get(app, "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert fetch.calls == 0


def test_a_browser_without_a_token_goes_to_the_waiting_room(app: FastAPI) -> None:
    response = get(app, "/", {"accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8000/rooms/launch"


def test_the_api_without_a_token_is_401(app: FastAPI, keys: KeySet) -> None:
    assert get(app, "/api/hello").status_code == 401
    other_room = {"authorization": f"Bearer {mint(keys, room='elsewhere')}"}
    assert get(app, "/api/hello", other_room).json()["reason"] == "wrong_audience"


def test_the_keys_are_fetched_once(app: FastAPI, keys: KeySet, fetch: FakeFetch) -> None:
    for _ in range(3):
        assert get(app, "/api/hello", {"authorization": f"Bearer {mint(keys)}"}).status_code == 200
    assert fetch.calls == 1


def test_ticket_text_is_escaped_in_the_page(app: FastAPI, keys: KeySet) -> None:
    token = mint(keys, ticket="<script>x</script>")
    response = get(app, "/", {"cookie": f"waitingroom_token={token}"})
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
