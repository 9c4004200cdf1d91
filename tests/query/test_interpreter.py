"""The interpreter: entities of every kind, intents under paraphrase, accuracy, hostile input."""

from __future__ import annotations

import dataclasses
import json
import random
import string
import time
from pathlib import Path

import numpy as np
import pytest

from insights.query import INTENTS, Interpretation, interpret
from insights.query.evaluation import add_typos, load_examples, score, with_typos
from insights.query.interpreter import default_interpreter
from insights.query.training_data import TRAINING_SET

HERE = Path(__file__).parent
EVAL_SET = HERE / "eval_questions.jsonl"
HOLDOUT_SET = HERE / "holdout_questions.jsonl"
REVIEW_SET = HERE / "review_questions.jsonl"


def entities(text: str) -> dict:
    return interpret(text).to_dict()["entities"]


# ----------------------------------------------------------------------------- output shape
def test_issue_example() -> None:
    result = interpret("What is the optimal rent price for a 2-bedroom apartment in Berlin?")
    assert result.intent == "optimal_rent"
    assert result.entities == {
        "city": "Berlin", "country": "Germany", "property_type": "apartment", "bedrooms": 2,
    }
    assert 0.5 < result.confidence <= 1.0


def test_interpretation_is_frozen_and_serialisable() -> None:
    result = interpret("Berlin vs Hamburg")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.intent = "x"  # type: ignore[misc]
    as_dict = result.to_dict()
    assert set(as_dict) == {"intent", "entities", "confidence"}
    assert as_dict["entities"]["cities"] == ["Berlin", "Hamburg"]
    json.dumps(as_dict)
    assert isinstance(result, Interpretation)


def test_entities_are_read_only() -> None:
    result = interpret("compare Berlin and Munich")
    with pytest.raises(TypeError):
        result.entities["city"] = "Paris"  # type: ignore[index]
    assert result.entities["cities"] == ("Berlin", "Munich")


def test_absent_entities_are_omitted() -> None:
    assert entities("is rent going up?") == {}


# ----------------------------------------------------------------------------- entities
@pytest.mark.parametrize(
    ("text", "bedrooms"),
    [
        ("a 2-bed flat in Berlin", 2), ("a two-bedroom flat", 2), ("2BR in Austin", 2), ("2BHK flat", 2),
        ("2 bedrooms in Hamburg", 2), ("one bedroom apartment", 1), ("3 bed house", 3), ("a 4 bdrm house", 4),
        ("studio in Lisbon", 0), ("a T3 in Porto", 3), ("bedrooms: 5", 5), ("a 1bd apartment", 1),
    ],
)
def test_bedrooms(text: str, bedrooms: int) -> None:
    assert entities(text)["bedrooms"] == bedrooms


@pytest.mark.parametrize(
    ("text", "bathrooms"), [("2 bath house", 2), ("1.5 baths", 1.5), ("two bathrooms", 2), ("3br 2ba", 2)]
)
def test_bathrooms(text: str, bathrooms: float) -> None:
    assert entities(f"rent for a {text}")["bathrooms"] == bathrooms


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("80 m²", 80.0), ("80m2", 80.0), ("80 sqm", 80.0), ("80 square metres", 80.0),
        ("80 square meters", 80.0), ("80-sq-m", 80.0), ("1,000 sq ft", 92.9), ("900 sqft", 83.6),
        ("650 square feet", 60.4), ("1 200 sq. ft.", 111.5),
    ],
)
def test_size_in_square_metres(text: str, size: float) -> None:
    assert entities(f"rent for a {text} flat")["size_sqm"] == pytest.approx(size)


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("€1,200", 1200, "EUR"), ("1.200,50 €", 1200.5, "EUR"), ("1200 euros", 1200, "EUR"),
        ("EUR 950", 950, "EUR"), ("$2,500", 2500, "USD"), ("2500 dollars", 2500, "USD"),
        ("USD 1.5k", 1500, "USD"), ("3.500 zł", 3500, "PLN"), ("PLN 4 200", 4200, "PLN"),
        ("2000 złoty", 2000, "PLN"), ("R$ 2.800", 2800, "BRL"), ("BRL 3000", 3000, "BRL"),
        ("£1,100", 1100, "GBP"), ("GBP 900", 900, "GBP"), ("2k euros", 2000, "EUR"),
        ("$1.5k", 1500, "USD"), ("2,500.00 USD", 2500, "USD"),
    ],
)
def test_asking_rent_and_currency(text: str, amount: float, currency: str) -> None:
    found = entities(f"is {text} a good rent for my flat in Berlin?")
    assert found["asking_rent"] == pytest.approx(amount)
    assert found["currency"] == currency


@pytest.mark.parametrize(
    ("text", "amount"),
    [("should I list it at 1.5k", 1500), ("rent it for 1200 per month", 1200), ("charge 950 a month", 950),
     ("is 2k a month ok", 2000)],
)
def test_asking_rent_without_currency(text: str, amount: float) -> None:
    found = entities(text)
    assert found["asking_rent"] == amount
    assert "currency" not in found


