"""Public insights feed throughput against a bare FastAPI endpoint returning a constant list of the same size.

    .venv/bin/python -m benchmarks.bench_feed [--seconds 4] [--rounds 3] [--connections 8]

Both endpoints run in the same uvicorn process (one worker) and are loaded by the same client,
alternating. Writes benchmarks/results/feed.json. Target: the feed holds at least 80% of the bare rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.loadgen import alternate, best_rate, build_request, free_port, load, start_server
from insights.api.feed_cache import bump_version
from insights.config import Settings
from insights.feed.generate import InsightRecord
from insights.feed.store import replace_insights
from insights.runtime import Runtime

RESULTS = Path(__file__).resolve().parent / "results" / "feed.json"


def _records(n: int) -> list[InsightRecord]:
    return [
        InsightRecord(kind="rent_growth", city=f"City {i}", country="Germany", segment=None, metric="yoy_growth",
                      value=0.001 * i, low=0.001 * i - 0.01, high=0.001 * i + 0.01, unit="ratio",
                      period_start=date(2025, 10, 1), period_end=date(2026, 10, 31), sample_size=100 + i,
                      direction="up", method="hedonic time-dummy index, cluster bootstrap", confidence_score=0.9,
                      text=f"City {i} rental market showing {0.1 * i:.1f}% growth year over year")
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> dict:
    """Set up a home with published insights, serve it, and measure both endpoints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="leaseora-bench-feed-"))
    settings = Settings(LEASEORA_HOME=str(home), LEASEORA_SECRET_KEY="bench")
    runtime = Runtime.open(settings)
    try:
        with runtime.session_factory() as session:
            replace_insights(session, insights=_records(200), run_id="bench", confidence_floor=0.6, min_market_size=10)
        bump_version(runtime.redis, "bench")
        port = free_port()
        env = {**os.environ, "LEASEORA_HOME": str(home), "REDIS_URL": runtime.redis_url, "LEASEORA_SECRET_KEY": "bench"}
        server = start_server("benchmarks.apps:bench_app", port=port, env=env, cwd=Path(__file__).resolve().parents[1])
        try:
            import httpx

            page = httpx.get(f"http://127.0.0.1:{port}/ai/insights").json()
            server.terminate()
            server.wait()
            env["BENCH_FEED_PAGE"] = json.dumps(page)  # the bare endpoint returns exactly this page
            server = start_server("benchmarks.apps:bench_app", port=port, env=env, cwd=Path(__file__).resolve().parents[1])
            host = f"127.0.0.1:{port}"
            requests = {"feed": build_request("GET", "/ai/insights", host=host),
                        "bare": build_request("GET", "/bare/insights", host=host)}
            for name in requests:  # warm-up: caches, first-call costs
                load("127.0.0.1", port, lambda i, n=name: requests[n], seconds=1, connections=args.connections)
            results = alternate(lambda name: load("127.0.0.1", port, lambda i: requests[name], seconds=args.seconds,
                                                  connections=args.connections), ["feed", "bare"], rounds=args.rounds)
        finally:
            server.terminate()
            server.wait()
    finally:
        runtime.close()
    feed, bare = best_rate(results["feed"]), best_rate(results["bare"])
    report = {
        "items_per_page": len(page), "connections": args.connections, "seconds_per_round": args.seconds,
        "feed_rate_per_s": round(feed, 1), "bare_rate_per_s": round(bare, 1), "ratio": round(feed / bare, 3),
        "target_ratio": 0.8, "rounds": {k: [r.summary() for r in v] for k, v in results.items()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"feed {feed:,.0f} req/s vs bare {bare:,.0f} req/s: ratio {feed / bare:.2f} (target >= 0.80)")
    return report


if __name__ == "__main__":
    report = main(sys.argv[1:])
    sys.exit(0 if report["ratio"] >= report["target_ratio"] else 1)
