"""Natural-language question -> intent + entities, offline.

    >>> interpret("What is the optimal rent price for a 2-bedroom apartment in Berlin?").to_dict()
    {'intent': 'optimal_rent', 'entities': {'city': 'Berlin', 'country': 'Germany',
     'property_type': 'apartment', 'bedrooms': 2}, 'confidence': ...}

The pipeline, in order (each step masks what it recognised so that later steps and the
classifier see placeholders instead of values):
1. clean the text (NFC, plain quotes, length cap);
2. property ids ("prop_12345");
3. spelling correction of ordinary words ("bedrom" -> "bedroom"), never of place names;
4. places, through the gazetteer (cities, countries, US states); known and corrected words are
   not read as places, and the corrected words around a name give its context;
5. money, size, bedrooms, bathrooms, a rent without currency, furnished, property type;
6. intent: hard rules for hostile or off-domain text, the classifier for the rest, and a rule
   for explicit comparisons of two or more places.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from insights.query import entities as ent
from insights.query.classifier import IntentClassifier, Prediction
from insights.query.gazetteer import CityRecord, Gazetteer, PlaceMatch, default_gazetteer
from insights.query.spelling import Vocabulary
from insights.query.text import clean, forget_words, tokens
from insights.query.training_data import EXTRA_VOCABULARY, TRAINING_SET

log = logging.getLogger(__name__)

#: The intents the interpreter can return.
INTENTS: tuple[str, ...] = (
    "rent_estimate", "optimal_rent", "occupancy_forecast", "market_trend", "compare_markets", "unsupported",
)
UNSUPPORTED = "unsupported"
COMPARE = "compare_markets"
#: Longest question read; the rest is ignored (a question is a sentence or two).
MAX_QUESTION_CHARS = 1000
#: Words of a question looked at by the spelling corrector (bounds the cost of junk input).
MAX_CORRECTED_WORDS = 60
#: Order of the entities in `Interpretation.entities`.
ENTITY_ORDER: tuple[str, ...] = (
    "city", "cities", "country", "property_type", "bedrooms", "bathrooms", "size_sqm",
    "asking_rent", "currency", "furnished", "property_id",
)
#: Confidence reported when a hard rule, not the classifier, decided the intent.
RULE_CONFIDENCE = 0.95

_TRAINING_VALUES = {
    "{city}": " _city_ ", "{city2}": " _city_ ", "{city3}": " _city_ ", "{country}": " _country_ ",
    "{money}": " _money_ ", "{size}": " _size_ ", "{id}": " _id_ ", "{year}": "2025", "{n}": "2",
}
_PLACEHOLDER = re.compile(r"\{[a-z0-9]+\}")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_NOT_WORD = re.compile(r"[^a-z_]+")
_HOSTILE = re.compile(
    r"\b(?:drop|truncate|alter)\s+(?:table|database)\b|\bselect\s+[\w*,\s]+\s+from\s+\w+|\bdelete\s+from\b"
    r"|\binsert\s+into\b|\bupdate\s+\w+\s+set\b|\bunion\s+(?:all\s+)?select\b|;\s*--|'\s*or\s+'?1'?\s*=\s*'?1"
    r"|<\s*script|\brm\s+-rf\b|/etc/passwd|\{\{.*\}\}|\bexec\s*\(|\bsleep\s*\(\s*\d",
    re.IGNORECASE,
)
#: Words that place a question in the rental domain (folded, after spelling correction).
_DOMAIN_WORDS = frozenset(
    """rent rents rental rentals renting rented renter renters let lets letting lease leased leasing
    leases tenant tenants tenancy landlord landlords occupancy occupied unoccupied vacancy vacancies
    vacant booked booking bookings apartment apartments flat flats house houses home homes condo
    condos studio studios room rooms property properties unit units listing listings housing market
    markets price prices pricing priced charge charging overpriced underpriced yield yields
    commercial office offices bedroom bedrooms bed beds bathroom bathrooms sqm furnished unfurnished
    airbnb lodging _id_ _size_ _money_""".split()
)
_COMPARE_MARKERS = frozenset(
    "vs versus compare compared comparing comparison than against difference between which rank or".split()
)


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What a question asks: an intent, its entities (absent ones omitted) and a confidence.

    `entities` is read-only (`cities` a tuple); `to_dict()` gives plain dicts and lists.
    `confidence` is the classifier's probability of the intent, or `RULE_CONFIDENCE` when a
    hard rule decided (hostile or off-domain text, an explicit comparison of places).
    """

    intent: str
    entities: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form: {"intent": ..., "entities": {...}, "confidence": ...}."""
        return {
            "intent": self.intent,
            "entities": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.entities.items()},
            "confidence": round(self.confidence, 4),
        }


@dataclass(frozen=True, slots=True)
class Parsed:
    """Entities of a question and the masked text the classifier reads."""

    entities: dict[str, Any]
    masked: str
    cities: tuple[CityRecord, ...]
    countries: tuple[str, ...]
    place_mentions: int


def _fill_training_template(template: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _TRAINING_VALUES.get(m.group(), " "), template)


class Interpreter:
    """Turns questions into `Interpretation`s; build once (gazetteer + classifier), reuse."""

    def __init__(self, gazetteer: Gazetteer, training_set: Mapping[str, tuple[str, ...]] = TRAINING_SET) -> None:
        self._gazetteer = gazetteer
        self.vocabulary = Vocabulary.from_texts(
            (t for texts in training_set.values() for t in texts), EXTRA_VOCABULARY
        )
        texts, labels = [], []
        for intent, questions in training_set.items():
            for question in questions:
                texts.append(self.training_text(question))
                labels.append(intent)
        self.classifier = IntentClassifier(texts, labels)

    # ----------------------------------------------------------------- parsing
    def training_text(self, template: str) -> str:
        """The masked classifier text of a training template (placeholders filled, no places)."""
        _, _, masked = _mask_values(clean(_fill_training_template(template), MAX_QUESTION_CHARS))
        return _classifier_text(masked)

    def parse(self, text: str) -> Parsed:
        """Entities and masked text of one question."""
        cleaned = clean(text, MAX_QUESTION_CHARS)
        property_id, masked = ent.extract_property_id(cleaned)
        corrections = self._corrections(masked)
        # Corrected first, so that the words around a place read right ("berlin verus paris").
        masked = _apply_corrections(masked, corrections)
        places = self._gazetteer.find_places(masked, _Known(self.vocabulary, corrections))
        masked = _mask_places(masked, places)
        values, kinds, masked = _mask_values(masked)
        cities = _distinct_cities(places)
        countries = tuple(dict.fromkeys(p.country_code for p in places if p.country_code))
        entities = self._place_entities(cities, countries)
        if kinds and "currency" in values:  # "$" in Vancouver is CAD
            values["currency"] = ent.regional_currency(values["currency"], kinds, self._local_currency(cities, countries))
        entities.update(values)
        if property_id:
            entities["property_id"] = property_id
        ordered = {k: entities[k] for k in ENTITY_ORDER if k in entities}
        mentions = sum(1 for p in places if p.cities or p.country_code)
        return Parsed(ordered, _classifier_text(masked), cities, countries, mentions)

    def _corrections(self, text: str) -> dict[str, str]:
        """Misspelt ordinary words -> their correction (never words that are place names)."""
        fixes: dict[str, str] = {}
        for token in tokens(text)[:MAX_CORRECTED_WORDS]:
            word = token.folded
            if word in fixes or word in self.vocabulary or self._gazetteer.knows(word):
                continue
            fixed = self.vocabulary.correct(word)
            if fixed is not None:
                fixes[word] = fixed
        return fixes

    def _local_currency(self, cities: tuple[CityRecord, ...], countries: tuple[str, ...]) -> tuple[str, str] | None:
        """(ISO code, GeoNames name) of the currency of the one country the question is about, if one."""
        codes = {c.country_code for c in cities} if cities else set(countries)
        return self._gazetteer.country_currency(codes.pop()) if len(codes) == 1 else None

    def _place_entities(self, cities: tuple[CityRecord, ...], countries: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if len(cities) == 1:
            out["city"] = cities[0].name
        elif len(cities) > 1:
            out["cities"] = tuple(c.name for c in cities)
        city_countries = {c.country_code for c in cities}
        if len(city_countries) == 1:
            out["country"] = cities[0].country
        elif not cities and len(countries) == 1:
            out["country"] = self._gazetteer.country_name(countries[0])
        return out

    # ----------------------------------------------------------------- intent
    def interpret(self, text: str) -> Interpretation:
        """Intent, entities and confidence of one question; never raises on odd input."""
        if not isinstance(text, str):
            return Interpretation(UNSUPPORTED, MappingProxyType({}), 1.0)
        try:
            parsed = self.parse(text)
            intent, confidence = self._decide(text, parsed)
        except Exception:  # a question must never take a worker down; the log keeps the bug visible
            log.exception("could not interpret question %r", text[:200])
            return Interpretation(UNSUPPORTED, MappingProxyType({}), 0.0)
        return Interpretation(intent, MappingProxyType(dict(parsed.entities)), confidence)

    def _decide(self, text: str, parsed: Parsed) -> tuple[str, float]:
        if _HOSTILE.search(text) or sum(map(str.isalpha, text)) < 2:
            return UNSUPPORTED, RULE_CONFIDENCE
        words = set(parsed.masked.split())
        explicit_comparison = parsed.place_mentions >= 2 and bool(words & _COMPARE_MARKERS)
        if not (words & _DOMAIN_WORDS or _has_property_entity(parsed.entities) or explicit_comparison):
            return UNSUPPORTED, RULE_CONFIDENCE
        prediction = self.classifier.predict(parsed.masked)
        if explicit_comparison and prediction.intent != UNSUPPORTED:
            return COMPARE, max(prediction.probabilities[COMPARE], RULE_CONFIDENCE * prediction.confidence)
        return prediction.intent, prediction.confidence

    def predict(self, text: str) -> Prediction:
        """The classifier's raw view of a question (no rules): for evaluation and debugging."""
        return self.classifier.predict(self.parse(text).masked)


