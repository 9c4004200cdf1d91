"""Model registry: gated promotion with reasons, crash safety, rollback, schema checks, reload detection."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from insights.config import Settings
from insights.errors import Conflict, InvalidInput, ModelNotAvailable, SchemaMismatch
from insights.ml import registry
from insights.ml.occupancy import OccupancyModel, evaluate
from insights.ml.registry import (
    ChampionHandle,
    Gate,
    LoadedModel,
    champion_version,
    code_version,
    fingerprint,
    list_versions,
    load_champion,
    promote,
    read_metadata,
    register,
    rollback,
)
from tests.ml.test_occupancy import random_units, simulate_spells

NAME = "occupancy"
GATE = Gate({"log_loss": "min"}, tolerance=0.02)


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {"train": simulate_spells(2000, seed=1), "eval": simulate_spells(1000, seed=2)}


@pytest.fixture(scope="module")
def good_model(data: dict[str, pd.DataFrame]) -> OccupancyModel:
    return OccupancyModel().fit(data["train"])


@pytest.fixture(scope="module")
def weak_model(data: dict[str, pd.DataFrame]) -> OccupancyModel:
    # Trained on a tenth of the data with a heavy penalty: measurably worse on the held-out split.
    return OccupancyModel(l2=2000.0).fit(data["train"].head(200))


def _register(models: Path, model: OccupancyModel, data: dict[str, pd.DataFrame], **kwargs: Any) -> registry.Registration:
    options: dict[str, Any] = {
        "train_frame": data["train"],
        "eval_frame": data["eval"],
        "metrics": {"log_loss": evaluate(model, data["eval"])["log_loss"]},
        "gate": GATE,
    }
    options.update(kwargs)
    return register(models, NAME, model, **options)


def _rescore(data: dict[str, pd.DataFrame]) -> registry.ChampionScorer:
    """Score whatever is champion on the challenger's held-out split."""
    return lambda champion: {"log_loss": evaluate(champion.model, data["eval"])["log_loss"]}


def test_first_version_becomes_champion_with_complete_metadata(tmp_path: Path, good_model: OccupancyModel, data: dict) -> None:
    result = _register(tmp_path, good_model, data)
    assert result.promoted and result.reason == "first version of this model"
    metadata = read_metadata(tmp_path, NAME, result.version)
    assert metadata["status"] == "champion"
    assert metadata["training_data"] == {"fingerprint": fingerprint(data["train"]), "rows": 2000}
    assert metadata["evaluation"]["fingerprint"] == fingerprint(data["eval"])
    assert set(metadata["code"]) == {"package_version", "git_commit"}
    assert metadata["created_at"].endswith("Z")
    assert metadata["feature_schema"] == good_model.feature_schema
    assert metadata["params"]["engine"] == "logistic"
    assert (tmp_path / NAME / result.version / "model.joblib").is_file()
    assert champion_version(tmp_path, NAME) == result.version


def test_worse_challenger_is_rejected_with_reason(tmp_path: Path, good_model, weak_model, data) -> None:
    champion = _register(tmp_path, good_model, data)
    challenger = _register(tmp_path, weak_model, data, champion_metrics=_rescore(data))
    assert challenger.status == "rejected"
    assert "log_loss" in challenger.reason and "worse than champion" in challenger.reason
    assert challenger.champion_metrics is not None
    assert champion_version(tmp_path, NAME) == champion.version
    stored = read_metadata(tmp_path, NAME, challenger.version)
    assert stored["status"] == "rejected" and stored["reason"] == challenger.reason
    statuses = {v["version"]: v["status"] for v in list_versions(tmp_path, NAME)}
    assert statuses == {champion.version: "champion", challenger.version: "rejected"}


def test_better_or_tolerably_worse_challenger_is_promoted(tmp_path: Path, good_model, weak_model, data) -> None:
    first = _register(tmp_path, weak_model, data)
    second = _register(tmp_path, good_model, data, champion_metrics=_rescore(data))
    assert second.promoted and second.previous_champion == first.version
    # 1% worse than the champion on the same data, inside the 2% tolerance.
    champion_loss = second.metrics["log_loss"]
    third = _register(tmp_path, good_model, data, metrics={"log_loss": champion_loss * 1.01},
                      champion_metrics={"log_loss": champion_loss})
    assert third.promoted
    fourth = _register(tmp_path, good_model, data, metrics={"log_loss": champion_loss * 1.03},
                       champion_metrics={"log_loss": champion_loss})
    assert not fourth.promoted
    statuses = [v["status"] for v in list_versions(tmp_path, NAME)]
    assert statuses == ["retired", "retired", "champion", "rejected"]


