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


def test_the_worker_stores_through_a_plain_connection_and_never_over_a_finished_query(session) -> None:
    answered = queries_repo.create_query(session, account_id=None, text="rent in Berlin?", webhook_url=None)
    failed = queries_repo.create_query(session, account_id=None, text="rent in Paris?", webhook_url=None)
    queries_repo.mark_failed(session, query_id=failed.id, code="validation_error", message="no")
    with session.get_bind().connect() as connection:
        assert queries_repo.mark_completed(connection, query_id=answered.id, payload=PAYLOAD)
        assert not queries_repo.mark_completed(connection, query_id=answered.id, payload={**PAYLOAD, "answer": "other"})
        assert not queries_repo.mark_completed(connection, query_id=failed.id, payload=PAYLOAD)
    session.expire_all()
    assert (queries_repo.get_query(session, query_id=answered.id, account_id=None).answer) == "About 1,000 EUR."
    assert queries_repo.get_query(session, query_id=failed.id, account_id=None).status == "failed"
