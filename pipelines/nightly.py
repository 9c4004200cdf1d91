"""The nightly chain: ingest the inbox, monitor the champion, train and gate, publish insights, refresh predictions.

Every stage is recorded as a pipeline run (start, end, status, row counts, metrics, warnings, error).
A failed stage stops the chain; what it would have replaced (champion, insights, predictions) stays in
place, because each of those is swapped atomically only on success. Every stage is idempotent
(ingest skips rows it already has, training registers a new version, publishing replaces the set),
so a run that crashed is simply started again. A Redis lock keeps two runs from overlapping.
"""

from __future__ import annotations

import json
import logging
import shutil
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from insights import defaults
from insights.errors import Conflict, InvalidInput, LeaseoraError
from insights.ml import registry
from insights.ml.monitoring import feature_drift, live_error
from insights.ml.schema import conform
from insights.runtime import Runtime
from insights.storage import ingest_repo, runs_repo

log = logging.getLogger(__name__)

LOCK_KEY = "leaseora:nightly:lock"
"""Redis key of the lock against overlapping nightly runs."""

INBOX_PATTERNS = ("*.csv", "*.csv.gz", "*.parquet", "*.pq")
"""Files in `var/inbox` that the nightly run ingests."""

Say = Callable[[str], Any]

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


class NightlyLock:
    """A Redis lock with a token, so only its holder can release it, and a TTL in case the holder dies."""

    def __init__(self, runtime: Runtime, *, ttl: int = defaults.NIGHTLY_LOCK_TTL) -> None:
        self.redis = runtime.redis
        self.ttl = ttl
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        """True when this process now holds the lock."""
        return bool(self.redis.set(LOCK_KEY, self.token, nx=True, ex=self.ttl))

    def release(self) -> None:
        """Release the lock if this process still holds it."""
        self.redis.eval(_RELEASE, 1, LOCK_KEY, self.token)


