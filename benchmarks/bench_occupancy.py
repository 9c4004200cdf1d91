"""Occupancy model and optimal rent, measured on generated truth and on the real Albany calendar.

    .venv/bin/python -m benchmarks.bench_occupancy [--n-properties 4000] [--seed 7] [--rent-model]

Writes `benchmarks/results/occupancy.json`. Sections:

* `demo`: the demo generator (`pipelines.demo_data`) with a KNOWN lease-up truth. Vacancy spells are
  split by unit (25% of units held out). With the true market rent ("oracle market"), the logistic
  and LightGBM engines are scored against a constant-rate baseline and against the true
  probabilities (the floor), the learned price slope against the true one, yearly occupancy per
  city against the truth, and the optimal rent by its regret on the TRUE revenue curve. With the
  rent model's estimate as market rent (`--rent-model`; trained on the other landlords' listings
  only, so it never saw the portfolio's own asking rents), the same, to show what estimation error
  in the market rent costs. Every held-out unit is also checked for monotonicity on a price grid.
* `albany`: Inside Airbnb calendar. `available == False` means booked OR blocked by the host, so
  occupancy here is a PROXY. Nightly prices never change within a listing in this file, so the
  within-listing price signal is constant; the only price variation is across listings (price
  relative to the median of peers with the same room type and bedrooms), which is confounded with
  quality. Reported descriptively and with a constrained fit, not as a causal price response.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from insights.ml.occupancy import OccupancyModel, calendar_occupancy, evaluate, lease_terms, vacancy_spells
from insights.ml.pricing import price_units

RESULTS = Path(__file__).resolve().parent / "results" / "occupancy.json"
SHARED_DATA = Path(os.environ.get("LEASEORA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TEST_SHARE = 0.25
DAYS_PER_MONTH = 30.4375


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def split_by_group(frame: pd.DataFrame, column: str, *, test_share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) with every row of one `column` value on the same side."""
    groups = frame[column].astype("string").to_numpy()
    unique = np.unique(groups)
    test_groups = np.random.default_rng(seed).random(len(unique)) < test_share
    is_test = np.isin(groups, unique[test_groups])
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log1p(-p))))


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows", "observed_rate", "mean_predicted", "log_loss", "baseline_log_loss", "log_loss_skill", "brier", "baseline_brier", "ece")
    return {k: report[k] for k in keys} | {"reliability": report["reliability"]}


# --------------------------------------------------------------------------------------------------
# Demo data: known truth
# --------------------------------------------------------------------------------------------------


class TrueLeaseUp:
    """The generator's true let probability and renewal occupancy, for scoring against the truth."""

    def __init__(self, truth: dict[str, Any]) -> None:
        from pipelines.demo_data import lease_up_probability

        self.truth = truth
        self.probability_of = lease_up_probability
        terms = truth["lease_terms"]
        self.term_days = float(np.dot(terms["months"], terms["probabilities"])) * DAYS_PER_MONTH

    def probability(self, log_ratio: np.ndarray, month: np.ndarray, city: np.ndarray) -> np.ndarray:
        out = np.empty(len(log_ratio))
        for name in np.unique(city):
            mask = city == name
            out[mask] = self.probability_of(log_ratio[mask], month[mask], self.truth, str(name))
        return out

    def occupancy(self, log_ratio: np.ndarray, month: np.ndarray, city: np.ndarray) -> np.ndarray:
        p = np.clip(self.probability(log_ratio, month, city), 1e-12, 1 - 1e-12)
        vacancy = 1.0 / np.expm1(-np.log1p(-p) / self.truth["leaseup"]["horizon_days"])
        return self.term_days / (self.term_days + vacancy)


def demo_section(n_properties: int, seed: int, use_rent_model: bool) -> dict[str, Any]:
    """Lease-up on generated data: accuracy, slope recovery, occupancy and pricing against the truth."""
    from pipelines.demo_data import generate

    data = generate(seed=seed, n_properties=n_properties)
    truth = TrueLeaseUp(data.truth)
    spells = vacancy_spells(data.leases, data.properties, data.listings)
    listing_truth = data.listing_truth.set_index("listing_id")
    spells["true_p"] = spells["listing_id"].map(listing_truth["p_let"]).astype(float)
    spells["true_market_rent"] = spells["listing_id"].map(listing_truth["market_rent"]).astype(float)
    terms = lease_terms(data.leases, data.properties)
    out: dict[str, Any] = {
        "generator": {"seed": seed, "n_properties": n_properties, "true_leaseup": data.truth["leaseup"],
                      "true_mean_lease_days": truth.term_days},
        "spells": _spell_counts(spells),
        "learned_mean_lease_days": terms["*"],
    }
    oracle = spells.assign(market_rent=spells["true_market_rent"])
    out["oracle_market"] = _lease_up_study(oracle, terms, truth, data.truth, seed)
    if use_rent_model:
        out["rent_model_market"] = _with_rent_model(data, spells, terms, truth, seed)
    return out


