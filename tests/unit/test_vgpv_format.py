"""VGPV's file: rendered the same every time, read back whole, every broken file named by line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.vgpv.format import FileBuildError, file_name, render
from services.vgpv.reading import FileFormatError, read
from shared.files.register import FileHeader, FileKey, FileRow
from shared.schedule import Period

UNIT = "SE2321000131-E000000000101"
KEY = FileKey(Period(2027, 1), UNIT)
BUILT = datetime(2027, 2, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))
VALUES: dict[str, Any] = {
    "idtyp": "PNR",
    "personid": "191212121212",
    "besoksdatum": "2027-01-14",
    "enhet_hsaid": UNIT,
    "ansvarsnummer": "81234",
    "vardval": "primarvard",
    "yrkeskategorier": ["LK", "SJ"],
    "besokstyp": "mottagning",
    "akut": "N",
    "diagnoser": ["J069", "B341A"],
    "atgarder": ["AQ014"],
}


def header(count: int, sequence: int = 1, **changes: Any) -> FileHeader:
    values: dict[str, Any] = {
        "key": KEY,
        "name": file_name(KEY, sequence),
        "sequence": sequence,
        "replaces": file_name(KEY, sequence - 1) if sequence > 1 else None,
        "built_at": BUILT,
        "row_count": count,
    }
    values.update(changes)
    return FileHeader(**values)


def rows(count: int = 3) -> list[FileRow]:
    made = [FileRow(n, f"besok-{n:04d}", 1, f"e{n}", "row", VALUES) for n in range(1, count + 1)]
    if count >= 3:
        made[1] = FileRow(2, "besok-0002", 2, "e2", "correction", VALUES, Period(2026, 12))
        made[2] = FileRow(3, "besok-0003", 3, "e3", "cancellation", {}, Period(2026, 12))
    return made


def rendered(count: int = 3, encoding: str = "utf-8", **changes: Any) -> bytes:
    return b"".join(render(header(count, **changes), rows(count), encoding))


def test_the_file_reads_as_documented() -> None:
    assert rendered().decode() == (
        f"H;VGPV;1;VGPV_{UNIT}_202701_001.txt;2027-01;{UNIT};81234;primarvard;1;;"
        "2027-01-31T23:00:00Z;UTF-8\n"
        f"R;1;besok-0001;1;;PNR;191212121212;2027-01-14;{UNIT};81234;primarvard;LK,SJ;"
        "mottagning;N;J069,B341A;AQ014\n"
        f"K;2;besok-0002;2;2026-12;PNR;191212121212;2027-01-14;{UNIT};81234;primarvard;LK,SJ;"
        "mottagning;N;J069,B341A;AQ014\n"
        "M;3;besok-0003;3;2026-12;;;;;;;;;;;\n"
        f"T;3;{_checksum(rendered())}\n"
    )


def _checksum(content: bytes) -> str:
    lines = content.split(b"\n")[1:-2]
    return hashlib.sha256(b"".join(line + b"\n" for line in lines)).hexdigest()


def test_the_same_input_gives_the_same_bytes_from_a_stream_of_rows() -> None:
    def stream() -> Iterator[FileRow]:
        yield from rows(5000)

    first = list(render(header(5000), stream()))
    second = list(render(header(5000), stream()))

    assert first == second
    assert len(first) > 2  # streamed in pieces, not one blob
    assert all(len(piece) < 70 * 1024 for piece in first)


def test_the_checksum_is_the_sha256_of_the_row_lines() -> None:
    content = rendered()
    trailer = content.split(b"\n")[-2].decode()
    assert trailer == f"T;3;{_checksum(content)}"
    empty = rendered(0).split(b"\n")
    assert empty[1] == f"T;0;{hashlib.sha256(b'').hexdigest()}".encode()


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_a_file_reads_back_as_it_was_rendered(encoding: str) -> None:
    odd = "besök;1\\n\n€😀"  # separator, backslash, a line break, outside Latin-1
    made = [FileRow(1, odd, 7, "e1", "row", VALUES), *rows(3)[1:]]
    content = b"".join(render(header(3, sequence=2), made, encoding))

    read_back = read(content)

    assert read_back.header.name == file_name(KEY, 2)
    assert read_back.header.replaces == file_name(KEY, 1)
    assert (read_back.header.period, read_back.header.unit_hsa_id) == (KEY.period, UNIT)
    assert (read_back.header.unit_code, read_back.header.area) == ("81234", "primarvard")
    assert read_back.header.built_at == BUILT.astimezone(UTC)
    assert read_back.header.encoding == encoding
    assert [
        (r.number, r.record_id, r.record_version, r.kind, r.corrects) for r in read_back.rows
    ] == [
        (1, odd, 7, "row", None),
        (2, "besok-0002", 2, "correction", Period(2026, 12)),
        (3, "besok-0003", 3, "cancellation", Period(2026, 12)),
    ]
    assert read_back.rows[0].values == VALUES
    assert read_back.rows[1].values == VALUES


def test_latin_1_writes_what_it_cannot_hold_as_escapes() -> None:
    made = [FileRow(1, "å€", 1, "e1", "row", VALUES)]
    content = b"".join(render(header(1), made, "iso-8859-1"))
    assert b"R;1;\xe5\\u20ac;" in content


def test_the_header_is_ascii_whatever_the_encoding() -> None:
    content = rendered(1, name="VGPV_Hjällbo.txt")
    first = content.split(b"\n")[0]
    assert first.isascii()
    assert read(content).header.name == "VGPV_Hjällbo.txt"


def test_the_file_name_is_register_unit_month_sequence() -> None:
    assert file_name(KEY, 1) == f"VGPV_{UNIT}_202701_001.txt"
    assert file_name(FileKey(Period(2026, 12), UNIT), 12) == f"VGPV_{UNIT}_202612_012.txt"
    with pytest.raises(FileBuildError):
        file_name(KEY, 0)


@pytest.mark.parametrize(
    ("made", "count", "message"),
    [
        ([FileRow(2, "a", 1, "e", "row", VALUES)], 1, "row 1 of .* is numbered 2"),
        ([FileRow(1, "a", 1, "e", "row", VALUES)], 2, "built with 2 rows, got 1"),
        ([FileRow(1, "a", 1, "e", "correction", VALUES)], 1, "names the period it corrects"),
        ([FileRow(1, "a", 1, "e", "row", VALUES | {"diagnoser": "J069"})], 1, "must be a list"),
    ],
)
def test_what_no_file_can_say_is_refused_at_render(
    made: list[FileRow], count: int, message: str
) -> None:
    with pytest.raises(FileBuildError, match=message):
        b"".join(render(header(count), made))


def test_a_bad_encoding_or_a_naive_cut_off_is_refused_at_render() -> None:
    with pytest.raises(FileBuildError, match="encoding must be one of"):
        b"".join(render(header(0), [], "cp1252"))
    with pytest.raises(FileBuildError, match="no zone"):
        b"".join(render(header(0, built_at=datetime(2027, 2, 1)), []))


# ---- every refusal of the reader ----------------------------------------------------------------


def lines() -> list[str]:
    return rendered().decode().split("\n")[:-1]


def joined(changed: list[str]) -> bytes:
    return ("\n".join(changed) + "\n").encode()


def edit(number: int, old: str, new: str) -> bytes:
    changed = lines()
    assert old in changed[number - 1]
    changed[number - 1] = changed[number - 1].replace(old, new, 1)
    return joined(changed)


def with_row(number: int, line: str) -> bytes:
    """Row line `number` replaced, the trailer's checksum fixed so only the row is wrong."""
    changed = lines()
    changed[number - 1] = line
    body = "".join(f"{row}\n" for row in changed[1:-1]).encode()
    changed[-1] = f"T;{len(changed) - 2};{hashlib.sha256(body).hexdigest()}"
    return joined(changed)


