"""AWS Lambda entry point for the API (API Gateway REST v1 or HTTP API v2, via Mangum)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from waitingroom.api import create_app
from waitingroom.observability import configure_logging


@lru_cache(maxsize=1)
def _adapter() -> Mangum:
    # Built on the first invocation, reused by warm ones: the app holds no per-request state.
    configure_logging()
    return Mangum(create_app(), lifespan="off")


def local_app() -> FastAPI:
    """The same app for uvicorn (`uvicorn --factory waitingroom.handler:local_app`)."""
    configure_logging()
    return create_app()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _adapter()(event, context)
    return response
