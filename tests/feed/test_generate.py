"""Insight generation: known-truth recovery, privacy, mix shift, sentences, and the Polish data set."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insights.errors import InvalidInput
from insights.feed.generate import InsightRecord, generate_insights
from pipelines.demo_data import generate

FLOOR = 0.6  # defaults.PUBLISH_CONFIDENCE_FLOOR


def flats(city: str, n: int, months: list[str], *, rows_per_flat: int = 1, seed: int = 0, growth: float = 0.0) -> pd.DataFrame:
    """`n` distinct flats listed in each month (each `rows_per_flat` times), rent growing by `growth` a month."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, month in enumerate(months):
        size = np.exp(rng.normal(4.0, 0.3, n))
        rent = np.exp(3.0 + 0.8 * np.log(size) + k * np.log1p(growth) + rng.normal(0, 0.1, n))
        frame = pd.DataFrame({
            "listing_id": [f"{city}-{k}-{i}" for i in range(n)],
            "city": city, "currency": "EUR", "size_sqm": size.round(1), "rooms": np.clip(np.round(size / 25), 1, 5),
            "listed_at": pd.Timestamp(f"{month}-15"), "monthly_rent": rent.round(),
        })
        frames.append(pd.concat([frame] * rows_per_flat))
    return pd.concat(frames, ignore_index=True)


MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]


def by_city(records: list[InsightRecord], city: str) -> list[InsightRecord]:
    return [r for r in records if r.city == city]


@pytest.fixture(scope="module")
def demo() -> tuple[object, list[InsightRecord]]:
    data = generate(seed=21, n_properties=5000, include_calendar=True)
    return data, generate_insights(data.listings, leases=data.leases, calendar=data.calendar, properties=data.properties)


# --- privacy -------------------------------------------------------------------------------------


def test_a_market_with_nine_listings_publishes_nothing_and_ten_does() -> None:
    big = flats("Big", 200, MONTHS, seed=1)
    nine = generate_insights(pd.concat([big, flats("Small", 9, MONTHS, seed=2)]), min_market_size=10)
    ten = generate_insights(pd.concat([big, flats("Small", 10, MONTHS, seed=2)]), min_market_size=10)
    assert by_city(nine, "Small") == []
    assert by_city(ten, "Small") and all(r.sample_size >= 10 for r in by_city(ten, "Small"))


def test_sample_size_counts_distinct_listings_not_rows() -> None:
    repeated = flats("Small", 9, MONTHS, rows_per_flat=3, seed=2)  # 27 rows a month, 9 flats
    records = generate_insights(pd.concat([flats("Big", 200, MONTHS, seed=1), repeated]), min_market_size=10)
    assert by_city(records, "Small") == []
    ten = flats("Small", 10, MONTHS, rows_per_flat=3, seed=2)
    records = generate_insights(pd.concat([flats("Big", 200, MONTHS, seed=1), ten]), min_market_size=10)
    level = next(r for r in by_city(records, "Small") if r.metric == "median_rent")
    assert level.sample_size == 10


def test_privacy_floor_cannot_be_configured_below_five() -> None:
    with pytest.raises(InvalidInput):
        generate_insights(flats("Big", 50, MONTHS), min_market_size=4)


def test_every_record_respects_the_threshold(demo: tuple[object, list[InsightRecord]]) -> None:
    _, records = demo
    assert records and min(r.sample_size for r in records) >= 10


# --- constant quality ----------------------------------------------------------------------------


def test_a_month_where_only_large_flats_are_listed_is_not_reported_as_growth() -> None:
    market = flats("Mixville", 400, MONTHS, seed=4, growth=0.0)
    last = market["listed_at"] == pd.Timestamp(f"{MONTHS[-1]}-15")
    market = market[~last | (market["size_sqm"] > market["size_sqm"].quantile(0.75))]
    medians = market.groupby("listed_at")["monthly_rent"].median()
    assert medians.iloc[-1] / medians.iloc[-2] > 1.25  # the naive median says +25% and more
    records = generate_insights(market)
    mom = next(r for r in records if r.metric == "rent_index_growth_mom" and r.segment is None)
    assert abs(mom.value) < 2.0
    assert not (mom.direction == "up" and mom.confidence_score >= FLOOR)


# --- known truth ---------------------------------------------------------------------------------


def true_growth(truth: dict, record: InsightRecord) -> float:
    """The generator's true growth for a record's claim, in percent (same definition as the insight)."""
    months = pd.PeriodIndex(truth["months"], freq="M")
    log_index = pd.Series(np.log(truth["index"][record.city]), index=months)
    if "not seasonally adjusted" in record.method:
        season = truth["season"]["factor_by_month"]
        log_index = log_index + np.log([season[str(m.month)] for m in months])
    start, end = pd.Period(record.period_start, "M"), pd.Period(record.period_end, "M")
    if record.metric.endswith("qoq"):
        later = [end - 2, end - 1, end]
        return 100 * float(np.expm1(log_index[later].mean() - log_index[[m - 3 for m in later]].mean()))
    return 100 * float(np.expm1(log_index[end] - log_index[start]))


def test_year_over_year_growth_is_recovered_in_sign_and_size(demo: tuple[object, list[InsightRecord]]) -> None:
    data, records = demo
    yoy = [r for r in records if r.metric == "rent_index_growth_yoy" and r.segment is None]
    assert len(yoy) == 11
    errors = np.array([r.value - true_growth(data.truth, r) for r in yoy])
    assert np.mean(np.abs(errors)) < 2.0
    for record in yoy:
        truth = true_growth(data.truth, record)
        if abs(truth) > 3.0:
            assert np.sign(record.value) == np.sign(truth), record.text


