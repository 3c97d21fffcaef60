"""The waiting room's API stops under a running origin (real processes on localhost): admitted
visitors carry on, new ones are sent to the room (fail closed) or, where the operator chose
it, let through once the room has not answered for GUARD_FAIL_OPEN_AFTER_SECONDS (fail open),
and the door closes again when the room is back. Headers and logs say which. The same when the
API runs on but its store (DynamoDB Local behind a relay the test cuts) no longer answers: the
room's /health says so."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from devtools import dynamodb_local
from tests.conftest import TICKET_SECRET, serve, stop_process, wired_app
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings
from waitingroom.store import Store, make_client
from waitingroom.tokens import KeySet

pytestmark = pytest.mark.integration

ROOM = "demo"
FAIL_OPEN_AFTER = 2.0
INTERVAL = 0.5
BROWSER = {"accept": "text/html,*/*;q=0.8"}


def _start_origin(
    api_url: str, port: int, out: BinaryIO, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "--log-level",
            "warning",
            "devtools.devstack:origin_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={
            **os.environ,
            "DEMO_JWKS_URL": f"{api_url}/.well-known/jwks.json",
            "DEMO_WAITING_ROOM_URL": f"{api_url}/rooms/{{room}}",
            "DEMO_ROOMS": ROOM,
            "GUARD_HEALTH_INTERVAL_SECONDS": str(INTERVAL),
            **env,
        },
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _origin(api_url: str, log: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """The demo origin (devtools.devstack:origin_app) behind the guard, its own process."""
    port = dynamodb_local.free_port()
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = _start_origin(api_url, port, out, env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    stop_process(proc)
    raise AssertionError(f"the demo origin did not start:\n{log.read_text()}")


@pytest.fixture
def token(store: Store, keyset: KeySet) -> str:
    store.put_jwks(keyset.jwks())  # what the drainer publishes
    now = int(time.time())
    return keyset.signer().mint(
        issuer="waitingroom",
        room=ROOM,
        ticket_id=f"{now}.1.1",
        issued_at=now,
        expires_at=now + 600,
        jti="jti-room-down",
    )


@pytest.fixture
def api_port() -> int:
    return dynamodb_local.free_port()


@pytest.fixture
def stack(
    service: WaitingRoom, api_settings: ApiSettings, api_port: int, tmp_path: Path
) -> Iterator[tuple[ExitStack, str, str, Path]]:
    """The API, and two origins in front of it: fail closed (the default) and fail open."""
    with ExitStack() as api, ExitStack() as origins:
        api_url = api.enter_context(serve(wired_app(service, api_settings), api_port))
        closed, closed_url = _origin(api_url, tmp_path / "closed.log")
        origins.callback(stop_process, closed)
        opened, open_url = _origin(
            api_url, tmp_path / "open.log", GUARD_FAIL_OPEN_AFTER_SECONDS=str(FAIL_OPEN_AFTER)
        )
        origins.callback(stop_process, opened)
        yield api, closed_url, open_url, tmp_path


def _hello(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{url}/api/hello?x=1", timeout=5, **kwargs)  # type: ignore[arg-type]


def test_stopping_the_room_under_the_origin(
    stack: tuple[ExitStack, str, str, Path],
    token: str,
    service: WaitingRoom,
    api_settings: ApiSettings,
    api_port: int,
) -> None:
    api, closed, opened, logs = stack
    admitted = {"Authorization": f"Bearer {token}"}
    for origin in (closed, opened):
        assert _hello(origin, headers=admitted).json()["sub"].endswith(".1.1")  # keys now cached
        sent = _hello(origin, headers=BROWSER)
        assert sent.status_code == 302
        assert sent.headers["location"].endswith(f"/rooms/{ROOM}?return_to=%2Fapi%2Fhello%3Fx%3D1")
        assert "x-waitingroom-guard" not in sent.headers

    api.close()  # the waiting room's API stops
    stopped = time.monotonic()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2)

    for origin in (closed, opened):  # admitted visitors are unaffected
        r = _hello(origin, headers=admitted)
        assert r.status_code == 200 and "x-waitingroom-guard" not in r.headers

    # the guard learns the room is down from its next health probe; until then, as usual
    while "x-waitingroom-guard" not in (first := _hello(opened, headers=BROWSER)).headers:
        assert first.status_code == 302
        assert time.monotonic() - stopped < 3 * INTERVAL + 2, "the guard never saw it down"
        time.sleep(0.05)
    assert first.status_code == 302
    assert first.headers["x-waitingroom-guard"] == "fail-closed"
    while (r := _hello(opened, headers=BROWSER)).status_code == 302:
        assert time.monotonic() - stopped < FAIL_OPEN_AFTER + 3 * INTERVAL + 2, "never opened"
        time.sleep(0.1)
    open_after = time.monotonic() - stopped
    assert r.status_code == 200
    assert r.headers["x-waitingroom-guard"] == "fail-open"
    assert r.json()["sub"] is None
    assert open_after >= FAIL_OPEN_AFTER
    api_client = _hello(opened, headers={"accept": "application/json"})
    assert api_client.status_code == 200
    assert api_client.headers["x-waitingroom-guard"] == "fail-open"

    for _ in range(3):  # the default policy never opens
        r = _hello(closed, headers=BROWSER)
        assert r.status_code == 302 and r.headers["x-waitingroom-guard"] == "fail-closed"
        r = _hello(closed, headers={"accept": "application/json"})
        assert r.status_code == 401 and r.headers["x-waitingroom-guard"] == "fail-closed"

    with serve(wired_app(service, api_settings), api_port):  # the room is back
        deadline = time.monotonic() + 3 * INTERVAL + 2
        while (r := _hello(opened, headers=BROWSER)).status_code == 200:
            assert time.monotonic() < deadline, "the door never closed again"
            time.sleep(0.1)
        assert r.status_code == 302 and "x-waitingroom-guard" not in r.headers

    open_log = (logs / "open.log").read_text()
    assert "(fail-open)" in open_log and "answers again" in open_log
    assert "(fail-closed)" in (logs / "closed.log").read_text()
    print(f"fail-open after {open_after:.2f} s (GUARD_FAIL_OPEN_AFTER_SECONDS={FAIL_OPEN_AFTER})")


class _Proxy:
    """A TCP relay to DynamoDB Local on a port of its own; `close()` is the store going away
    (open connections dropped, new ones refused) while the API process keeps running."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._upstream)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(): close() alone does not
        self._listener.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the relays and tells both ends
            s.close()


