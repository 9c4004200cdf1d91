"""The model registry: versioned models on disk, a champion per model name, gated promotion, rollback.

The only module that touches joblib or the models folder. Layout under `models_dir` (a Path every
function takes explicitly; there is no global state)::

    <name>/<version>/model.joblib      the pickled model (joblib: load only from a trusted folder)
    <name>/<version>/metadata.json     data fingerprint, code version, params, metrics, schema, status
    <name>/champion.json               {"version", "history" (previous champions), "updated_at", "reason"}
    <name>/.lock                       serialises promotions of one name across processes (flock)
    <name>/.tmp-*                      folders being written; never read, swept when stale

Crash safety: a version folder is written under `.tmp-*` and renamed into place, so it appears whole
or not at all; `champion.json` is written to a temp file and swapped in with `os.replace`, so readers
see the old champion or the new one, never half of either. The pointer is the truth about which
version is champion; the `status` in each metadata.json is an annotation written after the swap.

Gating: a challenger is promoted only if, on every gating metric, it is no worse than the champion
*on the same evaluation data* within a relative tolerance (`Settings.promotion_tolerance`). The
caller passes the champion's metrics on the challenger's held-out split, or a callable that computes
them from the loaded champion; stored champion metrics are used only when they were measured on
data with the same fingerprint.

Workers poll `champion_version(models_dir, name)` (one small file read) or hold a `ChampionHandle`
that reloads the model when a new champion is promoted, without a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd

from insights import defaults
from insights.errors import Conflict, InvalidInput, ModelNotAvailable, NotFound
from insights.ml.schema import check_frame

try:  # POSIX only; without it promotions of one name are not serialised across processes.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CHAMPION_FILE = "champion.json"
LOCK_FILE = ".lock"
TEMP_PREFIX = ".tmp-"
PACKAGE = "leaseora-insights"

#: Temp folders older than this are debris of a crashed write and are removed on the next register.
STALE_TEMP_SECONDS = 3600

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Direction = Literal["min", "max"]
Status = Literal["candidate", "champion", "rejected", "retired", "rolled_back"]
ChampionScorer = Callable[["LoadedModel"], Mapping[str, float]]


# --------------------------------------------------------------------------------------------------
# Fingerprints and code version
# --------------------------------------------------------------------------------------------------


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a frame's canonical content: column names and row values, not row order, index or dtype.

    Rows are hashed with `pandas.util.hash_pandas_object` (vectorised, cheap) and sorted, so a
    shuffled copy of the same data has the same fingerprint; "a" stored as str or category hashes alike.
    """
    ordered = frame.reindex(columns=sorted(frame.columns, key=str))
    try:
        rows = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): hash their text instead
        rows = pd.util.hash_pandas_object(ordered.astype(str), index=False).to_numpy()
    digest = hashlib.sha256(json.dumps([str(c) for c in ordered.columns]).encode())
    digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()


def code_version() -> dict[str, str | None]:
    """The package version and, when git and a checkout are there, the commit; never raises."""
    try:
        from importlib.metadata import version

        package: str | None = version(PACKAGE)
    except Exception:  # noqa: BLE001 - not installed (e.g. run from a source tree): unknown, not fatal
        package = None
    return {"package_version": package, "git_commit": _git_commit()}


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None


# --------------------------------------------------------------------------------------------------
# Schema checks
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """Which held-out metrics decide promotion, their direction, and the relative tolerance.

    `Gate({"log_loss": "min"}, tolerance=settings.promotion_tolerance)`: the challenger's log loss
    may exceed the champion's by at most 2% (default) of the champion's value.
    """

    metrics: Mapping[str, Direction]
    tolerance: float = defaults.PROMOTION_TOLERANCE

    def __post_init__(self) -> None:
        if not self.metrics:
            raise InvalidInput("a gate needs at least one metric")
        bad = {m: d for m, d in self.metrics.items() if d not in ("min", "max")}
        if bad or not 0.0 <= self.tolerance < 1.0:
            raise InvalidInput("gate directions must be 'min' or 'max' and tolerance in [0, 1)", details={"bad": bad})

    def compare(self, challenger: Mapping[str, float], champion: Mapping[str, float]) -> tuple[bool, str]:
        """(no worse on every metric?, a reason naming each metric's values)."""
        verdicts = [self._compare_one(m, d, challenger, champion) for m, d in self.metrics.items()]
        passed = all(ok for ok, _ in verdicts)
        return passed, "; ".join(text for _, text in verdicts)

    def _compare_one(
        self, metric: str, direction: Direction, challenger: Mapping[str, float], champion: Mapping[str, float]
    ) -> tuple[bool, str]:
        mine, theirs = _as_float(challenger.get(metric)), _as_float(champion.get(metric))
        if not math.isfinite(mine):
            return False, f"{metric}: challenger has no finite value"
        if not math.isfinite(theirs):
            return True, f"{metric}: champion has no finite value on this data"
        slack = self.tolerance * abs(theirs)
        ok = mine <= theirs + slack if direction == "min" else mine >= theirs - slack
        verb = "no worse than" if ok else "worse than"
        return ok, f"{metric} {mine:.6g} {verb} champion {theirs:.6g} ({direction}, tolerance {self.tolerance:.1%})"


