"""NVR's register rules for one reported vaccination: pure, shared by the sandbox and the worker.

Every rule has a code (``OperationOutcome.issue.details.coding[0].code``, system `RULE_SYSTEM`),
the FHIR path it is about and the status an entry gets for it (422 unless said):

==================================  ==========================================================
code                                rule (status)
==================================  ==========================================================
``required``                        a part NVR needs is missing (report identifier, person id,
                                    date, NPL-id, batch, programme, unit, care provider ids)
``unknown-identifier-system``       an identifier or coding system that is not the profile's
``personal-id-format``              person id not 12 digits (hyphen, 10 digits …)
``personal-id-date``                the birth date in the person id is not a real date
``personal-id-check-digit``         Luhn check digit wrong
``samordningsnummer-as-personnummer``  day 61–91 sent under the personnummer system
``personnummer-as-samordningsnummer``  day 01–31 sent under the samordningsnummer system
``vaccine-not-on-list``             NPL-id not on the current vaccine list
``batch-not-for-vaccine``           batch number not on that vaccine's batch list
``date-in-future``                  vaccination date after today
``date-before-birth``               vaccination date before the birth date of the person id
``date-before-programme``           vaccination date before the programme's reporting start
``programme-unknown``               programme code not one of `VaccinationProgramme`
``dose-missing``                    COVID-19 vaccine without a dose number
``dose-not-a-number``               dose number given as text ("?")
``dose-out-of-range``               dose number outside 1–99
``dose-not-allowed``                dose number on a vaccine that is not a COVID-19 vaccine
``unit-unknown``                    care unit HSA-id not in the HSA directory
``unit-not-of-caregiver``           the unit belongs to another care provider (HSA-id or org no)
``caregiver-not-allowed``           the credentials may not report for this provider (403)
``duplicate-report``                the report identifier is already held by a record (409)
``unknown-id``                      change or delete of an id the register does not hold (404)
==================================  ==========================================================

`check` applies every rule but the last two, which need the register's records: the register
(or the sandbox) raises them with `duplicate_report` and `unknown_record`. A text names the field
and the rule, and never holds a personal identity number.
"""

# The en dash of ranges ("61–91") is meant: the texts quote the handbook.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from services.nvr.profile import PROGRAMME_STARTS, NvrProfile
from services.nvr.reported import (
    ReportedVaccination,
    UnitLookup,
    UnitOwner,
    VaccineFacts,
    VaccineLookup,
)
from shared.contracts.vaccination import VaccinationProgramme
from shared.identifiers import luhn_check_digit, mask_personal_ids

__all__ = [  # the inputs are re-exported: rules.py is the one import a caller needs
    "ReportedVaccination",
    "RuleContext",
    "RuleViolation",
    "UnitLookup",
    "UnitOwner",
    "VaccineFacts",
    "VaccineLookup",
    "birth_date",
    "check",
    "duplicate_report",
    "unknown_record",
    "violation",
]

RULE_SYSTEM = "urn:regbridge:nvr:rule"

REQUIRED = "required"
UNKNOWN_SYSTEM = "unknown-identifier-system"
PERSONAL_ID_FORMAT = "personal-id-format"
PERSONAL_ID_DATE = "personal-id-date"
PERSONAL_ID_CHECK_DIGIT = "personal-id-check-digit"
SNR_AS_PNR = "samordningsnummer-as-personnummer"
PNR_AS_SNR = "personnummer-as-samordningsnummer"
VACCINE_NOT_ON_LIST = "vaccine-not-on-list"
BATCH_NOT_FOR_VACCINE = "batch-not-for-vaccine"
DATE_IN_FUTURE = "date-in-future"
DATE_BEFORE_BIRTH = "date-before-birth"
DATE_BEFORE_PROGRAMME = "date-before-programme"
PROGRAMME_UNKNOWN = "programme-unknown"
DOSE_MISSING = "dose-missing"
DOSE_NOT_A_NUMBER = "dose-not-a-number"
DOSE_OUT_OF_RANGE = "dose-out-of-range"
DOSE_NOT_ALLOWED = "dose-not-allowed"
UNIT_UNKNOWN = "unit-unknown"
UNIT_NOT_OF_CAREGIVER = "unit-not-of-caregiver"
CAREGIVER_NOT_ALLOWED = "caregiver-not-allowed"
DUPLICATE_REPORT = "duplicate-report"
UNKNOWN_ID = "unknown-id"

