"""Refuse request bodies over a limit with 413, whether or not Content-Length is sent.

Operators' routes (/admin/) have a larger limit: a room's settings may carry a page template of
16,384 characters, which JSON-escaped UTF-8 can make several times as many bytes. Only for a
request that carries credentials (an Authorization header: the admin key, or the SigV4 signature
API Gateway checks): the body is read and parsed before the route checks them, so anyone else
gets the visitors' limit and cannot make the API parse 128 KB bodies only to answer 401."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waitingroom.api.errors import error_response

ADMIN_PREFIX = "/admin/"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, admin_limit: int) -> None:
        self.app = app
        self.public_limit = limit
        self.admin_limit = max(limit, admin_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admin = str(scope.get("path", "")).startswith(ADMIN_PREFIX) and any(
            name == b"authorization" for name, _ in scope.get("headers", [])
        )
        limit = self.admin_limit if admin else self.public_limit
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = error_response(
                    413, "body_too_large", f"request bodies are limited to {limit} bytes"
                )
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                # an HTTPException passes through FastAPI's body parsing unchanged
                raise StarletteHTTPException(413, f"request bodies are limited to {limit} bytes")
            return message

        await self.app(scope, limited, send)
