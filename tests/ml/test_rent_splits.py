"""Group splits keep every listing on one side; rows without ids are their own group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insights.ml.splits import group_folds, group_labels, group_split, split_frame


def _frame() -> pd.DataFrame:
    listing = ["a", "a", "b", None, None, "c", "c", "c", None, "d"] * 30
    prop = ["p1", "p1", "p2", "p9", None, "p3", "p3", "p3", None, None] * 30
    return pd.DataFrame({"listing_id": pd.array(listing, dtype="string"), "property_id": pd.array(prop, dtype="string")})


def test_labels_use_listing_then_property_then_row() -> None:
    frame = _frame().iloc[:10]
    labels = group_labels(frame)
    assert labels[0] == labels[1]  # same listing
    assert labels[5] == labels[6] == labels[7]
    assert labels[3] != labels[4] != labels[8]  # no listing id: property id, else a group of one
    assert len(set(labels[[3, 4, 8]])) == 3


def test_split_and_folds_never_split_a_listing() -> None:
    frame = pd.DataFrame({"listing_id": pd.array([f"L{i % 97}" for i in range(2000)], dtype="string")})
    groups = group_labels(frame)
    train, test = group_split(groups, test_size=0.2, seed=3)
    assert not set(groups[train]) & set(groups[test])
    assert 0.1 < len(test) / len(frame) < 0.3
    folds = group_folds(groups, n_splits=5, seed=3)
    for group in np.unique(groups):
        assert len(set(folds[groups == group])) == 1
    assert set(folds) == set(range(5))


def test_split_frame_keeps_listings_together() -> None:
    frame = _frame()
    train, test = split_frame(frame, test_size=0.3, seed=1)
    assert len(train) + len(test) == len(frame)
    assert not set(train["listing_id"].dropna()) & set(test["listing_id"].dropna())