# FHIR paths of the parts (contained resources by type, as FHIRPath writes it)
F_IDENTIFIER = "Immunization.identifier"
F_PATIENT_ID = "Immunization.contained.ofType(Patient).identifier"
F_VACCINE = "Immunization.vaccineCode.coding"
F_DATE = "Immunization.occurrenceDateTime"
F_BATCH = "Immunization.lotNumber"
F_DOSE = "Immunization.protocolApplied.doseNumber"
F_PROGRAMME = "Immunization.extension.valueCoding"  # the programme extension (NvrProfile)
F_UNIT = "Immunization.contained.ofType(Location).identifier"
F_CAREGIVER = "Immunization.contained.ofType(Organization).identifier"

_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_PROGRAMMES = {programme.value: programme for programme in VaccinationProgramme}


@dataclass(frozen=True)
class RuleViolation:
    rule: str
    field: str
    text: str
    status: int = 422


@dataclass(frozen=True)
class RuleContext:
    """What the rules look things up in; `allowed_caregivers` None: any care provider."""

    vaccines: VaccineLookup
    units: UnitLookup
    today: date
    profile: NvrProfile = field(default_factory=NvrProfile)
    allowed_caregivers: Collection[str] | None = None


def violation(rule: str, field: str, text: str, status: int = 422) -> RuleViolation:
    """A violation whose text is masked (no personal identity number ever leaves)."""
    return RuleViolation(rule, field, mask_personal_ids(f"{text} ({rule})"), status)


def check(reported: ReportedVaccination, context: RuleContext) -> list[RuleViolation]:
    """Every rule `reported` breaks, in field order; a refused care provider hides the rest."""
    owner = reported.caregiver_org_number
    allowed = context.allowed_caregivers
    if allowed is not None and owner is not None and owner not in allowed:
        text = f"{F_CAREGIVER}: these credentials may not report for care provider {owner}"
        return [violation(CAREGIVER_NOT_ALLOWED, F_CAREGIVER, text, 403)]
    found: list[RuleViolation] = []
    _check_report_identifier(reported, context.profile, found)
    birth = _check_person(reported, context.profile, found)
    facts = _check_vaccine(reported, context, found)
    programme = _check_programme(reported, context.profile, found)
    _check_date(reported.vaccinated_on, birth, programme, context.today, found)
    _check_dose(reported.dose_number, facts, found)
    _check_unit(reported, context, found)
    return found


def birth_date(personal_id: str) -> date | None:
    """The birth date in a 12-digit personnummer or samordningsnummer (day − 60), if real."""
    if not _TWELVE_DIGITS.fullmatch(personal_id):
        return None
    day = int(personal_id[6:8])
    try:
        return date(int(personal_id[:4]), int(personal_id[4:6]), day - 60 if day > 60 else day)
    except ValueError:
        return None


def duplicate_report(system: str, value: str, holder_id: str) -> RuleViolation:
    text = f"{F_IDENTIFIER}: {system}|{value} is already reported as Immunization/{holder_id}"
    return violation(DUPLICATE_REPORT, F_IDENTIFIER, text, 409)


def unknown_record(record_id: str, why: str = "is not held by the register") -> RuleViolation:
    return violation(UNKNOWN_ID, "Immunization.id", f"Immunization/{record_id} {why}", 404)


def _required(found: list[RuleViolation], field: str, what: str) -> None:
    found.append(violation(REQUIRED, field, f"{field}: {what} is required"))


