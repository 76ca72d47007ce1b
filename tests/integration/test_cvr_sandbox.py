"""The CVR sandbox over real SFTP on localhost, driven by CvrTransfer: an accepted file and its
receipt, rows refused (a wrong wait), a replacement, a pinned host key that is not the server's,
a refused login, a connection dropped mid-upload and the retry, and a receipt found after a
crash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from services.cvr.format import file_name, render
from services.cvr.transfer import CvrTransfer
from services.sandboxes.cvr import CvrSandbox
from services.sandboxes.cvr.keys import foreign_key_pair
from shared.delivery.errors import ConfigurationError, RegisterUnavailableError
from shared.files.register import FileHeader, FileKey, FileRow, Receipt
from shared.schedule import Period

pytestmark = pytest.mark.integration

JANUARY = Period(2027, 1)
UNIT = "11010046M30"
KEY = FileKey(JANUARY, UNIT)
BUILT_AT = datetime(2027, 2, 1, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CvrSandbox]:
    keys = tmp_path_factory.mktemp("cvr-keys")
    root = tmp_path_factory.mktemp("cvr-root")
    with CvrSandbox(certs_dir=keys, root=root) as sandbox:
        yield sandbox


@pytest.fixture
def cvr(server: CvrSandbox) -> CvrSandbox:
    server.reset()
    return server


def entry(**changes: Any) -> dict[str, Any]:
    """A waiting-list entry's row values as the mapping places them (no figures)."""
    values: dict[str, Any] = {
        "status": "V",
        "idtyp": "PNR",
        "personid": "191212121212",
        "enhet": UNIT,
        "cvr_kod": "OP123",
        "vantetyp": "behandling",
        "prioritet": "2",
        "vardgaranti": "J",
        "remissdatum": "2026-10-01",
        "beslutsdatum": "2026-11-01",
        "bokningsdatum": None,
        "bokad_till": None,
        "genomford": None,
        "avford": None,
        "avford_orsak": None,
        "undantag": [{"kind": "patient_chosen", "start": "2026-12-01", "end": "2026-12-10"}],
    }
    return values | changes


def build(
    *values: dict[str, Any], sequence: int = 1, replaces: str | None = None
) -> tuple[FileHeader, list[FileRow]]:
    rows = [
        FileRow(number, f"vanta-{number:05d}", 1, f"event-{number}", "row", row)
        for number, row in enumerate(values, start=1)
    ]
    if sequence > 1 and replaces is None:
        replaces = file_name(KEY, sequence - 1)
    head = FileHeader(KEY, file_name(KEY, sequence), sequence, replaces, BUILT_AT, len(rows))
    return head, rows


async def stream(head: FileHeader, rows: list[FileRow]) -> AsyncIterator[bytes]:
    for piece in render(head, rows):
        yield piece


async def deliver(transfer: CvrTransfer, head: FileHeader, rows: list[FileRow]) -> Receipt:
    return await transfer.upload(head.name, stream(head, rows))


def held_rows(cvr: CvrSandbox) -> dict[str, list[str]]:
    return {held["fil"]: [row["radnyckel"] for row in held["rader"]] for held in cvr.holding()}


# ---- files and receipts --------------------------------------------------------------------


