"""Read a VGPV file back: header, rows and trailer, each error named by its line. Pure.

The register's sandbox judges uploads with it, tests compare it with what was rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from services.vgpv.format import (
    FORMAT_VERSION,
    HEADER_FIELDS,
    LINE_KINDS,
    LIST_FIELDS,
    LIST_SEPARATOR,
    REGISTER,
    ROW_LINE_FIELDS,
)
from services.vgpv.mapping import ROW_FIELDS
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
from shared.files.register import RowKind
from shared.schedule import Period

__all__ = ["FileFormatError", "ReadFile", "ReadHeader", "ReadRow", "read"]

KINDS: Final[dict[str, RowKind]] = {letter: kind for kind, letter in LINE_KINDS.items()}


@dataclass(frozen=True)
class ReadHeader:
    name: str
    period: Period
    unit_hsa_id: str
    unit_code: str
    area: str
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
    kind: RowKind
    corrects: Period | None
    values: dict[str, Any]  # as a Placement's: lists for the list columns, None for empty


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
    if not values["enhet_hsaid"]:
        raise FileFormatError("HUVUD", "enhet_hsaid is required", 1)
    return ReadHeader(
        name=values["filnamn"],
        period=period(values["period"], "HUVUD", 1),
        unit_hsa_id=values["enhet_hsaid"],
        unit_code=values["ansvarsnummer"],
        area=values["vardval"],
        sequence=int(values["sekvens"]),
        replaces=values["ersatter"] or None,
        built_at=built_at(values["skapad"]),
        encoding=values["teckenkodning"].lower(),
    )


def _row(text: str, line: int, expected: int) -> ReadRow:
    found = split(text)
    kind = KINDS.get(found[0])
    if kind is None:
        raise FileFormatError(
            "RAD", f"posttyp {found[0]!r} is not R, K or M (or the trailer T)", line
        )
    fields(text, len(ROW_LINE_FIELDS), "RAD", line)
    record_id, version = row_prefix(found, line, expected)
    corrects = period(found[4], "RAD", line) if kind != "row" else None
    if kind == "row" and found[4]:
        raise FileFormatError("RAD", "a row of the period itself corrects no period", line)
    values: dict[str, Any] = {}
    for name, value in zip(ROW_FIELDS, found[5:], strict=True):
        if name in LIST_FIELDS:
            items = split(value, LIST_SEPARATOR) if value else []
            values[name] = [unescape(item, line, LIST_SEPARATOR) for item in items]
        else:
            values[name] = unescape(value, line, LIST_SEPARATOR) if value else None
    return ReadRow(line, expected, record_id, version, kind, corrects, values)
