"""How each real data set in `../shared/data` maps onto the canonical schema.

Each preset is exactly what the README's ingest table shows as command-line flags:
`--kind`, `--map CANONICAL=SOURCE`, `--drop COLUMN` and `--set CANONICAL=VALUE` (a constant for a
column the file does not have, such as the city of a one-city survey). Nothing here is special-cased
in the ingest code: `leaseora ingest FILE --preset NAME` is shorthand for those flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from insights.data.schema import Kind


@dataclass(frozen=True)
class Preset:
    """A documented mapping of one source file onto the canonical schema."""

    name: str
    filename: str
    kind: Kind
    mapping: dict[str, str]
    drop: tuple[str, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def flags(self) -> str:
        """The equivalent `leaseora ingest` flags, as documented in the README."""
        parts = [f"--kind {self.kind.value}"]
        parts += [f"--map '{canonical}={source}'" for canonical, source in self.mapping.items()]
        parts += [f"--drop '{column}'" for column in self.drop]
        parts += [f"--set '{canonical}={value}'" for canonical, value in self.constants.items()]
        return " ".join(parts)


# Airbnb listing columns that are free text, URLs, host identity or scrape bookkeeping: not features.
_AIRBNB_NOISE = (
    "listing_url", "scrape_id", "last_scraped", "source", "name", "description", "neighborhood_overview",
    "picture_url", "host_id", "host_url", "host_name", "host_since", "host_location", "host_about",
    "host_response_time", "host_response_rate", "host_acceptance_rate", "host_is_superhost",
    "host_thumbnail_url", "host_picture_url", "host_neighbourhood", "host_listings_count",
    "host_total_listings_count", "host_verifications", "host_has_profile_pic", "host_identity_verified",
    "neighbourhood", "neighbourhood_group_cleansed", "bathrooms_text", "amenities", "calendar_updated",
    "calendar_last_scraped", "first_review", "last_review", "license", "price",
    "calculated_host_listings_count", "calculated_host_listings_count_entire_homes",
    "calculated_host_listings_count_private_rooms", "calculated_host_listings_count_shared_rooms",
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="poland",
            filename="poland_apartments_rent.csv.gz",
            kind=Kind.LISTINGS,
            mapping={
                "listing_id": "id",
                "city": "city",
                "latitude": "latitude",
                "longitude": "longitude",
                "size_sqm": "squareMeters",
                "rooms": "rooms",
                "floor": "floor",
                "total_floors": "floorCount",
                "year_built": "buildYear",
                "parking": "hasParkingSpace",
                "balcony": "hasBalcony",
                "elevator": "hasElevator",
                "listed_at": "snapshot_month",
                "monthly_rent": "price",
            },
            constants={"country": "Poland", "currency": "PLN", "property_type": "apartment"},
            note="the same flat (`id`) recurs across monthly snapshots: one listing, several observations",
        ),
        Preset(
            name="brazil",
            filename="brazil_houses_to_rent.csv",
            kind=Kind.LISTINGS,
            mapping={
                "city": "city",
                "size_sqm": "area",
                "rooms": "rooms",
                "bathrooms": "bathroom",
                "floor": "floor",
                "pets_allowed": "animal",
                "furnished": "furniture",
                "monthly_rent": "rent amount (R$)",
            },
            drop=("fire insurance (R$)", "total (R$)"),
            constants={"country": "Brazil", "currency": "BRL"},
            note="`fire insurance` and `total` contain the rent: dropped, they would leak the target",
        ),
        Preset(
            name="munich",
            filename="munich_rent99.csv",
            kind=Kind.LISTINGS,
            mapping={"monthly_rent": "rent", "size_sqm": "area", "year_built": "yearc", "district": "district"},
            drop=("rentsqm",),
            constants={"city": "Munich", "country": "Germany", "currency": "EUR"},
            note="1999 survey, no dates; `rentsqm` is the rent divided by the area: dropped, it leaks the target",
        ),
        Preset(
            name="albany-listings",
            filename="albany_airbnb_listings.csv.gz",
            kind=Kind.PROPERTIES,
            mapping={
                "property_id": "id",
                "district": "neighbourhood_cleansed",
                "latitude": "latitude",
                "longitude": "longitude",
                "bedrooms": "bedrooms",
                "bathrooms": "bathrooms",
            },
            drop=_AIRBNB_NOISE,
            constants={"city": "Albany", "country": "United States"},
            note="short-term rentals: nightly prices are not monthly rents, so the file feeds properties, not listings",
        ),
        Preset(
            name="albany-calendar",
            filename="albany_airbnb_calendar.csv.gz",
            kind=Kind.CALENDAR,
            mapping={"listing_id": "listing_id", "date": "date", "available": "available", "price": "price"},
            drop=("adjusted_price",),
            note="`available = f` means booked or blocked by the host: an occupancy proxy, not observed occupancy",
        ),
    )
}
