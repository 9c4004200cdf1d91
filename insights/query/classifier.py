"""Intent classifier: char and word n-gram TF-IDF with logistic regression.

It reads the *masked* question (places, amounts, sizes and ids replaced by placeholders), so it
learns how questions are phrased rather than which cities they name. It trains on the
hand-written `training_data` in a fraction of a second, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

#: Inverse regularisation strength; high because the training set is small and clean.
C = 20.0


@dataclass(frozen=True, slots=True)
class Prediction:
    """The most likely intent, its probability, and every intent's probability."""

    intent: str
    confidence: float
    probabilities: dict[str, float]


def build_pipeline() -> Pipeline:
    """The untrained model: character n-grams survive typos, word n-grams carry phrasing."""
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"[a-z_]+")),
        ]
    )
    model = LogisticRegression(C=C, max_iter=2000)
    return Pipeline([("features", features), ("model", model)])


class IntentClassifier:
    """A trained intent model over masked question text."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        # One BLAS thread: the problem is tiny, and competing threads on a busy machine made
        # L-BFGS ten times slower (seconds instead of a fraction of one).
        with threadpool_limits(limits=1):
            self._pipeline = build_pipeline().fit(list(texts), list(labels))
        self._classes: list[str] = [str(c) for c in self._pipeline.classes_]

    @property
    def intents(self) -> list[str]:
        """The intents the model can answer."""
        return list(self._classes)

    def predict(self, masked_text: str) -> Prediction:
        """Probabilities of each intent for one masked question."""
        probs = self._pipeline.predict_proba([masked_text])[0]
        best = int(np.argmax(probs))
        return Prediction(
            intent=self._classes[best],
            confidence=float(probs[best]),
            probabilities={c: float(p) for c, p in zip(self._classes, probs)},
        )
