"""The NVR sandbox's register: Immunizations by id and by report identifier, in dicts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.nvr.rules import RuleViolation, duplicate_report, unknown_record

ReportKey = tuple[str, str]  # (identifier system, value)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoredImmunization:
    id: str
    version: int
    key: ReportKey | None
    caregiver_org_number: str | None
    resource: dict[str, Any]  # as last sent, with id and meta set by the register
    deleted: bool = False

    @property
    def location(self) -> str:
        return f"Immunization/{self.id}/_history/{self.version}"

    @property
    def last_updated(self) -> str:
        return str(self.resource["meta"]["lastUpdated"])

    def summary(self) -> dict[str, Any]:
        system, value = self.key if self.key is not None else (None, None)
        return {
            "id": self.id,
            "versionId": str(self.version),
            "identifierSystem": system,
            "identifierValue": value,
            "caregiverOrgNumber": self.caregiver_org_number,
            "deleted": self.deleted,
            "lastUpdated": self.last_updated,
        }


@dataclass
class ImmunizationStore:
    """In memory and thread-safe. A report identifier is held by at most one live record."""

    clock: Callable[[], datetime] = utc_now
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _records: dict[str, StoredImmunization] = field(default_factory=dict)
    _live: dict[ReportKey, str] = field(default_factory=dict)
    _next: int = 1

    def create(
        self, key: ReportKey | None, caregiver: str | None, resource: dict[str, Any]
    ) -> StoredImmunization | RuleViolation:
        """A new record, or the 409 when the report identifier is held by a live record."""
        with self._lock:
            if key is not None and (holder := self._live.get(key)) is not None:
                return duplicate_report(key[0], key[1], holder)
            record_id = f"nvr-{self._next:08d}"
            self._next += 1
            record = StoredImmunization(
                record_id, 1, key, caregiver, self._stamped(resource, record_id, 1)
            )
            self._records[record_id] = record
            if key is not None:
                self._live[key] = record_id
            return record

    def change(
        self, record_id: str, key: ReportKey | None, caregiver: str | None, resource: dict[str, Any]
    ) -> StoredImmunization | RuleViolation:
        """The whole record again (a new version); 404 unknown or deleted, 409 key taken."""
        with self._lock:
            record = self._records.get(record_id)
            if record is None:
                return unknown_record(record_id)
            if record.deleted:
                return unknown_record(record_id, "is deleted")
            if key is not None and self._live.get(key, record_id) != record_id:
                return duplicate_report(key[0], key[1], self._live[key])
            if record.key is not None:
                self._live.pop(record.key, None)
            if key is not None:
                self._live[key] = record_id
            record.version += 1
            record.key, record.caregiver_org_number = key, caregiver
            record.resource = self._stamped(resource, record_id, record.version)
            return record

    def delete(self, record_id: str) -> StoredImmunization | None:
        """Mark the record deleted (again is fine); None when the id was never held."""
        with self._lock:
            record = self._records.get(record_id)
            if record is None:
                return None
            if not record.deleted:
                record.deleted = True
                if record.key is not None:
                    self._live.pop(record.key, None)
            return record

    def get(self, record_id: str) -> StoredImmunization | None:
        with self._lock:
            return self._records.get(record_id)

    def find(self, system: str, value: str) -> StoredImmunization | None:
        """The live record holding this report identifier."""
        with self._lock:
            record_id = self._live.get((system, value))
            return None if record_id is None else self._records[record_id]

    def records(self) -> list[StoredImmunization]:
        with self._lock:
            return list(self._records.values())

    def counts(self) -> tuple[int, int]:
        """(live, deleted) records."""
        with self._lock:
            deleted = sum(1 for record in self._records.values() if record.deleted)
            return len(self._records) - deleted, deleted

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def reset(self) -> None:
        """No records; ids keep counting, so an id handed out before never comes back."""
        with self._lock:
            self._records.clear()
            self._live.clear()

    def _stamped(self, resource: dict[str, Any], record_id: str, version: int) -> dict[str, Any]:
        at = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
        meta = {"versionId": str(version), "lastUpdated": at}
        return {"resourceType": "Immunization", "id": record_id, "meta": meta} | {
            k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")
        }
