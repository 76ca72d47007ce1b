"""The code-server sandbox over real HTTP: the MEK file of the HSA sandbox's kombikas, and admin."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from services.sandboxes.codeserver import CodeServerSandbox
from services.sandboxes.hsa import HsaDirectory

pytestmark = pytest.mark.integration

HSA_UNITS = 300
SEED = 1
FIXED_NOW = datetime(2025, 3, 14, 9, 2, 17, 123456, tzinfo=UTC)  # 10:02:17.123 in Stockholm
MEK = "{http://brainpool.se/mek/MEK.xsd}"
XSI_DECLARATION = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


@pytest.fixture(scope="module")
def server() -> Iterator[CodeServerSandbox]:
    with CodeServerSandbox(hsa_units=HSA_UNITS, seed=SEED, clock=lambda: FIXED_NOW) as sandbox:
        yield sandbox


@pytest.fixture
def codeserver(server: CodeServerSandbox) -> CodeServerSandbox:
    server.reset()
    return server


@pytest.fixture
def http(codeserver: CodeServerSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=codeserver.base_url, timeout=30) as client:
        yield client


def read_file(http: httpx.Client) -> ET.Element:
    response = http.get("/mek.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<mappningar ')
    assert XSI_DECLARATION in response.text
    return ET.fromstring(response.content)  # noqa: S314 - our own sandbox's file, no entities


def rows_of(root: ET.Element) -> list[dict[str, str]]:
    """Each mappning as {child tag without namespace: text}."""
    return [
        {child.tag.removeprefix(MEK): child.text or "" for child in mapping}
        for mapping in root.iter(f"{MEK}mappning")
    ]


def test_the_file_is_the_code_servers_format(http: httpx.Client) -> None:
    root = read_file(http)

    assert root.tag == f"{MEK}mappningar"
    assert root.attrib["ExportDatum"] == "2025-03-14T10:02:17.123+01:00"
    assert int(root.attrib["MEKFilId"]) >= 1
    for row in rows_of(root):
        assert list(row) in (
            ["Kombikakod", "HSAId", "FromDatum", "SkapadDatum"],
            ["Kombikakod", "HSAId", "FromDatum", "TillDatum", "SkapadDatum"],
        )
        for tag in ("FromDatum", "TillDatum", "SkapadDatum"):
            if tag in row:
                assert datetime.fromisoformat(row[tag]).utcoffset() in (
                    timedelta(hours=1),
                    timedelta(hours=2),
                )


def test_the_rows_are_the_hsa_directorys_kombikas(http: httpx.Client) -> None:
    expected: list[dict[str, str]] = []
    for unit in HsaDirectory(HSA_UNITS, SEED).iter_units():
        periods = unit["kombika"]
        for position, period in enumerate(periods):
            row = {"Kombikakod": period["code"], "HSAId": unit["hsaIdentity"]}
            row["FromDatum"] = date.fromisoformat(period["validFrom"]).isoformat()
            if position + 1 < len(periods):
                next_from = date.fromisoformat(periods[position + 1]["validFrom"])
                row["TillDatum"] = (next_from - timedelta(days=1)).isoformat()
            expected.append(row)

    rows = rows_of(read_file(http))

    assert len(expected) > 100
    assert any("TillDatum" in row for row in expected)
    assert [
        {
            "Kombikakod": row["Kombikakod"],
            "HSAId": row["HSAId"],
            "FromDatum": row["FromDatum"][:10],
        }
        | ({"TillDatum": row["TillDatum"][:10]} if "TillDatum" in row else {})
        for row in rows
    ] == expected
    for row in rows:
        assert row["FromDatum"][10:19] == "T00:00:00"
        assert row["SkapadDatum"] == row["FromDatum"]
        if "TillDatum" in row:
            assert row["TillDatum"][10:19] == "T23:59:59"


def test_an_added_mapping_appears_and_the_file_id_grows(http: httpx.Client) -> None:
    first_id = int(read_file(http).attrib["MEKFilId"])
    body = {
        "kombika": "19108 011M04",  # a space between the parts is dropped
        "hsa_id": "SE2321000016-14L1",
        "from_date": "2007-04-03",
        "till_date": "2009-12-31",
    }

    answer = http.post("/admin/mappings", json=body)

    root = read_file(http)
    assert answer.status_code == 201
    assert answer.json() == {"file_id": first_id + 1, "rows": len(rows_of(root))}
    assert int(root.attrib["MEKFilId"]) == first_id + 1
    assert rows_of(root)[-1] == {
        "Kombikakod": "19108011M04",
        "HSAId": "SE2321000016-14L1",
        "FromDatum": "2007-04-03T00:00:00+02:00",
        "TillDatum": "2009-12-31T23:59:59+01:00",
        "SkapadDatum": "2025-03-14T10:02:17.123+01:00",
    }
    open_ended = http.post("/admin/mappings", json=body | {"till_date": None})
    assert open_ended.json()["file_id"] == first_id + 2
    assert "TillDatum" not in rows_of(read_file(http))[-1]


@pytest.mark.parametrize(
    "change",
    [
        {"kombika": "302163110022A"},  # 4-character avdelning
        {"kombika": "1910811M04"},  # 4-digit inrättning
        {"hsa_id": "not-an-hsa-id"},
        {"till_date": "2007-04-02"},  # before from_date
    ],
)
def test_a_malformed_mapping_is_refused_with_422(
    http: httpx.Client, change: dict[str, str]
) -> None:
    body = {"kombika": "19108011M04", "hsa_id": "SE2321000016-14L1", "from_date": "2007-04-03"}
    rows = len(rows_of(read_file(http)))

    answer = http.post("/admin/mappings", json=body | change)

    assert answer.status_code == 422
    assert "error" in answer.json()
    assert len(rows_of(read_file(http))) == rows


def test_removing_a_kombika_drops_all_its_rows(
    codeserver: CodeServerSandbox, http: httpx.Client
) -> None:
    kombika = codeserver.file.rows()[0].kombika
    codeserver.add(kombika, "SE2321000016-14L1", date(2024, 1, 1))
    file_id = codeserver.file.file_id

    answer = http.delete(f"/admin/mappings/{kombika}")

    assert (answer.status_code, answer.json()) == (200, {"removed": 2})
    assert kombika not in {row["Kombikakod"] for row in rows_of(read_file(http))}
    assert codeserver.file.file_id == file_id + 1
    missing = http.delete(f"/admin/mappings/{kombika}")
    assert missing.status_code == 404
    assert codeserver.file.file_id == file_id + 1  # nothing changed


def test_reset_brings_back_the_generated_rows_and_the_file_id_keeps_growing(
    codeserver: CodeServerSandbox, http: httpx.Client
) -> None:
    generated = codeserver.file.rows()
    codeserver.add("19108011M04", "SE2321000016-14L1", date(2007, 4, 3))
    codeserver.remove(generated[0].kombika)
    file_id = codeserver.file.file_id

    answer = http.post("/admin/reset")

    assert answer.status_code == 200
    assert answer.json() == {"file_id": file_id + 1, "rows": len(generated)}
    assert codeserver.file.rows() == generated
