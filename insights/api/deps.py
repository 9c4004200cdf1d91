"""Dependencies of the routes, as `Annotated` aliases (full-stack-fastapi-template style).

There is deliberately no session dependency: a sync generator dependency closes its session in the
thread pool *after* the response, so under load every pooled connection can end up held by a
generator waiting for a thread. Routes open `runtime.session_factory()` in their body instead.
"""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request

from insights.config import Settings
from insights.runtime import Runtime
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


def requires(permission: str):  # type: ignore[no-untyped-def]
    """A dependency: the authenticated, rate-limited caller, who must hold `permission`."""

    def dependency(request: Request, runtime: RuntimeDep) -> Principal:
        return authorize(request, runtime, permission)

    return Depends(dependency)


AnyCallerDep = Annotated[Principal, Depends(authenticate_request)]
"""The authenticated, rate-limited caller, whatever its permissions."""