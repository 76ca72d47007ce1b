"""What the CVR sandbox received: every file it read and its receipt by name, deliveries counted,
and the holding — the latest file per reporting unit and period that was not refused whole, and
its accepted rows."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.cvr.reading import ReadHeader
from services.sandboxes.cvr.validation import Held, Judgement
from shared.schedule import Period

RECEIPT_PREFIX = "CVR-K-"
_RECEIPT_ID = re.compile(rf"{RECEIPT_PREFIX}([0-9]+)")


@dataclass(frozen=True)
class StoredFile:
    name: str
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
    """The receipt as the register writes it to its outbox (docs/cvr-file.md)."""
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
        "antalGodkanda": sum(1 for row in rows if row["status"] == "godkand"),
        "rader": rows,
    }


class FileStore:
    """Thread-safe: the SFTP server's loop writes, tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._deliveries: Counter[str] = Counter()
        self._receipts = 0

    def count_delivery(self, name: str) -> int:
        """Count a file renamed into the inbox under `name`; how many there were."""
        with self._lock:
            self._deliveries[name] += 1
            return self._deliveries[name]

    def deliveries(self) -> dict[str, int]:
        with self._lock:
            return dict(self._deliveries)

    def get(self, name: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._files)

    def next_receipt_id(self) -> str:
        with self._lock:
            self._receipts += 1
            return f"{RECEIPT_PREFIX}{self._receipts:07d}"

    def add(self, stored: StoredFile) -> None:
        with self._lock:
            self._files[stored.name] = stored
            match = _RECEIPT_ID.fullmatch(str(stored.receipt.get("kvittoId")))
            if match is not None:  # a receipt read back at start: count on after it
                self._receipts = max(self._receipts, int(match[1]))

    def reset(self) -> None:
        with self._lock:
            self._files.clear()
            self._deliveries.clear()

    # ---- the holding (validation.Holding) -------------------------------------------------

    def current(self, owner: str, period: Period) -> Held | None:
        """The file held for `owner` and `period`: the held one of the highest sequence."""
        latest = self._current().get((owner, period))
        if latest is None or latest.header is None:
            return None
        return Held(latest.name, latest.header.sequence)

    def received(self, name: str) -> ReadHeader | None:
        stored = self.get(name)
        return stored.header if stored is not None else None

    def holding(
        self, owner: str | None = None, period: Period | None = None
    ) -> list[dict[str, Any]]:
        """Per reporting unit and period: the file held and its accepted rows
        (``{"enhet", "period", "fil", "sekvens", "rader": [{"radnyckel", "version", …}]}``)."""
        answer = []
        for (held_owner, held_period), stored in sorted(self._current().items()):
            if (owner is not None and held_owner != owner) or (
                period is not None and held_period != period
            ):
                continue
            assert stored.header is not None
            answer.append(
                {
                    "enhet": held_owner,
                    "period": str(held_period),
                    "fil": stored.name,
                    "sekvens": stored.header.sequence,
                    "rader": [
                        {
                            "radnyckel": verdict.row.record_id,
                            "version": verdict.row.record_version,
                            **verdict.row.values,
                        }
                        for verdict in stored.judgement.rows
                        if verdict.accepted
                    ],
                }
            )
        return answer

    def _current(self) -> dict[tuple[str, Period], StoredFile]:
        with self._lock:
            files = [f for f in self._files.values() if f.held and f.header is not None]
        latest: dict[tuple[str, Period], StoredFile] = {}
        for stored in files:
            assert stored.header is not None
            key = (stored.header.owner, stored.header.period)
            known = latest.get(key)
            if known is None or (known.header and stored.header.sequence > known.header.sequence):
                latest[key] = stored
        return latest
