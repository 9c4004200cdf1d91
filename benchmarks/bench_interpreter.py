"""Accuracy and speed of the natural-language query interpreter on the hand-written eval set.

    .venv/bin/python benchmarks/bench_interpreter.py

Prints intent accuracy (with rules and classifier alone), entity exact-match and per-field
accuracy, the intent confusion matrix, cold-start and per-question latency, and writes
benchmarks/results/interpreter.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from insights.query.evaluation import Report, load_examples, score
from insights.query.gazetteer import Gazetteer
from insights.query.interpreter import INTENTS, Interpretation, Interpreter

ROOT = Path(__file__).resolve().parents[1]
EVAL_SET = ROOT / "tests" / "query" / "eval_questions.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "interpreter.json"


def _print_confusion(report: Report) -> None:
    short = {i: i.split("_")[0][:8] for i in INTENTS}
    print("\nconfusion (rows: expected, columns: predicted)")
    print(f"{'':>20}" + "".join(f"{short[i]:>10}" for i in INTENTS))
    for expected in INTENTS:
        row = report.confusion.get(expected, {})
        print(f"{expected:>20}" + "".join(f"{row.get(p, 0):>10}" for p in INTENTS))


def main() -> None:
    """Run the benchmark and write the results file."""
    examples = load_examples(EVAL_SET)
    t0 = time.perf_counter()
    gazetteer = Gazetteer()
    t1 = time.perf_counter()
    interpreter = Interpreter(gazetteer)
    t2 = time.perf_counter()
    for example in examples:  # warm-up: regex caches, spelling memo, sklearn first-call costs
        interpreter.interpret(example.query)
    report = score(examples, interpreter.interpret)

    def classifier_only(text: str) -> Interpretation:
        prediction = interpreter.predict(text)
        return Interpretation(prediction.intent, interpreter.parse(text).entities, prediction.confidence)

    raw = score(examples, classifier_only)
    summary = report.to_dict()
    summary["classifier_only_intent_accuracy"] = round(raw.intent_accuracy, 4)
    summary["cold_start_s"] = {"gazetteer": round(t1 - t0, 3), "classifier_training": round(t2 - t1, 3)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"eval questions:               {report.total}")
    print(f"intent accuracy:              {report.intent_accuracy:.3f}"
          f"   (classifier alone: {raw.intent_accuracy:.3f})")
    print(f"entity exact-match accuracy:  {report.entity_accuracy:.3f}")
    print(f"intent and entities correct:  {summary['intent_and_entities_accuracy']:.3f}")
    print("per-field accuracy:")
    for name, accuracy in report.field_accuracy().items():
        print(f"  {name:<14} {accuracy:.3f}  (n={report.field_support[name]})")
    _print_confusion(report)
    latency = summary["latency_ms"]
    print(f"\nlatency per question (ms, warm): mean {latency['mean']}, p50 {latency['p50']}, "
          f"p95 {latency['p95']}, max {latency['max']}")
    print(f"cold start: gazetteer {t1 - t0:.2f}s, classifier training {t2 - t1:.2f}s")
    print(f"{len(report.failures)} failures listed in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
