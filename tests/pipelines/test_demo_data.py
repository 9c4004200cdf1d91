"""The demo data generator: canonical frames, reproducibility, and recovery of its known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insights.data.load import load_canonical
from insights.data.schema import CALENDAR_COLUMNS, LEASE_COLUMNS, LISTING_COLUMNS, PROPERTY_COLUMNS
from pipelines.demo_data import (
    AMENITY_PREMIA,
    CURRENCY_BY_COUNTRY,
    DemoData,
    draw_market,
    generate,
    generate_listings,
    lease_up_probability,
    load_demo_data,
    random_markets,
    true_market_rent,
    write_demo_data,
)

DTYPES = {"str": "str", "float": "float64", "bool": "bool", "datetime": "datetime64[us]"}
FRAMES = {"properties": PROPERTY_COLUMNS, "listings": LISTING_COLUMNS, "leases": LEASE_COLUMNS,
          "calendar": CALENDAR_COLUMNS}


@pytest.fixture(scope="module")
def demo() -> DemoData:
    """The default demo portfolio (as `leaseora demo-data` makes it)."""
    return generate()


@pytest.fixture(scope="module")
def three_cities() -> DemoData:
    """Three cities with fixed growth: one rising, one falling, one drawn."""
    return generate(seed=11, n_properties=3_000, cities=["Berlin", "warszawa", "Austin"],
                    growth={"Berlin": 0.06, "Warsaw": -0.03}, include_calendar=False)


def _frames(data: DemoData) -> dict[str, pd.DataFrame | None]:
    return {name: getattr(data, name) for name in FRAMES}


def test_same_seed_gives_identical_frames_and_truth() -> None:
    first, again = generate(seed=3, n_properties=300), generate(seed=3, n_properties=300)
    for name, frame in _frames(first).items():
        pd.testing.assert_frame_equal(frame, _frames(again)[name])
    assert first.truth == again.truth
    other = generate(seed=4, n_properties=300)
    assert not first.listings["monthly_rent"].equals(other.listings["monthly_rent"])


def test_frames_have_exactly_the_canonical_columns_and_types(demo: DemoData) -> None:
    for name, columns in FRAMES.items():
        frame = getattr(demo, name)
        assert list(frame.columns) == list(columns), name
        assert {c: str(frame[c].dtype) for c in columns} == {c: DTYPES[k] for c, k in columns.items()}, name
        assert not frame.isna().any().any(), name


def test_demo_defaults_are_demo_sized(demo: DemoData) -> None:
    assert len(demo.properties) == 4_000
    assert 20_000 <= len(demo.listings) <= 40_000
    assert demo.truth["counts"]["listings"] == len(demo.listings)
    # Listings come from the portfolio (P...) and from comparable market units (M...).
    in_portfolio = demo.listings["property_id"].isin(demo.properties["property_id"])
    assert 0.2 < in_portfolio.mean() < 0.5
    assert demo.listings.loc[~in_portfolio, "property_id"].str.startswith("M").all()
    assert {"Berlin", "Munich", "Hamburg", "Warsaw", "Kraków", "New York"} <= set(demo.listings["city"])
    listed = demo.listings["listed_at"]
    assert listed.max() <= pd.Timestamp(demo.truth["end"]) and listed.min() >= pd.Timestamp(demo.truth["start"])
    assert (listed.max() - listed.min()).days > 3 * 365 - 40


def test_features_are_realistic(demo: DemoData) -> None:
    listings = demo.listings
    studios = listings[listings["property_type"] == "studio"]
    assert len(studios) > 0 and (studios["bedrooms"] == 0).all()
    assert set(listings["property_type"]) == {"apartment", "condo", "house", "studio"}
    assert listings["size_sqm"].corr(listings["bedrooms"]) > 0.7
    assert listings["size_sqm"].between(15, 400).all()
    assert (listings["floor"] < listings["total_floors"]).all()
    assert (listings["currency"] == listings["country"].map(CURRENCY_BY_COUNTRY)).all()
    for city, spec in demo.truth["cities"].items():
        rows = listings[listings["city"] == city]
        assert set(rows["district"]) <= set(spec["districts"])
        assert (rows["latitude"] - spec["latitude"]).abs().max() < 0.4
        assert (rows["longitude"] - spec["longitude"]).abs().max() < 0.5
    poland = listings.loc[listings["country"] == "Poland", "postcode"]
    assert poland.str.fullmatch(r"\d\d-\d\d\d").all()


def test_true_market_rent_explains_every_listing(demo: DemoData) -> None:
    market = true_market_rent(demo.listings, demo.truth)
    assert demo.listing_truth is not None
    # Asking rent = market * exp(eps), rounded to a whole unit of currency.
    eps = np.log(demo.listings["monthly_rent"].to_numpy() / market)
    np.testing.assert_allclose(eps, demo.listing_truth["log_ratio"], atol=0.01)
    assert abs(eps.std() - demo.truth["noise_sigma"]) < 0.005


def _log_rent_regression(listings: pd.DataFrame) -> pd.Series:
    """OLS of log rent on city x month, district, type, amenities, new build and log size."""
    labels = pd.DataFrame({
        "cm": listings["city"] + "|" + listings["listed_at"].dt.strftime("%Y-%m"),
        "d": listings["city"] + "|" + listings["district"],
        "t": listings["property_type"],
    })
    design = pd.get_dummies(labels).astype(float)
    # City x month dummies already span each city's level: drop one district per city and a type.
    first_districts = ["d_" + name for name in labels.groupby(listings["city"])["d"].first()]
    design = design.drop(columns=[*first_districts, "t_apartment"])
    design["log_size"] = np.log(listings["size_sqm"])
    design["new_build"] = (listings["year_built"] >= 2015).astype(float)
    for name in AMENITY_PREMIA:
        design[name] = listings[name].astype(float)
    x, y = design.to_numpy(), np.log(listings["monthly_rent"].to_numpy())
    coef = np.linalg.solve(x.T @ x, x.T @ y)
    return pd.Series(coef, index=design.columns)


def _annual_log_trend(values: pd.Series, truth: dict) -> float:
    """Annual log growth from month-labelled log levels, after removing the true season."""
    months = pd.PeriodIndex(values.index, freq="M")
    season = truth["season"]["amplitude"] * np.cos(2 * np.pi * (months.month - truth["season"]["peak_month"]) / 12)
    step = (months - months[0]).map(lambda d: d.n)
    return float(np.polyfit(np.asarray(step, dtype=float), values.to_numpy() - season, 1)[0] * 12)


def test_regression_recovers_size_elasticity_premia_and_growth(three_cities: DemoData) -> None:
    truth, listings = three_cities.truth, three_cities.listings
    coef = _log_rent_regression(listings)
    assert coef["log_size"] == pytest.approx(truth["size_elasticity"], abs=0.02)
    assert coef["furnished"] == pytest.approx(truth["amenity_premia"]["furnished"], abs=0.015)
    assert coef["new_build"] == pytest.approx(truth["new_build"]["premium"], abs=0.015)
    assert truth["cities"]["Berlin"]["annual_growth"] == 0.06
    assert truth["cities"]["Warsaw"]["annual_growth"] == -0.03
    for city in ("Berlin", "Warsaw", "Austin"):
        levels = coef.filter(like=f"cm_{city}|")
        levels.index = [label.split("|")[1] for label in levels.index]
        estimated = _annual_log_trend(levels, truth)
        assert estimated == pytest.approx(np.log1p(truth["cities"][city]["annual_growth"]), abs=0.01), city


def test_listing_mix_shifts_so_naive_medians_overstate_growth(three_cities: DemoData) -> None:
    truth, listings = three_cities.truth, three_cities.listings
    gaps = []
    for city in ("Berlin", "Warsaw", "Austin"):
        rows = listings[listings["city"] == city]
        naive = np.log(rows.groupby(rows["listed_at"].dt.strftime("%Y-%m"))["monthly_rent"].median())
        gaps.append(_annual_log_trend(naive, truth) - np.log1p(truth["cities"][city]["annual_growth"]))
    assert np.mean(gaps) > 0.015
    # Volume is seasonal too: summer months list more than winter ones.
    by_month = listings.groupby(listings["listed_at"].dt.month).size()
    assert by_month[[6, 7, 8]].sum() > 1.2 * by_month[[12, 1, 2]].sum()


def test_growth_truth_is_consistent_with_the_index(three_cities: DemoData) -> None:
    truth = three_cities.truth
    index = truth["index"]["Berlin"]
    assert index[0] == 1.0 and len(index) == len(truth["months"]) == 36
    growth = truth["growth"]["Berlin"]
    assert index[12] / index[0] - 1 == pytest.approx(0.06)
    assert growth["monthly_rate"] == pytest.approx(1.06 ** (1 / 12) - 1)
    assert len(growth["yoy"]) == 24 and all(v == pytest.approx(0.06) for v in growth["yoy"].values())
    assert all(v == pytest.approx(growth["quarterly_rate"]) for v in growth["quarterly"].values())
    assert len(growth["quarterly"]) >= 10 and len(growth["yearly"]) >= 1


def _let_within_30_days(data: DemoData) -> pd.DataFrame:
    """Portfolio listings joined to the lease that followed them, with the true log price ratio."""
    listings = data.listings[data.listings["property_id"].isin(data.properties["property_id"])].copy()
    listings["log_ratio"] = np.log(listings["monthly_rent"] / true_market_rent(listings, data.truth))
    joined = pd.merge_asof(
        listings.sort_values("listed_at"), data.leases.sort_values("start_date")[["property_id", "start_date"]],
        left_on="listed_at", right_on="start_date", by="property_id", direction="forward")
    # Listings of the last 30 days have not had the chance to be let within 30 days yet.
    horizon_end = pd.Timestamp(data.truth["end"]) - pd.Timedelta(days=30)
    joined = joined[joined["listed_at"] <= horizon_end]
    joined["let"] = (joined["start_date"] - joined["listed_at"]).dt.days < 30
    return joined


def _logistic_fit(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Newton-Raphson logistic regression with a known offset."""
    beta = np.zeros(x.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-(x @ beta + offset)))
        beta += np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]), x.T @ (y - p))
    return beta


