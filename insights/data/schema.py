"""The canonical data schema every source is mapped onto.

A source file (CSV, CSV.gz or Parquet) is renamed onto these columns with `--map CANONICAL=SOURCE`
pairs; source columns that are neither mapped nor dropped are kept as *extra features* (numeric,
boolean or categorical) and travel with the row into the models.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """The kinds of file `leaseora ingest` accepts."""

    LISTINGS = "listings"
    LEASES = "leases"
    PROPERTIES = "properties"
    CALENDAR = "calendar"


#: Property features shared by listings and properties, with their canonical type.
PROPERTY_FEATURES: dict[str, str] = {
    "city": "str",
    "country": "str",
    "district": "str",
    "postcode": "str",
    "latitude": "float",
    "longitude": "float",
    "property_type": "str",
    "bedrooms": "float",
    "rooms": "float",
    "bathrooms": "float",
    "size_sqm": "float",
    "floor": "float",
    "total_floors": "float",
    "year_built": "float",
    "furnished": "bool",
    "parking": "bool",
    "balcony": "bool",
    "elevator": "bool",
    "pets_allowed": "bool",
}

#: Canonical listing columns (one row is one rent observation). `monthly_rent` is the target.
LISTING_COLUMNS: dict[str, str] = {
    "listing_id": "str",
    "property_id": "str",
    **PROPERTY_FEATURES,
    "listed_at": "datetime",
    "monthly_rent": "float",
    "currency": "str",
}

#: Canonical property columns (the portfolio a landlord manages).
PROPERTY_COLUMNS: dict[str, str] = {"property_id": "str", **PROPERTY_FEATURES}

#: Canonical lease columns: one signed lease of a unit.
LEASE_COLUMNS: dict[str, str] = {
    "lease_id": "str",
    "property_id": "str",
    "unit_id": "str",
    "start_date": "datetime",
    "end_date": "datetime",
    "monthly_rent": "float",
    "currency": "str",
}

#: Canonical availability-calendar columns: one row per listing per day.
CALENDAR_COLUMNS: dict[str, str] = {
    "listing_id": "str",
    "date": "datetime",
    "available": "bool",
    "price": "float",
}

COLUMNS: dict[Kind, dict[str, str]] = {
    Kind.LISTINGS: LISTING_COLUMNS,
    Kind.PROPERTIES: PROPERTY_COLUMNS,
    Kind.LEASES: LEASE_COLUMNS,
    Kind.CALENDAR: CALENDAR_COLUMNS,
}

#: Columns a row of each kind cannot do without.
REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.LISTINGS: ("city", "monthly_rent"),
    Kind.PROPERTIES: ("property_id", "city"),
    Kind.LEASES: ("start_date", "monthly_rent"),
    Kind.CALENDAR: ("listing_id", "date", "available"),
}

#: Square feet to square metres.
SQFT_TO_SQM = 0.09290304
