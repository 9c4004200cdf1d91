"""Regex entity extractors: property id, money, size, bedrooms, bathrooms, furnished, type.

Each extractor takes the question text and returns the value it found (or None) and the text
with what it recognised replaced by a placeholder ("_money_", "_size_", ...). Running them in
a fixed order on the masked text keeps one number from being read twice ("2,500" never becomes
bedrooms) and hands the intent classifier a text where the values no longer matter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: One square foot in square metres.
SQFT_TO_SQM = 0.09290304

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "half": 0.5,
}
_NUMWORD = r"(?:zero|one|single|two|three|four|five|six|seven|eight|nine|ten)"
#: An amount as people type it: "1200", "1,200", "1.200,50", "2,500.00", "1 200", "1.5".
_AMOUNT = r"(?:\d{1,3}(?:[.,\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?)"
_K = r"(?:\s?[kK](?![a-zA-Z]))"

_CURRENCY_WORDS: dict[str, str] = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "us$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
    "r$": "BRL", "brl": "BRL", "reais": "BRL",
    "zł": "PLN", "zl": "PLN", "pln": "PLN", "złoty": "PLN", "zloty": "PLN", "złotych": "PLN",
    "zlotych": "PLN", "zlotys": "PLN", "złotys": "PLN",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
    "chf": "CHF", "francs": "CHF", "czk": "CZK", "kč": "CZK", "a$": "AUD", "aud": "AUD",
    "c$": "CAD", "cad": "CAD", "¥": "JPY", "jpy": "JPY", "yen": "JPY", "₹": "INR", "inr": "INR",
    "rupees": "INR", "mxn": "MXN", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "huf": "HUF",
    "peso": "MXN", "pesos": "MXN", "franc": "CHF",
}
#: Signs and words that name a kind of currency rather than one currency: in a country whose
#: currency is of that kind (GeoNames' currency name) they mean that country's currency ("$2,400 in
#: Vancouver" is CAD, "$18,000 in Mexico City" MXN); elsewhere, or with no place, the code above.
_CURRENCY_KINDS: dict[str, tuple[str, ...]] = {
    "$": ("Dollar", "Peso"), "dollar": ("Dollar",), "dollars": ("Dollar",), "bucks": ("Dollar",),
    "peso": ("Peso",), "pesos": ("Peso",), "£": ("Pound",), "pound": ("Pound",), "pounds": ("Pound",),
    "franc": ("Franc",), "francs": ("Franc",), "rupees": ("Rupee",),
}
_PREFIX_CUR = r"(?P<cur>R\$|US\$|A\$|C\$|\$|€|£|¥|₹|\b(?:EUR|USD|PLN|BRL|GBP|CHF|CZK|AUD|CAD|JPY|INR|MXN)\b)"
_SUFFIX_CUR = (
    r"(?P<cur>€|\$|£|zł|kč|\b(?:zl|eur|euros?|usd|dollars?|bucks|brl|reais|pln|z[lł]oty(?:ch|s)?"
    r"|gbp|pounds?|quid|chf|francs?|czk|aud|cad|jpy|yen|inr|rupees|mxn|pesos?|sek|nok|dkk|huf)\b)"
)
_MONEY_PREFIX = re.compile(rf"{_PREFIX_CUR}\s?(?P<num>{_AMOUNT})(?P<k>{_K})?(?!\d)", re.IGNORECASE)
_MONEY_SUFFIX = re.compile(rf"(?<![\w.,])(?P<num>{_AMOUNT})(?P<k>{_K})?\s?{_SUFFIX_CUR}", re.IGNORECASE)
_PER_MONTH = r"(?:\s*(?:/\s*(?:mo|mth|month|m)\b|per\s+month|a\s+month|each\s+month|monthly|pcm|p/?m\b))"
_RENT_AFTER_VERB = re.compile(
    rf"\b(?P<lead>at|for|charge|charging|ask|asking|list(?:ed)?\s+(?:it\s+)?at|priced\s+at|rent\s+of"
    rf"|rent\s+is|price\s+of|price\s+is|is)\s+(?P<num>{_AMOUNT})(?P<k>{_K})?(?![\w.,%])",
    re.IGNORECASE,
)
_RENT_PER_MONTH = re.compile(rf"(?<![\w.,])(?P<num>{_AMOUNT})(?P<k>{_K})?{_PER_MONTH}", re.IGNORECASE)
_CURRENCY_ONLY = re.compile(rf"\bin\s+{_SUFFIX_CUR}", re.IGNORECASE)

_SIZE = re.compile(
    rf"(?<![\w.,])(?P<num>{_AMOUNT})\s?-?\s?(?P<unit>m²|m2\b|m\^2|sq\.?[\s-]?m(?:et(?:er|re)s?)?\b|sqm\b|qm\b"
    r"|square[\s-]+met(?:er|re)s?\b|met(?:er|re)s?[\s-]squared\b|sq\.?[\s-]?f(?:ee)?t\.?(?!\w)|sqft\b|sf\b"
    r"|square[\s-]+f(?:ee|oo)t\b|ft²|ft2\b|feet[\s-]squared\b)",
    re.IGNORECASE,
)
_BEDROOMS = re.compile(
    rf"\b(?P<n>\d+|{_NUMWORD})\s?-?\s?(?:bed(?:room|rm)?s?|bdrms?|bdr|br|bhk|bd|b/r)\b", re.IGNORECASE
)
_BEDROOMS_AFTER = re.compile(rf"\bbed(?:room)?s?\s*[:=]\s*(?P<n>\d+|{_NUMWORD})\b", re.IGNORECASE)
_T_NOTATION = re.compile(r"\bT(?P<n>[0-5])\b")
_BATHROOMS = re.compile(
    rf"\b(?P<n>\d+(?:\.5)?|{_NUMWORD}(?:\s+and\s+a\s+half)?)\s?-?\s?(?:bath(?:room)?s?|ba|bth)\b",
    re.IGNORECASE,
)
_UNFURNISHED = re.compile(
    r"\b(?:un-?furnished|non-?furnished|not\s+(?:fully\s+)?furnished|without\s+(?:any\s+)?furniture"
    r"|no\s+furniture|empty\s+of\s+furniture)\b",
    re.IGNORECASE,
)
_FURNISHED = re.compile(
    r"\b(?:(?:fully|semi|part(?:ly|ially)?)[\s-]?)?furnished\b|\bwith\s+(?:the\s+)?furniture\b",
    re.IGNORECASE,
)
_PROPERTY_ID = re.compile(
    r"\b(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
    r"|\b(?P<id2>[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]*\d[A-Za-z0-9_]*)\b"
    r"|\b(?P<id3>(?:prop|property|unit|listing|lst|apt|bldg)-?\d[A-Za-z0-9_-]*)\b"
    r"|\b(?:property|listing|unit)\s*(?:id|#|no\.?|number)\s*[:#]?\s*(?P<id4>[A-Za-z0-9][\w-]*)"
    r"|\bid\s*[:#]\s*(?P<id5>[A-Za-z0-9][\w-]*)"
    r"|\b(?:property|listing|unit)\s+#\s*(?P<id6>[A-Za-z0-9][\w-]*)"
    r"|\bID\s+(?P<id7>[A-Za-z0-9]*\d[\w-]*)",
    re.IGNORECASE,
)

_TYPE_WORDS: dict[str, str] = {
    "studio": "studio", "studios": "studio", "bedsit": "studio", "bedsits": "studio",
    "kitchenette": "studio", "efficiency": "studio", "kawalerka": "studio",
    "apartment": "apartment", "apartments": "apartment", "apt": "apartment", "apts": "apartment",
    "flat": "apartment", "flats": "apartment", "penthouse": "apartment", "loft": "apartment",
    "wohnung": "apartment", "mieszkanie": "apartment", "apartamento": "apartment",
    "appartement": "apartment", "flatshare": "room",
    "condo": "condo", "condos": "condo", "condominium": "condo", "condominiums": "condo",
    "house": "house", "houses": "house", "townhouse": "house", "townhouses": "house",
    "townhome": "house", "townhomes": "house", "villa": "house", "villas": "house",
    "bungalow": "house", "bungalows": "house", "cottage": "house", "cottages": "house",
    "duplex": "house", "detached": "house", "semi-detached": "house", "terraced": "house", "haus": "house",
    "casa": "house", "maisonette": "apartment",
    "room": "room", "rooms": "room", "houseshare": "room", "roomshare": "room",
    "commercial": "commercial", "office": "commercial", "offices": "commercial",
    "retail": "commercial", "shop": "commercial", "shops": "commercial",
    "storefront": "commercial", "warehouse": "commercial", "warehouses": "commercial",
    "restaurant": "commercial", "coworking": "commercial",
}
#: Types that name part of another type ("a room in a flat", "a studio apartment") win over it.
_TYPE_PRIORITY = ("studio", "room")
_TYPE_RE = re.compile(r"\b(?:" + "|".join(sorted(_TYPE_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
#: "room" after these is part of a dwelling, not a room to let ("living room", "3 room flat").
_NOT_A_ROOM_BEFORE = re.compile(
    r"(?:\d|_num_|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|living|dining|storage|utility"
    r"|laundry|boiler|family|sitting|guest|box|spare\s+bed|bath|bed|show|more|enough|extra))[\s-]*$",
    re.IGNORECASE,
)
#: Numbers without a currency that read as years, not rents ("forecast for 2026").
_YEARS = range(1990, 2101)
#: What masks a match: fixed text, or text built from the match.
Placeholder = str | Callable[[re.Match[str]], str]
#: A number without a currency is a monthly rent only in this range (not "3 months", not a
#: population).
BARE_RENT_RANGE = (50.0, 100_000.0)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money and its ISO currency code (None when the text gave none).

    `kinds`: the kinds of currency the sign or word may stand for where a place says which (see
    `regional_currency`); empty when it names one currency ("€", "C$", "CAD").
    """

    amount: float
    currency: str | None
    kinds: tuple[str, ...] = ()


