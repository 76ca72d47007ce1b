"""Read a CVR file back: header, rows and trailer, each error named by its line. Pure.

The register's sandbox judges uploads with it, tests compare it with what was rendered. It reads
the format only; what the rows say (ids, dates, the wait's days) is the register's to judge.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from services.cvr.format import (
    ENCODINGS,
    FORMAT_VERSION,
    HEADER_FIELDS,
    NEWLINE,
    REGISTER,
    ROW_FIELDS,
    ROW_LINE_FIELDS,
    ROW_LINE_KIND,
    SEPARATOR,
)
from shared.schedule import InvalidPeriodError, Period

_UNESCAPES: Final = {"\\": "\\", ";": ";", "n": "\n", "r": "\r"}
_HEX_DIGITS: Final = {"x": 2, "u": 4, "U": 8}
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)
_BUILT_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_NUMBER = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)
_CHECKSUM = re.compile(r"[0-9a-f]{64}", re.ASCII)


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
    newline = NEWLINE.encode()
    if not data.endswith(newline):
        raise FileFormatError("FORMAT", "the file must end with a line feed (after the trailer)")
    raw_lines = data.split(newline)[:-1]
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
        checksum.update(raw + newline)
        rows.append(_row(line, index, len(rows) + 1))
    last = len(raw_lines)
    expected = _trailer(_decode(raw_lines[-1], header.encoding, last), last, len(rows))
    if expected != checksum.hexdigest():
        raise FileFormatError(
            "KONTROLLSUMMA",
            f"the trailer's checksum {expected} is not the rows' SHA-256 {checksum.hexdigest()}",
            last,
        )
    return ReadFile(header, tuple(rows), checksum.hexdigest())


def unescape(text: str, line: int) -> str:
    """A field's text: ``\\\\ \\; \\n \\r`` and ``\\xXX \\uXXXX \\UXXXXXXXX`` undone."""
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
            if len(digits) != _HEX_DIGITS[code] or not _HEX.fullmatch(digits):
                raise FileFormatError("FORMAT", f"a broken escape \\{code}{digits}", line)
            try:
                out.append(chr(int(digits, 16)))
            except (ValueError, OverflowError):
                raise FileFormatError("FORMAT", f"no character \\{code}{digits}", line) from None
            position += 2 + len(digits)
        else:
            raise FileFormatError("FORMAT", f"an unknown escape \\{code}", line)
    return "".join(out)


def split(text: str) -> list[str]:
    """`text` split on the separators no backslash escapes (the parts still escaped)."""
    parts: list[str] = []
    current: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            current.append(text[position : position + 2])
            position += 2
            continue
        if char == SEPARATOR:
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
    fields = split(line)
    if len(fields) != count:
        raise FileFormatError(code, f"expected {count} fields, got {len(fields)}", number)
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
    if not values["filnamn"] or not values["enhet"]:
        raise FileFormatError("HUVUD", "filnamn and enhet are required", 1)
    sequence = int(values["sekvens"])
    if (sequence == 1) != (values["ersatter"] == ""):
        raise FileFormatError("HUVUD", "ersatter names the file replaced, from sekvens 2 on", 1)
    try:
        built_at = datetime.strptime(values["skapad"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise FileFormatError("HUVUD", f"skapad {values['skapad']} is no moment", 1) from None
    return ReadHeader(
        name=values["filnamn"],
        period=_period(values["period"], 1),
        owner=values["enhet"],
        sequence=sequence,
        replaces=values["ersatter"] or None,
        built_at=built_at,
        encoding=encoding,
    )


def _row(line: str, number: int, expected: int) -> ReadRow:
    fields = split(line)
    if fields[0] != ROW_LINE_KIND:
        raise FileFormatError(
            "RAD", f"posttyp {fields[0]!r} is not {ROW_LINE_KIND} (or the trailer T)", number
        )
    _fields(line, len(ROW_LINE_FIELDS), "RAD", number)
    if fields[1] != str(expected):
        raise FileFormatError("RADNUMMER", f"radnummer {fields[1]}, expected {expected}", number)
    if not _NUMBER.fullmatch(fields[3]) and fields[3] != "0":
        raise FileFormatError("RAD", f"version must be a number: {fields[3]}", number)
    record_id = unescape(fields[2], number)
    if not record_id:
        raise FileFormatError("RAD", "radnyckel is required", number)
    values = {
        name: unescape(text, number) if text else None
        for name, text in zip(ROW_FIELDS, fields[4:], strict=True)
    }
    return ReadRow(number, expected, record_id, int(fields[3]), values)


def _trailer(line: str, number: int, rows: int) -> str:
    """The trailer's checksum, once its count is the rows'."""
    fields = split(line)
    if fields[0] != "T":
        raise FileFormatError(
            "SLUT", "the last line must be the trailer (T;count;checksum)", number
        )
    _fields(line, 3, "SLUT", number)
    if fields[1] != str(rows):
        raise FileFormatError(
            "ANTAL", f"the trailer counts {fields[1]} rows, the file has {rows}", number
        )
    if not _CHECKSUM.fullmatch(fields[2]):
        raise FileFormatError("SLUT", "the checksum must be 64 lower-case hex digits", number)
    return fields[2]


def _period(text: str, line: int) -> Period:
    try:
        return Period.parse(text)
    except InvalidPeriodError as error:
        raise FileFormatError("HUVUD", f"period: {error}", line) from None
