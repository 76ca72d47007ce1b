"""What the VGPV sandbox received: every judged file and its receipt by name, uploads counted,
and the holding — the latest accepted file per unit and month, with later months' corrections,
cancellations and late rows applied."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.sandboxes.vgpv.validation import Held, Judgement
from services.vgpv.reading import ReadHeader
from shared.schedule import Period

Month = tuple[str, Period]
"""A unit's HSA-id and a period."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    content: bytes
    receipt: dict[str, Any]
    header: ReadHeader | None  # None: it could not be read
    judgement: Judgement

    @property
    def held(self) -> bool:
        """Whether any of its rows were accepted (a file refused whole is not held)."""
        return self.judgement.status != "avvisad"


def receipt_body(
    receipt_id: str, name: str, content: bytes, received_at: datetime, judgement: Judgement
) -> dict[str, Any]:
    """The receipt as the register answers it (docs/vgpv.md, "The sandbox")."""
    header = judgement.file.header if judgement.file is not None else None
    rows = [
        {
            "radnummer": verdict.row.number,
            "radnyckel": verdict.row.record_id,
            "status": "godkand" if verdict.accepted else "avvisad",
            "kod": verdict.code,
            "orsak": verdict.reason,
        }
        for verdict in judgement.rows
    ]
    return {
        "kvittoId": receipt_id,
        "filnamn": name,
        "mottagen": received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "status": judgement.status,
        "orsakskod": judgement.code,
        "orsak": judgement.reason,
        "ersatter": header.replaces if header is not None else None,
        "kontrollsumma": hashlib.sha256(content).hexdigest(),
        "antalRader": len(rows),
        "godkandaRader": sum(1 for row in rows if row["status"] == "godkand"),
        "avvisadeRader": sum(1 for row in rows if row["status"] == "avvisad"),
        "rader": rows,
    }


class FileStore:
    """Thread-safe: the server's loop and a test read and write it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._files: dict[str, StoredFile] = {}
        self._uploads: Counter[str] = Counter()
        self._receipts = 0

    def count_upload(self, name: str) -> int:
        """Count an upload of `name` (every one, a duplicate too); how many there were."""
        with self._lock:
            self._uploads[name] += 1
            return self._uploads[name]

    def uploads(self) -> dict[str, int]:
        with self._lock:
            return dict(self._uploads)

    def get(self, name: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._files)

    def next_receipt_id(self) -> str:
        with self._lock:
            self._receipts += 1
            return f"VGPV-K-{self._receipts:07d}"

    def add(self, stored: StoredFile) -> bool:
        """Keep `stored` under its name; False (and nothing kept) if the name is taken."""
        with self._lock:
            if stored.name in self._files:
                return False
            self._files[stored.name] = stored
            return True

    def reset(self) -> None:
        with self._lock:
            self._files.clear()
            self._uploads.clear()

    # ---- the holding ---------------------------------------------------------------------------

    def current(self, unit: str, period: Period) -> Held | None:
        """The file held for `unit` and `period`: the held one of the highest sequence."""
        with self._lock:
            held = [
                f
                for f in self._files.values()
                if f.held
                and f.header is not None
                and (f.header.unit_hsa_id, f.header.period) == (unit, period)
            ]
        if not held:
            return None
        latest = max(held, key=lambda f: f.header.sequence if f.header else 0)
        assert latest.header is not None
        return Held(latest.name, latest.header.sequence)

    def received(self, name: str) -> ReadHeader | None:
        stored = self.get(name)
        return stored.header if stored is not None else None

    def held_rows(self, unit: str, period: Period) -> frozenset[str]:
        """The row keys the register holds for `unit` and `period` (as `holding` shows them)."""
        _, rows = self._held()
        return frozenset(rows.get((unit, period), {}))

    def holding(
        self, unit: str | None = None, period: Period | None = None
    ) -> list[dict[str, Any]]:
        """The rows the register holds per unit and month, as `GET /innehav` answers them;
        `fil` is None for a month held only through later months' late rows."""
        current, rows = self._held()
        answer = []
        for (held_unit, held_period), found in sorted(rows.items()):
            if (unit is None or held_unit == unit) and (period is None or held_period == period):
                held_file = current.get((held_unit, held_period))
                answer.append(
                    {
                        "enhet": held_unit,
                        "period": str(held_period),
                        "fil": held_file.name if held_file is not None else None,
                        "rader": [
                            {"radnyckel": rid, **values} for rid, values in sorted(found.items())
                        ],
                    }
                )
        return answer

    def _held(self) -> tuple[dict[Month, StoredFile], dict[Month, dict[str, dict[str, Any]]]]:
        """(the current file per unit and month, the rows held per unit and month): each current
        file's accepted rows, then every current file's accepted corrections and cancellations
        applied, oldest month first. A correction of a row not held is a late row: it is added to
        its month, held or not."""
        with self._lock:
            files = [f for f in self._files.values() if f.held and f.header is not None]
        latest: dict[Month, tuple[int, StoredFile]] = {}
        for stored in files:
            assert stored.header is not None
            key = (stored.header.unit_hsa_id, stored.header.period)
            if key not in latest or stored.header.sequence > latest[key][0]:
                latest[key] = (stored.header.sequence, stored)
        current = {key: stored for key, (_, stored) in latest.items()}
        rows: dict[Month, dict[str, dict[str, Any]]] = {}
        for key, stored in current.items():
            rows[key] = {
                v.row.record_id: v.row.values
                for v in stored.judgement.rows
                if v.accepted and v.row.kind == "row"
            }
        for key, stored in sorted(current.items(), key=lambda item: item[0][1]):
            for verdict in stored.judgement.rows:
                row = verdict.row
                if not verdict.accepted or row.kind == "row" or row.corrects is None:
                    continue
                month = (key[0], row.corrects)
                if row.kind == "cancellation":
                    rows.get(month, {}).pop(row.record_id, None)
                else:
                    rows.setdefault(month, {})[row.record_id] = row.values
        return current, rows
