"""The gazetteer: city spellings, typos, false positives, data-name matching."""

from __future__ import annotations

import pytest

from insights.query.gazetteer import CityRecord, Gazetteer, country_of, default_gazetteer, match_data_city


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return default_gazetteer()


def _cities(gazetteer: Gazetteer, text: str) -> list[str]:
    return [m.cities[0].name for m in gazetteer.find_places(text) if m.cities]


@pytest.mark.parametrize(
    ("spelling", "name", "country"),
    [
        ("Warsaw", "Warsaw", "Poland"),
        ("Warszawa", "Warsaw", "Poland"),
        ("warszawa", "Warsaw", "Poland"),
        ("WARSAW", "Warsaw", "Poland"),
        ("Munich", "Munich", "Germany"),
        ("München", "Munich", "Germany"),
        ("Munchen", "Munich", "Germany"),
        ("Muenchen", "Munich", "Germany"),
        ("Cracow", "Kraków", "Poland"),
        ("Krakow", "Kraków", "Poland"),
        ("Kraków", "Kraków", "Poland"),
        ("Cologne", "Köln", "Germany"),
        ("Köln", "Köln", "Germany"),
        ("Koeln", "Köln", "Germany"),
        ("Lisbon", "Lisbon", "Portugal"),
        ("Lisboa", "Lisbon", "Portugal"),
        ("Sao Paulo", "São Paulo", "Brazil"),
        ("São Paulo", "São Paulo", "Brazil"),
        ("sao paulo", "São Paulo", "Brazil"),
        ("Lodz", "Łódź", "Poland"),
        ("Wien", "Vienna", "Austria"),
        ("Praha", "Prague", "Czechia"),
        ("Seville", "Sevilla", "Spain"),
        ("Frankfurt", "Frankfurt am Main", "Germany"),
        ("New York", "New York City", "United States"),
        ("Hanover", "Hannover", "Germany"),
    ],
)
def test_resolves_exonyms_local_names_and_accents(gazetteer: Gazetteer, spelling: str, name: str, country: str) -> None:
    record = gazetteer.resolve(spelling)
    assert record is not None
    assert (record.name, record.country) == (name, country)


@pytest.mark.parametrize(
    ("typo", "name"),
    [("Berln", "Berlin"), ("Warsawa", "Warsaw"), ("Hamburgh", "Hamburg"), ("Barcelonna", "Barcelona"),
     ("Amsterdm", "Amsterdam"), ("Lisbn", "Lisbon"), ("Rio de Janiero", "Rio de Janeiro")],
)
def test_resolves_small_typos(gazetteer: Gazetteer, typo: str, name: str) -> None:
    record = gazetteer.resolve(typo)
    assert record is not None and record.name == name


def test_prefers_the_largest_city_of_a_shared_name(gazetteer: Gazetteer) -> None:
    assert gazetteer.resolve("Paris").country_code == "FR"  # not Paris, Texas
    assert gazetteer.resolve("London").country_code == "GB"  # not London, Ontario
    assert gazetteer.resolve("Portland").admin1 == "OR"
    assert gazetteer.resolve("Boston").country_code == "US"


def test_country_and_state_context_narrow_the_city(gazetteer: Gazetteer) -> None:
    assert gazetteer.resolve("Valencia", country="Spain").country_code == "ES"
    assert _cities(gazetteer, "rent in Portland, Maine") == ["Portland"]
    maine = gazetteer.find_places("rent in Portland, ME")[0].cities[0]
    assert maine.admin1 == "ME"
    oregon = gazetteer.find_places("rent in Portland, OR")[0].cities[0]
    assert oregon.admin1 == "OR"
    spain = gazetteer.find_places("flats in Valencia, Spain")[0].cities[0]
    assert spain.country_code == "ES"


@pytest.mark.parametrize(
    ("text", "countries"),
    [
        ("are rents higher in Madrid than Valencia", ["ES", "ES"]),  # alone, Valencia is Venezuela's
        ("Valencia vs Caracas", ["VE", "VE"]),
        ("Cambridge vs Boston rents", ["US", "US"]),  # Cambridge, Massachusetts beside Boston
        ("Perth vs Sydney", ["AU", "AU"]),
        ("Sydney vs Toronto rents", ["AU", "CA"]),  # Sydney, Nova Scotia is too small to be meant
        ("London vs Hamilton", ["GB", "CA"]),
        ("flats in Valencia, Spain vs Caracas", ["ES", "VE"]),  # a named country decides, not the other city
    ],
)
def test_cities_named_together_lean_to_one_country(gazetteer: Gazetteer, text: str, countries: list[str]) -> None:
    assert [m.cities[0].country_code for m in gazetteer.find_places(text) if m.cities] == countries


