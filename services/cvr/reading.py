"""Read a CVR file back: header, rows and trailer, each error named by its line. Pure.

The register's sandbox judges uploads with it, tests compare it with what was rendered. It reads
the format only; what the rows say (ids, dates, the wait's days) is the register's to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.cvr.format import (
    FORMAT_VERSION,
    HEADER_FIELDS,
    REGISTER,
    ROW_FIELDS,
    ROW_LINE_FIELDS,
    ROW_LINE_KIND,
)
from shared.files.lines import (
    FileFormatError,
    built_at,
    fields,
    header_values,
    period,
    read_lines,
    row_prefix,
    split,
    unescape,
)
from shared.schedule import Period

__all__ = ["FileFormatError", "ReadFile", "ReadHeader", "ReadRow", "read"]


@dataclass(frozen=True)
class ReadHeader:
    name: str
    period: Period
    owner: str  # the reporting unit: HSA-id or kombika
    sequence: int
    replaces: str | None
    built_at: datetime
    encoding: str


@dataclass(frozen=True)
class ReadRow:
    line: int  # 1-based line number in the file
    number: int
    record_id: str
    record_version: int
    values: dict[str, str | None]  # every ROW_FIELDS key: its text, None for an empty field


@dataclass(frozen=True)
class ReadFile:
    header: ReadHeader
    rows: tuple[ReadRow, ...]
    checksum: str  # SHA-256 of the row lines' bytes, lower-case hex


def read(data: bytes) -> ReadFile:
    """Parse a whole file; FileFormatError for the first thing wrong with it."""
    found = read_lines(data, _header, lambda header: header.encoding, _row)
    return ReadFile(found.header, found.rows, found.checksum)


def _header(text: str) -> ReadHeader:
    values = header_values(text, HEADER_FIELDS, REGISTER, FORMAT_VERSION)
    if not values["enhet"]:
        raise FileFormatError("HUVUD", "enhet is required", 1)
    return ReadHeader(
        name=values["filnamn"],
        period=period(values["period"], "HUVUD", 1),
        owner=values["enhet"],
        sequence=int(values["sekvens"]),
        replaces=values["ersatter"] or None,
        built_at=built_at(values["skapad"]),
        encoding=values["teckenkodning"].lower(),
    )


def _row(text: str, line: int, expected: int) -> ReadRow:
    found = split(text)
    if found[0] != ROW_LINE_KIND:
        raise FileFormatError(
            "RAD", f"posttyp {found[0]!r} is not {ROW_LINE_KIND} (or the trailer T)", line
        )
    fields(text, len(ROW_LINE_FIELDS), "RAD", line)
    record_id, version = row_prefix(found, line, expected)
    values = {
        name: unescape(value, line) if value else None
        for name, value in zip(ROW_FIELDS, found[4:], strict=True)
    }
    return ReadRow(line, expected, record_id, version, values)
