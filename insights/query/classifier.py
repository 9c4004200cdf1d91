"""Intent classifier: char and word n-gram TF-IDF with logistic regression.

It reads the *masked* question (places, amounts, sizes and ids replaced by placeholders), so it
learns how questions are phrased rather than which cities they name. It trains on the
hand-written `training_data` in a fraction of a second, on first use.
"""

from __future__ import annotations

from collections import Counter
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


#: Words whose character n-gram columns a vectorizer remembers (a question's words mostly recur).
WORD_MEMO_SIZE = 50_000


class _Vectorizer:
    """Inference-only copy of a fitted TfidfVectorizer: analyzer, vocabulary, idf, offset.

    Character n-grams within word boundaries (`char_wb`) never span two words, so the columns of a
    text are those of its whitespace-separated words: each word is analysed once and remembered.
    """

    def __init__(self, fitted: TfidfVectorizer, offset: int) -> None:
        self.analyze = fitted.build_analyzer()
        self.vocabulary: dict[str, int] = {k: int(v) + offset for k, v in fitted.vocabulary_.items()}  # union's columns
        self.idf = fitted.idf_
        self.offset = offset
        self._by_word: dict[str, list[int]] | None = {} if fitted.analyzer == "char_wb" else None

    def forget_words(self) -> None:
        """Empty the per-word memo."""
        if self._by_word is not None:
            self._by_word.clear()

    def columns(self, text: str) -> list[int]:
        """The union's column of each n-gram of `text` in the vocabulary (repeated as often as it occurs)."""
        vocabulary = self.vocabulary
        if self._by_word is None:
            return [c for gram in self.analyze(text) if (c := vocabulary.get(gram)) is not None]
        columns: list[int] = []
        for word in text.split():
            known = self._by_word.get(word)
            if known is None:
                known = [c for gram in self.analyze(word) if (c := vocabulary.get(gram)) is not None]
                if len(self._by_word) >= WORD_MEMO_SIZE:
                    self._by_word.clear()
                self._by_word[word] = known
            columns += known
        return columns


class IntentClassifier:
    """A trained intent model over masked question text.

    Training uses the scikit-learn pipeline; prediction recomputes the same features and
    softmax directly from the fitted vocabularies and weights, because the generic
    transform/predict_proba path costs milliseconds per single question in input checks.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        # One BLAS thread: the problem is tiny, and competing threads on a busy machine made
        # L-BFGS ten times slower (seconds instead of a fraction of one).
        with threadpool_limits(limits=1):
            self._pipeline = build_pipeline().fit(list(texts), list(labels))
        self._classes: list[str] = [str(c) for c in self._pipeline.classes_]
        self._vectorizers: list[_Vectorizer] = []
        offset = 0
        for _, fitted in self._pipeline.named_steps["features"].transformer_list:
            self._vectorizers.append(_Vectorizer(fitted, offset))
            offset += len(fitted.vocabulary_)
        model: LogisticRegression = self._pipeline.named_steps["model"]
        self._coef_columns = np.ascontiguousarray(model.coef_.T)  # (features, classes)
        self._intercept = model.intercept_.copy()
        self._idf = np.concatenate([v.idf for v in self._vectorizers])
        self._block_starts = np.array([v.offset for v in self._vectorizers])  # where each vectorizer's columns start

    def forget_words(self) -> None:
        """Empty the vectorizers' per-word memos."""
        for vectorizer in self._vectorizers:
            vectorizer.forget_words()

    @property
    def intents(self) -> list[str]:
        """The intents the model can answer."""
        return list(self._classes)

    def predict(self, masked_text: str) -> Prediction:
        """Probabilities of each intent for one masked question."""
        probs = self._probabilities(masked_text)
        best = int(np.argmax(probs))
        return Prediction(
            intent=self._classes[best],
            confidence=float(probs[best]),
            probabilities={c: float(p) for c, p in zip(self._classes, probs, strict=True)},
        )

    def predict_reference(self, masked_text: str) -> np.ndarray:
        """Probabilities through scikit-learn's own predict_proba (to check the fast path)."""
        return self._pipeline.predict_proba([masked_text])[0]

    def _probabilities(self, masked_text: str) -> np.ndarray:
        """Softmax of the linear scores of the question's tf-idf features: sublinear term counts times
        idf, l2-normalised within each vectorizer's block (as the fitted FeatureUnion does)."""
        scores = self._intercept.copy()
        found: list[int] = []
        for vectorizer in self._vectorizers:
            found += vectorizer.columns(masked_text)
        counts = Counter(found)
        if counts:
            columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * self._idf[columns]
            block = np.searchsorted(self._block_starts, columns, side="right") - 1
            norms = np.sqrt(np.bincount(block, weights=weights * weights, minlength=len(self._block_starts)))
            scores += (weights / norms[block]) @ self._coef_columns[columns]
        scores -= scores.max()
        exp = np.exp(scores)
        return exp / exp.sum()
