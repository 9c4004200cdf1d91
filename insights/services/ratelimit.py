"""Per-plan rate limits: one token bucket per API key in Redis, shared by every API process.

Plans, as the platform documents them:

    plan          limit (requests/minute)   burst
    standard      100                       150
    professional  300                       450
    enterprise    1000                      1500

A fresh key may make `burst` requests at once; the bucket then refills at `limit / 60` tokens per
second up to `burst`. Each request costs one token.

The bucket is a Redis hash `leaseora:ratelimit:<key_id>` with fields `tokens` (float) and `ts_us`
(Redis server time of the last update, in microseconds). One Lua script reads the server clock
(`TIME`), refills, takes a token and writes back, so concurrent API processes never both spend the
last token and no process' clock skew matters. The hash expires once it would be full again: a
missing bucket *is* a full bucket.

Response headers (`RateDecision.headers()`):

    X-RateLimit-Limit      the plan's requests per minute (not the burst, so `Remaining` may exceed it)
    X-RateLimit-Remaining  whole tokens left after this request
    X-RateLimit-Reset      UTC epoch seconds (rounded up) at which the bucket is FULL again
                           (back at `burst`) if no further requests arrive; "now" when already full
    Retry-After            only on denial: whole seconds (>= 1) until the next token arrives

`check` returns a decision; `enforce` raises `RateLimited` (with the headers in `details`) when the
request is denied. A Redis failure raises `ServiceUnavailable`: without Redis the service cannot
queue queries either, so failing open would buy nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis as redis_lib
from redis import asyncio as aioredis

from insights.errors import InvalidInput, RateLimited, ServiceUnavailable


@dataclass(frozen=True)
class PlanLimit:
    """A plan's sustained rate (requests per minute) and bucket size (burst)."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        """Refill rate in tokens per second."""
        return self.per_minute / 60.0


PLAN_LIMITS: dict[str, PlanLimit] = {
    "standard": PlanLimit(per_minute=100, burst=150),
    "professional": PlanLimit(per_minute=300, burst=450),
    "enterprise": PlanLimit(per_minute=1000, burst=1500),
}
"""The platform's documented limits per plan; also the set of valid plan names."""

BUCKET_PREFIX = "leaseora:ratelimit:"
"""Redis key prefix of the buckets; the key id follows."""


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one rate-limit check, with what the response headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch_seconds: int
    retry_after: int
    burst: int

    def headers(self) -> dict[str, str]:
        """The `X-RateLimit-*` headers, plus `Retry-After` when the request is denied."""
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_seconds),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


# KEYS[1]: bucket; ARGV: burst, refill tokens per second, cost.
# Returns {allowed, remaining, now_micros, micros_until_full, micros_until_enough_tokens}.
# Integers only: Redis truncates Lua numbers to integers on the way out.
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000000
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts_us')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
local until_full = math.ceil((burst - tokens) / rate)
local until_enough = 0
if allowed == 0 then until_enough = math.ceil((cost - tokens) / rate) end
-- Numbers, not tostring(): Redis formats them with full precision (%.17g), Lua's tostring with 14 digits.
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts_us', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(until_full / 1000) + 1000)
return {allowed, math.floor(tokens), now, until_full, until_enough}
"""

_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


def plan_limit(plan: str) -> PlanLimit:
    """The limits of `plan`; an unknown plan is InvalidInput."""
    try:
        return PLAN_LIMITS[plan]
    except KeyError:
        raise InvalidInput(
            f"unknown plan {plan!r}; expected one of {', '.join(PLAN_LIMITS)}", details={"field": "plan"}
        ) from None


def bucket_key(key_id: str) -> str:
    """The Redis key of the bucket of API key `key_id` (its public prefix)."""
    return f"{BUCKET_PREFIX}{key_id}"


def check(redis: redis_lib.Redis, *, key_id: str, plan: str) -> RateDecision:
    """Take one token from the bucket of `key_id` under `plan`'s limits; never raises on denial.

    `key_id` is the key's public prefix (`Principal.key_prefix`), so buckets are per key, not per
    account.
    """
    return take(redis, key_id=key_id, limit=plan_limit(plan))


def enforce(redis: redis_lib.Redis, *, key_id: str, plan: str) -> RateDecision:
    """Like `check`, but raise `RateLimited` (headers in `details["headers"]`) when denied."""
    decision = check(redis, key_id=key_id, plan=plan)
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per minute exceeded; retry in {decision.retry_after} s",
            retry_after=decision.retry_after,
            details={"headers": decision.headers(), "limit": decision.limit, "burst": decision.burst},
        )
    return decision


def take(redis: redis_lib.Redis, *, key_id: str, limit: PlanLimit, cost: int = 1) -> RateDecision:
    """Atomically take `cost` tokens from `key_id`'s bucket with explicit limits (tests, tooling)."""
    return _decision(_run_script(redis, bucket_key(key_id), _script_args(limit, cost)), limit)


async def check_async(redis: aioredis.Redis, *, key_id: str, plan: str) -> RateDecision:
    """`check` on an asyncio Redis client: the API's hot path takes its token without a thread hop."""
    limit = plan_limit(plan)
    key, args = bucket_key(key_id), _script_args(limit, 1)
    try:
        try:
            result = await redis.evalsha(_SHA, 1, key, *args)
        except redis_lib.exceptions.NoScriptError:
            result = await redis.eval(_SCRIPT, 1, key, *args)
    except (redis_lib.exceptions.ConnectionError, redis_lib.exceptions.TimeoutError) as exc:
        raise ServiceUnavailable("rate limiter unavailable: Redis cannot be reached") from exc
    return _decision(result, limit)


def _script_args(limit: PlanLimit, cost: int) -> tuple[int, str, int]:
    return (limit.burst, repr(limit.per_second), cost)


def _decision(result: list[int], limit: PlanLimit) -> RateDecision:
    allowed, remaining, now_us, until_full_us, until_enough_us = result
    return RateDecision(
        allowed=bool(allowed),
        limit=limit.per_minute,
        remaining=int(remaining),
        reset_epoch_seconds=_ceil_seconds(int(now_us) + int(until_full_us)),
        # Retry-After must be a whole number of seconds and never 0, or clients would spin.
        retry_after=0 if allowed else max(1, _ceil_seconds(int(until_enough_us))),
        burst=limit.burst,
    )


def _ceil_seconds(micros: int) -> int:
    """Whole seconds, rounded up (integer arithmetic: epoch microseconds exceed float precision)."""
    return -(-micros // 1_000_000)


def _run_script(redis: redis_lib.Redis, key: str, args: tuple[int, str, int]) -> list[int]:
    """EVALSHA the bucket script; on NOSCRIPT (restart, SCRIPT FLUSH) EVAL it, which caches it again."""
    try:
        try:
            return redis.evalsha(_SHA, 1, key, *args)  # type: ignore[no-any-return]
        except redis_lib.exceptions.NoScriptError:
            return redis.eval(_SCRIPT, 1, key, *args)  # type: ignore[no-any-return]
    except (redis_lib.exceptions.ConnectionError, redis_lib.exceptions.TimeoutError) as exc:
        raise ServiceUnavailable("rate limiter unavailable: Redis cannot be reached") from exc