ROW = lines()[1]


@pytest.mark.parametrize(
    ("content", "code", "line", "reason"),
    [
        (rendered()[:-1], "FORMAT", None, "must end with a line feed"),
        (b"H;VGPV\n", "FORMAT", None, "at least a header and a trailer"),
        (rendered().replace(b"\n", b"\r\n"), "FORMAT", 1, "not CR LF"),
        (edit(1, ";UTF-8", ""), "HUVUD", 1, "expected 12 fields, got 11"),
        (edit(1, "H;VGPV", "H;GVR"), "HUVUD", 1, "must start H;VGPV"),
        (edit(1, "H;VGPV;1", "H;VGPV;2"), "HUVUD", 1, "format version 2"),
        (edit(1, "UTF-8", "EBCDIC"), "HUVUD", 1, "teckenkodning EBCDIC is unknown"),
        (edit(1, "primarvard;1;", "primarvard;x;"), "HUVUD", 1, "sekvens must be a number"),
        (edit(1, "2027-01-31T23:00:00Z", "igår"), "TECKENKODNING", 1, "not ASCII"),
        (edit(1, "2027-01-31T23:00:00Z", "2027-01-31"), "HUVUD", 1, "skapad must be"),
        (edit(1, "primarvard;1;;", "primarvard;1;X.txt;"), "HUVUD", 1, "ersatter names"),
        (edit(1, ";2027-01;", ";2027-13;"), "HUVUD", 1, "period: month must be 1 to 12"),
        (with_row(2, "X" + ROW[1:]), "RAD", 2, "posttyp 'X' is not R, K or M"),
        (with_row(2, ROW + ";"), "RAD", 2, "expected 16 fields, got 17"),
        (with_row(2, ROW.replace("R;1;", "R;7;")), "RADNUMMER", 2, "radnummer 7, expected 1"),
        (with_row(2, ROW.replace(";1;;", ";v1;;")), "RAD", 2, "version must be a number"),
        (with_row(2, ROW.replace(";1;;", ";1;2026-12;")), "RAD", 2, "corrects no period"),
        (with_row(3, lines()[2].replace("2026-12", "")), "RAD", 3, "period: expected"),
        (with_row(2, ROW.replace("besok-0001", "bes\\qk")), "FORMAT", 2, "unknown escape \\q"),
        (with_row(2, ROW.replace("besok-0001", "b\\u20")), "FORMAT", 2, "broken escape"),
        (with_row(2, ROW.replace("besok-0001", "")), "RAD", 2, "radnyckel is required"),
        (rendered().replace(b"besok", b"bes\xf6k", 1), "TECKENKODNING", 2, "not UTF-8"),
        (joined([*lines()[:-1], "S;3;x"]), "SLUT", 5, "must be the trailer"),
        (joined([*lines()[:-1], lines()[-1] + ";"]), "SLUT", 5, "expected 3 fields"),
        (edit(5, "T;3;", "T;4;"), "ANTAL", 5, "counts 4 rows, the file has 3"),
        (joined([*lines()[:-1], "T;3;ABC"]), "SLUT", 5, "64 lower-case hex digits"),
        (edit(2, "J069", "J068"), "KONTROLLSUMMA", 5, "is not the rows' SHA-256"),
    ],
)
def test_a_broken_file_is_refused_whole_naming_the_line(
    content: bytes, code: str, line: int | None, reason: str
) -> None:
    with pytest.raises(FileFormatError) as caught:
        read(content)
    assert (caught.value.code, caught.value.line) == (code, line)
    assert reason in caught.value.reason


def test_a_trailer_amid_the_rows_is_a_row_line_out_of_place() -> None:
    changed = lines()
    content = joined([changed[0], changed[-1], *changed[1:]])
    with pytest.raises(FileFormatError, match="line 2: posttyp 'T' is not R, K or M"):
        read(content)
