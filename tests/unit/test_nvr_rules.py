"""NVR's register rules (services/nvr/rules.py): every rule accepted and refused, pure."""

# The en dash of ranges ("1–99") is meant: the tests quote the handbook.
# ruff: noqa: RUF003

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Any

import pytest

from services.nvr import rules
from services.nvr.profile import NvrProfile
from services.nvr.rules import (
    ReportedVaccination,
    RuleContext,
    RuleViolation,
    UnitOwner,
    VaccineFacts,
    birth_date,
    check,
)
from shared.contracts.vaccination import Vaccination

PROFILE = NvrProfile()
TODAY = date(2025, 6, 15)
COVID = "20201214100018"
INFANRIX = "20090917100028"
PREVENAR = "20100401100013"
BCG = "19750101100019"
VACCINES = {
    COVID: VaccineFacts(covid19=True, batches=frozenset({"FN1234", "GH5678"})),
    INFANRIX: VaccineFacts(covid19=False, batches=frozenset({"A21CE123A"})),
    PREVENAR: VaccineFacts(covid19=False, batches=frozenset({"LR4567"})),
    BCG: VaccineFacts(covid19=False, batches=frozenset({"119039B"})),
}
UNIT = "SE2321000016-8X8G7"
CAREGIVER = "SE2321000016-1000"
ORG = "2321000016"
OTHER_UNIT = "SE2321000131-E000000011111"
UNITS = {UNIT: UnitOwner(CAREGIVER, ORG), OTHER_UNIT: UnitOwner("SE2321000131-1000", "2321000131")}
VALID_PNR = [
    "191212121212",
    "201501010191",
    "200312242498",
    "196508313159",
    "201812313193",
    "198002292996",
    "202402291237",
]
VALID_SNR = ["197010632391", "201501610198", "199003718195"]


def context(**changes: Any) -> RuleContext:
    base = RuleContext(vaccines=VACCINES.get, units=UNITS.get, today=TODAY, profile=PROFILE)
    return dataclasses.replace(base, **changes)


def reported(**changes: Any) -> ReportedVaccination:
    """A COVID-19 dose that breaks no rule; `changes` break one."""
    base = ReportedVaccination(
        report_system=PROFILE.report_system("TakeCare"),
        report_value="vacc-1",
        patient_id_system=PROFILE.personnummer_system,
        patient_id="191212121212",
        vaccinated_on=date(2024, 5, 2),
        npl_id=COVID,
        batch="FN1234",
        programme="covid19",
        dose_number=1,
        unit_hsa_id=UNIT,
        caregiver_hsa_id=CAREGIVER,
        caregiver_org_number=ORG,
        vaccine_system=PROFILE.npl_id_system,
        programme_system=PROFILE.programme_system,
        unit_system=PROFILE.hsa_id_system,
    )
    return dataclasses.replace(base, **changes)


def childhood(**changes: Any) -> ReportedVaccination:
    """A childhood-programme dose of Infanrix hexa (no dose number) that breaks no rule."""
    base = reported(
        patient_id="202402291237",
        vaccinated_on=date(2024, 6, 1),
        npl_id=INFANRIX,
        batch="A21CE123A",
        programme="childhood",
        dose_number=None,
    )
    return dataclasses.replace(base, **changes)


def codes(violations: list[RuleViolation]) -> list[str]:
    return [v.rule for v in violations]


def only(violations: list[RuleViolation]) -> RuleViolation:
    assert len(violations) == 1, violations
    return violations[0]


# accepted


@pytest.mark.parametrize("make", [reported, childhood])
def test_a_correct_report_breaks_no_rule(make: Any) -> None:
    assert check(make(), context()) == []


@pytest.mark.parametrize("pnr", VALID_PNR)
def test_every_valid_personnummer_of_the_handbook_is_accepted(pnr: str) -> None:
    assert check(reported(patient_id=pnr, vaccinated_on=date(2025, 1, 10)), context()) == []


@pytest.mark.parametrize("snr", VALID_SNR)
def test_every_valid_samordningsnummer_is_accepted_under_its_system(snr: str) -> None:
    vaccination = reported(patient_id=snr, patient_id_system=PROFILE.samordningsnummer_system)
    assert check(vaccination, context()) == []


# the person


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("191212121213", rules.PERSONAL_ID_CHECK_DIGIT),
        ("19121212-1212", rules.PERSONAL_ID_FORMAT),
        ("1212121212", rules.PERSONAL_ID_FORMAT),
        ("121212-1212", rules.PERSONAL_ID_FORMAT),
        ("201513010191", rules.PERSONAL_ID_DATE),
        ("202302291236", rules.PERSONAL_ID_DATE),
        ("197010632391", rules.SNR_AS_PNR),
    ],
)
def test_invalid_personnummer_is_refused_without_showing_it(value: str, rule: str) -> None:
    found = only(check(reported(patient_id=value), context()))
    assert (found.rule, found.field, found.status) == (rule, rules.F_PATIENT_ID, 422)
    assert value not in found.text
    assert rule in found.text
    assert rules.F_PATIENT_ID in found.text


