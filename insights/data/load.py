"""Read a source file straight into a clean canonical frame, without a database.

Model training, notebooks and benchmarks use `load_canonical` / `load_preset` to work on the
shared real data sets; `pipelines.ingest` runs the same read -> canonicalise -> validate steps and
then stores the rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from insights.data.canonical import Canonical, SourceMapping, canonicalise, row_hashes
from insights.data.presets import PRESETS, Preset
from insights.data.read import RawTable, read_table
from insights.data.schema import COLUMNS, Kind
from insights.data.validate import validate
from insights.errors import IngestError


@dataclass
class Prepared:
    """One file read, mapped and validated: everything ingest needs before touching the database."""

    raw: RawTable
    canonical: Canonical
    clean: pd.DataFrame
    rejects: pd.DataFrame


def prepare(path: str | Path, spec: SourceMapping) -> Prepared:
    """Read `path`, map it with `spec` and split it into clean and rejected rows."""
    raw = read_table(path)
    canonical = canonicalise(raw.frame, spec, file_name=Path(path).name)
    clean, rejects = validate(canonical, raw.frame, bad_lines=raw.bad_lines)
    return Prepared(raw=raw, canonical=canonical, clean=clean, rejects=rejects)


def load_canonical(
    path: str | Path,
    *,
    kind: Kind | str,
    mapping: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    constants: Mapping[str, str] | None = None,
    dedupe: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load a source file as `(clean, rejects)` canonical frames, the way `leaseora ingest` would store it.

    `clean` has every canonical column of `kind` (typed: float64, boolean, str, datetime64 naive
    UTC) followed by the extra feature columns (`clean.attrs["extra_columns"]` lists them); its
    index is the source row number (the header is row 1). With `dedupe`, rows whose canonical content
    repeats an earlier row are dropped, as ingest does (`clean.attrs["duplicates"]` counts them).
    `rejects` has `source_row`, `reason` and the source columns as read.
    """
    spec = SourceMapping(
        kind=Kind(kind), mapping=dict(mapping or {}), drop=tuple(drop), constants=dict(constants or {})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an encoding fallback is reported by ingest, not by a loader
        prepared = prepare(path, spec)
    clean = prepared.clean
    duplicates = 0
    if dedupe and not clean.empty:
        repeated = row_hashes(clean).duplicated()
        duplicates = int(repeated.sum())
        clean = clean[~repeated.to_numpy()]
    clean.attrs["extra_columns"] = list(prepared.canonical.extra_columns)
    clean.attrs["duplicates"] = duplicates
    return clean, prepared.rejects


def load_preset(name: str, data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`load_canonical` of a shared data set by its preset name (`poland`, `brazil`, `munich`, ...)."""
    preset = get_preset(name)
    return load_canonical(
        Path(data_dir) / preset.filename,
        kind=preset.kind,
        mapping=preset.mapping,
        drop=preset.drop,
        constants=preset.constants,
    )


def get_preset(name: str) -> Preset:
    """The preset called `name`; `IngestError` listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise IngestError(f"unknown preset '{name}'; known presets: {', '.join(sorted(PRESETS))}") from None


def extra_columns(frame: pd.DataFrame, kind: Kind | str) -> list[str]:
    """The extra feature columns of a canonical frame: every column that is not canonical for `kind`."""
    return [column for column in frame.columns if column not in COLUMNS[Kind(kind)]]
