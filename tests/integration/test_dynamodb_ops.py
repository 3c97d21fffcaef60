"""DynamoDB operations per user, by phase, counted with botocore's event hooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.opcount import OpCounter, reads, writes
from tests.conftest import TICKET_SECRET, FakeClock
from waitingroom.domain import SETTLE_DELAY_SECONDS
from waitingroom.drainer import Drainer
from waitingroom.service import Admitted, Waiting, WaitingRoom
from waitingroom.settings import StoreSettings
from waitingroom.store import Store, make_client
from waitingroom.tokens import KeySet

pytestmark = pytest.mark.integration


@pytest.fixture
def counted(
    dynamodb_endpoint: str, table: str, clock: FakeClock
) -> Iterator[tuple[Store, OpCounter]]:
    client = make_client(StoreSettings(dynamodb_endpoint=dynamodb_endpoint))
    counter = OpCounter()
    client.meta.events.register("provide-client-params.dynamodb", counter)
    yield Store(client, table, clock=clock), counter
    client.meta.events.unregister("provide-client-params.dynamodb", counter)


def test_operations_per_user_by_phase(
    counted: tuple[Store, OpCounter], clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    store, counter = counted
    users = 400  # 300 keep waiting: 300 polls per second-long cache period, one container
    svc = WaitingRoom(store, [TICKET_SECRET], issuer="waitingroom", clock=clock)
    drainer = Drainer(store, lambda: KeySet.generate("k"), issuer="waitingroom", clock=clock)
    svc.put_room("demo", {"max_active": 100, "shards": 8})
    drainer.refresh_keys()
    counter.take()

    joined = [svc.join("demo", None) for _ in range(users)]
    join_ops = counter.take()
    clock.advance(1 + SETTLE_DELAY_SECONDS)
    drainer.tick_room("demo")  # settles; admits the first 100
    admit_ops = counter.take()

    clock.advance(1.01)
    # everyone polls once: the admitted pick their token up, the others are told their place
    first_poll = {t.ticket: svc.poll("demo", t.ticket) for t in joined}
    pickup_ops = counter.take()
    waiting = [t for t in joined if isinstance(first_poll[t.ticket], Waiting)]
    admitted = [t for t in joined if isinstance(first_poll[t.ticket], Admitted)]
    polls = 0
    for _ in range(5):  # five rounds of polls by those still waiting, state refreshed each round
        for t in waiting:
            assert isinstance(svc.poll("demo", t.ticket), Waiting)
            polls += 1
        clock.advance(1.01)
    poll_ops = counter.take()

    tokens = []
    for t in admitted:  # a reload after pickup gets the same token back
        r = svc.poll("demo", t.ticket)
        assert isinstance(r, Admitted)
        tokens.append(r.token)
    repoll_ops = counter.take()
    for token in tokens:
        svc.complete("demo", token)
    complete_ops = counter.take()

    n_admitted = len(admitted)
    figures = {
        "join: writes/user": writes(join_ops) / users,
        "join: reads/user": reads(join_ops) / users,
        "waiting poll: reads/poll": reads(poll_ops) / polls,
        "waiting poll: writes/poll": writes(poll_ops) / polls,
        "admission: ticket puts/admitted": admit_ops["ticket puts"] / n_admitted,
        "admission: all writes/admitted": writes(admit_ops) / n_admitted,
        "admission tick: ops besides ticket puts": sum(admit_ops.values())
        - 2 * admit_ops["ticket puts"],
        "pickup: reads/user": reads(pickup_ops) / n_admitted,
        "pickup: writes/user": writes(pickup_ops) / n_admitted,
        "re-poll after pickup: reads/user": reads(repoll_ops) / n_admitted,
        "re-poll after pickup: writes/user": writes(repoll_ops) / n_admitted,
        "complete: reads/user": reads(complete_ops) / n_admitted,
        "complete: writes/user": writes(complete_ops) / n_admitted,
    }
    with capsys.disabled():
        print("\nDynamoDB operations per user (botocore hooks, DynamoDB Local):")
        for name, value in figures.items():
            print(f"  {name:<36} {value:.3f}")

    assert figures["join: writes/user"] == 1.0  # one counter bump, no ticket item
    assert figures["join: reads/user"] <= 0.05  # config and state come from the caches
    assert figures["waiting poll: reads/poll"] <= 0.01
    assert figures["waiting poll: writes/poll"] == 0
    assert figures["admission: ticket puts/admitted"] == 1.0
    assert figures["admission: all writes/admitted"] <= 1.1  # + lease, slot, state per tick
    # the ticket item; the rest are per-container cache refreshes (state, config, slot)
    assert figures["pickup: reads/user"] <= 1.05
    assert figures["pickup: writes/user"] == 1.0  # one transaction: ticket + ledger
    assert figures["re-poll after pickup: writes/user"] == 0
    assert figures["complete: reads/user"] <= 1.02  # the ticket item (+ public keys, once)
    assert figures["complete: writes/user"] == 1.0
