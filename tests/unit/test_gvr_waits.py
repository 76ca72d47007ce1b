"""Waiting-list entries → GVR's booking records: each step of an entry's life, call or skip."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from services.gvr.client import GvrClient
from services.gvr.mapping import GvrCall, GvrPaths
from services.gvr.settings import GvrSettings
from services.gvr.spec import SPEC
from services.gvr.units import ClosedUnitError
from services.gvr.waits import (
    NO_BOOKING,
    WaitCodes,
    booking_call,
    ledger_id,
    live,
    withdrawn,
)
from services.gvr.worker import GvrWorker
from shared.contracts import CARE_WAIT_EXAMPLES, CareWaitEvent, parse_event
from shared.delivery.errors import (
    DeliveryError,
    InvalidEventError,
    NothingToSendError,
    NotOursError,
    NotYetKnownError,
)
from shared.delivery.worker import Accepted, EventIdentity, Submission

PATH = "/tillganglighet"
CODES = WaitCodes()
REF = "GVR-0000042"
ENTRY = "vantelista-2025-000031337"
WARD_M30 = {"inr": "11010", "klin": "046", "avd": "M30"}
WHERE = (
    ("patientId", "200312242498"),
    ("enhet.inr", "11010"),
    ("enhet.klin", "046"),
    ("enhet.avd", "M30"),
)
BOOKED_BODY = {
    "patientId": "200312242498",
    "patientIdTyp": "PNR",
    "enhet": WARD_M30,
    "kallsystem": "takecare-sll",
    "kallId": ENTRY,
    "kontaktkategori": "OPPENVARD",
    "vardgaranti": True,
    "bokningsdatum": "2025-03-12",
    "remissdatum": "2025-02-20",
}


def wait(operation: str = "create", version: int = 1, **payload: Any) -> CareWaitEvent:
    """The contract's booked example entry, with `operation` and payload fields replaced (None
    removes a field)."""
    raw = copy.deepcopy(CARE_WAIT_EXAMPLES["waiting"])
    raw |= {"operation": operation, "record_version": version}
    raw["payload"].update(payload)
    raw["payload"] = {k: v for k, v in raw["payload"].items() if v is not None}
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, CareWaitEvent)
    return parsed


def call(event: CareWaitEvent, reference: str | None = None) -> GvrCall:
    return booking_call(event, reference, PATH, CODES)


def skipped(event: CareWaitEvent, reference: str | None = None) -> NothingToSendError:
    with pytest.raises(NothingToSendError) as caught:
        call(event, reference)
    assert caught.value.reason == NO_BOOKING
    assert not isinstance(caught.value, DeliveryError)  # a skip, never a retry or dead letter
    return caught.value


# -- an entry's life -------------------------------------------------------------------------


def test_a_referral_without_a_booking_is_nothing_to_send() -> None:
    error = skipped(wait(booked_on=None, booked_for=None))
    assert "not booked" in str(error)
    assert "200312242498" not in str(error)  # no personal identity number in a message


def test_a_booking_gvr_does_not_hold_yet_is_a_create_whatever_the_envelope_says() -> None:
    for operation in ("create", "correct"):
        made = call(wait(operation))

        assert (made.apply.method, made.apply.path) == ("POST", PATH)
        assert (made.apply.operation, made.apply.reference) == ("create", None)
        assert made.apply.json == BOOKED_BODY
        assert made.apply.key == ("200312242498", "2025-03-12", "", "11010046M30")
        assert not made.withdraws
        # looked up (after a crash, or a 409) as a live record of ours on the booking's day
        assert made.lookup is not None
        assert (made.lookup.method, made.lookup.path) == ("GET", PATH)
        assert made.lookup.params == (*WHERE, ("bokningsdatum", "2025-03-12"))
        assert made.lookup.expect == {"kallsystem": "takecare-sll", "kallId": ENTRY}


def test_a_booking_gvr_holds_is_corrected_whole_and_a_rebooking_moves_its_day() -> None:
    rebooked = wait("correct", 3, booked_on="2025-03-20", booked_for="2025-04-15")

    made = call(rebooked, REF)

    assert (made.apply.method, made.apply.path) == ("PUT", f"{PATH}/{REF}")
    assert (made.apply.operation, made.apply.reference) == ("correct", REF)
    assert made.apply.json == BOOKED_BODY | {"bokningsdatum": "2025-03-20"}
    assert made.lookup is not None
    assert made.lookup.params == (*WHERE, ("bokningsdatum", "2025-03-20"))
    assert made.lookup.expect == made.apply.json  # the whole corrected record


def test_the_fields_of_a_booking_record() -> None:
    decided = wait(wait_kind="treatment", decided_on="2025-02-25", guarantee_applies=False)
    by_hsa = wait(kombika=None, unit_hsa_id="SE2321000016-14L1")

    body = call(decided).apply.json
    assert body is not None
    assert body["beslutsdatum"] == "2025-02-25"
    assert body["vardgaranti"] is False
    assert "besokstid" not in body  # booked_for is a day; GVR's besokstid is a time of day
    made = call(by_hsa)
    assert made.apply.json is not None
    assert made.apply.json["enhet"] == {"hsaId": "SE2321000016-14L1"}
    assert made.lookup is not None
    assert ("enhet.hsaId", "SE2321000016-14L1") in made.lookup.params
    codes = WaitCodes(contact_category="SLUTENVARD", patient_chosen="P1", medically_caused="M1")
    chosen = wait(exceptions=[{"kind": "patient_chosen", "start": "2025-03-01"}])
    configured = booking_call(chosen, None, PATH, codes).apply.json
    assert configured is not None
    assert (configured["kontaktkategori"], configured["undantagskod"]) == ("SLUTENVARD", "P1")


def period(kind: str, start: str, end: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "start": start} | ({"end": end} if end else {})


@pytest.mark.parametrize(
    ("exceptions", "code"),
    [
        ([], None),
        ([period("patient_chosen", "2025-03-01")], "PVV"),
        ([period("medically_caused", "2025-02-21", "2025-03-01")], "MOV"),
        # an open period wins over one that ended later than it started
        (
            [
                period("medically_caused", "2025-02-22", "2025-03-10"),
                period("patient_chosen", "2025-03-01"),
            ],
            "PVV",
        ),
        # two open: the latest started
        ([period("patient_chosen", "2025-02-25"), period("medically_caused", "2025-03-02")], "MOV"),
        # none open: the one that ended last
        (
            [
                period("patient_chosen", "2025-02-21", "2025-03-05"),
                period("medically_caused", "2025-02-25", "2025-03-01"),
            ],
            "PVV",
        ),
        # the same days: PVV
        (
            [
                period("medically_caused", "2025-02-21", "2025-03-05"),
                period("patient_chosen", "2025-02-21", "2025-03-05"),
            ],
            "PVV",
        ),
    ],
)
def test_the_exception_code_is_the_open_or_the_latest_periods(
    exceptions: list[dict[str, Any]], code: str | None
) -> None:
    body = call(wait(exceptions=exceptions)).apply.json
    assert body is not None
    assert body.get("undantagskod") == code


def test_a_completed_entry_keeps_its_booking_record() -> None:
    completed = wait("correct", 4, completed_on="2025-04-08")

    made = call(completed, REF)

    assert (made.apply.method, made.apply.reference) == ("PUT", REF)
    assert made.apply.json == BOOKED_BODY  # the booking as it was: completion is CVR's news
    assert call(completed).apply.method == "POST"  # a booking first seen at completion


def test_a_cleared_booking_makulerar_gvrs_record_without_its_day() -> None:
    cleared = wait("correct", 3, booked_on=None, booked_for=None)

    made = call(cleared, REF)

    assert (made.apply.method, made.apply.path, made.apply.json) == ("DELETE", PATH, None)
    assert (made.apply.operation, made.apply.reference) == ("cancel", REF)
    assert made.apply.params == (("id", REF), *WHERE)  # the booking's day is gone
    assert made.withdraws
    assert made.lookup is None  # GVR's GET needs the day: a resent DELETE's 409 tells instead


def test_a_removed_or_withdrawn_entry_makulerar_its_record_on_its_day() -> None:
    removed = wait("correct", 5, removed_on="2025-03-30", removed_reason="declined")
    for event in (removed, wait("cancel", 6)):
        made = call(event, REF)

        assert made.apply.method == "DELETE"
        assert made.apply.params == (("id", REF), *WHERE, ("bokningsdatum", "2025-03-12"))
        assert made.withdraws
        assert made.lookup is not None
        assert made.lookup.expect == {"id": REF, "status": "MAKULERAD"}  # this record, no other


def test_nothing_to_makulera_without_a_live_record() -> None:
    removed = wait("correct", 5, removed_on="2025-03-30", removed_reason="declined")
    cleared = wait("correct", 3, booked_on=None, booked_for=None)

    assert "removed" in str(skipped(removed))
    assert "cancel" in str(skipped(wait("cancel", 2)))
    for event in (removed, cleared, wait("cancel", 2)):
        skipped(event, withdrawn(REF))  # already makulerad: nothing more to do


def test_booked_again_after_a_makulering_is_a_new_record() -> None:
    made = call(wait("correct", 7), withdrawn(REF))

    assert (made.apply.method, made.apply.reference) == ("POST", None)


def test_the_ledger_names_an_entry_apart_and_remembers_a_makulering() -> None:
    assert ledger_id("E1") == "care.wait:E1"
    assert withdrawn(REF) == withdrawn(withdrawn(REF)) == f"makulerad:{REF}"
    assert (live(None), live(REF), live(withdrawn(REF))) == (None, REF, None)


def test_a_patient_id_type_gvr_does_not_take_is_an_invalid_event() -> None:
    foreign = wait(patient={"id_type": "RESERVE_VGR", "id": "19561110K064"})
    with pytest.raises(InvalidEventError, match=r"patient\.id_type"):
        call(foreign)


# -- the worker: parse, units, send -------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    hsa_id: str
    county_code: str | None
    open_until: date | None = None

    def active_on(self, day: date) -> bool:
        return self.open_until is None or day <= self.open_until


class _Catalog:
    """Ward M30's kombika open, M31's closed; HSA-ids as given."""

    def __init__(self, **units: _Unit) -> None:
        self._units = {unit.hsa_id: unit for unit in units.values()}

    def unit_by_kombika(self, kombika: str, _day: date) -> _Unit | None:
        return _Unit("SE2321000016-M30", "01") if kombika == "11010046M30" else None

    def knows_kombika(self, kombika: str) -> bool:
        return kombika in ("11010046M30", "11010046M31")  # M31: closed

    def unit(self, hsa_id: str) -> _Unit | None:
        return self._units.get(hsa_id)


def worker(
    catalog: _Catalog | None = None, answer: httpx.Response | None = None
) -> tuple[GvrWorker, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer or httpx.Response(201, json={"id": "GVR-0000001"})

    client = GvrClient("https://gvr.test", transport=httpx.MockTransport(handle))
    return GvrWorker(client, catalog or _Catalog(), GvrPaths(), timedelta(hours=6)), sent


def raw(event: CareWaitEvent) -> bytes:
    return event.model_dump_json().encode()


def test_the_worker_reads_entries_beside_care_contacts_each_record_apart() -> None:
    gvr, _ = worker()

    identity, event = gvr.parse(raw(wait("correct", 2)))

    assert isinstance(event, CareWaitEvent)
    assert identity == EventIdentity(
        "3c1d7e52-8a94-4b0f-a6d3-5e2f1b9c7a40", f"care.wait:{ENTRY}", 2, "correct"
    )


def test_units_of_entries_are_checked_as_care_contacts_are() -> None:
    theirs = _Unit("SE2321000131-E000000000001", "14")
    new = "SE2321000016-NEW1"
    closed = _Unit("SE2321000016-OLD1", "01", open_until=date(2025, 1, 31))
    gvr, _ = worker(_Catalog(theirs=theirs, closed=closed))

    with pytest.raises(NotOursError, match="county 14"):
        gvr.map(wait(kombika=None, unit_hsa_id=theirs.hsa_id), None)
    with pytest.raises(NotOursError):  # not ours even without a booking
        gvr.map(wait(kombika=None, unit_hsa_id=theirs.hsa_id, booked_on=None), None)
    with pytest.raises(NotYetKnownError) as unknown:
        gvr.map(wait(kombika=None, unit_hsa_id=new), None)
    assert unknown.value.grace == timedelta(hours=6)
    with pytest.raises(ClosedUnitError):
        gvr.map(wait(kombika=None, unit_hsa_id=closed.hsa_id), None)
    with pytest.raises(ClosedUnitError):
        gvr.map(wait(kombika="11010046M31"), None)  # known to the code server, not open
    # an unknown unit is not waited for when there is nothing to send anyway
    with pytest.raises(NothingToSendError):
        gvr.map(wait(kombika=None, unit_hsa_id=new, booked_on=None, booked_for=None), None)


async def test_a_makulering_leaves_the_ledger_a_withdrawn_reference() -> None:
    removed = wait("cancel", 4)
    gvr, sent = worker(answer=httpx.Response(200, json={"id": REF, "status": "MAKULERAD"}))
    mapped = gvr.map(removed, REF)
    submission = Submission(gvr.parse(raw(removed))[0], mapped, REF)

    (outcome,) = await gvr.submit([submission])

    assert outcome == Accepted(f"makulerad:{REF}")
    assert sent[0].method == "DELETE"
    assert sent[0].url.params["id"] == REF


async def test_a_delete_gvr_answers_409_already_makulerad_is_done() -> None:
    cleared = wait("correct", 3, booked_on=None, booked_for=None)
    answer = httpx.Response(409, json={"fel": [{"falt": "id", "kod": "GVR-MAKULERAD"}]})
    gvr, _ = worker(answer=answer)
    submission = Submission(gvr.parse(raw(cleared))[0], gvr.map(cleared, REF), REF)

    assert await gvr.submit([submission]) == [Accepted(f"makulerad:{REF}")]
    assert await gvr.lookup(submission) is None  # no day to look it up by


async def test_a_lookup_of_a_makulering_finds_this_record_only() -> None:
    removed = wait("cancel", 4)
    hits = [
        {"id": "GVR-0000007", "status": "MAKULERAD", "kallId": ENTRY},  # an earlier booking's
        {"id": REF, "status": "MAKULERAD", "kallId": ENTRY},
    ]
    gvr, _ = worker(answer=httpx.Response(200, json={"traffar": hits}))
    submission = Submission(gvr.parse(raw(removed))[0], gvr.map(removed, REF), REF)

    assert await gvr.lookup(submission) == Accepted(f"makulerad:{REF}")


# -- settings and spec ---------------------------------------------------------------------


def test_the_waits_topic_and_codes_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SPEC.topics(GvrSettings()).inputs == ("care.contacts.v1", "care.waits.v1")
    monkeypatch.setenv("REGBRIDGE_GVR_WAITS_TOPIC", "acme.waits.v2")
    monkeypatch.setenv("REGBRIDGE_GVR_WAIT_CODES__PATIENT_CHOSEN", "PV")
    settings = GvrSettings()
    assert SPEC.topics(settings).inputs == ("care.contacts.v1", "acme.waits.v2")
    assert settings.wait_codes == WaitCodes(patient_chosen="PV")
    monkeypatch.setenv("REGBRIDGE_GVR_WAITS_TOPIC", "")
    assert SPEC.topics(GvrSettings()).inputs == ("care.contacts.v1",)  # not read
