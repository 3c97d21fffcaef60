"""Operators' larger body limit is for requests that carry credentials: anyone else gets the
visitors' limit on /admin/ too (the body is parsed before the route checks the key)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, TICKET_SECRET, wired_app
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings

PUBLIC_LIMIT = 16_384


def _client(service: WaitingRoom) -> TestClient:
    settings = ApiSettings(
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
        max_body_bytes=PUBLIC_LIMIT,
    )
    return TestClient(wired_app(service, settings), raise_server_exceptions=False)


def test_a_large_admin_body_without_credentials_is_refused_before_it_is_parsed(
    memory_service: WaitingRoom,
) -> None:
    body = json.dumps({"max_active": 5, "page_message": "x" * 900, "pad": "y" * 40_000})
    with _client(memory_service) as client:
        anonymous = client.put(
            "/admin/rooms/big", content=body, headers={"content-type": "application/json"}
        )
        assert anonymous.status_code == 413, anonymous.text
        assert f"limited to {PUBLIC_LIMIT} bytes" in anonymous.json()["message"]
        small = client.put("/admin/rooms/big", json={"max_active": 5})
        assert small.status_code == 401, "a small body still reaches the key check"
        operator = client.put(
            "/admin/rooms/big",
            content=body,
            headers={"content-type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert operator.status_code != 413, operator.text
        assert operator.status_code == 422 and "pad" in operator.json()["message"], operator.text
