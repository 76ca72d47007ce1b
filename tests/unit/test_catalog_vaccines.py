"""NVR's vaccine list as FHIR Medications (one per batch) → the catalog's Vaccine values."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from services.catalog.medications import (
    VaccineListError,
    VaccineSystems,
    listed_vaccines,
    medications,
)
from services.nvr.profile import NvrProfile
from services.sandboxes.nvr.catalog import Vaccine as ListedInSandbox
from services.sandboxes.nvr.catalog import VaccineList, medication_bundle
from shared.catalog.models import Batch, Vaccine


def sandbox_bundle() -> dict[str, Any]:
    return VaccineList().as_bundle(NvrProfile())


def test_the_sandbox_serves_one_medication_per_batch() -> None:
    # Given the sandbox's default list (Comirnaty with two batches, three with one each)
    bundle = sandbox_bundle()
    # Then it is a collection Bundle of five Medications, each with one batch
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert [r["resourceType"] for r in resources] == ["Medication"] * 5
    comirnaty = resources[0]
    assert comirnaty["code"] == {
        "coding": [
            {
                "system": "http://electronichealth.se/identifier/nplid",
                "code": "20201214100018",
                "display": "Comirnaty",
            },
            {"system": "http://www.whocc.no/atc", "code": "J07BN01"},
        ],
        "text": "Comirnaty",
    }
    assert comirnaty["batch"] == {"lotNumber": "FN1234", "expirationDate": "2027-06-30"}
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == 5


def test_the_catalog_groups_medications_by_npl_id_into_vaccines() -> None:
    # When the catalog reads the sandbox's Bundle
    listed = list(listed_vaccines(sandbox_bundle()))
    # Then there is one Vaccine per NPL-id, as the catalog published them before
    assert [item.npl_id for item in listed] == [
        "20201214100018",
        "20090917100028",
        "20100401100013",
        "19750101100019",
    ]
    assert all(item.problem is None for item in listed)
    assert listed[0].vaccine == Vaccine(
        npl_id="20201214100018",
        name="Comirnaty",
        atc_code="J07BN01",
        covid19=True,
        batches=(
            Batch(number="FN1234", expires_on=date(2027, 6, 30)),
            Batch(number="GH5678", expires_on=date(2025, 1, 31)),
        ),
    )
    assert listed[1].vaccine is not None
    assert not listed[1].vaccine.covid19  # Infanrix hexa, ATC J07CA09


def test_a_vaccine_without_batches_and_a_partial_expiry() -> None:
    vaccines = [
        ListedInSandbox.model_validate({"nplId": "12345678901234", "name": "Ny", "batches": []}),
    ]
    bundle = medication_bundle(vaccines, NvrProfile())
    assert "batch" not in bundle["entry"][0]["resource"]
    (item,) = listed_vaccines(bundle)
    assert item.vaccine is not None
    assert (item.vaccine.batches, item.vaccine.atc_code) == ((), None)

    month_only = copy.deepcopy(sandbox_bundle())
    month_only["entry"][0]["resource"]["batch"]["expirationDate"] = "2027-06"
    first = next(iter(listed_vaccines(month_only)))
    assert first.vaccine is not None
    assert first.vaccine.batches[0] == Batch(number="FN1234", expires_on=None)


def test_a_medication_without_npl_id_is_a_problem_not_a_vaccine() -> None:
    bundle = sandbox_bundle()
    bundle["entry"][2]["resource"]["code"]["coding"] = [{"system": "urn:other", "code": "1"}]
    listed = list(listed_vaccines(bundle))
    assert listed[0].npl_id is None
    assert listed[0].problem is not None
    assert "has no coding under http://electronichealth.se/identifier/nplid" in listed[0].problem
    assert [item.npl_id for item in listed[1:]] == [
        "20201214100018",
        "20100401100013",
        "19750101100019",
    ]


def test_an_invalid_batch_is_a_problem_of_its_vaccine() -> None:
    bundle = sandbox_bundle()
    bundle["entry"][3]["resource"]["batch"]["lotNumber"] = "x" * 81
    by_id = {item.npl_id: item for item in listed_vaccines(bundle)}
    assert by_id["20100401100013"].vaccine is None
    assert "vaccine 20100401100013" in str(by_id["20100401100013"].problem)


def test_the_systems_are_configurable() -> None:
    profile = NvrProfile(npl_id_system="urn:oid:1.2.752.129.2.1.5.1", atc_system="urn:atc")
    bundle = VaccineList().as_bundle(profile)
    systems = VaccineSystems(npl_id="urn:oid:1.2.752.129.2.1.5.1", atc="urn:atc")
    listed = list(listed_vaccines(bundle, systems))
    assert listed[0].vaccine is not None
    assert listed[0].vaccine.covid19
    assert [item.npl_id for item in listed_vaccines(bundle)] == [None] * 5  # default systems


@pytest.mark.parametrize(
    "body",
    [
        {"vaccines": []},
        [],
        {"resourceType": "Bundle", "type": "batch", "entry": []},
        {"resourceType": "Bundle", "type": "collection", "entry": "x"},
    ],
)
def test_what_is_not_a_bundle_of_medications_is_refused(body: Any) -> None:
    with pytest.raises(VaccineListError):
        medications(body)


def test_the_sandboxs_covid19_follows_the_atc_code_and_round_trips() -> None:
    listed = VaccineList().as_json()
    assert [v["covid19"] for v in listed] == [True, False, False, False]
    assert [ListedInSandbox.model_validate(v).model_dump(mode="json") for v in listed] == listed
    with pytest.raises(ValueError, match="covid19 follows the ATC code"):
        ListedInSandbox.model_validate({"nplId": "1", "name": "x", "covid19": True})
