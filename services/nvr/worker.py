"""The NVR worker: vaccinations → FHIR bundles of up to 100, checked locally before anything goes.

    parse   the event contract (VaccinationEvent), else a dead letter naming the field
    map     the register's rules (services/nvr/rules.py) against the catalog's vaccine list and
            HSA units, then the Immunization (services/nvr/mapping.py), validated by
            fhir.resources; a broken rule is a dead letter naming the field and the rule
    submit  creates and changes as entries of one bundle per batch (the runtime gathers up to
            `batch_size` within `batch_linger`); every entry has its own outcome, so a bad entry
            is dead-lettered alone. A bundle refused whole (400/413/422) is split in halves until
            the culprit stands alone. A report NVR already holds under our identifier (409) is
            ours: it is changed to this event's content (PUT). Deletions go one by one.
    lookup  after a crash: the record found by its report identifier (creates, deletions);
            a change is sent again (a PUT of the whole record is idempotent)

A change or deletion needs NVR's id: the ledger keeps it from the create; when it has none (the
create was reported before regbridge, or by hand) the id is found by report identifier, and when
NVR holds no such record yet the event waits in the retry tiers (`not_yet_applied`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from services.nvr.client import NvrClient
from services.nvr.fhir_check import ImmunizationCheck
from services.nvr.mapping import build_immunization, change_entry, create_entry, search_params
from services.nvr.profile import NvrProfile
from services.nvr.rules import (
    ReportedVaccination,
    RuleContext,
    RuleViolation,
    UnitOwner,
    VaccineFacts,
    check,
)
from shared.catalog.records import UnitView, VaccineView
from shared.contracts import ContractViolationError, VaccinationEvent, parse_event
from shared.delivery.errors import (
    DeliveryError,
    InvalidEventError,
    NotYetAppliedError,
    RegisterRejectedError,
)
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission

VERSION = "0.1.0"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


class NvrCatalog(Protocol):
    """What the worker reads in the catalog (a CatalogView)."""

    def unit(self, hsa_id: str) -> UnitView | None: ...

    def vaccine(self, npl_id: str) -> VaccineView | None: ...


class RuleBrokenError(InvalidEventError):
    """The vaccination breaks one of NVR's rules: the register would refuse it."""

    error_class = "nvr_rule"


@dataclass(frozen=True)
class NvrCall:
    """What a vaccination event becomes."""

    operation: str  # create | correct | cancel
    event_id: str
    resource: dict[str, Any] | None  # the Immunization (None for a deletion)
    nvr_id: str | None  # NVR's id (from the ledger) for a change or deletion
    identifier: tuple[str, str]  # the report identifier (system, value), to find the record

    def entry(self) -> dict[str, Any]:
        assert self.resource is not None  # creates and changes carry one
        if self.operation == "create":
            return create_entry(self.event_id, self.resource)
        return change_entry(self.event_id, {**self.resource, "id": self.nvr_id})


def stockholm_today() -> date:
    return datetime.now(STOCKHOLM).date()


