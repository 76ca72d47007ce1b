"""HSA notifications → the unit fetched (from HSA, and from KIV where configured), normalised,
merged and published (or tombstoned)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka.errors import KafkaError

from services.catalog.directory_client import DirectoryClient
from services.catalog.imports import unit_value
from services.catalog.kiv import KivUnit, merge, normalise_kiv_unit
from services.catalog.metrics import CatalogMetrics
from services.catalog.normalise import normalise_hsa_unit
from services.catalog.topic_state import NOTIFICATION, stamp
from services.catalog.writer import CatalogWriter
from shared.contracts import ContractViolationError, HsaUnitNotificationEvent, parse_event
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.errors import (
    DeliveryError,
    InvalidEventError,
    PermanentError,
    RegisterUnavailableError,
)
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission
from shared.logging import get_logger

log = get_logger(__name__)


class UnknownUnitError(PermanentError):
    """HSA does not know the unit a notification names."""

    error_class = "unknown_unit"


@dataclass(frozen=True)
class UnitChange:
    hsa_id: str
    change_kind: str  # created | updated | removed
    notified_at: datetime  # when HSA notified (the event's occurred_at)


class CatalogNotificationWorker:
    """The 'register' of the catalog sync is its own compacted topic."""

    name = "catalog"
    version = "0.1.0"

    def __init__(
        self,
        hsa: DirectoryClient,
        writer: CatalogWriter,
        units_topic: str,
        metrics: CatalogMetrics | None = None,
        clock: Clock | None = None,
        kiv: DirectoryClient | None = None,
    ) -> None:
        self._hsa = hsa
        self._kiv = kiv
        self._writer = writer
        self._topic = units_topic
        self._metrics = metrics
        self._clock = clock or SystemClock()

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if not isinstance(event, HsaUnitNotificationEvent):
            raise InvalidEventError(
                f"event_type: expected hsa.unit-notification, got {event.event_type}"
            )
        identity = EventIdentity(
            str(event.event_id), event.record_id, event.record_version, event.operation.value
        )
        return identity, event

    def map(self, event: object, reference: str | None) -> UnitChange:
        assert isinstance(event, HsaUnitNotificationEvent)  # parse() returned it
        return UnitChange(event.payload.hsa_id, event.payload.change_kind, event.occurred_at)

    async def submit(self, batch: Sequence[Submission[UnitChange]]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._apply(s.request) for s in batch)))

    async def lookup(self, submission: Submission[UnitChange]) -> Accepted | None:
        return None  # publishing a unit again is harmless on a compacted topic

    async def _regional(self, hsa_id: str) -> KivUnit | None:
        """KIV's record of the unit (None: no KIV configured, or KIV does not list it)."""
        if self._kiv is None:
            return None
        raw = await self._kiv.get_unit(hsa_id)
        return normalise_kiv_unit(raw) if raw is not None else None

    async def _apply(self, change: UnitChange) -> Outcome:
        try:
            raw = await self._hsa.get_unit(change.hsa_id)
            if raw is None:
                if change.change_kind != "removed":
                    raise UnknownUnitError(f"HSA does not know unit {change.hsa_id}")
                removed = stamp(NOTIFICATION, change.notified_at)  # an import older keeps off
                await self._writer.publish(self._topic, change.hsa_id, None, removed)
                return Accepted(change.hsa_id)
            if change.change_kind == "removed":
                # HSA still answers for it: trust HSA's record, never tombstone a unit it has.
                log.warning("removal_not_confirmed", hsa_id=change.hsa_id)
            unit = merge(normalise_hsa_unit(raw), await self._regional(change.hsa_id))
            # HSA's modification time, or the notification's if HSA gives none: newer than any
            # export cut before it, so a later import of that export leaves this value alone
            changed = stamp(NOTIFICATION, unit.source_updated_at or change.notified_at)
            await self._writer.publish(self._topic, unit.hsa_id, unit_value(unit), changed)
            if self._metrics is not None:
                self._metrics.notified(change.notified_at, self._clock.now())
            return Accepted(unit.hsa_id)
        except DeliveryError as exc:
            return exc
        except KafkaError as exc:  # the catalog topic is this worker's register
            return RegisterUnavailableError(f"could not publish to {self._topic}: {exc}")