def _spell_counts(spells: pd.DataFrame) -> dict[str, Any]:
    return {
        "spells": len(spells),
        "units": int(spells["unit_id"].nunique()),
        "censored": int(spells["censored"].sum()),
        "censored_unknown_label": int(spells["let_within_30d"].isna().sum()),
        "overlaps": int(spells["overlap"].sum()),
        "asking_from_listing": int((spells["asking_source"] == "listing").sum()),
        "let_within_30d_rate": float(spells["let_within_30d"].mean()),
    }


def _lease_up_study(
    spells: pd.DataFrame, terms: dict[str, float], truth: TrueLeaseUp, truth_dict: dict[str, Any], seed: int
) -> dict[str, Any]:
    spells = spells.dropna(subset=["market_rent", "asking_rent", "let_within_30d"])
    train, test = split_by_group(spells, "unit_id", test_share=TEST_SHARE, seed=seed)
    true_slope = truth_dict["leaseup"]["slope"]
    study: dict[str, Any] = {"train_rows": len(train), "test_rows": len(test), "test_units": int(test["unit_id"].nunique())}
    study["truth_floor_log_loss"] = _log_loss(test["let_within_30d"].to_numpy(), test["true_p"].to_numpy())
    models = {}
    for engine in ("logistic", "lightgbm"):
        started = time.perf_counter()
        model = OccupancyModel(engine=engine).fit(train, lease_days=terms)
        seconds = time.perf_counter() - started
        slope = model.price_slope if engine == "logistic" else model.average_price_slope(test)
        study[engine] = _summary(evaluate(model, test)) | {
            "fit_seconds": round(seconds, 3), "price_slope": slope, "true_slope": true_slope,
            "slope_error": slope - true_slope,
        }
        models[engine] = model
    study["monotonicity_violations"] = {engine: _violations(model, test) for engine, model in models.items()}
    study["yearly_occupancy_by_city"] = _occupancy_vs_truth(models["logistic"], truth_dict)
    study["pricing"] = _pricing_vs_truth(models["logistic"], test, truth)
    return study


def _violations(model: OccupancyModel, units: pd.DataFrame) -> int:
    """Rows whose let probability or occupancy rises anywhere on a 0.5x-2x asking-rent grid (must be 0)."""
    grid = np.exp(np.linspace(np.log(0.5), np.log(2.0), 31))
    predicted = [model.predict(units.assign(asking_rent=units["market_rent"] * g)) for g in grid]
    worse = np.zeros(len(units), dtype=bool)
    for column in ("let_probability_30d", "expected_occupancy"):
        values = np.column_stack([p[column].to_numpy() for p in predicted])
        worse |= (np.diff(values, axis=1) > 0).any(axis=1)
    return int(worse.sum())


