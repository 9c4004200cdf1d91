"""Model input schemas: checking a frame against one, and bringing a frame to one before predicting.

Kinds are the canonical ones ('float', 'int', 'bool', 'str', 'datetime'). A column with only missing
values matches any kind; anything can be read as 'str'; extra columns are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from insights.errors import SchemaMismatch

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


def dtype_fits(dtype: object, kind: str) -> bool:
    """Whether values of `dtype` can stand for `kind` (whatever they hold; an all-missing column of any
    dtype also can, which `check_frame` looks at only when the dtype does not fit)."""
    if kind in ("float", "int", "bool"):
        return ptypes.is_numeric_dtype(dtype) or ptypes.is_bool_dtype(dtype)
    if kind == "datetime":
        return ptypes.is_datetime64_any_dtype(dtype)
    return True  # anything can be read as a string category


def check_frame(frame: pd.DataFrame, schema: Mapping[str, str], *, model: str = "the model") -> None:
    """Raise `SchemaMismatch` naming every column of `schema` that `frame` lacks or types wrongly."""
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
    missing = [column for column in schema if column not in dtypes]
    mistyped = {
        column: f"expected {kind}, got {dtypes[column]}"
        for column, kind in schema.items()
        if column in dtypes and not dtype_fits(dtypes[column], kind) and not frame[column].isna().all()
    }
    if missing or mistyped:
        problems = (["missing columns: " + ", ".join(missing)] if missing else []) + (
            ["mistyped columns: " + ", ".join(f"{c} ({why})" for c, why in mistyped.items())] if mistyped else [])
        raise SchemaMismatch(
            f"input does not match the schema of {model}; " + "; ".join(problems),
            details={"missing": missing, "mistyped": mistyped, "expected": dict(schema)},
        )
