"""The publish stage: generate market insights from the database and replace the published set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from insights.api.feed_cache import bump_version
from insights.feed.generate import generate_insights
from insights.feed.store import replace_insights
from insights.runtime import Runtime
from insights.storage import ingest_repo

log = logging.getLogger(__name__)


def publish_insights(runtime: Runtime, *, run_id: str, say: Callable[[str], Any] = log.info) -> dict[str, Any]:
    """Generate insights for every market and period, store them (history kept) and refresh the feed cache."""
    settings = runtime.settings
    with runtime.session_factory() as session:
        listings = ingest_repo.load_listings(session)
        leases = ingest_repo.load_leases(session)
        calendar = ingest_repo.load_calendar(session)
        properties = ingest_repo.load_properties(session)
    records = generate_insights(
        listings, leases=leases if len(leases) else None, calendar=calendar if len(calendar) else None,
        properties=properties if len(properties) else None, min_market_size=settings.min_market_size,
    )
    with runtime.session_factory() as session:
        counts = replace_insights(session, insights=records, run_id=run_id,
                                  confidence_floor=settings.publish_confidence_floor, min_market_size=settings.min_market_size)
    try:
        bump_version(runtime.redis, run_id)
    except Exception as exc:  # the feed still serves from the database; caches refresh on the next bump
        log.warning("could not bump the feed version: %s", exc)
    say(f"insights: {counts.stored} stored, {counts.published} published, {counts.retired} retired")
    return {"generated": len(records), "stored": counts.stored, "published": counts.published, "retired": counts.retired}
