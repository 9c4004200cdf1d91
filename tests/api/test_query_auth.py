"""Auth, permissions, validation, rate-limit headers and the 503 path of POST /ai/query (no worker needed)."""

from __future__ import annotations

from sqlalchemy import select

from insights.storage.tables import QueryRecord
from tests.factories import make_key

QUESTION = {"query": "What is the optimal rent price for a 2-bedroom apartment in Berlin?"}


def test_missing_and_wrong_keys_get_401(client) -> None:
    assert client.post("/ai/query", json=QUESTION).json()["error"]["code"] == "authentication_error"
    response = client.post("/ai/query", json=QUESTION, headers={"Authorization": "Bearer lsk_live_abcdefgh_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_error"


def test_key_without_permission_gets_403(client, session, settings) -> None:
    key = make_key(session, settings, permissions=["properties:read"])
    response = client.post("/ai/query", json=QUESTION, headers=key.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_accepted_query_is_recorded_enqueued_and_rate_limited(client, session, settings, redis_client) -> None:
    key = make_key(session, settings)
    response = client.post("/ai/query", json=QUESTION, headers=key.headers)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "Processing query..."
    assert response.headers["Location"] == body["status_url"] == f"/ai/query/{body['query_id']}"
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert int(response.headers["X-RateLimit-Remaining"]) == 149
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    record = session.scalars(select(QueryRecord)).one()
    assert record.status == "queued" and record.text == QUESTION["query"]
    from rq import Queue

    assert Queue("leaseora-queries", connection=redis_client).job_ids == [body["query_id"]]
    status = client.get(body["status_url"], headers=key.headers)
    assert status.status_code == 200 and status.json()["status"] == "queued"


def test_another_accounts_query_is_not_found(client, session, settings) -> None:
    owner = make_key(session, settings, account="owner")
    other = make_key(session, settings, account="other")
    query_id = client.post("/ai/query", json=QUESTION, headers=owner.headers).json()["query_id"]
    response = client.get(f"/ai/query/{query_id}", headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"
    assert "X-RateLimit-Remaining" in response.headers


def test_invalid_bodies_get_422_in_the_error_format(client, session, settings) -> None:
    key = make_key(session, settings)
    for body in ({}, {"query": ""}, {"query": "   "}, {"query": "\u200b\u200d\ufeff \u2060"}, {"query": "x" * 2001}, {"query": 5},
                 {"query": "rent in Berlin", "webhook_url": "ftp://example.com/x"}, {"query": "a", "extra": 1}):
        response = client.post("/ai/query", json=body, headers=key.headers)
        assert response.status_code == 422, body
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "validation_error"
    response = client.post("/ai/query", content=b"{not json", headers={**key.headers, "Content-Type": "application/json"})
    assert response.status_code == 422


def test_rate_limit_exceeded_gets_429_with_retry_after(client, session, settings) -> None:
    key = make_key(session, settings)  # standard: burst 150
    codes = [client.get("/ai/query/q_missing", headers=key.headers).status_code for _ in range(170)]
    assert codes[:150] == [404] * 150  # the burst
    # Tokens refill at 100/min (1.7/s) while the loop runs, so the first 429 comes a few requests later.
    assert 429 in codes[150:]
    response = client.get("/ai/query/q_missing", headers=key.headers)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_redis_down_answers_503_with_retry_after(runtime, client, session, settings) -> None:
    key = make_key(session, settings)
    from insights.runtime import redis_client

    # Down for both clients: the rate limiter's (asyncio) and the intake's.
    runtime.redis_url = "redis://127.0.0.1:1/0"
    runtime._redis = redis_client(runtime.redis_url)
    response = client.post("/ai/query", json=QUESTION, headers=key.headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "server_error"
    assert "rate limiter unavailable" in response.json()["error"]["message"]
    assert int(response.headers["Retry-After"]) >= 1


def test_a_revoked_key_stops_working_within_the_cache_ttl(client, session, settings) -> None:
    import time

    from insights.services.keys import VerifiedKeyCache, revoke_key

    client.app.state.key_cache = VerifiedKeyCache(ttl=0.5)
    key = make_key(session, settings)
    assert client.get("/ai/query/q_x", headers=key.headers).status_code == 404  # verified, now cached
    assert revoke_key(session, prefix=key.prefix)
    time.sleep(0.6)
    response = client.get("/ai/query/q_x", headers=key.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_error"


def test_the_key_is_checked_before_the_body(client, session, settings) -> None:
    """No key: 401 whatever the body. A valid key: an invalid body is 422 with the rate-limit headers,
    and it spends a token like any request (a malformed body is no way around the limit)."""
    for content in (b"{}", b"{not json", b"[]", b'{"query": 5}'):
        response = client.post("/ai/query", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_error", content
    key = make_key(session, settings, permissions=["properties:read"])
    response = client.post("/ai/query", content=b"{not json", headers={**key.headers, "Content-Type": "application/json"})
    assert response.status_code == 403  # the permission too comes before the body
    key = make_key(session, settings)
    remaining = []
    for content in (b"{not json", b"{}", b'{"query": 5}'):
        response = client.post("/ai/query", content=content, headers={**key.headers, "Content-Type": "application/json"})
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", content
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [149, 148, 147]


def test_bodies_over_the_limit_and_odd_methods_get_the_error_format(client, session, settings) -> None:
    key = make_key(session, settings)
    big = b'{"query": "' + b"x" * (70 * 1024) + b'"}'
    response = client.post("/ai/query", content=big, headers={**key.headers, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "validation_error"
    chunked = iter([b'{"query": "', b"x" * (40 * 1024), b"x" * (40 * 1024), b'"}'])  # no Content-Length
    response = client.post("/ai/query", content=chunked, headers={**key.headers, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["details"] == {}
    assert "larger than this endpoint accepts" in response.json()["error"]["message"]
    response = client.put("/ai/query", json=QUESTION, headers=key.headers)
    assert response.status_code == 405 and response.json()["error"]["code"] == "validation_error"
    assert "POST" in response.headers["Allow"]


def test_unparseable_webhook_urls_are_refused_not_crashed_on(client, session, settings) -> None:
    key = make_key(session, settings)
    for url in ("http://[::1/h", "http://[zz]/h", "http://exa\uff03mple.com/h", "http://ex\u2100ample.com/h",
                "http://xn--/h", "http://xn--a.com/h", "https://xn--ls8h.la/"):  # the last: IDNA 2008 has no emoji
        response = client.post("/ai/query", json={"query": "rent in Berlin", "webhook_url": url}, headers=key.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", url
        assert "webhook_url" in response.json()["error"]["message"]


def test_nul_characters_are_refused_before_the_database(client, session, settings) -> None:
    """PostgreSQL cannot store or compare a text holding NUL: refused as input, never a 500 (and never a
    failed group insert that would take other callers' queries with it)."""
    key = make_key(session, settings)
    response = client.post("/ai/query", json={"query": "rent in Berlin\u0000"}, headers=key.headers)
    assert response.status_code == 422 and "NUL" in response.json()["error"]["message"]
    assert client.post("/ai/query", json=QUESTION, headers=key.headers).status_code == 202
    response = client.get("/ai/query/q_abc%00", headers=key.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_not_found"
