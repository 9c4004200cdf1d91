"""The nightly chain: the real cron path with a real worker, the overlap lock, a failing stage, a worse
challenger, drift detection, and a worker that serves a newly promoted champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from insights import defaults
from insights.errors import Conflict
from insights.ml import registry
from insights.ml.rent import RentModel
from insights.storage import ingest_repo
from insights.storage.tables import Insight, PipelineRun, PropertyPrediction
from insights.worker.context import model_cache, set_runtime
from insights.worker.cron import build_scheduler
from insights.worker.queues import queue
from pipelines.bootstrap import DEMO_FILES
from pipelines.demo_data import write_demo_data
from pipelines.ingest import ingest_file
from pipelines.nightly import LOCK_KEY, run_nightly
from pipelines.train import train_rent


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small generated portfolio (written once for the module)."""
    return write_demo_data(tmp_path_factory.mktemp("demo"), seed=3, n_properties=500)


@pytest.fixture
def loaded(runtime, demo_files):
    """The test's database holding the demo portfolio, and the worker context pointing at it."""
    for name, kind in DEMO_FILES:
        if name in demo_files:
            ingest_file(demo_files[name], kind=kind, settings=runtime.settings, session_factory=runtime.session_factory)
    set_runtime(runtime)
    yield runtime
    set_runtime(None)


def stage_statuses(runtime, run_id: str) -> dict[str, str]:
    with runtime.session_factory() as session:
        rows = session.scalars(select(PipelineRun).where(PipelineRun.run_id == run_id)).all()
        return {row.stage: row.status for row in rows}


def test_full_nightly_run_through_rq_cron_and_a_real_worker(loaded, redis_client) -> None:
    scheduler = build_scheduler(redis_client, loaded.settings, schedule="* * * * *")
    nightly_job = next(job for job in scheduler._cron_jobs if job.name == "nightly")
    nightly_job.next_enqueue_time = pd.Timestamp.now(tz="UTC").to_pydatetime()  # due now, as it is once a minute
    enqueued = scheduler.enqueue_jobs()
    assert "nightly" in [job.name for job in enqueued]
    assert queue(redis_client, defaults.PIPELINE_QUEUE).count == 1
    worker = SimpleWorker([queue(redis_client, defaults.PIPELINE_QUEUE)], connection=redis_client)
    worker.work(burst=True)
    job = queue(redis_client, defaults.PIPELINE_QUEUE).finished_job_registry.get_job_ids()
    assert len(job) == 1
    result = queue(redis_client, defaults.PIPELINE_QUEUE).fetch_job(job[0]).return_value()
    assert result["status"] == "succeeded"
    assert stage_statuses(loaded, result["run_id"]) == {
        "ingest": "succeeded", "monitor": "skipped", "train": "succeeded", "publish": "succeeded", "predictions": "succeeded"}
    models_dir = loaded.settings.models_dir
    assert registry.champion_version(models_dir, "rent") and registry.champion_version(models_dir, "occupancy")
    with loaded.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Insight).where(Insight.published)) > 0
        assert session.scalar(select(func.count()).select_from(PropertyPrediction)) == 500
    assert redis_client.get(LOCK_KEY) is None  # released


def test_a_second_run_does_not_overlap(loaded, redis_client) -> None:
    redis_client.set(LOCK_KEY, "another-run", ex=60)
    with pytest.raises(Conflict, match="already in progress"):
        run_nightly(loaded, say=lambda _: None)
    assert redis_client.get(LOCK_KEY) == b"another-run"  # the holder's lock is untouched
    with loaded.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PipelineRun)) == 0


def test_a_failing_stage_leaves_champion_insights_and_predictions_in_place(loaded, monkeypatch) -> None:
    first = run_nightly(loaded, say=lambda _: None)
    assert first["status"] == "succeeded"
    champion = registry.champion_version(loaded.settings.models_dir, "rent")
    with loaded.session_factory() as session:
        published = session.scalars(select(Insight.id).where(Insight.published, Insight.current)).all()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while training")

    monkeypatch.setattr("pipelines.train.train_all", broken)
    second = run_nightly(loaded, say=lambda _: None)
    assert second["status"] == "failed"
    assert stage_statuses(loaded, second["run_id"]) == {
        "ingest": "succeeded", "monitor": "succeeded", "train": "failed", "publish": "skipped", "predictions": "skipped"}
    with loaded.session_factory() as session:
        failed = session.scalar(select(PipelineRun).where(PipelineRun.run_id == second["run_id"], PipelineRun.stage == "train"))
        assert "disk full" in failed.error
        assert session.scalars(select(Insight.id).where(Insight.published, Insight.current)).all() == published
    assert registry.champion_version(loaded.settings.models_dir, "rent") == champion
    monkeypatch.undo()
    third = run_nightly(loaded, say=lambda _: None)  # the next run starts clean
    assert third["status"] == "succeeded"


def test_a_worse_challenger_is_kept_but_not_promoted(loaded) -> None:
    with loaded.session_factory() as session:
        listings = ingest_repo.load_listings(session)
    settings = loaded.settings
    good, *_ = train_rent(listings, settings=settings)
    assert good.promoted
    weak = RentModel(params={"num_leaves": 2, "learning_rate": 0.5, "min_child_samples": 500}, use_knn=False,
                     use_target_encoding=False, folds=2)
    worse, *_ = train_rent(listings, settings=settings, model=weak)
    assert worse.status == "rejected"
    assert "mdape" in worse.reason and "worse than" in worse.reason
    assert registry.champion_version(settings.models_dir, "rent") == good.version
    statuses = {v["version"]: v["status"] for v in registry.list_versions(settings.models_dir, "rent")}
    assert statuses[worse.version] == "rejected"


def test_drift_and_live_error_are_detected_when_the_market_shifts(loaded, demo_files, tmp_path) -> None:
    assert run_nightly(loaded, say=lambda _: None)["status"] == "succeeded"
    shifted = pd.read_csv(write_demo_data(tmp_path / "shift", seed=11, n_properties=300)["listings"])
    shifted["size_sqm"] = shifted["size_sqm"] * 1.8  # a market of much larger flats ...
    shifted["monthly_rent"] = shifted["monthly_rent"] * 2.5  # ... and rents far above what size alone explains
    shifted["listing_id"] = "shift-" + shifted["listing_id"].astype(str)
    shifted.to_csv(loaded.settings.inbox_dir / "listings_shift.csv", index=False)
    result = run_nightly(loaded, say=lambda _: None, stages=("ingest", "monitor"))
    monitor = result["stages"]["monitor"]
    assert monitor["metrics"]["psi"]["size_sqm"] > loaded.settings.drift_psi_threshold
    assert monitor["metrics"]["live_error"]["mdape"] > loaded.settings.live_error_threshold
    assert any("feature drift" in w and "size_sqm" in w for w in monitor["warnings"])
    assert any("live error" in w for w in monitor["warnings"])
    assert (loaded.settings.inbox_dir / "done" / "listings_shift.csv").exists()


def test_worker_cache_serves_the_newly_promoted_champion(loaded) -> None:
    with loaded.session_factory() as session:
        listings = ingest_repo.load_listings(session)
    first, *_ = train_rent(listings, settings=loaded.settings)
    cache = model_cache(loaded.settings.models_dir)
    assert cache.get("rent").version == first.version
    second, *_ = train_rent(listings, settings=loaded.settings, seed=1)
    registry.promote(loaded.settings.models_dir, "rent", second.version)
    assert cache.get("rent").version == second.version  # no restart, the whole new model
