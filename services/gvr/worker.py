"""The GVR worker: care contacts and waits' bookings → GVR calls, units checked in the catalog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from services.gvr.client import GvrClient
from services.gvr.mapping import GvrCall, GvrPaths, gvr_call
from services.gvr.units import (
    UnitCatalog,
    check_county,
    check_known,
    check_units,
    wait_day,
    wait_units,
)
from services.gvr.waits import WaitCodes, booking_call, ledger_id, withdrawn
from shared.contracts import CareContactEvent, CareWaitEvent, ContractViolationError, parse_event
from shared.delivery.errors import DeliveryError, InvalidEventError, RegisterRejectedError
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission

VERSION = "0.1.0"


class GvrWorker:
    """Parse → check units in the catalog → map → send; reconciliation looks the record up."""

    name = "gvr"
    version = VERSION

    def __init__(
        self,
        client: GvrClient,
        catalog: UnitCatalog | None,
        paths: GvrPaths,
        unknown_unit_grace: timedelta = timedelta(0),
        counties: frozenset[str] = frozenset({"01"}),
        wait_codes: WaitCodes | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._paths = paths
        self._grace = unknown_unit_grace
        self._counties = counties
        self._wait_codes = wait_codes or WaitCodes()

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        """A care contact, or a waiting-list entry (its record id is `ledger_id`'s: an entry
        and a care contact of the same id are two records)."""
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if isinstance(event, CareContactEvent):
            record_id = event.record_id
        elif isinstance(event, CareWaitEvent):
            record_id = ledger_id(event.record_id)
        else:
            raise InvalidEventError(
                f"event_type: expected care.contact or care.wait, got {event.event_type}"
            )
        identity = EventIdentity(
            str(event.event_id), record_id, event.record_version, str(event.operation)
        )
        return identity, event

    def map(self, event: object, reference: str | None) -> GvrCall:
        """Pure: the catalog is an in-memory view; refuses unknown or closed units here, and
        leaves another region's events alone (NotOursError: skipped, `not_ours`)."""
        if isinstance(event, CareWaitEvent):
            return self._booking(event, reference)
        assert isinstance(event, CareContactEvent)  # parse() returned one of the two
        if self._catalog is not None:
            check_units(event, self._catalog, self._grace, self._counties)
        return gvr_call(event, reference, self._paths)

    def _booking(self, event: CareWaitEvent, reference: str | None) -> GvrCall:
        """Another region's entry is not ours; an entry with no booking record to make is
        skipped (`no_booking`) before its unit is asked after; then the unit as a contact's."""
        units = wait_units(event)
        if self._catalog is not None:
            check_county(units, self._catalog, self._counties)
        call = booking_call(event, reference, self._paths.availability, self._wait_codes)
        if self._catalog is not None:
            check_known(units, wait_day(event), self._catalog, self._grace)
        return call

    async def submit(self, batch: Sequence[Submission[GvrCall]]) -> list[Outcome]:
        """GVR takes one record per call: the batch's calls go out concurrently (a batch is one
        event by default: sent directly, without a task)."""
        if len(batch) == 1:
            return [await self._send(batch[0].request)]
        return list(await asyncio.gather(*(self._send(s.request) for s in batch)))

    async def _send(self, call: GvrCall) -> Outcome:
        outcome = await self._client.send(call.apply)
        conflict = isinstance(outcome, RegisterRejectedError) and outcome.register_status == 409
        if conflict and call.apply.operation == "create" and call.lookup is not None:
            # A create GVR already holds: ours, if an earlier attempt timed out after GVR stored
            # it (then it is accepted), or another record's with the same key (a real 409).
            try:
                found = await self._client.find(call.lookup)
            except DeliveryError:
                return outcome
            if found is not None:
                return Accepted(found)
        if call.withdraws and call.apply.reference is not None:
            if conflict:
                # GVR's DELETE answers 409 only for a record already makulerad (docs/gvr-api.md):
                # an earlier attempt whose answer was lost, or a makulering at GVR itself
                return Accepted(withdrawn(call.apply.reference))
            if isinstance(outcome, Accepted):
                return Accepted(withdrawn(outcome.reference))
        return outcome

    async def lookup(self, submission: Submission[GvrCall]) -> Accepted | None:
        call = submission.request
        if call.lookup is None:  # cannot be looked up: sent again (see _send)
            return None
        found = await self._client.find(call.lookup)
        if found is None:
            return None
        return Accepted(withdrawn(found) if call.withdraws else found)
