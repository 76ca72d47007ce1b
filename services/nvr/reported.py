"""What NVR's rules read: one reported vaccination, and what the register looks it up in."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from services.nvr.profile import NvrProfile
from shared.contracts.vaccination import Vaccination


class VaccineFacts(NamedTuple):
    """What the vaccine list says of one NPL-id."""

    covid19: bool
    batches: AbstractSet[str]  # the batch numbers listed


class UnitOwner(NamedTuple):
    """The care provider a care unit belongs to, as the HSA directory says."""

    caregiver_hsa_id: str
    caregiver_org_number: str


VaccineLookup = Callable[[str], VaccineFacts | None]
UnitLookup = Callable[[str], UnitOwner | None]


@dataclass(frozen=True)
class ReportedVaccination:
    """One vaccination as reported: the values and the systems they were sent under.

    None is a part that was not sent (`vaccinated_on`: not sent as a date). `dose_number` is
    text when it was sent as text ("?").
    """

    report_system: str | None
    report_value: str | None
    patient_id_system: str | None
    patient_id: str | None
    vaccinated_on: date | None
    npl_id: str | None
    batch: str | None
    programme: str | None
    dose_number: int | str | None
    unit_hsa_id: str | None
    caregiver_hsa_id: str | None
    caregiver_org_number: str | None
    vaccine_system: str | None = None  # None: the profile's (a caller that built it knows)
    programme_system: str | None = None
    unit_system: str | None = None

    @classmethod
    def from_event(
        cls, vaccination: Vaccination, source_system: str, record_id: str, profile: NvrProfile
    ) -> ReportedVaccination:
        """As the worker would report the event (for its local pre-check)."""
        patient = vaccination.patient
        pnr = patient.id_type == "PNR"
        return cls(
            report_system=profile.report_system(source_system),
            report_value=record_id,
            patient_id_system=profile.personnummer_system
            if pnr
            else profile.samordningsnummer_system,
            patient_id=patient.id,
            vaccinated_on=vaccination.vaccinated_on,
            npl_id=vaccination.vaccine_npl_id,
            batch=vaccination.batch_number,
            programme=vaccination.programme.value,
            dose_number=vaccination.dose_number,
            unit_hsa_id=vaccination.performing_unit_hsa_id,
            caregiver_hsa_id=vaccination.care_provider.hsa_id,
            caregiver_org_number=vaccination.care_provider.organisation_number,
        )