def test_lease_up_falls_as_asking_rises_above_market(demo: DemoData) -> None:
    joined = _let_within_30_days(demo)
    rates = joined.groupby(pd.qcut(joined["log_ratio"], 5), observed=True)["let"].mean()
    assert rates.is_monotonic_decreasing and rates.iloc[0] - rates.iloc[-1] > 0.3
    lu = demo.truth["leaseup"]
    x = np.column_stack([np.ones(len(joined)), joined["log_ratio"],
                         np.cos(2 * np.pi * (joined["listed_at"].dt.month - lu["peak_month"]) / 12)])
    beta = _logistic_fit(x, joined["let"].to_numpy(float), joined["city"].map(lu["city_offsets"]).to_numpy())
    assert beta[1] == pytest.approx(lu["slope"], abs=1.2)
    assert beta[0] == pytest.approx(lu["intercept"], abs=0.15)
    assert lease_up_probability(0.2, 7, demo.truth, "Berlin") < lease_up_probability(0.0, 7, demo.truth, "Berlin")


def test_let_rate_and_occupancy_match_the_stated_expectation(demo: DemoData) -> None:
    assert demo.listing_truth is not None
    lt = demo.listing_truth.assign(city=demo.listings["city"])
    expected = lt["city"].map({c: v["let_within_horizon"] for c, v in demo.truth["expected_occupancy"].items()})
    assert (lt["days_to_let"] < 30).mean() == pytest.approx(expected.mean(), abs=0.03)
    for value in demo.truth["expected_occupancy"].values():
        assert 0.8 < value["occupancy"] < 0.97


