"""The public insights feed, rendered once per publish and served as bytes with an ETag.

Each publish bumps `FEED_VERSION_KEY` in Redis. A request reads that version (one GET), and serves
the pre-rendered JSON for its parameters from this process's cache when the version matches, so
the database is touched once per publish and parameter set, not once per request. Without Redis
the feed is still served, straight from the database.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from insights.storage.tables import Insight, iso_utc

FEED_VERSION_KEY = "leaseora:feed:version"
"""Redis key holding the id of the latest published insight run."""

VERSION_TTL = 1.0
"""Seconds a process trusts its last reading of the publish version."""

MAX_ENTRIES = 512
"""Parameter sets kept per process; least recently used ones are dropped."""


@dataclass(frozen=True)
class FeedParams:
    """What a feed request asks for."""

    page: int | None
    limit: int
    city: str | None
    kind: str | None
    min_confidence: float | None


@dataclass(frozen=True)
class RenderedFeed:
    """A rendered page: the body, its ETag and the version it was rendered from."""

    body: bytes
    etag: str
    version: str


def insight_json(row: Insight) -> dict[str, Any]:
    """The public shape of one insight."""
    return {
        "id": row.id,
        "insight": row.text,
        "confidence_score": round(float(row.confidence_score), 4),
        "created_at": iso_utc(row.created_at),
        "kind": row.kind,
        "city": row.city,
        "country": row.country,
        "segment": row.segment,
        "metric": row.metric,
        "value": row.value,
        "low": row.low,
        "high": row.high,
        "unit": row.unit,
        "period_start": _day(row.period_start),
        "period_end": _day(row.period_end),
        "sample_size": row.sample_size,
        "direction": row.direction,
        "method": row.method,
    }


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def render(session: Session, params: FeedParams, version: str) -> RenderedFeed:
    """Query the published insights for `params` and render the response body."""
    from insights.feed.store import list_published

    page = params.page or 1
    rows, total = list_published(
        session, city=params.city, kind=params.kind, min_confidence=params.min_confidence,
        offset=(page - 1) * params.limit, limit=params.limit,
    )
    items = [insight_json(row) for row in rows]
    if params.page is None:
        payload: Any = items
    else:
        pages = max(1, -(-total // params.limit))
        payload = {
            "success": True,
            "data": items,
            "meta": {"current_page": page, "total_pages": pages, "total_count": total, "limit": params.limit},
        }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return RenderedFeed(body=body, etag=etag, version=version)


class FeedCache:
    """Rendered feed pages of one process, keyed by parameters and checked against the publish version.

    The version is read from Redis at most once per `version_ttl` seconds, so a warm page is served
    with no I/O at all; a publish reaches every API process within that time.
    """

    def __init__(self, *, version_ttl: float = VERSION_TTL) -> None:
        self.version_ttl = version_ttl
        self._entries: OrderedDict[FeedParams, RenderedFeed] = OrderedDict()
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked_at = float("-inf")

    def lookup(self, params: FeedParams) -> RenderedFeed | None:
        """The cached page when the version was checked recently and the page is of that version (no I/O)."""
        if time.monotonic() - self._checked_at >= self.version_ttl:
            return None
        cached = self._entries.get(params)
        return cached if cached is not None and cached.version == self._version else None

    def load(self, session_factory: sessionmaker[Session], connection: redis.Redis, params: FeedParams) -> RenderedFeed:
        """Check the version (one Redis GET) and serve the cached page or render it (blocking I/O)."""
        try:
            raw = connection.get(FEED_VERSION_KEY)
        except redis.RedisError:  # without Redis: straight from the database, uncached
            with session_factory() as session:
                return render(session, params, version=f"uncached-{time.time()}")
        version = raw.decode() if raw else "none"
        with self._lock:
            self._version, self._checked_at = version, time.monotonic()
            cached = self._entries.get(params)
            if cached is not None and cached.version == version:
                self._entries.move_to_end(params)
                return cached
        with session_factory() as session:
            rendered = render(session, params, version)
        with self._lock:
            self._entries[params] = rendered
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return rendered


def bump_version(connection: redis.Redis, version: str) -> None:
    """Tell every API process that a new set of insights was published."""
    connection.set(FEED_VERSION_KEY, version)
