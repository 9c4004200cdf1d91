"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from insights import __version__
from insights.api.errors import install_error_handlers
from insights.api.feed_cache import FeedCache
from insights.api.middleware import BodyLimit, RateLimitHeaders
from insights.api.routes import health, insights_feed, listings, operations, properties, queries
from insights.config import Settings, get_settings
from insights.runtime import Runtime
from insights.services.intake import QueryIntake
from insights.services.keys import VerifiedKeyCache


#: The largest request body a path accepts (413 `validation_error` above): the batch endpoints take
#: more, a question much less; 1 MiB anywhere else.
BODY_LIMITS = {
    "/ai/query": queries.MAX_QUERY_BODY_BYTES,
    "/ai/properties": properties.MAX_BODY_BYTES,
    "/ai/listings": listings.MAX_BODY_BYTES,
}
DEFAULT_BODY_LIMIT = 1024 * 1024


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. With `runtime` given (tests, `leaseora up`) the caller owns the connections."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = live = runtime or Runtime.open(settings or get_settings())
        app.state.intake = QueryIntake(live.session_factory, lambda: live.redis)
        try:
            yield
        finally:
            if getattr(app.state, "async_redis_loop", None) is asyncio.get_running_loop():
                await app.state.async_redis.aclose()
            app.state.intake.close()
            if owned:
                app.state.runtime.close()

    app = FastAPI(
        title="Leaseora insights API",
        version=__version__,
        description="Rent and occupancy predictions, market insights and natural-language queries.",
        lifespan=lifespan,
    )
    app.state.key_cache = VerifiedKeyCache()
    app.state.feed_cache = FeedCache()  # per app: two apps (two homes) never share pages
    install_error_handlers(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimit, limits=BODY_LIMITS, default=DEFAULT_BODY_LIMIT)
    app.include_router(health.router)
    app.include_router(queries.router)
    app.include_router(insights_feed.router)
    app.include_router(properties.router)
    app.include_router(listings.router)
    app.include_router(operations.router)
    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory (`uvicorn --factory insights.api.app:app_from_environment`)."""
    return create_app(get_settings())
