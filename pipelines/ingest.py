"""The ingest stage: read -> canonicalise -> validate -> store, in one transaction.

`leaseora ingest FILE [--kind K] [--map CANONICAL=SOURCE ...] [--drop COLUMN ...] [--set CANONICAL=VALUE ...]
[--preset NAME]` calls `ingest_command`, which calls `ingest_file`.

- Rejected rows never stop an ingest: they go to `var/rejects/<time>-<file>-<sha>.rejects.csv` with
  their source row number, original values and a reason. A file with no usable row at all is an
  `IngestError` (the rejects file is still written, so the user can see why).
- Idempotent: each row carries a sha256 of its canonical content (`row_hash`). Listings and leases
  whose hash is stored already, and repeats within the file, count as duplicates. Properties are
  keyed by `property_id` (market properties: no account) and calendar days by (listing_id, date):
  an unchanged row is a duplicate, a changed one is updated in place.
- One transaction: a failure stores nothing (and the rejects file of that attempt is removed).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Settings
from insights.data.canonical import SourceMapping, json_objects, row_hashes
from insights.data.load import Prepared, get_preset, load_canonical, load_preset, prepare
from insights.data.read import SOURCE_ROW
from insights.data.schema import Kind
from insights.data.validate import REASON
from insights.errors import Conflict, IngestError, InvalidInput
from insights.storage import ingest_repo
from insights.storage.ingest_repo import TABLES
from insights.storage.session import make_engine, make_session_factory, migrate
from insights.storage.tables import CalendarDay, PropertyRow

__all__ = ["IngestSummary", "ingest_command", "ingest_file", "load_canonical", "load_preset", "parse_pairs"]

#: Kind used when neither `--kind` nor a preset says otherwise.
DEFAULT_KIND = Kind.LISTINGS


@dataclass
class IngestSummary:
    """What one ingest did. `stored` counts rows written (inserted, or updated for properties/calendar days)."""

    read: int
    stored: int
    rejected: int
    duplicates: int
    rejects_path: Path | None
    kind: Kind
    file: Path
    updated: int = 0
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        """One human-readable line, as the CLI prints it."""
        line = (
            f"{self.file.name} ({self.kind.value}): read {self.read}, stored {self.stored}, "
            f"rejected {self.rejected}, duplicates {self.duplicates}"
        )
        if self.updated:
            line += f" ({self.updated} of the stored rows updated older versions)"
        if self.rejects_path:
            line += f"\nrejected rows and reasons: {self.rejects_path}"
        return "\n".join([*self.warnings, line])


@dataclass
class _Plan:
    """Rows to write, decided before the transaction from the file alone."""

    frame: pd.DataFrame
    hashes: pd.Series
    duplicates: int
    conflicts: dict[int, str]


def ingest_file(
    path: str | Path,
    *,
    kind: Kind | str,
    mapping: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    constants: Mapping[str, str] | None = None,
    settings: Settings,
    session_factory: sessionmaker[Session],
    source_name: str | None = None,
) -> IngestSummary:
    """Ingest one file: store its valid new rows in one transaction, write its rejects, record the ingest."""
    path = Path(path)
    kind = Kind(kind)
    spec = SourceMapping(kind=kind, mapping=dict(mapping or {}), drop=tuple(drop), constants=dict(constants or {}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare(path, spec)
    plan = _plan(prepared, kind)
    rejects = _with_conflicts(prepared, plan.conflicts)
    read = len(prepared.raw.frame) + len(prepared.raw.bad_lines)
    sha = _file_sha256(path)
    rejects_path = _write_rejects(rejects, settings.rejects_dir, path, sha) if not rejects.empty else None
    if plan.frame.empty:
        raise IngestError(
            f"{path.name}: no usable row ({len(rejects)} rejected; reasons in {rejects_path})",
            details={"rejects_path": str(rejects_path) if rejects_path else None},
        )
    record = _Record(path=path, sha256=sha, kind=kind, read=read, rejected=len(rejects), rejects_path=rejects_path)
    try:
        stored, updated, known = _store_retrying(prepared, plan, record, session_factory, source_name or path.name)
    except BaseException:
        if rejects_path is not None:
            rejects_path.unlink(missing_ok=True)
        raise
    if stored:
        with session_factory.begin() as session:
            ingest_repo.refresh_statistics(session, table=TABLES[kind])
    return IngestSummary(
        read=read,
        stored=stored,
        rejected=len(rejects),
        duplicates=plan.duplicates + known,
        rejects_path=rejects_path,
        kind=kind,
        file=path,
        updated=updated,
        warnings=[str(w.message) for w in caught if issubclass(w.category, UserWarning)],
    )


def _plan(prepared: Prepared, kind: Kind) -> _Plan:
    """Drop in-file repeats: identical rows are duplicates; same key with other values is a conflict."""
    clean = prepared.clean
    hashes = row_hashes(clean)
    repeated = hashes.duplicated().to_numpy()
    duplicates = int(repeated.sum())
    frame, hashes = clean[~repeated], hashes[~repeated]
    conflicts: dict[int, str] = {}
    keys = {Kind.PROPERTIES: ["property_id"], Kind.CALENDAR: ["listing_id", "date"]}.get(kind)
    if keys:
        clash = frame.duplicated(subset=keys, keep="first").to_numpy()
        if clash.any():
            first = frame[~clash].reset_index().set_index(keys)[SOURCE_ROW]
            for row, values in frame.loc[clash, keys].iterrows():
                key = tuple(values) if len(keys) > 1 else values.iloc[0]
                shown = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
                conflicts[int(row)] = f"{shown}: repeats row {int(first.loc[key])} with different values"
            frame, hashes = frame[~clash], hashes[~clash]
    return _Plan(frame=frame, hashes=hashes, duplicates=duplicates, conflicts=conflicts)


def _with_conflicts(prepared: Prepared, conflicts: dict[int, str]) -> pd.DataFrame:
    if not conflicts:
        return prepared.rejects
    rows = sorted(conflicts)
    extra = prepared.raw.frame.loc[rows].astype("object").copy()
    extra.insert(0, REASON, [conflicts[row] for row in rows])
    extra.insert(0, SOURCE_ROW, rows)
    merged = pd.concat([prepared.rejects, extra.reset_index(drop=True)], ignore_index=True)
    return merged.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class _Record:
    """What the `IngestFile` row of this ingest says, apart from the storage counts."""

    path: Path
    sha256: str
    kind: Kind
    read: int
    rejected: int
    rejects_path: Path | None


def _store_retrying(
    prepared: Prepared, plan: _Plan, record: _Record, session_factory: sessionmaker[Session], source: str
) -> tuple[int, int, int]:
    """`_store`, tried a second time if a concurrent ingest committed some of the same rows first."""
    try:
        return _store(prepared, plan, record, session_factory, source)
    except IntegrityError:
        pass  # the other ingest's rows are now visible: a fresh lookup counts them as duplicates
    try:
        return _store(prepared, plan, record, session_factory, source)
    except IntegrityError as exc:
        raise Conflict(f"{record.path.name}: another ingest is writing the same rows; run it again") from exc


def _store(
    prepared: Prepared, plan: _Plan, record: _Record, session_factory: sessionmaker[Session], source: str
) -> tuple[int, int, int]:
    """Write the planned rows and the ingest record in one transaction: (stored, updated, already known)."""
    extras = prepared.canonical.extra_columns
    with session_factory.begin() as session:
        if record.kind is Kind.CALENDAR:
            stored, updated, known = _store_calendar(session, plan, extras, source)
        elif record.kind is Kind.PROPERTIES:
            stored, updated, known = _store_properties(session, plan, extras, source)
        else:
            stored, updated, known = _store_hashed(session, plan, record.kind, extras, source)
        ingest_repo.record_ingest_file(
            session,
            path=str(record.path.resolve()),
            sha256=record.sha256,
            kind=record.kind,
            rows_read=record.read,
            rows_stored=stored,
            rows_rejected=record.rejected,
            rows_duplicate=plan.duplicates + known,
            rejects_path=str(record.rejects_path) if record.rejects_path else None,
        )
    return stored, updated, known


def _store_hashed(session: Session, plan: _Plan, kind: Kind, extras: list[str], source: str) -> tuple[int, int, int]:
    table = TABLES[kind]
    known = ingest_repo.existing_hashes(session, table=table, hashes=plan.hashes)  # type: ignore[arg-type]
    new = ~plan.hashes.isin(known).to_numpy()
    rows = ingest_repo.rows_from_frame(
        plan.frame[new], kind=kind, extra_columns=extras, source=source, row_hashes=plan.hashes[new].tolist()
    )
    inserted = ingest_repo.bulk_insert(session, table=table, rows=rows)
    return inserted, 0, int((~new).sum())


def _store_properties(session: Session, plan: _Plan, extras: list[str], source: str) -> tuple[int, int, int]:
    stored = ingest_repo.existing_properties(session, property_ids=plan.frame["property_id"].tolist())
    rows = ingest_repo.rows_from_frame(
        plan.frame, kind=Kind.PROPERTIES, extra_columns=extras, source=source, row_hashes=plan.hashes.tolist()
    )
    inserts, updates, same = [], [], 0
    for row in rows:
        existing = stored.get(row["property_id"])
        if existing is None:
            inserts.append({**row, "account_id": None})
        elif existing[1] == row["row_hash"]:
            same += 1
        else:
            update = {key: value for key, value in row.items() if key != "created_at"}
            updates.append({**update, "id": existing[0]})
    ingest_repo.bulk_insert(session, table=PropertyRow, rows=inserts)
    ingest_repo.bulk_update(session, table=PropertyRow, rows=updates)
    return len(inserts) + len(updates), len(updates), same


def _store_calendar(session: Session, plan: _Plan, extras: list[str], source: str) -> tuple[int, int, int]:
    """Insert new days, update changed ones (a re-scrape), count unchanged ones: compared in bulk, not row by row."""
    stored = ingest_repo.existing_calendar_days(session, listing_ids=plan.frame["listing_id"].unique().tolist())
    new = plan.frame[["listing_id", "date", "available", "price"]].reset_index(drop=True)
    new["extra_json"] = json_objects(plan.frame, extras)
    merged = new.merge(stored, on=["listing_id", "date"], how="left", suffixes=("", "_old"), validate="one_to_one")
    fresh = merged["id"].isna().to_numpy()
    same_price = (merged["price"] == merged["price_old"]) | (merged["price"].isna() & merged["price_old"].isna())
    same = ~fresh & (merged["available"] == merged["available_old"]).fillna(False).to_numpy() & same_price.to_numpy()
    same &= (merged["extra_json"] == merged["extra_json_old"]).to_numpy()
    changed = ~fresh & ~same
    inserts = ingest_repo.rows_from_frame(
        plan.frame[fresh], kind=Kind.CALENDAR, extra_columns=extras, source=source, row_hashes=None
    )
    updates = [
        {"id": int(pk), **{key: row[key] for key in ("available", "price", "extra", "source", "ingested_at")}}
        for pk, row in zip(
            merged.loc[changed, "id"],
            ingest_repo.rows_from_frame(plan.frame[changed], kind=Kind.CALENDAR, extra_columns=extras, source=source, row_hashes=None),
            strict=True,
        )
    ]
    ingest_repo.bulk_insert(session, table=CalendarDay, rows=inserts)
    ingest_repo.bulk_update(session, table=CalendarDay, rows=updates)
    return len(inserts) + len(updates), len(updates), int(same.sum())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_rejects(rejects: pd.DataFrame, folder: Path, source: Path, sha: str) -> Path:
    """Write the rejects CSV atomically (temp file in the same folder, then os.replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{source.name.split('.')[0]}-{sha[:8]}.rejects.csv"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".rejects-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            rejects.to_csv(stream, index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


# --------------------------------------------------------------------------- command


def parse_pairs(pairs: Sequence[str], *, flag: str) -> dict[str, str]:
    """`["city=Town", "monthly_rent=rent amount (R$)"]` -> a dict; `InvalidInput` on a pair without `=`."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise InvalidInput(f"{flag} {pair!r}: expected CANONICAL=VALUE")
        parsed[name.strip()] = value.strip()
    return parsed


def ingest_command(
    path: str | Path,
    *,
    kind: str | None = None,
    maps: Sequence[str] = (),
    drops: Sequence[str] = (),
    sets: Sequence[str] = (),
    preset: str | None = None,
    settings: Settings,
    session_factory: sessionmaker[Session] | None = None,
) -> tuple[str, int]:
    """What `leaseora ingest` prints and its exit code: 0 ingested, 1 file not ingestible, 2 bad flags.

    A preset supplies kind, mapping, drops and constants; explicit flags are added on top and win.
    Without `session_factory` the settings' database is used (and migrated, so a fresh home works).
    """
    try:
        options = _options(kind=kind, maps=maps, drops=drops, sets=sets, preset=preset)
    except (InvalidInput, ValueError) as exc:
        return f"error: {getattr(exc, 'message', exc)}", 2
    if session_factory is None:
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
        session_factory = make_session_factory(engine)
    try:
        summary = ingest_file(path, settings=settings, session_factory=session_factory, **options)
    except IngestError as exc:
        return f"error: {exc.message}", 1
    return summary.text(), 0


def _kind(value: str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise InvalidInput(f"--kind {value}: expected one of {', '.join(k.value for k in Kind)}") from None


def _options(
    *, kind: str | None, maps: Sequence[str], drops: Sequence[str], sets: Sequence[str], preset: str | None
) -> dict[str, Any]:
    base = get_preset(preset) if preset else None
    mapping = {**(base.mapping if base else {}), **parse_pairs(maps, flag="--map")}
    constants = {**(base.constants if base else {}), **parse_pairs(sets, flag="--set")}
    for name in parse_pairs(maps, flag="--map"):
        constants.pop(name, None)  # an explicit --map replaces a preset's --set of the same column
    chosen = _kind(kind) if kind else base.kind if base else DEFAULT_KIND
    return {
        "kind": chosen,
        "mapping": mapping,
        "drop": tuple(dict.fromkeys([*(base.drop if base else ()), *drops])),
        "constants": constants,
    }


# --------------------------------------------------------------------------- measurement
