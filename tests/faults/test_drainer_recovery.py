"""A drainer process killed (SIGKILL) half way through writing a batch, on DynamoDB Local and in
real time, while another drainer stands by, as the deployed drainers overlap (each scheduled run
outlasts the schedule's period). Admissions resume within the 30 s lease plus a few seconds,
and the interrupted batch's finish is logged."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mypy_boto3_dynamodb.client import DynamoDBClient

from tests.conftest import TICKET_SECRET
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom
from waitingroom.store import Store
from waitingroom.tokens import KeySet, parse_ticket

pytestmark = pytest.mark.integration

ROOM = "recovery"
LEASE_SECONDS = 30.0  # the default (DrainerSettings.lease_seconds)
RESUME_WITHIN = 35.0

DOOMED_DRAINER = """
import os, sys, time
from waitingroom.drainer import Drainer
from waitingroom.settings import DrainerSettings
from waitingroom.store import Store, make_client
from waitingroom.tokens import KeySet, parse_ticket


class Store(Store):
    def put_admitted(self, room, tickets):
        for i, t in enumerate(tickets):
            if i == len(tickets) // 2:
                print(i, flush=True)  # half the batch is written: the kill lands here
                time.sleep(120)
            super().put_admitted(room, [t])
        return len(tickets)


settings = DrainerSettings(signing_keys=os.environ["FAULT_KEYS"])
store = Store(make_client(settings), settings.table)
keys = KeySet.from_json(os.environ["FAULT_KEYS"])
Drainer(store, lambda: keys, issuer="waitingroom", owner="doomed").tick_room(sys.argv[1])
"""


def test_admissions_resume_within_the_lease_after_a_drainer_dies_mid_batch(
    dynamodb_client: DynamoDBClient,
    dynamodb_endpoint: str,
    table: str,
    keyset: KeySet,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(dynamodb_client, table)  # real time throughout
    service = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom")
    service.put_room(ROOM, {"max_active": 10_000, "shards": 1, "pickup_seconds": 600})
    first = [parse_ticket([TICKET_SECRET], service.join(ROOM, None).ticket) for _ in range(20)]
    time.sleep(1 + SETTLE_DELAY_SECONDS + 0.1)

    env = {
        **os.environ,
        "FAULT_KEYS": keyset.to_json(),
        "WAITINGROOM_DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "WAITINGROOM_TABLE": table,
        "WAITINGROOM_STORE_READ_TIMEOUT": "10",  # a busy machine must not kill it first
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", DOOMED_DRAINER, ROOM],
        env=env,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline(), "the drainer process died before the middle of its batch"
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    interrupted = store.get_public_state(ROOM, consistent=True)
    assert interrupted is not None
    assert (interrupted.consumed, interrupted.materialized) == (20, 0)  # committed, half written

    stop = threading.Event()
    standby = Drainer(store, lambda: keyset, issuer="waitingroom", owner="standby")
    standby.refresh_keys()

    def stand_by() -> None:
        standby.run(seconds=60, tick_seconds=5, should_stop=stop.is_set)

    def keep_joining() -> None:
        while not stop.is_set():
            service.join(ROOM, None)
            time.sleep(0.2)

    threads = [threading.Thread(target=stand_by), threading.Thread(target=keep_joining)]
    resumed_after = None
    with caplog.at_level(logging.INFO, logger="waitingroom.drainer"):
        for t in threads:
            t.start()
        try:
            while time.monotonic() - killed < RESUME_WITHIN + 10:
                st = store.get_public_state(ROOM, consistent=True)
                assert st is not None
                if st.materialized >= 20 and st.consumed > 20:  # finished, and new ones admitted
                    resumed_after = time.monotonic() - killed
                    break
                time.sleep(0.25)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)

    print(f"admissions resumed {resumed_after} s after the kill (lease {LEASE_SECONDS:.0f} s)")
    assert resumed_after is not None and resumed_after <= RESUME_WITHIN
    finished = [r for r in caplog.records if "interrupted tick" in r.getMessage()]
    assert len(finished) == 1
    assert finished[0].__dict__["tickets"] == 20
    # every ticket of the interrupted batch is written, each with its own token
    tokens = {t.ticket_id: store.get_ticket(ROOM, t.slot, t.shard, t.k) for t in first}
    assert all(tokens.values())
    assert len({item.token for item in tokens.values() if item}) == 20
