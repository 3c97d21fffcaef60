"""Keys: the JWKS the drainer publishes, and the REVOKED jti's bucketed by their exp minute."""

from __future__ import annotations

import json
from typing import Any

from waitingroom.store.dynamodb.table import DynamoTable, attrs, key
from waitingroom.store.interface import REVOKED_BUCKET_SECONDS


class DynamoKeys(DynamoTable):
    def put_jwks(self, jwks: dict[str, Any]) -> None:
        item = {"pk": "KEYS", "sk": "JWKS", "jwks": json.dumps(jwks, sort_keys=True)}
        self._call("put_item", Item=attrs(item))

    def get_jwks(self) -> dict[str, Any] | None:
        item = self._get("KEYS", "JWKS")
        if item is None:
            return None
        jwks: dict[str, Any] = json.loads(item["jwks"])
        return jwks

    def add_revoked(self, room: str, jti: str, exp: float) -> None:
        """Record a token ended before its exp, in the item of its exp's minute (kept until
        then, so the list only ever holds tokens that would still be valid)."""
        bucket = int(exp // REVOKED_BUCKET_SECONDS)
        self._call(
            "update_item",
            Key=key(f"ROOM#{room}#REVOKED", f"E#{bucket:012d}"),
            UpdateExpression="ADD jtis :j SET expires_at = :ttl",
            ExpressionAttributeValues=attrs(
                {":j": {jti}, ":ttl": (bucket + 1) * REVOKED_BUCKET_SECONDS + 3600}
            ),
        )

    def list_revoked(self, room: str, now: float) -> list[str]:
        """The jti's of tokens revoked and not yet expired (a query over a few small items)."""
        first = int(now // REVOKED_BUCKET_SECONDS) - 1  # keep a minute of leeway past exp
        items = self._query(
            KeyConditionExpression="pk = :p AND sk >= :a",
            ExpressionAttributeValues=attrs(
                {":p": f"ROOM#{room}#REVOKED", ":a": f"E#{first:012d}"}
            ),
        )
        out: set[str] = set()
        for item in items:
            out.update(item.get("jtis", set()))
        return sorted(out)
