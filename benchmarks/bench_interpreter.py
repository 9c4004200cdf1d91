"""Accuracy and speed of the natural-language query interpreter on the hand-written eval set.

    .venv/bin/python benchmarks/bench_interpreter.py

Prints intent accuracy (with rules and classifier alone), entity exact-match and per-field
accuracy, the intent confusion matrix, cold-start and per-question latency, and writes
benchmarks/results/interpreter.json. The eval set was used while developing the interpreter;
the smaller holdout set was written afterwards and is reported beside it as a check on
generalisation.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from insights.query.evaluation import Report, load_examples, score, with_typos
from insights.query.gazetteer import Gazetteer
from insights.query.interpreter import INTENTS, Interpretation, Interpreter

ROOT = Path(__file__).resolve().parents[1]
EVAL_SET = ROOT / "tests" / "query" / "eval_questions.jsonl"
HOLDOUT_SET = ROOT / "tests" / "query" / "holdout_questions.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "interpreter.json"


def _print_confusion(report: Report) -> None:
    short = {i: i.split("_")[0][:8] for i in INTENTS}
    print("\nconfusion (rows: expected, columns: predicted)")
    print(f"{'':>20}" + "".join(f"{short[i]:>10}" for i in INTENTS))
    for expected in INTENTS:
        row = report.confusion.get(expected, {})
        print(f"{expected:>20}" + "".join(f"{row.get(p, 0):>10}" for p in INTENTS))


def per_question_latency_ms(interpreter: Interpreter, queries: list[str], repeats: int = 5) -> list[float]:
    """Median of `repeats` timings per question: robust to other processes on a shared machine."""
    medians = []
    for query in queries:
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            interpreter.interpret(query)
            timings.append((time.perf_counter() - start) * 1000)
        medians.append(statistics.median(timings))
    return sorted(medians)


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
    holdout = score(load_examples(HOLDOUT_SET), interpreter.interpret)
    noisy = score(with_typos(examples, seed=0), interpreter.interpret)
    medians = per_question_latency_ms(interpreter, [e.query for e in examples])
    summary = report.to_dict()
    summary["latency_ms_median_of_5"] = {
        "mean": round(statistics.fmean(medians), 3),
        "p50": round(medians[len(medians) // 2], 3),
        "p95": round(medians[int(0.95 * len(medians))], 3),
        "max": round(medians[-1], 3),
    }
    summary["classifier_only_intent_accuracy"] = round(raw.intent_accuracy, 4)
    summary["eval_with_typos"] = {
        "note": "every eval question with one typo in up to two words of 5+ letters, half lowercased",
        "intent_accuracy": round(noisy.intent_accuracy, 4),
        "entity_exact_match_accuracy": round(noisy.entity_accuracy, 4),
        "field_accuracy": {f: round(a, 4) for f, a in noisy.field_accuracy().items()},
    }
    summary["holdout"] = {
        "questions": holdout.total,
        "intent_accuracy": round(holdout.intent_accuracy, 4),
        "entity_exact_match_accuracy": round(holdout.entity_accuracy, 4),
        "failures": holdout.failures,
    }
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
    latency, robust = summary["latency_ms"], summary["latency_ms_median_of_5"]
    print(f"\nlatency per question (ms, warm, one pass): mean {latency['mean']}, p50 {latency['p50']}, "
          f"p95 {latency['p95']}, max {latency['max']}")
    print(f"latency per question (ms, median of 5 runs): mean {robust['mean']}, p50 {robust['p50']}, "
          f"p95 {robust['p95']}, max {robust['max']}")
    print(f"eval with typos: intent {noisy.intent_accuracy:.3f}, entities {noisy.entity_accuracy:.3f}")
    print(f"holdout ({holdout.total} questions): intent {holdout.intent_accuracy:.3f}, "
          f"entities {holdout.entity_accuracy:.3f}")
    print(f"cold start: gazetteer {t1 - t0:.2f}s, classifier training {t2 - t1:.2f}s")
    print(f"{len(report.failures)} failures listed in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