def test_years_and_counts_are_not_rents() -> None:
    assert "asking_rent" not in entities("rent forecast for 2026 in Berlin")
    assert "asking_rent" not in entities("occupancy for the next 3 months")


def test_currency_without_amount() -> None:
    assert entities("average rent in Warsaw in euros")["currency"] == "EUR"


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("is $2,400 fair for my 1 bed condo in Vancouver", 2400, "CAD"),  # a dollar sign in Canada
        ("can I get 3000 dollars for a house in Melbourne", 3000, "AUD"),
        ("$18,000 for a 2 bed in Mexico City?", 18000, "MXN"),  # the peso's sign is "$" too
        ("i want 18000 pesos for my flat in Ciudad de Mexico", 18000, "MXN"),
        ("2,500,000 pesos for a flat in Bogotá", 2500000, "COP"),
        ("1200 pounds for a flat in Manchester", 1200, "GBP"),
        ("US$ 2000 for a 2 bed in Toronto", 2000, "CAD"),
        ("is $2,000 ok for a 2 bed in Berlin", 2000, "USD"),  # no dollar in Germany: stays USD (flagged later)
        ("C$ 2000 for a 2 bed in Chicago", 2000, "CAD"),  # a named currency is never reinterpreted
        ("rent for a 2 bed in Toronto or Seattle at $2000", 2000, "USD"),  # two countries: no single local currency
        ("convert 100 dollars to euros", 100, "USD"),  # no place
    ],
)
def test_a_dollar_or_peso_means_the_local_one(text: str, amount: float, currency: str) -> None:
    found = entities(text)
    assert (found["asking_rent"], found["currency"]) == (amount, currency)


def test_a_currency_kind_without_amount_means_the_local_one() -> None:
    assert entities("average rent in Sydney in dollars")["currency"] == "AUD"
    assert entities("average rent in Paris in dollars")["currency"] == "USD"


@pytest.mark.parametrize(
    ("text", "furnished"),
    [("a furnished flat", True), ("fully furnished studio", True), ("an unfurnished flat", False),
     ("not furnished", False), ("a flat that is not furnished", False)],
)
def test_furnished(text: str, furnished: bool) -> None:
    assert entities(f"rent for {text} in Berlin")["furnished"] is furnished


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a flat", "apartment"), ("an apartment", "apartment"), ("a house", "house"),
        ("a townhouse", "house"), ("a condo", "condo"), ("a studio apartment", "studio"),
        ("a room in a shared flat", "room"), ("office space", "commercial"), ("a retail shop", "commercial"),
        ("a 3-room flat", "apartment"), ("a house with a big living room", "house"),
        ("a semi-detached", "house"), ("a 3 bed terraced", "house"), ("a maisonette", "apartment"),
    ],
)
def test_property_type(text: str, kind: str) -> None:
    assert entities(f"what rent for {text} in Hamburg")["property_type"] == kind


@pytest.mark.parametrize(
    ("text", "property_id"),
    [("prop_12345", "prop_12345"), ("PROP_00012", "PROP_00012"), ("prop-77", "prop-77"),
     ("unit_4b", "unit_4b"), ("property #4411", "4411"), ("property ID 7781", "7781"),
     ("listing_90210", "listing_90210")],
)
def test_property_id(text: str, property_id: str) -> None:
    assert entities(f"estimate the rent for {text}")["property_id"] == property_id


def test_city_country_and_comparison_entities() -> None:
    assert entities("rent in Warszawa") == {"city": "Warsaw", "country": "Poland"}
    assert entities("rent in Poland") == {"country": "Poland"}
    assert entities("Berlin vs Warsaw") == {"cities": ["Berlin", "Warsaw"]}
    assert entities("compare Kraków, Cracow and Wrocław") == {"cities": ["Kraków", "Wrocław"], "country": "Poland"}


# ----------------------------------------------------------------------------- intents
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("whats the optimal rent for a 2 bedrom apartmnt in berlin", "optimal_rent"),
        ("how much should I charge for my flat in Hamburg?", "optimal_rent"),
        ("will my 3 bed house in Austin rent quickly at $2,500?", "occupancy_forecast"),
        ("is Warsaw rent going up?", "market_trend"),
        ("compare Berlin and Munich rents", "compare_markets"),
        ("Berlin vs Hamburg", "compare_markets"),
        ("what does a 2 bed flat in Lyon rent for", "rent_estimate"),
        ("what's the weather in Berlin", "unsupported"),
        ("tell me a joke", "unsupported"),
        ("delete all data", "unsupported"),
        ("DROP TABLE listings; --", "unsupported"),
        ("' OR '1'='1", "unsupported"),
        ("", "unsupported"),
        ("?", "unsupported"),
    ],
)
def test_intents_survive_paraphrase_and_typos(text: str, intent: str) -> None:
    assert interpret(text).intent == intent


@pytest.mark.parametrize(
    "text",
    ["am I allowed to evict my tenant in Hamburg", "legal limit on rent increases in Munich",
     "what notice period applies when I raise the rent", "can a landlord keep the deposit for cleaning"],
)
def test_legal_questions_about_rent_are_unsupported(text: str) -> None:
    """Rent words alone do not make a pricing question: the law of letting is not something this answers."""
    assert interpret(text).intent == "unsupported"


