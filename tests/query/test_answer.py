"""Answers to questions on generated demo data with a known truth.

One module fixture generates a small market (plus a deliberately thin city), ingests it into a private
home with SQLite, trains both models once and publishes insights; the tests then ask questions the
way the worker does. Every payload is checked for strict JSON safety. Only the worker test uses the
function-scoped test database (PostgreSQL when configured) and real Redis.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.data.schema import Kind
from insights.errors import ModelNotAvailable
from insights.feed.generate import generate_insights
from insights.feed.store import replace_insights
from insights.ml.occupancy import BASIS_CALENDAR
from insights.ml.registry import LoadedModel
from insights.query import answer as answer_module
from insights.query.answer import AnswerContext, answer_question
from insights.query.ask import ask, format_answer
from insights.storage import ingest_repo, queries_repo
from insights.storage.session import make_engine, make_session_factory, migrate
from insights.storage.tables import Account, Insight, PropertyPrediction, PropertyRow
from insights.worker.context import ModelCache
from pipelines.demo_data import AMENITY_PREMIA, CITIES, City, District, lease_up_probability, true_market_rent, write_demo_data
from pipelines.ingest import ingest_file
from pipelines.train import train_all

#: A market with so few units that the model must not give figures for it.
THIN_CITY = City("Leipzig", "Germany", 51.3397, 12.3731, 11.0, (
    District("Zentrum", 0.05, 0.0, 0.0, "04109"), District("Connewitz", -0.03, -3.0, 0.5, "04277")), weight=0.02)
#: A city whose insights are withdrawn after publishing, to test answers without insights.
NO_INSIGHTS_CITY = "Gdańsk"
FILES = (("properties", Kind.PROPERTIES), ("listings", Kind.LISTINGS), ("leases", Kind.LEASES), ("calendar", Kind.CALENDAR))


@dataclass
class Trained:
    """The module's home: settings, database, truth and the two accounts' ids."""

    settings: Settings
    session_factory: sessionmaker[Session]
    truth: dict[str, Any]
    owner: int
    stranger: int
    train_seconds: float

    def context(self, account_id: int | None = None) -> AnswerContext:
        return AnswerContext(settings=self.settings, session_factory=self.session_factory,
                             models=ModelCache(self.settings.models_dir), account_id=account_id)

    def ask(self, text: str, account_id: int | None = None) -> dict[str, Any]:
        payload = answer_question(text, self.context(account_id))
        assert_json_safe(payload)
        assert set(payload) == {"interpretation", "answer", "result", "confidence_score", "model_version", "sources"}
        return payload

    def rent_version(self) -> str:
        model = ModelCache(self.settings.models_dir).get("rent")
        assert model is not None
        return model.version


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    started = time.perf_counter()
    home = tmp_path_factory.mktemp("answer-home")
    settings = Settings(LEASEORA_HOME=str(home), DATABASE_URL=f"sqlite:///{home / 'var' / 'leaseora.db'}",
                        LEASEORA_SECRET_KEY="test-secret-not-for-production")
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    factory = make_session_factory(engine)
    paths = write_demo_data(home / "demo", seed=1, n_properties=600, end=date.today(), cities=[*CITIES, THIN_CITY])
    for name, kind in FILES:
        ingest_file(paths[name], kind=kind, settings=settings, session_factory=factory)
    train_all(factory, settings=settings, progress=lambda message: None)
    _publish_insights(factory, settings)
    owner, stranger = _accounts_and_properties(factory)
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    yield Trained(settings, factory, truth, owner, stranger, time.perf_counter() - started)
    engine.dispose()


def _publish_insights(factory: sessionmaker[Session], settings: Settings) -> None:
    with factory() as session:
        listings, leases = ingest_repo.load_listings(session), ingest_repo.load_leases(session)
        calendar, properties = ingest_repo.load_calendar(session), ingest_repo.load_properties(session)
    records = generate_insights(listings, leases=leases, calendar=calendar, properties=properties,
                                min_market_size=settings.min_market_size)
    with factory() as session:
        replace_insights(session, insights=records, run_id="test-run", confidence_floor=settings.publish_confidence_floor,
                         min_market_size=settings.min_market_size)
        session.execute(update(Insight).where(Insight.city == NO_INSIGHTS_CITY).values(published=False))
        # History and unpublished rows of a city with insights: neither may ever be shown.
        session.add_all([
            _insight("Hamburg", text="OLD insight of an earlier run", published=True, current=False),
            _insight("Hamburg", text="UNPUBLISHED insight below the gates", published=False, current=True),
        ])
        session.commit()


def _insight(city: str, *, text: str, published: bool, current: bool) -> Insight:
    return Insight(run_id="old", kind="rent_growth", city=city, country="Germany", segment=None,
                   metric="rent_index_growth_yoy", value=9.9, low=1.0, high=20.0, unit="%", sample_size=50,
                   direction="up", method="test", text=text, confidence_score=0.99, published=published, current=current)


def _accounts_and_properties(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as session:
        owner, stranger = Account(name="owner"), Account(name="stranger")
        session.add_all([owner, stranger])
        session.flush()
        session.add_all([
            _property("prop_12345", owner.id, district="Kreuzberg", size_sqm=83.0, bedrooms=2.0),
            _property("prop_55555", owner.id, district="Mitte", size_sqm=64.0, bedrooms=1.0),
            _property("prop_777", stranger.id, district="Neukölln", size_sqm=123.0, bedrooms=4.0),
        ])
        session.commit()
        return owner.id, stranger.id


def _property(property_id: str, account_id: int, *, district: str, size_sqm: float, bedrooms: float) -> PropertyRow:
    return PropertyRow(property_id=property_id, account_id=account_id, city="Berlin", country="Germany", district=district,
                       latitude=52.50, longitude=13.41, property_type="apartment", bedrooms=bedrooms, rooms=bedrooms + 1,
                       bathrooms=1.0, size_sqm=size_sqm, year_built=1995.0, furnished=False, parking=False, balcony=True,
                       elevator=False, pets_allowed=False, extra={}, row_hash=f"test-{property_id}", source="test")


def assert_json_safe(value: Any, path: str = "payload") -> None:
    """Only JSON types (exactly: no numpy subclasses), finite floats, string keys."""
    if value is None or type(value) in (str, bool, int):
        return
    if type(value) is float:
        assert math.isfinite(value), f"{path} is not finite"
        return
    if type(value) is list:
        for i, item in enumerate(value):
            assert_json_safe(item, f"{path}[{i}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str, f"{path} has a non-string key {key!r}"
            assert_json_safe(item, f"{path}.{key}")
        return
    raise AssertionError(f"{path} is a {type(value).__name__}, not a JSON type")


def true_rent(result: dict[str, Any], truth: dict[str, Any]) -> float:
    """The generator's true market rent of the unit the answer priced (amenities not given = absent)."""
    unit = {**{name: False for name in AMENITY_PREMIA}, **result["unit"]}
    unit["listed_at"] = pd.Timestamp(result["assumptions"]["listed_at"]["value"])
    return float(true_market_rent(pd.DataFrame([unit]), truth)[0])


