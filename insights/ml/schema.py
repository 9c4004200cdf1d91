"""Bringing a frame to a model's input schema before predicting."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

_EMPTY = {
    "float": lambda n: np.full(n, np.nan),
    "int": lambda n: np.full(n, np.nan),
    "bool": lambda n: pd.array([pd.NA] * n, dtype="boolean"),
    "str": lambda n: pd.array([pd.NA] * n, dtype="string"),
    "datetime": lambda n: pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]").to_numpy(),
}


def conform(frame: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    """`frame` with every schema column it lacks added as all-missing (of the schema's kind).

    For optional features only: a property with no `balcony` column is scored as 'unknown balcony',
    which LightGBM handles. Present columns are left as they are, so a mistyped column still fails the
    model's schema check.
    """
    missing = [column for column in schema if column not in frame.columns]
    if not missing:
        return frame
    n = len(frame)
    added = pd.DataFrame({c: _EMPTY.get(schema[c], _EMPTY["str"])(n) for c in missing}, index=frame.index)
    return pd.concat([frame, added], axis=1)