@dataclass(frozen=True)
class Registration:
    """Outcome of `register`: the new version, whether it became champion, and why."""

    name: str
    version: str
    status: Status
    reason: str
    metrics: dict[str, float]
    previous_champion: str | None = None
    champion_metrics: dict[str, float] | None = None

    @property
    def promoted(self) -> bool:
        """Whether the new version is now the champion."""
        return self.status == "champion"


@dataclass(frozen=True)
class LoadedModel:
    """A registered model with its metadata; `predict` refuses frames that do not match its schema."""

    name: str
    version: str
    metadata: dict[str, Any]
    model: Any = field(repr=False)

    @property
    def feature_schema(self) -> dict[str, str]:
        """The input schema recorded at registration."""
        return dict(self.metadata.get("feature_schema") or {})

    @property
    def basis(self) -> str | None:
        """What the model's outputs mean, when it says (occupancy models do)."""
        return getattr(self.model, "basis", None)

    def check_schema(self, frame: pd.DataFrame) -> None:
        """Raise `SchemaMismatch` if `frame` lacks or mistypes a column of the stored schema."""
        check_frame(frame, self.feature_schema, model=f"{self.name} {self.version}")

    def predict(self, frame: Any, **kwargs: Any) -> Any:
        """The wrapped model's `predict`, after checking `frame` against the stored schema (a frame's
        column types; `Rows` are checked by the model as their values are read)."""
        if isinstance(frame, pd.DataFrame):
            self.check_schema(frame)
        return self.model.predict(frame, **kwargs)

    def price_response(self, frame: Any) -> Any:
        """The wrapped occupancy model's `price_response(frame)` after the schema check (the asking rent
        is what the response varies, so it is not needed); None when the model has none."""
        if not hasattr(self.model, "price_response"):
            return None
        if isinstance(frame, pd.DataFrame):
            schema = {column: kind for column, kind in self.feature_schema.items() if column != "asking_rent"}
            check_frame(frame, schema, model=f"{self.name} {self.version}")
        return self.model.price_response(frame)


# --------------------------------------------------------------------------------------------------
# Registering and promoting
# --------------------------------------------------------------------------------------------------


def register(
    models_dir: Path,
    name: str,
    model: Any,
    *,
    train_frame: pd.DataFrame,
    metrics: Mapping[str, float],
    gate: Gate,
    eval_frame: pd.DataFrame | None = None,
    champion_metrics: Mapping[str, float] | ChampionScorer | None = None,
    feature_schema: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    promote: bool = True,
) -> Registration:
    """Store `model` as a new version of `name` and promote it if it passes the gate.

    `metrics` are the challenger's held-out metrics on `eval_frame` (fingerprinted in the metadata).
    `champion_metrics` are the current champion's metrics on that same data — precomputed, or a
    callable that scores the loaded champion (`lambda champion: evaluate(champion, eval_frame)`).
    When omitted, the champion's stored metrics are used only if it was evaluated on data with the
    same fingerprint; otherwise `InvalidInput` is raised before anything is written. The first
    version of a name is promoted without comparison. With `promote=False` the version is stored as
    a candidate. `feature_schema` defaults to `model.feature_schema`; `params` to `model.params()`.
    """
    folder = _name_dir(models_dir, name)
    missing = [m for m in gate.metrics if m not in metrics]
    if missing:
        raise InvalidInput(f"challenger metrics lack the gating metrics {missing}")
    eval_print = fingerprint(eval_frame) if eval_frame is not None else None
    if promote and champion_metrics is None:
        _require_comparable_champion(models_dir, name, eval_print)
    metadata = _new_metadata(name, model, train_frame, eval_frame, eval_print, metrics, gate, feature_schema, params)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temp(folder)
    _write_version(folder, metadata["version"], model, metadata)
    if not promote:
        return _registration(metadata, "candidate", "registered without promotion")
    with _name_lock(folder):
        return _gate_and_swap(models_dir, name, metadata, gate, champion_metrics)


