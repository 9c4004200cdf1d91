"""Group-aware splits: every row of one listing stays on one side of every split.

The same flat recurs across monthly snapshots (Poland); putting one snapshot in training and another
in the evaluation, calibration or early-stopping set would leak its rent. Rows are grouped by
`listing_id`, else `property_id`; a row with neither is a group of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_COLUMNS: tuple[str, ...] = ("listing_id", "property_id")


def group_labels(frame: pd.DataFrame) -> np.ndarray:
    """One integer group label per row: same `listing_id` (else `property_id`) -> same label.

    Rows without any id get a unique label each, so they never share a side with anything by accident.
    """
    n = len(frame)
    keys = pd.Series([pd.NA] * n, index=frame.index, dtype="string")
    for column in GROUP_COLUMNS:
        if column in frame.columns:
            values = frame[column].astype("string")
            # Prefix with the column name so a listing id never collides with a property id.
            keys = keys.fillna(column + ":" + values)
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    missing = codes < 0
    if missing.any():
        start = codes.max(initial=-1) + 1
        codes[missing] = np.arange(start, start + int(missing.sum()))
    return codes


def group_split(groups: np.ndarray, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) with about `test_size` of the groups' rows on the test side."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    is_test_group = rng.random(len(unique)) < test_size
    is_test = np.isin(groups, unique[is_test_group])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def group_folds(groups: np.ndarray, *, n_splits: int, seed: int) -> np.ndarray:
    """Fold number (0 .. n_splits-1) per row; all rows of a group share a fold.

    Groups are dealt round-robin in random order, so folds hold nearly equal numbers of groups.
    """
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}")
    unique, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    fold_of_group[rng.permutation(len(unique))] = np.arange(len(unique)) % n_splits
    return fold_of_group[inverse]


def split_frame(frame: pd.DataFrame, *, test_size: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a listing frame into (train, test) by listing group, for evaluation."""
    train_idx, test_idx = group_split(group_labels(frame), test_size=test_size, seed=seed)
    return frame.iloc[train_idx].reset_index(drop=True), frame.iloc[test_idx].reset_index(drop=True)