# --------------------------------------------------------------------------------------------------
# Rent estimates
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("city", ["Berlin", "Warsaw", "Austin"])
def test_rent_estimate_of_a_typical_two_bed_is_close_to_the_truth(trained: Trained, city: str) -> None:
    payload = trained.ask(f"What is the rent for a 2-bedroom apartment in {city}?")
    result = payload["result"]
    assert payload["interpretation"]["intent"] == "rent_estimate"
    assert result["status"] == "ok"
    estimate = result["estimate"]
    currency = {"Berlin": "EUR", "Warsaw": "PLN", "Austin": "USD"}[city]
    assert estimate["currency"] == result["market"]["currency"] == currency
    assert estimate["low"] < estimate["rent"] < estimate["high"] and estimate["level"] == 0.9
    assert abs(estimate["rent"] / true_rent(result, trained.truth) - 1) < 0.15
    assert 0.0 <= payload["confidence_score"] <= 1.0 and payload["confidence_score"] == estimate["confidence_score"]
    assert payload["model_version"] == trained.rent_version()
    assert f"{estimate['rent']:,.0f} {currency}" in payload["answer"]
    # What the question did not say is assumed from the market, and said so.
    assert {"size_sqm", "district", "listed_at"} <= set(result["assumptions"])
    assert "bedrooms" not in result["assumptions"] and result["unit"]["bedrooms"] == 2
    assert "Assumed:" in payload["answer"]


def test_rent_estimate_shows_comparables_and_drivers_in_money(trained: Trained) -> None:
    payload = trained.ask("What is the rent for a 2-bedroom apartment in Berlin?")
    result = payload["result"]
    comparables = result["comparables"]
    assert len(comparables) == 5
    for row in comparables:
        assert {"monthly_rent", "size_sqm", "bedrooms", "listed_at", "currency"} <= set(row)
        assert row["currency"] == "EUR" and row["monthly_rent"] > 0 and len(row["listed_at"]) == 10
        assert "property_id" not in row  # the ids of other landlords' properties are not shown
    assert sum(abs(row["bedrooms"] - 2) <= 1 for row in comparables) >= 4
    drivers = result["drivers"]
    assert 1 <= len(drivers) <= 3 and all(d["currency"] == "EUR" for d in drivers)
    assert all(d["driver"] != "city" for d in drivers)
    assert "Main drivers:" in payload["answer"]
    assert {"type": "comparables", "count": 5} in payload["sources"]
    assert {"type": "model", "name": "rent", "version": trained.rent_version()} in payload["sources"]


