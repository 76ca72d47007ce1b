"""Read a VGPV file back: header, rows and trailer, each error named by its line. Pure.

The register's sandbox judges uploads with it, tests compare it with what was rendered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from services.vgpv.format import (
    ENCODINGS,
    FORMAT_VERSION,
    HEADER_FIELDS,
    LINE_KINDS,
    LIST_FIELDS,
    LIST_SEPARATOR,
    NEWLINE,
    REGISTER,
    ROW_LINE_FIELDS,
    SEPARATOR,
)
from services.vgpv.mapping import ROW_FIELDS
from shared.files.register import RowKind
from shared.schedule import InvalidPeriodError, Period

KINDS: Final[dict[str, RowKind]] = {letter: kind for kind, letter in LINE_KINDS.items()}
_UNESCAPES: Final = {"\\": "\\", ";": ";", ",": ",", "n": "\n", "r": "\r"}
_HEX_DIGITS: Final = {"x": 2, "u": 4, "U": 8}
_BUILT_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_NUMBER = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)


class FileFormatError(ValueError):
    """The file breaks the format: the register refuses it whole. `line` is 1-based (None: the
    file as a whole), `code` the register's error code."""

    def __init__(self, code: str, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{code}: {where}{reason}")
        self.code = code
        self.reason = reason
        self.line = line


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
    if not data.endswith(NEWLINE.encode()):
        raise FileFormatError("FORMAT", "the file must end with a line feed (after the trailer)")
    raw_lines = data.split(NEWLINE.encode())[:-1]
    if len(raw_lines) < 2:
        raise FileFormatError("FORMAT", "a file has at least a header and a trailer line")
    for index, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raise FileFormatError("FORMAT", "lines end with a line feed alone, not CR LF", index)
    header = _header(_decode(raw_lines[0], "ascii", 1))
    checksum = hashlib.sha256()
    rows: list[ReadRow] = []
    for index, raw in enumerate(raw_lines[1:-1], start=2):
        line = _decode(raw, header.encoding, index)
        checksum.update(raw + NEWLINE.encode())
        rows.append(_row(line, index, len(rows) + 1))
    last = len(raw_lines)
    expected = _trailer(_decode(raw_lines[-1], header.encoding, last), last, rows)
    if expected != checksum.hexdigest():
        raise FileFormatError(
            "KONTROLLSUMMA",
            f"the trailer's checksum {expected} is not the rows' SHA-256 {checksum.hexdigest()}",
            len(raw_lines),
        )
    return ReadFile(header, tuple(rows), checksum.hexdigest())


def unescape(text: str, line: int) -> str:
    """A field's text: ``\\\\ \\; \\, \\n \\r`` and ``\\xXX \\uXXXX \\UXXXXXXXX`` undone."""
    if "\\" not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        code = text[position + 1 : position + 2]
        if code in _UNESCAPES:
            out.append(_UNESCAPES[code])
            position += 2
        elif code in _HEX_DIGITS:
            digits = text[position + 2 : position + 2 + _HEX_DIGITS[code]]
            if len(digits) != _HEX_DIGITS[code] or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise FileFormatError("FORMAT", f"a broken escape \\{code}{digits}", line)
            out.append(chr(int(digits, 16)))
            position += 2 + len(digits)
        else:
            raise FileFormatError("FORMAT", f"an unknown escape \\{code}", line)
    return "".join(out)


def split(text: str, separator: str) -> list[str]:
    """`text` split on the separators no backslash escapes (the parts still escaped)."""
    parts, current, position = [], [], 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            current.append(text[position : position + 2])
            position += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        position += 1
    parts.append("".join(current))
    return parts


def _decode(raw: bytes, encoding: str, line: int) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise FileFormatError(
            "TECKENKODNING", f"not {encoding.upper()} at byte {error.start}", line
        ) from None


def _fields(line: str, count: int, code: str, number: int) -> list[str]:
    fields = split(line, SEPARATOR)
    if len(fields) != count:
        raise FileFormatError(code, f"expected {count} fields, got {len(fields)}", number or None)
    return fields


def _header(line: str) -> ReadHeader:
    fields = _fields(line, len(HEADER_FIELDS), "HUVUD", 1)
    values = dict(zip(HEADER_FIELDS, (unescape(f, 1) for f in fields), strict=True))
    if values["posttyp"] != "H" or values["register"] != REGISTER:
        raise FileFormatError("HUVUD", f"the first line must start H;{REGISTER}", 1)
    if values["formatversion"] != FORMAT_VERSION:
        raise FileFormatError(
            "HUVUD", f"format version {values['formatversion']} (this reads {FORMAT_VERSION})", 1
        )
    encoding = values["teckenkodning"].lower()
    if encoding not in ENCODINGS:
        raise FileFormatError("HUVUD", f"teckenkodning {values['teckenkodning']} is unknown", 1)
    if not _NUMBER.fullmatch(values["sekvens"]):
        raise FileFormatError("HUVUD", f"sekvens must be a number from 1: {values['sekvens']}", 1)
    if not _BUILT_AT.fullmatch(values["skapad"]):
        raise FileFormatError("HUVUD", "skapad must be YYYY-MM-DDThh:mm:ssZ", 1)
    if not values["filnamn"] or not values["enhet_hsaid"]:
        raise FileFormatError("HUVUD", "filnamn and enhet_hsaid are required", 1)
    sequence = int(values["sekvens"])
    if (sequence == 1) != (values["ersatter"] == ""):
        raise FileFormatError("HUVUD", "ersatter names the file replaced, from sekvens 2 on", 1)
    return ReadHeader(
        name=values["filnamn"],
        period=_period(values["period"], "HUVUD", 1),
        unit_hsa_id=values["enhet_hsaid"],
        unit_code=values["ansvarsnummer"],
        area=values["vardval"],
        sequence=sequence,
        replaces=values["ersatter"] or None,
        built_at=datetime.strptime(values["skapad"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        encoding=encoding,
    )


def _row(line: str, number: int, expected: int) -> ReadRow:
    fields = split(line, SEPARATOR)
    kind = KINDS.get(fields[0])
    if kind is None:
        raise FileFormatError(
            "RAD", f"posttyp {fields[0]!r} is not R, K or M (or the trailer T)", number
        )
    _fields(line, len(ROW_LINE_FIELDS), "RAD", number)
    if fields[1] != str(expected):
        raise FileFormatError("RADNUMMER", f"radnummer {fields[1]}, expected {expected}", number)
    if not _NUMBER.fullmatch(fields[3]) and fields[3] != "0":
        raise FileFormatError("RAD", f"version must be a number: {fields[3]}", number)
    corrects = _period(fields[4], "RAD", number) if kind != "row" else None
    if kind == "row" and fields[4]:
        raise FileFormatError("RAD", "a row of the period itself corrects no period", number)
    values: dict[str, Any] = {}
    for name, text in zip(ROW_FIELDS, fields[5:], strict=True):
        if name in LIST_FIELDS:
            values[name] = (
                [unescape(i, number) for i in split(text, LIST_SEPARATOR)] if text else []
            )
        else:
            values[name] = unescape(text, number) if text else None
    record_id = unescape(fields[2], number)
    if not record_id:
        raise FileFormatError("RAD", "radnyckel is required", number)
    return ReadRow(number, expected, record_id, int(fields[3]), kind, corrects, values)


def _trailer(line: str, number: int, rows: list[ReadRow]) -> str:
    """The trailer's checksum, once its count is the rows'."""
    fields = split(line, SEPARATOR)
    if fields[0] != "T":
        raise FileFormatError(
            "SLUT", "the last line must be the trailer (T;count;checksum)", number
        )
    _fields(line, 3, "SLUT", number)
    if fields[1] != str(len(rows)):
        raise FileFormatError(
            "ANTAL", f"the trailer counts {fields[1]} rows, the file has {len(rows)}", number
        )
    if not re.fullmatch(r"[0-9a-f]{64}", fields[2]):
        raise FileFormatError("SLUT", "the checksum must be 64 lower-case hex digits", number)
    return fields[2]


def _period(text: str, code: str, line: int) -> Period:
    try:
        return Period.parse(text)
    except InvalidPeriodError as error:
        raise FileFormatError(code, f"period: {error}", line) from None
