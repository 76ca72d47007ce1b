"""The NVR sandbox over real HTTP: OAuth2, batch bundles, Immunization by id, faults, admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.nvr.profile import NvrProfile
from services.sandboxes.nvr import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, NvrSandbox, OAuthClient

pytestmark = pytest.mark.integration

SEED = 1
START = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
FHIR_JSON = "application/fhir+json"
SOURCE = "urn:regbridge:nvr:source/TakeCare"
PNR_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SNR_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
HSA_SYSTEM = "urn:oid:1.2.752.29.4.19"
ORG_SYSTEM = "urn:oid:2.5.4.97"
NPL_SYSTEM = "http://electronichealth.se/identifier/nplid"
ATC_SYSTEM = "http://www.whocc.no/atc"
PROGRAMME_URL = "urn:regbridge:nvr:extension:vaccination-programme"
PROGRAMME_SYSTEM = "urn:regbridge:nvr:programme"
COMIRNATY = "20201214100018"
RESTRICTED = OAuthClient("restricted", "s3", allowed_caregivers=frozenset({"5566778899"}))
EXPIRED = OAuthClient("expired", "s4", key_expires_on=date(2025, 6, 14))


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def server(clock: Clock) -> Iterator[NvrSandbox]:
    default = OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    clients = [default, RESTRICTED, EXPIRED]
    with NvrSandbox(
        units=200, seed=SEED, clients=clients, token_lifetime_s=300, clock=clock
    ) as nvr:
        yield nvr


@pytest.fixture
def nvr(server: NvrSandbox, clock: Clock) -> NvrSandbox:
    server.reset()
    clock.now = START
    return server


@pytest.fixture
def http(nvr: NvrSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nvr.base_url, timeout=10) as client:
        yield client


def token(
    http: httpx.Client, client_id: str = DEFAULT_CLIENT_ID, secret: str = DEFAULT_CLIENT_SECRET
) -> str:
    answer = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
def authed(http: httpx.Client) -> httpx.Client:
    http.headers["Authorization"] = f"Bearer {token(http)}"
    return http


@pytest.fixture
def unit(nvr: NvrSandbox) -> tuple[str, str, str]:
    return nvr.unit_example(0)


def immunization(
    unit: tuple[str, str, str],
    record_id: str = "vacc-1",
    *,
    person: str = "191212121212",
    person_system: str = PNR_SYSTEM,
    npl_id: str = COMIRNATY,
    batch: str = "FN1234",
    day: str = "2024-05-02",
    programme: str = "covid19",
    dose: int | None = 1,
) -> dict[str, Any]:
    """An Immunization exactly as docs/nvr-api.md describes it, written by hand."""
    unit_hsa_id, caregiver_hsa_id, org = unit
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"system": person_system, "value": person}],
            },
            {
                "resourceType": "Organization",
                "id": "caregiver",
                "identifier": [
                    {"system": HSA_SYSTEM, "value": caregiver_hsa_id},
                    {"system": ORG_SYSTEM, "value": org},
                ],
                "name": "Region Stockholm",
            },
            {
                "resourceType": "Location",
                "id": "unit",
                "identifier": [{"system": HSA_SYSTEM, "value": unit_hsa_id}],
                "managingOrganization": {"reference": "#caregiver"},
            },
        ],
        "identifier": [{"system": SOURCE, "value": record_id}],
        "status": "completed",
        "vaccineCode": {"coding": [{"system": NPL_SYSTEM, "code": npl_id, "display": "Comirnaty"}]},
        "patient": {"reference": "#patient"},
        "occurrenceDateTime": day,
        "primarySource": True,
        "location": {"reference": "#unit"},
        "lotNumber": batch,
        "performer": [{"actor": {"reference": "#caregiver"}}],
        "extension": [
            {"url": PROGRAMME_URL, "valueCoding": {"system": PROGRAMME_SYSTEM, "code": programme}}
        ],
    }
    if dose is not None:
        resource["protocolApplied"] = [{"doseNumberPositiveInt": dose}]
    return resource


def bundle(*resources: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    def request(resource: dict[str, Any]) -> dict[str, str]:
        url = "Immunization" if method == "POST" else f"Immunization/{resource['id']}"
        return {"method": method, "url": url}

    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": r, "request": request(r)} for r in resources],
    }


def post(http: httpx.Client, body: Any, path: str = "/fhir") -> httpx.Response:
    return http.post(path, content=json.dumps(body), headers={"Content-Type": FHIR_JSON})


def statuses(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "batch-response"
    return [entry["response"]["status"] for entry in body["entry"]]


def rule_codes(entry: dict[str, Any]) -> list[str]:
    return [
        issue["details"]["coding"][0]["code"] for issue in entry["response"]["outcome"]["issue"]
    ]


def report_one(http: httpx.Client, resource: dict[str, Any]) -> str:
    """Report one Immunization; the id the register gave it."""
    answer = post(http, bundle(resource))
    assert statuses(answer) == ["201 Created"], answer.text
    location = answer.json()["entry"][0]["response"]["location"]
    return str(location.split("/")[1])


# OAuth2


def test_client_credentials_by_basic_or_form_fields_get_a_bearer_token(http: httpx.Client) -> None:
    basic = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
    )
    form = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
    )
    for answer in (basic, form):
        assert answer.status_code == 200
        body = answer.json()
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 300)
        assert body["access_token"]


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        (
            {"grant_type": "password"},
            (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "client_credentials"}, (DEFAULT_CLIENT_ID, "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            (EXPIRED.client_id, EXPIRED.client_secret),
            401,
            "invalid_client",
        ),
    ],
)
def test_token_refusals(
    http: httpx.Client, data: dict[str, str], auth: tuple[str, str], status: int, error: str
) -> None:
    answer = http.post("/oauth2/token", data=data, auth=auth)
    assert (answer.status_code, answer.json()) == (status, {"error": error})


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_register_routes_need_a_live_bearer_token(
    http: httpx.Client, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for answer in (
        http.get("/vaccines", headers=headers),
        http.get("/fhir/Immunization/nvr-1", headers=headers),
        http.post("/fhir", content=b"{}", headers=headers | {"Content-Type": FHIR_JSON}),
    ):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_a_token_expires_after_its_lifetime(authed: httpx.Client, clock: Clock) -> None:
    assert authed.get("/vaccines").status_code == 200
    clock.now = START + timedelta(seconds=299)
    assert authed.get("/vaccines").status_code == 200
    clock.now = START + timedelta(seconds=300)
    assert authed.get("/vaccines").status_code == 401


def test_revocation_ends_every_token_issued_so_far(authed: httpx.Client) -> None:
    assert authed.post("/admin/tokens/revoke").json() == {"revoked": 1}
    assert authed.get("/vaccines").status_code == 401
    authed.headers["Authorization"] = f"Bearer {token(authed)}"
    assert authed.get("/vaccines").status_code == 200


# report


def test_a_bundle_of_good_and_bad_entries_answers_each_in_order(
    authed: httpx.Client, nvr: NvrSandbox, unit: Any
) -> None:
    answer = post(
        authed,
        bundle(
            immunization(unit, "a"),
            immunization(unit, "b", batch="LR4567"),
            immunization(unit, "c", day="2025-06-16"),
            immunization(
                unit, "d", person="201501610198", person_system=SNR_SYSTEM, day="2025-01-10"
            ),
            immunization(unit, "e", person="197010632391"),
        ),
    )
    assert statuses(answer) == [
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "201 Created",
        "422 Unprocessable Entity",
    ]
    entries = answer.json()["entry"]
    assert entries[0]["response"]["location"].endswith("/_history/1")
    assert rule_codes(entries[1]) == ["batch-not-for-vaccine"]
    issue = entries[1]["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Immunization.lotNumber"]
    assert "batch LR4567 is not a batch of vaccine 20201214100018" in issue["details"]["text"]
    assert rule_codes(entries[2]) == ["date-in-future"]
    assert rule_codes(entries[4]) == ["samordningsnummer-as-personnummer"]
    assert "1970106323" not in answer.text
    assert sorted(r.key[1] for r in nvr.records() if r.key) == ["a", "d"]


def test_more_than_100_entries_is_413_and_nothing_is_stored(
    authed: httpx.Client, nvr: NvrSandbox, unit: Any
) -> None:
    answer = post(authed, bundle(*[immunization(unit, f"v{i}") for i in range(101)]))
    assert answer.status_code == 413
    assert nvr.records() == []
    assert (
        statuses(post(authed, bundle(*[immunization(unit, f"v{i}") for i in range(100)])))
        == ["201 Created"] * 100
    )


def test_an_entry_of_invalid_structure_rejects_the_whole_bundle_naming_it(
    authed: httpx.Client, nvr: NvrSandbox, unit: Any
) -> None:
    broken = immunization(unit, "b", dose=None) | {
        "protocolApplied": [{"doseNumberPositiveInt": 0}]
    }
    answer = post(authed, bundle(immunization(unit, "a"), broken))
    assert answer.status_code == 400
    issue = answer.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource"]
    assert "doseNumberPositiveInt" in issue["details"]["text"]
    assert nvr.records() == []


def test_a_dose_sent_as_text_is_an_entry_rejection(authed: httpx.Client, unit: Any) -> None:
    resource = immunization(unit, dose=None) | {"protocolApplied": [{"doseNumberString": "?"}]}
    answer = post(authed, bundle(resource))
    assert statuses(answer) == ["422 Unprocessable Entity"]
    assert rule_codes(answer.json()["entry"][0]) == ["dose-not-a-number"]


def test_the_same_report_identifier_as_new_again_is_409(authed: httpx.Client, unit: Any) -> None:
    answer = post(authed, bundle(immunization(unit, "a"), immunization(unit, "a")))
    assert statuses(answer) == ["201 Created", "409 Conflict"]
    assert rule_codes(answer.json()["entry"][1]) == ["duplicate-report"]
    assert statuses(post(authed, bundle(immunization(unit, "a")))) == ["409 Conflict"]


def test_a_care_provider_the_credentials_do_not_cover_is_403(http: httpx.Client, unit: Any) -> None:
    http.headers["Authorization"] = (
        f"Bearer {token(http, RESTRICTED.client_id, RESTRICTED.client_secret)}"
    )
    answer = post(http, bundle(immunization(unit, "a")))
    assert statuses(answer) == ["403 Forbidden"]
    assert rule_codes(answer.json()["entry"][0]) == ["caregiver-not-allowed"]


def test_an_unknown_unit_or_one_of_another_provider_is_refused(
    authed: httpx.Client, nvr: NvrSandbox, unit: Any
) -> None:
    other = next(nvr.unit_example(i) for i in range(1, 200) if nvr.unit_example(i)[2] != unit[2])
    answer = post(
        authed,
        bundle(
            immunization(("SE2321000016-ZZZZZZZ", unit[1], unit[2])),
            immunization((other[0], unit[1], unit[2]), "b"),
        ),
    )
    entries = answer.json()["entry"]
    assert [rule_codes(e) for e in entries] == [["unit-unknown"], ["unit-not-of-caregiver"]]


# change, delete, read, search


def test_change_by_single_put_and_by_bundle(authed: httpx.Client, unit: Any) -> None:
    record_id = report_one(authed, immunization(unit, "a"))
    changed = immunization(unit, "a", dose=2) | {"id": record_id}
    answer = authed.put(
        f"/fhir/Immunization/{record_id}",
        content=json.dumps(changed),
        headers={"Content-Type": FHIR_JSON},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["meta"]["versionId"] == "2"
    assert answer.json()["protocolApplied"][0]["doseNumberPositiveInt"] == 2
    again = immunization(unit, "a", dose=3) | {"id": record_id}
    assert statuses(post(authed, bundle(again, method="PUT"))) == ["200 OK"]
    read = authed.get(f"/fhir/Immunization/{record_id}")
    assert (read.json()["meta"]["versionId"], read.headers["etag"]) == ("3", 'W/"3"')


def test_change_of_an_unknown_id_is_404_and_an_id_mismatch_400(
    authed: httpx.Client, unit: Any
) -> None:
    unknown = immunization(unit) | {"id": "nvr-99999999"}
    answer = authed.put(
        "/fhir/Immunization/nvr-99999999",
        content=json.dumps(unknown),
        headers={"Content-Type": FHIR_JSON},
    )
    assert answer.status_code == 404
    assert answer.json()["issue"][0]["details"]["coding"][0]["code"] == "unknown-id"
    assert statuses(post(authed, bundle(unknown, method="PUT"))) == ["404 Not Found"]
    mismatch = authed.put(
        "/fhir/Immunization/nvr-1", content=json.dumps(unknown), headers={"Content-Type": FHIR_JSON}
    )
    assert mismatch.status_code == 400


def test_delete_then_read_and_search(authed: httpx.Client, unit: Any) -> None:
    record_id = report_one(authed, immunization(unit, "a"))
    search = authed.get("/fhir/Immunization", params={"identifier": f"{SOURCE}|a"})
    assert (search.json()["type"], search.json()["total"]) == ("searchset", 1)
    assert search.json()["entry"][0]["resource"]["id"] == record_id
    assert authed.delete(f"/fhir/Immunization/{record_id}").status_code == 204
    assert authed.delete(f"/fhir/Immunization/{record_id}").status_code == 204
    assert authed.get(f"/fhir/Immunization/{record_id}").status_code == 410
    assert (
        authed.get("/fhir/Immunization", params={"identifier": f"{SOURCE}|a"}).json()["total"] == 0
    )
    assert authed.delete("/fhir/Immunization/nvr-99999999").status_code == 404
    assert authed.get("/fhir/Immunization/nvr-99999999").status_code == 404
    assert authed.get("/fhir/Immunization", params={"identifier": "no-bar"}).status_code == 400
    report_one(authed, immunization(unit, "a"))  # a deleted report's identifier is free again


def test_delete_for_another_care_provider_is_403(
    authed: httpx.Client, http: httpx.Client, unit: Any
) -> None:
    record_id = report_one(authed, immunization(unit, "a"))
    restricted = token(http, RESTRICTED.client_id, RESTRICTED.client_secret)
    answer = http.delete(
        f"/fhir/Immunization/{record_id}", headers={"Authorization": f"Bearer {restricted}"}
    )
    assert answer.status_code == 403


# whole-request answers


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{}", "text/plain", 415),
        (b"{}", "application/xml", 415),
        (
            '{"resourceType": "Bundle", "type": "batch", "entry": [], "x": "å"}'.encode("latin-1"),
            FHIR_JSON,
            400,
        ),
        (b'{"resourceType": "Bundle", ', FHIR_JSON, 400),
        (b'{"resourceType": "Patient"}', FHIR_JSON, 400),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}', FHIR_JSON, 400),
    ],
)
def test_whole_request_refusals(
    authed: httpx.Client, content: bytes, content_type: str, status: int
) -> None:
    answer = authed.post("/fhir", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_application_json_with_charset_is_accepted(authed: httpx.Client) -> None:
    body = json.dumps({"resourceType": "Bundle", "type": "batch", "entry": []})
    answer = authed.post(
        "/fhir", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert statuses(answer) == []


# vaccine list and admin


def listed_npl_ids(authed: httpx.Client) -> list[str]:
    """The NPL-ids of GET /vaccines (a Bundle of Medications, one per batch), in order."""
    answer = authed.get("/vaccines")
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    bundle = answer.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    ids: list[str] = []
    for entry in bundle["entry"]:
        coding = entry["resource"]["code"]["coding"]
        npl = next(c["code"] for c in coding if c["system"] == NPL_SYSTEM)
        if npl not in ids:
            ids.append(npl)
    return ids


def test_the_vaccine_list_is_a_bundle_of_medications_one_per_batch(authed: httpx.Client) -> None:
    bundle = authed.get("/vaccines").json()
    comirnaty = [
        entry["resource"]
        for entry in bundle["entry"]
        if {"system": NPL_SYSTEM, "code": COMIRNATY, "display": "Comirnaty"}
        in entry["resource"]["code"]["coding"]
    ]
    assert [m["batch"]["lotNumber"] for m in comirnaty] == ["FN1234", "GH5678"]
    assert comirnaty[0]["batch"]["expirationDate"] == "2027-06-30"
    assert comirnaty[0]["code"]["text"] == "Comirnaty"
    assert {"system": ATC_SYSTEM, "code": "J07BN01"} in comirnaty[0]["code"]["coding"]


def test_the_vaccine_list_can_be_replaced_and_the_rules_follow_it(
    authed: httpx.Client, unit: Any
) -> None:
    assert COMIRNATY in listed_npl_ids(authed)
    only_new = [{"nplId": "12345678901234", "name": "New", "batches": [{"number": "B1"}]}]
    assert authed.put("/admin/vaccines", json=only_new).status_code == 200
    assert listed_npl_ids(authed) == ["12345678901234"]
    answer = post(authed, bundle(immunization(unit, "a")))
    assert rule_codes(answer.json()["entry"][0]) == ["vaccine-not-on-list"]


def test_admin_records_and_reset(authed: httpx.Client, unit: Any) -> None:
    record_id = report_one(authed, immunization(unit, "a"))
    report_one(authed, immunization(unit, "b"))
    authed.delete(f"/fhir/Immunization/{record_id}")
    held = authed.get("/admin/records", params={"resources": True}).json()
    assert (held["total"], held["live"], held["deleted"]) == (2, 1, 1)
    first = held["records"][0]
    assert (first["identifierValue"], first["resource"]["id"]) == ("a", record_id)
    assert authed.post("/admin/reset").status_code == 204
    assert authed.get("/admin/records").json()["total"] == 0
    assert authed.get("/vaccines").status_code == 401  # reset revokes tokens


def test_openapi_and_health_need_no_token(http: httpx.Client) -> None:
    assert "/fhir" in http.get("/openapi.json").json()["paths"]
    assert http.get("/health").json() == {"status": "ok"}


# faults


def test_maintenance_503_with_retry_after_while_token_and_admin_answer(
    authed: httpx.Client, clock: Clock
) -> None:
    until = START + timedelta(minutes=2)
    assert (
        authed.put("/admin/faults", json={"maintenance_until": until.isoformat()}).status_code
        == 200
    )
    answer = authed.get("/vaccines")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "120")
    assert answer.json()["issue"][0]["code"] == "transient"
    assert post(authed, bundle()).status_code == 503
    assert token(authed)
    assert authed.get("/admin/faults").json()["maintenance_until"] is not None
    clock.now = until
    assert authed.get("/vaccines").status_code == 200


def test_throttle_429_error_500_and_dropped_connections(
    authed: httpx.Client, nvr: NvrSandbox
) -> None:
    nvr.set_faults(throttle_rate=1, retry_after_s=7)
    answer = authed.get("/vaccines")
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "7")
    nvr.set_faults(throttle_rate=None, error_rate=1)
    assert authed.get("/vaccines").status_code == 500
    nvr.set_faults(error_rate=None, drop_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        authed.get("/vaccines")
    nvr.set_faults(drop_rate=None, latency_ms=30)
    assert authed.get("/vaccines").status_code == 200


def test_a_transaction_profile_refuses_the_whole_bundle_for_one_bad_entry(clock: Clock) -> None:
    clock.now = START
    profile = NvrProfile(bundle_type="transaction")
    with NvrSandbox(units=50, seed=SEED, profile=profile, clock=clock) as nvr:
        unit = nvr.unit_example(0)
        with httpx.Client(base_url=nvr.base_url, timeout=10) as http:
            http.headers["Authorization"] = f"Bearer {token(http)}"
            good, bad = immunization(unit, "a"), immunization(unit, "b", batch="LR4567")
            refused = post(http, bundle(good, bad) | {"type": "transaction"})
            assert refused.status_code == 422
            assert "Bundle.entry[1]" in refused.json()["issue"][0]["details"]["text"]
            assert nvr.records() == []
            answer = post(http, bundle(good) | {"type": "transaction"})
            assert answer.json()["type"] == "transaction-response"
            assert [e["response"]["status"] for e in answer.json()["entry"]] == ["201 Created"]
