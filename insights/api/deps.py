"""Dependencies of the routes, as `Annotated` aliases (full-stack-fastapi-template style).

There is deliberately no session dependency: a sync generator dependency closes its session in the
thread pool *after* the response, so under load every pooled connection can end up held by a
generator waiting for a thread. Routes open `runtime.session_factory()` in their body instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import redis
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from insights.config import Settings
from insights.runtime import Runtime, async_redis_client
from insights.errors import RateLimited, ServiceUnavailable
from insights.services import keys, ratelimit
from insights.services.keys import Principal, require


# The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in
# the thread pool, a hop that costs more than the whole of some routes.


async def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan."""
    return request.app.state.runtime


async def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    """The process's settings."""
    return runtime.settings


async def get_redis(runtime: Annotated[Runtime, Depends(get_runtime)]) -> redis.Redis:
    """The shared Redis client."""
    return runtime.redis


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


async def authenticate(request: Request, runtime: Runtime) -> Principal:
    """The caller of `Authorization: Bearer <key>`, after taking one token from its rate-limit bucket.

    Once per request: the caller is kept in the request state, so a second call (the route's
    dependency after `AuthFirstRoute`) takes no second token. On the event loop: a key verified within
    the `VerifiedKeyCache`'s TTL costs no I/O (a revocation takes effect within it), the token comes
    from the asyncio Redis client, and only a key not verified recently is looked up in the database,
    in the thread pool.
    """
    state = request.scope.setdefault("state", {})
    known = state.get("principal")
    if known is not None:
        return known
    cache: keys.VerifiedKeyCache = request.app.state.key_cache
    secret, header = runtime.settings.resolved_secret(), request.headers.get("authorization")
    principal = cache.cached(secret=secret, authorization_header=header)
    if principal is None:
        principal = await run_in_threadpool(cache.authenticate, runtime.session_factory, secret=secret,
                                            authorization_header=header)
    try:
        decision = await ratelimit.check_async(async_redis(request, runtime), key_id=principal.key_prefix, plan=principal.plan)
    except redis.RedisError as exc:
        raise ServiceUnavailable("rate limiter unavailable (Redis cannot be reached)") from exc
    # The rate-limit middleware copies these onto the response, whatever it turns out to be.
    state["rate_limit_headers"] = decision.headers()
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per minute exceeded; retry in {decision.retry_after} s",
            retry_after=decision.retry_after,
            details={"limit": decision.limit, "burst": decision.burst},
        )
    state["principal"] = principal
    return principal


async def authorize(request: Request, runtime: Runtime, permission: str) -> Principal:
    """The authenticated, rate-limited caller, who must hold `permission`."""
    principal = await authenticate(request, runtime)
    require(principal, permission)
    return principal


def async_redis(request: Request, runtime: Runtime) -> aioredis.Redis:
    """The app's asyncio Redis client for the running event loop and the runtime's Redis URL (made on
    first use in each loop: a test client may run requests on loops of its own)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    if getattr(state, "async_redis_loop", None) is not loop or state.async_redis_url != runtime.redis_url:
        state.async_redis = async_redis_client(runtime.redis_url)
        state.async_redis_loop, state.async_redis_url = loop, runtime.redis_url
    return state.async_redis


def requires(permission: str):  # type: ignore[no-untyped-def]
    """A dependency: the authenticated, rate-limited caller, who must hold `permission`."""

    async def dependency(request: Request) -> Principal:
        return await authorize(request, request.app.state.runtime, permission)

    dependency.permission = permission  # type: ignore[attr-defined]  # read by AuthFirstRoute
    return Depends(dependency)


async def _any_caller(request: Request) -> Principal:
    return await authenticate(request, request.app.state.runtime)


AnyCallerDep = Annotated[Principal, Depends(_any_caller)]
"""The authenticated, rate-limited caller, whatever its permissions."""


class AuthFirstRoute(APIRoute):
    """A route that authenticates and rate-limits its caller before it reads the request body.

    FastAPI reads and parses the body before it runs any dependency, so without this a request with
    no key and a malformed body would get 422 rather than 401, and invalid requests would never spend
    a rate-limit token nor carry the `X-RateLimit-*` headers. The permission is the one of the route's
    `requires(...)` dependency (checked here too, so 403 also comes before 422).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        permissions = [p for d in self.dependant.dependencies if (p := getattr(d.call, "permission", None))]
        if self.body_field is None or not permissions:
            return handler

        async def authorized_first(request: Request) -> Response:
            runtime = request.app.state.runtime
            for permission in permissions:
                await authorize(request, runtime, permission)
            return await handler(request)

        return authorized_first
