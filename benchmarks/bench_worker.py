"""Worker throughput against RQ's own no-op job rate (same worker class), and POST-to-completed latency.

    .venv/bin/python -m benchmarks.bench_worker [--jobs 400] [--rate 20] [--seconds 15] [--no-latency]

1. Throughput: the same `SimpleWorker`, prepared as `leaseora worker` prepares itself, drains N no-op
   jobs, then real query jobs (the interpreter's evaluation questions, answered with champion models
   trained on generated demo data), in burst mode: each question once with the worker's caches
   emptied first ("new"), then N jobs cycling the same questions ("repeated"). Jobs per second of
   each, best of three alternating rounds, and each query rate's ratio to the no-op rate. Target:
   at least 70%.
2. Latency: the API (uvicorn) and one `leaseora worker` process; queries are POSTed at a steady rate
   and each is polled until `completed`; the median time from POST to completed. Target: under 100 ms
   at 20 queries/s.
Writes benchmarks/results/worker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rq import Queue, SimpleWorker
from sqlalchemy import select

from benchmarks.loadgen import free_port, start_server
from insights import defaults
from insights.config import Settings
from insights.runtime import Runtime
from insights.services.keys import create_key
from insights.storage import queries_repo
from insights.storage.tables import QueryRecord
from insights.query.answer import forget_answers
from insights.worker.context import prepare_worker_process, set_runtime
from insights.worker.enqueue import enqueue_query_job
from pipelines.bootstrap import load_demo_data
from pipelines.train import train_all

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "worker.json"
def _questions(name: str) -> list[str]:
    return [q for line in (ROOT / "tests" / "query" / name).read_text().splitlines() if line.strip()
            if 0 < len(q := json.loads(line)["query"].strip()) <= 2000]


#: The interpreter's evaluation questions that the API accepts (1 to 2,000 characters of text).
QUESTIONS = _questions("eval_questions.jsonl")
#: Other questions (the interpreter's hold-out set), used to warm the worker up.
HOLDOUT = _questions("holdout_questions.jsonl")


def noop() -> None:
    """RQ's cheapest job: the baseline."""


def _drain(runtime: Runtime, enqueue: callable, n: int) -> float:
    connection = runtime.redis
    rq_queue = Queue(defaults.QUERY_QUEUE, connection=connection)
    rq_queue.empty()
    for i in range(n):
        enqueue(rq_queue, i)
    worker = SimpleWorker([rq_queue], connection=connection)
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return n / (time.perf_counter() - started)


def throughput(runtime: Runtime, n: int, rounds: int = 3) -> dict:
    """No-op and query job rates with the same worker class, alternating, best of `rounds` each.

    The process is first prepared exactly as `leaseora worker` prepares itself (warm models, frozen
    heap) and works off hold-out questions. Then, each round: no-op jobs; every evaluation question
    once, with the per-process caches emptied first (`new`: interpretation and model results are
    computed for each, as for questions a worker has not seen); `n` jobs cycling the same questions
    (`repeated`: interpretations and unit estimates come from the caches).
    """
    prepare_worker_process(runtime)

    def enqueue_noop(q: Queue, i: int) -> None:
        q.enqueue("benchmarks.bench_worker.noop", result_ttl=defaults.RESULT_TTL)

    def asking(questions: list[str]) -> callable:
        def enqueue_query(q: Queue, i: int) -> None:
            text = questions[i % len(questions)]
            with runtime.session_factory() as session:
                record = queries_repo.create_query(session, account_id=None, text=text, webhook_url=None)
            enqueue_query_job(q, record.id, queries_repo.Pending(text=text, webhook_url=None, account_id=None))
        return enqueue_query

    _drain(runtime, asking(HOLDOUT), len(HOLDOUT))  # warm-up on other questions
    rates: dict[str, list[float]] = {"noop": [], "new": [], "repeated": []}
    for _ in range(rounds):
        rates["noop"].append(_drain(runtime, enqueue_noop, n))
        forget_answers()
        rates["new"].append(_drain(runtime, asking(QUESTIONS), len(QUESTIONS)))
        rates["repeated"].append(_drain(runtime, asking(QUESTIONS), n))
    best = {k: max(v) for k, v in rates.items()}
    return {"jobs": n, "questions": len(QUESTIONS), "noop_jobs_per_s": round(best["noop"], 1),
            "new_question_jobs_per_s": round(best["new"], 1), "repeated_question_jobs_per_s": round(best["repeated"], 1),
            "ratio_new": round(best["new"] / best["noop"], 3), "ratio_repeated": round(best["repeated"] / best["noop"], 3),
            "target_ratio": 0.7, "runs": rates}


