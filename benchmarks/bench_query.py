"""`POST /ai/query` throughput (auth, rate limiting, recording, enqueueing) against a bare FastAPI POST
endpoint with the same request model, on the same server.

    .venv/bin/python -m benchmarks.bench_query [--seconds 4] [--rounds 3] [--connections 8]

Every request carries a real API key and goes through the rate limiter; requests rotate over several
enterprise keys so that the measurement stays under the limits (each key's bucket is still checked
and decremented). Writes benchmarks/results/query.json. Target: at least 50% of the bare rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.loadgen import alternate, best_rate, build_request, free_port, load, start_server
from insights.config import Settings
from insights.runtime import Runtime
from insights.services.keys import create_key

RESULTS = Path(__file__).resolve().parent / "results" / "query.json"
BODY = {"query": "What is the optimal rent price for a 2-bedroom apartment in Berlin?"}


def main(argv: list[str] | None = None) -> dict:
    """Serve a fresh home, create keys, and measure both endpoints alternately."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--keys", type=int, default=64)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="leaseora-bench-query-"))
    settings = Settings(LEASEORA_HOME=str(home), LEASEORA_SECRET_KEY="bench", DATABASE_URL=os.environ.get("BENCH_DATABASE_URL"))
    runtime = Runtime.open(settings)
    try:
        with runtime.session_factory() as session:
            keys = [create_key(session, secret="bench", account_name=f"bench-{i}", plan="enterprise").key for i in range(args.keys)]
        port = free_port()
        env = {**os.environ, "LEASEORA_HOME": str(home), "REDIS_URL": runtime.redis_url, "LEASEORA_SECRET_KEY": "bench"}
        if settings.database_url:
            env["DATABASE_URL"] = settings.database_url
        server = start_server("benchmarks.apps:bench_app", port=port, env=env, cwd=Path(__file__).resolve().parents[1])
        host = f"127.0.0.1:{port}"
        real = [build_request("POST", "/ai/query", host=host, headers={"Authorization": f"Bearer {k}"}, body=BODY) for k in keys]
        bare = build_request("POST", "/bare/query", host=host, body=BODY)
        requests = {"query": lambda i: real[i % len(real)], "bare": lambda i: bare}
        try:
            for name in requests:
                load("127.0.0.1", port, requests[name], seconds=1, connections=args.connections)
            results = alternate(lambda name: load("127.0.0.1", port, requests[name], seconds=args.seconds,
                                                  connections=args.connections), ["query", "bare"], rounds=args.rounds)
        finally:
            server.terminate()
            server.wait()
    finally:
        runtime.close()
    query, bare_rate = best_rate(results["query"]), best_rate(results["bare"])
    statuses = {k: dict(sum((r.statuses for r in v), start=type(v[0].statuses)())) for k, v in results.items()}
    report = {
        "database": "postgresql" if settings.database_url else "sqlite", "connections": args.connections,
        "query_rate_per_s": round(query, 1), "bare_rate_per_s": round(bare_rate, 1), "ratio": round(query / bare_rate, 3),
        "target_ratio": 0.5, "statuses": statuses, "rounds": {k: [r.summary() for r in v] for k, v in results.items()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    print(f"POST /ai/query {query:,.0f} req/s vs bare {bare_rate:,.0f} req/s: ratio {query / bare_rate:.2f} "
          f"(target >= 0.50); statuses {statuses}")
    return report


if __name__ == "__main__":
    report = main(sys.argv[1:])
    sys.exit(0 if report["ratio"] >= report["target_ratio"] else 1)
