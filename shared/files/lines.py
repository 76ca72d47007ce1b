"""The line format file registers' files are written in, and read back: pure.

One record per line, each ended by a line feed alone; fields separated by ``;``; a backslash
escapes the separator, itself and line breaks (``\\;`` ``\\\\`` ``\\n`` ``\\r``), and a character
the file's encoding cannot hold is written ``\\xXX``, ``\\uXXXX`` or ``\\UXXXXXXXX``. A header
line first (always ASCII), the rows, then a trailer ``T;<rows>;<SHA-256 of the row lines' bytes>``.
What the header and the rows hold is each register's (`services/<register>/format.py`); this is
the part they share, so a register's reader and writer, and its sandbox, agree by construction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Generic, TypeVar

from shared.files.register import FileHeader, FileRow
from shared.schedule import InvalidPeriodError, Period

SEPARATOR: Final = ";"
NEWLINE: Final = "\n"
ENCODINGS: Final = ("utf-8", "iso-8859-1")
CHUNK_BYTES: Final = 64 * 1024
ESCAPES: Final[Mapping[str, str]] = {"\\": "\\\\", SEPARATOR: "\\;", "\n": "\\n", "\r": "\\r"}
_UNESCAPES: Final = {"\\": "\\", SEPARATOR: SEPARATOR, "n": "\n", "r": "\r"}
_HEX_DIGITS: Final = {"x": 2, "u": 4, "U": 8}
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)
_BUILT_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_CHECKSUM = re.compile(r"[0-9a-f]{64}", re.ASCII)
NUMBER: Final = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)
"""A count or sequence from 1."""

H = TypeVar("H")
R = TypeVar("R")


class FileBuildError(ValueError):
    """The runtime handed render something no file can say (rows out of order, a wrong count,
    a row kind the register's file has not)."""


class FileFormatError(ValueError):
    """The file breaks the format: the register refuses it whole. `line` is 1-based (None: the
    file as a whole), `code` the register's error code."""

    def __init__(self, code: str, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{code}: {where}{reason}")
        self.code = code
        self.reason = reason
        self.line = line


# --- writing ------------------------------------------------------------------------------------


def escape(text: str, escapes: Mapping[str, str] = ESCAPES) -> str:
    """A field's text with the separator, backslash and line breaks (and any of `escapes`)
    escaped."""
    if not any(char in text for char in escapes):
        return text
    return "".join(escapes.get(char, char) for char in text)


def line(fields: Iterable[str]) -> str:
    """Fields (escaped already) as one line, LF included."""
    return SEPARATOR.join(fields) + NEWLINE


def encode(text: str, encoding: str) -> bytes:
    """Characters the encoding cannot hold are written as ``\\xXX``, ``\\uXXXX`` or
    ``\\UXXXXXXXX``."""
    return text.encode(encoding, errors="backslashreplace")


def built_at_text(moment: datetime) -> str:
    """``2027-02-01T00:00:00Z``: the cut-off in UTC, to the second."""
    if moment.tzinfo is None:
        raise FileBuildError("built_at has no zone: which clock is it on?")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_lines(
    header: FileHeader,
    header_line: str,
    rows: Iterable[FileRow],
    row_line: Callable[[FileRow], str],
    encoding: str,
) -> Iterator[bytes]:
    """A file's bytes in pieces of about 64 KiB: `header_line` (ASCII), each row's line in
    `encoding` (rows numbered 1, 2, 3 … in file order), the trailer."""
    if encoding not in ENCODINGS:
        raise FileBuildError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding}")
    yield encode(header_line, "ascii")  # the header is ASCII, always
    checksum, count, chunk = hashlib.sha256(), 0, bytearray()
    for row in rows:
        count += 1
        if row.number != count:
            raise FileBuildError(f"row {count} of {header.name} is numbered {row.number}")
        encoded = encode(row_line(row), encoding)
        checksum.update(encoded)
        chunk += encoded
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    if count != header.row_count:
        raise FileBuildError(f"{header.name} was built with {header.row_count} rows, got {count}")
    chunk += encode(line(["T", str(count), checksum.hexdigest()]), encoding)
    yield bytes(chunk)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadLines(Generic[H, R]):
    header: H
    rows: tuple[R, ...]
    checksum: str  # SHA-256 of the row lines' bytes, lower-case hex


def read_lines(
    data: bytes,
    read_header: Callable[[str], H],
    encoding_of: Callable[[H], str],
    read_row: Callable[[str, int, int], R],
) -> ReadLines[H, R]:
    """A whole file: `read_header(line)` of the first line (ASCII), `read_row(line, line
    number, row number)` of each row line in the header's encoding, the trailer checked;
    FileFormatError for the first thing wrong with it."""
    newline = NEWLINE.encode()
    if not data.endswith(newline):
        raise FileFormatError("FORMAT", "the file must end with a line feed (after the trailer)")
    raw_lines = data.split(newline)[:-1]
    if len(raw_lines) < 2:
        raise FileFormatError("FORMAT", "a file has at least a header and a trailer line")
    for index, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raise FileFormatError("FORMAT", "lines end with a line feed alone, not CR LF", index)
    header = read_header(decode(raw_lines[0], "ascii", 1))
    encoding = encoding_of(header)
    checksum = hashlib.sha256()
    rows: list[R] = []
    for index, raw in enumerate(raw_lines[1:-1], start=2):
        text = decode(raw, encoding, index)
        checksum.update(raw + newline)
        rows.append(read_row(text, index, len(rows) + 1))
    last = len(raw_lines)
    expected = _trailer(decode(raw_lines[-1], encoding, last), last, len(rows))
    if expected != checksum.hexdigest():
        raise FileFormatError(
            "KONTROLLSUMMA",
            f"the trailer's checksum {expected} is not the rows' SHA-256 {checksum.hexdigest()}",
            last,
        )
    return ReadLines(header, tuple(rows), checksum.hexdigest())


def unescape(text: str, line: int, extra: str = "") -> str:
    """A field's text: ``\\\\ \\; \\n \\r`` (and a backslash before any of `extra`) and
    ``\\xXX \\uXXXX \\UXXXXXXXX`` undone."""
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
        if code in _UNESCAPES or (code and code in extra):
            out.append(_UNESCAPES.get(code, code))
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


def split(text: str, separator: str = SEPARATOR) -> list[str]:
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
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        position += 1
    parts.append("".join(current))
    return parts


def decode(raw: bytes, encoding: str, line: int) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise FileFormatError(
            "TECKENKODNING", f"not {encoding.upper()} at byte {error.start}", line
        ) from None


def fields(text: str, count: int, code: str, line: int) -> list[str]:
    """The line's `count` fields (still escaped), or FileFormatError `code`."""
    found = split(text)
    if len(found) != count:
        raise FileFormatError(code, f"expected {count} fields, got {len(found)}", line)
    return found


def header_values(text: str, names: tuple[str, ...], register: str, version: str) -> dict[str, str]:
    """The header line's fields by name (unescaped), after the checks every header shares:
    ``H;<register>;<version>``, a known encoding, ``sekvens`` from 1 and ``ersatter`` from 2,
    ``skapad`` a moment in UTC, ``filnamn`` given."""
    values = dict(
        zip(names, (unescape(f, 1) for f in fields(text, len(names), "HUVUD", 1)), strict=True)
    )
    if values["posttyp"] != "H" or values["register"] != register:
        raise FileFormatError("HUVUD", f"the first line must start H;{register}", 1)
    if values["formatversion"] != version:
        raise FileFormatError(
            "HUVUD", f"format version {values['formatversion']} (this reads {version})", 1
        )
    if values["teckenkodning"].lower() not in ENCODINGS:
        raise FileFormatError("HUVUD", f"teckenkodning {values['teckenkodning']} is unknown", 1)
    if not NUMBER.fullmatch(values["sekvens"]):
        raise FileFormatError("HUVUD", f"sekvens must be a number from 1: {values['sekvens']}", 1)
    if not _BUILT_AT.fullmatch(values["skapad"]):
        raise FileFormatError("HUVUD", "skapad must be YYYY-MM-DDThh:mm:ssZ", 1)
    if (int(values["sekvens"]) == 1) != (values["ersatter"] == ""):
        raise FileFormatError("HUVUD", "ersatter names the file replaced, from sekvens 2 on", 1)
    if not values["filnamn"]:
        raise FileFormatError("HUVUD", "filnamn is required", 1)
    built_at(values["skapad"])
    return values


def built_at(text: str) -> datetime:
    """``skapad`` read back (its shape checked by `header_values`)."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise FileFormatError("HUVUD", f"skapad {text} is no moment", 1) from None


def period(text: str, code: str, line: int) -> Period:
    try:
        return Period.parse(text)
    except InvalidPeriodError as error:
        raise FileFormatError(code, f"period: {error}", line) from None


def row_prefix(found: list[str], line: int, expected: int) -> tuple[str, int]:
    """A row line's ``radnummer`` (the row's place), ``radnyckel`` and ``version`` checked:
    the record id (unescaped) and version."""
    if found[1] != str(expected):
        raise FileFormatError("RADNUMMER", f"radnummer {found[1]}, expected {expected}", line)
    if not NUMBER.fullmatch(found[3]) and found[3] != "0":
        raise FileFormatError("RAD", f"version must be a number: {found[3]}", line)
    record_id = unescape(found[2], line)
    if not record_id:
        raise FileFormatError("RAD", "radnyckel is required", line)
    return record_id, int(found[3])


def _trailer(text: str, line: int, rows: int) -> str:
    """The trailer's checksum, once its count is the rows'."""
    found = split(text)
    if found[0] != "T":
        raise FileFormatError("SLUT", "the last line must be the trailer (T;count;checksum)", line)
    fields(text, 3, "SLUT", line)
    if found[1] != str(rows):
        raise FileFormatError(
            "ANTAL", f"the trailer counts {found[1]} rows, the file has {rows}", line
        )
    if not _CHECKSUM.fullmatch(found[2]):
        raise FileFormatError("SLUT", "the checksum must be 64 lower-case hex digits", line)
    return found[2]