@pytest.mark.parametrize(
    ("value", "rule"),
    [("197010032391", rules.PNR_AS_SNR), ("201501610199", rules.PERSONAL_ID_CHECK_DIGIT)],
)
def test_invalid_samordningsnummer_is_refused(value: str, rule: str) -> None:
    vaccination = reported(patient_id=value, patient_id_system=PROFILE.samordningsnummer_system)
    assert codes(check(vaccination, context())) == [rule]


def test_a_reserve_number_system_is_unknown() -> None:
    vaccination = reported(patient_id="991981000010", patient_id_system="urn:oid:1.2.752.97.3.1.3")
    found = only(check(vaccination, context()))
    assert (found.rule, found.field) == (rules.UNKNOWN_SYSTEM, rules.F_PATIENT_ID)


def test_birth_date_comes_from_the_identity_number() -> None:
    assert birth_date("191212121212") == date(1912, 12, 12)
    assert birth_date("197010632391") == date(1970, 10, 3)  # samordningsnummer: day − 60
    assert birth_date("202302291236") is None
    assert birth_date("1212121212") is None


# the vaccine


def test_an_npl_id_not_on_the_vaccine_list_is_refused() -> None:
    found = only(check(reported(npl_id="20201214100099"), context()))
    assert (found.rule, found.field) == (rules.VACCINE_NOT_ON_LIST, rules.F_VACCINE)
    assert "20201214100099" in found.text


def test_a_batch_of_another_vaccine_is_refused() -> None:
    found = only(check(reported(batch="LR4567"), context()))
    assert (found.rule, found.field) == (rules.BATCH_NOT_FOR_VACCINE, "Immunization.lotNumber")
    assert "batch LR4567 is not a batch of vaccine 20201214100018" in found.text


def test_another_vaccine_code_system_is_unknown() -> None:
    found = only(check(reported(vaccine_system="http://snomed.info/sct"), context()))
    assert (found.rule, found.field) == (rules.UNKNOWN_SYSTEM, rules.F_VACCINE)


# the date


def test_a_date_in_the_future_is_refused_and_today_is_not() -> None:
    assert check(reported(vaccinated_on=TODAY), context()) == []
    found = only(check(reported(vaccinated_on=date(2025, 6, 16)), context()))
    assert (found.rule, found.field) == (rules.DATE_IN_FUTURE, rules.F_DATE)


def test_a_date_before_birth_is_refused_also_for_a_samordningsnummer() -> None:
    assert check(childhood(vaccinated_on=date(2024, 2, 29)), context()) == []
    assert codes(check(childhood(vaccinated_on=date(2024, 2, 28)), context())) == [
        rules.DATE_BEFORE_BIRTH
    ]
    snr = reported(
        patient_id="201501610198",  # born 2015-01-01
        patient_id_system=PROFILE.samordningsnummer_system,
        vaccinated_on=date(2014, 12, 31),
        npl_id=INFANRIX,
        batch="A21CE123A",
        programme="childhood",
        dose_number=None,
    )
    assert codes(check(snr, context())) == [rules.DATE_BEFORE_BIRTH]


@pytest.mark.parametrize(
    ("programme", "npl_id", "batch", "dose", "start"),
    [
        ("childhood", INFANRIX, "A21CE123A", None, date(2013, 1, 1)),
        ("pneumococcal_risk", PREVENAR, "LR4567", None, date(2022, 12, 1)),
        ("tuberculosis_child", BCG, "119039B", None, date(2025, 5, 1)),
        ("covid19", COVID, "FN1234", 1, date(2020, 12, 27)),
    ],
)
def test_a_date_before_the_programme_began_is_refused(
    programme: str, npl_id: str, batch: str, dose: int | None, start: date
) -> None:
    common = {"programme": programme, "npl_id": npl_id, "batch": batch, "dose_number": dose}
    on_start = reported(vaccinated_on=start, patient_id="191212121212", **common)
    assert check(on_start, context()) == []
    day_before = dataclasses.replace(
        on_start, vaccinated_on=date.fromordinal(start.toordinal() - 1)
    )
    found = only(check(day_before, context()))
    assert (found.rule, found.field) == (rules.DATE_BEFORE_PROGRAMME, rules.F_DATE)


def test_other_has_no_start_and_an_unknown_programme_is_refused() -> None:
    old = reported(programme="other", vaccinated_on=date(2001, 1, 1), npl_id=INFANRIX)
    old = dataclasses.replace(old, batch="A21CE123A", dose_number=None)
    assert check(old, context()) == []
    found = only(check(reported(programme="travel"), context()))
    assert (found.rule, found.field) == (rules.PROGRAMME_UNKNOWN, rules.F_PROGRAMME)
    found = only(check(reported(programme_system="urn:other"), context()))
    assert found.rule == rules.UNKNOWN_SYSTEM


# the dose


@pytest.mark.parametrize("dose", [1, 4, 99])
def test_a_covid19_dose_of_1_to_99_is_accepted(dose: int) -> None:
    assert check(reported(dose_number=dose), context()) == []