def test_every_intent_is_reachable_and_known() -> None:
    assert set(TRAINING_SET) == set(INTENTS)


# ----------------------------------------------------------------------------- accuracy
def test_eval_set_is_large_varied_and_disjoint_from_training() -> None:
    examples = load_examples(EVAL_SET)
    assert len(examples) >= 200
    assert {e.intent for e in examples} == set(INTENTS)
    interpreter = default_interpreter()
    training = {interpreter.training_text(t) for texts in TRAINING_SET.values() for t in texts}
    # Compared after masking, so "Berlin vs Hamburg" and "{city} vs {city2}" count as the same
    # question; text with no words at all ("", "?!") is left to the rules and not compared.
    held_out = examples + load_examples(HOLDOUT_SET)
    masked = [(e.query, interpreter.parse(e.query).masked) for e in held_out]
    overlapping = [query for query, text in masked if text and text in training]
    assert overlapping == []


def test_eval_set_accuracy() -> None:
    report = score(load_examples(EVAL_SET), interpret)
    failures = "\n".join(f"{f['query']!r}: {f['intent']} {f['entities']}" for f in report.failures)
    assert report.intent_accuracy >= 0.95, failures
    assert report.entity_accuracy >= 0.95, failures


def test_holdout_set_accuracy() -> None:
    """A second set, written after the interpreter was tuned on the first: it has to generalise."""
    report = score(load_examples(HOLDOUT_SET), interpret)
    assert report.intent_accuracy >= 0.9
    assert report.entity_accuracy >= 0.9


def test_review_set_accuracy() -> None:
    """A third set: 120 questions written by someone else for a review, after the interpreter was built.
    Its failures pointed at whole kinds of wording that were then fixed (with training questions of
    other words), so it is a regression check now, no longer a holdout."""
    report = score(load_examples(REVIEW_SET), interpret)
    failures = "\n".join(f"{f['query']!r}: {f['intent']} {f['entities']}" for f in report.failures)
    assert report.intent_accuracy >= 0.95, failures
    assert report.entity_accuracy >= 0.95, failures


def test_eval_set_with_random_typos() -> None:
    """Typos in two words per question (cities included) cost little intent accuracy."""
    report = score(with_typos(load_examples(EVAL_SET), seed=1), interpret)
    assert report.intent_accuracy >= 0.9
    assert report.entity_accuracy >= 0.8


def test_add_typos_changes_words_but_not_labels() -> None:
    rng = random.Random(3)
    noisy = add_typos("What is the optimal rent for my apartment in Berlin", rng, words=2)
    assert noisy.lower() != "what is the optimal rent for my apartment in berlin"


def test_fast_classifier_path_matches_scikit_learn() -> None:
    interpreter = default_interpreter()
    texts = [interpreter.parse(example.query).masked for example in load_examples(EVAL_SET)]
    texts += ["  rent\tin  ÜBERLINGEN \n now ", "İstanbul kira 2+1 daire?", "", "   ", "ß straße STRASSE"]
    for _ in range(2):  # the second time, every word's n-grams come from the vectorizer's memo
        for masked in texts:
            fast = interpreter.classifier.predict(masked).probabilities
            reference = interpreter.classifier.predict_reference(masked)
            assert np.allclose([fast[c] for c in interpreter.classifier.intents], reference), masked


def test_latency_is_well_under_five_ms() -> None:
    queries = [e.query for e in load_examples(EVAL_SET)]
    for query in queries:
        interpret(query)
    timings = []
    for query in queries:
        start = time.perf_counter()
        interpret(query)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.005


# ----------------------------------------------------------------------------- hostile input
def _hostile_inputs() -> list[object]:
    rng = random.Random(7)
    return [
        "".join(rng.choice(string.printable) for _ in range(2000)),
        " ".join("".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(2, 9))) for _ in range(400)),
        "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(2000)),
        "🏠💶📈🤯" * 500,
        "'; DROP TABLE users; --" * 80,
        "SELECT * FROM leases WHERE 1=1; DELETE FROM tenants;",
        "\x00\x01\x02 rent \x7f",
        "كم الإيجار في برلين؟",
        "柏林的房租是多少？",
        "1" * 2000,
        "$" * 1000 + "1," * 500,
        "€€€ 1.2.3.4,5,6 k k k m² m² sqft",
        "prop_" * 400,
        "Z̴̡̛a̸̧͝l̵̢̛g̷̨͠o̶̧͘" * 100,
        "in in in in Nice Nice Nice vs vs vs" * 50,
        "\n\t\r" * 300,
        "ＢＥＲＬＩＮ ｒｅｎｔ",
        None,
        12345,
    ]


@pytest.mark.parametrize("text", _hostile_inputs(), ids=lambda t: repr(t)[:30])
def test_hostile_input_never_raises(text: object) -> None:
    start = time.perf_counter()
    result = interpret(text)  # type: ignore[arg-type]
    assert result.intent in INTENTS
    assert 0.0 <= result.confidence <= 1.0
    json.dumps(result.to_dict())
    assert time.perf_counter() - start < 1.0
