"""Region Stockholm's MEK file (kombika ↔ HSA-id mappings), generated from the HSA sandbox."""

from __future__ import annotations

import contextlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.sandboxes.hsa.directory import SWEDEN, HsaDirectory, utc_now
from shared.identifiers import parse_kombika, validate_hsa_id

MEK_NS = "http://brainpool.se/mek/MEK.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_DAY_ENDS = time(23, 59, 59)


@dataclass(frozen=True)
class MekRow:
    """One ``mappning``: `kombika` denotes `hsa_id` from `from_date` through `till_date` (None:
    open); `created` is SkapadDatum (aware)."""

    kombika: str
    hsa_id: str
    from_date: date
    till_date: date | None
    created: datetime


def generate(hsa_units: int, seed: int) -> tuple[MekRow, ...]:
    """The rows for the HSA sandbox's directory (`hsa_units`, `seed`): one per kombika period.

    A unit's kombika holds from its validFrom through the day before the unit's next kombika's
    validFrom (the last one is open); SkapadDatum is FromDatum.
    """
    rows: list[MekRow] = []
    for unit in HsaDirectory(hsa_units, seed).iter_units():
        periods = sorted(unit.get("kombika") or [], key=lambda period: str(period["validFrom"]))
        starts = [date.fromisoformat(str(period["validFrom"])) for period in periods]
        for position, period in enumerate(periods):
            start = starts[position]
            till = starts[position + 1] - timedelta(days=1) if position + 1 < len(starts) else None
            rows.append(
                MekRow(str(period["code"]), str(unit["hsaIdentity"]), start, till, _local(start))
            )
    return tuple(rows)


class CodeServerFile:
    """The code server's MEK file as generated from the HSA sandbox's directory, editable.

    `file_id` (MEKFilId) starts at 1 and grows by one with every change, a reset included, so a
    reader never sees it go back. Thread-safe: the server's loop and a test share it.
    """

    def __init__(
        self, hsa_units: int, seed: int = 0, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.seed = seed
        self.clock = clock
        self._generated = generate(hsa_units, seed)
        self._lock = threading.RLock()
        self._rows = list(self._generated)
        self.file_id = 1

    def rows(self) -> list[MekRow]:
        """The rows in file order: generated ones in HSA's order, then added ones."""
        with self._lock:
            return list(self._rows)

    def add(
        self, kombika: str, hsa_id: str, from_date: date, till_date: date | None = None
    ) -> MekRow:
        """Add a mapping created now (the kombika written compact); the row added.

        Raises `InvalidIdentifierError` (a ValueError) for a malformed kombika or HSA-id, and
        ValueError when `till_date` comes before `from_date`.
        """
        code = str(parse_kombika(kombika))
        validate_hsa_id(hsa_id)
        if till_date is not None and till_date < from_date:
            raise ValueError("till_date: must not come before from_date")
        row = MekRow(code, hsa_id, from_date, till_date, self.clock().astimezone(SWEDEN))
        with self._lock:
            self._rows.append(row)
            self.file_id += 1
        return row

    def remove(self, kombika: str) -> int:
        """Drop every row of this kombika; how many there were (0: the file is unchanged)."""
        with contextlib.suppress(ValueError):  # a malformed one matches no row
            kombika = str(parse_kombika(kombika))  # "19108011 M04" is "19108011M04"
        with self._lock:
            kept = [row for row in self._rows if row.kombika != kombika]
            removed = len(self._rows) - len(kept)
            if removed:
                self._rows = kept
                self.file_id += 1
            return removed

    def reset(self) -> None:
        """Back to the generated rows; a change like any other, so `file_id` grows."""
        with self._lock:
            self._rows = list(self._generated)
            self.file_id += 1

    def xml(self) -> bytes:
        """The whole file, UTF-8, as the code server exports it; ExportDatum is now."""
        with self._lock:
            rows, file_id = list(self._rows), self.file_id
        # Namespace declarations written as attributes keep the real file's order (xsi first)
        # and its unused xsi declaration; the elements are in the default namespace.
        root = ET.Element(
            "mappningar",
            {
                "xmlns:xsi": XSI_NS,
                "xmlns": MEK_NS,
                "ExportDatum": xs_datetime(self.clock().astimezone(SWEDEN)),
                "MEKFilId": str(file_id),
            },
        )
        for row in rows:
            mapping = ET.SubElement(root, "mappning")
            ET.SubElement(mapping, "Kombikakod").text = row.kombika
            ET.SubElement(mapping, "HSAId").text = row.hsa_id
            ET.SubElement(mapping, "FromDatum").text = xs_datetime(_local(row.from_date))
            if row.till_date is not None:
                till = _local(row.till_date, _DAY_ENDS)
                ET.SubElement(mapping, "TillDatum").text = xs_datetime(till)
            ET.SubElement(mapping, "SkapadDatum").text = xs_datetime(row.created)
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()


def xs_datetime(moment: datetime) -> str:
    """xs:dateTime with its offset: ``2007-04-24T15:51:55.257+02:00``, milliseconds only when
    there are any (``2007-04-03T00:00:00+02:00``)."""
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


def _local(day: date, at: time = time(0)) -> datetime:
    return datetime.combine(day, at, tzinfo=SWEDEN)
