"""VGPV's file: render a unit's month as header, rows and trailer, the same bytes every time. Pure.

The layout is documented in docs/vgpv-file.md; `services.vgpv.reading` reads it back. The lines
(``;``-separated, escapes, the trailer) are the file runtime's line format (`shared.files.lines`);
a list column's items are separated by ``,``, escaped within it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, Final

from services.vgpv.mapping import ROW_FIELDS
from shared.files.lines import (
    ESCAPES,
    FileBuildError,
    built_at_text,
    escape,
    line,
    render_lines,
)
from shared.files.register import FileHeader, FileKey, FileRow, RowKind

REGISTER: Final = "VGPV"
FORMAT_VERSION: Final = "1"
LIST_SEPARATOR: Final = ","
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
_LIST_ESCAPES: Final = {**ESCAPES, LIST_SEPARATOR: "\\,"}


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
    rows = iter(rows)
    first = next(rows, None)
    following = chain([first] if first is not None else [], rows)
    header_line = _header_line(header, first, encoding)
    yield from render_lines(header, header_line, following, row_line, encoding)


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
    return line(fields)


def _header_line(header: FileHeader, first: FileRow | None, encoding: str) -> str:
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
    return line(fields)


def _value(name: str, value: object) -> str:
    if value is None:
        return ""
    if name in LIST_FIELDS:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise FileBuildError(f"{name} must be a list, not {type(value).__name__}")
        return LIST_SEPARATOR.join(escape(str(item), _LIST_ESCAPES) for item in value)
    return escape(str(value))
