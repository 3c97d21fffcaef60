"""Batch reads and writes retry what DynamoDB leaves unprocessed, and give up as 503s."""

from __future__ import annotations

from typing import Any

import pytest

from waitingroom.domain import SettledSlot
from waitingroom.store import Store, StoreUnavailable


class Throttled:
    """A client that leaves the first request of each kind (or every one) unprocessed."""

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self.calls: list[str] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("get")
        keys = RequestItems["t"]["Keys"]
        if self.always or self.calls.count("get") == 1:
            return {"Responses": {"t": []}, "UnprocessedKeys": RequestItems}
        return {"Responses": {"t": [{"pk": k["pk"], "n": {"N": "1"}} for k in keys]}}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("write")
        if self.always or self.calls.count("write") == 1:
            return {"UnprocessedItems": RequestItems}
        return {"UnprocessedItems": {}}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("waitingroom.store.dynamodb.table.time.sleep", lambda s: None)


def test_unprocessed_keys_and_items_are_sent_again() -> None:
    client = Throttled()
    store = Store(client, "t")  # type: ignore[arg-type]
    assert store.read_counters("demo", [10], 3) == {10: (1, 1, 1)}
    store.put_settled_slots("demo", [SettledSlot(10, (1, 1, 1), 0)], keep_until=0)
    assert client.calls == ["get", "get", "write", "write"]


def test_a_batch_that_never_gets_through_is_a_store_outage() -> None:
    store = Store(Throttled(always=True), "t")  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable, match="unprocessed"):
        store.read_counters("demo", [10], 3)
    with pytest.raises(StoreUnavailable, match="unprocessed"):
        store.put_settled_slots("demo", [SettledSlot(10, (1,), 0)], keep_until=0)
