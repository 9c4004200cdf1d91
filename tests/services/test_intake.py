"""Grouped query intake: every accepted query is recorded and enqueued; a Redis outage loses none."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from rq import Queue
from sqlalchemy import select

from insights.errors import ServiceUnavailable
from insights.runtime import redis_client as make_client
from insights.services.intake import QueryIntake
from insights.storage.tables import QueryRecord
from insights.worker.enqueue import requeue_pending


def test_concurrent_submissions_are_all_recorded_and_enqueued(session_factory, redis_client) -> None:
    intake = QueryIntake(session_factory, lambda: redis_client)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = list(pool.map(lambda i: intake.submit(account_id=None, text=f"rent in Berlin {i}", webhook_url=None), range(200)))
        ids = [f.result(timeout=30) for f in futures]
    finally:
        intake.close()
    assert len(set(ids)) == 200
    with session_factory() as session:
        stored = set(session.scalars(select(QueryRecord.id).where(QueryRecord.status == "queued")))
    assert stored == set(ids)
    assert set(Queue("leaseora-queries", connection=redis_client).job_ids) == set(ids)


def test_redis_outage_keeps_the_query_for_later(session_factory, redis_client) -> None:
    down = make_client("redis://127.0.0.1:1/0")
    intake = QueryIntake(session_factory, lambda: down)
    try:
        future = intake.submit(account_id=None, text="rent in Warsaw", webhook_url=None)
        with pytest.raises(ServiceUnavailable):
            future.result(timeout=30)
    finally:
        intake.close()
    with session_factory() as session:
        record = session.scalars(select(QueryRecord)).one()
        assert record.status == "queued" and record.error_code == "queue_unavailable"
        assert requeue_pending(redis_client, session, older_than_seconds=0) == 1
    assert Queue("leaseora-queries", connection=redis_client).job_ids == [record.id]