def promote(models_dir: Path, name: str, version: str, *, reason: str = "promoted manually") -> None:
    """Make `version` the champion of `name` (the current one is pushed onto the rollback history)."""
    folder = _name_dir(models_dir, name)
    read_metadata(models_dir, name, version)  # NotFound unless the version is complete on disk
    with _name_lock(folder):
        pointer = _read_pointer(folder)
        if pointer and pointer["version"] == version:
            return
        _swap_champion(folder, version, pointer, reason)


def rollback(models_dir: Path, name: str, *, reason: str = "rolled back") -> str:
    """Restore the previous champion of `name`; returns its version. `Conflict` if there is none."""
    folder = _name_dir(models_dir, name)
    with _name_lock(folder):
        pointer = _read_pointer(folder)
        if pointer is None or not pointer["history"]:
            raise Conflict(f"model {name!r} has no previous champion to roll back to")
        current, previous = pointer["version"], pointer["history"][-1]
        _write_pointer(folder, {"version": previous, "history": pointer["history"][:-1], "reason": reason})
        _annotate(folder / current, "rolled_back", reason)
        _annotate(folder / previous, "champion", reason)
    return previous


def _require_comparable_champion(models_dir: Path, name: str, eval_print: str | None) -> None:
    current = champion_version(models_dir, name)
    if current is None:
        return
    stored = read_metadata(models_dir, name, current).get("evaluation", {}).get("fingerprint")
    if eval_print is None or stored != eval_print:
        raise InvalidInput(
            f"cannot gate against champion {current} of {name!r}: its metrics were measured on other data; "
            "pass champion_metrics (or a callable that re-scores the champion on the challenger's held-out split)"
        )


def _gate_and_swap(
    models_dir: Path,
    name: str,
    metadata: dict[str, Any],
    gate: Gate,
    champion_metrics: Mapping[str, float] | ChampionScorer | None,
) -> Registration:
    folder = models_dir / name
    pointer = _read_pointer(folder)
    if pointer is None:
        _swap_champion(folder, metadata["version"], None, "first version of this model")
        return _registration(metadata, "champion", "first version of this model")
    current = pointer["version"]
    eval_print = metadata["evaluation"]["fingerprint"]
    theirs, problem = _champion_scores(models_dir, name, current, champion_metrics, eval_print)
    if problem is not None:
        passed, reason = problem
    else:
        passed, reason = gate.compare(metadata["metrics"], theirs or {})
    if passed:
        _swap_champion(folder, metadata["version"], pointer, f"promoted over {current}: {reason}")
        return _registration(metadata, "champion", reason, current, theirs)
    _annotate(folder / metadata["version"], "rejected", reason, champion=current, champion_metrics=theirs)
    return _registration(metadata, "rejected", reason, current, theirs)


def _champion_scores(
    models_dir: Path,
    name: str,
    current: str,
    given: Mapping[str, float] | ChampionScorer | None,
    eval_print: str | None,
) -> tuple[dict[str, float] | None, tuple[bool, str] | None]:
    """The champion's metrics on the challenger's data, or (promote?, reason) when they cannot be had."""
    if given is None:
        stored = read_metadata(models_dir, name, current)
        if eval_print is None or stored.get("evaluation", {}).get("fingerprint") != eval_print:
            # The champion changed since register() checked, to one measured on other data.
            return None, (False, f"champion {current} was evaluated on other data; re-score it and promote manually")
        return _float_dict(stored.get("metrics", {})), None
    if not callable(given):
        return _float_dict(given), None
    try:
        champion = load_version(models_dir, name, current)
    except ModelNotAvailable as error:
        # A champion that cannot even be loaded serves nobody: replacing it is the safe move.
        return None, (True, f"champion {current} could not be loaded ({error.message}); promoted")
    try:
        return _float_dict(given(champion)), None
    except Exception as error:  # noqa: BLE001 - any scoring failure keeps the working champion
        return None, (False, f"champion {current} could not be re-scored on the challenger's data ({error}); promote manually")


