"""Conformal quantiles, Mondrian fallback, confidence calibration and ECE on synthetic residuals."""

from __future__ import annotations

import math

import numpy as np

from insights.ml.confidence import ConfidenceCalibrator
from insights.ml.intervals import MondrianScores, conformal_quantile
from insights.ml.metrics import expected_calibration_error


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 20.0)  # 19 scores
    assert conformal_quantile(scores, 0.9) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert math.isinf(conformal_quantile(scores[:5], 0.9))


def test_small_cities_fall_back_to_all_scores() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.exponential(1.0, 500), rng.exponential(3.0, 500), rng.exponential(9.0, 20)])
    cities = np.array(["a"] * 500 + ["b"] * 500 + ["tiny"] * 20, dtype=object)
    mondrian = MondrianScores(min_group_size=100).fit(scores, cities)
    q = mondrian.quantile(0.9, np.array(["a", "b", "tiny", "unseen"], dtype=object))
    assert q[0] < q[1]
    assert q[2] == q[3] == conformal_quantile(np.sort(scores), 0.9)


def test_normalised_intervals_cover_per_city() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    cities = rng.choice(np.array(["a", "b"], dtype=object), n)
    sigma = np.where(cities == "a", 0.1, 0.3) * rng.uniform(0.5, 2.0, n)
    residual = sigma * rng.standard_normal(n)
    half = n // 2
    mondrian = MondrianScores().fit(np.abs(residual[:half]) / sigma[:half], cities[:half])
    q = mondrian.quantile(0.9, cities[half:])
    inside = np.abs(residual[half:]) <= q * sigma[half:]
    for city in ("a", "b"):
        assert abs(inside[cities[half:] == city].mean() - 0.9) < 0.02


def test_confidence_is_calibrated_on_fresh_rows() -> None:
    rng = np.random.default_rng(2)
    n = 40_000
    cities = np.array(["x"] * n, dtype=object)
    sigma = rng.uniform(0.02, 0.4, n)
    residual = sigma * rng.standard_t(5, n) * 0.8
    inside = np.abs(np.expm1(residual)) <= 0.1
    half = n // 2
    calibrator = ConfidenceCalibrator().fit(residual[:half] / sigma[:half], sigma[:half], cities[:half], inside[:half])
    p = calibrator.predict(sigma[half:], cities[half:])
    assert expected_calibration_error(p, inside[half:]) < 0.02
    assert p[sigma[half:] < 0.05].mean() > p[sigma[half:] > 0.3].mean()


def test_ece_of_perfect_and_wrong_forecasts() -> None:
    outcomes = np.array([1, 0] * 50)
    assert expected_calibration_error(np.full(100, 0.5), outcomes) == 0.0
    assert abs(expected_calibration_error(np.full(100, 0.9), outcomes) - 0.4) < 1e-9
