"""Feature building on tiny in-memory frames: trend, encodings, schema, ids never features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insights.errors import SchemaMismatch
from insights.ml.explain import driver_name, sequential_money
from insights.ml.features import CityTrend, FeatureBuilder, TargetEncoder, check_schema, months_since_origin
from insights.ml.splits import group_folds, group_labels


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["Kraków", "Gdańsk"], n)
    size = rng.uniform(20, 120, n)
    months = rng.integers(0, 24, n)
    listed = pd.to_datetime("2023-01-01") + pd.to_timedelta(months * 30.44, unit="D")
    rent = np.exp(3.5 + np.log(size) + 0.01 * months + np.where(city == "Kraków", 0.2, 0.0) + rng.normal(0, 0.05, n))
    return pd.DataFrame({
        "listing_id": pd.array([f"L{i}" for i in range(n)], dtype="string"),
        "city": pd.array(city, dtype="string"),
        "district": pd.array([f"d{i % 60}" for i in range(n)], dtype="string"),
        "size_sqm": size,
        "rooms": rng.integers(1, 5, n).astype(float),
        "balcony": pd.array(rng.random(n) < 0.5, dtype="boolean"),
        "latitude": np.where(city == "Kraków", 50.06, 54.35) + rng.normal(0, 0.02, n),
        "longitude": np.where(city == "Kraków", 19.94, 18.65) + rng.normal(0, 0.03, n),
        "listed_at": listed,
        "monthly_rent": rent,
        "currency": "PLN",
    })


def test_months_since_origin() -> None:
    values = pd.Series(pd.to_datetime(["2000-01-01", "2001-02-01", None]))
    np.testing.assert_allclose(months_since_origin(values)[:2], [0.0, 13.0])
    assert np.isnan(months_since_origin(values)[2])


def test_city_trend_recovers_growth_and_extrapolates() -> None:
    frame = _frame(2000)
    t = months_since_origin(frame["listed_at"])
    log_rent = np.log(frame["monthly_rent"].to_numpy())
    trend = CityTrend().fit(frame["city"], t, log_rent, np.log(frame["size_sqm"].to_numpy()))
    assert np.allclose(trend.slope[:2], 0.01, atol=0.002)
    later = trend.offset(pd.Series(["Kraków", "Kraków"]), np.array([300.0, 312.0]))
    assert later[1] - later[0] == pytest.approx(12 * trend.slope[list(trend.cities).index("Kraków")])


def test_target_encoder_smooths_towards_the_prior() -> None:
    values = pd.Series(["a"] * 2 + ["b"] * 200, dtype="string")
    target = np.array([10.0, 10.0] + [0.0] * 200)
    encoder = TargetEncoder(smoothing=20).fit(values, target)
    encoded = encoder.transform(pd.Series(["a", "b", "zzz"], dtype="string"))
    prior = target.mean()
    assert prior < encoded[0] < 10.0  # two rows do not earn their own mean
    assert encoded[1] == pytest.approx(prior * 20 / 220)
    assert encoded[2] == pytest.approx(prior)  # unseen -> prior


def test_builder_roles_and_no_ids() -> None:
    frame = _frame()
    y = np.log(frame["monthly_rent"].to_numpy())
    builder = FeatureBuilder(knn_k=5, use_knn=True)
    X = builder.fit_transform(frame, y, group_folds(group_labels(frame), n_splits=5, seed=0))
    assert X.shape == (len(frame), len(builder.names))
    assert "listing_id" not in builder.schema and not any("listing" in n for n in builder.names)
    assert builder.schema == {"city": "str", "district": "str", "size_sqm": "float", "rooms": "float", "balcony": "bool",
                              "latitude": "float", "longitude": "float", "listed_at": "datetime"}
    assert {"district_encoded", "neighbourhood_rent_per_sqm", "centre_distance_km", "months_since_2000"} <= set(builder.names)
    assert [builder.names[i] for i in builder.categorical] == ["city"]
    again = builder.transform(frame.assign(listing_id="x"))
    assert again.shape == X.shape


def test_check_schema_names_missing_and_mistyped_columns() -> None:
    schema = {"city": "str", "size_sqm": "float", "listed_at": "datetime"}
    frame = pd.DataFrame({"city": ["a"], "size_sqm": ["big"], "listed_at": pd.to_datetime(["2024-01-01"])})
    with pytest.raises(SchemaMismatch, match="size_sqm") as caught:
        check_schema(frame, schema)
    assert caught.value.details["mistyped"]
    with pytest.raises(SchemaMismatch, match="missing columns: listed_at"):
        check_schema(frame.drop(columns="listed_at").assign(size_sqm=1.0), schema)
    check_schema(frame.assign(size_sqm=[None]), schema)  # all-missing matches any kind


def test_sequential_money_adds_up() -> None:
    contributions = np.array([0.1, -0.3, 0.05])
    order, money = sequential_money(1000.0, contributions)
    assert list(order) == [1, 0, 2]
    assert money.sum() == pytest.approx(1000.0 * (np.exp(contributions.sum()) - 1))
    assert driver_name("size_per_room") == "size" and driver_name("centre_distance") == "location"
