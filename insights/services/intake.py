"""Accepting queries in groups: one database transaction and one Redis round trip for many requests.

`POST /ai/query` must record the query (durably) and enqueue its RQ job before answering 202. Done
one request at a time, the commit and the Redis round trips dominate the cost of the endpoint. The
intake thread takes every submission waiting at that moment, inserts them in one transaction,
enqueues their jobs in one Redis pipeline, and only then resolves each caller's future: the same
guarantees per query (recorded, then enqueued, before 202), with the fixed costs shared. With one
request in flight the group is that one request, so latency does not grow.

If Redis cannot be reached the queries stay recorded as `queued` (error `queue_unavailable`) and
each caller gets `ServiceUnavailable`; `requeue_pending` puts them on the queue once Redis is back.
"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from insights import defaults
from insights.errors import ServiceUnavailable
from insights.storage.queries_repo import Pending, new_query_id
from insights.storage.tables import QueryRecord, utcnow
from insights.worker.enqueue import enqueue_query_job
from insights.worker.queues import queue

log = logging.getLogger(__name__)

MAX_GROUP = 256
"""Most submissions written in one transaction."""


@dataclass
class _Submission:
    account_id: int | None
    text: str
    webhook_url: str | None
    future: Future[str] = field(default_factory=Future)


class QueryIntake:
    """A background thread that records and enqueues submitted queries in groups."""

    def __init__(self, session_factory: sessionmaker[Session], connection: Callable[[], redis.Redis]) -> None:
        self.session_factory = session_factory
        self.connection = connection  # looked up per group: the process may reconnect Redis
        self._pending: queue_module.SimpleQueue[_Submission | None] = queue_module.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="query-intake", daemon=True)
        self._thread.start()

    def submit(self, *, account_id: int | None, text: str, webhook_url: str | None) -> Future[str]:
        """Queue a query for recording and enqueueing; the future gives its id (or the error)."""
        submission = _Submission(account_id, text, webhook_url)
        self._pending.put(submission)
        return submission.future

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        self._pending.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._pending.get_nowait()
                except queue_module.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._process(group)
            if stop:
                return

    def _process(self, group: list[_Submission]) -> None:
        ids = [new_query_id() for _ in group]
        try:
            self._record(group, ids)
        except Exception as exc:  # the database refused: nobody was accepted
            log.exception("recording %d queries failed", len(group))
            for submission in group:
                submission.future.set_exception(
                    exc if isinstance(exc, ServiceUnavailable) else ServiceUnavailable("the query could not be recorded; please retry", retry_after=2))
            return
        try:
            connection = self.connection()
            with connection.pipeline(transaction=True) as pipe:
                rq_queue = queue(connection, defaults.QUERY_QUEUE)
                for submission, query_id in zip(group, ids, strict=True):
                    pending = Pending(text=submission.text, webhook_url=submission.webhook_url, account_id=submission.account_id)
                    enqueue_query_job(rq_queue, query_id, pending, pipeline=pipe)
                pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            self._mark_waiting(ids)
            for submission in group:
                submission.future.set_exception(ServiceUnavailable(
                    "the query queue is unavailable; the query was recorded and will be processed once it is back", retry_after=5))
            return
        for submission, query_id in zip(group, ids, strict=True):
            submission.future.set_result(query_id)

    def _record(self, group: list[_Submission], ids: list[str]) -> None:
        now = utcnow()
        rows = [{"id": query_id, "account_id": s.account_id, "text": s.text, "webhook_url": s.webhook_url,
                 "status": "queued", "attempts": 0, "created_at": now} for s, query_id in zip(group, ids, strict=True)]
        with self.session_factory.begin() as session:  # Core insert: the ORM's bulk path costs half as much again
            session.connection().execute(QueryRecord.__table__.insert(), rows)

    def _mark_waiting(self, ids: list[str]) -> None:
        try:
            with self.session_factory.begin() as session:
                session.execute(update(QueryRecord).where(QueryRecord.id.in_(ids))
                                .values(error_code="queue_unavailable", error_message="waiting for the queue to come back"))
        except Exception:  # the rows are recorded as queued either way; the sweep will find them
            log.exception("could not annotate queries waiting for the queue")
