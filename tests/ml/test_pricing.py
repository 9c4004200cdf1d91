"""Optimal rent: maximises the revenue curve, scales with the market rent, prices batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insights.errors import InvalidInput
from insights.ml import occupancy as occupancy_module
from insights.ml import pricing
from insights.ml.occupancy import OccupancyModel
from insights.ml.pricing import DEFAULT_RATIOS, price_units, revenue_curve
from tests.ml.test_occupancy import random_units, simulate_spells


class ExponentialDemand:
    """occupancy = exp(-k * asking / market): revenue peaks exactly at asking = market / k."""

    basis = "stub"

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        ratio = frame["asking_rent"].to_numpy(dtype=float) / frame["market_rent"].to_numpy(dtype=float)
        occupancy = np.exp(-self.k * ratio)
        return pd.DataFrame({"expected_occupancy": occupancy, "let_probability_30d": occupancy}, index=frame.index)


@pytest.fixture(scope="module")
def model() -> OccupancyModel:
    return OccupancyModel().fit(simulate_spells(4000, slope=-8.0), lease_days=365.0)


def test_finds_the_analytic_optimum() -> None:
    units = pd.DataFrame({"market_rent": [1000.0, 2500.0]}, index=["a", "b"])
    result = price_units(ExponentialDemand(1 / 1.13), units)
    assert result.units["optimal_rent"].to_numpy() == pytest.approx([1130.0, 2825.0], rel=2e-3)
    assert not result.units["at_grid_edge"].any()
    assert (result.units[["revenue_change_up_5pct", "revenue_change_down_5pct"]] < 0).all().all()


def test_optimal_rent_maximises_the_revenue_curve(model: OccupancyModel) -> None:
    units = random_units(100, seed=5)
    result = price_units(model, units, with_curves=True)
    best_on_curve = result.curves.groupby("unit")["revenue"].max().reindex(units.index)
    assert np.all(result.units["optimal_revenue"].to_numpy() >= best_on_curve.to_numpy() * (1 - 1e-12))
    interior = ~result.units["at_grid_edge"]
    assert interior.mean() > 0.5
    assert (result.units.loc[interior, ["revenue_change_up_5pct", "revenue_change_down_5pct"]] <= 1e-12).all().all()
    # Revenue is the product of its parts.
    table = result.units
    assert np.allclose(table["optimal_revenue"], table["optimal_rent"] * table["optimal_occupancy"] * 12)


def test_optimal_rent_moves_with_market_rent(model: OccupancyModel) -> None:
    units = random_units(30, seed=8)
    base = price_units(model, units).units
    doubled = price_units(model, units.assign(market_rent=units["market_rent"] * 2)).units
    assert np.allclose(doubled["optimal_rent"], 2 * base["optimal_rent"])
    assert np.allclose(doubled["optimal_occupancy"], base["optimal_occupancy"])


def test_occupancy_is_reported_at_the_asking_rent_or_the_market_rent(model: OccupancyModel) -> None:
    units = random_units(10, seed=2)
    asked = units.assign(asking_rent=units["market_rent"] * 1.2)
    asked.loc[asked.index[:3], "asking_rent"] = np.nan  # falls back to the market rent
    table = price_units(model, asked).units
    at_market = model.predict(units.assign(asking_rent=units["market_rent"]))
    at_asking = model.predict(asked.assign(asking_rent=table["asking_rent"]))
    assert np.allclose(table["expected_occupancy"], at_asking["expected_occupancy"])
    assert np.allclose(table["expected_occupancy"].iloc[:3], at_market["expected_occupancy"].iloc[:3])
    assert np.all(table["expected_occupancy"].iloc[3:] < at_market["expected_occupancy"].iloc[3:])
    assert table["basis"].str.startswith("lease-up").all()


class PredictOnly:
    """A model seen only through `predict`: pricing then repeats the units at each rent itself."""

    def __init__(self, model: OccupancyModel) -> None:
        self.model = model
        self.basis = model.basis

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.model.predict(frame)


@pytest.fixture(scope="module")
def tree_model() -> OccupancyModel:
    return OccupancyModel(engine="lightgbm", lightgbm_params={"n_estimators": 40}).fit(
        simulate_spells(3000, slope=-8.0), lease_days=365.0)


@pytest.mark.parametrize("engine", ["logistic", "lightgbm"])
def test_the_models_price_response_gives_what_predict_gives(engine: str, model: OccupancyModel,
                                                             tree_model: OccupancyModel) -> None:
    chosen = model if engine == "logistic" else tree_model
    units = random_units(25, seed=11).set_axis([f"unit-{i}" for i in range(25)])
    units = units.assign(asking_rent=units["market_rent"] * np.linspace(0.8, 1.3, 25))
    fast = price_units(chosen, units, with_curves=True)
    slow = price_units(PredictOnly(chosen), units, with_curves=True)
    pd.testing.assert_frame_equal(fast.units, slow.units, rtol=1e-9)
    pd.testing.assert_frame_equal(fast.curves, slow.curves, rtol=1e-9)
    # One unit's figures and curve, read without the frames, are the frames' (by position and by label).
    assert fast.unit(3) == fast.units.iloc[3].to_dict()
    in_frame = fast.curves[fast.curves["unit"] == "unit-3"].drop(columns="unit").to_dict("records")
    assert fast.curve("unit-3") == in_frame and len(in_frame) == len(pricing.DEFAULT_RATIOS)
    respond = chosen.price_response(units.drop(columns="asking_rent"))
    occupancy, let_p = respond(units[["asking_rent"]].to_numpy())
    predicted = chosen.predict(units)
    assert np.allclose(occupancy[:, 0], predicted["expected_occupancy"], rtol=1e-9)
    assert np.allclose(let_p[:, 0], predicted["let_probability_30d"], rtol=1e-9)
    with pytest.raises(InvalidInput):
        respond(np.zeros((25, 1)))


def test_batch_is_chunked_without_changing_results(model: OccupancyModel, tree_model: OccupancyModel,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    units = random_units(40, seed=3).set_axis([f"unit-{i}" for i in range(40)])
    whole = price_units(PredictOnly(model), units).units
    trees = price_units(tree_model, units).units
    monkeypatch.setattr(pricing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(occupancy_module, "PREDICT_CHUNK_ROWS", 100)
    chunked = price_units(PredictOnly(model), units).units
    pd.testing.assert_frame_equal(whole, chunked)
    assert list(chunked.index) == list(units.index)
    pd.testing.assert_frame_equal(trees, price_units(tree_model, units).units)


def test_revenue_curve_of_one_unit(model: OccupancyModel) -> None:
    unit = random_units(1, seed=4).iloc[0]
    points = revenue_curve(model, unit)
    assert len(points) == len(DEFAULT_RATIOS)
    assert set(points[0]) == {"ratio", "rent", "occupancy", "let_probability_30d", "revenue"}
    occupancy = [p["occupancy"] for p in points]
    assert all(a >= b for a, b in zip(occupancy, occupancy[1:], strict=False))


def test_edge_optimum_is_flagged() -> None:
    result = price_units(ExponentialDemand(0.1), pd.DataFrame({"market_rent": [100.0]}))
    assert result.units["at_grid_edge"].iloc[0]
    assert result.units["optimal_ratio"].iloc[0] == pytest.approx(1.4)


def test_bad_input() -> None:
    with pytest.raises(InvalidInput):
        price_units(ExponentialDemand(1.0), pd.DataFrame({"rent": [1.0]}))
    with pytest.raises(InvalidInput):
        price_units(ExponentialDemand(1.0), pd.DataFrame({"market_rent": [1.0]}), ratios=[1.0])
    with pytest.raises(InvalidInput):
        price_units(ExponentialDemand(1.0), pd.DataFrame({"market_rent": [1.0]})).curve(0)


def test_units_as_rows_are_priced_as_the_frame(model: OccupancyModel) -> None:
    from insights.ml.features import Rows

    units = random_units(5, seed=13).assign(asking_rent=lambda f: f["market_rent"] * 1.1)
    from_rows = price_units(model, Rows(units.to_dict("records")), with_curves=True)
    from_frame = price_units(model, units.reset_index(drop=True), with_curves=True)
    pd.testing.assert_frame_equal(from_rows.units, from_frame.units)
    pd.testing.assert_frame_equal(from_rows.curves, from_frame.curves)
    assert from_rows.curve(3) == from_frame.curve(3)
    # A model seen only through `predict` gets the rows as a frame.
    pd.testing.assert_frame_equal(price_units(PredictOnly(model), Rows(units.to_dict("records"))).units, from_frame.units,
                                  rtol=1e-9)
