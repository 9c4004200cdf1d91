"""Token buckets on real Redis: burst, refill (by moving the stored timestamp back), atomicity."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from insights.errors import InvalidInput, RateLimited
from insights.services import ratelimit
from insights.services.ratelimit import PlanLimit


def server_micros(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def drain(client: redis.Redis, key_id: str, plan: str) -> tuple[int, ratelimit.RateDecision, float]:
    """Call until the first denial; return the allowed count, the denial and the time it took."""
    started = time.monotonic()
    allowed = 0
    while True:
        decision = ratelimit.check(client, key_id=key_id, plan=plan)
        if not decision.allowed:
            return allowed, decision, time.monotonic() - started
        allowed += 1


def test_documented_plan_limits() -> None:
    assert {name: (p.per_minute, p.burst) for name, p in ratelimit.PLAN_LIMITS.items()} == {
        "standard": (100, 150),
        "professional": (300, 450),
        "enterprise": (1000, 1500),
    }
    with pytest.raises(InvalidInput):
        ratelimit.plan_limit("platinum")


@pytest.mark.parametrize("plan", ["standard", "professional"])
def test_fresh_key_gets_burst_then_denied(redis_client: redis.Redis, plan: str) -> None:
    limit = ratelimit.PLAN_LIMITS[plan]
    first = ratelimit.check(redis_client, key_id=f"k-{plan}", plan=plan)
    assert first.allowed and first.limit == limit.per_minute and first.remaining == limit.burst - 1
    allowed, denial, elapsed = drain(redis_client, f"k-{plan}", plan)
    # Exactly `burst` unless the loop was slow enough for tokens to trickle in meanwhile.
    assert limit.burst <= allowed + 1 <= limit.burst + math.ceil(elapsed * limit.per_second) + 1
    assert denial.remaining == 0 and denial.retry_after >= 1
    assert denial.retry_after <= math.ceil(1 / limit.per_second)
    headers = denial.headers()
    assert headers["X-RateLimit-Limit"] == str(limit.per_minute)
    assert headers["X-RateLimit-Remaining"] == "0" and int(headers["Retry-After"]) >= 1
    # Reset: when the bucket is full again, i.e. about burst / rate seconds away.
    now = server_micros(redis_client) / 1e6
    assert now + limit.burst / limit.per_second - 2 <= denial.reset_epoch_seconds <= now + limit.burst / limit.per_second + 2


def test_headers_when_allowed(redis_client: redis.Redis) -> None:
    decision = ratelimit.check(redis_client, key_id="h", plan="enterprise")
    assert set(decision.headers()) == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert decision.retry_after == 0
    now = server_micros(redis_client) / 1e6
    assert now <= decision.reset_epoch_seconds <= now + 2  # one token spent: full again in 0.06 s


def test_refill_uses_stored_server_timestamp(redis_client: redis.Redis) -> None:
    key = ratelimit.bucket_key("refill")
    drain(redis_client, "refill", "standard")
    # Pretend the bucket was emptied 6 s ago: 6 s * 100/60 per s = 10 tokens.
    redis_client.hset(key, mapping={"tokens": 0, "ts_us": server_micros(redis_client) - 6_000_000})
    decisions = [ratelimit.check(redis_client, key_id="refill", plan="standard") for _ in range(11)]
    assert [d.allowed for d in decisions[:10]] == [True] * 10
    assert decisions[0].remaining == 9
    assert not decisions[10].allowed
    # An hour of idleness refills to burst, never beyond.
    redis_client.hset(key, mapping={"tokens": 0, "ts_us": server_micros(redis_client) - 3_600_000_000})
    assert ratelimit.check(redis_client, key_id="refill", plan="standard").remaining == 149


def test_callers_clock_is_irrelevant_future_timestamp_does_not_mint_tokens(redis_client: redis.Redis) -> None:
    key = ratelimit.bucket_key("skew")
    redis_client.hset(key, mapping={"tokens": 0, "ts_us": server_micros(redis_client) + 3_600_000_000})
    assert not ratelimit.check(redis_client, key_id="skew", plan="standard").allowed


def test_bucket_expires_when_it_would_be_full(redis_client: redis.Redis) -> None:
    ratelimit.check(redis_client, key_id="ttl", plan="standard")
    ttl = redis_client.pttl(ratelimit.bucket_key("ttl"))
    assert 0 < ttl <= 600 + 1000 + 50  # one token refills in 0.6 s, plus a 1 s margin


def test_enforce_raises_rate_limited_with_headers(redis_client: redis.Redis) -> None:
    limit = ratelimit.PLAN_LIMITS["standard"]
    redis_client.hset(
        ratelimit.bucket_key("enf"), mapping={"tokens": 0, "ts_us": server_micros(redis_client)}
    )
    with pytest.raises(RateLimited) as caught:
        ratelimit.enforce(redis_client, key_id="enf", plan="standard")
    assert caught.value.retry_after >= 1
    assert caught.value.details["headers"]["Retry-After"] == str(caught.value.retry_after)
    assert caught.value.details["headers"]["X-RateLimit-Limit"] == str(limit.per_minute)


def test_evalsha_falls_back_after_script_flush(redis_client: redis.Redis) -> None:
    redis_client.script_flush()
    assert ratelimit.check(redis_client, key_id="flush", plan="standard").allowed
    assert redis_client.script_exists(ratelimit._SHA) == [True]


def test_atomic_across_concurrent_callers(redis_client: redis.Redis, redis_url: str) -> None:
    # A refill of one token per minute makes "exactly burst" exact however slow the machine is.
    slow = PlanLimit(per_minute=1, burst=150)
    clients = [redis.Redis.from_url(redis_url) for _ in range(16)]
    try:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            results = list(
                pool.map(lambda i: ratelimit.take(clients[i % len(clients)], key_id="race", limit=slow), range(300))
            )
    finally:
        for client in clients:
            client.close()
    assert sum(r.allowed for r in results) == 150
    assert sorted(r.remaining for r in results if r.allowed) == list(range(150))


def test_real_plan_under_concurrency(redis_client: redis.Redis, redis_url: str) -> None:
    clients = [redis.Redis.from_url(redis_url) for _ in range(16)]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            results = list(
                pool.map(
                    lambda i: ratelimit.check(clients[i % len(clients)], key_id="race2", plan="standard"), range(300)
                )
            )
    finally:
        for client in clients:
            client.close()
    elapsed = time.monotonic() - started
    allowed = sum(r.allowed for r in results)
    assert 150 <= allowed <= 150 + math.ceil(elapsed * 100 / 60)


def test_the_async_check_takes_from_the_same_bucket(redis_client: redis.Redis, redis_url: str) -> None:
    """The API's asyncio path and the blocking path share buckets, the script and its fallback."""
    import asyncio

    from redis import asyncio as aioredis

    from insights.errors import ServiceUnavailable

    async def run() -> list[ratelimit.RateDecision]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            redis_client.script_flush()  # the first async call falls back to EVAL
            decisions = [await ratelimit.check_async(client, key_id="mixed", plan="standard") for _ in range(3)]
            redis_client.hset(ratelimit.bucket_key("mixed"), mapping={"tokens": 0, "ts_us": server_micros(redis_client)})
            decisions.append(await ratelimit.check_async(client, key_id="mixed", plan="standard"))
            return decisions
        finally:
            await client.aclose()

    first = ratelimit.check(redis_client, key_id="mixed", plan="standard")
    decisions = asyncio.run(run())
    assert [d.remaining for d in decisions[:3]] == [first.remaining - 1, first.remaining - 2, first.remaining - 3]
    assert decisions[3].allowed is False and decisions[3].retry_after >= 1
    assert decisions[3].headers()["X-RateLimit-Remaining"] == "0"
    assert decisions[3].headers()["Retry-After"] == str(decisions[3].retry_after)

    async def unreachable() -> None:
        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        try:
            await ratelimit.check_async(client, key_id="down", plan="standard")
        finally:
            await client.aclose()

    with pytest.raises(ServiceUnavailable):
        asyncio.run(unreachable())


def test_the_async_client_opens_a_bounded_number_of_connections(redis_client: redis.Redis, redis_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Many concurrent requests share a few connections instead of opening one each."""
    import asyncio

    from insights import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "ASYNC_REDIS_CONNECTIONS", 2)
    before = len(redis_client.client_list())

    async def run() -> tuple[list[ratelimit.RateDecision], int]:
        client = runtime_module.async_redis_client(redis_url)
        try:
            decisions = await asyncio.gather(*(ratelimit.check_async(client, key_id=f"pool-{i}", plan="standard") for i in range(40)))
            return decisions, len(redis_client.client_list()) - before
        finally:
            await client.aclose()

    decisions, opened = asyncio.run(run())
    assert all(d.allowed for d in decisions)
    assert 1 <= opened <= 2