def test_leases_are_consecutive_with_vacancy_between(demo: DemoData) -> None:
    leases = demo.leases.sort_values(["unit_id", "start_date"])
    assert (leases["end_date"] > leases["start_date"]).all()
    previous_end = leases.groupby("unit_id")["end_date"].shift(1)
    gap = (leases["start_date"] - previous_end).dt.days.dropna()
    assert (gap >= 1).all() and gap.median() > 5
    assert set(leases["property_id"]) <= set(demo.properties["property_id"])


def test_calendar_follows_listings_and_leases(demo: DemoData) -> None:
    calendar = demo.calendar
    assert calendar is not None and 0 < len(calendar) <= 40 * 180
    listings = demo.listings.set_index("listing_id")
    assert calendar["listing_id"].isin(listings.index).all()
    rows = calendar.join(listings[["property_id", "listed_at"]], on="listing_id")
    assert (rows["date"] >= rows["listed_at"]).all()
    leases = demo.leases[["property_id", "start_date", "end_date"]]
    merged = rows.merge(leases, on="property_id")
    covered = merged[(merged["date"] >= merged["start_date"]) & (merged["date"] <= merged["end_date"])]
    let_days = set(zip(covered["listing_id"], covered["date"]))
    booked = set(zip(rows.loc[~rows["available"], "listing_id"], rows.loc[~rows["available"], "date"]))
    assert booked == let_days
    assert 0.02 < rows["available"].mean() < 0.5


