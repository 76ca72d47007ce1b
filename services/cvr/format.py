"""CVR's file: a reporting unit's waiting-list entries of one period as header, rows and trailer,
the same bytes every time. Pure.

The layout is documented in docs/cvr-file.md; `services.cvr.reading` reads it back. A row's
figures that depend on the cut-off (`garanti_start`, `pvv_dagar`, `mov`, `vantedagar`) are
counted here, from the row's dates and exception periods (`services.cvr.waits`). The lines
(``;``-separated, escapes, the trailer with the rows' count and SHA-256) are the file runtime's
line format (`shared.files.lines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, Final, get_args

from services.cvr.mapping import WAIT_KINDS
from services.cvr.waits import wait_figures
from shared.contracts.care_wait import RemovalReason
from shared.files.lines import (
    FileBuildError,
    built_at_text,
    escape,
    line,
    render_lines,
)
from shared.files.register import FileHeader, FileKey, FileRow
from shared.identifiers import PatientIdType
from shared.schedule import Period

REGISTER: Final = "CVR"
FORMAT_VERSION: Final = "1"
ROW_LINE_KIND: Final = "R"
HEADER_FIELDS: Final = (
    "posttyp",
    "register",
    "formatversion",
    "filnamn",
    "period",
    "enhet",
    "sekvens",
    "ersatter",
    "skapad",
    "teckenkodning",
)
ROW_FIELDS: Final = (
    "status",
    "idtyp",
    "personid",
    "enhet",
    "cvr_kod",
    "vantetyp",
    "prioritet",
    "vardgaranti",
    "remissdatum",
    "beslutsdatum",
    "bokningsdatum",
    "bokad_till",
    "genomford",
    "avford",
    "avford_orsak",
    "garanti_start",
    "pvv_dagar",
    "mov",
    "vantedagar",
)
"""A row's `values` keys, in the order of the row line's fields after its prefix."""
ROW_LINE_FIELDS: Final = ("posttyp", "radnummer", "radnyckel", "version", *ROW_FIELDS)
DATE_FIELDS: Final = frozenset(
    {
        "remissdatum",
        "beslutsdatum",
        "bokningsdatum",
        "bokad_till",
        "genomford",
        "avford",
        "garanti_start",
    }
)
DAY_FIELDS: Final = frozenset({"pvv_dagar", "vantedagar"})

WAITING: Final = "V"  # still waiting at the cut-off
COMPLETED: Final = "G"  # genomförd: the wait ended in the care waited for
REMOVED: Final = "A"  # avförd: removed from the list without that care
STATUSES: Final = (WAITING, COMPLETED, REMOVED)
ID_TYPES: Final = tuple(str(kind) for kind in PatientIdType)
"""The contract's patient id types, as they are: PNR, SNR, RESERVE_SLL, RESERVE_VGR, NRID."""
WAIT_KIND_OF: Final[Mapping[str, str]] = {code: kind for kind, code in WAIT_KINDS.items()}
"""`vantetyp` (forstabesok, undersokning, behandling, operation) → the contract's wait kind."""
REMOVAL_REASONS: Final = get_args(RemovalReason)
"""`avford_orsak`: the contract's removal reasons, as they are."""
FIGURES: Final = ("garanti_start", "pvv_dagar", "mov", "vantedagar")
"""The row fields counted at the cut-off (`services.cvr.waits`), not carried by a placement."""
YES: Final = "J"
NO: Final = "N"
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", re.ASCII)


def file_name(key: FileKey, sequence: int) -> str:
    """``CVR_<owner>_<period>_<sequence, 3 digits>.txt``: the owner is the reporting unit's
    HSA-id or kombika (no spaces), the period its `str` without dashes (``202701``; a daily
    period ``20270115``). One name per owner, period and sequence: the register's idempotency
    key."""
    if sequence < 1:
        raise FileBuildError(f"a file's sequence counts from 1, not {sequence}")
    if sequence > 999:
        raise FileBuildError(f"a file's sequence has 3 digits: {sequence} is too many files")
    if not _OWNER.fullmatch(key.owner):
        raise FileBuildError(
            f"the owner {key.owner!r} cannot stand in a file name (an HSA-id or a kombika "
            f"without spaces)"
        )
    return f"{REGISTER}_{key.owner}_{period_text(key.period)}_{sequence:03d}.txt"


def period_text(period: Period) -> str:
    """The period as the file name writes it: its `str` without the dashes."""
    return str(period).replace("-", "")


def render(header: FileHeader, rows: Iterable[FileRow], encoding: str = "utf-8") -> Iterator[bytes]:
    """The file's bytes in pieces of about 64 KiB, streamed from `rows` (in file order); each
    row's figures counted to its end in the header's period (`row_values`)."""
    period = header.key.period
    return render_lines(
        header, _header_line(header, encoding), rows, lambda row: row_line(row, period), encoding
    )


def row_line(row: FileRow, period: Period) -> str:
    """One row of `period`'s file as its line (without encoding), LF included."""
    if row.kind != "row":
        raise FileBuildError(
            f"row {row.number}: CVR's report has no {row.kind} rows (a closed period is not "
            f"reported again; the next period's file says how things stand)"
        )
    fields = [ROW_LINE_KIND, str(row.number), escape(row.record_id), str(row.record_version)]
    values = row_values(row.values, period)
    fields += [field_text(name, values.get(name)) for name in ROW_FIELDS]
    return line(fields)


def field_text(name: str, value: object) -> str:
    """A value as its field: None empty, a bool ``J``/``N``, a date ``YYYY-MM-DD``, a number
    in digits, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, datetime):
        raise FileBuildError(f"{name} is a date, not a moment: {value.isoformat()}")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        raise FileBuildError(f"{name} is one value, not a {type(value).__name__}")
    return escape(str(value))


def end_date(status: str, completed: date | None, removed: date | None, period: Period) -> date:
    """The day a row's wait is counted to: its completion (``G``), its removal (``A``), or the
    period's last day (``V``: the report's cut-off date; a daily period's is the day itself)."""
    if status == COMPLETED and completed is not None:
        return completed
    if status == REMOVED and removed is not None:
        return removed
    if status == WAITING:
        return period.last_day
    raise ValueError(f"status {status!r} with completed {completed} and removed {removed}")


def row_values(values: Mapping[str, Any], period: Period) -> Mapping[str, Any]:
    """A row's values with its figures counted to its end in `period`: `garanti_start`,
    `pvv_dagar`, `mov` and `vantedagar` from its dates and `undantag` (the exception periods,
    as the mapping places them). A row that carries all four already is written as it is."""
    if all(name in values for name in FIGURES):
        return values
    try:
        status = str(values["status"])
        end = end_date(status, _day(values.get("genomford")), _day(values.get("avford")), period)
        figures = wait_figures(
            WAIT_KIND_OF[str(values["vantetyp"])],
            _required_day(values.get("remissdatum")),
            _day(values.get("beslutsdatum")),
            values.get("undantag") or (),
            end,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise FileBuildError(f"the wait's figures cannot be counted: {error!r}") from error
    return {**values, **figures}


def _header_line(header: FileHeader, encoding: str) -> str:
    return line(
        [
            "H",
            REGISTER,
            FORMAT_VERSION,
            escape(header.name),
            str(header.key.period),
            escape(header.key.owner),
            str(header.sequence),
            escape(header.replaces or ""),
            built_at_text(header.built_at),
            encoding.upper(),
        ]
    )


def _day(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise TypeError(f"{value!r} is a moment, not a date")
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _required_day(value: object) -> date:
    day = _day(value)
    if day is None:
        raise ValueError("remissdatum is required")
    return day
