"""Queries end to end: the API records and enqueues, a real RQ worker answers, webhooks are signed and
delivered to a local receiver, failures say why, and a killed worker loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from rq import Callback, Queue, Retry, SimpleWorker
from rq.registry import StartedJobRegistry

from insights import defaults
from insights.services.webhooks import signing_secret, verify
from insights.storage import queries_repo
from insights.worker.context import set_runtime
from tests.factories import make_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(runtime, trained_models):
    """The test's home with the trained champions, and the worker context on the test's runtime."""
    shutil.copytree(trained_models, runtime.settings.models_dir, dirs_exist_ok=True)
    set_runtime(runtime)
    yield runtime
    set_runtime(None)


def work_off(redis_client, *names: str) -> None:
    queues = [Queue(n, connection=redis_client) for n in names or (defaults.QUERY_QUEUE,)]
    SimpleWorker(queues, connection=redis_client).work(burst=True)


def ask(client, key, text: str, **extra) -> str:
    response = client.post("/ai/query", json={"query": text, **extra}, headers=key.headers)
    assert response.status_code == 202, response.text
    return response.json()["query_id"]


def test_a_question_is_answered_by_a_real_worker(served, client, session, settings, redis_client) -> None:
    key = make_key(session, settings)
    query_id = ask(client, key, "What is the optimal rent price for a 2-bedroom apartment in Berlin?")
    assert client.get(f"/ai/query/{query_id}", headers=key.headers).json()["status"] == "queued"
    work_off(redis_client)
    body = client.get(f"/ai/query/{query_id}", headers=key.headers).json()
    assert body["status"] == "completed", body
    assert body["interpretation"]["intent"] == "optimal_rent"
    assert body["interpretation"]["entities"]["city"] == "Berlin"
    assert body["answer"] and "EUR" in body["answer"]
    assert body["model_version"] and body["sources"]
    assert 0 <= body["confidence_score"] <= 1
    json.dumps(body, allow_nan=False)


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    failures_left = 1

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.failures_left > 0:  # the first delivery fails: the job must retry
            _Receiver.failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_webhook_is_signed_retried_and_delivered(served, client, session, settings, redis_client) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = make_key(session, settings)
        url = f"http://127.0.0.1:{server.server_port}/hook"
        query_id = ask(client, key, "how much rent for a 3 bedroom house in Hamburg?", webhook_url=url)
        work_off(redis_client)
        work_off(redis_client, defaults.WEBHOOK_QUEUE)  # first attempt: 503, scheduled for a retry
        assert not _Receiver.received
        scheduled = Queue(defaults.WEBHOOK_QUEUE, connection=redis_client).scheduled_job_registry
        for job_id in scheduled.get_job_ids():  # the retry is due later; bring it forward
            scheduled.remove(job_id)
            Queue(defaults.WEBHOOK_QUEUE, connection=redis_client).enqueue_job(
                Queue(defaults.WEBHOOK_QUEUE, connection=redis_client).fetch_job(job_id))
        work_off(redis_client, defaults.WEBHOOK_QUEUE)
        assert len(_Receiver.received) == 1
        headers, body = _Receiver.received[0]
        secret = signing_secret(settings.resolved_secret(), account_id=key.account_id)
        assert verify(secret, headers["X-Leaseora-Signature"], body)
        assert not verify(secret, headers["X-Leaseora-Signature"], body + b" ")
        event = json.loads(body)
        assert event["type"] == "query.completed" and event["data"]["query_id"] == query_id
    finally:
        server.shutdown()


def test_without_a_model_the_query_fails_with_a_reason(runtime, client, session, settings, redis_client) -> None:
    set_runtime(runtime)
    try:
        key = make_key(session, settings)
        query_id = ask(client, key, "rent for a 2 bed flat in Berlin?")
        work_off(redis_client)
    finally:
        set_runtime(None)
    body = client.get(f"/ai/query/{query_id}", headers=key.headers).json()
    assert body["status"] == "failed"
    assert "no rent model" in body["error"]["message"]


def test_a_killed_worker_loses_no_query(served, client, session, settings, redis_client) -> None:
    key = make_key(session, settings, plan="enterprise")  # polled every 0.2 s
    record = queries_repo.create_query(session, account_id=key.account_id, text="rent for a studio in Munich", webhook_url=None)
    rq_queue = Queue(defaults.QUERY_QUEUE, connection=redis_client)
    rq_queue.enqueue("tests.worker.slow_task.slow_then_answer", record.id, job_id=record.id, job_timeout=120,
                     retry=Retry(max=2), on_failure=Callback("insights.worker.tasks.query_job_failed"))
    env = {**os.environ, "LEASEORA_HOME": str(settings.home), "DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.redis_url, "LEASEORA_SECRET_KEY": "test-secret-not-for-production"}
    worker = subprocess.Popen([sys.executable, "-m", "insights.cli", "worker"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while client.get(f"/ai/query/{record.id}", headers=key.headers).json()["status"] != "processing":
            assert time.monotonic() < deadline, "the worker never started the job"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies mid-job, without any clean-up
        worker.wait()
    registry = StartedJobRegistry(queue=rq_queue)
    assert registry.get_job_ids(cleanup=False) == [record.id]
    registry.cleanup(timestamp=time.time() + 3600)  # what RQ's maintenance does once the job's lease has expired
    assert rq_queue.job_ids == [record.id]  # retried, not lost
    work_off(redis_client)
    session.expire_all()
    body = client.get(f"/ai/query/{record.id}", headers=key.headers).json()
    assert body["status"] == "completed" and body["answer"]