def _system(found: list[RuleViolation], field: str, sent: str | None, expected: str) -> bool:
    if sent is None or sent == expected:
        return True
    found.append(violation(UNKNOWN_SYSTEM, field, f"{field}: system {sent} is not {expected}"))
    return False


def _check_report_identifier(
    reported: ReportedVaccination, profile: NvrProfile, found: list[RuleViolation]
) -> None:
    system, value = reported.report_system, reported.report_value
    if not system or not value:
        _required(found, F_IDENTIFIER, "a report identifier (system and value)")
        return
    base = profile.report_identifier_base + "/"
    if not system.startswith(base) or system == base:
        text = f"{F_IDENTIFIER}: system {system} is not {base}<source system>"
        found.append(violation(UNKNOWN_SYSTEM, F_IDENTIFIER, text))


def _check_person(
    reported: ReportedVaccination, profile: NvrProfile, found: list[RuleViolation]
) -> date | None:
    """The birth date when the person id passes, else None (and what is wrong)."""
    system, value, field = reported.patient_id_system, reported.patient_id, F_PATIENT_ID
    if not system or not value:
        _required(found, field, "a personnummer or samordningsnummer")
        return None
    pnr, snr = profile.personnummer_system, profile.samordningsnummer_system
    if system not in (pnr, snr):
        text = f"{field}: system {system} is neither personnummer ({pnr}) nor samordningsnummer"
        found.append(violation(UNKNOWN_SYSTEM, field, text))
        return None
    kind = "personnummer" if system == pnr else "samordningsnummer"
    if not _TWELVE_DIGITS.fullmatch(value):
        text = f"{field}: {kind} must be 12 digits without separator, got {len(value)} characters"
        found.append(violation(PERSONAL_ID_FORMAT, field, text))
        return None
    coordination = 61 <= int(value[6:8]) <= 91
    if coordination and system == pnr:
        text = f"{field}: a samordningsnummer (day 61–91) sent under the personnummer system"
        found.append(violation(SNR_AS_PNR, field, text))
        return None
    if not coordination and system == snr:
        text = f"{field}: samordningsnummer day must be 61–91; this is a personnummer"
        found.append(violation(PNR_AS_SNR, field, text))
        return None
    birth = birth_date(value)
    if birth is None:
        found.append(
            violation(PERSONAL_ID_DATE, field, f"{field}: {kind} birth date is not a real date")
        )
        return None
    if luhn_check_digit(value[2:11]) != int(value[11]):
        found.append(
            violation(PERSONAL_ID_CHECK_DIGIT, field, f"{field}: {kind} check digit is wrong")
        )
        return None
    return birth


def _check_vaccine(
    reported: ReportedVaccination, context: RuleContext, found: list[RuleViolation]
) -> VaccineFacts | None:
    npl_id, batch = reported.npl_id, reported.batch
    if not npl_id:
        _required(found, F_VACCINE, "a coding with the NPL-id")
        return None
    if not _system(found, F_VACCINE, reported.vaccine_system, context.profile.npl_id_system):
        return None
    facts = context.vaccines(npl_id)
    if facts is None:
        text = f"{F_VACCINE}: NPL-id {npl_id} is not on the current vaccine list"
        found.append(violation(VACCINE_NOT_ON_LIST, F_VACCINE, text))
        return None
    if batch is None:
        _required(found, F_BATCH, "the batch number")
    elif batch not in facts.batches:
        text = f"{F_BATCH}: batch {batch} is not a batch of vaccine {npl_id}"
        found.append(violation(BATCH_NOT_FOR_VACCINE, F_BATCH, text))
    return facts


def _check_programme(
    reported: ReportedVaccination, profile: NvrProfile, found: list[RuleViolation]
) -> VaccinationProgramme | None:
    code = reported.programme
    if not code:
        _required(found, F_PROGRAMME, "the programme")
        return None
    if not _system(found, F_PROGRAMME, reported.programme_system, profile.programme_system):
        return None
    programme = _PROGRAMMES.get(code)
    if programme is None:
        known = ", ".join(_PROGRAMMES)
        text = f"{F_PROGRAMME}: programme {code} is not one of {known}"
        found.append(violation(PROGRAMME_UNKNOWN, F_PROGRAMME, text))
    return programme


