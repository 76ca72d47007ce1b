"""CVR's file: the name, deterministic streaming render, the wait's figures counted at render,
escapes and encodings, the trailer, and reading it all back."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from services.cvr.format import (
    ROW_FIELDS,
    FileBuildError,
    file_name,
    render,
)
from services.cvr.reading import FileFormatError, read
from shared.files.lines import CHUNK_BYTES
from shared.files.register import FileHeader, FileKey, FileRow
from shared.schedule import Period

JANUARY = Period(2027, 1)
KOMBIKA = "11010046M30"
HSA_ID = "SE2321000016-ABC1"
KEY = FileKey(JANUARY, KOMBIKA)
BUILT_AT = datetime(2027, 2, 1, 5, 0, tzinfo=UTC)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def waiting(**changes: Any) -> dict[str, Any]:
    """A placement's values as the mapping gives them: no figures, the exception periods."""
    values: dict[str, Any] = {
        "status": "V",
        "idtyp": "PNR",
        "personid": "191212121212",
        "enhet": KOMBIKA,
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


def header(rows: int, *, sequence: int = 1, key: FileKey = KEY) -> FileHeader:
    replaces = file_name(key, sequence - 1) if sequence > 1 else None
    return FileHeader(key, file_name(key, sequence), sequence, replaces, BUILT_AT, rows)


def rows_of(*values: dict[str, Any]) -> list[FileRow]:
    return [
        FileRow(number, f"vanta-{number:04d}", 1, f"event-{number}", "row", row)
        for number, row in enumerate(values, start=1)
    ]


def rendered(head: FileHeader, rows: list[FileRow], encoding: str = "utf-8") -> bytes:
    return b"".join(render(head, rows, encoding))


# ---- the name ------------------------------------------------------------------------------


def test_the_name_is_register_owner_period_and_sequence() -> None:
    assert file_name(KEY, 1) == "CVR_11010046M30_202701_001.txt"
    december = FileKey(Period(2026, 12), HSA_ID)
    assert file_name(december, 12) == "CVR_SE2321000016-ABC1_202612_012.txt"


@pytest.mark.parametrize("sequence", [0, -1, 1000])
def test_a_sequence_has_three_digits_from_one(sequence: int) -> None:
    with pytest.raises(FileBuildError, match="sequence"):
        file_name(KEY, sequence)


@pytest.mark.parametrize("owner", ["11010 046 M30", "", "CVR/../x", "enhet;1"])
def test_an_owner_that_cannot_stand_in_a_name_is_refused(owner: str) -> None:
    with pytest.raises(FileBuildError, match="owner"):
        file_name(FileKey(JANUARY, owner), 1)


# ---- render --------------------------------------------------------------------------------


def test_render_is_the_same_bytes_every_time() -> None:
    rows = rows_of(waiting(), waiting(personid="200001012384", prioritet=None))
    assert rendered(header(2), rows) == rendered(header(2), rows)


def test_the_lines_of_a_file() -> None:
    data = rendered(header(1), rows_of(waiting()))
    lines = data.decode().split("\n")
    assert lines[0] == (
        "H;CVR;1;CVR_11010046M30_202701_001.txt;2027-01;11010046M30;1;;2027-02-01T05:00:00Z;UTF-8"
    )
    # 2026-11-01 (the decision) to 2027-01-31 (the period's last day): 91 days, less 10 PVV
    assert lines[1] == (
        "R;1;vanta-0001;1;V;PNR;191212121212;11010046M30;OP123;behandling;2;J;2026-10-01;"
        "2026-11-01;;;;;;2026-11-01;10;N;81"
    )
    row_bytes = (lines[1] + "\n").encode()
    assert lines[2] == f"T;1;{hashlib.sha256(row_bytes).hexdigest()}"
    assert lines[3:] == [""]  # the trailer ends with its line feed


def test_a_round_trip_through_reading() -> None:
    rows = rows_of(
        waiting(),
        waiting(status="G", genomford="2027-01-20", undantag=[], vantetyp="forstabesok"),
        waiting(status="A", avford="2027-01-05", avford_orsak="declined", prioritet=None),
    )
    head = header(3, sequence=2)
    parsed = read(rendered(head, rows))
    assert parsed.header.name == head.name
    assert parsed.header.period == JANUARY
    assert parsed.header.owner == KOMBIKA
    assert (parsed.header.sequence, parsed.header.replaces) == (2, file_name(KEY, 1))
    assert parsed.header.built_at == BUILT_AT
    assert parsed.header.encoding == "utf-8"
    assert [(r.number, r.record_id, r.record_version) for r in parsed.rows] == [
        (1, "vanta-0001", 1),
        (2, "vanta-0002", 1),
        (3, "vanta-0003", 1),
    ]
    for row, read_row in zip(rows, parsed.rows, strict=True):
        given = {
            name: None if value is None else str(value)
            for name, value in row.values.items()
            if name in ROW_FIELDS
        }
        assert {name: read_row.values[name] for name in given} == given
        assert set(read_row.values) == set(ROW_FIELDS)
    completed, removed = parsed.rows[1].values, parsed.rows[2].values
    # a first visit counts from the referral: 2026-10-01 to 2027-01-20 is 111 days
    assert (completed["garanti_start"], completed["vantedagar"]) == ("2026-10-01", "111")
    # removed 2027-01-05: 65 days from the decision, less the 10 PVV days
    assert (removed["pvv_dagar"], removed["vantedagar"]) == ("10", "55")


def test_figures_a_row_carries_are_written_as_given() -> None:
    given = waiting(garanti_start="2026-10-01", pvv_dagar=3, mov=True, vantedagar=999)
    values = read(rendered(header(1), rows_of(given))).rows[0].values
    assert (values["garanti_start"], values["pvv_dagar"], values["mov"], values["vantedagar"]) == (
        "2026-10-01",
        "3",
        "J",
        "999",
    )


def test_a_row_whose_figures_cannot_be_counted_is_a_build_error() -> None:
    with pytest.raises(FileBuildError, match="figures"):
        rendered(header(1), rows_of(waiting(vantetyp="okand")))
    with pytest.raises(FileBuildError, match="figures"):
        rendered(header(1), rows_of(waiting(status="G")))  # completed without a date


def test_escapes_round_trip() -> None:
    tricky = "a;b\\c\nd\re"
    row = FileRow(1, tricky, 1, "event-1", "row", waiting(prioritet="x;y", cvr_kod="K\\1"))
    data = rendered(header(1), [row])
    assert b"a\\;b\\\\c\\nd\\re" in data
    parsed = read(data).rows[0]
    assert parsed.record_id == tricky
    assert (parsed.values["prioritet"], parsed.values["cvr_kod"]) == ("x;y", "K\\1")


def test_latin_1_writes_swedish_letters_as_bytes_and_escapes_the_rest() -> None:
    row = rows_of(waiting(cvr_kod="Åäö€"))
    data = rendered(header(1), row, "iso-8859-1")
    assert data.splitlines()[0].endswith(b";ISO-8859-1")
    assert "Åäö".encode("iso-8859-1") + b"\\u20ac" in data
    assert read(data).rows[0].values["cvr_kod"] == "Åäö€"


def test_the_header_is_ascii_whatever_the_encoding() -> None:
    key = FileKey(JANUARY, KOMBIKA)
    head = replace(header(0, key=key), name="CVR_é.txt")
    data = rendered(head, [])
    assert data.splitlines()[0].isascii()
    assert read(data).header.name == "CVR_é.txt"


def test_an_empty_file_has_a_trailer_of_nothing() -> None:
    data = rendered(header(0), [])
    assert data.decode().splitlines()[1] == f"T;0;{EMPTY_SHA256}"
    assert read(data).rows == ()


def test_a_big_file_streams_in_pieces_and_reads_back_whole() -> None:
    count = 3000
    rows = rows_of(*(waiting() for _ in range(count)))
    pieces = list(render(header(count), rows))
    assert len(pieces) > 2
    assert all(len(piece) < 2 * CHUNK_BYTES for piece in pieces)
    assert len(read(b"".join(pieces)).rows) == count


def test_render_refuses_what_no_file_can_say() -> None:
    with pytest.raises(FileBuildError, match="numbered"):
        rendered(header(1), [replace(rows_of(waiting())[0], number=2)])
    with pytest.raises(FileBuildError, match="built with 2 rows"):
        rendered(header(2), rows_of(waiting()))
    with pytest.raises(FileBuildError, match="encoding"):
        rendered(header(0), [], "utf-16")
    correction = replace(rows_of(waiting())[0], kind="correction", corrects=Period(2026, 12))
    with pytest.raises(FileBuildError, match="no correction rows"):
        rendered(header(1), [correction])
    with pytest.raises(FileBuildError, match="no zone"):
        rendered(replace(header(0), built_at=datetime(2027, 2, 1)), [])


# ---- reading refuses -----------------------------------------------------------------------


def good() -> bytes:
    return rendered(header(2), rows_of(waiting(), waiting()))


def test_a_changed_row_breaks_the_checksum() -> None:
    data = good().replace(b";OP123;", b";OP124;", 1)
    with pytest.raises(FileFormatError) as caught:
        read(data)
    assert (caught.value.code, caught.value.line) == ("KONTROLLSUMMA", 4)


def test_a_missing_row_breaks_the_count() -> None:
    lines = good().split(b"\n")
    with pytest.raises(FileFormatError) as caught:
        read(b"\n".join([lines[0], lines[1], lines[3], b""]))
    assert caught.value.code == "ANTAL"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d.replace(b"\n", b"\r\n"), "FORMAT"),
        (lambda d: d[:-1], "FORMAT"),
        (lambda d: d.replace(b"vanta-0001", b"vanta\\q0001"), "FORMAT"),
        (lambda d: d.replace(b"H;CVR;1;", b"H;VGPV;1;"), "HUVUD"),
        (lambda d: d.replace(b"H;CVR;1;", b"H;CVR;2;"), "HUVUD"),
        (lambda d: d.replace(b";2027-01;", b";2027-13;"), "HUVUD"),
        (lambda d: d.replace(b";11010046M30;1;;", b";11010046M30;2;;"), "HUVUD"),
        (lambda d: d.replace(b"\nR;2;", b"\nR;3;"), "RADNUMMER"),
        (lambda d: d.replace(b"\nR;1;", b"\nK;1;"), "RAD"),
        (lambda d: d.replace(b";81\n", b";81;x\n", 1), "RAD"),
        (lambda d: d.replace(b"T;2;", b"X;2;"), "SLUT"),
        (lambda d: d.replace(b"Z;UTF-8", b"Z;UTF-7"), "HUVUD"),
    ],
)
def test_reading_names_what_breaks_the_format(change: Any, code: str) -> None:
    with pytest.raises(FileFormatError) as caught:
        read(change(good()))
    assert caught.value.code == code


def test_bytes_outside_the_declared_encoding_are_refused() -> None:
    data = good().replace(b"OP123", "ÖP123".encode("iso-8859-1"), 1)
    with pytest.raises(FileFormatError) as caught:
        read(data)
    assert (caught.value.code, caught.value.line) == ("TECKENKODNING", 2)