def test_record_has_canonical_fields(gazetteer: Gazetteer) -> None:
    record = gazetteer.resolve("Kraków")
    assert isinstance(record, CityRecord)
    assert record.geonameid == 3094802
    assert record.ascii_name == "Krakow"
    assert record.country_code == "PL" and record.country == "Poland"
    assert "Cracow" in record.alternate_names
    assert record.to_dict()["name"] == "Kraków"


@pytest.mark.parametrize(
    "text",
    [
        "nice apartment with a view",
        "What is a nice rent for my flat?",
        "I was reading the market report",
        "is a mobile home cheaper to rent",
        "the flat has a bath and a shower",
        "Best price for my studio",
        "what is the rent of my house",
        "homes for rent",
        "Rent prices are rising",
        "Nice and cheap studio wanted",
    ],
)
def test_common_words_are_not_cities(gazetteer: Gazetteer, text: str) -> None:
    assert _cities(gazetteer, text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is rent in Nice going up?", ["Nice"]),
        ("rent in nice?", ["Nice"]),
        ("Are rents in Reading rising", ["Reading"]),
        ("Nice vs Lyon", ["Nice", "Lyon"]),
        ("Cologne or Bonn for a flat?", ["Köln", "Bonn"]),
        ("apartment in rio", ["Rio de Janeiro"]),
        ("Berln vs Hamburg", ["Berlin", "Hamburg"]),
        ("rent in berln", ["Berlin"]),
        ("rental market trends for roma", ["Rome"]),  # a short local name after "for"
        ("rent prices for wien", ["Vienna"]),
        ("rents in nyc going up", ["New York City"]),  # "nyc" is no word; "la" and "dc" are, so they need capitals
    ],
)
def test_ambiguous_and_misspelt_names_count_in_place_context(
    gazetteer: Gazetteer, text: str, expected: list[str]
) -> None:
    assert _cities(gazetteer, text) == expected


def test_state_names_after_a_comma_are_states_not_cities(gazetteer: Gazetteer) -> None:
    places = gazetteer.find_places("flats in Seattle, Washington")
    assert [m.cities[0].name for m in places if m.cities] == ["Seattle"]
    assert any(m.state_code == "WA" for m in places)
    assert _cities(gazetteer, "rent in New York") == ["New York City"]


def test_countries_are_found_and_named(gazetteer: Gazetteer) -> None:
    codes = [m.country_code for m in gazetteer.find_places("rents in Deutschland, the UK and Brasil")]
    assert codes == ["DE", "GB", "BR"]
    assert gazetteer.find_places("tell us about rents")[0:] == []  # "us" is a pronoun
    assert gazetteer.country_code("USA") == "US"
    assert gazetteer.country_name("PL") == "Poland"


KNOWN = ["Berlin", "warszawa", "krakow", "São Paulo", "Munich", "München", "Köln", "Lisboa"]


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("Warsaw", "warszawa"),
        ("Cracow", "krakow"),
        ("Kraków", "krakow"),
        ("Sao Paulo", "São Paulo"),
        ("Munich", "Munich"),
        ("München", "München"),
        ("Muenchen", "Munich"),
        ("Cologne", "Köln"),
        ("Lisbon", "Lisboa"),
        ("berlin", "Berlin"),
        ("Berln", "Berlin"),
        ("Paris", None),
    ],
)
def test_match_data_city_by_name(asked: str, expected: str | None) -> None:
    assert match_data_city(asked, KNOWN) == expected


def test_match_data_city_by_record_and_fallbacks() -> None:
    record = default_gazetteer().resolve("Warszawa")
    assert match_data_city(record, KNOWN) == "warszawa"
    # Places the gazetteer does not know still match a near-identical spelling in the data.
    assert match_data_city("Smallvile Heights", ["Smallville Heights", "Berlin"]) == "Smallville Heights"
    assert match_data_city("Berlin", []) is None
    assert match_data_city("Berlin", ["", "  "]) is None


def test_country_of() -> None:
    assert country_of("Warszawa") == "Poland"
    assert country_of("São Paulo") == "Brazil"
    assert country_of("Muenchen") == "Germany"
    assert country_of("Xqzzyvillebourg") is None
    assert country_of("") is None
