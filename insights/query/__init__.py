"""Natural-language questions -> intent + entities, offline (see `interpreter`).

Public API: `interpret`, `Interpretation`, `match_data_city`, `country_of`, `CityRecord`,
`default_gazetteer`.
"""

from insights.query.gazetteer import CityRecord, country_of, default_gazetteer, match_data_city
from insights.query.interpreter import INTENTS, Interpretation, interpret

__all__ = [
    "INTENTS",
    "CityRecord",
    "Interpretation",
    "country_of",
    "default_gazetteer",
    "interpret",
    "match_data_city",
]
