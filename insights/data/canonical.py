"""Map a raw source frame onto the canonical schema and parse every value by its canonical type.

The flags of `leaseora ingest` become a `SourceMapping`: `--map CANONICAL=SOURCE` renames,
`--drop COLUMN` removes, `--set CANONICAL=VALUE` adds a constant column. A source column named like
a canonical column (case-insensitive) is mapped onto it without a flag. `size_sqft` may be mapped or
set like a canonical column: it is converted to `size_sqm`. Every other source column is kept as an
*extra feature*, typed as boolean, numeric or categorical text, under a snake_case name.

Parsing never raises on a bad cell: the cell becomes missing and the row gets a problem (a reason
naming the column and the value), which `insights.data.validate` turns into a rejected row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from insights.data.read import SOURCE_ROW
from insights.data.schema import COLUMNS, REQUIRED, SQFT_TO_SQM, Kind
from insights.errors import IngestError

#: pandas dtype of each canonical type.
DTYPES: dict[str, str] = {"str": "str", "float": "float64", "bool": "boolean", "datetime": "datetime64[us]"}

#: Cell values that mean "no value" in any column (compared lower-case, stripped).
MISSING_TOKENS = frozenset({"", "-", "--", "—", "–", "?", "n/a", "na", "nan", "none", "null", "nil", "#n/a", "<na>", "nat"})

TRUE_TOKENS = frozenset({
    "yes", "y", "t", "true", "1", "1.0", "on", "si", "sí", "sim", "ja", "oui", "tak",
    "acept", "accept", "accepted", "allowed", "furnished", "semi-furnished", "partly furnished", "partially furnished",
})
FALSE_TOKENS = frozenset({
    "no", "n", "f", "false", "0", "0.0", "off", "não", "nao", "nein", "non", "nie",
    "not acept", "not accept", "not accepted", "not allowed", "no pets", "not furnished", "unfurnished",
})

_SQFT = "size_sqft"
_NUMBER = re.compile(
    r"^(?P<sign>[-+\u2212])?\s*(?P<pre>[^\d\s.,+\-\u2212]{1,4})?\s*(?P<sign2>[-+\u2212])?\s*"
    r"(?P<num>\d[\d.,' \u00a0\u202f]*?)\s*(?P<post>%|[^\d\s.,][^\d]{0,7})?$"
)
_EU_EVIDENCE = re.compile(r"^\d{1,3}(\.\d{3}){2,}(,\d+)?$|^\d{1,3}(\.\d{3})+,\d+$|^\d+,(\d{1,2}|\d{4,})$")
_US_EVIDENCE = re.compile(r"^\d{1,3}(,\d{3}){2,}(\.\d+)?$|^\d{1,3}(,\d{3})+\.\d+$|^\d+\.(\d{1,2}|\d{4,})$")


@dataclass(frozen=True)
class SourceMapping:
    """How one source file maps onto the canonical schema (the `--kind/--map/--drop/--set` flags)."""

    kind: Kind
    mapping: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] | None = None
    """Columns that must be present; None: the kind's (`schema.REQUIRED`). Scoring a portfolio needs no rent."""


@dataclass
class Canonical:
    """A source frame mapped onto the canonical schema, with each row's parse problems."""

    kind: Kind
    frame: pd.DataFrame
    """Canonical columns (typed), then the extra columns; index: `source_row`."""
    extra_columns: list[str]
    """Names of the extra feature columns, in source order."""
    problems: dict[int, list[str]]
    """source_row -> reasons a value of that row could not be parsed."""
    columns_used: dict[str, str]
    """canonical or extra column -> the source column it came from."""


@dataclass(frozen=True)
class Parsed:
    """Parsed values of one column and the cells that held something unparseable."""

    values: pd.Series
    bad: pd.Series


# --------------------------------------------------------------------------- mapping


def canonicalise(raw: pd.DataFrame, spec: SourceMapping, *, file_name: str = "file") -> Canonical:
    """Map `raw` (a frame from `read_table`) onto the canonical columns of `spec.kind` and parse it.

    Raises `IngestError` when the mapping cannot apply: an unknown canonical name, a mapped source
    column that is not in the file, or a required canonical column with no source and no constant.
    """
    kind = Kind(spec.kind)
    columns = COLUMNS[kind]
    sources = _resolve_sources(raw, spec, columns, file_name)
    constants = _check_constants(spec, columns, sources)
    _check_required(raw, kind, sources, constants, spec, file_name)
    frame = pd.DataFrame(index=raw.index)
    problems: dict[int, list[str]] = {}
    for name, ctype in columns.items():
        frame[name] = _canonical_column(raw, name, ctype, sources, constants, problems)
    _apply_sqft(raw, frame, sources, constants, problems)
    extras = _extra_sources(raw, spec, sources)
    used = {name: source for name, source in sources.items()}
    extra_names: list[str] = []
    for source, name in _extra_names(extras, set(columns)).items():
        frame[name] = infer_extra(raw[source])
        extra_names.append(name)
        used[name] = source
    return Canonical(kind=kind, frame=frame, extra_columns=extra_names, problems=problems, columns_used=used)


