"""The cron scheduler (RQ's own `CronScheduler`): it enqueues the nightly chain, and a sweep that re-enqueues
queries recorded while Redis was down. The jobs themselves run on the workers."""

from __future__ import annotations

import os

import redis
from rq.cron import CronScheduler

from insights import defaults
from insights.config import Settings
from insights.worker.tasks import requeue_stale_queries, run_nightly

#: Seconds between sweeps for queries that the database holds as waiting but Redis lost.
REQUEUE_INTERVAL = 60


def build_scheduler(connection: redis.Redis, settings: Settings, *, schedule: str | None = None) -> CronScheduler:
    """A scheduler with the nightly job (cron string, default `settings.nightly_cron`) and the requeue sweep."""
    scheduler = CronScheduler(connection=connection, name=f"leaseora-{os.getpid()}")
    scheduler.register(run_nightly, queue_name=defaults.PIPELINE_QUEUE, cron=schedule or settings.nightly_cron,
                       job_timeout=defaults.NIGHTLY_JOB_TIMEOUT, name="nightly")
    scheduler.register(requeue_stale_queries, queue_name=defaults.QUERY_QUEUE, interval=REQUEUE_INTERVAL,
                       job_timeout=60, name="requeue-stale-queries")
    return scheduler
