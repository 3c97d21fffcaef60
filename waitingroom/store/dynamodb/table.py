"""The plumbing every DynamoDB item kind shares: the client, marshalling, error mapping, batches.

Values cross the boundary through boto3's TypeSerializer/TypeDeserializer. DynamoDB numbers are
Decimals on the way back: readers convert them with `as_int`/`as_float`; floats are written as
Decimal(repr(x)), the shortest text that reads back as the same float.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from waitingroom.settings import StoreSettings
from waitingroom.store.interface import Conflict, StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]  # an item as DynamoDB's API spells it ({"S": ...}, {"N": ...})

# Errors that mean "try again later": the caller answers 503 with Retry-After.
_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def make_client(settings: StoreSettings) -> DynamoDBClient:
    """A DynamoDB client with short timeouts, so an outage becomes a quick 503, not a hang."""
    config = Config(
        connect_timeout=1,
        read_timeout=3,
        # total_max_attempts counts the first try; botocore's `max_attempts` counts only retries
        retries={"mode": "standard", "total_max_attempts": 3},
        max_pool_connections=32,
    )
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.region,
        config=config,
    )
    return client


# -- marshalling --------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(repr(v))
    return v


def attrs(values: Mapping[str, Any]) -> Item:
    """Plain Python values (str, int, float, bool, set of str) as DynamoDB attribute values."""
    return {name: _serializer.serialize(_plain(v)) for name, v in values.items()}


def plain(item: Item) -> dict[str, Any]:
    """An item's attributes as Python values (numbers as Decimal: see as_int/as_float)."""
    return {name: _deserializer.deserialize(v) for name, v in item.items()}


def as_int(v: Any, default: int = 0) -> int:
    return default if v is None else int(v)


def as_float(v: Any, default: float = 0.0) -> float:
    return default if v is None else float(v)


def key(pk: str, sk: str) -> Item:
    return attrs({"pk": pk, "sk": sk})


def room_pk(room: str) -> str:
    return f"ROOM#{room}"


def counter_pk(room: str, slot: int, shard: int) -> str:
    return f"ROOM#{room}#Q#{slot}#{shard}"


def ticket_sk(k: int) -> str:
    return f"T#{k:09d}"


def ledger_pk(room: str, seq: int, shard: int) -> str:
    return f"ROOM#{room}#LEDGER#{seq}#{shard}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoTable:
    """One table, one injected boto3 client; every call maps errors to Conflict and
    StoreUnavailable (never an HTTP error)."""

    def __init__(
        self, client: DynamoDBClient, table: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            code = _code(exc)
            if code == "ConditionalCheckFailedException":
                old = cast("Item | None", exc.response.get("Item"))
                raise Conflict(op, plain(old) if old else None) from exc
            if code in _TRANSIENT_CODES:
                raise StoreUnavailable(f"{op}: {code}") from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, ...
            raise StoreUnavailable(f"{op}: {type(exc).__name__}") from exc

    def _transact(self, items: list[dict[str, Any]]) -> None:
        for it in items:
            for body in it.values():
                body["TableName"] = self.table
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            code = _code(exc)
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise Conflict("transaction") from exc
                raise StoreUnavailable(f"transaction cancelled: {reasons}") from exc
            if code in _TRANSIENT_CODES or code == "TransactionInProgressException":
                raise StoreUnavailable(f"transaction: {code}") from exc
            raise
        except BotoCoreError as exc:
            raise StoreUnavailable(f"transaction: {type(exc).__name__}") from exc

    def _batch(self, op: str, request: dict[str, Any], leftover: str) -> list[Item]:
        """One BatchGetItem/BatchWriteItem, retrying what DynamoDB left unprocessed with
        backoff; returns the items read (none for writes)."""
        out: list[Item] = []
        pending = request
        for attempt in range(8):
            try:
                resp = getattr(self.client, op)(RequestItems=pending)
            except ClientError as exc:
                raise StoreUnavailable(f"{op}: {_code(exc)}") from exc
            except BotoCoreError as exc:
                raise StoreUnavailable(f"{op}: {type(exc).__name__}") from exc
            out.extend(resp.get("Responses", {}).get(self.table, []))
            pending = dict(resp.get(leftover) or {})
            if not pending:
                return out
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise StoreUnavailable(f"{op}: requests left unprocessed")

    def _batch_get(self, keys: list[Item], consistent: bool) -> list[dict[str, Any]]:
        """Items by key, 100 per request, as plain values."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(keys), 100):
            request = {self.table: {"Keys": keys[i : i + 100], "ConsistentRead": consistent}}
            items = self._batch("batch_get_item", request, "UnprocessedKeys")
            out.extend(plain(it) for it in items)
        return out

    def _get(self, pk: str, sk: str, consistent: bool = False) -> dict[str, Any] | None:
        """One item as plain values, or None."""
        resp = self._call("get_item", Key=key(pk, sk), ConsistentRead=consistent)
        item = resp.get("Item")
        return plain(item) if item else None

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a query matches, page by page, as plain values (lazily)."""
        while True:
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                yield plain(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs = {**kwargs, "ExclusiveStartKey": resp["LastEvaluatedKey"]}

    def ping(self) -> None:
        self._call("describe_table")