def test_city_names_map_onto_the_names_the_data_uses(trained: Trained) -> None:
    assert trained.ask("typical rent 2BR München")["result"]["market"]["city"] == "Munich"
    assert trained.ask("rent for a 2 bedroom flat in Cracow")["result"]["market"]["city"] == "Kraków"
    assert trained.ask("what does a 2-bed flat in Frankfurt am Main rent for")["result"]["market"]["city"] == "Frankfurt"


def test_more_bedrooms_and_more_space_cost_more(trained: Trained) -> None:
    rents = [trained.ask(f"rent for a {b}-bedroom apartment in Munich")["result"]["estimate"]["rent"] for b in (1, 2, 3)]
    assert rents[0] < rents[1] < rents[2]
    small = trained.ask("rent for a 50 m2 2-bedroom apartment in Munich")["result"]
    large = trained.ask("rent for a 90 m2 2-bedroom apartment in Munich")["result"]
    assert small["estimate"]["rent"] < large["estimate"]["rent"]
    assert "size_sqm" not in small["assumptions"] and small["unit"]["size_sqm"] == 50
    assert "notes" not in small
    huge = trained.ask("rent for a 900 m2 2-bedroom apartment in Munich")
    assert "extrapolation" in huge["answer"] and any("extrapolation" in n for n in huge["result"]["notes"])


def test_size_without_bedrooms_assumes_the_matching_bedroom_count(trained: Trained) -> None:
    result = trained.ask("rent of a 45 m2 flat in Gdansk")["result"]
    assert result["status"] == "ok" and result["unit"]["size_sqm"] == 45
    assumed = result["assumptions"]["bedrooms"]
    assert assumed["value"] in (0, 1) and "closest to 45" in assumed["basis"]


# --------------------------------------------------------------------------------------------------
# Optimal rent and occupancy
# --------------------------------------------------------------------------------------------------


def test_optimal_rent_maximises_revenue_and_responds_to_the_market(trained: Trained) -> None:
    berlin = trained.ask("What is the optimal rent for a 2-bedroom apartment in Berlin?")
    munich = trained.ask("What is the optimal rent for a 2-bedroom apartment in Munich?")
    for payload in (berlin, munich):
        result = payload["result"]
        assert payload["interpretation"]["intent"] == "optimal_rent" and result["status"] == "ok"
        optimal, market = result["optimal"], result["market_rent"]
        assert 0.7 <= optimal["ratio_to_market"] <= 1.4
        assert optimal["rent"] == pytest.approx(optimal["ratio_to_market"] * market["rent"], rel=1e-3)
        assert optimal["yearly_revenue"] == pytest.approx(optimal["rent"] * optimal["expected_occupancy"] * 12, rel=1e-3)
        curve = result["revenue_curve"]
        assert len(curve) >= 10 and [p["rent"] for p in curve] == sorted(p["rent"] for p in curve)
        assert max(p["revenue"] for p in curve) <= optimal["yearly_revenue"] * 1.001  # nothing on the curve beats it
        if not optimal["at_grid_edge"]:
            assert result["sensitivity"]["up"]["revenue_change"] <= 1e-9
            assert result["sensitivity"]["down"]["revenue_change"] <= 1e-9
        assert "lease" in result["occupancy_basis"]["basis"] and result["occupancy_basis"]["explanation"] in payload["answer"]
        assert any(s["type"] == "model" and s["name"] == "occupancy" for s in payload["sources"])
    # Munich's market is dearer than Berlin's: so is its optimal rent (the optimum scales with the market).
    assert munich["result"]["market_rent"]["rent"] > berlin["result"]["market_rent"]["rent"]
    assert munich["result"]["optimal"]["rent"] > berlin["result"]["optimal"]["rent"]


def test_occupancy_forecast_at_an_asking_rent_against_the_market(trained: Trained) -> None:
    market = trained.ask("What is the rent for a 2-bedroom apartment in Berlin?")["result"]["estimate"]["rent"]
    asking = round(market * 1.2)
    payload = trained.ask(f"Will my 2 bed flat in Berlin let within 30 days at {asking} EUR?")
    result = payload["result"]
    assert payload["interpretation"]["intent"] == "occupancy_forecast" and result["status"] == "ok"
    assert result["asking_rent"]["ratio_to_market"] == pytest.approx(1.2, abs=0.01) and result["asking_rent"]["used"]
    at_asking, at_market = result["at_asking_rent"], result["at_market_rent"]
    assert at_asking["let_probability_30d"] < at_market["let_probability_30d"]  # dearer lets slower
    assert at_asking["expected_occupancy"] < at_market["expected_occupancy"]
    true_p = float(lease_up_probability(0.0, date.today().month, trained.truth, "Berlin"))
    assert abs(at_market["let_probability_30d"] - true_p) < 0.25
    assert f"{asking:,} EUR" in payload["answer"] and "30 days" in payload["answer"]