def test_tolerance_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(LEASEORA_HOME=str(tmp_path), LEASEORA_PROMOTION_TOLERANCE="0.1")
    gate = Gate({"auc": "max"}, tolerance=settings.promotion_tolerance)
    assert gate.compare({"auc": 0.91}, {"auc": 1.0})[0]
    assert not gate.compare({"auc": 0.89}, {"auc": 1.0})[0]


def test_champion_must_be_scored_on_the_same_data(tmp_path: Path, good_model, data) -> None:
    _register(tmp_path, good_model, data)
    other = {"train": data["train"], "eval": simulate_spells(500, seed=77)}
    with pytest.raises(InvalidInput, match="other data"):
        _register(tmp_path, good_model, other)
    assert len(list_versions(tmp_path, NAME)) == 1  # nothing was written
    # Same evaluation data: the champion's stored metrics are comparable.
    same = _register(tmp_path, good_model, data)
    assert same.promoted and same.champion_metrics == {"log_loss": pytest.approx(same.metrics["log_loss"])}


def test_scorer_receives_the_loaded_champion(tmp_path: Path, good_model, data) -> None:
    first = _register(tmp_path, good_model, data)
    seen: list[str] = []

    def scorer(champion: LoadedModel) -> dict[str, float]:
        seen.append(champion.version)
        return {"log_loss": 10.0}

    assert _register(tmp_path, good_model, data, champion_metrics=scorer).promoted
    assert seen == [first.version]


def test_failed_rescoring_keeps_the_champion_and_unloadable_champion_is_replaced(tmp_path: Path, good_model, data) -> None:
    first = _register(tmp_path, good_model, data)

    def broken(champion: LoadedModel) -> dict[str, float]:
        raise SchemaMismatch("champion needs a column the new data lacks")

    rejected = _register(tmp_path, good_model, data, champion_metrics=broken)
    assert not rejected.promoted and "could not be re-scored" in rejected.reason
    (tmp_path / NAME / first.version / "model.joblib").unlink()
    replaced = _register(tmp_path, good_model, data, champion_metrics=_rescore(data))
    assert replaced.promoted and "could not be loaded" in replaced.reason


# -- crash safety ----------------------------------------------------------------------------------


