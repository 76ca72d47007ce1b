"""Care contacts → VGPV placements: which file, which row, and whose event it is not. Pure."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from typing import Any

import pytest

from services.vgpv.dev import reserve_number
from services.vgpv.mapping import MappingRules, place
from services.vgpv.settings import VgpvSettings
from services.vgpv.units import UNIT_NOT_IN_KIV, UNIT_WITHOUT_CODE, UNKNOWN_UNIT, ClosedUnitError
from services.vgpv.worker import rules_from
from shared.catalog.index import CatalogIndex
from shared.catalog.models import CareUnit, RegionalAttributes
from shared.contracts import CareContactEvent, parse_event
from shared.contracts.examples import demo_event
from shared.delivery.errors import InvalidEventError, NotOursError, NotYetKnownError
from shared.files.register import FileKey
from shared.schedule import Period

VC = "SE2321000131-E000000000101"  # a vårdcentral: VG Primärvård
REHAB = "SE2321000131-E000000000102"  # a physiotherapy unit: Vårdval Rehab
DENTAL = "SE2321000131-E000000000103"  # Folktandvården: Vårdval Tandvård
HOSPITAL = "SE2321000131-E000000000104"  # a hospital clinic: in KIV, not in a Vårdval
CLOSED = "SE2321000131-E000000000105"
NO_AREA = "SE2321000131-E000000000106"  # published before KIV said which Vårdval
NO_CODE = "SE2321000131-E000000000107"
NOT_IN_KIV = "SE2321000131-E000000000108"
STOCKHOLM_UNIT = "SE2321000016-14L1"
RULES = MappingRules()
RESERVE_VGR = reserve_number(random.Random(1), date(1960, 1, 1))


def unit(hsa_id: str, county: str = "14", **regional: Any) -> CareUnit:
    values: dict[str, Any] = {
        "hsa_id": hsa_id,
        "name": f"Enhet {hsa_id[-3:]}",
        "care_giver_hsa_id": "SE2321000131-E000000000001",
        "care_giver_org_number": "2321000131",
        "county_code": county,
        "start_date": date(2010, 1, 1),
    }
    if regional:
        values["regional"] = RegionalAttributes(**regional)
        values["sources"] = ("hsa", "kiv")
    return CareUnit.model_validate(values)


def catalog() -> CatalogIndex:
    index = CatalogIndex()
    for care_unit in (
        unit(VC, unit_code="81234", vardval=True, vardval_area="primarvard"),
        unit(REHAB, unit_code="81235", vardval=True, vardval_area="rehab"),
        unit(DENTAL, unit_code="81236", vardval=True, vardval_area="tandvard"),
        unit(HOSPITAL, unit_code="81237", vardval=False),
        unit(CLOSED, unit_code="81238", vardval=True, vardval_area="primarvard").model_copy(
            update={"end_date": date(2026, 12, 1)}
        ),
        unit(NO_AREA, unit_code="81239", vardval=True),
        unit(NO_CODE, vardval=True, vardval_area="primarvard"),
        unit(NOT_IN_KIV),
        unit(STOCKHOLM_UNIT, county="01"),
    ):
        index.put_unit(care_unit)
    return index


CATALOG = catalog()


def visit(**changes: Any) -> CareContactEvent:
    payload: dict[str, Any] = {
        "kind": "outpatient_visit",
        "patient": {"id_type": "PNR", "id": "191212121212"},
        "unit_hsa_id": VC,
        "visited_at": "2027-01-14T09:30:00+01:00",
        "visit_type": "1",
        "professions": ["LK", "SJ"],
        "akut": "N",
        "diagnoses": ["J069", "B341A"],
        "procedures": [
            {"code": "AQ014", "diagnosis_index": 0, "performed_on": "2027-01-14"},
            {"code": "AQ014", "performed_on": "2027-01-14"},
        ],
    }
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    event = parse_event(
        json.dumps(demo_event("care.contact", "besok-1", 1, "create", payload)).encode()
    )
    assert isinstance(event, CareContactEvent)
    return event


def test_a_primary_care_visit_is_a_row_of_its_units_month() -> None:
    placement = place(visit(), CATALOG, RULES)

    assert placement.key == FileKey(Period(2027, 1), VC)
    assert placement.values == {
        "idtyp": "PNR",
        "personid": "191212121212",
        "besoksdatum": "2027-01-14",
        "enhet_hsaid": VC,
        "ansvarsnummer": "81234",
        "vardval": "primarvard",
        "yrkeskategorier": ["LK", "SJ"],
        "besokstyp": "mottagning",
        "akut": "N",
        "diagnoser": ["J069", "B341A"],
        "atgarder": ["AQ014"],  # a procedure done twice is one code of the visit
    }
    json.dumps(placement.values)  # JSON-safe, as the runtime stores it


def test_the_month_is_the_visits_in_swedish_time() -> None:
    late = place(visit(visited_at="2027-01-31T23:30:00Z"), CATALOG, RULES)  # 00:30 on 1 Feb
    on_day = place(visit(visited_at=None, visited_on="2027-01-31"), CATALOG, RULES)

    assert (late.key.period, late.values["besoksdatum"]) == (Period(2027, 2), "2027-02-01")
    assert (on_day.key.period, on_day.values["besoksdatum"]) == (Period(2027, 1), "2027-01-31")


def test_a_rehab_visit_is_vardval_rehabs() -> None:
    placement = place(visit(unit_hsa_id=REHAB, professions=["FT"]), CATALOG, RULES)
    assert placement.key.owner == REHAB
    assert (placement.values["vardval"], placement.values["ansvarsnummer"]) == ("rehab", "81235")


@pytest.mark.parametrize(
    ("patient", "idtyp"),
    [
        ({"id_type": "PNR", "id": "191212121212"}, "PNR"),
        ({"id_type": "SNR", "id": "197010632391"}, "SNR"),
        ({"id_type": "RESERVE_VGR", "id": RESERVE_VGR}, "RNR"),
    ],
)
def test_the_patient_ids_vgpv_takes(patient: dict[str, str], idtyp: str) -> None:
    values = place(visit(patient=patient), CATALOG, RULES).values
    assert (values["idtyp"], values["personid"]) == (idtyp, patient["id"])


@pytest.mark.parametrize(
    "patient",
    [{"id_type": "RESERVE_SLL", "id": "991981000010"}, {"id_type": "NRID", "id": "22800101AB12"}],
)
def test_another_regions_or_the_national_reserve_id_is_refused(patient: dict[str, str]) -> None:
    with pytest.raises(InvalidEventError, match=r"payload\.patient\.id_type: VGPV takes"):
        place(visit(patient=patient), CATALOG, RULES)


@pytest.mark.parametrize(
    ("changes", "besokstyp"),
    [
        ({"visit_type": None}, "mottagning"),
        ({"visit_type": "3"}, "telefon"),
        ({"visit_type": "4"}, "digital"),
        ({"contact_form": "home_care", "visit_type": "1"}, "hembesok"),
    ],
)
def test_the_visit_type(changes: dict[str, Any], besokstyp: str) -> None:
    assert place(visit(**changes), CATALOG, RULES).values["besokstyp"] == besokstyp


def test_planned_unless_flagged_emergency() -> None:
    assert place(visit(akut="1"), CATALOG, RULES).values["akut"] == "J"
    assert place(visit(akut="J"), CATALOG, RULES).values["akut"] == "J"
    assert place(visit(akut="2"), CATALOG, RULES).values["akut"] == "N"
    assert place(visit(akut=None), CATALOG, RULES).values["akut"] == "N"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"visit_type": "9"}, r"payload\.visit_type: 9 is not a visit type VGPV knows"),
        ({"professions": []}, r"payload\.professions: VGPV needs the profession"),
    ],
)
def test_a_visit_vgpv_cannot_take_says_which_field(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        place(visit(**changes), CATALOG, RULES)


@pytest.mark.parametrize(
    ("changes", "whose"),
    [
        ({"unit_hsa_id": None, "kombika": "11010046M30"}, "a kombika is Region Stockholm's"),
        ({"unit_hsa_id": STOCKHOLM_UNIT}, "a unit of county 01, not VGPV's"),
        ({"unit_hsa_id": "SE2321000255-O00042"}, "not in Västra Götaland's directory"),
        ({"unit_hsa_id": HOSPITAL}, "not in a Vårdval"),
        ({"unit_hsa_id": DENTAL}, "in Vårdval tandvard, not VG Primärvård or Vårdval Rehab"),
    ],
)
def test_another_registers_visit_is_not_ours_and_says_whose(
    changes: dict[str, Any], whose: str
) -> None:
    with pytest.raises(NotOursError, match=whose):
        place(visit(**changes), CATALOG, RULES)


def test_kinds_other_than_an_outpatient_visit_are_not_ours() -> None:
    raw = demo_event(
        "care.contact",
        "vardansvar-1",
        1,
        "create",
        {
            "kind": "care_responsibility",
            "patient": {"id_type": "PNR", "id": "191212121212"},
            "unit_hsa_id": VC,
            "starts_on": "2027-01-14",
            "form": "home_care",
        },
    )
    event = parse_event(json.dumps(raw).encode())
    assert isinstance(event, CareContactEvent)
    with pytest.raises(NotOursError, match="care_responsibility: VGPV's file holds outpatient"):
        place(event, CATALOG, RULES)


def test_a_region_unit_the_catalog_does_not_know_yet_is_retried_for_the_grace() -> None:
    rules = MappingRules(rules_from(VgpvSettings()).units)
    with pytest.raises(NotYetKnownError) as caught:
        place(visit(unit_hsa_id="SE2321000131-E999"), CATALOG, rules)
    assert caught.value.final_class == UNKNOWN_UNIT
    assert caught.value.grace == timedelta(hours=24)

    with pytest.raises(NotYetKnownError) as not_in_kiv:
        place(visit(unit_hsa_id=NOT_IN_KIV), CATALOG, rules)
    assert not_in_kiv.value.final_class == UNIT_NOT_IN_KIV  # the catalog may not merge KIV yet

    with pytest.raises(NotYetKnownError) as no_code:
        place(visit(unit_hsa_id=NO_CODE), CATALOG, rules)
    assert no_code.value.final_class == UNIT_WITHOUT_CODE


def test_a_closed_unit_is_a_dead_letter() -> None:
    with pytest.raises(ClosedUnitError, match="closed on 2027-01-14"):
        place(visit(unit_hsa_id=CLOSED), CATALOG, RULES)


def test_a_vardval_unit_without_an_area_is_primary_care_by_default() -> None:
    assert place(visit(unit_hsa_id=NO_AREA), CATALOG, RULES).values["vardval"] == "primarvard"


def test_the_settings_choose_the_areas_and_visit_types() -> None:
    settings = VgpvSettings(vardval_areas=("rehab",), visit_types={"7": "digital"})
    rules = rules_from(settings)

    with pytest.raises(NotOursError):
        place(visit(), CATALOG, rules)
    placement = place(visit(unit_hsa_id=REHAB, visit_type="7"), CATALOG, rules)
    assert placement.values["besokstyp"] == "digital"