def _check_date(
    day: date | None,
    birth: date | None,
    programme: VaccinationProgramme | None,
    today: date,
    found: list[RuleViolation],
) -> None:
    if day is None:
        _required(found, F_DATE, "the vaccination date (YYYY-MM-DD)")
        return
    if day > today:
        text = f"{F_DATE}: {day.isoformat()} is in the future (today is {today.isoformat()})"
        found.append(violation(DATE_IN_FUTURE, F_DATE, text))
    if birth is not None and day < birth:
        text = f"{F_DATE}: {day.isoformat()} is before the person's birth date"
        found.append(violation(DATE_BEFORE_BIRTH, F_DATE, text))
    start = None if programme is None else PROGRAMME_STARTS.get(programme)
    if start is not None and day < start:
        text = (
            f"{F_DATE}: {day.isoformat()} is before programme {programme} began "
            f"to be reported ({start.isoformat()})"
        )
        found.append(violation(DATE_BEFORE_PROGRAMME, F_DATE, text))


def _check_dose(
    dose: int | str | None, facts: VaccineFacts | None, found: list[RuleViolation]
) -> None:
    if facts is None:  # the vaccine is unknown: whether a dose belongs is unknown too
        return
    if not facts.covid19:
        if dose is not None:
            text = f"{F_DOSE}: a dose number is reported for COVID-19 vaccines only"
            found.append(violation(DOSE_NOT_ALLOWED, F_DOSE, text))
        return
    if dose is None:
        text = f"{F_DOSE}: a COVID-19 vaccine needs its dose number (1–99; 4 when unsure)"
        found.append(violation(DOSE_MISSING, F_DOSE, text))
    elif isinstance(dose, str):
        text = f"{F_DOSE}: dose number must be an integer 1–99, not text (4 when unsure)"
        found.append(violation(DOSE_NOT_A_NUMBER, F_DOSE, text))
    elif not 1 <= dose <= 99:
        text = f"{F_DOSE}: dose number {dose} is outside 1–99"
        found.append(violation(DOSE_OUT_OF_RANGE, F_DOSE, text))


def _check_unit(
    reported: ReportedVaccination, context: RuleContext, found: list[RuleViolation]
) -> None:
    unit, hsa_id, org = (
        reported.unit_hsa_id,
        reported.caregiver_hsa_id,
        reported.caregiver_org_number,
    )
    profile = context.profile
    if hsa_id is None:
        _required(found, F_CAREGIVER, f"the care provider's HSA-id ({profile.hsa_id_system})")
    if org is None:
        _required(
            found,
            F_CAREGIVER,
            f"the care provider's organisation number ({profile.organisation_number_system})",
        )
    if not unit:
        _required(found, F_UNIT, "the care unit's HSA-id")
        return
    if not _system(found, F_UNIT, reported.unit_system, profile.hsa_id_system):
        return
    owner = context.units(unit)
    if owner is None:
        text = f"{F_UNIT}: care unit {unit} is not in the HSA directory"
        found.append(violation(UNIT_UNKNOWN, F_UNIT, text))
        return
    if hsa_id is not None and hsa_id != owner.caregiver_hsa_id:
        text = f"{F_CAREGIVER}: care unit {unit} belongs to care provider {owner.caregiver_hsa_id}"
        found.append(violation(UNIT_NOT_OF_CAREGIVER, F_CAREGIVER, f"{text}, not {hsa_id}"))
    elif org is not None and org != owner.caregiver_org_number:
        text = (
            f"{F_CAREGIVER}: care unit {unit} belongs to organisation number "
            f"{owner.caregiver_org_number}, not {org}"
        )
        found.append(violation(UNIT_NOT_OF_CAREGIVER, F_CAREGIVER, text))
