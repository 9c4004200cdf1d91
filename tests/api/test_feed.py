"""The public insights feed: format, pagination, filters, caching with ETag, refresh on publish, 422s."""

from __future__ import annotations

from datetime import date

import pytest

from insights.api.feed_cache import FeedCache, bump_version
from insights.feed.generate import InsightRecord
from insights.feed.store import replace_insights


def record(city: str, value: float, confidence: float, *, kind: str = "rent_growth", sample: int = 50) -> InsightRecord:
    return InsightRecord(
        kind=kind, city=city, country="Germany", segment=None, metric="yoy_growth", value=value, low=value - 0.01,
        high=value + 0.01, unit="ratio", period_start=date(2025, 10, 1), period_end=date(2026, 10, 31),
        sample_size=sample, direction="up" if value > 0 else "down", method="hedonic time-dummy index",
        confidence_score=confidence, text=f"{city} rental market showing {value:.1%} growth year over year",
    )


@pytest.fixture(autouse=True)
def fresh_versions(client) -> None:
    """Check the publish version on every request, so a publish shows at once (production trusts it for 1 s)."""
    client.app.state.feed_cache = FeedCache(version_ttl=0)


def publish(session, redis_client, records, run_id: str) -> None:
    replace_insights(session, insights=records, run_id=run_id, confidence_floor=0.6, min_market_size=10)
    bump_version(redis_client, run_id)


def test_feed_lists_published_insights_newest_first_in_the_seed_format(client, session, redis_client) -> None:
    publish(session, redis_client, [record("Berlin", 0.032, 0.9), record("Munich", 0.01, 0.7),
                                    record("Hamburg", 0.02, 0.5), record("Tiny", 0.05, 0.95, sample=4)], "run1")
    response = client.get("/ai/insights")
    assert response.status_code == 200
    items = response.json()
    assert isinstance(items, list)
    assert {i["city"] for i in items} == {"Berlin", "Munich"}  # below the confidence floor / privacy floor: stored, not published
    first = items[0]
    assert {"id", "insight", "confidence_score", "created_at", "kind", "city", "segment", "metric", "value", "low", "high",
            "unit", "period_start", "period_end", "sample_size", "direction", "method"} <= set(first)
    assert first["created_at"].endswith("Z")
    assert response.headers["Cache-Control"].startswith("public")


def test_pages_filters_and_meta(client, session, redis_client) -> None:
    publish(session, redis_client, [record(f"City{i}", 0.01 * i, 0.6 + i / 100) for i in range(25)], "run1")
    page = client.get("/ai/insights", params={"page": 2, "limit": 10}).json()
    assert page["meta"] == {"current_page": 2, "total_pages": 3, "total_count": 25, "limit": 10}
    assert len(page["data"]) == 10
    assert len(client.get("/ai/insights").json()) == 20  # default limit
    only = client.get("/ai/insights", params={"city": "City3"}).json()
    assert [i["city"] for i in only] == ["City3"]
    confident = client.get("/ai/insights", params={"min_confidence": 0.8, "limit": 100}).json()
    assert confident and all(i["confidence_score"] >= 0.8 for i in confident)
    assert client.get("/ai/insights", params={"kind": "nothing"}).json() == []


def test_a_publish_reaches_a_warm_cache_within_its_version_ttl(client, session, redis_client) -> None:
    client.app.state.feed_cache = FeedCache(version_ttl=0.3)
    publish(session, redis_client, [record("Berlin", 0.032, 0.9)], "run1")
    assert client.get("/ai/insights").json()[0]["value"] == 0.032
    publish(session, redis_client, [record("Berlin", 0.041, 0.9)], "run2")
    import time

    time.sleep(0.35)
    assert client.get("/ai/insights").json()[0]["value"] == 0.041


def test_etag_gives_304_until_the_next_publish(client, session, redis_client) -> None:
    publish(session, redis_client, [record("Berlin", 0.032, 0.9)], "run1")
    first = client.get("/ai/insights")
    etag = first.headers["ETag"]
    again = client.get("/ai/insights", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    publish(session, redis_client, [record("Berlin", 0.041, 0.9)], "run2")
    fresh = client.get("/ai/insights", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()[0]["value"] == 0.041


def test_invalid_parameters_get_422_in_the_error_format(client) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"page": "x"}, {"min_confidence": 2}, {"min_confidence": "high"},
                   {"city": "Ber\x00lin"}, {"kind": "\x00"}):  # NUL: PostgreSQL could not even compare it
        response = client.get("/ai/insights", params=params)
        assert response.status_code == 422, params
        body = response.json()
        assert body["success"] is False and body["error"]["code"] == "validation_error"
        assert body["error"]["details"]["errors"]


def test_feed_is_documented_in_openapi(client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/ai/insights"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"page", "limit", "city", "kind", "min_confidence"}
    assert "FeedInsight" in spec["components"]["schemas"]