def _resolve_sources(raw: pd.DataFrame, spec: SourceMapping, columns: dict[str, str], file_name: str) -> dict[str, str]:
    """canonical name (or size_sqft) -> source column, from `--map` flags and same-named columns."""
    known = set(columns) | {_SQFT}
    dropped = {name.strip() for name in spec.drop}
    sources: dict[str, str] = {}
    for canonical, source in spec.mapping.items():
        canonical = canonical.strip()
        if canonical not in known:
            raise IngestError(
                f"--map {canonical}={source}: '{canonical}' is not a canonical column of {spec.kind.value}; "
                f"known: {', '.join(sorted(known))}"
            )
        sources[canonical] = _find_column(raw, source.strip(), f"--map {canonical}={source}", file_name)
    taken = set(sources.values()) | dropped
    by_lower = {str(column).lower(): column for column in raw.columns if column not in taken}
    for canonical in known:
        if canonical not in sources and canonical not in spec.constants and canonical in by_lower:
            sources[canonical] = by_lower[canonical]
    if "size_sqm" in sources and _SQFT in sources:
        raise IngestError("both size_sqm and size_sqft are mapped: map only one of them")
    return sources


def _find_column(raw: pd.DataFrame, source: str, flag: str, file_name: str) -> str:
    if source in raw.columns:
        return source
    folded = [column for column in raw.columns if str(column).lower() == source.lower()]
    if len(folded) == 1:
        return str(folded[0])
    raise IngestError(
        f"{flag}: {file_name} has no column '{source}'; its columns are: {', '.join(map(str, raw.columns))}"
    )


def _check_constants(spec: SourceMapping, columns: dict[str, str], sources: dict[str, str]) -> dict[str, str]:
    known = set(columns) | {_SQFT}
    for canonical in spec.constants:
        if canonical not in known:
            raise IngestError(f"--set {canonical}=...: '{canonical}' is not a canonical column of {spec.kind.value}")
        if canonical in spec.mapping:
            raise IngestError(f"'{canonical}' is both mapped (--map) and set to a constant (--set): choose one")
    return {canonical: value for canonical, value in spec.constants.items()}


def _check_required(
    raw: pd.DataFrame, kind: Kind, sources: dict[str, str], constants: dict[str, str], spec: SourceMapping, file_name: str
) -> None:
    required = spec.required if spec.required is not None else REQUIRED[kind]
    missing = [name for name in required if name not in sources and name not in constants]
    if not missing:
        return
    expected = "; ".join(f"--map {name}=SOURCE or --set {name}=VALUE or a column named '{name}'" for name in missing)
    given = ", ".join(f"{c}={s}" for c, s in spec.mapping.items()) or "none"
    raise IngestError(
        f"{file_name}: missing required column(s) for {kind.value}: {', '.join(missing)} "
        f"(expected {expected}; mapping given: {given}; columns in the file: {', '.join(map(str, raw.columns))})",
        details={"missing": missing, "columns": [str(column) for column in raw.columns]},
    )


def _canonical_column(
    raw: pd.DataFrame, name: str, ctype: str, sources: dict[str, str], constants: dict[str, str], problems: dict[int, list[str]]
) -> pd.Series:
    if name in sources:
        parsed = PARSERS[ctype](raw[sources[name]])
        _note_problems(problems, name, ctype, raw[sources[name]], parsed.bad)
        return parsed.values
    if name in constants:
        return _constant(name, ctype, constants[name], raw.index)
    return pd.Series(pd.NA if ctype != "float" else np.nan, index=raw.index).astype(DTYPES[ctype])


def _constant(name: str, ctype: str, value: str, index: pd.Index) -> pd.Series:
    parsed = PARSERS[ctype](pd.Series([value], dtype="str"))
    if bool(parsed.bad.iloc[0]):
        raise IngestError(f"--set {name}={value}: not a valid {_TYPE_WORDS[ctype]}")
    return pd.Series([parsed.values.iloc[0]] * len(index), index=index).astype(DTYPES[ctype])