def parse_amount(number: str, thousands: bool = False) -> float | None:
    """Read "1,200", "1.200,50", "2,500.00", "1 200", "1.5" as a float (None if unreadable).

    `thousands` ("k" suffix) multiplies by 1000. A lone separator followed by exactly three
    digits is a thousands separator ("1.200" is 1200); otherwise it is a decimal point.
    """
    text = re.sub(r"[\s\u202f]", "", number)
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif "," in text or "." in text:
        sep = "," if "," in text else "."
        if re.fullmatch(rf"\d{{1,3}}(?:\{sep}\d{{3}})+", text) and not thousands:
            text = text.replace(sep, "")
        elif text.count(sep) == 1:
            text = text.replace(sep, ".")
        else:
            return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value * 1000 if thousands else value


def _number(word: str) -> float | None:
    """"2", "2.5", "two", "two and a half" -> a number."""
    lowered = " ".join(word.lower().split())
    half = 0.5 if lowered.endswith(" and a half") else 0.0
    lowered = lowered.removesuffix(" and a half")
    if lowered in _NUMBER_WORDS:
        return _NUMBER_WORDS[lowered] + half
    try:
        return float(lowered) + half
    except ValueError:
        return None


def whole(value: float) -> int | float:
    """An int when the value has no fraction (1200.0 -> 1200), so JSON shows what people wrote."""
    return int(value) if float(value).is_integer() else value


