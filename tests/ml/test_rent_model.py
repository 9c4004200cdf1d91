"""Behavioural tests of the rent model on generated listings with a known hedonic truth."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from insights.errors import SchemaMismatch
from insights.ml.metrics import evaluate, mdape
from insights.ml.rent import RentModel
from pipelines.demo_data import draw_market, generate_listings, true_market_rent

SEED = 7


@pytest.fixture(scope="module")
def market():
    return draw_market(seed=SEED)


@pytest.fixture(scope="module")
def listings(market) -> pd.DataFrame:
    # Generated rows come in date order: shuffle so that train and test cover the same months.
    return generate_listings(8000, seed=SEED, market=market).sample(frac=1.0, random_state=SEED).reset_index(drop=True)


@pytest.fixture(scope="module")
def model(listings: pd.DataFrame) -> RentModel:
    return RentModel(seed=SEED).fit(listings.iloc[:6000])


@pytest.fixture(scope="module")
def test_rows(listings: pd.DataFrame) -> pd.DataFrame:
    return listings.iloc[6000:].reset_index(drop=True)


def test_predict_returns_estimate_interval_and_confidence(model: RentModel, test_rows: pd.DataFrame) -> None:
    out = model.predict(test_rows)
    assert list(out.columns) == ["rent_estimate", "rent_low", "rent_high", "confidence_score"]
    assert out.index.equals(test_rows.index)
    assert (out["rent_low"] <= out["rent_estimate"]).all() and (out["rent_estimate"] <= out["rent_high"]).all()
    assert out["confidence_score"].between(0, 1).all()


def test_recovers_the_true_market_rent(model: RentModel, test_rows: pd.DataFrame, market) -> None:
    truth = true_market_rent(test_rows, market.truth())
    estimate = model.predict(test_rows)["rent_estimate"].to_numpy()
    # The generator's noise is 12% (log sd): the estimate should sit much closer to the truth than a listing does.
    assert mdape(truth, estimate) < 0.06
    assert abs(np.median(estimate / truth) - 1) < 0.02


def test_coverage_and_calibration_on_fresh_rows(model: RentModel, test_rows: pd.DataFrame) -> None:
    result = evaluate(model, test_rows)
    assert 0.86 <= result["coverage"] <= 0.94
    assert result["confidence_ece"] < 0.07
    assert model.metrics["rows"] == 6000 and 0.85 < model.metrics["coverage"] < 0.95


def test_more_space_same_city_gives_a_higher_estimate(model: RentModel, test_rows: pd.DataFrame) -> None:
    rows = test_rows.iloc[:300]
    bigger = rows.assign(size_sqm=rows["size_sqm"] * 1.3)
    before, after = model.predict(rows)["rent_estimate"].to_numpy(), model.predict(bigger)["rent_estimate"].to_numpy()
    # Monotone in size everywhere; flat only beyond the largest sizes seen in training (trees do not extrapolate).
    assert (after >= before).all()
    assert (after > before).mean() > 0.95


def test_listing_id_never_changes_a_prediction(model: RentModel, test_rows: pd.DataFrame) -> None:
    rows = test_rows.iloc[:500]
    renamed = rows.assign(listing_id=[f"other-{i}" for i in range(len(rows))], property_id=pd.NA)
    pd.testing.assert_frame_equal(model.predict(rows), model.predict(renamed))


def test_higher_level_gives_wider_intervals(model: RentModel, test_rows: pd.DataFrame) -> None:
    narrow, wide = model.predict(test_rows, level=0.8), model.predict(test_rows, level=0.95)
    assert (wide["rent_high"] - wide["rent_low"] > narrow["rent_high"] - narrow["rent_low"]).all()
    assert (narrow["rent_estimate"] == wide["rent_estimate"]).all()


def test_schema_mismatch_names_the_column(model: RentModel, test_rows: pd.DataFrame) -> None:
    assert model.feature_schema["size_sqm"] == "float"
    with pytest.raises(SchemaMismatch, match="size_sqm"):
        model.predict(test_rows.drop(columns=["size_sqm"]))
    with pytest.raises(SchemaMismatch, match="listed_at"):
        model.check_schema(test_rows.assign(listed_at="soon"))


def test_survives_a_joblib_round_trip(model: RentModel, test_rows: pd.DataFrame, tmp_path) -> None:
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    pd.testing.assert_frame_equal(loaded.predict(test_rows), model.predict(test_rows))


def test_comparables_are_similar_listings_of_the_same_city(model: RentModel, test_rows: pd.DataFrame) -> None:
    rows = test_rows.iloc[:20]
    found = model.comparables(rows, k=5)
    assert len(found) == 100
    assert (found.groupby("query_row")["rank"].apply(list) == [[1, 2, 3, 4, 5]] * 20).all()
    assert (found["city"].to_numpy() == rows["city"].to_numpy()[found["query_row"]]).all()
    assert {"listing_id", "monthly_rent", "size_sqm", "bedrooms", "listed_at", "distance"} <= set(found.columns)
    assert (found.groupby("query_row")["distance"].apply(lambda d: d.is_monotonic_increasing)).all()
    # Several cities in one call give each row what it gets alone; a city without listings gets nothing.
    mixed = pd.concat([rows, rows.iloc[[0]].assign(city="Atlantis")], ignore_index=True)
    alone = pd.concat([model.comparables(rows.iloc[[i]], k=5).assign(query_row=i) for i in range(20)], ignore_index=True)
    pd.testing.assert_frame_equal(model.comparables(mixed, k=5), alone)
    query_rows, table_rows, distance = model.comparable_rows(mixed.to_dict("records"), k=5)
    assert (query_rows == found["query_row"].to_numpy()).all() and np.allclose(distance, found["distance"])
    assert (model.comparables_table["listing_id"].to_numpy()[table_rows] == found["listing_id"].to_numpy()).all()


def test_explanations_add_up_to_the_estimate(model: RentModel, test_rows: pd.DataFrame) -> None:
    rows = test_rows.iloc[:50]
    everything = model.explain(rows, top=100)
    estimate = model.predict(rows)["rent_estimate"].to_numpy()
    totals = everything["baseline"].to_numpy() + np.array([sum(d["amount"] for d in drivers) for drivers in everything["drivers"]])
    np.testing.assert_allclose(totals, estimate, rtol=1e-6)
    short = model.explain(rows, top=3)
    assert all(len(drivers) == 3 for drivers in short["drivers"])
    assert short["explanation"].str.contains(str(rows["currency"].iloc[0])).iloc[0]
    assert any("size" in text for text in short["explanation"])


def test_a_growing_market_is_extrapolated(market) -> None:
    """Trained on the first 24 months, the model must not predict the next months at the old level."""
    listings = generate_listings(12_000, seed=SEED + 1, market=market)
    truth = true_market_rent(listings, market.truth())
    cutoff = listings["listed_at"].min() + pd.DateOffset(months=24)
    past = (listings["listed_at"] < cutoff).to_numpy()
    later = (listings["listed_at"] >= cutoff + pd.DateOffset(months=3)).to_numpy()
    model = RentModel(seed=SEED).fit(listings[past])
    ratio = model.predict(listings[later])["rent_estimate"].to_numpy() / truth[later]
    assert abs(np.median(ratio) - 1) < 0.03
    # Per city, the linear trend keeps the bias small (measured 2.1% mean; 3.4% without the trend).
    per_city = pd.Series(np.log(ratio)).groupby(listings["city"][later].to_numpy()).median()
    assert per_city.abs().mean() < 0.03


def test_rows_give_what_the_frame_gives(model: RentModel, test_rows: pd.DataFrame) -> None:
    """`predict_rows` and `explain` on mappings (the query answers' path) equal the frame path, with
    missing values, an unseen city and district, a missing category and no date among the rows."""
    frame = test_rows.head(40).copy()
    frame.loc[0, "city"] = "Atlantis"
    frame.loc[1, "district"] = "Nowhere"
    frame.loc[2, ["size_sqm", "latitude", "longitude"]] = np.nan
    frame.loc[3, "listed_at"] = pd.NaT
    frame.loc[4, "property_type"] = None
    rows = frame.to_dict("records")
    expected = model.predict(frame)
    got = model.predict_rows(rows)
    for column in expected.columns:
        np.testing.assert_allclose(got[column], expected[column].to_numpy(), rtol=1e-12, equal_nan=True)
    one = model.predict_rows([rows[5]])  # as an answer asks: one unit
    assert one["rent_estimate"][0] == pytest.approx(expected["rent_estimate"].iloc[5], rel=1e-12)
    pd.testing.assert_frame_equal(model.explain(rows, top=4), model.explain(frame, top=4).reset_index(drop=True))
    pd.testing.assert_frame_equal(model.comparables(rows, k=3), model.comparables(frame, k=3))
    one_city = frame[frame["city"] == frame["city"].iloc[6]]
    alone = model.comparables(one_city.to_dict("records"), k=3)  # one city: returned without re-sorting
    pd.testing.assert_frame_equal(alone, alone.sort_values(["query_row", "rank"], ignore_index=True))
    pd.testing.assert_frame_equal(alone, model.comparables(one_city, k=3))
    with pytest.raises(SchemaMismatch, match="missing columns"):
        model.predict_rows([{"city": "Berlin"}])
    with pytest.raises(SchemaMismatch, match="size_sqm"):
        model.predict_rows([{**rows[6], "size_sqm": "large"}])
