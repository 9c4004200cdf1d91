"""Putting work on the queues. The API uses this; it never runs a task itself."""

from __future__ import annotations

import redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.job import Job, JobStatus
from sqlalchemy.orm import Session

from insights import defaults
from insights.errors import ServiceUnavailable
from insights.storage import queries_repo
from insights.worker.queues import queue

#: Seconds between retries of a query whose job failed unexpectedly or whose worker died.
QUERY_RETRY_INTERVALS = [1, 5, 15]


def enqueue_query_job(rq_queue: Queue, query_id: str, query: queries_repo.Pending, *,
                      pipeline: Pipeline | None = None) -> None:
    """Put the job answering `query_id` on `rq_queue` (inside `pipeline` when given: the caller executes it).

    The job carries the question, account and webhook with the id, so that the worker reads nothing
    before answering; the database stays the record of the query and its outcome.
    """
    rq_queue.enqueue_call(
        "insights.worker.tasks.answer_query",
        args=(query_id,),
        kwargs={"text": query.text, "account_id": query.account_id, "webhook_url": query.webhook_url},
        job_id=query_id,
        timeout=defaults.QUERY_JOB_TIMEOUT,
        result_ttl=defaults.RESULT_TTL,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=defaults.QUERY_JOB_RETRIES, interval=QUERY_RETRY_INTERVALS),
        on_failure=Callback("insights.worker.tasks.query_job_failed"),
        pipeline=pipeline,
    )


def enqueue_query(connection: redis.Redis, session: Session, *, query_id: str) -> None:
    """Enqueue the job that answers `query_id` (the job id is the query id: enqueueing twice is harmless).

    When Redis cannot be reached the query stays recorded as `queued` with the reason, the caller
    gets `ServiceUnavailable` (503 with Retry-After), and `requeue_pending` puts it on the queue
    once Redis is back: nothing is dropped.
    """
    pending = queries_repo.pending_query(session, query_id=query_id)
    if pending is None:
        return  # finished meanwhile: nothing to do
    try:
        enqueue_query_job(queue(connection, defaults.QUERY_QUEUE), query_id, pending)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        queries_repo.mark_failed(
            session, query_id=query_id, code="queue_unavailable", message="waiting for the queue to come back", final=False
        )
        raise ServiceUnavailable("the query queue is unavailable; the query was recorded and will be processed once it is back", retry_after=5) from exc


def requeue_pending(connection: redis.Redis, session: Session, *, older_than_seconds: float = 30) -> int:
    """Re-enqueue queries still waiting in the database but missing from Redis (after an outage). Returns the count."""
    count = 0
    for query_id in queries_repo.queued_query_ids(session, older_than_seconds=older_than_seconds):
        try:
            status = Job.fetch(query_id, connection=connection).get_status()
        except Exception:  # NoSuchJobError, or a job whose payload expired
            status = None
        if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            continue
        enqueue_query(connection, session, query_id=query_id)
        count += 1
    return count


def job_running(connection: redis.Redis, query_id: str) -> bool:
    """Whether a worker has the query's job now (RQ's job status); False when Redis cannot say."""
    try:
        status = connection.hget(Job.key_for(query_id), "status")
    except redis.RedisError:
        return False
    return status is not None and status.decode() == JobStatus.STARTED.value
