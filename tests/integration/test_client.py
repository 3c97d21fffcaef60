"""The Python client against the real API over HTTP (uvicorn on 127.0.0.1, DynamoDB Local), with
the drainer ticking: a visitor waits from the public documents and reaches the back end's
/status only to check its stored ticket and to pick its token up."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import FakeClock
from waitingroom import client
from waitingroom.drainer import Drainer
from waitingroom.service import WaitingRoom

pytestmark = pytest.mark.integration


class Counting:
    """urllib over the wire, counting the requests by kind."""

    def __init__(self, base_url: str) -> None:
        self.inner = client.UrllibTransport(base_url)
        self.kinds: Counter[str] = Counter()

    def __call__(self, call: client.Call) -> client.Reply:
        self.kinds[call.kind] += 1
        return self.inner(call)


def test_a_visitor_waits_from_the_documents_and_is_admitted(
    server: str, service: WaitingRoom, drainer: Drainer, clock: FakeClock
) -> None:
    service.put_room(
        "demo", {"max_active": 2, "session_seconds": 10, "pickup_seconds": 10, "shards": 4}
    )
    for _ in range(5):  # ahead in line; they never pick up and are reclaimed
        service.join("demo", None)
    clock.advance(1)

    def sleep(seconds: float) -> None:  # the fake clock moves; the drainer ticks every second
        end = clock.now + seconds
        while clock.now + 1 <= end:
            clock.advance(1)
            drainer.tick_room("demo")
        clock.now = end

    places: list[client.Place] = []
    first = Counting(server)
    paused = client.wait(
        server, "demo", on_place=places.append, transport=first, clock=clock, sleep=sleep,
        timeout=8,
    )  # fmt: skip
    assert paused.kind == "timeout" and paused.ticket
    assert first.kinds["status"] == 0 and first.kinds["join"] == 1 and first.kinds["state"] >= 1
    assert places and places[-1].kind == "waiting" and places[-1].exact

    again = Counting(server)  # the app restarts with the stored ticket
    admitted = client.wait(
        server, "demo", ticket=paused.ticket, on_place=places.append, transport=again,
        clock=clock, sleep=sleep, timeout=300,
    )  # fmt: skip
    assert admitted.kind == "admitted" and admitted.token and admitted.ticket == paused.ticket
    assert again.kinds["join"] == 0
    assert again.kinds["status"] <= 2  # the check of the stored ticket, and the pickup
    assert again.kinds["state"] >= 1 and again.kinds["slot"] <= 1
    exact = [p.position for p in places if p.kind == "waiting"]
    assert exact == sorted(exact, reverse=True)  # the place never went back up
