"""The hedonic time-dummy index: exact least squares, constant quality, cluster bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insights.feed.index import fit_index, hedonic_features

PERIODS = pd.period_range("2025-01", periods=6, freq="M")


def synthetic(n_flats: int = 3000, *, seed: int = 0, monthly: float = 0.01) -> tuple[pd.DataFrame, np.ndarray]:
    """Flats observed in random months; log rent = 0.8 log size + 0.05 balcony + monthly growth + noise."""
    rng = np.random.default_rng(seed)
    flats = pd.DataFrame({
        "listing_id": [f"L{i}" for i in range(n_flats)],
        "size_sqm": np.exp(rng.normal(4.0, 0.35, n_flats)).round(1),
        "balcony": rng.random(n_flats) < 0.5,
    })
    which = rng.integers(0, n_flats, 3 * n_flats)  # flats are relisted: about three rows each
    rows = flats.iloc[which].reset_index(drop=True)
    period = rng.integers(0, len(PERIODS), len(rows))
    flat_effect = rng.normal(0.0, 0.1, n_flats)[which]
    log_rent = 3.0 + 0.8 * np.log(rows["size_sqm"]) + 0.05 * rows["balcony"] + monthly * period
    return rows.assign(period=period), (log_rent + flat_effect + rng.normal(0, 0.05, len(rows))).to_numpy()


def test_point_estimate_is_the_least_squares_time_dummy_fit() -> None:
    rows, y = synthetic()
    x = hedonic_features(rows)
    fit = fit_index(y, rows["period"].to_numpy(), x, pd.factorize(rows["listing_id"])[0], periods=PERIODS, n_boot=20)
    dummies = np.eye(len(PERIODS))[rows["period"]]
    coef = np.linalg.lstsq(np.column_stack([dummies, x]), y, rcond=None)[0]
    np.testing.assert_allclose(fit.log_index, coef[: len(PERIODS)] - coef[0], atol=1e-6)


def test_growth_is_recovered_with_a_sensible_bootstrap_spread() -> None:
    rows, y = synthetic(monthly=0.01)
    fit = fit_index(y, rows["period"].to_numpy(), hedonic_features(rows), pd.factorize(rows["listing_id"])[0],
                    periods=PERIODS, n_boot=200, seed=1)
    estimate, draws = fit.log_growth(PERIODS[0], PERIODS[-1])
    assert abs(estimate - 0.05) < 4 * draws.std()
    assert 0.001 < draws.std() < 0.02
    assert fit.units.sum() >= len(PERIODS) * 10


def test_a_month_of_only_large_flats_is_not_growth() -> None:
    """Mix shift: the raw median jumps in the last month, the constant-quality index does not."""
    rows, y = synthetic(monthly=0.0, seed=3)
    last = rows["period"] == len(PERIODS) - 1
    keep = ~last | (rows["size_sqm"] > rows["size_sqm"].quantile(0.75))
    rows, y = rows[keep].reset_index(drop=True), y[keep.to_numpy()]
    medians = pd.Series(np.exp(y)).groupby(rows["period"]).median()
    assert medians.iloc[-1] / medians.iloc[-2] > 1.3  # the naive figure says +30% and more
    fit = fit_index(y, rows["period"].to_numpy(), hedonic_features(rows), pd.factorize(rows["listing_id"])[0],
                    periods=PERIODS, n_boot=200)
    estimate, draws = fit.log_growth(PERIODS[-2], PERIODS[-1])
    assert abs(estimate) < 0.01 and abs(estimate) < 3 * draws.std()


def test_cluster_bootstrap_spread_matches_the_sampling_spread_of_relisted_flats() -> None:
    """Rows of one flat share its unobserved quality: the bootstrap must resample flats, not rows."""
    estimates, spreads = [], []
    for seed in range(30):
        rows, y = synthetic(n_flats=400, seed=100 + seed)
        fit = fit_index(y, rows["period"].to_numpy(), hedonic_features(rows), pd.factorize(rows["listing_id"])[0],
                        periods=PERIODS, n_boot=100, seed=seed)
        estimate, draws = fit.log_growth(PERIODS[0], PERIODS[-1])
        estimates.append(estimate)
        spreads.append(draws.std())
    assert 0.75 < np.mean(spreads) / np.std(estimates) < 1.33
