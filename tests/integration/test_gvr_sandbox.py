"""The GVR sandbox over HTTPS with client certificates: API, gvr.md's rejections 1–12, faults."""

# The en dash of ranges ("61–91") is meant: the messages quote the handbook.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from services.sandboxes.gvr import GvrCertificates, GvrSandbox, KombikaPeriod
from services.sandboxes.hsa import HsaDirectory

pytestmark = pytest.mark.integration

SEED = 1
DAY = date(2025, 1, 15)
OLD_VISIT = date(2019, 3, 1)
GVR_ID = re.compile(r"GVR-[0-9]{7}")
PATHS = {
    "besok": "/vardhandelse/besok",
    "inskrivning": "/vardhandelse/inskrivning",
    "utskrivning": "/vardhandelse/utskrivning",
    "tillganglighet": "/tillganglighet",
}
KEY_FIELDS = {  # the date and time fields of each resource's key
    "besok": ("besoksdatum", "besokstid"),
    "inskrivning": ("inskrivningsdatum", "inskrivningstid"),
    "utskrivning": ("utskrivningsdatum", "utskrivningstid"),
    "tillganglighet": ("bokningsdatum", None),
}
RESOURCES = list(PATHS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GvrSandbox]:
    with GvrSandbox(units=2000, seed=SEED, certs_dir=tmp_path_factory.mktemp("certs")) as gvr:
        yield gvr


@pytest.fixture
def gvr(server: GvrSandbox) -> GvrSandbox:
    server.reset()
    return server