def test_growth_intervals_cover_the_truth_about_as_often_as_stated(demo: tuple[object, list[InsightRecord]]) -> None:
    data, records = demo
    growth = [r for r in records if r.kind == "rent_growth" and r.low is not None]
    covered = np.mean([r.low <= true_growth(data.truth, r) <= r.high for r in growth])
    assert len(growth) > 100
    assert 0.8 <= covered <= 0.97  # nominal 90%


def test_leases_and_calendar_give_occupancy_and_days_to_let(demo: tuple[object, list[InsightRecord]]) -> None:
    _, records = demo
    kinds = {r.kind for r in records}
    assert {"rent_growth", "rent_level", "top_mover", "occupancy", "occupancy_trend", "days_to_let"} <= kinds
    occupancy = [r for r in records if r.metric == "occupancy_rate" and "proxy" not in r.text]
    assert all(85 <= r.value <= 100 for r in occupancy)  # the generator's long-run occupancy is ~95%


def test_the_seasonal_pattern_is_recovered(demo: tuple[object, list[InsightRecord]]) -> None:
    data, records = demo
    season = data.truth["season"]
    wave = lambda months: np.mean([np.cos(2 * np.pi * (m - season["peak_month"]) / 12) for m in months])  # noqa: E731
    expected = 100 * np.expm1(season["amplitude"] * (wave((6, 7, 8)) - wave((12, 1, 2))))
    seasonal = [r for r in records if r.kind == "seasonality"]
    assert len(seasonal) == 11
    assert abs(np.mean([r.value for r in seasonal]) - expected) < 1.0
    assert all(r.direction == "up" for r in seasonal if r.confidence_score >= FLOOR)


def test_a_calendar_alone_gives_an_occupancy_proxy() -> None:
    days = pd.date_range("2026-03-01", "2026-04-30", freq="D")
    calendar = pd.DataFrame({
        "listing_id": np.repeat([f"A{i}" for i in range(12)], len(days)),
        "date": np.tile(days, 12),
        "available": np.tile(np.arange(len(days)) % 4 == 0, 12),  # booked three days in four
    })
    properties = pd.DataFrame({"property_id": [f"A{i}" for i in range(12)], "city": "Albany"})
    records = generate_insights(pd.DataFrame(), calendar=calendar, properties=properties, as_of="2026-04-30")
    level = next(r for r in records if r.metric == "occupancy_rate")
    assert abs(level.value - 75.0) < 2.0 and "occupancy proxy" in level.text and level.sample_size == 12


# --- sentences and fields ------------------------------------------------------------------------


def test_sentences_are_short_named_and_match_the_fields(demo: tuple[object, list[InsightRecord]]) -> None:
    _, records = demo
    for record in records:
        assert record.text.endswith(".") and len(record.text) < 200
        assert 0.0 <= record.confidence_score <= 1.0
        assert record.period_start <= record.period_end
        assert len(record.method) <= 255  # the `Insight.method` column
    berlin = next(r for r in records if r.city == "Berlin" and r.metric == "rent_index_growth_yoy" and r.segment is None)
    assert re.fullmatch(
        r"Berlin (rental market showing (a )?\d+\.\d+% (growth|decline)|rents flat) year over year.*"
        r"\(October 2026 vs October 2025\)\.", berlin.text)
    assert berlin.direction in {"up", "down", "flat"} and berlin.unit == "%"
    level = next(r for r in records if r.city == "Berlin" and r.metric == "median_rent" and r.segment is None)
    assert level.unit == "EUR/month" and "EUR a month in October 2026" in level.text
    assert level.low < level.value < level.high
    flat = [r for r in records if r.direction == "flat" and r.kind == "rent_growth"]
    assert all("within ±" in r.text for r in flat)


def test_same_inputs_give_the_same_insights() -> None:
    market = pd.concat([flats("A", 60, MONTHS, seed=1), flats("B", 60, MONTHS, seed=2)])
    assert generate_insights(market) == generate_insights(market)


# --- the real Polish data set --------------------------------------------------------------------


def load_poland(shared_data: Path) -> pd.DataFrame:
    from insights.data.load import load_preset

    listings, _ = load_preset("poland", shared_data)
    return listings


def test_polish_data_set(shared_data: Path) -> None:
    records = generate_insights(load_poland(shared_data))
    cities = {r.city for r in records}
    assert len(cities) == 15
    assert not [r for r in records if r.metric.endswith("yoy")]  # 8 months: no year over year
    assert {r.metric for r in records} >= {"median_rent", "median_rent_per_sqm", "rent_index_growth_mom", "rent_index_growth_qoq"}
    assert all(r.sample_size >= 10 for r in records)
    assert all("PLN" in r.text for r in records if r.kind == "rent_level")
    warsaw = next(r for r in records if r.city == "warszawa" and r.metric == "median_rent" and r.segment is None)
    assert 3000 < warsaw.value < 5500 and "Warszawa" in warsaw.text
    shown = sorted((r for r in records if r.segment is None), key=lambda r: -r.confidence_score)
    print("\n" + "\n".join(f"[{r.confidence_score:.2f}] {r.text}" for r in shown[:12]))
