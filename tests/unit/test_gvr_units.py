"""Which units a care contact names (services/gvr/units.py): every unit field its kind has."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from services.gvr.units import UNIT_FIELDS, named_units
from shared.contracts import CARE_CONTACT_EXAMPLES, CareContactEvent, parse_event


def event(kind: str, **payload: Any) -> CareContactEvent:
    raw = copy.deepcopy(CARE_CONTACT_EXAMPLES[kind])
    raw["payload"].update(payload)
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, CareContactEvent)
    return parsed


def test_a_visit_names_its_unit_its_referrer_and_where_it_referred_to() -> None:
    visit = event("outpatient_visit", referred_to_unit="SE2321000016-ABCD")
    assert list(named_units(visit)) == [
        ("payload.kombika", "11010046M30"),
        ("payload.referring_kombika", "19108011M04"),
        ("payload.referred_to_unit", "SE2321000016-ABCD"),
    ]


def test_fields_left_out_are_not_named() -> None:
    visit = event("outpatient_visit", referring_kombika=None)
    assert list(named_units(visit)) == [("payload.kombika", "11010046M30")]


def test_a_discharge_names_both_units_and_where_the_patient_went() -> None:
    discharge = event("discharge", referred_to_kombika="19108011M04")
    assert list(named_units(discharge)) == [
        ("payload.admitting_kombika", "11010046M30"),
        ("payload.discharging_kombika", "11010046M31"),
        ("payload.referred_to_kombika", "19108011M04"),
    ]


@pytest.mark.parametrize("kind", list(CARE_CONTACT_EXAMPLES))
def test_every_unit_field_a_kind_has_is_asked(kind: str) -> None:
    # Given an event of each kind, its same event asked twice (the fields are found once a kind)
    contact = event(kind)
    first, again = list(named_units(contact)), list(named_units(contact))
    # Then every unit field set on the payload is named, in UNIT_FIELDS' order, and only those
    payload = contact.payload
    expected = [
        (f"payload.{name}", str(getattr(payload, name)))
        for name in UNIT_FIELDS
        if name in type(payload).model_fields and getattr(payload, name)
    ]
    assert first == again == expected
    assert expected  # every kind names at least its own unit
