"""Occupancy model: data preparation on messy leases and calendars, price response, slope recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insights.errors import InvalidInput, SchemaMismatch
from insights.ml.occupancy import (
    BASIS_CALENDAR,
    OccupancyModel,
    calendar_occupancy,
    evaluate,
    lease_terms,
    vacancy_spells,
)

CITIES = ("Alpha", "Beta", "Gamma")


def simulate_spells(n: int, *, slope: float = -6.0, seed: int = 0) -> pd.DataFrame:
    """Labelled lease-up rows drawn from a known logistic truth (city, season and price effects)."""
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES, n)
    bedrooms = rng.integers(0, 5, n).astype(float)
    market = np.exp(6.5 + 0.25 * bedrooms + (city == "Beta") * 0.3)
    ratio = np.exp(rng.normal(0.0, 0.12, n))
    month = rng.integers(1, 13, n)
    logit = 0.8 + slope * np.log(ratio) + 0.6 * np.cos(2 * np.pi * (month - 7) / 12) - 0.4 * (city == "Gamma")
    return pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(n)],
            "city": city,
            "property_type": rng.choice(["apartment", "house"], n),
            "bedrooms": bedrooms,
            "size_sqm": 30 + 20 * bedrooms + rng.uniform(-8, 8, n),
            "market_rent": market,
            "asking_rent": market * ratio,
            "month": month,
            "let_within_30d": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float),
        }
    )


def random_units(n: int, seed: int) -> pd.DataFrame:
    """Unlabelled units with random features, including unseen cities and missing values."""
    rng = np.random.default_rng(seed)
    frame = simulate_spells(n, seed=seed).drop(columns="let_within_30d")
    frame.loc[rng.random(n) < 0.1, "city"] = "Nowhere"
    frame.loc[rng.random(n) < 0.1, "size_sqm"] = np.nan
    frame["market_rent"] = np.exp(rng.uniform(5, 9, n))
    return frame


@pytest.fixture(scope="module")
def logistic_model() -> OccupancyModel:
    return OccupancyModel().fit(simulate_spells(12000), lease_days=365.0)


@pytest.fixture(scope="module")
def lightgbm_model() -> OccupancyModel:
    return OccupancyModel(engine="lightgbm", lightgbm_params={"n_estimators": 80}).fit(simulate_spells(4000))


# -- vacancy spells ------------------------------------------------------------------------------


def _messy_leases() -> pd.DataFrame:
    rows = [
        # p1: clean chain, then an ongoing lease.
        ("p1", "2020-01-01", "2020-12-31", 1000), ("p1", "2021-01-21", "2021-05-15", 1100), ("p1", "2021-06-01", None, 1200),
        # p2: one lease only, ended long ago: censored, known not let within 30 days.
        ("p2", "2020-01-01", "2020-06-30", 900),
        # p3: re-let before the old lease ended (overlap), then ended 10 days before as_of (unknown).
        ("p3", "2020-01-01", "2020-12-01", 800), ("p3", "2020-11-15", "2021-11-20", 850),
        # p4: a nested sublet inside the first lease, then a re-let after 9 vacant days.
        ("p4", "2020-01-01", "2020-12-31", 700), ("p4", "2020-03-01", "2020-05-01", 650), ("p4", "2021-01-10", None, 750),
        # p5: duplicate rows of an ongoing lease; p6: an ongoing lease followed by another (end unknown).
        ("p5", "2020-01-01", None, 500), ("p5", "2020-01-01", None, 500),
        ("p6", "2020-01-01", None, 600), ("p6", "2021-03-01", "2022-02-28", 650),
    ]
    frame = pd.DataFrame(rows, columns=["property_id", "start_date", "end_date", "monthly_rent"])
    return frame.assign(start_date=pd.to_datetime(frame["start_date"]), end_date=pd.to_datetime(frame["end_date"]))


def test_vacancy_spells_handle_messy_leases() -> None:
    spells = vacancy_spells(_messy_leases(), as_of=pd.Timestamp("2021-11-30")).set_index("unit_id")

    p1 = spells.loc["p1"]
    assert p1["gap_days"].tolist() == [20.0, 16.0]  # inclusive end dates: 1..20 Jan are vacant
    assert p1["asking_rent"].tolist() == [1100.0, 1200.0]
    assert p1["let_within_30d"].tolist() == [1.0, 1.0]
    assert p1["month"].tolist() == [1, 5]  # month of the first vacant day

    p2 = spells.loc[["p2"]].iloc[0]
    assert p2["censored"] and p2["let_within_30d"] == 0.0 and np.isnan(p2["asking_rent"])

    p3 = spells.loc["p3"]
    assert p3.iloc[0]["overlap"] and p3.iloc[0]["gap_days"] == 0.0 and p3.iloc[0]["let_within_30d"] == 1.0
    assert p3.iloc[1]["censored"] and np.isnan(p3.iloc[1]["let_within_30d"])  # only 10 days vacant so far

    p4 = spells.loc[["p4"]]
    assert len(p4) == 1 and p4.iloc[0]["gap_days"] == 9.0  # the sublet opened no vacancy

    assert "p5" not in spells.index and "p6" not in spells.index  # ongoing, or vacancy start unknown


def test_vacancy_spells_take_asking_rent_from_listings() -> None:
    leases = _messy_leases()
    listings = pd.DataFrame(
        {"listing_id": ["L1", "L2"], "property_id": ["p1", "p2"], "listed_at": pd.to_datetime(["2021-01-02", "2020-07-05"]),
         "monthly_rent": [1150.0, 950.0]}
    )
    spells = vacancy_spells(leases, listings=listings, as_of=pd.Timestamp("2021-11-30")).set_index("unit_id")
    assert spells.loc["p1"].iloc[0]["asking_rent"] == 1150.0
    assert spells.loc["p1"].iloc[0]["asking_source"] == "listing"
    assert spells.loc["p1"].iloc[1]["asking_source"] == "lease"
    assert spells.loc[["p2"]].iloc[0]["asking_rent"] == 950.0  # the censored spell gets its asking rent


def test_lease_terms_count_contractual_ends() -> None:
    terms = lease_terms(_messy_leases(), min_count=1)
    assert terms["*"] == pytest.approx(np.mean([366, 115, 182, 336, 371, 366, 62, 365]))


# -- calendar -----------------------------------------------------------------------------------


def test_calendar_occupancy_is_a_monthly_proxy() -> None:
    dates = pd.date_range("2024-01-01", "2024-02-29")
    calendar = pd.DataFrame(
        {
            "listing_id": "7",
            "date": dates.strftime("%Y-%m-%d"),
            "available": np.where(dates.day <= 10, "f", "t"),  # raw Inside Airbnb flags
            "price": np.where(dates.month == 1, "$100.00", "$1,200.00"),
        }
    )
    properties = pd.DataFrame({"property_id": ["7"], "city": ["Albany"], "bedrooms": [2.0]})
    monthly = calendar_occupancy(calendar, properties)
    assert monthly["occupancy"].tolist() == pytest.approx([10 / 31, 10 / 29])
    assert monthly["asking_rent"].tolist() == [100.0, 1200.0]
    assert monthly["market_rent"].tolist() == [100.0, 100.0]  # the listing's median nightly price (31 of 60 days)
    assert (monthly["basis"] == BASIS_CALENDAR).all() and "blocked" in BASIS_CALENDAR
    assert monthly["city"].tolist() == ["Albany", "Albany"]


def test_calendar_model_predicts_occupancy_not_lease_up() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    ratio = np.exp(rng.normal(0, 0.2, n))
    occupancy = 1 / (1 + np.exp(-(0.2 - 3.0 * np.log(ratio))))
    frame = pd.DataFrame(
        {"asking_rent": 100 * ratio, "market_rent": 100.0, "month": rng.integers(1, 13, n), "days": 30,
         "occupancy": rng.binomial(30, occupancy) / 30}
    )
    model = OccupancyModel(target="occupancy").fit(frame)
    predicted = model.predict(frame.head(5))
    assert predicted["let_probability_30d"].isna().all()
    assert model.price_slope == pytest.approx(-3.0, abs=0.3)
    assert (predicted["basis"] == BASIS_CALENDAR).all()


# -- price response ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["logistic", "lightgbm"])
def test_higher_asking_rent_never_raises_probability_or_occupancy(
    engine: str, logistic_model: OccupancyModel, lightgbm_model: OccupancyModel
) -> None:
    model = logistic_model if engine == "logistic" else lightgbm_model
    rng = np.random.default_rng(11)
    for trial in range(5):
        units = random_units(200, seed=100 + trial)
        ratios = np.sort(np.exp(rng.uniform(-0.7, 0.7, 25)))
        occupancy, probability = [], []
        for ratio in ratios:
            predicted = model.predict(units.assign(asking_rent=units["market_rent"] * ratio))
            occupancy.append(predicted["expected_occupancy"].to_numpy())
            probability.append(predicted["let_probability_30d"].to_numpy())
        assert np.all(np.diff(np.array(occupancy), axis=0) <= 1e-12)
        assert np.all(np.diff(np.array(probability), axis=0) <= 1e-12)


def test_price_coefficient_is_bounded_even_when_data_say_otherwise() -> None:
    # Confounded data (good units priced high and let fast) push an unconstrained slope positive.
    confounded = simulate_spells(3000, slope=+2.0)
    model = OccupancyModel().fit(confounded)
    assert model.price_slope == 0.0
    assert model.unconstrained_price_slope(confounded) == pytest.approx(2.0, abs=0.6)  # the diagnostic tells
    units = random_units(50, seed=1)
    low = model.predict(units.assign(asking_rent=units["market_rent"] * 0.8))
    high = model.predict(units.assign(asking_rent=units["market_rent"] * 1.2))
    assert np.all(high["expected_occupancy"].to_numpy() <= low["expected_occupancy"].to_numpy())


def test_recovers_the_simulated_slope(logistic_model: OccupancyModel) -> None:
    assert logistic_model.price_slope == pytest.approx(-6.0, abs=0.6)


def test_lightgbm_average_slope_is_negative_and_near_truth(lightgbm_model: OccupancyModel) -> None:
    assert lightgbm_model.average_price_slope(simulate_spells(500, seed=9)) == pytest.approx(-6.0, abs=2.0)


def test_yearly_occupancy_follows_the_renewal_model(logistic_model: OccupancyModel) -> None:
    predicted = logistic_model.predict(random_units(20, seed=4))
    hazard = -np.log1p(-predicted["let_probability_30d"]) / 30
    vacancy = 1 / np.expm1(hazard)
    assert np.allclose(predicted["expected_vacancy_days"], vacancy)
    assert np.allclose(predicted["expected_occupancy"], 365 / (365 + vacancy))


def test_beats_a_constant_rate_on_held_out_units(logistic_model: OccupancyModel) -> None:
    report = evaluate(logistic_model, simulate_spells(3000, seed=42))
    assert report["log_loss"] < report["baseline_log_loss"]
    assert report["brier"] < report["baseline_brier"]
    assert report["ece"] < 0.05


def test_schema_and_input_errors(logistic_model: OccupancyModel) -> None:
    units = random_units(5, seed=0)
    with pytest.raises(SchemaMismatch):
        logistic_model.predict(units.drop(columns="market_rent"))
    with pytest.raises(SchemaMismatch):
        logistic_model.predict(units.drop(columns="month"))
    with pytest.raises(InvalidInput):
        logistic_model.predict(units.assign(market_rent=0.0))
    assert logistic_model.predict(units.drop(columns="month").assign(date=pd.Timestamp("2024-07-01"))).shape[0] == 5


# -- the generator's known truth -------------------------------------------------------------------


def test_recovers_the_demo_generators_lease_up_slope() -> None:
    demo_data = pytest.importorskip("pipelines.demo_data")
    data = demo_data.generate(seed=11, n_properties=3000)
    spells = vacancy_spells(data.leases, data.properties, data.listings)
    truth = data.listing_truth.set_index("listing_id")
    spells["market_rent"] = spells["listing_id"].map(truth["market_rent"])

    known = spells.dropna(subset=["let_within_30d", "listing_id"])
    assert (known["let_within_30d"] == (known["listing_id"].map(truth["days_to_let"]) < 30)).all()

    model = OccupancyModel().fit(spells, lease_days=lease_terms(data.leases, data.properties))
    assert model.price_slope == pytest.approx(data.truth["leaseup"]["slope"], abs=1.2)


def test_calendar_joins_listing_features_by_listing_id() -> None:
    calendar = pd.DataFrame({"listing_id": "L1", "date": pd.date_range("2024-03-01", periods=31), "available": False, "price": 50.0})
    listings = pd.DataFrame({"listing_id": ["L1"], "property_id": ["P9"], "city": ["Berlin"], "monthly_rent": [900.0]})
    monthly = calendar_occupancy(calendar, listings)
    assert monthly[["city", "property_id"]].iloc[0].tolist() == ["Berlin", "P9"]
    assert monthly["occupancy"].iloc[0] == 1.0 and "monthly_rent" not in monthly.columns


@pytest.mark.parametrize("engine", ["logistic", "lightgbm"])
def test_rows_give_what_the_frame_gives(engine: str, logistic_model: OccupancyModel, lightgbm_model: OccupancyModel) -> None:
    """`predict` and `price_response` on mappings (one unit's answer) equal the frame path, with an
    unseen city, a missing category and size, and a date instead of a month."""
    from insights.ml.features import Rows

    model = logistic_model if engine == "logistic" else lightgbm_model
    frame = random_units(30, seed=21)
    frame["asking_rent"] = frame["market_rent"] * np.linspace(0.8, 1.2, 30)
    frame.loc[frame.index[0], "property_type"] = None
    rows = frame.to_dict("records")
    pd.testing.assert_frame_equal(model.predict(Rows(rows)), model.predict(frame.reset_index(drop=True)))
    arrays = model.predict_rows(Rows(rows))
    pd.testing.assert_frame_equal(pd.DataFrame(arrays), model.predict(frame.reset_index(drop=True)).drop(columns="basis"))
    dated = frame.drop(columns="month").assign(date=pd.Timestamp("2024-03-15"))
    pd.testing.assert_frame_equal(model.predict(Rows(dated.to_dict("records"))), model.predict(dated.reset_index(drop=True)))
    rents = frame[["market_rent"]].to_numpy() * np.array([[0.9, 1.0, 1.1]])
    for got, expected in zip(model.price_response(Rows(rows))(rents), model.price_response(frame)(rents), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(InvalidInput):
        model.predict(Rows([{**rows[0], "market_rent": 0.0}]))
