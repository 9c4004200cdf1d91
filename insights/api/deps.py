"""Dependencies of the routes, as `Annotated` aliases (full-stack-fastapi-template style).

There is deliberately no session dependency: a sync generator dependency closes its session in the
thread pool *after* the response, so under load every pooled connection can end up held by a
generator waiting for a thread. Routes open `runtime.session_factory()` in their body instead.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import redis
from fastapi import Depends, Request
from redis import asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from insights.config import Settings
from insights.runtime import Runtime, async_redis_client
from insights.errors import RateLimited, ServiceUnavailable
from insights.services import keys, ratelimit
from insights.services.keys import Principal, require


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, opened by the app's lifespan."""
    return request.app.state.runtime


def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    """The process's settings."""
    return runtime.settings


def get_redis(runtime: Annotated[Runtime, Depends(get_runtime)]) -> redis.Redis:
    """The shared Redis client."""
    return runtime.redis


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def authenticate_request(request: Request, runtime: RuntimeDep) -> Principal:
    """The caller of `Authorization: Bearer <key>`, after taking one token from its rate-limit bucket.

    Keys are verified through the app's `VerifiedKeyCache` (a revocation takes effect within its TTL).
    """
    cache: keys.VerifiedKeyCache = request.app.state.key_cache
    principal = cache.authenticate(
        runtime.session_factory, secret=runtime.settings.resolved_secret(), authorization_header=request.headers.get("authorization")
    )
    try:
        decision = ratelimit.check(runtime.redis, key_id=principal.key_prefix, plan=principal.plan)
    except redis.RedisError as exc:
        raise ServiceUnavailable("rate limiter unavailable (Redis cannot be reached)") from exc
    return _admitted(request, principal, decision)


def _admitted(request: Request, principal: Principal, decision: ratelimit.RateDecision) -> Principal:
    """The caller, once its rate-limit decision is recorded for the response; `RateLimited` when denied."""
    # The rate-limit middleware copies these onto the response, whatever it turns out to be.
    request.scope.setdefault("state", {})["rate_limit_headers"] = decision.headers()
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per minute exceeded; retry in {decision.retry_after} s",
            retry_after=decision.retry_after,
            details={"limit": decision.limit, "burst": decision.burst},
        )
    return principal


def authorize(request: Request, runtime: Runtime, permission: str) -> Principal:
    """The authenticated, rate-limited caller, who must hold `permission` (blocking: call off the event loop)."""
    principal = authenticate_request(request, runtime)
    require(principal, permission)
    return principal


async def authorize_async(request: Request, runtime: Runtime, permission: str) -> Principal:
    """`authorize` on the event loop, for the hot path (`POST /ai/query`): a key verified within the
    cache's TTL costs no I/O, and the rate-limit token comes from the asyncio Redis client; only a
    key not verified recently is looked up in the database, in the thread pool."""
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
    require(_admitted(request, principal, decision), permission)
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

    def dependency(request: Request, runtime: RuntimeDep) -> Principal:
        return authorize(request, runtime, permission)

    return Depends(dependency)


AnyCallerDep = Annotated[Principal, Depends(authenticate_request)]
"""The authenticated, rate-limited caller, whatever its permissions."""