def _extract(
    patterns: tuple[re.Pattern[str], ...],
    text: str,
    read: Callable[[re.Match[str]], T | None],
    placeholder: Placeholder,
) -> tuple[T | None, str]:
    """Value of the earliest match (over all patterns) that `read` accepts, and the text with
    every accepted, non-overlapping match replaced by the placeholder."""
    accepted: list[tuple[re.Match[str], T]] = []
    candidates = sorted((m for p in patterns for m in p.finditer(text)), key=lambda m: (m.start(), -m.end()))
    for match in candidates:
        if accepted and match.start() < accepted[-1][0].end():
            continue
        value = read(match)
        if value is not None:
            accepted.append((match, value))
    pieces: list[str] = []
    cursor = 0
    for match, _ in accepted:
        fill = placeholder(match) if callable(placeholder) else placeholder
        pieces.extend((text[cursor : match.start()], fill))
        cursor = match.end()
    pieces.append(text[cursor:])
    return (accepted[0][1] if accepted else None), "".join(pieces)


def extract_property_id(text: str) -> tuple[str | None, str]:
    """An id such as "prop_12345", "PROP-77", "property #4411", "unit_4b" or a UUID."""

    def read(m: re.Match[str]) -> str | None:
        value = next(g for g in m.groups() if g)
        return value if any(ch.isdigit() for ch in value) else None

    return _extract((_PROPERTY_ID,), text, read, " _id_ ")


def _money_from(m: re.Match[str]) -> Money | None:
    amount = parse_amount(m.group("num"), thousands=bool(m.groupdict().get("k")))
    if amount is None:
        return None
    currency = m.groupdict().get("cur")
    if not currency:
        return Money(amount, None)
    return Money(amount, _CURRENCY_WORDS.get(currency.lower()), _CURRENCY_KINDS.get(currency.lower(), ()))


