"""Text normalisation shared by the gazetteer and the interpreter.

Everything that compares names goes through `fold`, so "München", "MUNCHEN" and "munchen" meet
on the same key, and `tokens` gives word tokens with their spans in the original text so that
callers can look at capitalisation and mask what they recognised.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

#: Letters that NFKD does not decompose into a base letter plus a mark.
_SPECIAL_LETTERS = str.maketrans(
    {
        "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
        "Þ": "Th", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ı": "i", "ħ": "h", "ß": "ss",
    }
)
#: German umlauts are often typed as two letters ("Muenchen", "Koeln", "Duesseldorf").
_UMLAUT_EXPANSION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"(?<![\w])[^\W\d_]+(?![\w])")
_APOSTROPHE_S = re.compile(r"(?<=[^\W\d_])['’]s\b", re.IGNORECASE)
#: Latin letters (basic, supplement, extended A/B, additional), combining marks and modifiers.
_LATIN_ONLY = re.compile(r"^[\x00-\u024f\u02b0-\u036f\u1e00-\u1eff\u2018\u2019]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FANCY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


def _accent_table() -> dict[int, str]:
    """Precomputed accent stripping for the Latin blocks (str.translate is C-fast; building the
    gazetteer strips accents from ~200,000 names)."""
    table: dict[int, str] = {}
    for block in (range(0xC0, 0x250), range(0x1E00, 0x1F00)):
        for code in block:
            plain = unicodedata.normalize("NFKD", chr(code).translate(_SPECIAL_LETTERS))
            plain = _COMBINING.sub("", plain)
            if plain != chr(code) and plain.isascii():
                table[code] = plain
    return table


_ACCENT_TABLE = _accent_table()


class Token(NamedTuple):
    """A word of the original text: its text, folded form and character span (a tuple: cheap to make)."""

    text: str
    folded: str
    start: int
    end: int


def strip_accents(text: str) -> str:
    """Drop diacritics ("Kraków" -> "Krakow", "Łódź" -> "Lodz"); case is kept."""
    if text.isascii():
        return text
    text = text.translate(_ACCENT_TABLE)
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS)))


def fold(text: str) -> str:
    """The comparison key of a name: casefolded, accent-free, punctuation to single spaces."""
    plain = strip_accents(text.casefold())
    return _NON_ALNUM.sub(" ", plain.replace("'", "")).strip()


def fold_variants(name: str) -> set[str]:
    """`fold(name)` plus its umlauts-expanded spelling when the name has umlauts."""
    variants = {fold(name)}
    if not name.isascii():
        expanded = name.translate(_UMLAUT_EXPANSION)
        if expanded != name:
            variants.add(fold(expanded))
    variants.discard("")
    return variants


def clean(text: str, max_chars: int) -> str:
    """Normalise a question before parsing: NFC, plain quotes/dashes, no control characters.

    Possessive "'s" is dropped ("Berlin's rents") so it never glues onto a city name.
    """
    text = unicodedata.normalize("NFC", text[:max_chars]).translate(_FANCY)
    text = _CONTROL.sub(" ", text)
    return _APOSTROPHE_S.sub("", text)


#: `fold` of single words, remembered: questions reuse a small vocabulary.
_fold_word = lru_cache(maxsize=2**15)(fold)


def forget_words() -> None:
    """Empty the memos of folded words and tokenised texts."""
    _fold_word.cache_clear()
    tokens.cache_clear()


@lru_cache(maxsize=256)  # a question is tokenised by several steps of its interpretation
def tokens(text: str) -> tuple[Token, ...]:
    """Letter-only word tokens of `text` (digits and underscores split or exclude words)."""
    return tuple(Token(m.group(), _fold_word(m.group()), m.start(), m.end()) for m in _WORD.finditer(text))


def is_latin(name: str) -> bool:
    """True when every letter of `name` is Latin script (so it can appear in an English question)."""
    return _LATIN_ONLY.match(name) is not None