def test_a_store_outage_behind_a_running_api_opens_the_door_where_chosen(
    dynamodb_endpoint: str,
    table: str,
    keyset: KeySet,
    api_settings: ApiSettings,
    tmp_path: Path,
) -> None:
    proxy = _Proxy(dynamodb_endpoint)
    settings = api_settings.model_copy(update={"dynamodb_endpoint": proxy.url})
    store = Store(make_client(settings), table)
    store.put_jwks(keyset.jwks())
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom")
    port = dynamodb_local.free_port()
    with ExitStack() as stack:
        api_url = stack.enter_context(serve(wired_app(service, settings), port))
        stack.callback(proxy.close)
        opened, open_url = _origin(
            api_url, tmp_path / "open.log", GUARD_FAIL_OPEN_AFTER_SECONDS=str(FAIL_OPEN_AFTER)
        )
        stack.callback(stop_process, opened)
        assert _hello(open_url, headers=BROWSER).status_code == 302  # the room answers

        proxy.close()  # DynamoDB goes away; the API process answers on
        stopped = time.monotonic()
        r = httpx.get(f"{api_url}/rooms/{ROOM}/state", timeout=10)
        assert r.status_code in (404, 503), "the API itself still answers"
        while (r := _hello(open_url, headers=BROWSER)).status_code == 302:
            assert time.monotonic() - stopped < FAIL_OPEN_AFTER + 3 * INTERVAL + 8, (
                httpx.get(f"{api_url}/health", timeout=10).text,
                (tmp_path / "open.log").read_text(),
            )
            time.sleep(0.1)
        assert r.status_code == 200 and r.headers["x-waitingroom-guard"] == "fail-open"
        open_after = time.monotonic() - stopped
        health = httpx.get(f"{api_url}/health", timeout=10)
        assert health.status_code == 503 and health.headers["retry-after"] == "5"
    print(f"store down: fail-open after {open_after:.2f} s (after={FAIL_OPEN_AFTER})")
