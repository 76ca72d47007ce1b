"""The KIV sandbox over real HTTP: the HSA sandbox's county-14 units, lookups, export, admin."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.sandboxes.hsa import HsaDirectory
from services.sandboxes.kiv import KivDirectory, KivSandbox

pytestmark = pytest.mark.integration

HSA_UNITS = 300
SEED = 1
FIXED_NOW = datetime(2025, 3, 14, 9, 2, 17, tzinfo=UTC)  # 10:02:17 in Stockholm (CET)
NOW_LOCAL = "20250314100217"
ATTRIBUTES = {"hsaIdentity", "ou", "vgrAnsvarsnummer", "vgrAO3kod", "vgrCareType", "vgrVardVal"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(FIXED_NOW)


@pytest.fixture(scope="module")
def server(clock: Clock) -> Iterator[KivSandbox]:
    with KivSandbox(hsa_units=HSA_UNITS, seed=SEED, clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def kiv(server: KivSandbox, clock: Clock) -> KivSandbox:
    clock.now = FIXED_NOW
    server.reset()
    return server


@pytest.fixture
def http(kiv: KivSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kiv.base_url, timeout=30) as client:
        yield client


def read_export(http: httpx.Client) -> list[Any]:
    response = http.get("/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_the_units_are_the_hsa_sandboxs_vastra_gotaland_units(kiv: KivSandbox) -> None:
    hsa = {u["hsaIdentity"]: u for u in HsaDirectory(HSA_UNITS, SEED).iter_units()}
    county_14 = [hsa_id for hsa_id, unit in hsa.items() if unit["countyCode"] == "14"]

    units = list(kiv.directory.iter_units())

    assert [u["hsaIdentity"] for u in units] == county_14
    assert kiv.directory.count == len(county_14) > 0
    assert kiv.directory.hsa_id_of(0) == county_14[0]
    for unit in units:
        source = hsa[unit["hsaIdentity"]]
        optional = {"hsaEndDate", "modifyTimestamp", "vgrVardValOmrade"}
        assert ATTRIBUTES <= unit.keys() <= ATTRIBUTES | optional
        assert unit["ou"] == source["name"]
        assert re.fullmatch(r"[0-9]{5}", unit["vgrAnsvarsnummer"])
        assert re.fullmatch(r"[0-9]{3}", unit["vgrAO3kod"])
        assert unit["vgrCareType"] in {"01", "02", "03", "04", "05"}
        assert unit["vgrVardVal"] is ("02" in source["businessType"])
        assert ("vgrVardValOmrade" in unit) is unit["vgrVardVal"]
        if "1300" in source["businessClassificationCode"]:  # physiotherapy: Vårdval Rehab
            assert unit["vgrVardValOmrade"] == "rehab"
        if "1100" in source["businessClassificationCode"]:  # a vårdcentral: VG Primärvård
            assert unit["vgrVardValOmrade"] == "primarvard"
        assert re.fullmatch(r"20[0-9]{12}", unit["modifyTimestamp"])
        if "hsaEndDate" in unit:
            assert re.fullmatch(r"20[0-9]{6}", unit["hsaEndDate"])
    assert units == list(KivDirectory(HSA_UNITS, SEED).iter_units())  # same seed, same KIV


def test_about_one_in_twenty_units_has_an_end_date_some_past_some_future() -> None:
    directory = KivDirectory(8000, SEED)  # about 2,900 KIV units

    ends = [u["hsaEndDate"] for u in directory.iter_units() if "hsaEndDate" in u]

    assert 0.03 < len(ends) / directory.count < 0.07
    assert any(end < "20250101" for end in ends)
    assert any(end > "20300101" for end in ends)


def test_a_known_unit_answers_its_record_an_unknown_one_an_empty_object(
    kiv: KivSandbox, http: httpx.Client
) -> None:
    hsa_id = kiv.directory.hsa_id_of(0)
    outside = next(
        u["hsaIdentity"]
        for u in HsaDirectory(HSA_UNITS, SEED).iter_units()
        if u["countyCode"] != "14"
    )

    assert http.get(f"/units/{hsa_id}").json() == kiv.directory.get(hsa_id)
    for unknown in (outside, "SE2321000131-ZZZZZ", "not-an-hsa-id"):
        response = http.get(f"/units/{unknown}")
        assert (response.status_code, response.json()) == (200, {})


def test_the_export_is_current_with_a_header_every_unit_and_a_trailer(
    kiv: KivSandbox, http: httpx.Client
) -> None:
    count = kiv.directory.count

    header, *units, trailer = read_export(http)

    assert header == {"export": {"generatedAt": NOW_LOCAL, "asOf": NOW_LOCAL, "count": count}}
    assert units == list(kiv.directory.iter_units())
    assert trailer == {"end": {"count": count}}


def test_admin_creates_updates_and_removes_units(
    kiv: KivSandbox, clock: Clock, http: httpx.Client
) -> None:
    # Given an existing unit and a new one
    existing = kiv.directory.hsa_id_of(3)
    before = kiv.directory.get(existing)
    new = {"hsaIdentity": "SE2321000131-KIV001", "ou": "Vårdcentral Nya Hamnen", "x-extra": "ja"}
    # When an hour later both are upserted, and the existing one then removed
    clock.now = FIXED_NOW + timedelta(hours=1)
    created = http.post("/admin/units", json=new)
    updated = http.post("/admin/units", json={"hsaIdentity": existing, "vgrAO3kod": "999"})
    after_update = http.get(f"/units/{existing}").json()
    removed = http.delete(f"/admin/units/{existing}")
    # Then the new one is created, the existing one merged and bumped, then gone
    assert created.status_code == 201
    assert created.json() == {"unit": new | {"modifyTimestamp": "20250314110217"}, "created": True}
    assert updated.status_code == 200
    assert updated.json()["created"] is False
    assert before is not None
    assert after_update == before | {"vgrAO3kod": "999", "modifyTimestamp": "20250314110217"}
    assert (removed.status_code, removed.json()) == (200, {"removed": True})
    assert http.get(f"/units/{existing}").json() == {}
    gone = http.delete(f"/admin/units/{existing}")
    assert gone.status_code == 404
    assert "error" in gone.json()
    header, *units, _ = read_export(http)
    assert header["export"]["count"] == kiv.directory.count
    assert units[-1]["hsaIdentity"] == new["hsaIdentity"]
    assert existing not in {u["hsaIdentity"] for u in units}
    assert http.post("/admin/units", json={"ou": "no id"}).status_code == 422
    assert http.post("/admin/units", json={"hsaIdentity": "SE123-A"}).status_code == 422


def test_null_drops_an_attribute(kiv: KivSandbox, http: httpx.Client) -> None:
    hsa_id = kiv.directory.hsa_id_of(0)
    http.post("/admin/units", json={"hsaIdentity": hsa_id, "hsaEndDate": "20240101"})

    answer = http.post("/admin/units", json={"hsaIdentity": hsa_id, "hsaEndDate": None}).json()

    assert "hsaEndDate" not in answer["unit"]


def test_reset_brings_back_the_generated_units(kiv: KivSandbox, http: httpx.Client) -> None:
    generated = list(kiv.directory.iter_units())
    kiv.upsert({"hsaIdentity": "SE2321000131-KIV002", "ou": "Tillagd"})
    kiv.upsert({"hsaIdentity": generated[1]["hsaIdentity"], "ou": "Omdöpt"})
    assert kiv.remove(generated[2]["hsaIdentity"])

    response = http.post("/admin/reset")

    assert response.status_code == 200
    assert response.json() == {"count": len(generated)}
    assert list(kiv.directory.iter_units()) == generated
