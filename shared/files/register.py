"""The small interface a file register implements; the file-delivery runtime does the rest.

A file register (a region's monthly visit file, a waiting-time register's report) is paid or
measured from files, not from one request per event. Its worker:

- **parses** an event (as a request register does; a bad one is an `invalid_event` dead letter),
- **places** it: which file it belongs in (a period and the file's owner, e.g. a care unit) and
  the row it becomes — pure, from the event and the catalog; `NotOursError` when the event is
  another register's (skipped, never dead-lettered), `NotYetKnownError` / `PermanentError` as
  for a request register,
- **renders** a file from its header and rows — pure and streaming, the same bytes every time,
- **delivers** a rendered file and returns the register's receipt, and **looks up** a file by
  name after a crash (has the register got it? its receipt if so).

Everything else — the per-period state in the database, corrections and cancellations before
and after delivery, the window, building at the cut-off, crash safety, receipts, per-event
results, refused rows as dead letters — is the runtime's (`shared/files/`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.delivery.worker import EventIdentity
from shared.schedule.periods import Period


@dataclass(frozen=True, order=True)
class FileKey:
    """One file of a register: its period and its owner (a care unit's HSA-id, a provider)."""

    period: Period
    owner: str


@dataclass(frozen=True)
class Placement:
    """Where an event's record goes: its file and its row's values (JSON-safe, the register's
    format renders them). The record id is the row's key, stable across corrections."""

    key: FileKey
    values: Mapping[str, Any]
    # A row of every file of its owner from its period on, until a later version places it
    # otherwise (a waiting-list entry still waiting is in each period's report)
    carried: bool = False


RowKind = Literal["row", "correction", "cancellation"]
"""A row of the period itself; a later change to a row delivered in a closed period's file
(`correction`: its new values; `cancellation`: it is withdrawn)."""


@dataclass(frozen=True)
class FileRow:
    """One row as it is written into a file."""

    number: int  # 1-based, in file order (rows are ordered by record id: deterministic)
    record_id: str
    record_version: int
    event_id: str
    kind: RowKind
    values: Mapping[str, Any]
    corrects: Period | None = None  # for corrections and cancellations: the row's own period


@dataclass(frozen=True)
class FileHeader:
    """What a file says about itself; every field is fixed when the file is built, so building
    it again gives the same bytes."""

    key: FileKey
    name: str  # the register's idempotency key: register, owner, period, sequence
    sequence: int  # 1: the period's first file for this owner; 2, 3 …: replacements
    replaces: str | None  # the name of the file a replacement replaces
    built_at: datetime  # the cut-off: rows are the state as of this instant
    row_count: int


@dataclass(frozen=True)
class RowVerdict:
    """The register's word on one row (refused rows at least; accepted ones may be listed)."""

    number: int
    accepted: bool
    code: str | None = None  # the register's error code
    reason: str | None = None


@dataclass(frozen=True)
class Receipt:
    """The register's answer to a delivered file, kept as the register's record of it."""

    file_name: str
    receipt_id: str
    received_at: datetime
    status: Literal["accepted", "partly_accepted", "refused"]
    reason: str | None  # why a whole file was refused (late, a bad trailer …)
    rows: tuple[RowVerdict, ...]
    raw: str  # the register's answer as it came (stored, shown by `show`)


class FileRegister(Protocol):
    """Parse → place → render → deliver → (after a crash) look up. No retry loops, no state."""

    name: str  # topic prefix, consumer group, ledger namespace
    version: str  # written on dead letters
    # True: a change to a row of a closed period goes into the owner's next file as a correction
    # or cancellation row (a payment file); False: closed periods are not reported again (a
    # periodic report whose next file says how things stand)
    corrections_after_close: bool

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        """Bytes → (identity, event). Raises InvalidEventError with a precise reason."""
        ...

    def place(self, event: object) -> Placement:
        """The event's file and row. Pure (reads the catalog it was built with); raises
        NotOursError for another register's event, DeliveryError subclasses as a request
        register's `map` does."""
        ...

    def file_name(self, key: FileKey, sequence: int) -> str:
        """The name the register knows a file by (its idempotency key): one per owner, period
        and sequence (1, then 2, 3 … for declared replacements)."""
        ...

    def render(self, header: FileHeader, rows: Iterable[FileRow]) -> Iterable[bytes]:
        """The file's bytes in pieces, streamed from `rows` (never all in memory). Pure."""
        ...

    async def deliver(self, header: FileHeader, content: AsyncIterator[bytes]) -> Receipt:
        """Upload the file; the register's receipt. Raises TransientError (try again later),
        ConfigurationError (certificate, login: pause and alarm)."""
        ...

    async def lookup(self, header: FileHeader) -> Receipt | None:
        """After a crash mid-delivery: the receipt of the file named `header.name`, if the
        register has it."""
        ...
