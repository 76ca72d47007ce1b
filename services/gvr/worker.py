"""The GVR worker: care contacts → GVR calls, unit checks through the catalog, one client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from services.gvr.client import GvrClient
from services.gvr.mapping import GvrPaths, GvrRequest, lookup_request, to_gvr_request
from services.gvr.units import UnitCatalog, check_units
from shared.contracts import CareContactEvent, ContractViolationError, parse_event
from shared.delivery.errors import DeliveryError, InvalidEventError, RegisterRejectedError
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission

VERSION = "0.1.0"


@dataclass(frozen=True)
class GvrCall:
    """What a care contact becomes: the call that applies it, and the GET that finds it."""

    apply: GvrRequest
    lookup: GvrRequest


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
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._paths = paths
        self._grace = unknown_unit_grace
        self._counties = counties

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if not isinstance(event, CareContactEvent):
            raise InvalidEventError(f"event_type: expected care.contact, got {event.event_type}")
        identity = EventIdentity(
            str(event.event_id), event.record_id, event.record_version, str(event.operation)
        )
        return identity, event

    def map(self, event: object, reference: str | None) -> GvrCall:
        """Pure: the catalog is an in-memory view; refuses unknown or closed units here, and
        leaves another region's contacts alone (NotOursError: skipped, `not_ours`)."""
        assert isinstance(event, CareContactEvent)  # parse() returned it
        if self._catalog is not None:
            check_units(event, self._catalog, self._grace, self._counties)
        return GvrCall(
            to_gvr_request(event, reference, self._paths), lookup_request(event, self._paths)
        )

    async def submit(self, batch: Sequence[Submission[GvrCall]]) -> list[Outcome]:
        """GVR takes one record per call: the batch's calls go out concurrently."""
        return list(await asyncio.gather(*(self._send(s.request) for s in batch)))

    async def _send(self, call: GvrCall) -> Outcome:
        outcome = await self._client.send(call.apply)
        if (
            isinstance(outcome, RegisterRejectedError)
            and outcome.register_status == 409
            and call.apply.operation == "create"
        ):
            # A create GVR already holds: ours, if an earlier attempt timed out after GVR stored
            # it (then it is accepted), or another record's with the same key (a real 409).
            try:
                found = await self._client.find(call.lookup)
            except DeliveryError:
                return outcome
            if found is not None:
                return Accepted(found)
        return outcome

    async def lookup(self, submission: Submission[GvrCall]) -> Accepted | None:
        found = await self._client.find(submission.request.lookup)
        return Accepted(found) if found is not None else None
