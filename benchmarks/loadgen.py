"""A small HTTP/1.1 load generator for benchmarks: keep-alive connections on asyncio streams.

It sends pre-built requests and reads responses by Content-Length, so the client costs far less than
the server it measures (an httpx client would be the bottleneck on a 2-core machine). Both sides of
a comparison are measured with the same client, connections and duration, alternating.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    """Requests completed, by status, over the measured seconds."""

    requests: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float | dict[str, int]]:
        """JSON-safe figures."""
        lat = sorted(self.latencies_ms)
        return {
            "requests": self.requests, "seconds": round(self.seconds, 2), "rate_per_s": round(self.rate, 1),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "p50_ms": round(statistics.median(lat), 2) if lat else None,
            "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
        }


def build_request(method: str, path: str, *, host: str, headers: dict[str, str] | None = None, body: object | None = None) -> bytes:
    """Raw bytes of one HTTP/1.1 keep-alive request."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    if length:
        await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, requests: Callable[[int], bytes], deadline: float, result: LoadResult, offset: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(requests(i))
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
            result.requests += 1
            i += 1
    finally:
        writer.close()


async def _run(host: str, port: int, requests: Callable[[int], bytes], seconds: float, connections: int) -> LoadResult:
    result = LoadResult(requests=0, seconds=seconds)
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, requests, deadline, result, c * 1_000_000) for c in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def load(host: str, port: int, requests: Callable[[int], bytes], *, seconds: float = 5.0, connections: int = 8) -> LoadResult:
    """Send requests (`requests(i)` gives the i-th) on `connections` keep-alive connections for `seconds`."""
    return asyncio.run(_run(host, port, requests, seconds, connections))


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(app_factory: str, *, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Uvicorn (one process, no access log) serving `module:factory` on 127.0.0.1:port; waits until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app_factory, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        env=env, cwd=cwd,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("benchmark server exited at start")
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("benchmark server did not start")


def alternate(measure: Callable[[str], LoadResult], names: Sequence[str], *, rounds: int = 3) -> dict[str, list[LoadResult]]:
    """Measure each name `rounds` times, alternating, so drift in machine load hits both sides alike."""
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            results[name].append(measure(name))
    return results


def best_rate(results: list[LoadResult]) -> float:
    """The median rate of the rounds (robust to one disturbed round)."""
    return statistics.median(r.rate for r in results)