def run_nightly(runtime: Runtime, *, say: Say = log.info, stages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Run the chain under the lock. Raises `Conflict` when another run holds it."""
    lock = NightlyLock(runtime)
    if not lock.acquire():
        raise Conflict("a nightly run is already in progress; this one exits without doing anything")
    try:
        return _run_chain(runtime, say=say, stages=stages)
    finally:
        lock.release()


def refresh_all(runtime: Runtime, *, say: Say = print) -> dict[str, Any]:
    """Train, publish and refresh predictions now (used on first start)."""
    return run_nightly(runtime, say=say, stages=("train", "publish", "predictions"))


STAGE_ORDER = ("ingest", "monitor", "train", "publish", "predictions")


def _run_chain(runtime: Runtime, *, say: Say, stages: tuple[str, ...] | None) -> dict[str, Any]:
    run_id = runs_repo.new_run_id()
    with runtime.session_factory() as session:
        runs_repo.mark_abandoned(session, older_than_hours=defaults.NIGHTLY_LOCK_TTL / 3600)
    functions: dict[str, Callable[[Runtime, str, Say], dict[str, Any]]] = {
        "ingest": _stage_ingest, "monitor": _stage_monitor, "train": _stage_train,
        "publish": _stage_publish, "predictions": _stage_predictions,
    }
    results: dict[str, Any] = {"run_id": run_id, "stages": {}}
    failed = False
    for name in STAGE_ORDER:
        if stages is not None and name not in stages:
            continue
        if failed:
            _record_skipped(runtime, run_id, name)
            results["stages"][name] = {"status": "skipped"}
            continue
        status, payload = _run_stage(runtime, run_id, name, functions[name], say)
        results["stages"][name] = {"status": status, **payload}
        failed = status == "failed"
    results["status"] = "failed" if failed else "succeeded"
    return results


def _run_stage(runtime: Runtime, run_id: str, name: str, function: Callable[..., dict[str, Any]], say: Say) -> tuple[str, dict[str, Any]]:
    with runtime.session_factory() as session:
        stage_id = runs_repo.start_stage(session, run_id=run_id, stage=name)
    say(f"[{name}] started")
    try:
        payload = function(runtime, run_id, say)
    except Exception as exc:
        message = exc.message if isinstance(exc, LeaseoraError) else f"{type(exc).__name__}: {exc}"
        log.error("stage %s failed: %s\n%s", name, message, traceback.format_exc())
        with runtime.session_factory() as session:
            runs_repo.finish_stage(session, stage_id=stage_id, status="failed", error=message[:4000])
        say(f"[{name}] FAILED: {message}")
        return "failed", {"error": message}
    with runtime.session_factory() as session:
        runs_repo.finish_stage(session, stage_id=stage_id, status=payload.pop("status", "succeeded"),
                               rows=payload.get("rows"), metrics=payload.get("metrics"), warnings=payload.get("warnings"))
    say(f"[{name}] done: {json.dumps(payload, default=str)[:300]}")
    return "succeeded", payload


def _record_skipped(runtime: Runtime, run_id: str, name: str) -> None:
    with runtime.session_factory() as session:
        stage_id = runs_repo.start_stage(session, run_id=run_id, stage=name)
        runs_repo.finish_stage(session, stage_id=stage_id, status="skipped", error="an earlier stage failed")


# ----- stages ----------------------------------------------------------------------------------------


def _inbox_options(path: Path) -> dict[str, Any]:
    """Ingest options of an inbox file: a sidecar `<file>.json` ({"kind", "map", "drop", "set", "preset"}),
    else the kind named by the file name's first word (listings_2026-11.csv, leases.csv, ...)."""
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        spec = json.loads(sidecar.read_text())
        return {"kind": spec.get("kind"), "maps": [f"{k}={v}" for k, v in (spec.get("map") or {}).items()],
                "drops": spec.get("drop") or [], "sets": [f"{k}={v}" for k, v in (spec.get("set") or {}).items()],
                "preset": spec.get("preset")}
    stem = path.name.split(".")[0].lower()
    for kind in ("listings", "leases", "properties", "calendar"):
        if stem.startswith(kind):
            return {"kind": kind}
    raise InvalidInput(f"{path.name}: cannot tell the kind; name it listings*/leases*/properties*/calendar* or add {sidecar.name}")


def _stage_ingest(runtime: Runtime, run_id: str, say: Say) -> dict[str, Any]:
    from pipelines.ingest import ingest_command

    inbox = runtime.settings.inbox_dir
    files = sorted({p for pattern in INBOX_PATTERNS for p in inbox.glob(pattern)})
    rows: dict[str, Any] = {"files": len(files), "stored": 0, "rejected": 0, "duplicates": 0}
    warnings: list[str] = []
    for path in files:
        try:
            options = _inbox_options(path)
            text, code = ingest_command(path, settings=runtime.settings, session_factory=runtime.session_factory, **options)
        except (InvalidInput, ValueError) as exc:
            text, code = str(getattr(exc, "message", exc)), 2
        target = inbox / ("done" if code == 0 else "failed")
        target.mkdir(exist_ok=True)
        shutil.move(str(path), target / path.name)
        sidecar = path.with_name(path.name + ".json")
        if sidecar.exists():
            shutil.move(str(sidecar), target / sidecar.name)
        if code:
            warnings.append(f"{path.name}: {text}")
        say(f"  {path.name}: {text.splitlines()[0] if text else code}")
    return {"rows": rows, "warnings": warnings}


def _stage_monitor(runtime: Runtime, run_id: str, say: Say) -> dict[str, Any]:
    models_dir = runtime.settings.models_dir
    if registry.champion_version(models_dir, "rent") is None:
        return {"status": "skipped", "warnings": ["no rent champion yet: nothing to monitor"]}
    champion = registry.load_champion(models_dir, "rent")
    trained_at = pd.Timestamp(champion.metadata["created_at"]).to_pydatetime()
    with runtime.session_factory() as session:
        listings = ingest_repo.load_listings(session)
        current = ingest_repo.load_listings(session, since=trained_at)
    reference = listings.drop(index=current.index)
    metrics: dict[str, Any] = {"champion": champion.version, "new_rows": len(current)}
    warnings: list[str] = []
    if len(current) and len(reference):
        drift = feature_drift(reference, current, list(champion.feature_schema))
        metrics["psi"] = drift
        threshold = runtime.settings.drift_psi_threshold
        drifted = {k: v for k, v in drift.items() if v > threshold}
        if drifted:
            warnings.append(f"feature drift (PSI > {threshold}): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(drifted.items(), key=lambda kv: -kv[1])))
        rows = conform(current, champion.feature_schema)
        live = live_error(current["monthly_rent"].to_numpy(float), champion.predict(rows)["rent_estimate"].to_numpy())
        metrics["live_error"] = live
        limit = runtime.settings.live_error_threshold
        if live.get("rows") and live["mdape"] > limit:
            warnings.append(f"live error: MdAPE {live['mdape']:.1%} on {live['rows']} new listings exceeds {limit:.0%}")
    for warning in warnings:
        say(f"  WARNING {warning}")
    return {"rows": {"new_listings": len(current)}, "metrics": metrics, "warnings": warnings}


def _stage_train(runtime: Runtime, run_id: str, say: Say) -> dict[str, Any]:
    from pipelines.train import train_all

    outcome = train_all(runtime.session_factory, settings=runtime.settings, progress=say)
    summary = outcome.summary()
    warnings = [f"{name} challenger rejected: {reg['reason']}" for name in ("rent", "occupancy")
                if (reg := summary.get(name)) and reg["status"] == "rejected"] + outcome.skipped
    return {"rows": outcome.rows, "metrics": summary, "warnings": warnings}


def _stage_publish(runtime: Runtime, run_id: str, say: Say) -> dict[str, Any]:
    from pipelines.publish_insights import publish_insights

    counts = publish_insights(runtime, run_id=run_id, say=say)
    return {"rows": counts}


def _stage_predictions(runtime: Runtime, run_id: str, say: Say) -> dict[str, Any]:
    from pipelines.predictions import refresh_predictions

    return {"rows": refresh_predictions(runtime)}