def test_occupancy_forecast_without_a_rent_is_at_the_market_rent(trained: Trained) -> None:
    result = trained.ask("how quickly will a 2-bedroom flat in Hamburg let?")["result"]
    assert result["status"] == "ok" and "at_asking_rent" not in result
    assert result["at_market_rent"]["rent"] == result["market_rent"]["rent"]
    assert 0.0 < result["at_market_rent"]["expected_occupancy"] <= 1.0


# --------------------------------------------------------------------------------------------------
# Currencies
# --------------------------------------------------------------------------------------------------


def test_an_asking_rent_in_another_currency_is_flagged_not_converted(trained: Trained) -> None:
    payload = trained.ask("Will my 2 bed flat in Berlin let at $2,000 a month?")
    result, text = payload["result"], payload["answer"]
    assert result["currency_mismatch"] is True
    assert result["asking_rent"] == {"amount": 2000.0, "currency": "USD", "market_currency": "EUR",
                                     "currency_assumed": False, "used": False, "ratio_to_market": None}
    assert "at_asking_rent" not in result and result["at_market_rent"]["currency"] == "EUR"
    assert "USD" in text and "EUR" in text and "not used" in text
    assert "2,000 EUR" not in text


def test_a_rent_without_currency_is_read_in_the_market_currency(trained: Trained) -> None:
    result = trained.ask("what occupancy can I expect for a 2 bed flat in Warsaw at 5000 per month")["result"]
    assert result["asking_rent"]["currency"] == "PLN" and result["asking_rent"]["currency_assumed"] is True
    assert result["currency_mismatch"] is False and "at_asking_rent" in result
    assert result["assumptions"]["asking_rent_currency"]["value"] == "PLN"


def test_asking_for_another_currency_keeps_the_market_currency(trained: Trained) -> None:
    payload = trained.ask("what rent for a studio in Austin in euros")
    assert payload["result"]["estimate"]["currency"] == "USD" and payload["result"]["currency_mismatch"] is True
    assert "no exchange rates" in payload["answer"] and "EUR" in payload["answer"]


# --------------------------------------------------------------------------------------------------
# Too little data
# --------------------------------------------------------------------------------------------------


def test_an_unknown_city_says_so_with_the_nearest_known_market(trained: Trained) -> None:
    payload = trained.ask("Rent for a flat in Reykjavik?")
    result = payload["result"]
    assert result["status"] == "insufficient_data" and result["country"] == "Iceland"
    assert result["nearest_market"]["city"] == "Hamburg" and result["nearest_market"]["distance_km"] > 1500
    assert "estimate" not in result and payload["confidence_score"] is None
    assert "Hamburg" in payload["answer"] and "EUR" not in payload["answer"]


def test_a_thin_city_says_so_and_names_the_markets_nearby(trained: Trained) -> None:
    payload = trained.ask("What is the rent for a 2-bedroom apartment in Leipzig?")
    result = payload["result"]
    assert result["status"] == "insufficient_data"
    assert result["listings"] < answer_module.THIN_MARKET_ROWS
    assert result["nearest_market"]["city"] == "Berlin"
    assert "Berlin" in result["markets_in_country"] and "estimate" not in result
    assert "won't guess" in payload["answer"] or "without guessing" in payload["answer"]


@pytest.mark.parametrize(("question", "segment"), [
    ("rent for a 7 bedroom house in Munich", {"bedrooms": 7}),
    ("rent for a room in Kraków", {"property_type": "room"}),
    ("market rent for 100 sqm office space in Frankfurt", {"property_type": "commercial"}),
])
def test_a_segment_without_data_says_so(trained: Trained, question: str, segment: dict[str, Any]) -> None:
    payload = trained.ask(question)
    assert payload["result"]["status"] == "insufficient_data" and payload["result"]["segment"] == segment
    assert "estimate" not in payload["result"] and payload["confidence_score"] is None


def test_a_question_without_a_city_asks_for_one(trained: Trained) -> None:
    result = trained.ask("how much is rent for a 2 bedroom apartment?")["result"]
    assert result["status"] == "needs_city" and "Berlin" in result["known_markets"]
    assert "Leipzig" not in result["known_markets"]


