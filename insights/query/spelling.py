"""The interpreter's vocabulary and a small spelling corrector over it.

The vocabulary is every word of the training questions plus a few domain words and English stop
words. It serves twice: misspelt domain words are corrected before the regexes run ("2 bedrom
apartmnt" -> "2 bedroom apartment"), and known or corrected words are never taken for places.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from insights.query.text import fold

_PLACEHOLDER = re.compile(r"\{[a-z0-9]+\}")
_WORD = re.compile(r"[a-z]+")
#: Words shorter than this are never corrected: too many real words are one edit apart.
MIN_CORRECTABLE = 4
#: Corrections remembered per process (a worker sees the same typos again and again).
MAX_MEMO = 100_000


def max_edits(word: str) -> int:
    """Edits allowed when correcting `word`: none below four letters, 1 up to 7, else 2."""
    if len(word) < MIN_CORRECTABLE:
        return 0
    return 1 if len(word) <= 7 else 2


class Vocabulary:
    """Known words with their frequency, and a memoised corrector."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self._words = sorted(counts)
        self._memo: dict[str, str | None] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], extra: Iterable[str] = ()) -> Vocabulary:
        """Words of `texts` (placeholders removed), `extra` words and English stop words."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(fold(_PLACEHOLDER.sub(" ", text))))
        counts.update(fold(word) for word in extra)
        counts.update(ENGLISH_STOP_WORDS)
        return cls(counts)

    def __contains__(self, word: object) -> bool:
        return word in self.counts

    def correct(self, word: str) -> str | None:
        """The known word `word` is a misspelling of, or None (known, short or too far)."""
        if word in self._memo:
            return self._memo[word]
        result = None if word in self.counts else self._closest(word)
        if len(self._memo) < MAX_MEMO:
            self._memo[word] = result
        return result

    def _closest(self, word: str) -> str | None:
        limit = max_edits(word)
        if limit == 0 or not word.isalpha():
            return None
        hits = process.extract(word, self._words, scorer=OSA.distance, score_cutoff=limit, limit=None)
        if len(word) < 5:
            # A four-letter word one letter off a known word is often another real word ("root"
            # is not "room"); only a dropped or swapped letter is taken for a typo ("rnts", "flta").
            hits = [h for h in hits if len(h[0]) == len(word) + 1 or sorted(h[0]) == sorted(word)]
        if not hits:
            return None
        # Closest first; then a word starting like the typo; then the more frequent word.
        best = min(hits, key=lambda h: (h[1], h[0][0] != word[0], -self.counts[h[0]]))
        return best[0]