def _swap_champion(folder: Path, version: str, pointer: dict[str, Any] | None, reason: str) -> None:
    history = [] if pointer is None else [*pointer["history"], pointer["version"]]
    _write_pointer(folder, {"version": version, "history": history, "reason": reason})
    if pointer is not None:
        _annotate(folder / pointer["version"], "retired", f"replaced by {version}")
    _annotate(folder / version, "champion", reason)


def _registration(
    metadata: dict[str, Any], status: Status, reason: str, previous: str | None = None, theirs: dict[str, float] | None = None
) -> Registration:
    return Registration(
        name=metadata["name"], version=metadata["version"], status=status, reason=reason,
        metrics=dict(metadata["metrics"]), previous_champion=previous, champion_metrics=theirs,
    )


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


#: Seconds after which the champion pointer is read again even if its file looks unchanged (a network
#: file system's attribute cache can hide a replacement for a while; reading it does not).
POINTER_REREAD_SECONDS = 5.0
#: The champion pointer each process last read, by pointer path: (file identity, version, read at).
_pointer_reads: dict[Path, tuple[tuple[int, ...], str | None, float]] = {}


def champion_version(models_dir: Path, name: str) -> str | None:
    """The champion's version of `name`, or None: cheap enough to poll per request (mostly one `stat`).

    The pointer file is only ever replaced whole (`os.replace` of a new file), so a promotion or a
    rollback always gives it a new identity (device, inode, size, change and modification times);
    the file is read again then, and at least every `POINTER_REREAD_SECONDS`.
    """
    path = _name_dir(models_dir, name) / CHAMPION_FILE
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_ctime_ns, stat.st_mtime_ns)
    known = _pointer_reads.get(path)
    now = time.monotonic()
    if known is not None and known[0] == identity and now - known[2] < POINTER_REREAD_SECONDS:
        return known[1]
    pointer = _read_pointer(path.parent)  # a replacement between stat and read is seen at the next call
    version = None if pointer is None else str(pointer["version"])
    _pointer_reads[path] = (identity, version, now)
    return version


def load_champion(models_dir: Path, name: str) -> LoadedModel:
    """The champion of `name`, wrapped so that `predict` checks its input schema; `ModelNotAvailable` if none."""
    version = champion_version(models_dir, name)
    if version is None:
        raise ModelNotAvailable(f"no champion for model {name!r} yet (run `leaseora train`)")
    return load_version(models_dir, name, version)


def load_version(models_dir: Path, name: str, version: str) -> LoadedModel:
    """One version of `name`, wrapped; `ModelNotAvailable` if its files are missing or unreadable."""
    path = _version_dir(models_dir, name, version)
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        model = joblib.load(path / MODEL_FILE)
    except Exception as error:  # noqa: BLE001 - missing, truncated or unpicklable files all mean "not available"
        raise ModelNotAvailable(f"model {name} {version} cannot be loaded: {error}", details={"path": str(path)}) from error
    return LoadedModel(name=name, version=version, metadata=metadata, model=model)


def read_metadata(models_dir: Path, name: str, version: str) -> dict[str, Any]:
    """The metadata of one version; `NotFound` if the version does not exist (or is not complete)."""
    path = _version_dir(models_dir, name, version) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise NotFound(f"model {name!r} has no version {version!r}") from error


def list_versions(models_dir: Path, name: str) -> list[dict[str, Any]]:
    """Metadata of every complete version of `name`, oldest first, with `is_champion` from the pointer.

    `status` is reconciled with the pointer: the pointer's version is "champion"; a version whose
    metadata still says champion (a crash between swap and annotation) reads "retired".
    """
    folder = _name_dir(models_dir, name)
    if not folder.is_dir():
        return []
    current = champion_version(models_dir, name)
    versions = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        metadata["is_champion"] = path.name == current
        if metadata["is_champion"]:
            metadata["status"] = "champion"
        elif metadata.get("status") == "champion":
            metadata["status"] = "retired"
        versions.append(metadata)
    return sorted(versions, key=lambda m: (m.get("created_at", ""), m["version"]))


