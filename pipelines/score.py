"""`leaseora predict`: score a portfolio file with the champion models and write the results."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from insights.config import Settings
from insights.data.canonical import SourceMapping, canonicalise
from insights.data.read import read_table
from insights.data.schema import Kind
from insights.errors import InvalidInput, ModelNotAvailable
from insights.ml import registry
from insights.ml.scoring import OUTPUT_COLUMNS, score
from pipelines.ingest import parse_pairs

#: A portfolio needs only its city; every other listing column is optional (there is no rent to learn from).
PORTFOLIO_REQUIRED = ("city",)


def score_file(
    path: Path, out: Path, *, settings: Settings, maps: list[str], drops: list[str], sets: list[str], level: float | None,
) -> dict[str, Any]:
    """Read `path`, score every row with the champions, write the input columns plus the outputs to `out`."""
    if registry.champion_version(settings.models_dir, "rent") is None:
        raise ModelNotAvailable("no rent model yet: run `leaseora train` first")
    if out.suffix.lower() not in (".csv", ".parquet", ".gz"):
        raise InvalidInput(f"--out {out}: use a .csv, .csv.gz or .parquet file name")
    raw = read_table(path)
    spec = SourceMapping(kind=Kind.LISTINGS, mapping=parse_pairs(maps, flag="--map"), drop=tuple(drops),
                         constants=parse_pairs(sets, flag="--set"), required=PORTFOLIO_REQUIRED)
    canonical = canonicalise(raw.frame, spec, file_name=path.name)
    rent = registry.load_champion(settings.models_dir, "rent")
    occupancy = registry.load_champion(settings.models_dir, "occupancy") if registry.champion_version(settings.models_dir, "occupancy") else None
    scored = score(canonical.frame, rent, occupancy=occupancy, level=level)
    problems = pd.Series({row: "; ".join(reasons) for row, reasons in canonical.problems.items()}, dtype=object)
    if len(problems):  # unparseable cells: the row is still scored without them, and says so
        note = problems.reindex(scored.index)
        scored["error"] = scored["error"].where(scored["error"].notna(), note)
    result = raw.frame.copy()
    for column in OUTPUT_COLUMNS:
        result[column] = scored[column].to_numpy()
    _write_atomically(result, out)
    failed = int(scored["rent_estimate"].isna().sum())
    return {"rows": len(result), "scored": len(result) - failed, "failed": failed}


def _write_atomically(frame: pd.DataFrame, out: Path) -> None:
    """Write to a temp file beside `out`, then rename: a failed write never leaves a half file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=out.suffix, dir=out.parent)
    os.close(handle)
    try:
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if out.suffix.lower() == ".gz" else None)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
