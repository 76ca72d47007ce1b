"""The sandbox's register: records by id and by GVR's key, and the log of accepted operations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from services.sandboxes.gvr.validation import RecordKey

Operation = Literal["create", "correct", "cancel"]


class Status(StrEnum):
    REGISTRERAD = "REGISTRERAD"
    RATTAD = "RATTAD"
    MAKULERAD = "MAKULERAD"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoredRecord:
    id: str
    resource: str
    key: RecordKey
    body: dict[str, Any]
    status: Status = Status.REGISTRERAD

    def answer(self) -> dict[str, Any]:
        """As GET shows it: id, status, then the record as last sent."""
        return {"id": self.id, "status": self.status.value} | self.body


@dataclass(frozen=True)
class LoggedOperation:
    op: Operation
    resource: str
    id: str
    kallId: str
    at: str  # ISO 8601 UTC


class Outcome(StrEnum):
    DONE = "done"
    UNKNOWN = "unknown"  # 404
    DUPLICATE = "duplicate"  # 409
    CANCELLED = "cancelled"  # 409


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    record: StoredRecord | None = None  # done: the record; duplicate: the one holding the key


@dataclass
class RecordStore:
    """In-memory and thread-safe. A key is taken by at most one record that is not makulerad."""

    clock: Callable[[], datetime] = utc_now
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _records: dict[str, StoredRecord] = field(default_factory=dict)
    _active: dict[tuple[str, RecordKey], str] = field(default_factory=dict)
    _log: list[LoggedOperation] = field(default_factory=list)
    _next: int = 1

    def create(self, resource: str, key: RecordKey, body: dict[str, Any]) -> Result:
        with self._lock:
            holder = self._active.get((resource, key))
            if holder is not None:
                return Result(Outcome.DUPLICATE, self._records[holder])
            record = StoredRecord(f"GVR-{self._next:07d}", resource, key, body)
            self._next += 1
            self._records[record.id] = record
            self._active[(resource, key)] = record.id
            self._note("create", record)
            return Result(Outcome.DONE, record)

    def correct(
        self, resource: str, record_id: str, key: RecordKey, body: dict[str, Any]
    ) -> Result:
        """The whole record again; its key may change, but not to one another record holds."""
        with self._lock:
            record = self._records.get(record_id)
            if record is None or record.resource != resource:
                return Result(Outcome.UNKNOWN)
            if record.status is Status.MAKULERAD:
                return Result(Outcome.CANCELLED, record)
            holder = self._active.get((resource, key))
            if holder is not None and holder != record_id:
                return Result(Outcome.DUPLICATE, self._records[holder])
            del self._active[(resource, record.key)]
            self._active[(resource, key)] = record_id
            record.key, record.body, record.status = key, body, Status.RATTAD
            self._note("correct", record)
            return Result(Outcome.DONE, record)

    def get(self, resource: str, record_id: str) -> StoredRecord | None:
        with self._lock:
            record = self._records.get(record_id)
            return record if record is not None and record.resource == resource else None

    def cancel(self, resource: str, record_id: str) -> Result:
        with self._lock:
            record = self._records.get(record_id)
            if record is None or record.resource != resource:
                return Result(Outcome.UNKNOWN)
            if record.status is Status.MAKULERAD:
                return Result(Outcome.CANCELLED, record)
            del self._active[(resource, record.key)]
            record.status = Status.MAKULERAD
            self._note("cancel", record)
            return Result(Outcome.DONE, record)

    def find(
        self, resource: str, patient_id: str, kombika: str, day: str, time: str | None
    ) -> list[dict[str, Any]]:
        """Records of this key, makulerade too, oldest first; `time` None matches any time."""
        with self._lock:
            return [
                record.answer()
                for record in self._records.values()
                if record.resource == resource
                and (record.key.patient_id, record.key.kombika, record.key.day)
                == (patient_id, kombika, day)
                and (time is None or record.key.time == time)
            ]

    def log(self) -> list[LoggedOperation]:
        with self._lock:
            return list(self._log)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def reset(self) -> None:
        """No records, no log; ids keep counting, so an id handed out before never comes back."""
        with self._lock:
            self._records.clear()
            self._active.clear()
            self._log.clear()

    def _note(self, op: Operation, record: StoredRecord) -> None:
        at = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
        kall_id = str(record.body.get("kallId", ""))
        self._log.append(LoggedOperation(op, record.resource, record.id, kall_id, at))
