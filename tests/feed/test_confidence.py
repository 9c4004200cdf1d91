"""Confidence scores are calibrated probabilities: checked on generated markets with known truth.

Run as a script (`python -m tests.feed.test_confidence`) it is also the recipe that refits the
calibrators shipped in `insights.feed.confidence.CALIBRATORS` and prints them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insights.feed import confidence
from insights.feed.confidence import Prior, fit_prior, median_band_probability, posterior, reliability_table
from insights.feed.generate import FLAT_BAND, InsightRecord, generate_insights, growth_family
from pipelines.demo_data import draw_market, generate, generate_listings, random_markets

#: Largest gap allowed between a bin's mean confidence and the share of its claims that held.
TOLERANCE = 0.1
#: Fewest claims a bin needs before its gap is judged: 0.1 is then three sampling sds or more.
MIN_CLAIMS = 100


def true_log_growth(truth: dict, record: InsightRecord) -> float:
    """The generator's true log growth for a growth record (same periods and adjustment as the claim)."""
    months = pd.PeriodIndex(truth["months"], freq="M")
    log_index = pd.Series(np.log(truth["index"][record.city]), index=months)
    if "not seasonally adjusted" in record.method:
        season = truth["season"]["factor_by_month"]
        log_index = log_index + np.log([season[str(m.month)] for m in months])
    start, end = pd.Period(record.period_start, "M"), pd.Period(record.period_end, "M")
    if record.metric.endswith("qoq"):
        later = [end - 2, end - 1, end]
        return float(log_index[later].mean() - log_index[[m - 3 for m in later]].mean())
    return float(log_index[end] - log_index[start])


def growth_claims(seed: int, *, n_properties: int, months: int = 36, volatility: float = 0.0, raw: bool = False) -> pd.DataFrame:
    """Every growth claim on 40 random generated markets, with whether it held.

    The data end in a different calendar month for each seed: month-on-month figures that are not
    seasonally adjusted move with the season, so every month of the year must be represented.
    """
    cities = random_markets(40, seed=seed)
    end = f"2026-{seed % 12 + 1:02d}-28"
    data = generate(seed=seed, n_properties=n_properties, cities=cities, months=months, end=end,
                    include_calendar=False, index_volatility=volatility)
    if raw:
        with confidence.raw_scores():
            records = generate_insights(data.listings, seed=seed)
    else:
        records = generate_insights(data.listings, seed=seed)
    rows = [_mover_claim(data.truth, record, records) for record in records if record.kind == "top_mover"]
    for record in records:
        if record.kind != "rent_growth":
            continue
        horizon = record.metric.rsplit("_", 1)[1]
        band = FLAT_BAND[horizon]
        change = float(np.expm1(true_log_growth(data.truth, record)))
        truth = "up" if change > band else "down" if change < -band else "flat"
        adjusted = "not seasonally adjusted" not in record.method
        rows.append({
            "family": growth_family(record.direction or "flat", horizon, adjusted=adjusted),
            "horizon": horizon, "confidence": record.confidence_score, "held": record.direction == truth,
            "n": record.sample_size, "world": f"{months}m vol={volatility}",
        })
    return pd.DataFrame(rows)


def _mover_claim(truth: dict, record: InsightRecord, records: list[InsightRecord]) -> dict[str, object]:
    """Whether the named city truly grew fastest (or fell fastest) among the cities ranked."""
    horizon = record.metric.rsplit("_", 1)[1]
    ranked = [r for r in records if r.kind == "rent_growth" and r.segment is None and r.metric.endswith(horizon)]
    growth = {r.city: true_log_growth(truth, r) for r in ranked}
    pick = max if record.direction == "up" else min
    return {"family": "rank", "horizon": horizon, "confidence": record.confidence_score,
            "held": pick(growth, key=growth.__getitem__) == record.city, "n": record.sample_size}


def level_claims(market_seed: int, city: str, sizes: tuple[int, ...], *, reps: int, raw: bool = False) -> pd.DataFrame:
    """Median-rent claims on `reps` independent samples of one generated market, and whether each held.

    The true market medians of the last month come from a very large sample of the same market.
    """
    market = draw_market(seed=market_seed, cities=[city], months=12)
    big = generate_listings(400_000, seed=999, market=market)
    month = big["listed_at"].dt.to_period("M")
    last = big[month == month.max()]
    truth = {"median_rent": last["monthly_rent"].median(),
             "median_rent_per_sqm": (last["monthly_rent"] / last["size_sqm"]).median()}
    rows = []
    for size in sizes:
        samples = []
        for rep in range(reps):
            sample = generate_listings(size, seed=10_000 * market_seed + rep, market=market)
            sample = sample.drop(columns=["property_type", "bedrooms", "rooms"])  # city-level claims suffice
            samples.append(sample.assign(city=f"rep {rep}", property_id=sample["property_id"] + f"-{rep}"))
        frame = pd.concat(samples, ignore_index=True)
        if raw:
            with confidence.raw_scores():
                records = generate_insights(frame, n_boot=10)
        else:
            records = generate_insights(frame, n_boot=10)
        rows += [
            {"family": "level", "confidence": r.confidence_score, "held": r.low <= truth[r.metric] <= r.high, "n": r.sample_size}
            for r in records if r.kind == "rent_level"
        ]
    return pd.DataFrame(rows)


def assert_reliable(claims: pd.DataFrame, *, bins: int = 10, min_claims: int = MIN_CLAIMS, min_bins: int = 3) -> pd.DataFrame:
    """Every bin with at least `min_claims` claims holds within TOLERANCE of its mean confidence."""
    table = reliability_table(claims["confidence"].to_numpy(), claims["held"].to_numpy(), bins=bins)
    judged = table[table["claims"] >= min_claims]
    print("\n" + table.round(3).to_string())
    assert len(judged) >= min_bins
    gaps = (judged["held"] - judged["confidence"]).abs()
    assert (gaps <= TOLERANCE).all(), table
    return table


