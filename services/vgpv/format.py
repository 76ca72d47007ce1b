"""VGPV's file: render a unit's month as header, rows and trailer, the same bytes every time. Pure.

The layout is documented in docs/vgpv-file.md; `services.vgpv.reading` reads it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Final

from services.vgpv.mapping import ROW_FIELDS
from shared.files.register import FileHeader, FileKey, FileRow, RowKind

REGISTER: Final = "VGPV"
FORMAT_VERSION: Final = "1"
SEPARATOR: Final = ";"
LIST_SEPARATOR: Final = ","
NEWLINE: Final = "\n"
ENCODINGS: Final = ("utf-8", "iso-8859-1")
LINE_KINDS: Final[dict[RowKind, str]] = {"row": "R", "correction": "K", "cancellation": "M"}
HEADER_FIELDS: Final = (
    "posttyp",
    "register",
    "formatversion",
    "filnamn",
    "period",
    "enhet_hsaid",
    "ansvarsnummer",
    "vardval",
    "sekvens",
    "ersatter",
    "skapad",
    "teckenkodning",
)
ROW_LINE_FIELDS: Final = ("posttyp", "radnummer", "radnyckel", "version", "avser", *ROW_FIELDS)
LIST_FIELDS: Final = frozenset({"yrkeskategorier", "diagnoser", "atgarder"})
CHUNK_BYTES: Final = 64 * 1024
_ESCAPES: Final = {"\\": "\\\\", SEPARATOR: "\\;", "\n": "\\n", "\r": "\\r"}
_LIST_ESCAPES: Final = _ESCAPES | {LIST_SEPARATOR: "\\,"}


class FileBuildError(ValueError):
    """The runtime handed render something no file can say (rows out of order, a wrong count)."""


def file_name(key: FileKey, sequence: int) -> str:
    """``VGPV_<unit HSA-id>_<YYYYMM>_<sequence, 3 digits>.txt``: one name per unit, month and
    sequence, the register's idempotency key."""
    if sequence < 1:
        raise FileBuildError(f"a file's sequence counts from 1, not {sequence}")
    period = f"{key.period.year:04d}{key.period.month:02d}"
    return f"{REGISTER}_{key.owner}_{period}_{sequence:03d}.txt"


def render(header: FileHeader, rows: Iterable[FileRow], encoding: str = "utf-8") -> Iterator[bytes]:
    """The file's bytes in pieces of about 64 KiB, streamed from `rows` (in file order); the
    header takes the unit code and Vårdval area of the first row."""
    if encoding not in ENCODINGS:
        raise FileBuildError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding}")
    rows = iter(rows)
    first = next(rows, None)
    yield _header_line(header, first, encoding)
    checksum, count, chunk = hashlib.sha256(), 0, bytearray()
    for row in chain([first] if first is not None else [], rows):
        count += 1
        if row.number != count:
            raise FileBuildError(f"row {count} of {header.name} is numbered {row.number}")
        line = _encode(row_line(row), encoding)
        checksum.update(line)
        chunk += line
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    if count != header.row_count:
        raise FileBuildError(f"{header.name} was built with {header.row_count} rows, got {count}")
    chunk += _encode(_line(["T", str(count), checksum.hexdigest()]), encoding)
    yield bytes(chunk)


def row_line(row: FileRow) -> str:
    """One row as its line (without encoding), LF included."""
    if row.kind != "row" and row.corrects is None:
        raise FileBuildError(f"row {row.number}: a {row.kind} names the period it corrects")
    fields = [
        LINE_KINDS[row.kind],
        str(row.number),
        escape(row.record_id),
        str(row.record_version),
        str(row.corrects) if row.kind != "row" and row.corrects is not None else "",
    ]
    fields += [_value(name, row.values.get(name)) for name in ROW_FIELDS]
    return _line(fields)


def built_at_text(moment: datetime) -> str:
    """``2027-02-01T00:00:00Z``: the cut-off in UTC, to the second."""
    if moment.tzinfo is None:
        raise FileBuildError("built_at has no zone: which clock is it on?")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def escape(text: str, escapes: Mapping[str, str] = _ESCAPES) -> str:
    """A field's text with the separator, backslash and line breaks escaped."""
    if not any(char in text for char in escapes):
        return text
    return "".join(escapes.get(char, char) for char in text)


def _header_line(header: FileHeader, first: FileRow | None, encoding: str) -> bytes:
    values: Mapping[str, Any] = first.values if first is not None else {}
    fields = [
        "H",
        REGISTER,
        FORMAT_VERSION,
        escape(header.name),
        str(header.key.period),
        escape(header.key.owner),
        _value("ansvarsnummer", values.get("ansvarsnummer")),
        _value("vardval", values.get("vardval")),
        str(header.sequence),
        escape(header.replaces or ""),
        built_at_text(header.built_at),
        encoding.upper(),
    ]
    return _encode(_line(fields), "ascii")  # the header is ASCII whatever the encoding


def _value(name: str, value: object) -> str:
    if value is None:
        return ""
    if name in LIST_FIELDS:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise FileBuildError(f"{name} must be a list, not {type(value).__name__}")
        return LIST_SEPARATOR.join(escape(str(item), _LIST_ESCAPES) for item in value)
    return escape(str(value))


def _line(fields: list[str]) -> str:
    return SEPARATOR.join(fields) + NEWLINE


def _encode(line: str, encoding: str) -> bytes:
    """Characters the encoding cannot hold are written as ``\\uXXXX`` (``\\UXXXXXXXX``)."""
    return line.encode(encoding, errors="backslashreplace")
