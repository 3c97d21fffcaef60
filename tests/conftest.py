"""Shared fixtures: DynamoDB Local started once per session, a fresh table per test, a clock."""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mypy_boto3_dynamodb.client import DynamoDBClient
from pydantic import SecretStr

from devtools import dynamodb_local
from waitingroom.api import create_app
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.settings import ApiSettings, StoreSettings
from waitingroom.store import Store, make_client
from waitingroom.table import ensure_table
from waitingroom.tokens import KeySet

TICKET_SECRET = b"test-ticket-secret-0123456789abcdef"
ADMIN_KEY = "test-admin-key"
_tables = itertools.count()


class FakeClock:
    """Starts at the real time (DynamoDB Local honours TTL) and moves only when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    port = dynamodb_local.free_port()
    proc = dynamodb_local.start(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        dynamodb_local.stop(proc)


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_endpoint: str) -> DynamoDBClient:
    return make_client(StoreSettings(dynamodb_endpoint=dynamodb_endpoint))


@pytest.fixture
def table(dynamodb_client: DynamoDBClient) -> str:
    name = f"wr-test-{os.getpid()}-{next(_tables)}"
    ensure_table(dynamodb_client, name)
    return name


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(dynamodb_client: DynamoDBClient, table: str, clock: FakeClock) -> Store:
    return Store(dynamodb_client, table, clock=clock)


@pytest.fixture
def keyset() -> KeySet:
    return KeySet.generate("test-k1")


@pytest.fixture
def service(store: Store, clock: FakeClock) -> WaitingRoom:
    return WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)


DrainerFactory = Callable[..., Drainer]


@pytest.fixture
def make_drainer(store: Store, clock: FakeClock, keyset: KeySet) -> DrainerFactory:
    def make(owner: str = "drainer-a", target: Store | None = None) -> Drainer:
        return Drainer(
            target or store, lambda: keyset, issuer="waitingroom", owner=owner, clock=clock
        )

    return make


@pytest.fixture
def drainer(make_drainer: DrainerFactory) -> Drainer:
    return make_drainer()


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    service: WaitingRoom
    admin: dict[str, str]


@pytest.fixture
def api_settings(dynamodb_endpoint: str, table: str) -> ApiSettings:
    return ApiSettings(
        dynamodb_endpoint=dynamodb_endpoint,
        table=table,
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr(ADMIN_KEY),
        cookie_secure=False,
    )


def wired_app(service: WaitingRoom, settings: ApiSettings) -> FastAPI:
    """The real app, with this service and these settings instead of the environment's."""
    return create_app(service, settings)


@pytest.fixture
def api(service: WaitingRoom, api_settings: ApiSettings) -> Iterator[Api]:
    app = wired_app(service, api_settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app, service, {"Authorization": f"Bearer {ADMIN_KEY}"})


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    dynamodb_local.stop(proc)


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """The app on `port` (a free one if None), served by uvicorn in a thread; yields its URL."""
    port = port or dynamodb_local.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(service: WaitingRoom, api_settings: ApiSettings) -> Iterator[str]:
    """The real app over DynamoDB Local, over the wire; yields its URL."""
    with serve(wired_app(service, api_settings)) as url:
        yield url