async def test_an_accepted_file_and_its_receipt(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    head, rows = build(
        entry(),
        entry(status="G", genomford="2027-01-20", undantag=[]),
        entry(status="A", avford="2027-01-05", avford_orsak="declined"),
    )
    receipt = await deliver(transfer, head, rows)
    assert receipt.file_name == head.name
    assert receipt.status == "accepted"
    assert [(v.number, v.accepted) for v in receipt.rows] == [(1, True), (2, True), (3, True)]
    assert json.loads(receipt.raw)["kvittoId"] == receipt.receipt_id
    assert (cvr.outbox / f"{head.name}.kvitto.json").is_file()
    assert sorted(path.name for path in cvr.inbox.iterdir()) == [head.name]  # no .part left
    assert cvr.deliveries() == {head.name: 1}
    [held] = cvr.holding()
    assert (held["enhet"], held["period"], held["fil"]) == (UNIT, "2027-01", head.name)
    assert [row["vantedagar"] for row in held["rader"]] == ["81", "80", "55"]
    assert await transfer.receipt(head.name) == receipt


async def test_a_wrong_wait_is_a_refused_row(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    wrong = entry(garanti_start="2026-11-01", pvv_dagar=10, mov="N", vantedagar=90)
    head, rows = build(entry(), wrong)
    receipt = await deliver(transfer, head, rows)
    assert receipt.status == "partly_accepted"
    refused = [v for v in receipt.rows if not v.accepted]
    assert [(v.number, v.code) for v in refused] == [(2, "VANTETID")]
    assert refused[0].reason is not None
    assert "counts 81" in refused[0].reason
    assert held_rows(cvr) == {head.name: ["vanta-00001"]}


async def test_rows_the_register_refuses(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    head, rows = build(
        entry(personid="191212121213"),  # Luhn
        entry(status="G", genomford="2027-02-01"),  # completed after the period
        entry(status="A", avford="2027-01-05"),  # removed without a reason
        entry(status="V", avford_orsak="declined"),
        entry(vantetyp="rontgen", garanti_start="2026-11-01", pvv_dagar=10, mov="N", vantedagar=81),
        entry(garanti_start="2026-10-01", pvv_dagar=0, mov="N", vantedagar=122),
        entry(beslutsdatum="2026-09-01"),  # before the referral
        entry(status="G", genomford="2026-12-15", undantag=[]),  # a late completion: taken
    )
    receipt = await deliver(transfer, head, rows)
    assert receipt.status == "partly_accepted"
    assert [(v.number, v.code) for v in receipt.rows] == [
        (1, "PERSONID"),
        (2, "STATUS"),
        (3, "STATUS"),
        (4, "STATUS"),
        (5, "VANTETYP"),
        (6, "GARANTISTART"),
        (7, "DATUM"),
        (8, None),
    ]


async def test_a_file_under_another_name_is_refused_whole(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    head, rows = build(entry())
    other = file_name(FileKey(Period(2027, 2), UNIT), 1)
    receipt = await transfer.upload(other, stream(head, rows))
    assert receipt.status == "refused"
    assert receipt.reason is not None
    assert receipt.reason.startswith("FILNAMN: ")
    assert cvr.holding() == []


async def test_a_replacement_names_the_file_it_replaces(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    first = build(entry(), entry())
    assert (await deliver(transfer, *first)).status == "accepted"
    second = build(entry(), sequence=2)
    assert (await deliver(transfer, *second)).status == "accepted"
    assert held_rows(cvr) == {second[0].name: ["vanta-00001"]}
    # sequence 3 naming the first file, not the one held: refused whole, the holding kept
    stale = build(entry(), entry(), entry(), sequence=3, replaces=first[0].name)
    receipt = await deliver(transfer, *stale)
    assert receipt.status == "refused"
    assert receipt.reason is not None
    assert receipt.reason.startswith("ERSATTNING: ")
    assert held_rows(cvr) == {second[0].name: ["vanta-00001"]}


async def test_a_name_the_register_has_is_never_uploaded_again(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer()
    head, rows = build(entry())
    receipt = await deliver(transfer, head, rows)
    again = await deliver(transfer, head, rows)
    assert again == receipt
    assert cvr.deliveries() == {head.name: 1}


# ---- keys and logins -----------------------------------------------------------------------


async def test_the_host_key_pinned_as_a_single_public_key(cvr: CvrSandbox) -> None:
    transfer = cvr.transfer(known_hosts=cvr.keys.host_key_pub)
    assert (await deliver(transfer, *build(entry()))).status == "accepted"


async def test_an_unknown_host_key_is_a_configuration_alarm(
    cvr: CvrSandbox, tmp_path: Path
) -> None:
    _, other_public = foreign_key_pair(tmp_path, "other-host")
    head, rows = build(entry())
    with pytest.raises(ConfigurationError) as caught:
        await deliver(cvr.transfer(known_hosts=other_public), head, rows)
    assert caught.value.error_class == "host_key_unknown"
    # a known_hosts file that pins a key for other hosts only: the same
    elsewhere = tmp_path / "known_hosts"
    elsewhere.write_text(f"cvr.example.org {cvr.keys.host_key_pub.read_text()}")
    with pytest.raises(ConfigurationError) as caught:
        await cvr.transfer(known_hosts=elsewhere).receipt(head.name)
    assert caught.value.error_class == "host_key_unknown"
    assert cvr.deliveries() == {}


async def test_a_refused_login_is_a_configuration_alarm(cvr: CvrSandbox, tmp_path: Path) -> None:
    head, rows = build(entry())
    cvr.set_faults(refuse_login=True)
    with pytest.raises(ConfigurationError) as caught:
        await deliver(cvr.transfer(), head, rows)
    assert caught.value.error_class == "login_refused"
    cvr.set_faults(refuse_login=False)
    other_key, _ = foreign_key_pair(tmp_path, "other-client")
    with pytest.raises(ConfigurationError) as caught:
        await deliver(cvr.transfer(client_key=other_key), head, rows)
    assert caught.value.error_class == "login_refused"
    with pytest.raises(ConfigurationError) as caught:
        await deliver(cvr.transfer(username="someone"), head, rows)
    assert caught.value.error_class == "login_refused"
    assert cvr.deliveries() == {}


async def test_no_server_is_transient(cvr: CvrSandbox) -> None:
    with pytest.raises(RegisterUnavailableError):
        await cvr.transfer(port=1).receipt(file_name(KEY, 1))


# ---- drops, slow disks, crashes ------------------------------------------------------------


async def test_a_connection_dropped_mid_upload_then_a_retry_delivers_once(
    cvr: CvrSandbox,
) -> None:
    transfer = cvr.transfer()
    head, rows = build(*(entry() for _ in range(400)))  # ~40 KB
    cvr.set_faults(drop_after_bytes=10_000, drop_uploads=1)
    with pytest.raises(RegisterUnavailableError):
        await deliver(transfer, head, rows)
    assert cvr.deliveries() == {}  # the register counted no file
    part = cvr.inbox / f"{head.name}.part"
    assert part.is_file()
    assert part.stat().st_size <= 10_000
    assert not (cvr.outbox / f"{head.name}.kvitto.json").exists()
    receipt = await deliver(transfer, head, rows)  # the drop is used up: the retry goes through
    assert receipt.status == "accepted"
    assert len(receipt.rows) == 400
    assert cvr.deliveries() == {head.name: 1}
    assert not part.exists()
    assert len(cvr.holding()[0]["rader"]) == 400


async def test_a_slow_disk_is_slow_but_delivers(cvr: CvrSandbox) -> None:
    cvr.set_faults(write_delay_ms=30)
    head, rows = build(*(entry() for _ in range(400)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await deliver(cvr.transfer(), head, rows)).status == "accepted"
    assert loop.time() - started >= 0.03


async def test_a_receipt_that_does_not_come_in_time_then_found_after_a_crash(
    cvr: CvrSandbox,
) -> None:
    head, rows = build(entry())
    cvr.set_faults(receipt_delay_s=1.0)
    with pytest.raises(RegisterUnavailableError) as caught:
        await deliver(cvr.transfer(receipt_timeout=0.2), head, rows)
    assert caught.value.error_class == "receipt_timeout"
    assert cvr.deliveries() == {head.name: 1}  # the file is there; its answer is late
    # a new process looks the file up after its crash, until the register has answered
    transfer = cvr.transfer()
    found = await transfer.receipt(head.name)
    for _ in range(100):
        if found is not None:
            break
        await asyncio.sleep(0.05)
        found = await transfer.receipt(head.name)
    assert found is not None
    assert found.status == "accepted"
    # the runtime would rather deliver again: the register's receipt, no second upload
    assert await deliver(transfer, head, rows) == found
    assert cvr.deliveries() == {head.name: 1}


async def test_a_delivery_that_crashed_after_the_rename_waits_for_its_receipt(
    cvr: CvrSandbox,
) -> None:
    head, rows = build(entry())
    cvr.set_faults(receipt_delay_s=0.5)
    upload = asyncio.ensure_future(deliver(cvr.transfer(), head, rows))
    for _ in range(250):
        if cvr.deliveries():  # renamed into the inbox: the transfer now polls for the receipt
            break
        await asyncio.sleep(0.02)
    upload.cancel()  # the worker dies while it polls
    with pytest.raises(asyncio.CancelledError):
        await upload
    receipt = await deliver(cvr.transfer(receipt_timeout=5), head, rows)
    assert receipt.status == "accepted"
    assert cvr.deliveries() == {head.name: 1}


# ---- what the provider may do --------------------------------------------------------------


async def test_the_provider_writes_part_files_in_the_inbox_only(cvr: CvrSandbox) -> None:
    name = file_name(KEY, 1)
    async with (
        asyncssh.connect(
            "127.0.0.1",
            cvr.port,
            username=cvr.username,
            client_keys=[str(cvr.keys.client_key)],
            known_hosts=str(cvr.keys.known_hosts),
            agent_path=None,
            config=None,
        ) as connection,
        connection.start_sftp_client() as sftp,
    ):
        for path in (f"/ut/{name}.kvitto.json", f"/in/{name}", "/elsewhere.part"):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(path, "wb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.mkdir("/in/sub")
    assert cvr.deliveries() == {}


def test_a_restarted_sandbox_reads_its_root_back(cvr: CvrSandbox) -> None:
    head, rows = build(entry())

    async def first() -> Receipt:
        return await deliver(cvr.transfer(), head, rows)

    receipt = asyncio.run(first())
    with CvrSandbox(certs_dir=cvr.keys.directory, root=cvr.root) as again:
        assert held_rows(again) == {head.name: ["vanta-00001"]}
        assert again.receipt(head.name) == json.loads(receipt.raw)
        assert again.deliveries() == {head.name: 1}
