"""The room state item is shared by every running version of the code: a gradual API deploy
serves some traffic with the previous release while the new drainer writes the state, and a
rollback runs the previous drainer against the new item."""

from __future__ import annotations

import json

import pytest
from mypy_boto3_dynamodb.client import DynamoDBClient

from tests.conftest import FakeClock
from waitingroom.domain import DrainerState, PublicState, SettledSlot
from waitingroom.store import Store

pytestmark = pytest.mark.integration

# what the release before `recent_slots` knew of the public state, and read with
# PublicState(**data): any other key there made it fail
PREVIOUS_RELEASE_FIELDS = {
    "settled_through", "settled_total", "consumed", "materialized", "active", "admit_rate",
    "join_rate_per_slot", "admitted_total", "completed_total", "reclaimed_total",
    "expired_total", "last_tick_admitted", "closed_slot", "wait_p50", "wait_p90",
    "prequeue_size", "draw_seed", "opened_at", "updated_at", "pool_seq", "pool_size",
    "pool_max_active", "numbers_until", "unsettled_counts",
}  # fmt: skip


def _item(client: DynamoDBClient, table: str) -> dict[str, str]:
    got = client.get_item(
        TableName=table, Key={"pk": {"S": "ROOM#demo"}, "sk": {"S": "STATE"}}, ConsistentRead=True
    )
    return {k: next(iter(v.values())) for k, v in got["Item"].items()}  # type: ignore[misc]


def test_the_previous_release_still_reads_the_state_the_new_drainer_writes(
    dynamodb_client: DynamoDBClient, table: str, clock: FakeClock
) -> None:
    store = Store(dynamodb_client, table, clock=clock)
    recent = (SettledSlot(8, (3, 2), 40),)
    pub = PublicState(settled_through=8, consumed=3, unsettled_counts=(4,), recent_slots=recent)
    store.commit_state("demo", pub, DrainerState(), expected_version=0)
    item = _item(dynamodb_client, table)
    assert set(json.loads(item["data"])) <= PREVIOUS_RELEASE_FIELDS  # it reads these alone
    assert json.loads(item["data"])["settled_through"] == 8
    assert store.get_public_state("demo") == PublicState(
        version=1, settled_through=8, consumed=3, unsettled_counts=(4,), recent_slots=recent
    )


def test_a_state_written_by_another_release_is_read_without_its_unknown_fields(
    dynamodb_client: DynamoDBClient, table: str, clock: FakeClock
) -> None:
    store = Store(dynamodb_client, table, clock=clock)
    for extra in ({}, {"more": {"S": json.dumps({"a_later_field": [1, 2]})}}):
        dynamodb_client.put_item(
            TableName=table,
            Item={
                "pk": {"S": "ROOM#demo"},
                "sk": {"S": "STATE"},
                "version": {"N": "7"},
                "data": {"S": json.dumps({"settled_through": 5, "consumed": 2, "gone": 1})},
                **extra,
            },
        )
        assert store.get_public_state("demo") == PublicState(
            version=7, settled_through=5, consumed=2
        )
