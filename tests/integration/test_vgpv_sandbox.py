"""The VGPV sandbox over real HTTPS with mutual TLS, driven by VgpvClient: accepted, partly
refused, late, a replacement, a name twice, faults, and a certificate of another CA."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.sandboxes.kiv import KivDirectory
from services.sandboxes.vgpv import VgpvSandbox
from services.vgpv.client import VgpvClient, build_ssl_context
from services.vgpv.format import file_name, render
from shared.delivery.errors import ConfigurationError, RegisterUnavailableError, ThrottledError
from shared.files.register import FileHeader, FileKey, FileRow
from shared.schedule import Period

pytestmark = pytest.mark.integration

HSA_UNITS = 2000
SEED = 1
STOCKHOLM = ZoneInfo("Europe/Stockholm")
JANUARY = Period(2027, 1)
IN_WINDOW = datetime(2027, 2, 2, 10, 0, tzinfo=STOCKHOLM)  # January's window: 1-3 February
CLOSED = datetime(2027, 2, 3, 15, 0, tzinfo=STOCKHOLM)


@pytest.fixture(scope="module")
def kiv() -> KivDirectory:
    return KivDirectory(HSA_UNITS, SEED)


@pytest.fixture(scope="module")
def server(kiv: KivDirectory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VgpvSandbox]:
    certs = tmp_path_factory.mktemp("vgpv-certs")
    with VgpvSandbox(HSA_UNITS, SEED, kiv=kiv, certs_dir=certs) as sandbox:
        yield sandbox


@pytest.fixture
def vgpv(server: VgpvSandbox) -> VgpvSandbox:
    server.reset()
    server.set_clock(IN_WINDOW)
    return server


@pytest.fixture
async def client(vgpv: VgpvSandbox) -> AsyncIterator[VgpvClient]:
    context = build_ssl_context(
        ca_bundle=str(vgpv.certs.ca_cert),
        client_cert=str(vgpv.certs.client_cert),
        client_key=str(vgpv.certs.client_key),
    )
    async with VgpvClient(vgpv.base_url, ssl_context=context) as vgpv_client:
        yield vgpv_client


def unit_of(kiv: KivDirectory, area: str) -> dict[str, Any]:
    for record in kiv.iter_units():
        if record.get("vgrVardValOmrade") == area and "hsaEndDate" not in record:
            return record
    raise AssertionError(f"no {area} unit in KIV")


def values(unit: dict[str, Any], **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "idtyp": "PNR",
        "personid": "191212121212",
        "besoksdatum": "2027-01-14",
        "enhet_hsaid": unit["hsaIdentity"],
        "ansvarsnummer": unit["vgrAnsvarsnummer"],
        "vardval": unit["vgrVardValOmrade"],
        "yrkeskategorier": ["FT"] if unit["vgrVardValOmrade"] == "rehab" else ["LK"],
        "besokstyp": "mottagning",
        "akut": "N",
        "diagnoser": ["J069"],
        "atgarder": ["AQ014"],
    }
    row.update(changes)
    return row


def a_file(
    unit: dict[str, Any], rows: list[dict[str, Any]], sequence: int = 1
) -> tuple[FileHeader, list[bytes]]:
    key = FileKey(JANUARY, unit["hsaIdentity"])
    made = [FileRow(n, f"besok-{n}", 1, f"e{n}", "row", row) for n, row in enumerate(rows, 1)]
    replaces = file_name(key, sequence - 1) if sequence > 1 else None
    header = FileHeader(key, file_name(key, sequence), sequence, replaces, IN_WINDOW, len(made))
    return header, list(render(header, made))


async def stream(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_a_good_file_is_accepted_and_can_be_read_back(
    vgpv: VgpvSandbox, client: VgpvClient, kiv: KivDirectory
) -> None:
    unit = unit_of(kiv, "primarvard")
    header, pieces = a_file(unit, [values(unit), values(unit, akut="J")])

    receipt = await client.upload(header.name, stream(pieces))

    assert (receipt.file_name, receipt.status, receipt.reason) == (header.name, "accepted", None)
    assert [(row.number, row.accepted) for row in receipt.rows] == [(1, True), (2, True)]
    assert await client.receipt(header.name) == receipt
    assert await client.receipt("VGPV_unknown.txt") is None
    context = vgpv.certs.client_ssl_context()
    async with httpx.AsyncClient(base_url=vgpv.base_url, verify=context) as http:
        assert (await http.get(f"/filer/{header.name}")).content == b"".join(pieces)
        found = await http.get("/innehav", params={"enhet": unit["hsaIdentity"]})
        [held] = found.json()
    assert (held["fil"], len(held["rader"])) == (header.name, 2)


async def test_a_rehab_file_with_bad_rows_is_partly_accepted(
    client: VgpvClient, kiv: KivDirectory
) -> None:
    unit = unit_of(kiv, "rehab")
    rows = [
        values(unit),
        values(unit, yrkeskategorier=["LK"]),  # a rehab visit meets FT or AT
        values(unit, idtyp="RNR", personid="19600101Q011"),  # not a reserve number
    ]
    header, pieces = a_file(unit, rows)

    receipt = await client.upload(header.name, stream(pieces))

    assert receipt.status == "partly_accepted"
    assert [(row.accepted, row.code) for row in receipt.rows] == [
        (True, None),
        (False, "YRKE"),
        (False, "PERSONID"),
    ]


async def test_a_file_after_the_close_is_refused_as_late(
    vgpv: VgpvSandbox, client: VgpvClient, kiv: KivDirectory
) -> None:
    unit = unit_of(kiv, "primarvard")
    header, pieces = a_file(unit, [values(unit)])
    vgpv.set_clock(CLOSED)

    receipt = await client.upload(header.name, stream(pieces))

    assert receipt.status == "refused"
    assert receipt.reason is not None
    assert receipt.reason.startswith("SEN: ")


async def test_a_replacement_is_held_instead_and_a_name_twice_is_delivered_once(
    vgpv: VgpvSandbox, client: VgpvClient, kiv: KivDirectory
) -> None:
    unit = unit_of(kiv, "primarvard")
    first, pieces = a_file(unit, [values(unit), values(unit)])
    accepted = await client.upload(first.name, stream(pieces))

    again = await client.upload(first.name, stream(pieces))  # a retry after a lost answer
    second, pieces = a_file(unit, [values(unit, diagnoser=["Z000"])], sequence=2)
    replaced = await client.upload(second.name, stream(pieces))

    assert replace(again, raw="") == replace(accepted, raw="")  # the stored receipt, 409
    assert replaced.status == "accepted"
    assert vgpv.uploads() == {first.name: 2, second.name: 1}
    [held] = vgpv.holding()
    assert held["fil"] == second.name
    assert [row["diagnoser"] for row in held["rader"]] == [["Z000"]]


async def test_faults_become_the_projects_errors(
    vgpv: VgpvSandbox, client: VgpvClient, kiv: KivDirectory
) -> None:
    unit = unit_of(kiv, "primarvard")
    header, pieces = a_file(unit, [values(unit)])

    vgpv.set_faults(maintenance=True)
    with pytest.raises(RegisterUnavailableError) as maintenance:
        await client.upload(header.name, stream(pieces))
    vgpv.set_faults(maintenance=False, throttle_rate=1, retry_after_s=3)
    with pytest.raises(ThrottledError) as throttled:
        await client.upload(header.name, stream(pieces))
    vgpv.set_faults(throttle_rate=0, drop_rate=1)
    with pytest.raises(RegisterUnavailableError):
        await client.upload(header.name, stream(pieces))
    vgpv.set_faults(drop_rate=0, forbidden=True)
    with pytest.raises(ConfigurationError):
        await client.receipt(header.name)
    vgpv.set_faults(forbidden=False)

    assert maintenance.value.error_class == "register_maintenance"
    assert throttled.value.retry_after == 3
    assert (await client.upload(header.name, stream(pieces))).status == "accepted"
    assert vgpv.uploads() == {header.name: 1}  # faulted calls never reached the register


async def test_a_certificate_of_another_ca_pauses_the_worker(
    vgpv: VgpvSandbox, tmp_path: Path
) -> None:
    foreign = vgpv.certs.foreign_client(tmp_path)
    context = build_ssl_context(
        ca_bundle=str(foreign.ca_cert), client_cert=str(foreign.cert), client_key=str(foreign.key)
    )
    async with VgpvClient(vgpv.base_url, ssl_context=context) as client:
        with pytest.raises(ConfigurationError) as caught:
            await client.receipt("VGPV_any.txt")
    assert caught.value.error_class == "tls_handshake"


async def test_a_month_of_demo_visits_placed_through_the_catalog_is_what_the_register_holds(
    vgpv: VgpvSandbox, client: VgpvClient, kiv: KivDirectory
) -> None:
    """The demo's visits → HSA and KIV merged as the catalog does → VgpvRegister.place, the
    latest version of each record per unit → render → upload: every file read, only the demo's
    unknown profession refused, the holding exactly the visits accepted."""
    from services.catalog.kiv import merge, normalise_kiv_unit
    from services.catalog.normalise import normalise_hsa_unit
    from services.sandboxes.hsa import HsaDirectory
    from services.vgpv.dev import visits
    from services.vgpv.worker import VgpvRegister
    from shared.catalog.index import CatalogIndex
    from shared.delivery.errors import DeliveryError

    hsa = HsaDirectory(HSA_UNITS, SEED)
    kiv_units = {u["hsaIdentity"]: normalise_kiv_unit(u) for u in kiv.iter_units()}
    catalog = CatalogIndex()
    for raw in hsa.iter_units():
        unit = normalise_hsa_unit(raw)
        catalog.put_unit(merge(unit, kiv_units.get(unit.hsa_id)))
    register = VgpvRegister(client, catalog)
    latest: dict[FileKey, dict[str, tuple[int, str, dict[str, Any]]]] = {}
    refused_by_worker = 0
    for _label, raw_event in itertools.islice(visits(SEED, hsa.iter_units(), JANUARY), 600):
        data = raw_event if isinstance(raw_event, bytes) else json.dumps(raw_event).encode()
        try:
            identity, event = register.parse(data)
            placement = register.place(event)
        except DeliveryError:
            refused_by_worker += 1
            continue
        rows = latest.setdefault(placement.key, {})
        if identity.operation == "cancel":
            rows.pop(identity.record_id, None)
        else:
            rows[identity.record_id] = (
                identity.record_version,
                identity.event_id,
                dict(placement.values),
            )

    accepted: set[str] = set()
    refused_rows: list[str | None] = []
    for key, rows in sorted(latest.items()):
        made = [
            FileRow(n, record_id, version, event_id, "row", row)
            for n, (record_id, (version, event_id, row)) in enumerate(sorted(rows.items()), 1)
        ]
        header = FileHeader(key, register.file_name(key, 1), 1, None, IN_WINDOW, len(made))
        receipt = await register.deliver(header, stream(list(register.render(header, made))))
        assert receipt.reason is None
        for verdict, row in zip(receipt.rows, made, strict=True):
            if verdict.accepted:
                accepted.add(row.record_id)
            else:
                refused_rows.append(verdict.code)
        assert await register.lookup(header) is not None

    assert refused_by_worker > 0  # no profession, not JSON
    assert refused_rows
    assert set(refused_rows) == {"YRKE"}  # the demo's unknown profession, nothing else
    held = {row["radnyckel"] for unit in vgpv.holding() for row in unit["rader"]}
    assert held == accepted
    assert all(count == 1 for count in vgpv.uploads().values())
