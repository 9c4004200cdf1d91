"""The query record: one outcome per query, never overwritten by a second attempt."""

from __future__ import annotations

from insights.storage import queries_repo

PAYLOAD = {"interpretation": {"intent": "rent_estimate", "entities": {}, "confidence": 0.9}, "answer": "About 1,000 EUR.",
           "result": {"status": "ok"}, "confidence_score": 0.8, "model_version": "v1", "sources": []}


def test_an_answer_is_stored_once(session) -> None:
    record = queries_repo.create_query(session, account_id=None, text="rent in Berlin?", webhook_url=None)
    assert queries_repo.pending_query(session, query_id=record.id) == queries_repo.Pending("rent in Berlin?", None, None)
    assert queries_repo.mark_completed(session, query_id=record.id, payload=PAYLOAD, attempts=2)
    # A racing second attempt neither overwrites the answer nor counts as stored (so it sends no webhook).
    assert not queries_repo.mark_completed(session, query_id=record.id, payload={**PAYLOAD, "answer": "other"})
    assert not queries_repo.mark_failed(session, query_id=record.id, code="server_error", message="late failure")
    assert queries_repo.pending_query(session, query_id=record.id) is None
    session.expire_all()
    stored = queries_repo.get_query(session, query_id=record.id, account_id=None)
    assert (stored.status, stored.answer, stored.attempts) == ("completed", "About 1,000 EUR.", 2)
    assert stored.completed_at is not None


def test_a_waiting_query_shows_processing_only_while_a_worker_has_it(session) -> None:
    record = queries_repo.create_query(session, account_id=None, text="rent in Berlin?", webhook_url=None)
    assert queries_repo.query_to_dict(record)["status"] == "queued"
    assert queries_repo.query_to_dict(record, running=True)["status"] == "processing"
    queries_repo.mark_failed(session, query_id=record.id, code="validation_error", message="no")
    session.expire_all()
    failed = queries_repo.get_query(session, query_id=record.id, account_id=None)
    assert queries_repo.query_to_dict(failed, running=True)["status"] == "failed"