def _apply_sqft(
    raw: pd.DataFrame, frame: pd.DataFrame, sources: dict[str, str], constants: dict[str, str], problems: dict[int, list[str]]
) -> None:
    """Fill size_sqm from a square-feet column or constant (sizes are stored in square metres)."""
    if "size_sqm" not in frame.columns:
        return
    if _SQFT in sources:
        parsed = parse_numbers(raw[sources[_SQFT]])
        _note_problems(problems, _SQFT, "float", raw[sources[_SQFT]], parsed.bad)
        frame["size_sqm"] = parsed.values * SQFT_TO_SQM
    elif _SQFT in constants:
        frame["size_sqm"] = _constant(_SQFT, "float", constants[_SQFT], frame.index) * SQFT_TO_SQM


def _extra_sources(raw: pd.DataFrame, spec: SourceMapping, sources: dict[str, str]) -> list[str]:
    dropped = {name.strip() for name in spec.drop}
    used = set(sources.values())
    return [str(column) for column in raw.columns if column not in used and column not in dropped]


def _extra_names(sources: list[str], reserved: set[str]) -> dict[str, str]:
    """source column -> a unique snake_case name that does not clash with a canonical column."""
    names: dict[str, str] = {}
    taken = set(reserved) | {SOURCE_ROW, _SQFT}
    for source in sources:
        base = snake_case(source) or "column"
        name = base if base not in taken else f"{base}_extra"
        suffix = 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names[source] = name
    return names


def snake_case(name: str) -> str:
    """`hasParkingSpace` -> `has_parking_space`, `hoa (R$)` -> `hoa_r`: names safe as features and JSON keys."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


# --------------------------------------------------------------------------- value parsing


def _text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Stripped text of each cell and the mask of cells that mean 'no value'."""
    text = values.astype("str").str.strip()
    missing = text.isna() | text.str.lower().isin(MISSING_TOKENS)
    return text, missing


