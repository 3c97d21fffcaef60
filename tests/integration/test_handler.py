"""The Lambda entry points fed real API Gateway / EventBridge payloads (tests/events/)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.events import load_event, rest_event
from tests.conftest import ADMIN_KEY, TICKET_SECRET
from waitingroom import bootstrap, drainer, handler

pytestmark = pytest.mark.integration


def _clear_caches() -> None:
    """Forget the container's built objects, and close the event loop Mangum made for it."""
    if bootstrap.built()["api"]:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        loop.close()
        asyncio.set_event_loop(None)
    bootstrap.forget_built()


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str, table: str
) -> Iterator[None]:
    monkeypatch.setenv("WAITINGROOM_DYNAMODB_ENDPOINT", dynamodb_endpoint)
    monkeypatch.setenv("WAITINGROOM_TABLE", table)
    monkeypatch.setenv("WAITINGROOM_TICKET_SECRET", TICKET_SECRET.decode())
    monkeypatch.setenv("WAITINGROOM_ADMIN_KEY", ADMIN_KEY)
    _clear_caches()
    yield
    _clear_caches()


def http_v2_event(
    method: str, path: str, headers: dict[str, str] | None = None, cookies: list[str] | None = None
) -> dict[str, Any]:
    e = load_event("apigw-http-api-v2-proxy")
    e.update(rawPath=path, rawQueryString="", body=None, isBase64Encoded=False)
    e.pop("queryStringParameters", None)
    e["cookies"] = cookies or []
    e["headers"] = {"host": "abc.execute-api.us-east-1.amazonaws.com", **(headers or {})}
    e["requestContext"]["http"].update(method=method, path=path)
    return e


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
    """Invoke the handler; headers lower-cased, with every Set-Cookie under 'set-cookie'."""
    resp = handler.handler(event, None)
    body = json.loads(resp["body"]) if resp.get("body") else None
    headers: dict[str, Any] = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (resp.get("multiValueHeaders") or {}).items()}
    single = [headers["set-cookie"]] if "set-cookie" in headers else []
    headers["set-cookie"] = [*single, *multi.get("set-cookie", []), *(resp.get("cookies") or [])]
    return resp["statusCode"], headers, body


def test_rest_v1_and_http_v2_payloads_join_and_poll(lambda_env: None) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    status, _, body = call(rest_event("PUT", "/admin/rooms/demo", admin, {"max_active": 3}))
    assert status == 201, body
    status, headers, joined = call(rest_event("POST", "/rooms/demo/join"))
    assert status == 201 and joined["position"] >= 1
    assert any(
        c.startswith(f"waitingroom_ticket={joined['ticket']}") for c in headers["set-cookie"]
    ), headers

    status, _, polled = call(
        http_v2_event("GET", "/rooms/demo/status", {"authorization": f"Bearer {joined['ticket']}"})
    )
    assert status == 200 and polled["state"] == "waiting"
    # HTTP API v2 carries cookies in their own field
    status, _, polled = call(
        http_v2_event(
            "GET", "/rooms/demo/status", cookies=[f"waitingroom_ticket={joined['ticket']}"]
        )
    )
    assert status == 200 and polled["state"] == "waiting"


def test_warm_invocations_share_nothing_about_the_previous_request(lambda_env: None) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    call(rest_event("PUT", "/admin/rooms/demo", admin, {"max_active": 3}))
    status, _, first = call(http_v2_event("POST", "/rooms/demo/join", {"idempotency-key": "abc"}))
    assert status == 201
    # the next invocation, in the same container, carries neither header nor cookie
    status, _, body = call(http_v2_event("GET", "/rooms/demo/status"))
    assert status == 401 and body["error"] == "missing_ticket"
    # nor the admin key of an earlier invocation
    status, _, body = call(rest_event("GET", "/admin/rooms/demo/stats"))
    assert status == 401
    # and a different idempotency key is a different person
    status, _, second = call(http_v2_event("POST", "/rooms/demo/join", {"idempotency-key": "xyz"}))
    assert second["ticket"] != first["ticket"]
    # one service (clients, caches) per container: built once, reused warm
    assert bootstrap.built()["api"] == 1


def test_health_says_the_room_cannot_answer_when_its_store_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAITINGROOM_TICKET_SECRET", TICKET_SECRET.decode())
    monkeypatch.setenv("WAITINGROOM_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    _clear_caches()
    try:
        status, headers, body = call(rest_event("GET", "/health"))
        assert (status, body["error"]) == (503, "unavailable")
        assert headers["retry-after"] == "5"
    finally:
        _clear_caches()


def test_the_drainer_handler_runs_ticks_for_a_scheduled_event(
    lambda_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from waitingroom.tokens import KeySet

    keys = tmp_path / "keys.json"
    keys.write_text(KeySet.generate("k-lambda").to_json())
    monkeypatch.setenv("WAITINGROOM_SIGNING_KEYS_FILE", str(keys))
    monkeypatch.setenv("WAITINGROOM_RUN_SECONDS", "1")
    monkeypatch.setenv("WAITINGROOM_TICK_SECONDS", "0.5")
    call(
        rest_event(
            "PUT", "/admin/rooms/demo", {"Authorization": f"Bearer {ADMIN_KEY}"}, {"max_active": 3}
        )
    )

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 70_000

    result = drainer.handler(load_event("eventbridge-scheduled"), Context())
    assert result["ticks"] >= 1
    status, _, jwks = call(rest_event("GET", "/.well-known/jwks.json"))
    assert status == 200 and jwks["keys"][0]["kid"] == "k-lambda"


def test_importing_the_handlers_reads_no_environment_and_opens_no_connection() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network at import time')\n"
        "socket.socket.connect = refuse\n"
        "import waitingroom.handler, waitingroom.drainer, waitingroom.api, waitingroom.bootstrap\n"
        "assert waitingroom.bootstrap.built() == {'api': 0, 'drainer': 0}\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