def latency(runtime: Runtime, home: Path, *, rate: float, seconds: float) -> dict:
    """POST at `rate` per second for `seconds` (one client), then read when each query completed.

    The time of a query is from just before its POST was sent (client clock) to its `completed_at`
    (worker clock; same machine), so the polling of a client does not distort it.
    """
    count = int(rate * seconds)
    with runtime.session_factory() as session:
        key = create_key(session, secret="bench", account_name="latency", plan="enterprise").key
    env = {**os.environ, "LEASEORA_HOME": str(home), "REDIS_URL": runtime.redis_url, "LEASEORA_SECRET_KEY": "bench"}
    port = free_port()
    server = start_server("insights.api.app:app_from_environment", port=port, env=env, cwd=ROOT)
    worker = subprocess.Popen([sys.executable, "-m", "insights.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent: dict[str, float] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            # Warm-up: the worker loads the models on its first query (seconds on a slow machine); the
            # measurement starts once every warm-up query is answered, so it times a warm worker.
            warm = [client.post("/ai/query", json={"query": QUESTIONS[-1 - i]}).json()["query_id"] for i in range(10)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(client.get(f"/ai/query/{q}").json()["status"] != "completed" for q in warm):
                time.sleep(0.5)
            start = time.perf_counter()
            for i in range(count):
                time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                posted = time.time()
                response = client.post("/ai/query", json={"query": QUESTIONS[i % len(QUESTIONS)]})
                if response.status_code != 202:
                    raise RuntimeError(f"POST /ai/query answered {response.status_code}: {response.text}")
                sent[response.json()["query_id"]] = posted
        deadline = time.monotonic() + 120
        while True:
            with runtime.session_factory() as session:
                done = {r.id: r for r in session.scalars(select(QueryRecord).where(QueryRecord.id.in_(list(sent)),
                                                                                 QueryRecord.status.in_(("completed", "failed"))))}
            if len(done) == len(sent) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        server.terminate()
        worker.wait()
        server.wait()
    times = sorted((_utc(r.completed_at) - sent[r.id]) * 1000 for r in done.values() if r.status == "completed")
    return {"rate_per_s": rate, "queries": len(sent), "completed": len(times), "failed": sum(r.status == "failed" for r in done.values()),
            "median_ms": round(statistics.median(times), 1) if times else None,
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1) if times else None, "target_median_ms": 100}


def _utc(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def main(argv: list[str] | None = None) -> dict:
    """Train small models in a temporary home, then measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-latency", action="store_true", help="measure the throughput only")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="leaseora-bench-worker-"))
    runtime = Runtime.open(Settings(LEASEORA_HOME=str(home), LEASEORA_SECRET_KEY="bench"))
    try:
        load_demo_data(runtime, n_properties=1500, say=lambda _: None)
        train_all(runtime.session_factory, settings=runtime.settings, progress=lambda _: None)
        report = {"throughput": throughput(runtime, args.jobs)}
        if not args.no_latency:
            report["latency"] = latency(runtime, home, rate=args.rate, seconds=args.seconds)
    finally:
        set_runtime(None)
        runtime.close()
    if "latency" in report:  # the committed results are complete runs only
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2))
    t = report["throughput"]
    print(f"worker: {t['noop_jobs_per_s']:.0f} no-op jobs/s; new questions {t['new_question_jobs_per_s']:.0f} jobs/s, ratio "
          f"{t['ratio_new']:.2f}; repeated questions {t['repeated_question_jobs_per_s']:.0f} jobs/s, ratio {t['ratio_repeated']:.2f} "
          "(target >= 0.70)")
    if "latency" not in report:
        return report
    lat = report["latency"]
    print(f"latency at {lat['rate_per_s']:.0f} q/s: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms over {lat['queries']} queries "
          f"({lat['completed']} completed, {lat['failed']} failed; target median < 100 ms)")
    return report


if __name__ == "__main__":
    report = main(sys.argv[1:])
    ok = min(report["throughput"]["ratio_new"], report["throughput"]["ratio_repeated"]) >= 0.7
    if "latency" in report:
        ok = ok and (report["latency"]["median_ms"] or 1e9) < 100
    sys.exit(0 if ok else 1)
