"""Named defaults of the service. Each constant says what it is for and why it has its value."""

from __future__ import annotations

API_HOST = "127.0.0.1"
"""Where `leaseora up` and `leaseora serve` listen unless told otherwise: loopback, so a demo is never public."""

API_PORT = 8000
"""The API's default port."""

QUERY_QUEUE = "leaseora-queries"
"""RQ queue that carries natural-language queries (POST /ai/query)."""

PIPELINE_QUEUE = "leaseora-pipelines"
"""RQ queue for batch work (the nightly chain); kept apart so a long training never delays queries."""

WEBHOOK_QUEUE = "leaseora-webhooks"
"""RQ queue for webhook deliveries, retried with backoff independently of the query itself."""

QUERY_JOB_TIMEOUT = 60
"""Seconds a query job may run before RQ kills it: answers come from loaded models in milliseconds."""

QUERY_JOB_RETRIES = 3
"""How often a query job that failed or whose worker died is tried again."""

RESULT_TTL = 3600
"""Seconds RQ keeps a job's result; the database keeps the answer for good."""

NIGHTLY_CRON = "0 2 * * *"
"""When the nightly chain runs (server-local time, cron syntax)."""

NIGHTLY_JOB_TIMEOUT = 3 * 3600
"""Seconds the nightly job may run on a worker before RQ stops it."""

NIGHTLY_LOCK_TTL = 6 * 3600
"""Seconds the Redis lock against overlapping nightly runs lives if its holder dies."""

INTERVAL_LEVEL = 0.9
"""Default coverage of rent prediction intervals."""

CONFIDENCE_BAND = 0.10
"""`confidence_score` of a rent estimate is the probability that the true rent is within this relative band."""

PROMOTION_TOLERANCE = 0.02
"""A challenger may be at most this much worse (relative, on the gating metric) than the champion and still be promoted."""

MIN_MARKET_SIZE = 10
"""Fewest distinct properties or listings behind a published insight (privacy floor)."""

MIN_MARKET_SIZE_FLOOR = 5
"""The privacy floor can be configured, but never below this."""

PUBLISH_CONFIDENCE_FLOOR = 0.6
"""Insights with a lower confidence are stored but not published."""

FEED_PAGE_SIZE = 20
"""Default page size of the public insights feed."""

FEED_MAX_PAGE_SIZE = 100
"""Largest page the feed returns."""

REDIS_SOCKET_NAME = "redis.sock"
"""File name of the embedded Redis server's unix socket under var/redis/."""

MAX_UNIX_SOCKET_PATH = 100
"""Unix socket paths longer than this (the OS limit is ~107 bytes) fall back to a loopback port."""

REDIS_START_TIMEOUT = 10.0
"""Seconds to wait for the embedded Redis server to answer PING after starting it."""