# --------------------------------------------------------------------------------------------------
# Market trends and comparisons
# --------------------------------------------------------------------------------------------------


def test_market_trend_lists_current_published_insights_most_relevant_first(trained: Trained) -> None:
    payload = trained.ask("are rents in Hamburg going up?")
    result = payload["result"]
    assert payload["interpretation"]["intent"] == "market_trend" and result["status"] == "ok"
    insights = result["insights"]
    assert insights and all(i["city"] == "Hamburg" for i in insights)
    assert "OLD" not in payload["answer"] and "UNPUBLISHED" not in payload["answer"]
    with trained.session_factory() as session:
        rows = {r.id: r for r in session.scalars(select(Insight).where(Insight.id.in_([i["id"] for i in insights])))}
    assert all(rows[i["id"]].published and rows[i["id"]].current for i in insights)
    order = [answer_module._KIND_ORDER[i["kind"]] for i in insights]
    assert order == sorted(order)
    assert payload["confidence_score"] == insights[0]["confidence_score"]
    assert [s["id"] for s in payload["sources"] if s["type"] == "insight"] == [i["id"] for i in insights]
    assert insights[0]["text"] in payload["answer"]


def test_market_trend_without_insights_gives_the_model_trend_as_indicative(trained: Trained) -> None:
    payload = trained.ask(f"is {NO_INSIGHTS_CITY} rent going up?")
    result = payload["result"]
    assert result["status"] == "no_published_insights" and result["insights"] == []
    true_growth = trained.truth["cities"][NO_INSIGHTS_CITY]["annual_growth"]
    assert abs(result["model_trend"]["annual_change"] - true_growth) < 0.04
    assert "not a published insight" in payload["answer"] and payload["confidence_score"] is None


def test_market_trend_for_a_country_lists_its_cities(trained: Trained) -> None:
    result = trained.ask("how are rents in Poland moving?")["result"]
    assert result["status"] in ("ok", "insufficient_data")
    if result["status"] == "ok":
        assert all(i["kind"] == "rent_growth" for i in result["insights"])
        assert {i["city"] for i in result["insights"]} <= {"Warsaw", "Kraków", "Wrocław"}


def test_comparison_side_by_side_in_each_city_currency(trained: Trained) -> None:
    payload = trained.ask("compare Berlin and Warsaw rents")
    result = payload["result"]
    assert payload["interpretation"]["intent"] == "compare_markets" and result["status"] == "ok"
    berlin, warsaw = result["cities"]
    assert (berlin["data_city"], berlin["currency"], warsaw["data_city"], warsaw["currency"]) == ("Berlin", "EUR", "Warsaw", "PLN")
    assert result["same_currency"] is False and "not converted" in payload["answer"]
    assert "dearer" not in payload["answer"]
    # The same figures as asking about each city alone.
    alone = trained.ask("What is the rent for a 2-bedroom apartment in Warsaw?")["result"]["estimate"]
    assert warsaw["market_rent"]["rent"] == alone["rent"] and warsaw["market_rent"]["currency"] == "PLN"
    for entry in (berlin, warsaw):
        assert entry["growth"] is None or entry["growth"]["kind"] == "rent_growth"
    assert result["defaults"] == {"bedrooms": 2, "property_type": "apartment"}  # no unit asked: said which


def test_comparison_in_one_currency_says_which_is_dearer(trained: Trained) -> None:
    payload = trained.ask("Berlin vs Munich")
    result = payload["result"]
    assert result["same_currency"] is True and result["defaults"] == {"bedrooms": 2, "property_type": "apartment"}
    assert "Munich is" in payload["answer"] and "dearer than Berlin" in payload["answer"]


def test_comparison_with_an_unknown_city_keeps_the_known_one(trained: Trained) -> None:
    result = trained.ask("compare Berlin and Reykjavik")["result"]
    berlin, reykjavik = result["cities"]
    assert berlin["status"] == "ok" and reykjavik["status"] == "insufficient_data"
    assert reykjavik["nearest_market"]["city"] == "Hamburg" and "market_rent" not in reykjavik


# --------------------------------------------------------------------------------------------------
# Properties of the caller's account
# --------------------------------------------------------------------------------------------------


def test_a_property_of_the_callers_account_uses_its_stored_features(trained: Trained) -> None:
    payload = trained.ask("Estimate the rent of prop_12345", account_id=trained.owner)
    result = payload["result"]
    assert result["status"] == "ok" and result["property_id"] == "prop_12345"
    assert result["unit"]["size_sqm"] == 83.0 and result["unit"]["district"] == "Kreuzberg"
    assert not {"size_sqm", "bedrooms", "district", "latitude"} & set(result["assumptions"])
    assert {"type": "property", "property_id": "prop_12345"} in payload["sources"]
    assert "prop_12345" in payload["answer"]


