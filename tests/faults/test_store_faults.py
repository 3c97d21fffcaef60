"""Faults, on DynamoDB Local: the store stops in the middle of a burst, a drainer is killed in the
middle of a tick, DynamoDB throttles. Nothing answers 500, nothing a 201 promised is lost, and
nobody is admitted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from fastapi.testclient import TestClient
from mypy_boto3_dynamodb.client import DynamoDBClient
from pydantic import SecretStr

from devtools import dynamodb_local
from origin_guard.verify import TokenVerifier
from tests.conftest import TICKET_SECRET, FakeClock, wired_app
from waitingroom.domain import SETTLE_DELAY_SECONDS, DrainerState, PublicState
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Waiting, WaitingRoom
from waitingroom.settings import ApiSettings, StoreSettings
from waitingroom.store import Store, StoreUnavailable, make_client
from waitingroom.table import ensure_table
from waitingroom.tokens import KeySet, parse_ticket

pytestmark = pytest.mark.integration

ROOM = "faults"
TABLE = "wr-faults"


def wire_api(service: WaitingRoom, endpoint: str, table: str) -> TestClient:
    settings = ApiSettings(
        dynamodb_endpoint=endpoint,
        table=table,
        ticket_secret=SecretStr(TICKET_SECRET.decode()),
        admin_key=SecretStr("admin"),
        cookie_secure=False,
    )
    return TestClient(wired_app(service, settings), raise_server_exceptions=False)


def settle(clock: FakeClock) -> None:
    clock.advance(1 + SETTLE_DELAY_SECONDS + 0.01)


# -- 1. the store stops in the middle of a burst of joins --------------------------------------


class PersistentStore:
    """DynamoDB Local keeping its data in a directory: stop it, start it again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = dynamodb_local.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = dynamodb_local.start(
            self.port, data_dir=data_dir
        )

    def stop(self) -> None:
        if self.proc is not None:
            dynamodb_local.stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.proc = dynamodb_local.start(self.port, data_dir=self.data_dir)


@pytest.fixture
def persistent(tmp_path: Path) -> Iterator[PersistentStore]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    (tmp_path / "ddb").mkdir()
    ddb = PersistentStore(tmp_path / "ddb")
    try:
        yield ddb
    finally:
        ddb.stop()


