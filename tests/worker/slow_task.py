"""A job for the crash test: the first attempt takes long enough for the test to kill its worker."""

from __future__ import annotations

import time

from insights.worker.context import current_runtime
from insights.worker.tasks import answer_query


def slow_then_answer(query_id: str) -> str:
    """First attempt: flag Redis and sleep (the query shows as `processing`); later attempts answer at once."""
    runtime = current_runtime()
    if runtime.redis.set(f"test:slow:{query_id}", "1", nx=True):
        time.sleep(60)
    return answer_query(query_id)
