"""Load the real API Gateway / EventBridge payloads kept under tests/events/ (by path: the files
stay with the tests), for the tests and the benchmarks alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json (the .json suffix is optional)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def rest_event(
    method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    """A real REST v1 proxy event, pointed at one method and path."""
    e = load_event("apigw-rest-proxy")
    e.update(httpMethod=method, path=path, resource="/{proxy+}", body=None, isBase64Encoded=False)
    e["queryStringParameters"] = e["multiValueQueryStringParameters"] = None
    e["requestContext"].update(httpMethod=method, path=f"/prod{path}")
    e["headers"] = {**e["headers"], **(headers or {})}
    e["multiValueHeaders"] = {k: [v] for k, v in e["headers"].items()}
    if body is not None:
        e["body"] = json.dumps(body)
        e["headers"]["Content-Type"] = "application/json"
        e["multiValueHeaders"]["Content-Type"] = ["application/json"]
    return e