@dataclass
class Burst:
    """Joins from a few threads until told to stop; every answer is kept."""

    client: TestClient
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        while not self.stop.is_set():
            r = self.client.post(f"/rooms/{ROOM}/join")
            with self.lock:
                self.answers.append((r.status_code, r.json(), dict(r.headers)))
            time.sleep(0.005)

    def count(self, status: int) -> int:
        with self.lock:
            return sum(1 for s, _, _ in self.answers if s == status)

    def wait_for(self, status: int, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count(status) < n:
            assert time.monotonic() < deadline, f"never saw {n} answers {status}"
            time.sleep(0.02)


def test_a_store_outage_mid_burst_is_503_and_loses_no_ticket(
    persistent: PersistentStore, clock: FakeClock
) -> None:
    client = make_client(StoreSettings(dynamodb_endpoint=persistent.endpoint))
    ensure_table(client, TABLE)
    store = Store(client, TABLE, clock=clock)
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    service.put_room(ROOM, {"max_active": 10, "pickup_seconds": 3600})
    keys = KeySet.generate("k1")
    drainer = Drainer(store, lambda: keys, issuer="waitingroom", owner="d1", clock=clock)
    drainer.refresh_keys()

    with wire_api(service, persistent.endpoint, TABLE) as api:
        burst = Burst(api)
        threads = [threading.Thread(target=burst.run) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            burst.wait_for(201, 25)
            persistent.stop()  # mid-burst: requests are in flight
            # meanwhile the drainer loop finds the store down and backs off, doubling each time
            sleeps: list[float] = []

            def sleep(seconds: float) -> None:
                sleeps.append(seconds)
                clock.advance(seconds)

            assert drainer.run(seconds=5, tick_seconds=1, sleep=sleep) == 0
            assert sleeps == [1.0, 2.0, 4.0]
            burst.wait_for(503, 3)
            persistent.restart()
            created_before = burst.count(201)
            burst.wait_for(201, created_before + 10)
        finally:
            burst.stop.set()
            for t in threads:
                t.join()

    statuses = {s for s, _, _ in burst.answers}
    assert statuses <= {201, 503}, statuses  # never a 500
    for status, body, headers in burst.answers:
        if status == 503:
            assert headers["retry-after"] == "5"
            assert body["error"] == "unavailable"
    tickets = {body["ticket"]: body["number"] for s, body, _ in burst.answers if s == 201}
    assert len(tickets) == burst.count(201)  # every 201 is its own place
    assert len(set(tickets.values())) == len(tickets)

    # the drainer picks up again once the store is back
    settle(clock)
    assert drainer.run(seconds=1, tick_seconds=1, sleep=clock.advance) >= 1

    # positions: every 201 ticket is in its settled slot; in number order, the first ones are
    # admitted and the rest wait at strictly increasing, exact positions
    clock.advance(1.01)
    by_number = sorted((n, service.poll(ROOM, t)) for t, n in tickets.items())
    kinds = ["admitted" if isinstance(r, Admitted) else "waiting" for _, r in by_number]
    assert kinds == sorted(kinds), "admission did not follow queue order"
    assert 0 < kinds.count("admitted") <= 10
    positions = [r.position for _, r in by_number if isinstance(r, Waiting)]
    assert all(
        isinstance(r, Waiting) and r.exact for _, r in by_number if not isinstance(r, Admitted)
    )
    assert positions == sorted(set(positions)), "positions repeat or go backwards"

    # then everyone is let in: each 201 ticket exactly once, one token each, unique jti
    service.put_room(ROOM, {"max_active": 100_000})
    for _ in range(3):
        drainer.tick_room(ROOM)
        clock.advance(1.01)
    state = store.get_public_state(ROOM, consistent=True)
    assert state is not None
    assert state.admitted_total == state.settled_total  # every number once, holes included
    jtis: list[str] = []
    verifier = TokenVerifier(audience=ROOM, jwks=keys.jwks(), clock=clock)
    for text in tickets:
        result = service.poll(ROOM, text)
        assert isinstance(result, Admitted), result
        claims = verifier.verify(result.token)
        assert claims.ticket == parse_ticket([TICKET_SECRET], text).ticket_id
        jtis.append(claims.jti)
    assert len(set(jtis)) == len(tickets)


# -- 2. a drainer is killed in the middle of a tick ---------------------------------------------

DRAINER_PROCESS = """
import json, os, sys, time
from waitingroom.drainer import Drainer
from waitingroom.settings import StoreSettings
from waitingroom.store import Store, make_client
from waitingroom.tokens import KeySet

now = float(os.environ["FAULT_NOW"])
keys = KeySet.from_json(os.environ["FAULT_KEYS"])
client = make_client(StoreSettings(dynamodb_endpoint=os.environ["FAULT_ENDPOINT"]))


class Store(Store):
    def put_admitted(self, room, tickets):
        # one at a time, and stop half way: that is where the kill lands
        for i, t in enumerate(tickets):
            if i == len(tickets) // 2:
                print(json.dumps({t.k: t.token for t in tickets[:i]}), flush=True)
                time.sleep(120)
            super().put_admitted(room, [t])
        return len(tickets)


store = Store(client, os.environ["FAULT_TABLE"], clock=lambda: now)
Drainer(store, lambda: keys, issuer="waitingroom", owner="doomed", clock=lambda: now).tick_room(
    sys.argv[1]
)
"""


def admitted_items(store: Store, service: WaitingRoom, tickets: list[str]) -> dict[str, str]:
    """ticket id -> token of every ticket item the drainers wrote."""
    out = {}
    for text in tickets:
        t = parse_ticket(service.secrets, text)
        item = store.get_ticket(ROOM, t.slot, t.shard, t.k)
        if item is not None:
            out[t.ticket_id] = item.token
    return out


def test_a_drainer_killed_mid_tick_is_finished_by_the_next_lease_holder(
    dynamodb_client: DynamoDBClient,
    dynamodb_endpoint: str,
    table: str,
    store: Store,
    service: WaitingRoom,
    clock: FakeClock,
    keyset: KeySet,
) -> None:
    service.put_room(ROOM, {"max_active": 12, "shards": 1, "pickup_seconds": 3600})
    tickets = [service.join(ROOM, None).ticket for _ in range(30)]
    settle(clock)
    env = {
        **os.environ,
        "FAULT_NOW": repr(clock()),
        "FAULT_KEYS": keyset.to_json(),
        "FAULT_ENDPOINT": dynamodb_endpoint,
        "FAULT_TABLE": table,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", DRAINER_PROCESS, ROOM],
        env=env,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # written half the batch, now inside put_admitted
        assert line, "the drainer process died before reaching the middle of its tick"
        written_by_dead: dict[str, str] = json.loads(line)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert len(written_by_dead) == 6

    # committed but half materialised: 6 items exist, the lease is still the dead drainer's
    assert len(admitted_items(store, service, tickets)) == 6
    successor = Drainer(store, lambda: keyset, issuer="waitingroom", owner="next", clock=clock)
    assert successor.tick_room(ROOM).ran is False  # the lease has not run out yet
    clock.advance(31)
    report = successor.tick_room(ROOM)
    assert report.ran and report.admitted == 0  # finishes the batch, admits nobody new

    items = admitted_items(store, service, tickets)
    assert len(items) == 12
    # the dead drainer's tokens were kept, not replaced by a second token for the same ticket
    dead_by_k = {int(k): tok for k, tok in written_by_dead.items()}
    for ticket_id, token in items.items():
        k = int(ticket_id.rsplit(".", 1)[1])
        if k in dead_by_k:
            assert token == dead_by_k[k]
    verifier = TokenVerifier(audience=ROOM, jwks=keyset.jwks(), clock=clock)
    jtis = [verifier.verify(tok).jti for tok in items.values()]
    assert len(set(jtis)) == 12
    # and the admitted set is exactly the first 12 in queue order
    state = store.get_public_state(ROOM, consistent=True)
    assert state is not None and state.consumed == 12 and state.materialized == 12
    for _ in range(3):
        assert successor.tick_room(ROOM).admitted == 0  # max_active reached: nobody else
    assert len(admitted_items(store, service, tickets)) == 12


# -- 3. DynamoDB throttles ----------------------------------------------------------------------


class Throttle:
    """A botocore `before-send` hook answering the first `times` DynamoDB calls with a throttling
    error, as DynamoDB does (HTTP 400 and the error's __type)."""

    def __init__(self, code: str, times: int) -> None:
        self.code = code
        self.times = times
        self.sent = 0
        self.throttled = 0
        self.ops: list[Any] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        self.ops.append(request.headers.get("X-Amz-Target", b""))
        if self.throttled >= self.times:
            return None
        self.throttled += 1
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "slow down"}
        ).encode()
        return AWSResponse(request.url, 400, headers, Raw(body))


class Raw:
    """The raw stream AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


THROTTLES = ["ProvisionedThroughputExceededException", "ThrottlingException"]


@pytest.fixture
def throttled(dynamodb_endpoint: str, table: str, clock: FakeClock) -> Iterator[Any]:
    """A WaitingRoom on its own client (the real client config) with a throttle hook slot."""
    client = make_client(StoreSettings(dynamodb_endpoint=dynamodb_endpoint))
    store = Store(client, table, clock=clock)
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    service.put_room(ROOM, {"max_active": 5})
    service.config(ROOM)  # cached: a join then costs one counter bump

    def throttle(code: str, times: int) -> Throttle:
        hook = Throttle(code, times)
        hooks: Any = client.meta.events  # its stubs type handlers as returning None
        hooks.register_first("before-send.dynamodb", hook)
        return hook

    yield store, service, throttle


@pytest.mark.parametrize("code", THROTTLES)
def test_a_short_throttle_is_retried_and_the_join_succeeds(
    throttled: Any, dynamodb_endpoint: str, table: str, code: str
) -> None:
    _store, service, throttle = throttled
    hook = throttle(code, 2)
    with wire_api(service, dynamodb_endpoint, table) as api:
        started = time.monotonic()
        r = api.post(f"/rooms/{ROOM}/join")
        elapsed = time.monotonic() - started
    assert r.status_code == 201, r.text
    assert hook.throttled == 2
    assert elapsed < 8  # standard retry mode: jittered exponential backoff, capped


@pytest.mark.parametrize("code", THROTTLES)
def test_a_persistent_throttle_is_a_503_after_three_attempts(
    throttled: Any, dynamodb_endpoint: str, table: str, code: str
) -> None:
    _store, service, throttle = throttled
    hook = throttle(code, 10**6)
    with wire_api(service, dynamodb_endpoint, table) as api:
        started = time.monotonic()
        r = api.post(f"/rooms/{ROOM}/join")
        elapsed = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert r.json()["error"] == "unavailable"
    assert hook.sent == 3, hook.ops  # three attempts in all: bounded, not retried forever
    assert elapsed < 8


@pytest.mark.parametrize("code", THROTTLES)
def test_the_drainer_backs_off_while_throttled_then_resumes(
    throttled: Any, clock: FakeClock, keyset: KeySet, code: str
) -> None:
    store, service, throttle = throttled
    service.join(ROOM, None)
    settle(clock)
    drainer = Drainer(store, lambda: keyset, issuer="waitingroom", owner="d", clock=clock)
    drainer.refresh_keys()
    hook = throttle(code, 6)  # two failed loop passes of three attempts each
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    ticks = drainer.run(seconds=4, tick_seconds=1, sleep=sleep)
    assert sleeps[:2] == [1.0, 2.0]  # backed off twice, doubling
    assert ticks >= 1  # then ticked once the throttling stopped
    assert hook.throttled == 6
    state = store.get_public_state(ROOM, consistent=True)
    assert state is not None and state.admitted_total == 1


def test_a_persistent_throttle_is_store_unavailable_in_the_drainer_too(throttled: Any) -> None:
    """Every store call maps throttling to StoreUnavailable, never a raw ClientError."""
    store, _service, throttle = throttled
    throttle(THROTTLES[0], 10**6)
    with pytest.raises(StoreUnavailable):
        store.get_public_state(ROOM, consistent=True)
    with pytest.raises(StoreUnavailable):
        store.commit_state(ROOM, PublicState(), DrainerState(), expected_version=0)


def test_a_browser_asking_for_the_page_while_the_store_is_down_gets_a_page(
    throttled: Any, dynamodb_endpoint: str, table: str
) -> None:
    _store, service, throttle = throttled
    service.put_room("other", {"max_active": 5})  # (its config is not cached after a change)
    throttle("ThrottlingException", 10**6)
    with wire_api(service, dynamodb_endpoint, table) as api:
        r = api.get("/rooms/other")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["retry-after"] == "5" and r.headers["cache-control"] == "no-store"
    assert '<meta http-equiv="refresh" content="5">' in r.text  # it tries again by itself
    assert "not answering" in r.text and "Traceback" not in r.text
    emitted: list[dict[str, float]] = []
    service.metrics.emit = lambda _svc, room, counts, _g: emitted.append(counts)
    service.metrics.flush()
    assert any(c.get("unavailable") == 1 for c in emitted)  # counted for the alarms