def extract_money(text: str) -> tuple[Money | None, str]:
    """An amount marked by a currency ("€1,200", "1.200,50 zł", "R$ 3.000", "2k dollars")."""
    return _extract((_MONEY_PREFIX, _MONEY_SUFFIX), text, _money_from, " _money_ ")


def extract_bare_rent(text: str) -> tuple[Money | None, str]:
    """A rent without currency: "1200 per month", "at 1.5k", "charge 950" (not years or counts)."""

    def read(m: re.Match[str]) -> Money | None:
        money = _money_from(m)
        if money is None or not BARE_RENT_RANGE[0] <= money.amount <= BARE_RENT_RANGE[1]:
            return None
        per_month = m.re is _RENT_PER_MONTH
        year_like = money.amount.is_integer() and int(money.amount) in _YEARS and not m.group("k")
        return None if year_like and not per_month else money

    def placeholder(m: re.Match[str]) -> str:
        lead = m.groupdict().get("lead")
        return f" {lead} _money_ " if lead else " _money_ "

    return _extract((_RENT_PER_MONTH, _RENT_AFTER_VERB), text, read, placeholder)


def extract_currency_only(text: str) -> tuple[str | None, tuple[str, ...]]:
    """A currency asked for without an amount ("in euros", "in PLN"), and its kinds (as in `Money`)."""
    m = _CURRENCY_ONLY.search(text)
    if not m:
        return None, ()
    word = m.group("cur").lower()
    return _CURRENCY_WORDS.get(word), _CURRENCY_KINDS.get(word, ())


def regional_currency(currency: str | None, kinds: tuple[str, ...], local: tuple[str, str] | None) -> str | None:
    """The currency meant, given the place's own currency `local` (ISO code, GeoNames name) if known.

    "$" or "dollars" asked about a Canadian city is CAD; in a country without a dollar (or with no
    place at all) it stays `currency` (USD), and the answer then flags it as another currency.
    """
    if local is not None and local[1] in kinds:
        return local[0]
    return currency


def extract_size(text: str) -> tuple[float | None, str]:
    """Floor area in m² ("80 m²", "80sqm", "75 square metres", "900 sq ft" -> 83.6)."""

    def read(m: re.Match[str]) -> float | None:
        value = parse_amount(m.group("num"))
        if value is None or value <= 0:
            return None
        unit = m.group("unit").lower()
        if "f" in unit or unit == "sf":
            value *= SQFT_TO_SQM
        return float(round(value, 1))

    return _extract((_SIZE,), text, read, " _size_ ")


def extract_bedrooms(text: str) -> tuple[int | None, str]:
    """Bedrooms from "2-bed", "two-bedroom", "2BR", "2BHK", "2 bedrooms", "T2"; studio is 0."""

    def read(m: re.Match[str]) -> int | None:
        value = _number(m.group("n"))
        return int(value) if value is not None and value <= 20 and float(value).is_integer() else None

    return _extract((_BEDROOMS, _BEDROOMS_AFTER, _T_NOTATION), text, read, " _num_ bedroom ")


def extract_bathrooms(text: str) -> tuple[int | float | None, str]:
    """Bathrooms from "2 bath", "1.5 baths", "one bathroom", "two and a half baths"."""

    def read(m: re.Match[str]) -> int | float | None:
        value = _number(m.group("n"))
        return whole(value) if value is not None and 0 < value <= 20 else None

    return _extract((_BATHROOMS,), text, read, " _num_ bathroom ")


def extract_furnished(text: str) -> bool | None:
    """True for "furnished"/"fully furnished", False for "unfurnished"/"not furnished"."""
    if _UNFURNISHED.search(text):
        return False
    return True if _FURNISHED.search(text) else None


def extract_property_type(text: str) -> str | None:
    """The kind of property: apartment, house, condo, studio, room or commercial."""
    found: list[str] = []
    for m in _TYPE_RE.finditer(text):
        kind = _TYPE_WORDS[m.group().lower()]
        if kind == "room" and _NOT_A_ROOM_BEFORE.search(text[: m.start()]):
            continue
        found.append(kind)
    for kind in _TYPE_PRIORITY:
        if kind in found:
            return kind
    return found[0] if found else None
