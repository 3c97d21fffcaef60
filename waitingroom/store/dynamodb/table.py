"""The plumbing every DynamoDB item kind shares: the client, marshalling, error mapping, batches.

Values cross the boundary through boto3's TypeSerializer/TypeDeserializer. DynamoDB numbers are
Decimals on the way back: readers convert them with `as_int`/`as_float`; floats are written as
Decimal(repr(x)), the shortest text that reads back as the same float.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as NotConnected

from waitingroom.settings import StoreSettings
from waitingroom.store.interface import Conflict, StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

Item = dict[str, Any]  # an item as DynamoDB's API spells it ({"S": ...}, {"N": ...})

# Errors that prove the request did nothing: DynamoDB refused it before doing any work.
_NOT_DONE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
# Errors after which a write may or may not have happened (DynamoDB's own 500 says so).
_UNSURE_CODES = {"InternalServerError", "ServiceUnavailable"}
# Calls that change nothing: trying one again is always safe.
_READS = {"get_item", "query", "scan", "batch_get_item", "describe_table"}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long one store call may take in all. An attempt is tried again only when that is
    safe: it provably did nothing (throttled, connection refused), or it reads, or it carries an
    idempotency token (transactions). A write that timed out after it was sent may still land,
    so it is never sent twice: one ambiguous failure leaves at most one unheld place."""

    attempts: int = 3
    budget_seconds: float = 10.0
    attempt_seconds: float = 4.0  # connect + read timeout: how long one attempt can hang

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> RetryPolicy:
        return cls(
            attempts=settings.store_attempts,
            budget_seconds=settings.store_budget_seconds,
            attempt_seconds=settings.store_connect_timeout + settings.store_read_timeout,
        )

    def backoff(self, attempt: int) -> float:
        """Full jitter, capped at a second: a waiting room answers soon or says 503."""
        return random.uniform(0, min(1.0, 0.1 * 2**attempt))


def make_client(settings: StoreSettings) -> DynamoDBClient:
    """A DynamoDB client with short timeouts and no retries of its own: botocore retries a
    timed-out write, which lands twice (a counter bumped twice is a place nobody holds), so
    `DynamoTable` decides what to try again (`RetryPolicy`)."""
    config = Config(
        connect_timeout=settings.store_connect_timeout,
        read_timeout=settings.store_read_timeout,
        # total_max_attempts counts the first try: 1 turns botocore's own retries off
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=32,
    )
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.region,
        config=config,
    )
    return client


class _Failed(Exception):
    """One attempt failed: `done` is False when it provably did nothing, None when unknown."""

    def __init__(self, reason: str, done: bool | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.done = done


def _failure(op: str, exc: ClientError | BotoCoreError) -> _Failed:
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _NOT_DONE_CODES:
            return _Failed(f"{op}: {code}", done=False)
        return _Failed(f"{op}: {code}", done=None)
    if isinstance(exc, NotConnected):  # refused, or no connection within the connect timeout
        return _Failed(f"{op}: {type(exc).__name__}", done=False)
    return _Failed(f"{op}: {type(exc).__name__}", done=None)  # read timeouts, closed connections


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
        self,
        client: DynamoDBClient,
        table: str,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.sleep = sleep

    def _attempts(self, send: Callable[[], Any], *, safe: bool) -> Any:
        """`send` until it succeeds, within the policy. `safe`: sending twice changes nothing
        more than once, so an attempt with an unknown outcome may be tried again."""
        started = time.monotonic()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return send()
            except _Failed as failed:
                unsure = failed.done is None
                if unsure and not safe:
                    raise StoreUnavailable(failed.reason, ambiguous=True) from failed.__cause__
                wait = self.retry.backoff(attempt)
                spent = time.monotonic() - started
                if (
                    attempt == self.retry.attempts
                    or spent + wait + self.retry.attempt_seconds > self.retry.budget_seconds
                ):
                    raise StoreUnavailable(failed.reason) from failed.__cause__
                self.sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _call(self, op: str, **kwargs: Any) -> Any:
        def send() -> Any:
            try:
                return getattr(self.client, op)(TableName=self.table, **kwargs)
            except ClientError as exc:
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    old = cast("Item | None", exc.response.get("Item"))
                    raise Conflict(op, plain(old) if old else None) from exc
                if code == "ResourceNotFoundException":  # no table: retrying will not help
                    raise StoreUnavailable(f"{op}: {code}") from exc
                if code not in _NOT_DONE_CODES | _UNSURE_CODES:
                    raise
                raise _failure(op, exc) from exc
            except BotoCoreError as exc:
                raise _failure(op, exc) from exc

        return self._attempts(send, safe=op in _READS)

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One TransactWriteItems. Its idempotency token makes a second attempt safe: DynamoDB
        applies a token once (for ten minutes), so a retry after a timeout never writes twice."""
        for it in items:
            for body in it.values():
                body["TableName"] = self.table
        token = uuid.uuid4().hex

        def send() -> None:
            try:
                self.client.transact_write_items(
                    TransactItems=items,  # type: ignore[arg-type]
                    ClientRequestToken=token,
                )
            except ClientError as exc:
                code = _code(exc)
                if code == "TransactionCanceledException":
                    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                    if "ConditionalCheckFailed" in reasons:
                        raise Conflict("transaction") from exc
                    raise _Failed(f"transaction cancelled: {reasons}", done=False) from exc
                if code == "TransactionInProgressException":  # the first attempt still runs
                    raise _Failed(f"transaction: {code}", done=None) from exc
                if code not in _NOT_DONE_CODES | _UNSURE_CODES:
                    raise
                raise _failure("transaction", exc) from exc
            except BotoCoreError as exc:
                raise _failure("transaction", exc) from exc

        self._attempts(send, safe=True)

    def _batch(self, op: str, request: dict[str, Any], leftover: str) -> list[Item]:
        """One BatchGetItem/BatchWriteItem, retrying what DynamoDB left unprocessed with
        backoff; returns the items read (none for writes)."""
        out: list[Item] = []
        pending = request
        for attempt in range(8):
            resp = self._attempts(partial(self._send_batch, op, pending), safe=True)
            out.extend(resp.get("Responses", {}).get(self.table, []))
            pending = dict(resp.get(leftover) or {})
            if not pending:
                return out
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise StoreUnavailable(f"{op}: requests left unprocessed")

    def _send_batch(self, op: str, request: dict[str, Any]) -> Any:
        """One batch request. Both kinds are safe to send again: BatchGetItem reads, and
        BatchWriteItem only puts whole items (no conditions, no counters)."""
        try:
            return getattr(self.client, op)(RequestItems=request)
        except ClientError as exc:
            if _code(exc) not in _NOT_DONE_CODES | _UNSURE_CODES:
                raise StoreUnavailable(f"{op}: {_code(exc)}") from exc
            raise _failure(op, exc) from exc
        except BotoCoreError as exc:
            raise _failure(op, exc) from exc

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
        """One read of an item nobody writes: the data plane the API's role may use (it may not
        describe the table), half a read unit."""
        self._call("get_item", Key=key("HEALTH", "HEALTH"), ProjectionExpression="pk")
