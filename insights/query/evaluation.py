"""Scoring the interpreter against a labelled question set (used by tests and the benchmark).

A labelled question is `{"query": ..., "intent": ..., "entities": {...}}`. Entity accuracy is
strict: the whole predicted entity dict must equal the expected one (floats to 1e-6); per-field
accuracy counts, for each field, the questions where it was expected or predicted.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insights.query.interpreter import INTENTS, Interpretation


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled question."""

    query: str
    intent: str
    entities: Mapping[str, Any]


@dataclass
class Report:
    """Accuracy figures of one run over a labelled set."""

    total: int = 0
    intent_correct: int = 0
    entities_correct: int = 0
    both_correct: int = 0
    field_support: Counter[str] = field(default_factory=Counter)
    field_correct: Counter[str] = field(default_factory=Counter)
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def intent_accuracy(self) -> float:
        """Share of questions whose intent is right."""
        return self.intent_correct / self.total if self.total else 0.0

    @property
    def entity_accuracy(self) -> float:
        """Share of questions whose whole entity dict is right."""
        return self.entities_correct / self.total if self.total else 0.0

    def field_accuracy(self) -> dict[str, float]:
        """Per-entity-field accuracy over the questions where the field is expected or found."""
        return {f: self.field_correct[f] / n for f, n in sorted(self.field_support.items())}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (with every failure, for reading)."""
        latencies = sorted(self.latencies_ms)
        return {
            "questions": self.total,
            "intent_accuracy": round(self.intent_accuracy, 4),
            "entity_exact_match_accuracy": round(self.entity_accuracy, 4),
            "intent_and_entities_accuracy": round(self.both_correct / self.total, 4) if self.total else 0.0,
            "field_accuracy": {f: round(a, 4) for f, a in self.field_accuracy().items()},
            "field_support": dict(sorted(self.field_support.items())),
            "confusion": {t: dict(c) for t, c in self.confusion.items()},
            "latency_ms": _latency_summary(latencies),
            "failures": self.failures,
        }


def load_examples(path: Path) -> list[Example]:
    """Labelled questions from a JSON-lines file (blank lines skipped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(Example(row["query"], row["intent"], row.get("entities", {})))
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equality with a float tolerance (sizes are rounded to 0.1 m²)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-6
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def score(examples: Iterable[Example], interpret: Callable[[str], Interpretation]) -> Report:
    """Run `interpret` on every example and tally intent, entity and per-field accuracy."""
    report = Report(confusion={i: Counter() for i in INTENTS})
    for example in examples:
        start = time.perf_counter()
        result = interpret(example.query)
        report.latencies_ms.append((time.perf_counter() - start) * 1000)
        _tally(report, example, result)
    return report


def _tally(report: Report, example: Example, result: Interpretation) -> None:
    got = dict(result.to_dict()["entities"])
    report.total += 1
    intent_ok = result.intent == example.intent
    report.intent_correct += intent_ok
    report.confusion.setdefault(example.intent, Counter())[result.intent] += 1
    fields = set(got) | set(example.entities)
    entities_ok = all(same_value(got.get(f), example.entities.get(f)) for f in fields)
    report.entities_correct += entities_ok
    report.both_correct += intent_ok and entities_ok
    for f in fields:
        report.field_support[f] += 1
        report.field_correct[f] += same_value(got.get(f), example.entities.get(f))
    if not (intent_ok and entities_ok):
        report.failures.append(
            {"query": example.query, "expected_intent": example.intent, "intent": result.intent,
             "expected_entities": dict(example.entities), "entities": got,
             "confidence": round(result.confidence, 3)}
        )


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "mean": round(sum(latencies) / len(latencies), 3),
        "p50": round(pick(0.5), 3),
        "p95": round(pick(0.95), 3),
        "max": round(latencies[-1], 3),
    }


_TYPO_WORD = re.compile(r"(?<![\w_$€£])[^\W\d_]{5,}(?![\w_])")


def add_typos(text: str, rng: random.Random, words: int = 2) -> str:
    """`text` with one random typo (drop, swap, double or replace a letter) in up to `words` of
    its words of five letters or more, and lowercased half of the time: a noisier eval set."""
    spans = [m.span() for m in _TYPO_WORD.finditer(text)]
    for start, end in sorted(rng.sample(spans, min(words, len(spans))), reverse=True):
        text = text[:start] + _typo(text[start:end], rng) + text[end:]
    return text.lower() if rng.random() < 0.5 else text


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)  # people rarely get the first letter wrong
    kind = rng.choice(("drop", "swap", "double", "replace"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]


def with_typos(examples: Iterable[Example], seed: int = 0) -> list[Example]:
    """The examples with `add_typos` applied to every query (labels unchanged)."""
    rng = random.Random(seed)
    return [Example(add_typos(e.query, rng), e.intent, e.entities) for e in examples]