def _per_unique(values: pd.Series, parse: Callable[[pd.Series], Parsed]) -> Parsed:
    """Run a text parser once per distinct value (files repeat values a lot) and spread the result back.

    `parse` gets the distinct values as a str Series with a trailing missing entry, which the
    missing cells of `values` point at.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.Series([*uniques.astype("object").tolist(), None], dtype="object").astype("str")
    codes = np.where(codes < 0, len(distinct) - 1, codes)
    parsed = parse(distinct)
    result = parsed.values.iloc[codes].set_axis(values.index)
    bad = parsed.bad.iloc[codes].set_axis(values.index).astype("bool")
    return Parsed(result, bad)


def parse_numbers(values: pd.Series) -> Parsed:
    """Parse numbers written as `1234.5`, `$1,234.00`, `R$ 3.300`, `1 200`, `1.234,50`, `95%`; `-`/"" are missing.

    A value with one separator followed by exactly three digits is ambiguous (`1,234`, `3.300`): it
    is read as a thousands separator when the value carries a currency or unit (`R$ 3.300`) or when
    the rest of the column writes decimals the other way; a bare `3.300` stays 3.3.
    """
    if ptypes.is_bool_dtype(values.dtype) or ptypes.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
        finite = np.isfinite(numbers) | numbers.isna()
        return Parsed(numbers.where(finite), ~finite)
    return _per_unique(values, _parse_number_text)


def _parse_number_text(distinct: pd.Series) -> Parsed:
    text, missing = _text(distinct)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
    need = numbers.isna() & ~missing
    if need.any():
        # Plain floats parsed directly; the rest (and, in a column that writes decimal commas,
        # dot-grouped values such as `1.200`) are read by the separator rules.
        european = _writes_decimal_commas(text[~missing].tolist())
        if european:
            need |= text.str.fullmatch(r"\d{1,3}(\.\d{3})+").fillna(False).astype("bool")
        numbers = numbers.copy()
        numbers[need] = [_number(_NUMBER.match(value), european) for value in text[need].tolist()]
    numbers = numbers.where(np.isfinite(numbers))
    return Parsed(numbers, numbers.isna() & ~missing)


def _writes_decimal_commas(values: list[str]) -> bool:
    """True when more values of a column are unambiguously `1.234,5`-style than `1,234.5`-style."""
    matches = (_NUMBER.match(value) for value in values)
    cores = [_digits(match.group("num")) for match in matches if match]
    return sum(bool(_EU_EVIDENCE.match(c)) for c in cores) > sum(bool(_US_EVIDENCE.match(c)) for c in cores)


def _digits(num: str) -> str:
    return re.sub(r"[' \u00a0\u202f]", "", num)


def _number(match: re.Match[str] | None, european: bool) -> float:
    if match is None:
        return np.nan
    core = _digits(match.group("num"))
    decorated = bool(match.group("pre") or match.group("post"))
    cleaned = _separators(core, european, decorated)
    if cleaned is None:
        return np.nan
    negative = (match.group("sign") or match.group("sign2") or "") in ("-", "\u2212")
    accounting = (match.group("pre") or "").endswith("(") and (match.group("post") or "").startswith(")")
    sign = -1.0 if negative or accounting else 1.0
    try:
        return sign * float(cleaned)
    except ValueError:
        return np.nan


def _separators(core: str, european: bool, decorated: bool) -> str | None:
    """`core` (digits, dots, commas) as a plain float literal, or None when the grouping is broken."""
    dots, commas = core.count("."), core.count(",")
    if dots and commas:
        decimal = "." if core.rfind(".") > core.rfind(",") else ","
        group = "," if decimal == "." else "."
        if core.count(decimal) > 1:
            return None
        return core.replace(group, "").replace(decimal, ".")
    separator = "." if dots else "," if commas else ""
    if not separator:
        return core
    grouped = re.fullmatch(rf"\d{{1,3}}(\{separator}\d{{3}})+", core) is not None
    if core.count(separator) > 1:
        return core.replace(separator, "") if grouped else None
    as_thousands = grouped and (
        (separator == "." and (european or decorated)) or (separator == "," and not european)
    )
    return core.replace(separator, "") if as_thousands else core.replace(separator, ".")


def parse_booleans(values: pd.Series) -> Parsed:
    """Parse yes/no, y/n, t/f, true/false, 1/0, acept/not acept, furnished/not furnished/unfurnished, allowed/not allowed."""
    if ptypes.is_bool_dtype(values.dtype):
        return Parsed(values.astype("boolean"), pd.Series(False, index=values.index))
    if ptypes.is_numeric_dtype(values.dtype):
        values = values.astype("str")
    return _per_unique(values, _parse_boolean_text)


def _parse_boolean_text(distinct: pd.Series) -> Parsed:
    text, missing = _text(distinct)
    lowered = text.str.lower().str.replace(r"[\s_]+", " ", regex=True)
    result = pd.Series(pd.NA, index=distinct.index, dtype="boolean")
    result[lowered.isin(TRUE_TOKENS)] = True
    result[lowered.isin(FALSE_TOKENS)] = False
    return Parsed(result, result.isna() & ~missing)


# Formats tried in order on values that are not ISO 8601. Two-digit years are never guessed.
_DATE_FORMATS = (
    "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S",
    "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d-%b-%Y", "%Y-%m-%d %H:%M:%S.%f",
)
_ISO = re.compile(r"^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$")
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?$")


def parse_dates(values: pd.Series) -> Parsed:
    """Parse ISO dates and times, `2023-11` (first of the month), `31.12.2024`, `31/12/2024`, `12/31/2024`, `5 Nov 2024`.

    `a/b/YYYY` is read day-first or month-first from the column's unambiguous values (a day > 12);
    a value that could be either (`03/04/2024`) in a column without such evidence is rejected, as is
    any two-digit year. Time zones are converted to UTC; the result is naive UTC.
    """
    if ptypes.is_datetime64_any_dtype(values.dtype):
        result = values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values
        return Parsed(result.astype(DTYPES["datetime"]), pd.Series(False, index=values.index))
    return _per_unique(values, _parse_date_text)


def _parse_date_text(distinct: pd.Series) -> Parsed:
    text, missing = _text(distinct)
    result = pd.Series(pd.NaT, index=distinct.index, dtype="datetime64[us, UTC]")
    iso = text.str.match(_ISO.pattern).fillna(False).astype("bool")
    if iso.any():
        result[iso] = pd.to_datetime(text[iso], format="ISO8601", errors="coerce", utc=True)
    for fmt in _DATE_FORMATS:
        todo = result.isna() & ~missing
        if not todo.any():
            break
        result[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=True)
    todo = result.isna() & ~missing
    if todo.any():
        result[todo] = _slashed_dates(text[todo])
    naive = result.dt.tz_localize(None).astype(DTYPES["datetime"])
    return Parsed(naive, naive.isna() & ~missing)


def _slashed_dates(text: pd.Series) -> pd.Series:
    """`a/b/YYYY` or `a-b-YYYY`, day-first or month-first as the column's unambiguous values say."""
    parts = text.str.extract(_SLASHED.pattern)
    first, second = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    day, month = (second, first) if month_first and not day_first else (first, second)
    clear = (first == second) | (day_first != month_first)
    iso = parts[2] + "-" + _two_digits(month) + "-" + _two_digits(day) + " " + parts[3].fillna("00:00")
    return pd.to_datetime(iso.where(clear), format="mixed", errors="coerce", utc=True)


