"""The portfolio endpoints: properties (upsert, list, prediction) and rent observations for the nightly ingest."""

from __future__ import annotations

import shutil

from sqlalchemy import func, select

from insights.storage.tables import Listing
from pipelines.nightly import run_nightly
from tests.factories import make_key

FLAT = {"property_id": "prop_12345", "city": "Berlin", "property_type": "apartment", "bedrooms": 2, "size_sqm": 68}


def test_properties_are_upserted_listed_and_predicted(client, session, settings, trained_models) -> None:
    shutil.copytree(trained_models, settings.models_dir, dirs_exist_ok=True)
    key = make_key(session, settings)
    created = client.post("/ai/properties", json={"properties": [FLAT]}, headers=key.headers)
    assert created.status_code == 200 and created.json()["created"] == 1
    again = client.post("/ai/properties", json={"properties": [{**FLAT, "size_sqm": 70}]}, headers=key.headers)
    assert again.json()["updated"] == 1
    page = client.get("/ai/properties", headers=key.headers).json()
    assert page["meta"]["total_count"] == 1 and page["data"][0]["size_sqm"] == 70
    prediction = client.get("/ai/properties/prop_12345/prediction", headers=key.headers).json()
    numbers = prediction["prediction"]
    assert numbers["rent_low"] < numbers["rent_estimate"] < numbers["rent_high"]
    assert 0 <= numbers["confidence_score"] <= 1 and prediction["model_version"]


def test_another_accounts_property_is_not_found_and_bad_rows_are_refused(client, session, settings) -> None:
    owner, other = make_key(session, settings, account="owner"), make_key(session, settings, account="other")
    client.post("/ai/properties", json={"properties": [FLAT]}, headers=owner.headers)
    response = client.get("/ai/properties/prop_12345/prediction", headers=other.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_not_found"
    bad = client.post("/ai/properties", json={"properties": [{**FLAT, "size_sqm": -3}]}, headers=owner.headers)
    assert bad.status_code == 422 and "size_sqm" in bad.json()["error"]["message"]
    reader = make_key(session, settings, account="reader", permissions=["properties:read"])
    assert client.post("/ai/properties", json={"properties": [FLAT]}, headers=reader.headers).status_code == 403


def test_hostile_portfolio_requests_are_refused_in_the_error_format(client, session, settings) -> None:
    key = make_key(session, settings)
    twice = client.post("/ai/properties", json={"properties": [FLAT, {**FLAT, "city": "Paris"}]}, headers=key.headers)
    assert twice.status_code == 422 and "given twice" in twice.json()["error"]["message"]
    for content in (b'{"properties": [{"property_id": "p1", "city": "Berlin", "size_sqm": Infinity}]}',
                    b'{"properties": [{"property_id": "p1", "city": "Berlin", "extra": {"x": NaN}}]}',
                    b'{"listings": [{"city": "Berlin", "monthly_rent": Infinity}]}',
                    b'{"listings": [{"city": "Berlin", "monthly_rent": true}]}',  # not a rent of 1
                    b'{"properties": [{"property_id": "p1", "city": "Berlin", "bedrooms": false}]}'):
        path = "/ai/listings" if b"listings" in content else "/ai/properties"
        response = client.post(path, content=content, headers={**key.headers, "Content-Type": "application/json"})
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", content
    for row in ({**FLAT, "city": "Ber\u0000lin"}, {**FLAT, "extra": {"note\u0000": "x"}}):
        response = client.post("/ai/properties", json={"properties": [row]}, headers=key.headers)
        assert response.status_code == 422 and "NUL" in response.json()["error"]["message"]
    response = client.get("/ai/properties/prop%00/prediction", headers=key.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_not_found"
    huge = client.get("/ai/properties?page=461168601842738792", headers=key.headers)
    assert huge.status_code == 422 and huge.json()["error"]["code"] == "validation_error"
    assert client.get("/ai/properties", headers=key.headers).json()["meta"]["total_count"] == 0  # nothing was stored


def test_the_same_new_properties_sent_at_once_are_stored_once(runtime, session, settings) -> None:
    """Requests creating overlapping new properties at the same moment: a loser's insert hits the unique
    key, and its batch is applied again over what is stored instead of failing."""
    import threading

    from insights.storage import properties_repo
    from insights.storage.tables import PropertyRow
    from sqlalchemy import func, select

    account_id = make_key(session, settings).account_id
    rows = [{**FLAT, "property_id": f"race_{i}"} for i in range(60)]
    senders = 8
    barrier, results, errors = threading.Barrier(senders), [], []

    def send(k: int) -> None:  # each sends 40 of the 60, starting at its own offset
        batch = [rows[(k * 7 + j) % len(rows)] for j in range(40)]
        with runtime.session_factory() as own:
            barrier.wait()
            try:
                results.append(properties_repo.upsert_properties(own, account_id=account_id, rows=batch))
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r["created"] for r in results) == 60  # each property created by exactly one request
    assert session.scalar(select(func.count()).select_from(PropertyRow).where(PropertyRow.account_id == account_id)) == 60


def test_listings_sent_through_the_api_are_ingested_by_the_nightly_run(runtime, client, session, settings) -> None:
    key = make_key(session, settings)
    rows = [{"listing_id": f"api-{i}", "city": "Berlin", "size_sqm": 50 + i, "monthly_rent": 900 + 10 * i,
             "currency": "EUR", "listed_at": "2026-11-01"} for i in range(20)]
    response = client.post("/ai/listings", json={"listings": rows}, headers=key.headers)
    assert response.status_code == 202 and response.json()["accepted"] == 20
    assert client.post("/ai/listings", json={"listings": [{"city": "Berlin", "monthly_rent": -5}]},
                       headers=key.headers).status_code == 422
    result = run_nightly(runtime, say=lambda _: None, stages=("ingest",))
    assert result["status"] == "succeeded"
    assert session.scalar(select(func.count()).select_from(Listing)) == 20
    assert list((settings.inbox_dir / "done").iterdir())
