"""Market insights with calibrated confidence.

`generate.generate_insights` turns canonical listings (and leases / calendars) into `InsightRecord`s,
using the hedonic rent index of `index` and the scores of `confidence`; `text` writes the sentences
and `store` keeps runs in the `insights` table and serves the published feed.
"""

from insights.feed.generate import InsightRecord, generate_insights

__all__ = ["InsightRecord", "generate_insights"]