def _two_digits(numbers: pd.Series) -> pd.Series:
    return numbers.astype("Int64").astype("str").str.zfill(2)


def parse_strings(values: pd.Series) -> Parsed:
    """Strip text; empty cells and missing tokens become missing. Integral float ids lose their `.0`."""
    if ptypes.is_float_dtype(values.dtype) and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")
    text, missing = _text(values)
    return Parsed(text.where(~missing).astype("str"), pd.Series(False, index=values.index))


PARSERS: dict[str, Callable[[pd.Series], Parsed]] = {
    "str": parse_strings,
    "float": parse_numbers,
    "bool": parse_booleans,
    "datetime": parse_dates,
}
_TYPE_WORDS = {"str": "text", "float": "number", "bool": "yes/no value", "datetime": "date"}


def _note_problems(problems: dict[int, list[str]], name: str, ctype: str, raw: pd.Series, bad: pd.Series) -> None:
    if not bad.any():
        return
    for row, value in raw[bad].items():
        problems.setdefault(int(row), []).append(f"{name}: not a valid {_TYPE_WORDS[ctype]} ({_show(value)})")


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def infer_extra(values: pd.Series) -> pd.Series:
    """Type an extra column: boolean if every value is a yes/no word, numeric if every value is a number, else text."""
    if ptypes.is_bool_dtype(values.dtype) or ptypes.is_numeric_dtype(values.dtype):
        return parse_booleans(values).values if ptypes.is_bool_dtype(values.dtype) else parse_numbers(values).values
    if ptypes.is_datetime64_any_dtype(values.dtype):
        return parse_dates(values).values
    text, missing = _text(values)
    present = text[~missing]
    if present.empty:
        return pd.Series(np.nan, index=values.index, dtype="float64")
    lowered = present.str.lower()
    numeric = parse_numbers(values)
    words = lowered.isin(TRUE_TOKENS | FALSE_TOKENS) & ~lowered.isin({"1", "0", "1.0", "0.0"})
    if bool(words.all()):
        return parse_booleans(values).values
    if not numeric.bad.any():
        return numeric.values
    return text.where(~missing).astype("str")


# --------------------------------------------------------------------------- hashing


def row_hashes(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.Series:
    """sha256 of each row's canonical JSON (see `json_objects`) over `columns` (default: all).

    Leaving missing values out keeps hashes stable when a new, empty extra column appears; the same
    content read from CSV or Parquet, or from a renamed file, hashes the same.
    """
    texts = json_objects(frame, columns if columns is not None else frame.columns)
    return pd.Series([hashlib.sha256(text.encode()).hexdigest() for text in texts], index=frame.index, dtype="str")


def json_objects(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Each row as compact JSON text: sorted keys, missing values left out, integral floats as integers.

    Built column by column from each distinct value's encoding, which is far faster than
    `json.dumps` per row on files of 100k rows.
    """
    names = sorted(columns)
    if not names:
        return ["{}"] * len(frame)
    cells = [_json_cells(frame[name], json.dumps(name) + ":") for name in names]
    return ["{" + ",".join(cell for cell in row if cell) + "}" for row in zip(*cells, strict=True)]


def _json_cells(values: pd.Series, key: str) -> list[str | None]:
    """Each cell as `"key":<JSON literal>` (None when missing), encoded once per distinct value."""
    if ptypes.is_datetime64_any_dtype(values.dtype):
        encoded = values.dt.strftime('"%Y-%m-%dT%H:%M:%S"')
        return [key + cell if isinstance(cell, str) else None for cell in encoded.tolist()]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # One extra slot at the end for missing cells: code -1 picks it.
    encoded = np.array([key + _json_value(value) for value in uniques] + [None], dtype=object)
    return encoded[codes].tolist()


def _json_value(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return repr(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    return json.dumps(str(value), ensure_ascii=False)
