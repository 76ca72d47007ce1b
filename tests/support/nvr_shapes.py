"""Every shape of Immunization the NVR mapping writes: the optional parts, the id types and the
profile's, each filled from two events whose every value differs (tests of
services/nvr/fhir_check.py, and HAPI FHIR's check of every shape)."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from services.nvr.mapping import build_immunization
from services.nvr.profile import NvrProfile
from shared.contracts import EXAMPLES, parse_event
from shared.contracts.vaccination import VaccinationEvent

PROFILES = (NvrProfile(), NvrProfile(immunization_profiles=("http://example.org/Immunization",)))


def event(variant: int, *, snr: bool, birth_date: bool, dose: bool) -> VaccinationEvent:
    """The contract's example with every value the event gives changed by `variant`."""
    raw = copy.deepcopy(EXAMPLES["vaccination"])
    payload = raw["payload"]
    raw["record_id"] = f"vacc-{variant}"
    raw["source_system"] = f"journal-{variant}"
    payload["patient"] = {
        "id_type": "SNR" if snr else "PNR",
        "id": ("197010632391" if snr else "196508313159")
        if variant == 0
        else ("201501610198" if snr else "191212121212"),
    }
    if birth_date:
        payload["patient"]["birth_date"] = "1965-08-31" if variant == 0 else "1912-12-12"
    payload["batch_number"] = f"LOT{variant}"
    payload["vaccinated_on"] = "2025-03-14" if variant == 0 else "2025-02-03"
    payload["vaccine_name"] = f"Vaccine {variant}"
    if not dose:
        payload["programme"] = "childhood"
        payload["dose_number"] = None
    else:
        payload["dose_number"] = 2 + variant
    payload = {k: v for k, v in payload.items() if v is not None}
    raw["payload"] = payload
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, VaccinationEvent), parsed
    return parsed


SHAPES = list(
    itertools.product(
        PROFILES,  # meta.profile or none
        (False, True),  # SNR
        (False, True),  # a birth date
        (False, True),  # a dose number (COVID-19)
        (False, True),  # the catalog's names
        (False, True),  # an NVR id
    )
)


def resource(variant: int, shape: tuple[Any, ...]) -> dict[str, Any]:
    profile, snr, birth_date, dose, names, nvr_id = shape
    return build_immunization(
        event(variant, snr=snr, birth_date=birth_date, dose=dose),
        profile,
        unit_name=f"Unit {variant}" if names else None,
        care_giver_name=f"Region {variant}" if names else None,
        vaccine_name=f"Vaccine {variant}" if names else None,
        nvr_id=f"imm-{variant}" if nvr_id else None,
    )