@dataclass(frozen=True, slots=True)
class _Known:
    """Words that are not places by themselves: the vocabulary and this question's typos of it."""

    vocabulary: Vocabulary
    corrections: Mapping[str, str]

    def __contains__(self, word: object) -> bool:
        return word in self.vocabulary or word in self.corrections


def _has_property_entity(entities: Mapping[str, Any]) -> bool:
    return any(k in entities for k in ("property_id", "bedrooms", "bathrooms", "size_sqm", "property_type",
                                       "asking_rent", "furnished"))


def _distinct_cities(places: list[PlaceMatch]) -> tuple[CityRecord, ...]:
    seen: dict[int, CityRecord] = {}
    for place in places:
        if place.cities:
            seen.setdefault(place.cities[0].geonameid, place.cities[0])
    return tuple(seen.values())


def _mask_places(text: str, places: list[PlaceMatch]) -> str:
    for place in sorted(places, key=lambda p: p.start, reverse=True):
        kind = "_city_" if place.cities else "_country_" if place.country_code else "_state_"
        text = f"{text[: place.start]} {kind} {text[place.end :]}"
    return text


def _apply_corrections(text: str, corrections: Mapping[str, str]) -> str:
    if not corrections:
        return text
    out, cursor = [], 0
    for token in tokens(text):
        if token.folded in corrections:
            out.extend((text[cursor : token.start], corrections[token.folded]))
            cursor = token.end
    out.append(text[cursor:])
    return "".join(out)