@pytest.mark.parametrize(
    ("dose", "rule"),
    [
        (None, rules.DOSE_MISSING),
        (0, rules.DOSE_OUT_OF_RANGE),
        (100, rules.DOSE_OUT_OF_RANGE),
        ("?", rules.DOSE_NOT_A_NUMBER),
    ],
)
def test_a_covid19_dose_missing_zero_text_or_over_99_is_refused(
    dose: int | str | None, rule: str
) -> None:
    found = only(check(reported(dose_number=dose), context()))
    assert (found.rule, found.field) == (rule, rules.F_DOSE)


def test_a_dose_number_on_a_vaccine_that_is_not_covid19_is_refused() -> None:
    found = only(check(childhood(dose_number=1), context()))
    assert (found.rule, found.field) == (rules.DOSE_NOT_ALLOWED, rules.F_DOSE)


# the unit and the care provider


def test_an_unknown_unit_is_refused() -> None:
    found = only(check(reported(unit_hsa_id="SE2321000016-NOPE"), context()))
    assert (found.rule, found.field, found.status) == (rules.UNIT_UNKNOWN, rules.F_UNIT, 422)


@pytest.mark.parametrize(
    "changes",
    [{"caregiver_hsa_id": "SE2321000131-1000"}, {"caregiver_org_number": "2321000131"}],
)
def test_a_unit_of_another_care_provider_is_refused(changes: dict[str, str]) -> None:
    found = only(check(reported(**changes), context()))
    assert (found.rule, found.field) == (rules.UNIT_NOT_OF_CAREGIVER, rules.F_CAREGIVER)


def test_credentials_not_allowed_for_the_care_provider_get_403_and_nothing_else() -> None:
    assert check(reported(), context(allowed_caregivers={ORG})) == []
    found = only(check(reported(batch="nope"), context(allowed_caregivers={"2321000131"})))
    assert (found.rule, found.status) == (rules.CAREGIVER_NOT_ALLOWED, 403)


# what is missing


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"report_value": None}, rules.F_IDENTIFIER),
        ({"patient_id": None}, rules.F_PATIENT_ID),
        ({"vaccinated_on": None}, rules.F_DATE),
        ({"npl_id": None}, rules.F_VACCINE),
        ({"batch": None}, rules.F_BATCH),
        ({"programme": None}, rules.F_PROGRAMME),
        ({"unit_hsa_id": None}, rules.F_UNIT),
        ({"caregiver_hsa_id": None}, rules.F_CAREGIVER),
        ({"caregiver_org_number": None}, rules.F_CAREGIVER),
    ],
)
def test_a_missing_part_is_required(changes: dict[str, Any], field: str) -> None:
    found = only(check(reported(**changes), context()))
    assert (found.rule, found.field) == (rules.REQUIRED, field)


def test_a_report_identifier_outside_the_profile_base_is_unknown() -> None:
    found = only(check(reported(report_system="urn:other:TakeCare"), context()))
    assert (found.rule, found.field) == (rules.UNKNOWN_SYSTEM, rules.F_IDENTIFIER)
    assert codes(check(reported(report_system=PROFILE.report_identifier_base + "/"), context()))


def test_several_broken_rules_are_all_reported_in_field_order() -> None:
    vaccination = reported(patient_id="191212121213", batch="LR4567", dose_number=None)
    assert codes(check(vaccination, context())) == [
        rules.PERSONAL_ID_CHECK_DIGIT,
        rules.BATCH_NOT_FOR_VACCINE,
        rules.DOSE_MISSING,
    ]


def test_register_rules_have_their_status() -> None:
    duplicate = rules.duplicate_report("urn:regbridge:nvr:source/TakeCare", "v1", "nvr-1")
    assert (duplicate.rule, duplicate.status) == (rules.DUPLICATE_REPORT, 409)
    unknown = rules.unknown_record("nvr-9")
    assert (unknown.rule, unknown.status, unknown.field) == (
        rules.UNKNOWN_ID,
        404,
        "Immunization.id",
    )


def test_texts_never_hold_a_personal_identity_number() -> None:
    text = rules.violation("x", "f", "value 191212121212 and 19121212-1212").text
    assert "1212121212" not in text
    assert "-1212" not in text


def test_a_reported_vaccination_from_an_event_passes() -> None:
    event = Vaccination.model_validate_json(
        json.dumps(
            {
                "patient": {"id_type": "SNR", "id": "197010632391"},
                "vaccinated_on": "2024-05-02",
                "vaccine_npl_id": COVID,
                "batch_number": "GH5678",
                "programme": "covid19",
                "dose_number": 2,
                "performing_unit_hsa_id": UNIT,
                "care_provider": {"hsa_id": CAREGIVER, "organisation_number": ORG},
            }
        )
    )
    vaccination = ReportedVaccination.from_event(event, "TakeCare", "vacc-7", PROFILE)
    assert vaccination.patient_id_system == PROFILE.samordningsnummer_system
    assert vaccination.report_system == "urn:regbridge:nvr:source/TakeCare"
    assert check(vaccination, context()) == []
