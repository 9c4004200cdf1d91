"""End to end on a real shared data set: Munich rent index 1999 (3,082 flats), one held-out group split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insights.data.load import load_preset
from insights.ml.metrics import city_median_baseline, evaluate, mdape
from insights.ml.rent import RentModel
from insights.ml.splits import split_frame


def test_munich_train_and_predict(shared_data: Path) -> None:
    frame, _ = load_preset("munich", shared_data)
    train, test = split_frame(frame, test_size=0.25, seed=0)
    model = RentModel(seed=0).fit(train)
    result = evaluate(model, test)
    baseline = mdape(test["monthly_rent"].to_numpy(float), city_median_baseline(train, test))
    assert result["rows"] == len(test) > 700
    assert result["mdape"] < 0.8 * baseline  # the city median is ~25% off; the model far less
    assert 0.85 <= result["coverage"] <= 0.95
    assert result["confidence_ece"] < 0.08
    assert "district_encoded" in model.metrics["features"]  # ~300 districts: target-encoded out of fold
    explained = model.explain(test.head(5), top=2)
    assert explained["explanation"].str.contains("EUR").all()
    # The answers' path (rows as mappings, no pandas) gives the same figures on real rows.
    rows = test.head(60)
    got = model.predict_rows(rows.to_dict("records"))
    expected = model.predict(rows)
    for column in expected.columns:
        np.testing.assert_allclose(got[column], expected[column].to_numpy(), rtol=1e-12, equal_nan=True)