def _occupancy_vs_truth(model: OccupancyModel, truth_dict: dict[str, Any]) -> dict[str, Any]:
    """Predicted vs true long-run occupancy per city, averaged over months and the pricing noise."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = np.repeat(weights / weights.sum(), 12) / 12
    sigma = truth_dict["noise_sigma"]
    rows = {}
    for city, true in truth_dict["expected_occupancy"].items():
        frame = pd.DataFrame({"city": city, "month": np.tile(np.arange(1, 13), len(nodes)), "market_rent": 1000.0,
                              "asking_rent": 1000.0 * np.exp(sigma * np.repeat(nodes, 12))})
        for column in set(model.feature_schema) - set(frame.columns):
            frame[column] = np.nan  # other property features at their training medians / "other" level
        predicted = model.predict(frame)
        rows[city] = {
            "true_occupancy": true["occupancy"],
            "predicted_occupancy": float(np.dot(weights, predicted["expected_occupancy"])),
            "true_let_within_30d": true["let_within_horizon"],
            "predicted_let_within_30d": float(np.dot(weights, predicted["let_probability_30d"])),
        }
    errors = [abs(r["predicted_occupancy"] - r["true_occupancy"]) for r in rows.values()]
    return {"cities": rows, "mean_abs_error": float(np.mean(errors)), "max_abs_error": float(np.max(errors))}


def _pricing_vs_truth(model: OccupancyModel, test: pd.DataFrame, truth: TrueLeaseUp) -> dict[str, Any]:
    """Optimal rents of held-out units, scored on the TRUE revenue curve (regret vs the true optimum)."""
    units = test.drop_duplicates("unit_id").reset_index(drop=True)
    started = time.perf_counter()
    priced = price_units(model, units.drop(columns=["asking_rent"])).units
    seconds = time.perf_counter() - started
    city, month = units["city"].astype(str).to_numpy(), units["month"].to_numpy()
    true_market = units["true_market_rent"].to_numpy(dtype=float)
    grid = np.linspace(0.6, 1.6, 501)
    true_revenue = np.column_stack([g * truth.occupancy(np.full(len(units), np.log(g)), month, city) for g in grid])
    best_true = true_revenue.max(axis=1)
    chosen_ratio = priced["optimal_rent"].to_numpy() / true_market
    chosen = chosen_ratio * truth.occupancy(np.log(chosen_ratio), month, city)
    at_market = truth.occupancy(np.zeros(len(units)), month, city)
    regret = 1.0 - chosen / best_true
    return {
        "units": len(units),
        "price_seconds": round(seconds, 3),
        "model_optimal_ratio": _quantiles(priced["optimal_ratio"].to_numpy()),
        "true_optimal_ratio": _quantiles(grid[true_revenue.argmax(axis=1)]),
        "share_at_grid_edge": float(priced["at_grid_edge"].mean()),
        "regret_on_true_curve": _quantiles(regret),
        "true_uplift_of_optimum_vs_market": float(np.mean(best_true / at_market - 1.0)),
        "true_uplift_of_model_choice_vs_market": float(np.mean(chosen / at_market - 1.0)),
        "revenue_change_up_5pct_median": float(priced["revenue_change_up_5pct"].median()),
        "revenue_change_down_5pct_median": float(priced["revenue_change_down_5pct"].median()),
    }


def _with_rent_model(data: Any, spells: pd.DataFrame, terms: dict[str, float], truth: TrueLeaseUp, seed: int) -> dict[str, Any]:
    """Market rent from the rent model, trained only on the comparables' (not the portfolio's) listings."""
    try:
        from insights.ml.rent import RentModel
    except ImportError as error:
        return {"skipped": f"rent model not importable: {error}"}
    listings = data.listings
    others = listings[listings["property_id"].str.startswith("M")]
    started = time.perf_counter()
    rent_model = RentModel(seed=seed).fit(others)
    fit_seconds = time.perf_counter() - started
    frame = spells.assign(listed_at=spells["vacated_at"] + pd.Timedelta(days=1))
    frame = frame.drop(columns=[c for c in ("listing_id",) if c in frame]).assign(currency=np.nan)
    estimate = rent_model.predict(frame)["rent_estimate"].to_numpy()
    market_error = np.log(estimate / spells["true_market_rent"].to_numpy())
    study = _lease_up_study(spells.assign(market_rent=estimate), terms, truth, truth.truth, seed)
    study["rent_model"] = {
        "train_listings": len(others), "fit_seconds": round(fit_seconds, 1),
        "log_error_vs_true_market_sd": float(np.nanstd(market_error)),
        "log_error_vs_true_market_mean": float(np.nanmean(market_error)),
        "note": "errors in the market rent act like noise in the price ratio and attenuate the learned slope",
    }
    return study


def _quantiles(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "p10": float(np.quantile(values, 0.1)), "median": float(np.median(values)),
            "p90": float(np.quantile(values, 0.9))}


# --------------------------------------------------------------------------------------------------
# Albany: the real calendar (an occupancy PROXY)
# --------------------------------------------------------------------------------------------------


def albany_section(data_dir: Path, seed: int) -> dict[str, Any]:
    """Occupancy proxy vs price on the Inside Airbnb Albany calendar."""
    from insights.data.load import load_preset

    calendar, calendar_rejects = load_preset("albany-calendar", data_dir)
    properties, _ = load_preset("albany-listings", data_dir)
    properties = properties.assign(property_id=properties["property_id"].astype("string"))
    # Months with fewer than 20 observed days (the scrape's first and last) are left out.
    own = calendar_occupancy(calendar, properties, min_days=20)
    peers = _peer_reference(own)
    monthly = calendar_occupancy(calendar, properties, market_price=peers, min_days=20)
    monthly = monthly.dropna(subset=["market_rent", "asking_rent"])
    monthly = monthly[monthly["asking_rent"] > 0]
    listing = monthly.groupby("listing_id").agg(occupancy=("occupancy", "mean"), asking=("asking_rent", "mean"),
                                                 market=("market_rent", "first"))
    log_ratio = np.log(listing["asking"] / listing["market"])
    return {
        "basis": "PROXY: available == False means booked OR blocked by the host; the calendar looks forward from "
                 "the scrape date (Nov 2024), so far months are mostly host blocks",
        "calendar_rows": len(calendar),
        "calendar_rejects": len(calendar_rejects),
        "listings": int(monthly["listing_id"].nunique()),
        "listing_months": len(monthly),
        "within_listing_price_variation": {
            "listings_with_any_price_change": int((own.groupby("listing_id")["asking_rent"].nunique() > 1).sum()),
            "share_of_listing_months_off_typical_price": float((np.abs(np.log(own["asking_rent"] / own["market_rent"])) > 1e-9).mean()),
            "note": "nightly prices are constant per listing in this file: no within-listing price response can be learned",
        },
        "occupancy_by_month": {str(k): float(v) for k, v in monthly.groupby(monthly["month_start"].dt.strftime("%Y-%m"))["occupancy"].mean().items()},
        "cross_section": {
            "reference": "median typical nightly price of listings with the same room_type and bedrooms (5+ peers), else same room_type",
            "spearman_log_ratio_vs_occupancy": float(spearmanr(log_ratio, listing["occupancy"]).statistic),
            "occupancy_by_price_ratio_quintile": _quintiles(log_ratio, listing["occupancy"]),
            "constrained_fit": _albany_fit(monthly, seed),
            "caveat": "across listings price is confounded with quality, location and host blocking: descriptive, not causal",
        },
    }


def _peer_reference(monthly: pd.DataFrame) -> pd.Series:
    """Each listing's reference price: the median typical price of its peers (room type x bedrooms)."""
    listings = monthly.groupby("listing_id").agg(
        price=("market_rent", "first"), room_type=("room_type", "first"), bedrooms=("bedrooms", "first")
    )
    room = listings["room_type"].astype("string").fillna("unknown")
    beds = listings["bedrooms"].fillna(-1)
    by_both = listings.groupby([room, beds])["price"].transform("median")
    size = listings.groupby([room, beds])["price"].transform("size")
    by_room = listings.groupby(room)["price"].transform("median")
    return by_both.where(size >= 5, by_room).rename("market_price")


