"""AWS Lambda entry point for the API (API Gateway REST v1 or HTTP API v2, via Mangum)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from waitingroom import bootstrap
from waitingroom.observability import configure_logging


def local_app() -> FastAPI:
    """The same app for uvicorn (`uvicorn --factory waitingroom.handler:local_app`)."""
    configure_logging()
    return bootstrap.build_app()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # one app per container, built on the first invocation and reused by warm ones
    response: dict[str, Any] = bootstrap.lambda_api()(event, context)
    return response


def admin_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The /admin routes' entry point: the same app, deployed as a function of its own whose role
    may change room settings (the public function's role may not)."""
    return handler(event, context)