def test_generate_listings_makes_a_million_canonical_rows() -> None:
    frame = generate_listings(1_000_000, seed=1)
    assert frame.shape == (1_000_000, len(LISTING_COLUMNS))
    assert list(frame.columns) == list(LISTING_COLUMNS)
    assert frame["listing_id"].is_unique and frame["monthly_rent"].gt(0).all()
    assert frame["listed_at"].is_monotonic_increasing


def test_generate_listings_is_reproducible_and_follows_its_market() -> None:
    market = draw_market(seed=2, cities=["Munich", "Chicago"], growth={"Munich": 0.1})
    frame = generate_listings(20_000, seed=2, market=market)
    pd.testing.assert_frame_equal(frame, generate_listings(20_000, seed=2, market=market))
    truth = market.truth()
    eps = np.log(frame["monthly_rent"] / true_market_rent(frame, truth))
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - truth["noise_sigma"]) < 0.01
    assert set(frame["city"]) == {"Munich", "Chicago"}


def test_random_markets_give_many_markets_some_thin(tmp_path: Path) -> None:
    cities = random_markets(60, seed=1)
    data = generate(seed=1, n_properties=2_000, cities=cities, include_calendar=False)
    assert data.calendar is None
    growth = {c.name: c.growth for c in cities}
    assert {k: v["annual_growth"] for k, v in data.truth["cities"].items()} == growth
    assert min(growth.values()) < -0.015 and max(growth.values()) > 0.015
    counts = data.listings["city"].value_counts().reindex(list(growth), fill_value=0)
    assert (counts < 30).sum() >= 5 and (counts > 200).sum() >= 10
    assert set(data.listings["currency"]) == {"EUR", "PLN", "USD"}


def test_unknown_city_or_growth_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown city"):
        generate(n_properties=10, cities=["Atlantis"])
    with pytest.raises(ValueError, match="growth"):
        generate(n_properties=10, cities=["Berlin"], growth={"Munich": 0.02})


def test_fixing_one_city_growth_leaves_the_others_unchanged() -> None:
    drawn = draw_market(seed=5).truth()["cities"]
    fixed = draw_market(seed=5, growth={"Kraków": 0.2}).truth()["cities"]
    assert fixed["Kraków"]["annual_growth"] == 0.2
    assert all(fixed[c]["annual_growth"] == drawn[c]["annual_growth"] for c in drawn if c != "Kraków")
    regimes = {v["regime"] for v in drawn.values()}
    assert regimes == {"up", "flat", "down"}


def test_write_demo_data_round_trips(tmp_path: Path) -> None:
    paths = write_demo_data(tmp_path / "demo", seed=5, n_properties=200, end="2025-06-30")
    assert set(paths) == {"properties", "listings", "leases", "calendar", "truth"}
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(p.name for p in paths.values())
    expected = generate(seed=5, n_properties=200, end="2025-06-30")
    loaded = load_demo_data(tmp_path / "demo")
    for name, frame in _frames(expected).items():
        pd.testing.assert_frame_equal(_frames(loaded)[name], frame, check_exact=False, rtol=1e-12)
    assert json.loads(paths["truth"].read_text(encoding="utf-8")) == expected.truth
    assert list(pd.read_csv(paths["listings"]).columns) == list(LISTING_COLUMNS)
    # The project's own ingest reads every file without a reject.
    for kind in FRAMES:
        clean, rejects = load_canonical(paths[kind], kind=kind)
        assert len(rejects) == 0 and len(clean) == len(_frames(expected)[kind]), kind
    # Writing again without a calendar removes the stale one.
    again = write_demo_data(tmp_path / "demo", seed=5, n_properties=200, include_calendar=False)
    assert "calendar" not in again and not (tmp_path / "demo" / "calendar.csv").exists()