def _quintiles(log_ratio: pd.Series, occupancy: pd.Series) -> list[dict[str, float]]:
    bins = pd.qcut(log_ratio, 5, labels=False, duplicates="drop")
    table = pd.DataFrame({"bin": bins, "ratio": np.exp(log_ratio), "occupancy": occupancy}).groupby("bin")
    return [{"median_price_ratio": float(g["ratio"].median()), "mean_occupancy_proxy": float(g["occupancy"].mean()),
             "listings": len(g)} for _, g in table]


def _albany_fit(monthly: pd.DataFrame, seed: int) -> dict[str, Any]:
    train, test = split_by_group(monthly, "listing_id", test_share=TEST_SHARE, seed=seed)
    model = OccupancyModel(target="occupancy", min_category_count=5).fit(train)
    report = _summary(evaluate(model, test))
    return report | {
        "price_slope": model.price_slope,
        "slope_at_bound": model.price_slope == 0.0,
        "unconstrained_slope_diagnostic": model.unconstrained_price_slope(train),
        "note": "slope is bounded <= 0; a slope at the bound means the data alone did not show higher prices "
                "lowering the occupancy proxy across listings",
    }


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both sections and write the JSON report; returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-properties", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rent-model", action="store_true",
                        help="add the section with the rent model's market rent (trains the rent model: minutes)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": ".venv/bin/python -m benchmarks.bench_occupancy " + " ".join(argv if argv is not None else sys.argv[1:]),
        "demo": demo_section(args.n_properties, args.seed, args.rent_model),
        "albany": albany_section(args.data_dir, args.seed),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
    print(_headline(report))
    return report


def _headline(report: dict[str, Any]) -> str:
    oracle = report["demo"]["oracle_market"]
    lines = [
        f"demo (oracle market): logistic log loss {oracle['logistic']['log_loss']:.4f} vs constant "
        f"{oracle['logistic']['baseline_log_loss']:.4f} (truth floor {oracle['truth_floor_log_loss']:.4f}); "
        f"slope {oracle['logistic']['price_slope']:.2f} vs true {oracle['logistic']['true_slope']:.2f}; "
        f"pricing regret median {oracle['pricing']['regret_on_true_curve']['median']:.4f}",
    ]
    rent = report["demo"].get("rent_model_market")
    if rent and "logistic" in rent:
        lines.append(f"demo (rent-model market): log loss {rent['logistic']['log_loss']:.4f}, slope {rent['logistic']['price_slope']:.2f}")
    albany = report["albany"]["cross_section"]
    lines.append(f"albany (proxy): spearman(price ratio, occupancy) {albany['spearman_log_ratio_vs_occupancy']:.3f}; "
                 f"constrained slope {albany['constrained_fit']['price_slope']:.3f}")
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    main()
