"""`python -m bench f i`: the drainer's admissions/s (section f) next to what the same DynamoDB
Local engine takes in the same run when nothing but writing happens.

Two raw rates, 10,000 items each, ticket-sized (~500 B, a token inside): conditional PutItem on
16 threads (what the drainer's ticket writes are: exactly once needs `attribute_not_exists`, which
BatchWriteItem cannot carry) and BatchWriteItem of 25 items on 16 threads (the engine's ceiling
for unconditional writes). The drainer cannot beat the first; the ratio says how much of the
engine it uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

ITEMS = 10_000
THREADS = 16


class Engine(Protocol):
    endpoint: str

    def table(self) -> str: ...


def _item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"ROOM#raw#Q#{i % 160}#{i % 32}"},
        "sk": {"S": f"T#{i:09d}"},
        "st": {"S": "admitted"},
        "token": {"S": "x" * 306},
        "exp": {"N": str(2_000_000_000)},
    }


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def _rate(run: Callable[[], object]) -> float:
    t = time.perf_counter()
    run()
    return ITEMS / (time.perf_counter() - t)


def raw_rates(engine: Engine) -> tuple[float, float]:
    from waitingroom.settings import StoreSettings
    from waitingroom.store import make_client

    client = make_client(StoreSettings(dynamodb_endpoint=engine.endpoint))
    puts_table, batch_table = engine.table(), engine.table()

    def put(i: int) -> None:
        client.put_item(
            TableName=puts_table, Item=_item(i), ConditionExpression="attribute_not_exists(pk)"
        )

    def write(batch: range) -> None:
        request: dict[str, Any] = {batch_table: [{"PutRequest": {"Item": _item(i)}} for i in batch]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(THREADS) as pool:
        puts = _rate(lambda: list(pool.map(put, range(ITEMS))))
        batches = _rate(lambda: list(pool.map(write, _batches(ITEMS, 25))))
    return puts, batches


def section(engine: Engine, say: Callable[[str], None], row: Callable[..., None]) -> None:
    say(f"\ni. DynamoDB Local's own write rate, {ITEMS:,} ticket-sized items, {THREADS} threads")
    puts, batches = raw_rates(engine)
    row("raw conditional PutItem (as the drainer's ticket writes)", f"{puts:.0f}/s")
    row("raw BatchWriteItem, 25 items a call", f"{batches:.0f}/s")