# --- the statistics ------------------------------------------------------------------------------


def test_the_spread_of_true_growth_across_markets_is_recovered() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(0.02, 0.03, 300)
    ses = rng.uniform(0.005, 0.02, 300)
    prior = fit_prior(truth + ses * rng.standard_normal(300), ses, floor=0.001, fallback=0.1)
    assert abs(prior.sd - 0.03) < 0.005 and abs(prior.mean - 0.02) < 0.005
    assert fit_prior(truth[:3], ses[:3], floor=0.001, fallback=0.1) == Prior(0.0, 0.1, 3)


def test_thin_data_leans_on_the_prior_and_thick_data_on_itself() -> None:
    prior = Prior(0.0, 0.01)
    thin_mean, thin_sd = posterior(0.08, 0.05, prior)
    thick_mean, thick_sd = posterior(0.08, 0.002, prior)
    assert abs(thin_mean) < 0.01 and thin_sd < 0.01
    assert abs(thick_mean - 0.08) < 0.005 and thick_sd < 0.002


def test_thin_data_is_never_confident() -> None:
    assert confidence.calibrated("growth_direction_yoy", 0.999, n=10) <= 0.75
    assert confidence.calibrated("level", 1.0, n=12) < 0.8
    assert confidence.calibrated("level", 1.0, n=500) > 0.95


def test_median_interval_probability_behaves() -> None:
    rng = np.random.default_rng(1)
    values = np.exp(rng.normal(7.0, 0.4, 2000))
    median = np.exp(7.0)
    assert median_band_probability(values, 0.95 * median, 1.05 * median) > 0.99
    assert median_band_probability(values, 1.2 * median, 1.3 * median) < 0.01
    few = values[:15]
    assert median_band_probability(few, 0.95 * median, 1.05 * median) < 0.6
    gap = np.array([1000.0] * 5 + [2000.0] * 5)  # no value inside the band is not "impossible"
    assert median_band_probability(gap, 1350.0, 1650.0) > 0.0


def test_rank_probabilities_add_up_to_one() -> None:
    p = confidence.rank_first_probabilities(np.array([0.05, 0.01, 0.0]), np.array([0.01, 0.01, 0.01]))
    assert abs(p.sum() - 1.0) < 1e-9 and p[0] > 0.9


# --- calibration on generated markets (seeds never used to fit the calibrators) -----------------


#: Generated worlds of the check: (portfolio size, months of data, monthly index volatility).
WORLDS = ((2500, 36, 0.0), (5000, 36, 0.003), (5000, 15, 0.0))


@pytest.fixture(scope="module")
def growth() -> pd.DataFrame:
    # Seeds 900-911: twelve runs whose data end in each calendar month once (see `growth_claims`).
    return pd.concat(
        [growth_claims(900 + 3 * i + k, n_properties=n, months=m, volatility=v)
         for i in range(4) for k, (n, m, v) in enumerate(WORLDS)],
        ignore_index=True,
    )


def test_growth_confidence_is_calibrated(growth: pd.DataFrame) -> None:
    assert len(growth) > 2000
    assert_reliable(growth)


def test_publishable_directional_claims_hold_as_often_as_scored(growth: pd.DataFrame) -> None:
    """'Rents rose/fell' claims at or above the publishing floor, the ones readers see."""
    directional = growth[growth["family"].str.startswith("growth_direction") & (growth["confidence"] >= 0.6)]
    assert_reliable(directional)


def test_thin_markets_make_no_confident_growth_claims(growth: pd.DataFrame) -> None:
    thin = growth[growth["n"] < 15]
    assert len(thin) > 50
    assert thin["confidence"].max() <= 15 / (15 + confidence.THIN_DATA_UNITS) + 1e-9


def test_median_rent_confidence_is_coverage() -> None:
    markets = ((21, "Berlin"), (22, "Kraków"))
    claims = pd.concat(
        [level_claims(seed, city, (120, 250), reps=60) for seed, city in markets]
        + [level_claims(seed, city, (600, 2400), reps=20) for seed, city in markets]
    )
    assert len(claims) > 400
    assert_reliable(claims, bins=5, min_claims=60, min_bins=3)


def refit(claims: pd.DataFrame) -> dict[str, confidence.Calibrator]:
    """Calibrators per claim family from raw-scored claims (columns family, confidence, held)."""
    return {
        family: confidence.fit_calibrator(group["confidence"].to_numpy(), group["held"].to_numpy(dtype=float))
        for family, group in claims.groupby("family")
    }


if __name__ == "__main__":  # the recipe of the shipped calibrators (about ten minutes)
    import sys

    fit = pd.concat(
        [growth_claims(seed, n_properties=n, months=m, volatility=v, raw=True)
         for seed in range(1000, 1020)
         for n, m, v in ((1500, 36, 0.0), (5000, 36, 0.003), (12000, 36, 0.0), (5000, 15, 0.0))]
        + [level_claims(s, c, (120, 250, 800, 3000), reps=40, raw=True)
           for s, c in ((11, "Berlin"), (12, "Warsaw"), (13, "Chicago"), (14, "Munich"), (15, "Austin"), (16, "Gdańsk"),
                        (17, "New York"), (18, "Hamburg"))],
        ignore_index=True,
    )
    if len(sys.argv) > 1:
        fit.to_parquet(sys.argv[1])
    for family, calibrator in refit(fit).items():
        print(f'    "{family}": Calibrator({calibrator.x}, {calibrator.y}),')
