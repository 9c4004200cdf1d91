"""RQ tasks. Thin: they take ids and primitives, open their own session, and call the services."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from rq import get_current_job

from insights import defaults
from insights.errors import LeaseoraError
from insights.storage import queries_repo
from insights.storage.tables import utcnow
from insights.worker.context import current_runtime, model_cache

log = logging.getLogger(__name__)


def answer_query(query_id: str, text: str | None = None, account_id: int | None = None,
                 webhook_url: str | None = None) -> str:
    """Interpret and answer a query, store the outcome, and schedule its webhook.

    The job carries the question (see `enqueue_query_job`), so the only database write is the
    outcome; while the job runs, RQ's job status is what `GET /ai/query/{id}` reports as
    `processing`. A job given only the id reads the rest from the database.
    """
    from insights.query.answer import AnswerContext, answer_question

    runtime = current_runtime()
    started_at = utcnow()
    if text is None:
        with runtime.session_factory() as session:
            pending = queries_repo.pending_query(session, query_id=query_id)
        if pending is None:
            return "skipped"  # already answered (a retry raced a success) or deleted
        text, webhook_url, account_id = pending.text, pending.webhook_url, pending.account_id
    context = AnswerContext(
        settings=runtime.settings,
        session_factory=runtime.session_factory,
        models=model_cache(runtime.settings.models_dir),
        account_id=account_id,
    )
    try:
        payload = answer_question(text, context)
    except LeaseoraError as exc:  # a reason a person can act on; retrying would not change it
        with runtime.session_factory() as session:
            stored = queries_repo.mark_failed(session, query_id=query_id, code=exc.code, message=exc.message,
                                              attempts=_attempt())
        if stored:
            _schedule_webhook(query_id, webhook_url)
        return "failed"
    with runtime.engine.connect() as connection:
        stored = queries_repo.mark_completed(connection, query_id=query_id, payload=payload, started_at=started_at,
                                             attempts=_attempt())
    if not stored:
        return "skipped"  # another attempt finished it first: its answer and webhook stand
    _schedule_webhook(query_id, webhook_url)
    return "completed"


def _attempt() -> int:
    """Which attempt of its RQ job this is (1 when not run by a worker)."""
    job = get_current_job()
    if job is None or job.retries_left is None:
        return 1
    return defaults.QUERY_JOB_RETRIES - job.retries_left + 1


def query_job_failed(job: Any, connection: Any, exc_type: type[BaseException] | None,
                     exc_value: BaseException | None, traceback: TracebackType | None) -> None:
    """RQ failure callback (also called for a job whose worker died): record why, final once no retry is left."""
    final = not (job.retries_left and job.retries_left > 0)
    if exc_type is not None and exc_type.__name__ == "AbandonedJobError":
        message = "the worker processing this query stopped unexpectedly"
    elif exc_type is not None and exc_type.__name__ == "JobTimeoutException":
        message = f"answering took longer than {defaults.QUERY_JOB_TIMEOUT} s"
    else:
        message = "an internal error occurred while answering; it has been logged"
    log.warning("query job %s failed (%s: %s), final=%s", job.id, getattr(exc_type, "__name__", None), exc_value, final)
    runtime = current_runtime()
    with runtime.session_factory() as session:
        queries_repo.mark_failed(session, query_id=job.id, code="server_error", message=message, final=final)
    if final:
        with runtime.session_factory() as session:
            record = session.get(queries_repo.QueryRecord, job.id)
            webhook_url = record.webhook_url if record else None
        _schedule_webhook(job.id, webhook_url)


def _schedule_webhook(query_id: str, webhook_url: str | None) -> None:
    if not webhook_url:
        return
    from insights.services.webhooks import retry_policy
    from insights.worker.queues import queue

    runtime = current_runtime()
    with runtime.session_factory() as session:
        event = queries_repo.add_webhook_event(session, query_id=query_id, url=webhook_url)
    queue(runtime.redis, defaults.WEBHOOK_QUEUE).enqueue(
        "insights.worker.tasks.deliver_webhook", event.id, retry=retry_policy(), job_timeout=60
    )


def deliver_webhook(event_id: int) -> str:
    """POST a finished query to its webhook; raises on failure so that RQ retries with backoff."""
    from insights.services.webhooks import deliver

    runtime = current_runtime()
    outcome = deliver(runtime.session_factory, event_id=event_id, secret=runtime.settings.resolved_secret())
    outcome.raise_for_retry()  # RQ's Retry runs the job again with backoff
    return "delivered" if outcome.delivered else "gave_up"


def run_nightly() -> dict[str, Any]:
    """The nightly chain (ingest, train, gate, promote, publish, refresh), run on a worker."""
    from pipelines.nightly import run_nightly as run

    return run(current_runtime())


def requeue_stale_queries() -> int:
    """Put queries that the database holds as waiting, but Redis lost or never got, back on the queue."""
    from insights.worker.enqueue import requeue_pending

    runtime = current_runtime()
    with runtime.session_factory() as session:
        return requeue_pending(runtime.redis, session)
