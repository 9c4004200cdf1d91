"""Apps the API benchmarks serve: the real app plus bare FastAPI endpoints to compare against, on one server.

The bare endpoints stand for "the least FastAPI can do" for the same response: a constant list of the
same size as the feed's page, and a POST with the same request model that only returns a constant.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from insights.api.app import create_app
from insights.api.schemas import QueryIn
from insights.config import get_settings


def bench_app() -> FastAPI:
    """The service's app (settings from the environment) with `/bare/insights` and `/bare/query` added."""
    app = create_app(get_settings())
    page: list[dict[str, Any]] = json.loads(os.environ.get("BENCH_FEED_PAGE", "[]"))

    @app.get("/bare/insights")
    def bare_insights() -> list[dict[str, Any]]:
        return page

    @app.post("/bare/query", status_code=202)
    def bare_query(body: QueryIn) -> dict[str, str]:
        return {"status": "Processing query...", "query_id": "q_0", "status_url": "/ai/query/q_0"}

    return app
