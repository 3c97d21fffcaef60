"""Counting DynamoDB operations with botocore's event hooks (shared by the bench and the tests)."""

from __future__ import annotations

from collections import Counter
from typing import Any

READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class OpCounter:
    """Register on a client: `client.meta.events.register("provide-client-params.dynamodb",
    counter)`. Counts every operation by name, and admitted-ticket puts as "ticket puts"."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.ops[model.name] += 1
        if model.name == "PutItem" and params["Item"]["sk"]["S"].startswith("T#"):
            self.ops["ticket puts"] += 1

    def take(self) -> Counter[str]:
        """The counts since the last take, starting afresh."""
        ops, self.ops = self.ops, Counter()
        return ops


def reads(ops: Counter[str]) -> int:
    return sum(n for op, n in ops.items() if op in READS)


def writes(ops: Counter[str]) -> int:
    return sum(n for op, n in ops.items() if op in WRITES)
