"""The training report: JSON metrics plus a Markdown page with plots (predicted vs actual, coverage by
city, confidence calibration, feature importance, a revenue curve)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from insights.ml.metrics import within_band  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.train import TrainOutcome


def write_training_report(outcome: TrainOutcome, reports_dir: Path) -> dict[str, str]:
    """Write `reports_dir/train-<rent version>/` (report.json, report.md, *.png) atomically; return the paths."""
    version = outcome.rent.version if outcome.rent else "none"
    final = reports_dir / f"train-{version}"
    reports_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=reports_dir))
    try:
        plots = _plots(outcome, work)
        payload = _json_safe({**outcome.summary(), "rent_metrics_full": outcome.rent_metrics,
                              "occupancy_metrics_full": outcome.occupancy_metrics, "plots": plots})
        (work / "report.json").write_text(json.dumps(payload, indent=2, default=str))
        (work / "report.md").write_text(_markdown(outcome, plots))
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"folder": str(final), "json": str(final / "report.json"), "markdown": str(final / "report.md")}


def _plots(outcome: TrainOutcome, folder: Path) -> dict[str, str]:
    plots: dict[str, str] = {}
    model, test = outcome.artifacts.get("rent_model"), outcome.artifacts.get("rent_test")
    if model is not None and test is not None and len(test):
        predictions = model.predict(test)
        y = test["monthly_rent"].to_numpy(float)
        plots["predicted_vs_actual"] = _scatter(y, predictions["rent_estimate"].to_numpy(), folder)
        plots["coverage_by_city"] = _coverage(outcome.rent_metrics, folder)
        plots["confidence_calibration"] = _calibration(predictions["confidence_score"].to_numpy(),
                                                       within_band(y, predictions["rent_estimate"].to_numpy()), folder)
        plots["feature_importance"] = _importance(model, folder)
        occupancy = outcome.artifacts.get("occupancy_model")
        if occupancy is not None:
            plots["revenue_curve"] = _revenue(occupancy, outcome.artifacts.get("occupancy_frame"), folder)
    return {k: v for k, v in plots.items() if v}


def _save(fig: Any, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return name


def _scatter(y: np.ndarray, estimate: np.ndarray, folder: Path) -> str:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y, estimate, s=3, alpha=0.3)
    top = float(np.quantile(np.r_[y, estimate], 0.995))
    ax.plot([0, top], [0, top], color="black", linewidth=1)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="actual monthly rent", ylabel="estimate", title="Held-out: predicted vs actual")
    return _save(fig, folder, "predicted_vs_actual.png")


def _coverage(metrics: dict[str, Any], folder: Path) -> str | None:
    per_city = metrics.get("per_city") or {}
    if not per_city:
        return None
    names = list(per_city)
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(names))))
    ax.barh(names, [per_city[n]["coverage"] for n in names])
    ax.axvline(metrics.get("level", 0.9), color="black", linestyle="--")
    ax.set(xlim=(0.5, 1.0), xlabel="interval coverage", title="Coverage by city (cities with 200+ test rows)")
    return _save(fig, folder, "coverage_by_city.png")


def _calibration(confidence: np.ndarray, inside: np.ndarray, folder: Path) -> str:
    bins = np.minimum((confidence * 10).astype(int), 9)
    frame = pd.DataFrame({"bin": bins, "p": confidence, "hit": inside.astype(float)}).groupby("bin").mean()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="black", linewidth=1)
    ax.plot(frame["p"], frame["hit"], marker="o")
    ax.set(xlabel="confidence_score", ylabel="share within ±10%", title="Confidence calibration (held-out)")
    return _save(fig, folder, "confidence_calibration.png")


def _importance(model: Any, folder: Path) -> str | None:
    booster = getattr(getattr(model, "_fitted", None), "booster", None)
    if booster is None:
        return None
    gains = pd.Series(booster.feature_importance("gain"), index=booster.feature_name()).nlargest(15)[::-1]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.barh(gains.index, gains.to_numpy())
    ax.set(xlabel="total gain", title="Rent model: feature importance")
    return _save(fig, folder, "feature_importance.png")


def _revenue(model: Any, frame: pd.DataFrame | None, folder: Path) -> str | None:
    from insights.ml.pricing import price_units

    if frame is None or frame.empty:
        return None
    unit = frame.iloc[[0]].copy()
    result = price_units(model, unit, with_curves=True)
    curve = pd.DataFrame(result.curve(unit.index[0]))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["rent"], curve["revenue"])
    best = result.units.iloc[0]
    ax.axvline(best["optimal_rent"], color="black", linestyle="--")
    ax.set(xlabel="asking rent", ylabel="expected yearly revenue", title="Revenue curve of a sample unit")
    return _save(fig, folder, "revenue_curve.png")


def _markdown(outcome: TrainOutcome, plots: dict[str, str]) -> str:
    m, b = outcome.rent_metrics, outcome.baseline
    lines = ["# Training report", ""]
    if outcome.rent:
        lines += [f"Rent model `{outcome.rent.version}`: **{outcome.rent.status}** — {outcome.rent.reason}", ""]
    if m:
        lines += [
            "| metric | value |", "|---|---|",
            f"| held-out rows | {m.get('rows')} |",
            f"| MdAPE | {m.get('mdape', float('nan')):.2%} |",
            f"| city-median baseline MdAPE | {b.get('city_median_mdape', float('nan')):.2%} |",
            f"| MAPE | {m.get('mape', float('nan')):.2%} |",
            f"| {m.get('level', 0.9):.0%} interval coverage | {m.get('coverage', float('nan')):.2%} |",
            f"| mean relative interval width | {m.get('mean_relative_width', float('nan')):.2%} |",
            f"| confidence_score ECE | {m.get('confidence_ece', float('nan')):.3f} |", "",
        ]
    if outcome.occupancy:
        o = outcome.occupancy_metrics
        lines += [f"Occupancy model `{outcome.occupancy.version}`: **{outcome.occupancy.status}** — {outcome.occupancy.reason}",
                  "", f"Held-out log loss {o.get('log_loss', float('nan')):.4f} vs constant baseline "
                  f"{o.get('baseline_log_loss', float('nan')):.4f}.", ""]
    for reason in outcome.skipped:
        lines += [f"- skipped: {reason}"]
    for title, name in plots.items():
        lines += ["", f"## {title.replace('_', ' ')}", "", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