class ChampionHandle:
    """A worker's view of one model's champion: reloads when a new champion is promoted, no restart.

    `get()` costs one small file read when nothing changed. Thread-safe; one handle per process.
    """

    def __init__(self, models_dir: Path, name: str) -> None:
        self.models_dir = models_dir
        self.name = name
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    def get(self) -> LoadedModel:
        """The current champion, reloaded if the pointer moved since the last call."""
        version = champion_version(self.models_dir, self.name)
        if version is None:
            raise ModelNotAvailable(f"no champion for model {self.name!r} yet (run `leaseora train`)")
        with self._lock:
            if self._loaded is None or self._loaded.version != version:
                self._loaded = load_version(self.models_dir, self.name, version)
            return self._loaded


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _name_dir(models_dir: Path, name: str) -> Path:
    if not _SAFE_NAME.match(name):
        raise InvalidInput(f"model name {name!r} must be letters, digits, '.', '_' or '-'")
    return Path(models_dir) / name


def _version_dir(models_dir: Path, name: str, version: str) -> Path:
    if not _SAFE_NAME.match(version):
        raise NotFound(f"model {name!r} has no version {version!r}")
    return _name_dir(models_dir, name) / version


def _new_version_id() -> str:
    # Sortable by time, unique across machines registering in the same microsecond.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def _new_metadata(
    name: str,
    model: Any,
    train_frame: pd.DataFrame,
    eval_frame: pd.DataFrame | None,
    eval_print: str | None,
    metrics: Mapping[str, float],
    gate: Gate,
    feature_schema: Mapping[str, str] | None,
    params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    schema = feature_schema if feature_schema is not None else getattr(model, "feature_schema", None)
    if schema is None:
        raise InvalidInput("pass feature_schema: the model has no feature_schema attribute")
    if params is None and callable(getattr(model, "params", None)):
        params = model.params()
    return {
        "name": name,
        "version": _new_version_id(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "status": "candidate",
        "reason": "",
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "training_data": {"fingerprint": fingerprint(train_frame), "rows": len(train_frame)},
        "evaluation": {"fingerprint": eval_print, "rows": None if eval_frame is None else len(eval_frame)},
        "code": code_version(),
        "params": dict(params or {}),
        "metrics": dict(metrics),
        "gate": {"metrics": dict(gate.metrics), "tolerance": gate.tolerance},
        "feature_schema": dict(schema),
    }


def _write_version(folder: Path, version: str, model: Any, metadata: dict[str, Any]) -> None:
    """Write model and metadata into a temp folder, then rename it into place (all or nothing)."""
    temp = folder / f"{TEMP_PREFIX}{version}-{secrets.token_hex(4)}"
    temp.mkdir()
    try:
        joblib.dump(model, temp / MODEL_FILE)
        _write_json(temp / METADATA_FILE, metadata)
        _fsync(temp / MODEL_FILE)
        os.rename(temp, folder / version)
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _annotate(path: Path, status: Status, reason: str, **extra: Any) -> None:
    """Rewrite a version's status and reason (atomically); a missing version is left alone."""
    file = path / METADATA_FILE
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    metadata.update(status=status, reason=reason, status_changed_at=datetime.now(UTC).isoformat(timespec="seconds"), **extra)
    _atomic_json(file, metadata)


def _read_pointer(folder: Path) -> dict[str, Any] | None:
    try:
        pointer = json.loads((folder / CHAMPION_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    pointer.setdefault("history", [])
    return pointer


def _write_pointer(folder: Path, pointer: dict[str, Any]) -> None:
    _atomic_json(folder / CHAMPION_FILE, {**pointer, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")})


def _atomic_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON next to `path` and os.replace it in: readers never see a partial file."""
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
    try:
        _write_json(temp, payload)
        _fsync(temp)
        os.replace(temp, path)
        _fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True), encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable; some filesystems refuse to open folders, which is fine to ignore.
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def _name_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock per model name, so two promotions never both read the same old champion."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _sweep_stale_temp(folder: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def _float_dict(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): _as_float(v) for k, v in values.items() if isinstance(v, (int, float, np.number))}


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
