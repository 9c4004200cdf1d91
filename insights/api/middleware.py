"""Pure ASGI middlewares (BaseHTTPMiddleware would copy every response body).

`RateLimitHeaders` puts the caller's rate-limit headers on every response: the auth dependency leaves
them in the request state, and errors raised later (404, 422, 429) still carry them. `BodyLimit`
refuses request bodies over a path's limit, in the platform's error format.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from insights.api.errors import error_body


class RateLimitHeaders:
    """Append `X-RateLimit-*` (and `Retry-After`) headers recorded during the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                values = scope.get("state", {}).get("rate_limit_headers")
                if values:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    extra = [(k.lower().encode(), v.encode()) for k, v in values.items() if k.lower().encode() not in present]
                    message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 `validation_error` for a request body over its path's limit (the longest matching prefix of
    `limits`, else `default`): at once when `Content-Length` says so, else as soon as the bytes read
    pass it (a chunked body), so an oversized body is never held in memory whole."""

    def __init__(self, app: ASGIApp, *, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))
        self.default = default

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path == prefix or path.startswith(prefix + "/")), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _send_too_large(send, limit)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # raised where the route reads its body: answered by the error handler
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, receive_within_limit, send)


def _too_large(limit: int) -> str:
    return f"request body is larger than this endpoint accepts ({limit:,} bytes)"


async def _send_too_large(send: Send, limit: int) -> None:
    body = json.dumps(error_body("validation_error", _too_large(limit), {"max_bytes": limit})).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
