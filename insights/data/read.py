"""Read a source file (CSV, CSV.gz or Parquet) into a frame of raw values.

CSV cells are read as text, exactly as written (an empty cell is ""), so that parsing is done once,
by canonical type, in `insights.data.canonical`, and a rejected row can be reported with the values
the user actually wrote. Parquet keeps its own column types.

Decisions:
- Format: Parquet by its magic bytes (`PAR1`) or a `.parquet`/`.pq` suffix; gzip by its magic bytes
  (so a misnamed `.csv` that is gzipped still reads); everything else is treated as CSV.
- Delimiter: comma, semicolon or tab, chosen as the one that splits the header into the most fields
  and gives the same field count on the first lines.
- Encoding: UTF-8 first (with or without BOM); UTF-16 when the file starts with its BOM. A file that is not UTF-8 is decoded as cp1252 (the
  Windows superset of Latin-1 that spreadsheets write in Western Europe and the Americas), or as
  Latin-1 when cp1252 cannot decode it either; `RawTable.warnings` says so. Binary junk is refused
  before any decoding is attempted, so the fallback never turns random bytes into "text".
- Malformed lines (more fields than the header) do not stop the read: they are reported in
  `RawTable.bad_lines` and become rejected rows.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from insights.errors import IngestError

#: Name of each row's number in the source: its line (header = 1, first data row = 2), as long as no
#: quoted cell spans several lines.
SOURCE_ROW = "source_row"

_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_DELIMITERS = (",", ";", "\t")
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 20
_BAD_LINE = re.compile(r"Skipping line (\d+): (.+)")


@dataclass
class RawTable:
    """A source file's rows as read, before any parsing."""

    frame: pd.DataFrame
    """One column per source column; CSV cells are text ("" when empty). Index: `source_row`."""
    format: str
    """"csv", "csv.gz" or "parquet"."""
    encoding: str | None = None
    """Text encoding used for CSV ("utf-8", "cp1252" or "latin-1"); None for Parquet."""
    delimiter: str | None = None
    """Delimiter of a CSV file."""
    bad_lines: dict[int, str] = field(default_factory=dict)
    """Malformed CSV lines that could not be split into the header's columns: line number -> why."""
    warnings: list[str] = field(default_factory=list)
    """Things the reader had to guess (an encoding fallback)."""


def read_table(path: str | Path) -> RawTable:
    """Read `path` (CSV, CSV.gz or Parquet) into a `RawTable`; raise `IngestError` if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(f"{path.name}: the file is empty")
    if data.startswith(_PARQUET_MAGIC) or path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, data)
    compressed = data.startswith(_GZIP_MAGIC)
    if compressed:
        data = _gunzip(path, data)
    table = _read_csv(path, data)
    table.format = "csv.gz" if compressed else "csv"
    return table


def _gunzip(path: Path, data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path.name}: not a valid gzip file ({exc})") from exc


def _read_parquet(path: Path, data: bytes) -> RawTable:
    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise IngestError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    if frame.empty:
        raise IngestError(f"{path.name}: the Parquet file has no rows")
    frame.columns = [str(column).strip() for column in frame.columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2, name=SOURCE_ROW)
    return RawTable(frame=frame, format="parquet")


def _read_csv(path: Path, data: bytes) -> RawTable:
    if data.startswith(_PARQUET_MAGIC):
        raise IngestError(f"{path.name}: a gzipped Parquet file is not supported; decompress it first")
    if _looks_binary(data) and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise IngestError(f"{path.name}: not a CSV or Parquet file (binary content)")
    text, encoding, notes = _decode(path, data)
    if not text.strip():
        raise IngestError(f"{path.name}: the file is empty")
    delimiter = _sniff_delimiter(text)
    frame, bad_lines = _parse_csv(path, text, delimiter)
    return RawTable(frame=frame, format="csv", encoding=encoding, delimiter=delimiter, bad_lines=bad_lines, warnings=notes)


def _looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any 8-bit encoding: NULs or many control characters."""
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 13, 12))
    return controls > max(2, len(sample) // 100)


def _decode(path: Path, data: bytes) -> tuple[str, str, list[str]]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16", []  # Excel's "Unicode text" export
        except UnicodeDecodeError as exc:
            raise IngestError(f"{path.name}: broken UTF-16 text (byte {exc.start})") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8", []
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        note = f"{path.name}: not UTF-8 (invalid {where}); read as {encoding}"
        warnings.warn(note, stacklevel=3)
        return text, encoding, [note]
    raise IngestError(f"{path.name}: cannot decode the file as text")  # unreachable: latin-1 decodes any byte


def _sniff_delimiter(text: str) -> str:
    """The delimiter among comma, semicolon and tab that splits the first lines most consistently."""
    lines = text[:_SNIFF_BYTES].splitlines()[:_SNIFF_LINES]
    best, best_score = ",", (0, 0)
    for delimiter in _DELIMITERS:
        rows = list(csv.reader(lines, delimiter=delimiter))
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(1 for row in rows[1:] if len(row) == width)
        score = (consistent, width) if width > 1 else (0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _parse_csv(path: Path, text: str, delimiter: str) -> tuple[pd.DataFrame, dict[int, str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                sep=delimiter,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skipinitialspace=False,
                on_bad_lines="warn",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise IngestError(f"{path.name}: not a readable CSV file ({exc})") from exc
    bad_lines = _bad_lines(caught)
    frame.columns = [str(column).strip() for column in frame.columns]
    frame = _check_header(path, frame)
    if frame.empty and not bad_lines:
        raise IngestError(f"{path.name}: the file has a header but no data rows")
    frame.index = pd.Index(_line_numbers(len(frame), bad_lines), name=SOURCE_ROW)
    return frame, bad_lines


def _bad_lines(caught: list[warnings.WarningMessage]) -> dict[int, str]:
    found: dict[int, str] = {}
    for message in caught:
        for match in _BAD_LINE.finditer(str(message.message)):
            found[int(match.group(1))] = f"malformed line: {match.group(2).strip()}"
    return found


def _line_numbers(count: int, bad_lines: dict[int, str]) -> list[int]:
    """Source line of each kept row: lines 2, 3, ... without the skipped malformed ones."""
    numbers: list[int] = []
    line = 2
    while len(numbers) < count:
        if line not in bad_lines:
            numbers.append(line)
        line += 1
    return numbers


def _check_header(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Drop empty unnamed columns (a trailing delimiter on every line); refuse other header defects."""
    unnamed = [column for column in frame.columns if not column or column.startswith("Unnamed:")]
    empty = [column for column in unnamed if not frame[column].str.strip().astype("bool").any()]
    frame = frame.drop(columns=empty)
    blank = [i + 1 for i, column in enumerate(frame.columns) if not column or column.startswith("Unnamed:")]
    if blank:
        raise IngestError(f"{path.name}: the header has empty column names (at positions {blank})")
    stripped = [re.sub(r"\.\d+$", "", column) for column in frame.columns]
    duplicated = sorted({base for base, column in zip(stripped, frame.columns, strict=True) if base != column and base in frame.columns})
    if duplicated:
        raise IngestError(f"{path.name}: duplicated column names in the header: {', '.join(duplicated)}")
    return frame