def test_a_property_of_another_account_is_not_revealed(trained: Trained) -> None:
    for account in (trained.stranger, None):
        payload = trained.ask("Estimate the rent of prop_12345", account_id=account)
        assert payload["result"] == {"status": "not_found", "property_id": "prop_12345"}
        assert "Kreuzberg" not in payload["answer"] and "83" not in payload["answer"]
        assert not any(s["type"] == "property" for s in payload["sources"])
    assert trained.ask("optimal rent for prop_777", account_id=trained.owner)["result"]["status"] == "not_found"


def test_a_property_id_is_found_in_any_case_its_exact_spelling_first(trained: Trained) -> None:
    find = answer_module.find_property
    with trained.session_factory() as session:
        assert find(session, account_id=trained.owner, property_id="PROP_12345").property_id == "prop_12345"
        assert find(session, account_id=trained.stranger, property_id="PROP_12345") is None
        twin = _property("PROP_55555", trained.owner, district="Pankow", size_sqm=50.0, bedrooms=1.0)
        session.add(twin)
        session.commit()
        try:
            assert find(session, account_id=trained.owner, property_id="PROP_55555").district == "Pankow"
            assert find(session, account_id=trained.owner, property_id="prop_55555").district == "Mitte"
            assert find(session, account_id=trained.owner, property_id="Prop_55555").property_id in ("prop_55555", "PROP_55555")
        finally:
            session.delete(twin)
            session.commit()


def test_without_an_account_the_ingested_portfolio_is_used(trained: Trained) -> None:
    with trained.session_factory() as session:
        market_id = session.scalar(select(PropertyRow.property_id).where(PropertyRow.account_id.is_(None)).limit(1))
    assert trained.ask(f"Estimate the rent of property id {market_id}")["result"]["status"] == "ok"
    assert trained.ask(f"Estimate the rent of property id {market_id}", account_id=trained.owner)["result"]["status"] == "not_found"


def test_a_fresh_stored_prediction_is_used_and_a_stale_one_is_not(trained: Trained) -> None:
    version = trained.rent_version()
    with trained.session_factory() as session:
        pk = session.scalar(select(PropertyRow.id).where(PropertyRow.property_id == "prop_55555"))
        session.add(PropertyPrediction(property_pk=pk, model_version=version, payload={
            "rent_estimate": 1234.5, "rent_low": 1000.0, "rent_high": 1500.0, "confidence_score": 0.61}))
        session.commit()
    payload = trained.ask("Estimate the rent of prop_55555", account_id=trained.owner)
    assert payload["result"]["estimate"]["rent"] == 1234.5 and payload["confidence_score"] == 0.61
    assert any(s["type"] == "prediction" and s["model_version"] == version for s in payload["sources"])
    with trained.session_factory() as session:
        session.execute(update(PropertyPrediction).where(PropertyPrediction.property_pk == pk).values(model_version="old"))
        session.commit()
    stale = trained.ask("Estimate the rent of prop_55555", account_id=trained.owner)
    assert stale["result"]["estimate"]["rent"] != 1234.5
    assert not any(s["type"] == "prediction" for s in stale["sources"])


# --------------------------------------------------------------------------------------------------
# Unsupported questions, missing models, JSON, latency, the CLI helper
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["what is the weather tomorrow", "'; DROP TABLE insights; --", "tell me a joke"])
def test_unsupported_questions_explain_what_can_be_asked(trained: Trained, question: str) -> None:
    payload = trained.ask(question)
    result = payload["result"]
    assert result["status"] == "unsupported" and len(result["examples"]) >= 5
    assert {e["intent"] for e in result["examples"]} >= {"rent_estimate", "optimal_rent", "occupancy_forecast",
                                                          "market_trend", "compare_markets"}
    assert "Berlin" in result["markets"] and payload["confidence_score"] is None and payload["model_version"] is None


def test_no_rent_model_yet_fails_with_a_clear_message(trained: Trained, tmp_path: Path) -> None:
    context = AnswerContext(settings=trained.settings, session_factory=trained.session_factory,
                            models=ModelCache(tmp_path / "models"))
    with pytest.raises(ModelNotAvailable, match="no rent model has been trained yet"):
        answer_question("What is the rent for a 2-bedroom apartment in Berlin?", context)
    assert answer_question("what is the weather tomorrow", context)["result"]["status"] == "unsupported"