def test_crash_while_writing_a_version_leaves_the_champion_loadable(
    tmp_path: Path, good_model, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion = _register(tmp_path, good_model, data)

    def crash(model: Any, path: Path) -> None:
        Path(path).write_bytes(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(registry.joblib, "dump", crash)
    with pytest.raises(OSError):
        _register(tmp_path, good_model, data)
    monkeypatch.undo()
    assert [v["version"] for v in list_versions(tmp_path, NAME)] == [champion.version]
    assert not list((tmp_path / NAME).glob(".tmp-*"))
    assert load_champion(tmp_path, NAME).version == champion.version


def test_crash_at_the_pointer_swap_keeps_the_old_champion(
    tmp_path: Path, good_model, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion = _register(tmp_path, good_model, data)
    real_replace = registry.os.replace

    def crash_on_pointer(source: Any, target: Any) -> None:
        if Path(target).name == "champion.json":
            raise OSError("power cut")
        real_replace(source, target)

    monkeypatch.setattr(registry.os, "replace", crash_on_pointer)
    with pytest.raises(OSError):
        _register(tmp_path, good_model, data, champion_metrics={"log_loss": 99.0})
    monkeypatch.undo()
    assert champion_version(tmp_path, NAME) == champion.version
    assert load_champion(tmp_path, NAME).predict(random_units(3, seed=0)).shape[0] == 3
    versions = list_versions(tmp_path, NAME)
    assert [v["status"] for v in versions] == ["champion", "candidate"]  # whole, but never promoted


def test_debris_of_a_hard_crash_is_ignored(tmp_path: Path, good_model, data) -> None:
    champion = _register(tmp_path, good_model, data)
    debris = tmp_path / NAME / ".tmp-20990101T000000000000Z-dead-beef"
    debris.mkdir()
    (debris / "model.joblib").write_bytes(b"partial")
    (tmp_path / NAME / ".tmp-champion.json.0bad").write_text('{"version": "nope"')
    assert [v["version"] for v in list_versions(tmp_path, NAME)] == [champion.version]
    assert load_champion(tmp_path, NAME).version == champion.version


# -- rollback, manual promotion, reload --------------------------------------------------------------


def test_rollback_and_manual_promotion(tmp_path: Path, good_model, weak_model, data) -> None:
    first = _register(tmp_path, weak_model, data)
    second = _register(tmp_path, good_model, data, champion_metrics=_rescore(data))
    assert rollback(tmp_path, NAME) == first.version
    assert champion_version(tmp_path, NAME) == first.version
    assert read_metadata(tmp_path, NAME, second.version)["status"] == "rolled_back"
    with pytest.raises(Conflict):
        rollback(tmp_path, NAME)
    promote(tmp_path, NAME, second.version, reason="operator decision")
    assert champion_version(tmp_path, NAME) == second.version
    assert read_metadata(tmp_path, NAME, second.version)["reason"] == "operator decision"
    assert rollback(tmp_path, NAME) == first.version
    # A process that polls the pointer (it re-reads the file only when its identity changed) sees
    # every swap, however quickly they follow one another.
    for _ in range(10):
        promote(tmp_path, NAME, second.version, reason="again")
        assert champion_version(tmp_path, NAME) == second.version
        assert rollback(tmp_path, NAME) == first.version
        assert champion_version(tmp_path, NAME) == first.version


def test_the_champion_pointer_is_read_again_only_when_replaced_or_after_a_while(tmp_path: Path, good_model, data,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    champion = _register(tmp_path, good_model, data)
    reads = []
    original = registry._read_pointer
    monkeypatch.setattr(registry, "_read_pointer", lambda folder: reads.append(folder) or original(folder))
    monkeypatch.setattr(registry, "POINTER_REREAD_SECONDS", 3600.0)
    assert champion_version(tmp_path, NAME) == champion.version
    assert champion_version(tmp_path, NAME) == champion.version
    assert len(reads) == 1  # the second call: unchanged file, recently read, a stat only
    # A file system that hides the replacement (attribute cache) is still read after the interval.
    monkeypatch.setattr(registry, "POINTER_REREAD_SECONDS", 0.0)
    before = len(reads)
    assert champion_version(tmp_path, NAME) == champion.version
    assert len(reads) == before + 1


def test_workers_detect_a_new_champion_by_version(tmp_path: Path, good_model, weak_model, data) -> None:
    handle = ChampionHandle(tmp_path, NAME)
    with pytest.raises(ModelNotAvailable):
        handle.get()
    first = _register(tmp_path, weak_model, data)
    loaded = handle.get()
    assert loaded.version == first.version and handle.get() is loaded  # unchanged: no reload
    second = _register(tmp_path, good_model, data, champion_metrics=_rescore(data))
    assert champion_version(tmp_path, NAME) == second.version
    assert handle.get().version == second.version


# -- schema ------------------------------------------------------------------------------------------


def test_loaded_model_refuses_mismatched_input(tmp_path: Path, good_model, data) -> None:
    _register(tmp_path, good_model, data)
    loaded = load_champion(tmp_path, NAME)
    units = random_units(5, seed=1)
    assert loaded.predict(units).shape[0] == 5
    with pytest.raises(SchemaMismatch) as missing:
        loaded.predict(units.drop(columns=["city", "bedrooms"]))
    assert missing.value.details["missing"] == ["city", "bedrooms"]
    with pytest.raises(SchemaMismatch) as mistyped:
        loaded.predict(units.assign(market_rent=units["market_rent"].astype(str)))
    assert "market_rent" in mistyped.value.details["mistyped"]


# -- helpers -----------------------------------------------------------------------------------------


def test_fingerprint_is_content_not_order_or_dtype() -> None:
    frame = pd.DataFrame({"city": ["a", "b", "c"], "rent": [1.0, 2.0, np.nan]})
    shuffled = frame.iloc[[2, 0, 1]][["rent", "city"]].reset_index(drop=True)
    assert fingerprint(shuffled) == fingerprint(frame)
    assert fingerprint(frame.astype({"city": "category"})) == fingerprint(frame)
    assert fingerprint(frame.assign(rent=[1.0, 2.0, 3.0])) != fingerprint(frame)


def test_code_version_survives_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert code_version()["git_commit"] is None


def test_bad_names_and_missing_champion(tmp_path: Path, good_model, data) -> None:
    with pytest.raises(ModelNotAvailable):
        load_champion(tmp_path, NAME)
    with pytest.raises(InvalidInput):
        register(tmp_path, "../evil", good_model, train_frame=data["train"], metrics={"log_loss": 1.0}, gate=GATE)
    with pytest.raises(InvalidInput):
        register(tmp_path, NAME, good_model, train_frame=data["train"], metrics={"brier": 1.0}, gate=GATE)
    assert json.loads(json.dumps(list_versions(tmp_path, NAME))) == []
