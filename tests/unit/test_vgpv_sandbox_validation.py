"""The VGPV sandbox's judgement of an upload, without HTTP: whole-file refusals, every row's
verdict, the window, replacements, duplicates, and the holding that results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.sandboxes.vgpv.state import SandboxClock, SandboxState
from services.vgpv.format import file_name, render
from shared.files.register import FileHeader, FileKey, FileRow
from shared.schedule import Period

STOCKHOLM = ZoneInfo("Europe/Stockholm")
VC = "SE2321000131-E000000000101"
REHAB = "SE2321000131-E000000000102"
DENTAL = "SE2321000131-E000000000103"
HOSPITAL = "SE2321000131-E000000000104"
JANUARY = Period(2027, 1)
IN_WINDOW = datetime(2027, 2, 2, 10, 0, tzinfo=STOCKHOLM)  # January's window: 1-3 February
FEBRUARY = Period(2027, 2)
IN_FEBRUARYS_WINDOW = datetime(2027, 3, 1, 9, 0, tzinfo=STOCKHOLM)
KIV = {
    VC: {"vgrAnsvarsnummer": "81234", "vgrVardVal": True, "vgrVardValOmrade": "primarvard"},
    REHAB: {"vgrAnsvarsnummer": "81235", "vgrVardVal": True, "vgrVardValOmrade": "rehab"},
    DENTAL: {"vgrAnsvarsnummer": "81236", "vgrVardVal": True, "vgrVardValOmrade": "tandvard"},
    HOSPITAL: {"vgrAnsvarsnummer": "81237", "vgrVardVal": False},
}


class Kiv:
    def get(self, hsa_id: str) -> dict[str, Any] | None:
        unit = KIV.get(hsa_id)
        return None if unit is None else {"hsaIdentity": hsa_id, **unit}


def values(unit: str = VC, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "idtyp": "PNR",
        "personid": "191212121212",
        "besoksdatum": "2027-01-14",
        "enhet_hsaid": unit,
        "ansvarsnummer": KIV[unit]["vgrAnsvarsnummer"],
        "vardval": KIV[unit].get("vgrVardValOmrade", "primarvard"),
        "yrkeskategorier": ["FT"] if unit == REHAB else ["LK"],
        "besokstyp": "mottagning",
        "akut": "N",
        "diagnoser": ["J069"],
        "atgarder": ["AQ014"],
    }
    row.update(changes)
    return row


def content(
    rows: list[tuple[str, str, dict[str, Any], Period | None]],
    *,
    unit: str = VC,
    period: Period = JANUARY,
    sequence: int = 1,
    replaces: str | None = None,
) -> tuple[str, bytes]:
    """(name, bytes) of a file of (kind, record id, values, corrects) rows."""
    key = FileKey(period, unit)
    made = [
        FileRow(n, record_id, 1, f"e{n}", kind, row, corrects)  # type: ignore[arg-type]
        for n, (kind, record_id, row, corrects) in enumerate(rows, start=1)
    ]
    header = FileHeader(key, file_name(key, sequence), sequence, replaces, IN_WINDOW, len(made))
    return header.name, b"".join(render(header, made))


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(Kiv(), clock=SandboxClock(lambda: IN_WINDOW))


def test_a_good_file_is_accepted_row_by_row(state: SandboxState) -> None:
    name, data = content([("row", "b1", values(), None), ("row", "b2", values(), None)])

    status, receipt = state.receive(name, data)

    assert status == 200
    assert receipt["status"] == "godkand"
    assert receipt["filnamn"] == name
    assert (receipt["antalRader"], receipt["godkandaRader"], receipt["avvisadeRader"]) == (2, 2, 0)
    assert [row["status"] for row in receipt["rader"]] == ["godkand", "godkand"]
    assert state.store.holding()[0]["rader"][0]["radnyckel"] == "b1"


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        ({"idtyp": "NRID"}, "IDTYP", "idtyp NRID is not PNR, SNR or RNR"),
        ({"personid": "191212121213"}, "PERSONID", "check digit"),
        ({"idtyp": "RNR", "personid": "19600101Q011"}, "PERSONID", "K, M or X"),
        ({"idtyp": "SNR"}, "PERSONID", "samordningsnummer"),
        ({"besoksdatum": "2027-02-01"}, "DATUM", "is not in 2027-01"),
        ({"besoksdatum": "14/1"}, "DATUM", "YYYY-MM-DD"),
        ({"enhet_hsaid": REHAB}, "ENHET", "is not the file's unit"),
        ({"ansvarsnummer": "99999"}, "ANSVARSNUMMER", "99999 is not the unit's"),
        ({"yrkeskategorier": ["XX"]}, "YRKE", "['XX']"),
        ({"yrkeskategorier": []}, "YRKE", "none"),
        ({"besokstyp": "brev"}, "BESOKSTYP", "brev is not one of"),
        ({"akut": "1"}, "AKUT", "J or N"),
        ({"diagnoser": ["J06.9"]}, "DIAGNOS", "without the dot"),
        ({"atgarder": ["AQ14"]}, "KVA", "2 letters + 3 digits"),
    ],
)
def test_a_bad_row_is_refused_with_its_code_and_reason(
    state: SandboxState, changes: dict[str, Any], code: str, reason: str
) -> None:
    name, data = content([("row", "good", values(), None), ("row", "bad", values(**changes), None)])

    status, receipt = state.receive(name, data)

    assert status == 200
    assert receipt["status"] == "delvis_godkand"
    bad = receipt["rader"][1]
    assert (bad["radnummer"], bad["radnyckel"], bad["status"], bad["kod"]) == (
        2,
        "bad",
        "avvisad",
        code,
    )
    assert reason in bad["orsak"]
    assert "191212121213" not in str(receipt)  # a personal id never in a reason


def test_a_rehab_visit_meets_a_physiotherapist_or_an_occupational_therapist(
    state: SandboxState,
) -> None:
    name, data = content(
        [
            ("row", "a", values(REHAB), None),
            ("row", "b", values(REHAB, yrkeskategorier=["LK"]), None),
        ],
        unit=REHAB,
    )
    _, receipt = state.receive(name, data)
    assert [row["kod"] for row in receipt["rader"]] == [None, "YRKE"]


def test_a_file_whose_every_row_is_refused_is_refused(state: SandboxState) -> None:
    name, data = content([("row", "a", values(akut="x"), None)])
    status, receipt = state.receive(name, data)
    assert (status, receipt["status"], receipt["orsakskod"]) == (422, "avvisad", None)


def test_a_row_key_twice_in_a_file_is_refused_the_second_time(state: SandboxState) -> None:
    name, data = content([("row", "a", values(), None), ("row", "a", values(), None)])
    _, receipt = state.receive(name, data)
    assert [row["kod"] for row in receipt["rader"]] == [None, "DUBBLETT"]


@pytest.mark.parametrize(
    ("unit", "code", "reason"),
    [
        ("SE2321000131-E999", "ENHET", "is not a unit in KIV"),
        (HOSPITAL, "ENHET", "not in VG Primärvård or Vårdval Rehab"),
        (DENTAL, "ENHET", "not in VG Primärvård or Vårdval Rehab"),
    ],
)
def test_a_unit_vgpv_does_not_pay_is_refused_whole(
    state: SandboxState, unit: str, code: str, reason: str
) -> None:
    row = values(VC, enhet_hsaid=unit)
    name, data = content([("row", "a", row, None)], unit=unit)
    status, receipt = state.receive(name, data)
    assert (status, receipt["status"], receipt["orsakskod"]) == (422, "avvisad", code)
    assert reason in receipt["orsak"]
    assert receipt["rader"] == []


def test_a_header_that_disagrees_with_kiv_or_the_upload_is_refused_whole(
    state: SandboxState,
) -> None:
    name, data = content([("row", "a", values(ansvarsnummer="11111"), None)])
    assert state.receive(name, data)[1]["orsakskod"] == "ANSVARSNUMMER"
    name, data = content([("row", "a", values(vardval="rehab"), None)], sequence=1)
    assert state.receive("other-" + name, data)[1]["orsakskod"] == "FILNAMN"


def test_a_broken_file_is_refused_whole_with_the_line(state: SandboxState) -> None:
    name, data = content([("row", "a", values(), None)])
    status, receipt = state.receive(name, data.replace(b"T;1;", b"T;2;"))
    assert (status, receipt["orsakskod"]) == (422, "ANTAL")
    assert receipt["orsak"].startswith("rad 3: the trailer counts 2 rows")


def test_the_window_too_early_open_and_late(state: SandboxState) -> None:
    name, data = content([("row", "a", values(), None)])
    closes = datetime(2027, 2, 3, 15, 0, tzinfo=STOCKHOLM)

    state.clock.set(datetime(2027, 1, 31, 23, 59, tzinfo=STOCKHOLM))
    assert (
        state.receive("early-" + name, data.replace(name.encode(), b"early-" + name.encode()))[1][
            "orsakskod"
        ]
        == "TIDIG"
    )
    state.clock.set(closes)
    status, receipt = state.receive(name, data)
    assert (status, receipt["orsakskod"]) == (422, "SEN")
    assert "too late" in receipt["orsak"]


def test_one_second_before_the_close_is_in_time(state: SandboxState) -> None:
    state.clock.set(datetime(2027, 2, 3, 14, 59, 59, tzinfo=STOCKHOLM))
    name, data = content([("row", "a", values(), None)])
    assert state.receive(name, data)[0] == 200


def test_a_second_upload_of_a_name_answers_the_stored_receipt_and_is_counted(
    state: SandboxState,
) -> None:
    name, data = content([("row", "a", values(), None)])
    _, first = state.receive(name, data)

    status, again = state.receive(name, data)
    _, other = state.receive(name, data.replace(b"J069", b"J068"))

    assert (status, again["kod"], again["sammaInnehall"]) == (409, "DUBBLETT", True)
    assert again["kvitto"] == first
    assert other["sammaInnehall"] is False
    assert state.store.uploads() == {name: 3}
    assert len(state.store.names()) == 1


def test_a_declared_replacement_is_held_instead_of_the_first(state: SandboxState) -> None:
    first, data = content([("row", "a", values(), None), ("row", "b", values(), None)])
    state.receive(first, data)
    second, data = content(
        [("row", "a", values(diagnoser=["Z000"]), None)], sequence=2, replaces=first
    )

    status, receipt = state.receive(second, data)

    assert (status, receipt["status"], receipt["ersatter"]) == (200, "godkand", first)
    [held] = state.store.holding(VC, JANUARY)
    assert held["fil"] == second
    assert [(row["radnyckel"], row["diagnoser"]) for row in held["rader"]] == [("a", ["Z000"])]


@pytest.mark.parametrize(
    ("sequence", "replaces", "reason"),
    [
        (1, None, "a new file must name it in ersatter"),
        (2, "VGPV_other.txt", "a new file must name it in ersatter"),
        (1, "FIRST", "ersatter names the file replaced, from sekvens 2 on"),
    ],
)
def test_an_undeclared_or_misdeclared_replacement_is_refused(
    state: SandboxState, sequence: int, replaces: str | None, reason: str
) -> None:
    first, data = content([("row", "a", values(), None)])
    state.receive(first, data)
    key = FileKey(JANUARY, VC)
    row = [FileRow(1, "a", 1, "e", "row", values())]
    name = f"VGPV_{VC}_202701_again_{sequence}.txt"
    header = FileHeader(
        key, name, sequence, first if replaces == "FIRST" else replaces, IN_WINDOW, 1
    )
    status, receipt = state.receive(name, b"".join(render(header, row)))
    assert status == 422
    assert reason in receipt["orsak"]


def test_a_replacement_of_a_refused_file_is_taken(state: SandboxState) -> None:
    first, data = content([("row", "a", values(), None)])
    state.clock.set(datetime(2027, 1, 15, tzinfo=STOCKHOLM))
    assert state.receive(first, data)[1]["orsakskod"] == "TIDIG"
    state.clock.set(IN_WINDOW)
    second, data = content([("row", "a", values(), None)], sequence=2, replaces=first)
    assert state.receive(second, data)[1]["status"] == "godkand"


def test_next_months_corrections_and_cancellations_change_the_holding(
    state: SandboxState,
) -> None:
    january, data = content([(k, r, values(), None) for k, r in (("row", "a"), ("row", "b"))])
    state.receive(january, data)
    state.clock.set(IN_FEBRUARYS_WINDOW)
    february, data = content(
        [
            ("row", "c", values(besoksdatum="2027-02-10"), None),
            ("correction", "a", values(diagnoser=["Z000"]), JANUARY),
            ("cancellation", "b", {}, JANUARY),
            ("correction", "x", values(), JANUARY),  # a row January's file never held: late
            ("correction", "d", values(besoksdatum="2027-02-10"), FEBRUARY),
        ],
        period=FEBRUARY,
    )

    _, receipt = state.receive(february, data)

    assert [row["kod"] for row in receipt["rader"]] == [None, None, None, None, "KORRIGERING"]
    held = {
        (h["period"], r["radnyckel"]): r["diagnoser"]
        for h in state.store.holding()
        for r in h["rader"]
    }
    assert held == {
        ("2027-01", "a"): ["Z000"],
        ("2027-01", "x"): ["J069"],
        ("2027-02", "c"): ["J069"],
    }


@pytest.mark.parametrize("january_file", [True, False])
def test_a_correction_of_a_row_not_held_is_a_late_row_of_its_month(
    state: SandboxState, january_file: bool
) -> None:
    if january_file:
        january, data = content([("row", "a", values(), None)])
        state.receive(january, data)
    state.clock.set(IN_FEBRUARYS_WINDOW)
    february, data = content(
        [("correction", "late", values(besoksdatum="2027-01-30", akut="J"), JANUARY)],
        period=FEBRUARY,
    )

    status, receipt = state.receive(february, data)

    assert (status, receipt["status"], receipt["rader"][0]["kod"]) == (200, "godkand", None)
    [held] = state.store.holding(VC, JANUARY)
    assert held["fil"] == (january if january_file else None)
    assert [(r["radnyckel"], r["akut"]) for r in held["rader"]] == [
        *([("a", "N")] if january_file else []),
        ("late", "J"),
    ]
    assert state.store.holding(VC, FEBRUARY)[0]["rader"] == []


def test_a_cancellation_of_a_row_not_held_is_refused_and_of_a_late_row_taken(
    state: SandboxState,
) -> None:
    state.clock.set(IN_FEBRUARYS_WINDOW)
    february, data = content(
        [
            ("cancellation", "never", {}, JANUARY),
            ("correction", "late", values(), JANUARY),
            ("row", "c", values(besoksdatum="2027-02-10"), None),
        ],
        period=FEBRUARY,
    )
    _, receipt = state.receive(february, data)
    state.clock.set(datetime(2027, 4, 1, 10, 0, tzinfo=STOCKHOLM))  # March's window
    march, data = content(
        [("cancellation", "late", {}, JANUARY), ("cancellation", "never", {}, JANUARY)],
        period=Period(2027, 3),
    )

    _, march_receipt = state.receive(march, data)

    assert [row["kod"] for row in receipt["rader"]] == ["KORRIGERING", None, None]
    assert "holds no row never for 2027-01" in receipt["rader"][0]["orsak"]
    assert [row["kod"] for row in march_receipt["rader"]] == [None, "KORRIGERING"]
    assert state.store.holding(VC, JANUARY)[0]["rader"] == []


def test_a_late_row_is_checked_as_a_row_of_its_own_month(state: SandboxState) -> None:
    state.clock.set(IN_FEBRUARYS_WINDOW)
    february, data = content(
        [
            ("correction", "feb", values(besoksdatum="2027-02-10"), JANUARY),
            ("correction", "code", values(akut="x"), JANUARY),
        ],
        period=FEBRUARY,
    )

    _, receipt = state.receive(february, data)

    assert [row["kod"] for row in receipt["rader"]] == ["DATUM", "AKUT"]
    assert "besoksdatum 2027-02-10 is not in 2027-01" in receipt["rader"][0]["orsak"]
    assert state.store.holding(VC, JANUARY) == []


def test_the_clock_moves_and_comes_back() -> None:
    base = datetime(2027, 2, 2, 10, 0, tzinfo=STOCKHOLM)
    clock = SandboxClock(lambda: base)
    clock.set(base + timedelta(days=3))
    assert clock() == base + timedelta(days=3)
    assert clock.offset == timedelta(days=3)
    clock.set(None)
    assert clock() == base
