"""A pure ASGI middleware that puts the caller's rate-limit headers on every response.

The auth dependency leaves them in the request state; errors raised later (404, 422, 429) still
carry them. Pure ASGI rather than BaseHTTPMiddleware, which would copy every response body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
