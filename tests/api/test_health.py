"""`GET /health` and the platform's error format."""

from __future__ import annotations


def test_health_reports_redis_database_and_models(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["redis"]["status"] == "up"
    assert body["database"]["status"] == "up"
    # No model is trained in a fresh home: the service is up but degraded.
    assert body["status"] == "degraded"


def test_health_is_down_when_redis_is_unreachable(runtime, client) -> None:
    from insights.runtime import redis_client

    runtime._redis = redis_client("redis://127.0.0.1:1/0")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["redis"] == {"status": "down", "error": "ConnectionError"}  # public: no host or port


def test_unknown_route_uses_the_error_format(client) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "resource_not_found"
    assert set(body["error"]) == {"code", "message", "details"}
