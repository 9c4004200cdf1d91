"""The RQ queues of the service and the worker process that works them off."""

from __future__ import annotations

import logging

import redis
from rq import Queue, SimpleWorker

from insights import defaults

#: Queues a worker listens to, most urgent first: queries are people waiting.
WORKER_QUEUES = (defaults.QUERY_QUEUE, defaults.WEBHOOK_QUEUE, defaults.PIPELINE_QUEUE)


def queue(connection: redis.Redis, name: str = defaults.QUERY_QUEUE) -> Queue:
    """An RQ queue on `connection`."""
    return Queue(name, connection=connection)


def make_worker(connection: redis.Redis, *, queues: tuple[str, ...] = WORKER_QUEUES, name: str | None = None) -> SimpleWorker:
    """A worker that runs jobs in its own process (no fork per job).

    SimpleWorker keeps the loaded champion models in memory across jobs, which is what makes a
    query take milliseconds; a job that hangs is still stopped by RQ's timeout, and a worker that
    dies leaves its job to be picked up again by the started-job registry's cleanup.
    """
    return SimpleWorker([queue(connection, q) for q in queues], connection=connection, name=name)


def run_worker(connection: redis.Redis, *, burst: bool = False, with_scheduler: bool = True) -> None:
    """Work the queues until stopped (or until empty with `burst`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    make_worker(connection).work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
