"""What one process opens once and passes down: settings, database engine, sessions and Redis."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis import asyncio as aioredis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.services.redis_server import EmbeddedRedis, resolve_redis_url
from insights.storage.session import make_engine, make_session_factory, migrate


@dataclass
class Runtime:
    """The live connections of one process. Build it with `Runtime.open`, end it with `close`."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    redis_url: str
    embedded_redis: EmbeddedRedis | None = None
    _redis: redis.Redis | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, migrate_db: bool = True) -> Runtime:
        """Create the home's folders, migrate the database and find (or start) Redis."""
        settings.ensure_dirs()
        engine = make_engine(settings.sqlalchemy_url)
        if migrate_db:
            migrate(engine)
        url, embedded = resolve_redis_url(settings.redis_url, settings.redis_dir)
        return cls(settings, engine, make_session_factory(engine), url, embedded)

    @property
    def redis(self) -> redis.Redis:
        """A shared client (connection-pooled, thread-safe) on the process's Redis."""
        if self._redis is None:
            self._redis = redis_client(self.redis_url)
        return self._redis

    def close(self) -> None:
        """Close connections; stop the embedded Redis only if this process started it."""
        if self._redis is not None:
            self._redis.close()
        self.engine.dispose()
        if self.embedded_redis is not None:
            self.embedded_redis.stop()


#: Most Redis connections the API's asyncio client opens; further requests wait for one (up to the
#: socket timeout), so a flood of concurrent requests cannot open thousands of connections.
ASYNC_REDIS_CONNECTIONS = 64


def async_redis_client(url: str) -> aioredis.Redis:
    """An asyncio client with the same timeouts as `redis_client` (for the API's event loop), on a
    bounded connection pool (closed with the client)."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=ASYNC_REDIS_CONNECTIONS, timeout=5,
                                                    socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
    return aioredis.Redis.from_pool(pool)


def redis_client(url: str) -> redis.Redis:
    """A Redis client with short timeouts, so an unreachable Redis fails fast instead of hanging a request."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