@pytest.fixture
def http(gvr: GvrSandbox) -> Iterator[httpx.Client]:
    context = gvr.certs.client_ssl_context()
    with httpx.Client(base_url=gvr.base_url, verify=context, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def unit(server: GvrSandbox) -> KombikaPeriod:
    """An open kombika on DAY that was open in 2019 too."""
    return next(k for k in server.open_kombikas(DAY, 200) if k.valid_from < date(2018, 1, 1))


def enhet(code: str) -> dict[str, str]:
    return {"inr": code[:5], "klin": code[5:8], "avd": code[8:]}


def body(resource: str, unit: KombikaPeriod, **changes: Any) -> dict[str, Any]:
    common = {
        "patientId": "191212121212",
        "patientIdTyp": "PNR",
        "enhet": enhet(unit.code),
        "kallsystem": "TakeCare",
        "kallId": f"{resource}-1",
    }
    day = DAY.isoformat()
    own: dict[str, dict[str, Any]] = {
        "besok": {
            "besoksdatum": day,
            "besokstid": "09:30",
            "besokstyp": "1",
            "yrkeskategorier": ["LK", "SJ"],
            "akut": "N",
            "taxa": "A101",
            "diagnoser": [{"kod": "J069", "ordning": 1}, {"kod": "B341A", "ordning": 2}],
            "atgarder": [{"kod": "AQ014", "diagnosRad": 1, "datum": day}],
            "lakemedel": [{"atc": "J01CE02"}],
        },
        "inskrivning": {
            "inskrivningsdatum": day,
            "inskrivningstid": "14:05",
            "inskrivningskod": "1",
            "akut": "J",
            "vardperiodkod": f"{unit.code}0001",
        },
        "utskrivning": {
            "inskrivandeEnhet": enhet(unit.code),
            "utskrivningsdatum": day,
            "utskrivningstid": "11:00",
            "utskrivningskod": "1",
            "diagnoser": [{"kod": "I219", "ordning": 1}],
            "atgarder": [{"kod": "TNF00", "diagnosRad": 1, "datum": "2025-01-10"}],
            "vardperiodkod": f"{unit.code}0001",
        },
        "tillganglighet": {
            "kontaktkategori": "OPPENVARD",
            "vardgaranti": True,
            "bokningsdatum": day,
            "besokstid": "2025-02-03T10:00:00+01:00",
            "remissdatum": "2025-01-02",
        },
    }
    return common | own[resource] | changes


def key_query(record: dict[str, Any], resource: str) -> dict[str, str]:
    date_field, time_field = KEY_FIELDS[resource]
    query = {
        "patientId": record["patientId"],
        **{f"enhet.{part}": value for part, value in record["enhet"].items()},
        date_field: record[date_field],
    }
    return query | ({time_field: record[time_field]} if time_field else {})


def errors(response: httpx.Response) -> dict[str, str]:
    """falt → kod of a 400 answer."""
    assert response.status_code == 400, response.text
    return {fel["falt"]: fel["kod"] for fel in response.json()["fel"]}


def message(response: httpx.Response, falt: str) -> str:
    return next(fel["meddelande"] for fel in response.json()["fel"] if fel["falt"] == falt)


# create, correct, cancel, look up


@pytest.mark.parametrize("resource", RESOURCES)
def test_create_correct_cancel_and_look_up(
    resource: str, gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    path, record = PATHS[resource], body(resource, unit)

    created = http.post(path, json=record)
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    assert GVR_ID.fullmatch(record_id)
    assert created.json()["status"] == "REGISTRERAD"
    (hit,) = http.get(path, params=key_query(record, resource)).json()["traffar"]
    assert hit == {"id": record_id, "status": "REGISTRERAD"} | record

    corrected = record | {"kallsystem": "TakeCare 2"}
    answer = http.put(f"{path}/{record_id}", json=corrected)
    assert answer.json() == {"id": record_id, "status": "RATTAD"}
    (hit,) = http.get(path, params=key_query(record, resource)).json()["traffar"]
    assert (hit["status"], hit["kallsystem"]) == ("RATTAD", "TakeCare 2")

    cancel = key_query(record, resource) | {"id": record_id}
    assert http.delete(path, params=cancel).json() == {"id": record_id, "status": "MAKULERAD"}
    (hit,) = http.get(path, params=key_query(record, resource)).json()["traffar"]
    assert hit["status"] == "MAKULERAD"  # marked, not removed

    assert http.put(f"{path}/{record_id}", json=corrected).status_code == 409
    assert http.put(f"{path}/{record_id}", json={}).status_code == 409  # before the body
    assert http.delete(path, params=cancel).status_code == 409
    log = http.get("/admin/log").json()
    assert [(e["op"], e["resource"], e["id"], e["kallId"]) for e in log] == [
        (op, resource, record_id, f"{resource}-1") for op in ("create", "correct", "cancel")
    ]
    assert gvr.log() == log


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_second_create_of_the_same_key_is_409_until_the_first_is_cancelled(
    resource: str, http: httpx.Client, unit: KombikaPeriod
) -> None:
    path, record = PATHS[resource], body(resource, unit)
    first = http.post(path, json=record).json()["id"]

    # another source record of the same key (availability's key is the source's booking)
    other = {} if resource == "tillganglighet" else {"kallId": "other"}
    again = http.post(path, json=record | other)

    assert again.status_code == 409
    assert again.json()["id"] == first
    assert again.json()["fel"][0]["kod"] == "GVR-DUBBLETT"
    http.delete(path, params=key_query(record, resource) | {"id": first})
    assert http.post(path, json=record).status_code == 201


def test_two_bookings_of_one_patient_at_one_unit_on_one_day_are_two_records(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    first = body("tillganglighet", unit, kallId="vantelista-1")
    second = body("tillganglighet", unit, kallId="vantelista-2")
    elsewhere = body("tillganglighet", unit, kallId="vantelista-1", kallsystem="Cosmic")

    answers = [http.post("/tillganglighet", json=b) for b in (first, second, elsewhere)]

    assert [a.status_code for a in answers] == [201, 201, 201]
    hits = http.get("/tillganglighet", params=key_query(first, "tillganglighet")).json()
    assert sorted((h["kallsystem"], h["kallId"]) for h in hits["traffar"]) == [
        ("Cosmic", "vantelista-1"),
        ("TakeCare", "vantelista-1"),
        ("TakeCare", "vantelista-2"),
    ]
    duplicate = http.post("/tillganglighet", json=second)
    assert duplicate.status_code == 409
    assert duplicate.json()["id"] == answers[1].json()["id"]
    assert "källsystem" in duplicate.json()["fel"][0]["meddelande"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_unknown_ids_are_404(resource: str, http: httpx.Client, unit: KombikaPeriod) -> None:
    path, record = PATHS[resource], body(resource, unit)

    assert http.put(f"{path}/GVR-9999999", json=record).status_code == 404
    cancel = key_query(record, resource) | {"id": "GVR-9999999"}
    answer = http.delete(path, params=cancel)
    assert answer.status_code == 404
    assert answer.json()["fel"][0]["kod"] == "GVR-OKANT-ID"


def test_a_correction_onto_another_records_key_is_409(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    early, late = body("besok", unit), body("besok", unit, besokstid="15:00")
    http.post("/vardhandelse/besok", json=early)
    late_id = http.post("/vardhandelse/besok", json=late).json()["id"]

    answer = http.put(f"/vardhandelse/besok/{late_id}", json=early)

    assert answer.status_code == 409
    moved = http.put(f"/vardhandelse/besok/{late_id}", json=late | {"besokstid": "16:00"})
    assert moved.status_code == 200


def test_a_cancellation_for_another_patient_or_unit_is_refused(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    record = body("besok", unit)
    record_id = http.post("/vardhandelse/besok", json=record).json()["id"]
    query = key_query(record, "besok") | {"id": record_id}

    assert errors(http.delete("/vardhandelse/besok", params=query | {"patientId": "201501010191"}))
    wrong_unit = http.delete("/vardhandelse/besok", params=query | {"enhet.avd": "Z"})
    assert errors(wrong_unit) == {"id": "GVR-MATCHAR-EJ"}
    assert errors(http.delete("/vardhandelse/besok", params={"id": record_id})) == {
        "patientId": "GVR-SAKNAS",
        "enhet.inr": "GVR-SAKNAS",
        "enhet.klin": "GVR-SAKNAS",
        "enhet.avd": "GVR-SAKNAS",
    }


def test_a_lookup_without_the_time_finds_every_record_of_the_day(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    for time_of_day in ("08:00", "13:00"):
        http.post("/vardhandelse/besok", json=body("besok", unit, besokstid=time_of_day))
    query = key_query(body("besok", unit), "besok")
    del query["besokstid"]

    assert len(http.get("/vardhandelse/besok", params=query).json()["traffar"]) == 2
    assert http.get("/vardhandelse/besok", params=query | {"besoksdatum": "2025-01-16"}).json() == {
        "traffar": []
    }
    assert "besoksdatum" in errors(
        http.get("/vardhandelse/besok", params=query | {"besoksdatum": "15/1"})
    )


# gvr.md "Likely rejections" 1–12


PNR, SNR, CODE, KOMBIKA = "GVR-PATIENTID", "GVR-PATIENTID", "GVR-KOD-FORMAT", "GVR-KOMBIKA-FORMAT"
AQ14 = [{"kod": "AQ14", "diagnosRad": 1, "datum": "2025-01-15"}]
TARIFF_2018_IN_2019 = {"taxa": "T2018", "besoksdatum": "2019-03-01", "atgarder": []}
LIKELY_REJECTIONS = [  # row of gvr.md, changes to a valid visit, falt, kod, words of the message
    (1, {"patientId": "191212121213"}, "patientId", PNR, "check digit"),
    (2, {"patientId": "19121212-1212"}, "patientId", PNR, "12 digits"),
    (2, {"patientId": "1212121212"}, "patientId", PNR, "12 digits"),
    (3, {"patientId": "197010032391", "patientIdTyp": "SNR"}, "patientId", SNR, "61–91"),
    (4, {"patientId": "991981000011", "patientIdTyp": "RESERV"}, "patientId", PNR, "5–11"),
    (6, {"enhet": {"inr": "30216", "klin": "311", "avd": "0022A"}}, "enhet.avd", KOMBIKA, "1–3"),
    (7, {"diagnoser": [{"kod": "j06.9", "ordning": 1}]}, "diagnoser[0].kod", CODE, "the dot"),
    (7, {"diagnoser": [{"kod": "J0699", "ordning": 1}]}, "diagnoser[0].kod", "GVR-KOD-OKAND", ""),
    (8, {"atgarder": AQ14}, "atgarder[0].kod", CODE, "2 letters + 3 digits"),
    (9, {"akut": "Y"}, "akut", "GVR-KOD-OKAND", "J, N, 1 eller 2"),
    (10, TARIFF_2018_IN_2019, "taxa", "GVR-KOD-EJ-GILTIG", "2018-12-31"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "changes", "falt", "kod", "said"), LIKELY_REJECTIONS)
def test_likely_rejection(
    row: int,
    changes: dict[str, Any],
    falt: str,
    kod: str,
    said: str,
    http: httpx.Client,
    unit: KombikaPeriod,
) -> None:
    record = body("besok", unit, **changes)

    answer = http.post("/vardhandelse/besok", json=record)

    assert errors(answer) == {falt: kod}, f"row {row}"
    assert said in message(answer, falt)
    assert http.get("/admin/log").json() == []


def test_row_5_a_closed_referrer_rejects_the_whole_call(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    closed = gvr.closed_kombikas(DAY)[0]
    for resource in ("besok", "inskrivning"):
        record = body(resource, unit, remitterandeEnhet=enhet(closed.code))

        answer = http.post(PATHS[resource], json=record)

        assert errors(answer) == {"remitterandeEnhet": "GVR-KOMBIKA-STANGD"}
        assert "hela anropet" in message(answer, "remitterandeEnhet")
        assert http.get(PATHS[resource], params=key_query(record, resource)).json()["traffar"] == []
    moved_out = body("utskrivning", unit, utskrivenTill=enhet(closed.code))
    assert errors(http.post(PATHS["utskrivning"], json=moved_out)) == {
        "utskrivenTill": "GVR-KOMBIKA-STANGD"
    }


def test_row_10_the_same_tariff_passes_while_it_is_valid(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    record = body("besok", unit, taxa="T2018", besoksdatum="2018-06-01")
    record["atgarder"][0]["datum"] = "2018-06-01"

    assert http.post("/vardhandelse/besok", json=record).status_code == 201


def test_row_11_a_discharge_from_another_clinic_is_rejected(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    other = next(k for k in gvr.open_kombikas(DAY, 50) if k.code[:8] != unit.code[:8])
    same_clinic = gvr.add_kombika(unit.code[:8] + "Q9", date(2020, 1, 1))
    elsewhere = body("utskrivning", unit, inskrivandeEnhet=enhet(other.code))

    answer = http.post(PATHS["utskrivning"], json=elsewhere)

    assert errors(answer) == {"inskrivandeEnhet": "GVR-ANNAN-KLINIK"}
    ward = body("utskrivning", unit, inskrivandeEnhet=enhet(same_clinic.code))
    assert http.post(PATHS["utskrivning"], json=ward).status_code == 201


def test_row_12_correcting_an_unknown_key_is_404_a_second_create_409(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    record = body("besok", unit)
    assert http.put("/vardhandelse/besok/GVR-0999999", json=record).status_code == 404
    assert http.post("/vardhandelse/besok", json=record).status_code == 201
    assert http.post("/vardhandelse/besok", json=record).status_code == 409


# more of the register's checks


def test_every_failing_field_is_listed(http: httpx.Client, unit: KombikaPeriod) -> None:
    record = body(
        "besok",
        unit,
        patientId="191212121213",
        besokstid="25:00",
        yrkeskategorier=["LK", "XX", "LAK"],
        diagnoser=[{"kod": "J069", "ordning": 2}],
        lakemedel=[{"atc": "J01"}],
        kallId=None,
        okand="x",
    )

    assert errors(http.post("/vardhandelse/besok", json=record)) == {
        "okand": "GVR-OKANT-FALT",
        "kallId": "GVR-SAKNAS",
        "besokstid": "GVR-FORMAT",
        "patientId": "GVR-PATIENTID",
        "yrkeskategorier[1]": "GVR-KOD-OKAND",
        "yrkeskategorier[2]": "GVR-FORMAT",
        "diagnoser": "GVR-ORDNING",
        "atgarder[0].diagnosRad": "GVR-ORDNING",
        "lakemedel[0].atc": "GVR-KOD-FORMAT",
    }


def test_kombikas_and_codes_are_checked_as_of_the_event_date(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    closed = gvr.closed_kombikas(DAY)[0]
    assert closed.valid_to is not None
    then = closed.valid_to.isoformat()
    visit = {"besoksdatum": then, "enhet": enhet(closed.code), "diagnoser": [], "atgarder": []}

    assert http.post("/vardhandelse/besok", json=body("besok", unit, **visit)).status_code == 201
    today = body("besok", unit, **visit | {"besoksdatum": DAY.isoformat()})
    assert errors(http.post("/vardhandelse/besok", json=today)) == {"enhet": "GVR-KOMBIKA-STANGD"}
    unknown = body("besok", unit, enhet=enhet("99999999Z"))
    assert errors(http.post("/vardhandelse/besok", json=unknown)) == {"enhet": "GVR-KOMBIKA-OKAND"}
    covid = body("besok", unit, besoksdatum="2019-03-01", diagnoser=[{"kod": "U071", "ordning": 1}])
    covid["atgarder"] = []
    assert errors(http.post("/vardhandelse/besok", json=covid)) == {
        "diagnoser[0].kod": "GVR-KOD-EJ-GILTIG"
    }


def test_a_body_that_is_not_a_json_object_is_400(http: httpx.Client) -> None:
    not_json = http.post(
        "/vardhandelse/besok", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert errors(not_json) == {"": "GVR-FORMAT"}
    assert errors(http.post("/tillganglighet", json=[1, 2])) == {"": "GVR-FORMAT"}


def test_availability_checks_its_own_fields(http: httpx.Client, unit: KombikaPeriod) -> None:
    record = body(
        "tillganglighet",
        unit,
        kontaktkategori="HEMVARD",
        vardgaranti="ja",
        besokstid="2025-02-03T10:00:00",
        remissdatum="2025-02-30",
    )

    assert errors(http.post("/tillganglighet", json=record)) == {
        "kontaktkategori": "GVR-KOD-OKAND",
        "vardgaranti": "GVR-FORMAT",
        "besokstid": "GVR-FORMAT",
        "remissdatum": "GVR-FORMAT",
    }


# identifiers (identifiers.md vectors)

VALID_IDS = [
    *[("PNR", pnr) for pnr in ("191212121212", "201501010191", "200312242498", "196508313159",
                               "201812313193", "198002292996", "202402291237")],
    *[("SNR", snr) for snr in ("197010632391", "201501610198", "199003718195")],
    ("RESERV", "991981000010"),
]  # fmt: skip
INVALID_IDS = [
    ("PNR", "191212121213"),
    ("PNR", "19121212-1212"),
    ("PNR", "1212121212"),
    ("PNR", "201513010191"),
    ("PNR", "202302291236"),
    ("SNR", "197010032391"),
    ("SNR", "201501610199"),
    ("RESERV", "991981000011"),
    ("PNR", "197010632391"),  # a samordningsnummer declared as personnummer
    ("PNR", "991981000010"),  # a reserve number declared as personnummer
    ("RESERV", "191212121212"),  # a personnummer declared as reserve number
]


def test_valid_identifiers_from_the_handbook_pass(http: httpx.Client, unit: KombikaPeriod) -> None:
    for id_type, value in VALID_IDS:
        record = body("tillganglighet", unit, patientId=value, patientIdTyp=id_type)
        answer = http.post("/tillganglighet", json=record)
        assert answer.status_code == 201, (id_type, value, answer.text)


@pytest.mark.parametrize(("id_type", "value"), INVALID_IDS)
def test_invalid_identifiers_fail(
    id_type: str, value: str, http: httpx.Client, unit: KombikaPeriod
) -> None:
    record = body("tillganglighet", unit, patientId=value, patientIdTyp=id_type)

    assert errors(http.post("/tillganglighet", json=record)) == {"patientId": "GVR-PATIENTID"}


def test_an_unknown_id_type_is_reported_with_the_id(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    record = body("tillganglighet", unit, patientIdTyp="NRID", patientId="19121212-121")

    assert errors(http.post("/tillganglighet", json=record)) == {
        "patientIdTyp": "GVR-KOD-OKAND",
        "patientId": "GVR-PATIENTID",
    }


# mutual TLS


def test_the_worker_certificate_is_accepted_over_tls_1_2(http: httpx.Client) -> None:
    answer = http.get("/admin/log")

    assert answer.status_code == 200
    assert answer.extensions["network_stream"].get_extra_info("ssl_object").version() == "TLSv1.2"


def test_a_client_certificate_from_another_ca_fails_the_handshake(
    gvr: GvrSandbox, tmp_path: Path
) -> None:
    foreign = gvr.certs.foreign_client(tmp_path)
    with (
        httpx.Client(verify=foreign.ssl_context(), timeout=10) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"{gvr.base_url}/admin/log")
    same_ca = gvr.certs.issue_client(tmp_path, "second-worker")
    with httpx.Client(verify=same_ca.ssl_context(), timeout=10) as client:
        assert client.get(f"{gvr.base_url}/admin/log").status_code == 200


def test_no_client_certificate_fails_the_handshake(gvr: GvrSandbox) -> None:
    trusts_server = ssl.create_default_context(cafile=str(gvr.certs.ca_cert))
    with (
        httpx.Client(verify=trusts_server, timeout=10) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"{gvr.base_url}/openapi.json")


def test_under_tls_1_3_a_refused_certificate_fails_only_when_the_answer_is_read(
    gvr: GvrSandbox, tmp_path: Path
) -> None:
    foreign = gvr.certs.foreign_client(tmp_path)
    with GvrSandbox(units=8, certs_dir=gvr.certs.directory, tls_maximum_version=None) as tls13:
        with httpx.Client(verify=gvr.certs.client_ssl_context(), timeout=10) as client:
            answer = client.get(f"{tls13.base_url}/admin/log")
            ssl_object = answer.extensions["network_stream"].get_extra_info("ssl_object")
            assert ssl_object.version() == "TLSv1.3"
        with (
            httpx.Client(verify=foreign.ssl_context(), timeout=10) as client,
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        ):
            client.get(f"{tls13.base_url}/admin/log")


def test_the_certificate_files_are_pem_and_pkcs12(gvr: GvrSandbox) -> None:
    certs = gvr.certs
    assert GvrCertificates.at(certs.directory) == certs
    assert certs.complete()
    password = certs.client_p12_password.read_text().strip().encode()

    key, cert, chain = pkcs12.load_key_and_certificates(certs.client_p12.read_bytes(), password)

    assert key is not None
    assert cert == x509.load_pem_x509_certificate(certs.client_cert.read_bytes())
    assert chain == [x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())]


# faults


def test_maintenance_answers_503_until_switched_off(
    http: httpx.Client, unit: KombikaPeriod
) -> None:
    assert http.post("/admin/faults", json={"maintenance": True}).json()["maintenance"] is True

    answer = http.post("/vardhandelse/besok", json=body("besok", unit))

    assert answer.status_code == 503
    assert answer.json()["fel"][0]["kod"] == "GVR-UNDERHALL"
    assert http.get("/tillganglighet", params={}).status_code == 503
    assert http.get("/admin/log").json() == []  # admin routes still answer
    http.post("/admin/faults", json={"maintenance": False})
    assert http.post("/vardhandelse/besok", json=body("besok", unit)).status_code == 201


def test_maintenance_until_a_time_says_when_to_retry(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    gvr.set_faults(maintenance_until=datetime.now(UTC) + timedelta(seconds=30))

    answer = http.post("/vardhandelse/besok", json=body("besok", unit))

    assert answer.status_code == 503
    assert 1 <= int(answer.headers["retry-after"]) <= 30
    gvr.set_faults(maintenance_until=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    assert http.post("/vardhandelse/besok", json=body("besok", unit)).status_code == 201


def test_throttling_answers_429_with_retry_after(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    http.post("/admin/faults", json={"throttle_rate": 1, "retry_after_s": 7})

    answer = http.post("/vardhandelse/besok", json=body("besok", unit))

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["fel"][0]["kod"] == "GVR-STRYPT"
    assert gvr.records() == 0


def test_errors_drops_forbidden_and_latency(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    path, record = "/vardhandelse/besok", body("besok", unit)
    gvr.set_faults(error_rate=1)
    assert http.post(path, json=record).status_code == 500
    gvr.set_faults(error_rate=None, forbidden=True)
    assert http.post(path, json=record).status_code == 403
    gvr.set_faults(forbidden=None, drop_rate=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(path, json=record)
    assert gvr.records() == 0
    gvr.set_faults(drop_rate=None, latency_ms=150, latency_jitter_ms=50)
    started = time.monotonic()
    assert http.post(path, json=record).status_code == 201
    assert 0.15 <= time.monotonic() - started < 5


def test_an_error_rate_faults_a_share_of_calls(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    gvr.set_faults(error_rate=0.5)

    statuses = [
        http.post("/tillganglighet", json=body("tillganglighet", unit)).status_code
        for _ in range(40)
    ]

    assert set(statuses) == {500, 201, 409}
    assert statuses.count(201) == 1  # one key: the first accepted, then 409s
    assert 10 <= statuses.count(500) <= 30


def test_reset_forgets_records_log_faults_and_added_kombikas(
    gvr: GvrSandbox, http: httpx.Client, unit: KombikaPeriod
) -> None:
    added = http.post("/admin/kombika", json={"code": "12345678AB", "validFrom": "2024-01-01"})
    assert added.status_code == 201
    first = http.post("/vardhandelse/besok", json=body("besok", unit, enhet=enhet("12345678AB")))
    assert first.status_code == 201
    gvr.set_faults(latency_ms=5)

    assert http.post("/admin/reset").status_code == 204

    assert (gvr.records(), gvr.log(), gvr.faults.latency_ms) == (0, [], 0)
    again = http.post("/vardhandelse/besok", json=body("besok", unit, enhet=enhet("12345678AB")))
    assert errors(again) == {"enhet": "GVR-KOMBIKA-OKAND"}
    created = http.post("/vardhandelse/besok", json=body("besok", unit))
    assert created.json()["id"] > first.json()["id"]  # ids never come back


# the kombika registry and the OpenAPI


def test_the_kombikas_are_those_of_the_hsa_directory_with_the_same_seed(
    gvr: GvrSandbox, http: httpx.Client
) -> None:
    directory = HsaDirectory(2000, SEED)
    closed = http.get("/admin/kombika", params={"on": DAY.isoformat(), "state": "closed"}).json()
    opened = http.get("/admin/kombika", params={"on": DAY.isoformat(), "limit": 3}).json()

    assert len(closed) == 10
    assert len(opened) == 3
    for kombika in closed + opened:
        unit = directory.get(kombika["hsaId"])
        assert unit is not None
        assert kombika["code"] in [entry["code"] for entry in unit["kombika"]]
    for kombika in closed:
        assert kombika["validTo"] < DAY.isoformat()
    ended = next(
        u
        for u in directory.iter_units()
        if u["hsaEndDate"] and u["kombika"] and u["kombika"][-1]["validFrom"] < u["hsaEndDate"]
    )
    code, end = ended["kombika"][-1]["code"], date.fromisoformat(ended["hsaEndDate"])
    # as the catalog reads HSA: hsaEndDate is the first day the unit is closed
    assert gvr.registry.state(code, end - timedelta(days=1)) == "open"
    assert gvr.registry.state(code, end) == "closed"


def test_the_openapi_is_3_0_and_names_every_route(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()

    assert document["openapi"] == "3.0.3"
    for resource, path in PATHS.items():
        assert set(document["paths"][path]) == {"post", "get", "delete"}, resource
        assert set(document["paths"][f"{path}/{{id}}"]) == {"put"}
        assert "422" not in document["paths"][path]["post"]["responses"]
    schemas = document["components"]["schemas"]
    assert {"Besok", "Inskrivning", "Utskrivning", "Tillganglighet", "FelSvar"} <= set(schemas)
    assert '"null"' not in str(document).replace("'", '"')
    assert http.get("/docs").status_code == 200


# --- ERSMO's content: date-only records, units by HSA-id, the new resources ------------------


def test_a_date_only_visit_at_an_hsa_id_is_created_found_and_cancelled(http: httpx.Client) -> None:
    # Given a visit without a time, at a unit named by HSA-id, with ERSMO's rows
    record = {
        "patientId": "191212121212",
        "patientIdTyp": "PNR",
        "enhet": {"hsaId": "SE2321000016-14L1"},
        "kallsystem": "ersmo",
        "kallId": "R1",
        "besoksdatum": "2014-02-03",
        "slutdatum": "2014-02-04",
        "yrkeskategorier": ["01", "02"],
        "akut": "1",
        "patientavgift": {"kod": "12", "klass": "006"},
        "diagnoser": [{"kod": "I050", "ordning": 1}, {"kod": "K570", "ordning": 2}],
        "tillstand": [{"kod": "ASA6", "klass": "010", "datum": "2008-03-11", "ordning": 1}],
        "atgarder": [{"kod": "PE009", "tillstandRad": 1, "datum": "2014-02-04"}],
        "lakemedel": [{"atc": "A01AB13", "datum": "2014-02-03", "diagnosRad": 2}],
        "produkter": [{"kod": "K1234", "klass": "005", "antal": 2}],
        "resursgrupper": [{"kod": "1234", "klass": "012"}],
        "visteFore": "1",
        "vardFore": "a",
        "ersUppdrag": "1234",
    }
    # When it is created, looked up by the day alone and cancelled
    created = http.post("/vardhandelse/besok", json=record)
    assert created.status_code == 201, created.text
    where = {"patientId": "191212121212", "enhet.hsaId": "SE2321000016-14L1"}
    found = http.get("/vardhandelse/besok", params=where | {"besoksdatum": "2014-02-03"})
    cancelled = http.request(
        "DELETE", "/vardhandelse/besok", params=where | {"id": created.json()["id"]}
    )
    # Then each answers as for any visit
    assert [hit["kallId"] for hit in found.json()["traffar"]] == ["R1"]
    assert cancelled.json()["status"] == "MAKULERAD"


def test_ersmo_rows_are_checked_against_their_tables_and_links(http: httpx.Client) -> None:
    record = {
        "patientId": "191212121212",
        "patientIdTyp": "PNR",
        "enhet": {"hsaId": "SE2321000016-14L1"},
        "kallsystem": "ersmo",
        "kallId": "R2",
        "besoksdatum": "2014-02-03",
        "slutdatum": "2014-02-02",
        "diagnoser": [{"kod": "J250", "ordning": 1}],
        "tillstand": [{"kod": "ASA9", "datum": "2008-03-11", "ordning": 1, "diagnosRad": 2}],
        "atgarder": [{"kod": "PE009", "tillstandRad": 2, "datum": "2014-02-05"}],
        "patientavgift": {"kod": "99", "klass": "006"},
    }
    assert errors(http.post("/vardhandelse/besok", json=record)) == {
        "slutdatum": "GVR-DATUM",
        "diagnoser[0].kod": "GVR-KOD-OKAND",
        "tillstand[0].kod": "GVR-KOD-OKAND",
        "tillstand[0].diagnosRad": "GVR-ORDNING",
        "atgarder[0].tillstandRad": "GVR-ORDNING",
        "atgarder[0].datum": "GVR-DATUM",
        "patientavgift.kod": "GVR-KOD-OKAND",
    }


@pytest.mark.parametrize(
    ("path", "own"),
    [
        ("/vardhandelse/vardansvar", {"vardansvarsform": "HEMSJUKVARD", "niva": "BASAL"}),
        ("/vardhandelse/vardperiod", {}),
        ("/vardhandelse/undersokning", {}),
        ("/vardhandelse/expediering", {"slutdatum": "2014-01-02"}),
    ],
)
def test_the_ersmo_kinds_have_their_own_resources(
    http: httpx.Client, unit: KombikaPeriod, path: str, own: dict[str, Any]
) -> None:
    record = {
        "patientId": "191212121212",
        "patientIdTyp": "PNR",
        "enhet": enhet(unit.code),
        "kallsystem": "ersmo",
        "kallId": "R3",
        "startdatum": DAY.isoformat(),
        "ersUppdrag": "1234",
    } | own
    if "slutdatum" in record:
        record["slutdatum"] = DAY.isoformat()
    assert http.post(path, json=record).status_code == 201
    assert http.post(path, json=record).status_code == 409  # the same key: patient, day, unit