class NvrWorker:
    name = "nvr"
    version = VERSION

    def __init__(
        self,
        client: NvrClient,
        catalog: NvrCatalog | None,
        profile: NvrProfile,
        *,
        today: Callable[[], date] = stockholm_today,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._profile = profile
        self._today = today
        self._fhir = ImmunizationCheck()  # in full once per shape, then what varies

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if not isinstance(event, VaccinationEvent):
            raise InvalidEventError(f"event_type: expected vaccination, got {event.event_type}")
        identity = EventIdentity(
            str(event.event_id), event.record_id, event.record_version, str(event.operation)
        )
        return identity, event

    def map(self, event: object, reference: str | None) -> NvrCall:
        """Pure (the catalog is in memory): the rules, then the Immunization, valid FHIR R4
        (`services.nvr.fhir_check`: in full once per shape, then what varies)."""
        assert isinstance(event, VaccinationEvent)  # parse() returned it
        operation = str(event.operation)
        identifier = search_params(event, self._profile)
        if operation == "cancel":
            return NvrCall(operation, str(event.event_id), None, reference, identifier)
        unit_name = care_giver_name = vaccine_name = None
        if self._catalog is not None:
            self._check_rules(event)
            unit = self._catalog.unit(event.payload.performing_unit_hsa_id)
            vaccine = self._catalog.vaccine(event.payload.vaccine_npl_id)
            unit_name = unit.name if unit else None
            care_giver_name = unit.care_giver.name if unit else None
            vaccine_name = vaccine.name if vaccine else None
        resource = build_immunization(
            event,
            self._profile,
            unit_name=unit_name,
            care_giver_name=care_giver_name,
            vaccine_name=vaccine_name,
        )
        self._fhir(resource)
        return NvrCall(operation, str(event.event_id), resource, reference, identifier)

    def _check_rules(self, event: VaccinationEvent) -> None:
        assert self._catalog is not None
        catalog = self._catalog

        def vaccine_facts(npl_id: str) -> VaccineFacts | None:
            vaccine = catalog.vaccine(npl_id)
            return VaccineFacts(vaccine.covid19, vaccine.batch_numbers) if vaccine else None

        def unit_owner(hsa_id: str) -> UnitOwner | None:
            unit = catalog.unit(hsa_id)
            return UnitOwner(unit.care_giver.hsa_id, unit.care_giver.org_number) if unit else None

        reported = ReportedVaccination.from_event(
            event.payload, event.source_system, event.record_id, self._profile
        )
        context = RuleContext(vaccine_facts, unit_owner, self._today(), self._profile)
        broken = check(reported, context)
        if broken:
            raise rule_error(broken)

    async def submit(self, batch: Sequence[Submission[NvrCall]]) -> list[Outcome]:
        """Creates and changes in one bundle, deletions one by one; one outcome each, in order."""
        calls = [s.request for s in batch]
        resolved: list[NvrCall | DeliveryError] = list(calls)
        unresolved = [i for i, call in enumerate(calls) if _needs_id(call)]  # a task each
        answers = await asyncio.gather(*(self._resolve(calls[i]) for i in unresolved))
        for i, answer in zip(unresolved, answers, strict=True):
            resolved[i] = answer
        outcomes: list[Outcome | None] = [
            r if isinstance(r, DeliveryError) else None for r in resolved
        ]
        bundled = [(i, r) for i, r in enumerate(resolved) if isinstance(r, NvrCall) and r.resource]
        deletions = [
            (i, r) for i, r in enumerate(resolved) if isinstance(r, NvrCall) and not r.resource
        ]
        bundle_outcomes, deletion_outcomes = await asyncio.gather(
            self._bundle([call for _, call in bundled]) if bundled else _nothing(),
            asyncio.gather(*(self._delete(call) for _, call in deletions)),
        )
        for (i, _), outcome in zip(bundled, bundle_outcomes, strict=True):
            outcomes[i] = outcome
        for (i, _), outcome in zip(deletions, deletion_outcomes, strict=True):
            outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    async def _resolve(self, call: NvrCall) -> NvrCall | DeliveryError:
        """A change or deletion without NVR's id: find it by report identifier first."""
        if not _needs_id(call):
            return call
        try:
            found = await self._client.find(*call.identifier)
        except DeliveryError as exc:
            return exc
        if found is None:
            return NotYetAppliedError(
                f"NVR holds no record with report identifier {call.identifier[1]} to "
                f"{'change' if call.operation == 'correct' else 'delete'} (yet)",
                error_class="not_yet_applied",
            )
        return replace(call, nvr_id=found)

    async def _bundle(self, calls: list[NvrCall]) -> list[Outcome]:
        result = await self._client.send_bundle([call.entry() for call in calls])
        if isinstance(result, RegisterRejectedError) and len(calls) > 1:
            # refused whole (one entry's structure, the size …): halve until the culprit is alone
            middle = len(calls) // 2
            left, right = await asyncio.gather(
                self._bundle(calls[:middle]), self._bundle(calls[middle:])
            )
            return left + right
        if isinstance(result, DeliveryError):
            return [result] * len(calls)
        outcomes = list(result)
        conflicts = [i for i, (c, o) in enumerate(zip(calls, outcomes, strict=True)) if _ours(c, o)]
        settled = await asyncio.gather(
            *(self._settle_conflict(calls[i], outcomes[i]) for i in conflicts)
        )
        for i, outcome in zip(conflicts, settled, strict=True):  # a task only per 409
            outcomes[i] = outcome
        return outcomes

    async def _settle_conflict(self, call: NvrCall, outcome: Outcome) -> Outcome:
        """A create NVR already holds under our report identifier is ours (the identifier is the
        journal's record): an earlier attempt reached NVR but its answer did not reach us, or the
        journal sent the record again as new. Either way this event's content replaces it (PUT
        to the id found), so what the journal is told was accepted is what NVR holds. When NVR
        cannot be asked, the lookup's error decides (a retry meets the 409 and asks again)."""
        assert call.resource is not None  # `_ours`: a create
        try:
            found = await self._client.find(*call.identifier)
        except DeliveryError as exc:
            return exc
        if found is None:
            return outcome
        return await self._client.put(found, {**call.resource, "id": found})

    async def _delete(self, call: NvrCall) -> Outcome:
        assert call.nvr_id is not None  # resolved
        return await self._client.delete(call.nvr_id)

    async def lookup(self, submission: Submission[NvrCall]) -> Accepted | None:
        call = submission.request
        if call.operation == "correct":
            return None  # sent again: a PUT of the whole record is idempotent
        found = await self._client.find(*call.identifier)
        if call.operation == "create":
            return Accepted(found) if found is not None else None
        # a deletion is done when no live record carries the identifier any more
        return Accepted(call.nvr_id) if found is None and call.nvr_id else None


def rule_error(broken: Sequence[RuleViolation]) -> RuleBrokenError:
    """One dead-letter reason for every broken rule; the class names the first rule."""
    first = broken[0]
    reasons = "; ".join(f"{v.field}: {v.text}" for v in broken)
    return RuleBrokenError(
        f"NVR would refuse it: {reasons}", error_class=f"nvr_{first.rule.replace('-', '_')}"
    )


def _needs_id(call: NvrCall) -> bool:
    """A change or deletion without NVR's id (the create was reported before regbridge)."""
    return call.operation != "create" and call.nvr_id is None


def _ours(call: NvrCall, outcome: Outcome) -> bool:
    """A create NVR refused because it already holds our report identifier (409)."""
    return (
        isinstance(outcome, RegisterRejectedError)
        and outcome.register_status == 409
        and call.operation == "create"
        and call.resource is not None
    )


async def _nothing() -> list[Outcome]:
    return []
