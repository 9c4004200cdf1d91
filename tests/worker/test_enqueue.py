"""A query accepted while Redis is down is kept in the database and enqueued once Redis is back."""

from __future__ import annotations

import pytest
from rq import Queue

from insights.errors import ServiceUnavailable
from insights.runtime import redis_client
from insights.storage import queries_repo
from insights.worker.enqueue import enqueue_query, requeue_pending


def test_query_survives_a_redis_outage(session, redis_client) -> None:
    record = queries_repo.create_query(session, account_id=None, text="rent in Berlin?", webhook_url=None)
    with pytest.raises(ServiceUnavailable):
        enqueue_query(redis_client_down(), session, query_id=record.id)
    session.expire_all()
    assert queries_repo.get_query(session, query_id=record.id, account_id=None).status == "queued"
    assert requeue_pending(redis_client, session, older_than_seconds=0) == 1
    assert Queue("leaseora-queries", connection=redis_client).job_ids == [record.id]
    # Already on the queue: a second sweep does not enqueue it twice.
    assert requeue_pending(redis_client, session, older_than_seconds=0) == 0


def redis_client_down():
    return redis_client("redis://127.0.0.1:1/0")
