"""Rent model benchmark: accuracy, intervals and confidence on the real data sets; speed and memory at scale.

    .venv/bin/python -m benchmarks.bench_rent_model [--quick]

For each shared data set (Poland split by listing id, Brazil without its leaking columns, Munich), one
group split (20% of listings held out, seed 0) is used for everything in the same run:
- our `RentModel` (MdAPE, MAPE, 90% coverage overall and per city with 200+ test rows, mean relative
  interval width, confidence ECE);
- a default `LGBMRegressor()` on log rent with the same input columns (numbers, booleans, strings as
  pandas categoricals, `listed_at` as months since 2000);
- the city-median baseline.
Then training time and peak memory on generated listings (250k, 500k, 1M rows; each size in its own
process so the peak RSS is that training's alone) and batch scoring speed including intervals and
confidence. `--quick` uses a 15k-row sample of Poland and 100k generated rows. Results go to
benchmarks/results/rent_model.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from insights.data.load import load_preset
from insights.ml.features import NEVER_FEATURES, months_since_origin
from insights.ml.metrics import city_median_baseline, evaluate, mdape
from insights.ml.rent import RentModel
from insights.ml.splits import split_frame

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rent_model.json"
DATA = Path(os.environ.get("LEASEORA_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
DATASETS = ("poland", "brazil", "munich")
SEED = 0


def raw_features(frame: pd.DataFrame, categories: dict[str, pd.Index] | None = None) -> tuple[pd.DataFrame, dict[str, pd.Index]]:
    """The same input columns our model reads, as a default LightGBM takes them (strings as categoricals)."""
    out: dict[str, Any] = {}
    categories = dict(categories or {})
    for column in frame.columns:
        values = frame[column]
        if column in NEVER_FEATURES or values.isna().all():
            continue
        if column == "listed_at":
            out[column] = months_since_origin(values)
        elif ptypes.is_bool_dtype(values.dtype) or ptypes.is_numeric_dtype(values.dtype):
            out[column] = pd.to_numeric(values.astype("Float64"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            known = categories.setdefault(column, pd.Index(sorted(values.dropna().astype(str).unique())))
            codes = known.get_indexer(values.astype("string"))
            out[column] = pd.Categorical.from_codes(codes, categories=known)
    return pd.DataFrame(out, index=frame.index), categories


def default_lightgbm_mdape(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """MdAPE of `LGBMRegressor()` (all defaults) trained on log rent."""
    X_train, categories = raw_features(train)
    X_test, _ = raw_features(test, categories)
    X_test = X_test.reindex(columns=X_train.columns)
    model = lgb.LGBMRegressor(verbose=-1, random_state=SEED).fit(X_train, np.log(train["monthly_rent"].to_numpy(float)))
    return mdape(test["monthly_rent"].to_numpy(float), np.exp(model.predict(X_test)))


def bench_dataset(name: str, quick: bool) -> dict[str, Any]:
    """Ours vs default LightGBM vs city median on one held-out group split of a shared data set."""
    frame, _ = load_preset(name, DATA)
    frame = frame.reset_index(drop=True)
    if quick and len(frame) > 15_000:
        frame = frame.sample(15_000, random_state=SEED).reset_index(drop=True)
    train, test = split_frame(frame, test_size=0.2, seed=SEED)
    started = time.perf_counter()
    model = RentModel(seed=SEED).fit(train)
    seconds = time.perf_counter() - started
    ours = evaluate(model, test)
    default = default_lightgbm_mdape(train, test)
    city = mdape(test["monthly_rent"].to_numpy(float), city_median_baseline(train, test))
    return {
        "train_rows": len(train), "test_rows": len(test), "train_seconds": round(seconds, 1),
        "trees": model.metrics["trees"], "features": model.metrics["features"],
        "ours": ours, "default_lightgbm_mdape": default, "city_median_mdape": city,
        "ratio_to_default": ours["mdape"] / default, "ratio_to_city_median": ours["mdape"] / city,
        "fit_holdout_metrics": {k: model.metrics[k] for k in ("mdape", "coverage", "confidence_ece")},
    }


def _scale_child(n_rows: int, queue: multiprocessing.Queue) -> None:
    """Generate, train and score in a fresh process; report time, peak RSS and scoring speed."""
    from pipelines.demo_data import draw_market, generate_listings

    market = draw_market(seed=SEED + 11)
    listings = generate_listings(n_rows, seed=SEED + 11, market=market)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    model = RentModel(seed=SEED).fit(listings)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del listings
    fresh = generate_listings(200_000, seed=SEED + 12, market=market)  # same market, new listings
    timings, cpu_timings = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        model.predict(fresh)
        timings.append(time.perf_counter() - t0)
        cpu_timings.append(time.process_time() - c0)
    held = evaluate(model, fresh)
    queue.put({
        "rows": n_rows, "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1),
        "load_average": round(os.getloadavg()[0], 1), "peak_rss_mb": round(peak), "rss_after_data_mb": round(rss_data),
        "trees": model.metrics["trees"], "score_rows_per_second": round(len(fresh) / min(timings)),
        "score_rows_per_cpu_second": round(len(fresh) / min(cpu_timings)),
        "mdape": held["mdape"], "coverage": held["coverage"], "confidence_ece": held["confidence_ece"],
    })


def bench_scale(n_rows: int) -> dict[str, Any]:
    """Run `_scale_child` in a spawned process so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_scale_child, args=(n_rows, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def table(results: dict[str, Any]) -> str:
    """A plain-text summary of the results."""
    lines = [
        f"{'data set':9} {'rows':>7} {'MdAPE':>7} {'default':>7} {'ratio':>6} {'citymed':>7} {'ratio':>6} "
        f"{'cover':>6} {'width':>6} {'ECE':>6} {'fit s':>6}",
    ]
    for name, r in results["datasets"].items():
        o = r["ours"]
        lines.append(
            f"{name:9} {r['train_rows']:>7} {o['mdape']:>7.2%} {r['default_lightgbm_mdape']:>7.2%} {r['ratio_to_default']:>6.3f} "
            f"{r['city_median_mdape']:>7.2%} {r['ratio_to_city_median']:>6.3f} {o['coverage']:>6.1%} "
            f"{o['mean_relative_width']:>6.3f} {o['confidence_ece']:>6.3f} {r['train_seconds']:>6.0f}"
        )
        cities = ", ".join(f"{c} {v['coverage']:.1%}" for c, v in o["per_city"].items())
        lines.append(f"          coverage per city (200+ test rows): {cities}")
    lines.append("")
    lines.append(f"{'generated':>9} {'fit s':>7} {'cpu s':>7} {'load':>5} {'peak MB':>8} {'trees':>6} {'rows/s':>9} {'rows/cpu-s':>10} {'MdAPE':>7} {'cover':>6} {'ECE':>6}")
    for r in results["scale"]:
        lines.append(
            f"{r['rows']:>9} {r['train_seconds']:>7.1f} {r['train_cpu_seconds']:>7.1f} {r['load_average']:>5} {r['peak_rss_mb']:>8} {r['trees']:>6} {r['score_rows_per_second']:>9,} {r['score_rows_per_cpu_second']:>10,} "
            f"{r['mdape']:>7.2%} {r['coverage']:>6.1%} {r['confidence_ece']:>6.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON (not with --quick)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15k-row Poland sample, 100k generated rows; JSON not written")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--scale", nargs="*", type=int, default=None, help="generated row counts (default 250k 500k 1M)")
    args = parser.parse_args(argv)
    sizes = args.scale if args.scale is not None else ([100_000] if args.quick else [250_000, 500_000, 1_000_000])
    results: dict[str, Any] = {"quick": args.quick, "cpus": os.cpu_count(), "datasets": {}, "scale": []}
    for name in args.datasets:
        print(f"[{name}] training ...", flush=True)
        results["datasets"][name] = bench_dataset(name, args.quick)
    for n_rows in sizes:
        print(f"[generated {n_rows:,}] training ...", flush=True)
        results["scale"].append(bench_scale(n_rows))
    print(table(results))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=float) + "\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
