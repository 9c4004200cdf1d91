"""`leaseora ask "question"`: answer one question synchronously, in this process, without Redis.

    >>> payload = ask("What is the rent for a 2-bedroom apartment in Berlin?", settings=get_settings())
    >>> print(format_answer(payload))

`ask` opens the home's database and model registry, answers through the same `answer_question`
the workers use (so `--json` prints exactly what a completed API query holds) and closes the
database again. `format_answer` is the human-readable rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from insights.config import Settings
from insights.query.answer import AnswerContext, answer_question
from insights.storage.session import make_engine, make_session_factory, migrate
from insights.worker.context import model_cache

#: Comparables and insights listed in the human-readable output.
SHOWN_ROWS = 5


def ask(text: str, *, settings: Settings, account_id: int | None = None) -> dict[str, Any]:
    """Answer `text` with the home's models and data; the payload a completed query holds.

    `account_id` None answers about the properties ingested from files (no account). Raises
    `ModelNotAvailable` when the question needs a rent model and none is trained yet.
    """
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        migrate(engine)  # a fresh home has no tables yet; a no-op on an up-to-date database
        context = AnswerContext(
            settings=settings,
            session_factory=make_session_factory(engine),
            models=model_cache(settings.models_dir),
            account_id=account_id,
        )
        return answer_question(text, context)
    finally:
        engine.dispose()


def format_answer(payload: Mapping[str, Any]) -> str:
    """The answer for a terminal: the sentences, then the key figures, assumptions and sources."""
    lines = [str(payload.get("answer") or "")]
    result = payload.get("result") or {}
    lines += _comparables(result.get("comparables") or [])
    lines += _curve(result.get("revenue_curve") or [], (result.get("optimal") or {}).get("currency"))
    lines += _insights(result.get("insights") or [])
    lines += _cities(result.get("cities") or [])
    assumptions = result.get("assumptions") or {}
    if assumptions:
        lines += ["", "Assumed:"] + [f"  {name}: {a.get('value')}  ({a.get('basis')})" for name, a in assumptions.items()]
    lines += ["", _footer(payload)]
    return "\n".join(lines).strip() + "\n"


def _comparables(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    out = ["", "Comparable listings:"]
    for row in rows[:SHOWN_ROWS]:
        size = f"{row['size_sqm']:.0f} m²" if row.get("size_sqm") is not None else "? m²"
        beds = f"{row['bedrooms']:.0f} bd" if row.get("bedrooms") is not None else "? bd"
        rent = f"{row['monthly_rent']:,.0f} {row.get('currency') or ''}".strip() if row.get("monthly_rent") is not None else "?"
        out.append(f"  {row.get('listing_id') or '-':<12} {str(row.get('district') or ''):<20} {size:>8} {beds:>6} "
                   f"{rent:>12}  {row.get('listed_at') or ''}")
    return out


def _curve(points: Sequence[Mapping[str, Any]], currency: str | None) -> list[str]:
    if not points:
        return []
    out = ["", f"Revenue curve (rent -> occupancy, yearly revenue{', ' + currency if currency else ''}):"]
    for point in points:
        out.append(f"  {point['ratio']:.2f}x  {point['rent']:>10,.0f}  {point['occupancy']:>6.1%}  {point['revenue']:>12,.0f}")
    return out


def _insights(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    return ["", "Insights:"] + [f"  [{row.get('confidence_score', 0):.0%}] {row.get('text')}" for row in rows[:SHOWN_ROWS]]


def _cities(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    out = ["", "Markets:"]
    for row in rows:
        rent = row.get("market_rent")
        figure = f"{rent['rent']:,.0f} {rent.get('currency') or ''} ({rent['low']:,.0f}–{rent['high']:,.0f})" if rent else "too little data"
        growth = row.get("growth")
        trend = f", {growth['value']:+.1f}% ({growth['metric'].rsplit('_', 1)[-1]})" if growth else ""
        out.append(f"  {row.get('data_city') or row.get('city')}: {figure}{trend}")
    return out


def _footer(payload: Mapping[str, Any]) -> str:
    interpretation = payload.get("interpretation") or {}
    parts = [f"intent {interpretation.get('intent')} ({interpretation.get('confidence', 0):.0%})"]
    if payload.get("confidence_score") is not None:
        parts.append(f"confidence {payload['confidence_score']:.0%}")
    if payload.get("model_version"):
        parts.append(f"rent model {payload['model_version']}")
    sources = payload.get("sources") or []
    kinds = sorted({str(s.get("type")) for s in sources})
    if kinds:
        parts.append("sources: " + ", ".join(kinds))
    return " · ".join(parts)
