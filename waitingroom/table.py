"""The one table definition: used by the local bootstrap, the tests and infra/template.yaml."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

TTL_ATTRIBUTE = "expires_at"

KEY_SCHEMA: list[dict[str, str]] = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS: list[dict[str, str]] = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
BILLING_MODE = "PAY_PER_REQUEST"


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable (TTL is a separate call: `ttl_kwargs`)."""
    return {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "BillingMode": BILLING_MODE,
    }


def ttl_kwargs(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    }


def ensure_table(client: Any, table_name: str) -> None:
    """Create the table if it is missing (local stack and tests; AWS gets it from the template).
    Through a copy of `client` with botocore's own retries: the store's client has none (it
    decides itself what is safe to send twice), and creating a table is."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=client.meta.endpoint_url,
        region_name=client.meta.region_name,
        config=Config(read_timeout=10, retries={"mode": "standard", "total_max_attempts": 5}),
    )
    try:
        client.describe_table(TableName=table_name)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(**create_table_kwargs(table_name))
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    client.update_time_to_live(**ttl_kwargs(table_name))