def _mask_values(text: str) -> tuple[dict[str, Any], tuple[str, ...], str]:
    """Money, size, rooms, rent, currency, furnished and type, in an order that keeps one number
    from being read twice; also the kinds of currency a "$" or "dollars" may stand for (see `Money`)."""
    found: dict[str, Any] = {}
    numeric = _DIGITS.search(text) is not None  # amounts and sizes are written in digits; counts may be words
    money, text = ent.extract_money(text) if numeric else (None, text)
    size, text = ent.extract_size(text) if numeric else (None, text)
    bedrooms, text = ent.extract_bedrooms(text)
    bathrooms, text = ent.extract_bathrooms(text)
    if money is None and numeric:
        money, text = ent.extract_bare_rent(text)
    kind = ent.extract_property_type(text)
    if kind == "studio" and bedrooms is None:
        bedrooms = 0
    furnished = ent.extract_furnished(text)
    if money and money.currency:
        currency, kinds = money.currency, money.kinds
    else:
        currency, kinds = ent.extract_currency_only(text)
    for key, value in (
        ("property_type", kind), ("bedrooms", bedrooms), ("bathrooms", bathrooms), ("size_sqm", size),
        ("asking_rent", ent.whole(money.amount) if money else None), ("currency", currency),
        ("furnished", furnished),
    ):
        if value is not None:
            found[key] = value
    return found, kinds, text


def _classifier_text(masked: str) -> str:
    lowered = _DIGITS.sub(" _num_ ", masked.lower())
    return " ".join(_NOT_WORD.sub(" ", lowered).split())


@cache
def default_interpreter() -> Interpreter:
    """The process-wide interpreter, built on first use (gazetteer load + classifier training)."""
    return Interpreter(default_gazetteer())


#: Interpretations remembered per process, by exact question text (an `Interpretation` is immutable).
INTERPRETATION_CACHE_SIZE = 4096


def interpret(text: str) -> Interpretation:
    """Interpret one landlord question: intent, entities and confidence. Never raises."""
    if not isinstance(text, str):
        return default_interpreter().interpret(text)
    return _interpret_cached(text)


@lru_cache(maxsize=INTERPRETATION_CACHE_SIZE)
def _interpret_cached(text: str) -> Interpretation:
    # Safe to share: the interpreter is fixed for the process and an Interpretation cannot be changed.
    return default_interpreter().interpret(text)


def forget_interpretations() -> None:
    """Empty the interpretation cache and the per-word memos behind it (benchmarks measuring questions,
    and words, the process has not seen)."""
    _interpret_cached.cache_clear()
    forget_words()
    default_interpreter().classifier.forget_words()
