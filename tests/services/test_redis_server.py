"""The embedded redis-server: started once per home, reused by other processes, persistent, stopped by its owner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from insights.services.redis_server import EmbeddedRedis


def test_started_reused_persistent_and_stopped(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "redis"
    owner = EmbeddedRedis(folder)
    url = owner.ensure()
    assert url.startswith("unix://")
    redis.Redis.from_url(url).set("accepted-query", "q_1")
    # Another process of the same home finds and reuses the running server instead of starting one.
    probe = "from insights.services.redis_server import EmbeddedRedis; import sys; e = EmbeddedRedis(__import__('pathlib').Path(sys.argv[1])); print(e.ensure()); print(e.process is None)"
    out = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, check=True).stdout.split()
    assert out == [url, "True"]
    owner.stop()
    assert not redis_alive(url)
    restarted = EmbeddedRedis(folder)
    try:
        assert redis.Redis.from_url(restarted.ensure()).get("accepted-query") == b"q_1"  # append-only file survived
    finally:
        restarted.stop()


def test_two_homes_never_share_a_server(tmp_path: Path) -> None:
    first, second = EmbeddedRedis(tmp_path / "a" / "redis"), EmbeddedRedis(tmp_path / "b" / "redis")
    try:
        assert first.ensure() != second.ensure()
    finally:
        first.stop()
        second.stop()


def test_a_path_too_long_for_a_socket_falls_back_to_loopback(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60) / "redis"
    embedded = EmbeddedRedis(deep)
    try:
        url = embedded.ensure()
        assert url.startswith("redis://127.0.0.1:")
        assert redis.Redis.from_url(url).ping()
    finally:
        embedded.stop()


def redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False
