"""Example origin for the stack: answers only requests the origin_guard authorizer let through."""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """HTTP API (payload 2.0) proxy handler; the guard's context arrives under `lambda`."""
    claims = event.get("requestContext", {}).get("authorizer", {}).get("lambda") or {}
    path = event.get("rawPath", "/")
    if path == "/api/hello":
        body = json.dumps({"hello": "admitted visitor", "room": claims.get("room")})
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}
    page = "<!doctype html><title>origin</title><h1>You are in.</h1>"
    return {"statusCode": 200, "headers": {"content-type": "text/html"}, "body": page}