def test_every_kind_of_payload_is_strict_json(trained: Trained) -> None:
    questions = [
        "What is the rent for a 2-bedroom apartment in Berlin?", "optimal rent for a 3 bedroom house in Austin",
        "Will my flat in Munich rent within a month at 1800 EUR?", "is Warsaw rent going up?", "compare Berlin, Warsaw and Austin",
        "Rent for a flat in Reykjavik?", "hello", "rent for a room in Kraków",
    ]
    for question in questions:
        payload = trained.ask(question)
        json.dumps(payload, allow_nan=False)


def test_every_question_of_the_interpreter_sets_gets_an_answer(trained: Trained) -> None:
    """Hundreds of real phrasings (many about cities without data): no error, strict JSON, a known status."""
    folder = Path(__file__).parent
    questions = [json.loads(line)["query"] for name in ("eval_questions.jsonl", "holdout_questions.jsonl")
                 for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    statuses = set()
    for question in questions:
        payload = trained.ask(question, account_id=trained.owner)
        json.dumps(payload, allow_nan=False)
        assert payload["answer"].strip()
        statuses.add(payload["result"]["status"])
    assert statuses <= {"ok", "insufficient_data", "not_found", "needs_city", "unsupported", "no_published_insights"}
    assert {"ok", "insufficient_data", "unsupported"} <= statuses


def test_latency_per_question_is_reported(trained: Trained, capsys: pytest.CaptureFixture[str]) -> None:
    questions = [
        "What is the rent for a 2-bedroom apartment in Berlin?", "What is the optimal rent for a 2-bedroom apartment in Munich?",
        "Will my 2 bed flat in Hamburg let within 30 days at 1,500 EUR?", "is Warsaw rent going up?",
        "compare Berlin, Warsaw and Austin rents", "Rent for a flat in Reykjavik?", "what is the weather tomorrow",
        "Estimate the rent of prop_12345",
    ]
    context = trained.context(trained.owner)
    answer_module.warm_up(context)
    lines = []
    for question in questions:
        wall, cpu, repeated = [], [], []
        for _ in range(5):
            answer_module._estimates.clear()  # model results computed afresh: the cost of a new question
            started, started_cpu = time.perf_counter(), time.thread_time()
            answer_question(question, context)
            wall.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            started = time.perf_counter()
            answer_question(question, context)
            repeated.append(time.perf_counter() - started)
        lines.append(f"{1000 * statistics.median(wall):7.1f} ms new ({1000 * statistics.median(cpu):5.1f} ms CPU), "
                     f"{1000 * statistics.median(repeated):5.1f} ms repeated  {question}")
        assert statistics.median(wall) < 2.0  # generous: only catches a database scan or a reload per question
    with capsys.disabled():
        print(f"\nanswer latency (training fixture took {trained.train_seconds:.0f} s):\n" + "\n".join(lines))


def test_ask_answers_synchronously_and_formats_for_a_terminal(trained: Trained) -> None:
    payload = ask("What is the rent for a 2-bedroom apartment in Berlin?", settings=trained.settings)
    assert_json_safe(payload)
    text = format_answer(payload)
    assert payload["answer"] in text and "Comparable listings:" in text and "Assumed:" in text
    trend = format_answer(ask("are rents in Hamburg going up?", settings=trained.settings))
    assert "Insights:" in trend


class StaticModels:
    """Stands in for a `ModelCache`: serves the given models (a missing name: not trained)."""

    def __init__(self, **models: LoadedModel) -> None:
        self.models = models

    def get(self, name: str) -> LoadedModel | None:
        return self.models.get(name)


def test_district_comparables_rank_the_district_then_size_and_bedrooms_then_recency() -> None:
    table = pd.DataFrame({
        "listing_id": ["far", "other-district", "old", "new", "undated", "no-district", "elsewhere"],
        "city": ["Berlin"] * 6 + ["Hamburg"],
        "district": ["Mitte", "Pankow", "Mitte", "Mitte", "Mitte", None, "Mitte"],
        "monthly_rent": [3000.0, 1200.0, 1100.0, 1150.0, 1180.0, 1190.0, 900.0],
        "size_sqm": [150.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0],
        "bedrooms": [5.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        "rooms": [6.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
        "listed_at": pd.to_datetime(["2026-05-01", "2026-06-01", "2025-01-01", "2026-04-01", None, "2026-07-01", "2026-08-01"]),
    }).astype({"listing_id": "string", "city": "string", "district": "string"})
    berlin = table.index[table["city"] == "Berlin"].to_numpy()
    market = answer_module._city_market("Berlin", table.iloc[berlin], "EUR", None, None, None)
    unit = answer_module.Unit(market=market, features={"size_sqm": 70.0, "bedrooms": 2, "district": "Mitte"})
    found = answer_module._district_comparables(table, unit, 6)
    # The district first; within it the closest units, newest first and undated last; then the rest.
    assert [row["listing_id"] for row in found] == ["new", "old", "undated", "far", "no-district", "other-district"]
    assert list(found[0]) == [*answer_module.COMPARABLE_COLUMNS, "distance"]
    assert found[0]["monthly_rent"] == 1150.0 and found[0]["distance"] == 0.0 and found[3]["distance"] > 0
    unknown = answer_module.Unit(market=market, features={"size_sqm": 70.0, "bedrooms": 2, "district": "Atlantis"})
    assert [row["listing_id"] for row in answer_module._district_comparables(table, unknown, 2)] == ["no-district", "other-district"]


def test_a_model_whose_listing_copy_has_no_positions_still_answers(trained: Trained) -> None:
    """Models trained before positions were kept: no position is assumed, comparables come from the district."""
    rent = ModelCache(trained.settings.models_dir).get("rent")
    fitted = rent.model._fitted
    index = dataclasses.replace(fitted.comparables, table=fitted.comparables.table.drop(columns=["latitude", "longitude"]))
    legacy = dataclasses.replace(rent, version=f"{rent.version}-legacy",
                                 model=dataclasses.replace(rent.model, _fitted=dataclasses.replace(fitted, comparables=index)))
    context = AnswerContext(settings=trained.settings, session_factory=trained.session_factory, models=StaticModels(rent=legacy))
    payload = answer_question("What is the rent for a 2-bedroom apartment in Berlin?", context)
    assert_json_safe(payload)
    result = payload["result"]
    assert result["status"] == "ok" and "latitude" not in result["assumptions"]
    district = result["assumptions"]["district"]["value"]
    assert result["comparables"][0]["district"] == district
    assert abs(result["estimate"]["rent"] / true_rent(result, trained.truth) - 1) < 0.2
    # Without an occupancy model the optimal rent cannot be found: said plainly, with the market rent.
    optimal = answer_question("What is the optimal rent for a 2-bedroom apartment in Berlin?", context)
    assert optimal["result"]["status"] == "no_occupancy_model" and optimal["result"]["market_rent"]["rent"] > 0
    assert "no occupancy model has been trained" in optimal["answer"]


def test_a_calendar_based_occupancy_model_says_its_occupancy_is_a_proxy() -> None:
    model = LoadedModel(name="occupancy", version="v", metadata={}, model=SimpleNamespace(basis=BASIS_CALENDAR))
    basis = answer_module.occupancy_basis(model)
    assert basis["basis"] == BASIS_CALENDAR
    assert "proxy" in basis["explanation"] and "blocked" in basis["explanation"]


def test_plain_leaves_only_json_types() -> None:
    value = {"a": np.float64(1.5), "b": np.int64(2), "c": float("nan"), "d": pd.NA, "e": pd.Timestamp("2026-01-02"),
             "f": (np.bool_(True), None), "g": datetime(2026, 1, 2, 3, 4), "h": date(2026, 1, 2), 3: np.array([1.0, np.inf])}
    assert answer_module.plain(value) == {"a": 1.5, "b": 2, "c": None, "d": None, "e": "2026-01-02", "f": [True, None],
                                          "g": "2026-01-02T03:04:00", "h": "2026-01-02", "3": [1.0, None]}
    assert_json_safe(answer_module.plain(value))


# --------------------------------------------------------------------------------------------------
# Through the worker, on the real test database and Redis
# --------------------------------------------------------------------------------------------------


def test_the_worker_stores_the_answer_or_the_missing_model(trained: Trained, runtime, session) -> None:
    from insights.worker.context import set_runtime
    from insights.worker.tasks import answer_query

    set_runtime(runtime)
    try:
        failed = queries_repo.create_query(session, account_id=None, text="rent for a 2 bed flat in Berlin?", webhook_url=None)
        assert answer_query(failed.id) == "failed"
        session.expire_all()
        record = queries_repo.get_query(session, query_id=failed.id, account_id=None)
        assert record.status == "failed" and "no rent model has been trained yet" in record.error_message

        shutil.copytree(trained.settings.models_dir, runtime.settings.models_dir, dirs_exist_ok=True)
        done = queries_repo.create_query(session, account_id=None, text="rent for a 2 bed flat in Berlin?", webhook_url=None)
        assert answer_query(done.id) == "completed"
        session.expire_all()
        body = queries_repo.query_to_dict(queries_repo.get_query(session, query_id=done.id, account_id=None))
        assert body["status"] == "completed" and body["result"]["estimate"]["currency"] == "EUR"
        assert body["model_version"] == trained.rent_version() and body["interpretation"]["intent"] == "rent_estimate"
        json.dumps(body, allow_nan=False)
    finally:
        set_runtime(None)
