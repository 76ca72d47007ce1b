"""KIV beside HSA, the code server's kombika file, and an unknown kombika's grace. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.catalog.codeserver import UnreadableCodeFileError, mappings, read_mek
from services.catalog.kiv import merge, normalise_kiv_unit
from services.catalog.normalise import STOCKHOLM, InvalidUnitError
from services.gvr.settings import GvrSettings
from shared.catalog.index import CatalogIndex
from shared.catalog.models import CareUnit, KombikaMapping, KombikaPeriod
from shared.delivery import headers as h
from shared.delivery.errors import NotYetKnownError
from shared.delivery.fates import DeadLettered, Failed, Retrying, decide
from shared.delivery.outgoing import Inbound
from shared.delivery.retry import RetryPolicy

SAMPLE = Path(__file__).parents[1] / "fixtures" / "codeserver" / "MEK-sample.xml"
HSA_ID = "SE2321000131-E000000000001"


def hsa_unit(**changes: object) -> CareUnit:
    values: dict[str, object] = {
        "hsa_id": HSA_ID,
        "name": "Vårdcentral Hjällbo",
        "care_giver_hsa_id": "SE2321000131-E000000000000",
        "care_giver_org_number": "2321000131",
        "county_code": "14",
        "start_date": date(2010, 1, 1),
        "end_date": None,
        "source_updated_at": datetime(2026, 12, 1, 9, 0, tzinfo=STOCKHOLM),
    }
    values.update(changes)
    return CareUnit.model_validate(values)


KIV_RECORD = {
    "hsaIdentity": HSA_ID,
    "ou": "VC Hjällbo (KIV)",
    "vgrAnsvarsnummer": ["81234"],
    "vgrAO3kod": "602",
    "vgrCareType": "01",
    "vgrVardVal": "true",
    "hsaEndDate": "20270101",
    "modifyTimestamp": "20261202101500",
}


# ---- KIV ---------------------------------------------------------------------------------------


def test_a_kiv_record_reads_its_regional_attributes_and_end_date() -> None:
    kiv = normalise_kiv_unit(KIV_RECORD)

    assert kiv.hsa_id == HSA_ID
    assert kiv.regional.unit_code == "81234"  # an LDAP list: its first value
    assert kiv.regional.responsibility_area == "602"
    assert kiv.regional.care_type == "01"
    assert kiv.regional.vardval is True
    assert kiv.end_date == date(2027, 1, 1)
    assert kiv.updated_at == datetime(2026, 12, 2, 10, 15, tzinfo=STOCKHOLM)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hsaIdentity": None}, "hsaIdentity: required"),
        ({"hsaEndDate": "2027-01-01"}, "hsaEndDate: expected YYYYMMDD"),
        ({"vgrVardVal": "kanske"}, "vgrVardVal: expected a boolean"),
        ({"modifyTimestamp": "yesterday"}, "modifyTimestamp: expected YYYYMMDDhhmmss"),
    ],
)
def test_a_bad_kiv_record_says_which_attribute(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidUnitError, match=message):
        normalise_kiv_unit({**KIV_RECORD, **change})


def test_a_unit_in_both_takes_each_attribute_from_its_owner() -> None:
    hsa = hsa_unit(end_date=date(2030, 1, 1))
    merged = merge(hsa, normalise_kiv_unit(KIV_RECORD))

    assert merged.sources == ("hsa", "kiv")
    assert merged.name == "Vårdcentral Hjällbo"  # HSA's name, not KIV's `ou`
    assert merged.care_giver_org_number == "2321000131"
    assert merged.end_date == date(2027, 1, 1)  # KIV owns the end date
    assert merged.regional is not None
    assert merged.regional.unit_code == "81234"
    assert merged.source_updated_at == datetime(2026, 12, 2, 10, 15, tzinfo=STOCKHOLM)
    # it survives the topic: what is published is what the workers read
    assert CareUnit.model_validate_json(merged.model_dump_json(exclude_none=True)) == merged


def test_a_unit_only_in_hsa_is_hsas_alone() -> None:
    hsa = hsa_unit()
    assert merge(hsa, None) is hsa
    assert hsa.sources == ("hsa",)
    assert hsa.regional is None


def test_a_kiv_unit_of_another_id_is_not_merged() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge(hsa_unit(), normalise_kiv_unit({**KIV_RECORD, "hsaIdentity": "SE2321000131-E9"}))


def test_a_value_with_a_field_this_reader_does_not_know_is_still_read() -> None:
    """A newer catalog sync may add optional fields: workers deployed before it read on."""
    raw = hsa_unit().model_dump(mode="json") | {"added_later": {"x": 1}}
    assert CareUnit.model_validate(raw).hsa_id == HSA_ID


def test_which_vardval_a_unit_is_in_comes_from_kiv_and_reaches_the_workers_view() -> None:
    kiv = normalise_kiv_unit({**KIV_RECORD, "vgrVardValOmrade": "rehab"})
    assert kiv.regional.vardval_area == "rehab"
    merged = merge(hsa_unit(), kiv)
    index = CatalogIndex()
    index.put_unit(merged)

    view = index.unit(HSA_ID)

    assert view is not None
    assert view.regional is not None
    assert (view.regional.unit_code, view.regional.vardval) == ("81234", True)
    assert view.regional.vardval_area == "rehab"


def test_a_kiv_record_without_the_area_and_an_hsa_unit_read_as_before() -> None:
    """Values published before the area existed read on: no area, or no regional part at all."""
    assert normalise_kiv_unit(KIV_RECORD).regional.vardval_area is None
    old = merge(hsa_unit(), normalise_kiv_unit(KIV_RECORD)).model_dump(mode="json")
    old["regional"].pop("vardval_area")
    assert CareUnit.model_validate(old).regional.vardval_area is None  # type: ignore[union-attr]
    index = CatalogIndex()
    index.put_unit(hsa_unit())
    view = index.unit(HSA_ID)
    assert view is not None
    assert view.regional is None


# ---- the code server's file ---------------------------------------------------------------------


def test_the_public_mek_sample_reads() -> None:
    exported, rows = read_mek(SAMPLE.read_bytes())

    assert exported == datetime.fromisoformat("2013-09-30T05:55:31.913+02:00")
    assert [r.kombika for r in rows] == [
        "19108011M04",
        "19108951M01",
        "93857010M01",
        "191080110",
        "19108011000",
    ]
    assert all(r.problem is None for r in rows)
    first = rows[0].assignment
    assert first is not None
    assert (first.hsa_id, first.valid_from, first.valid_to) == (
        "SE2321000016-14L1",
        date(2007, 4, 3),
        None,
    )


def mek(*rows: str) -> bytes:
    body = "".join(f"<mappning>{row}</mappning>" for row in rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<mappningar xmlns="http://brainpool.se/mek/MEK.xsd" ExportDatum='
        f'"2026-12-05T06:00:00+01:00" MEKFilId="7">{body}</mappningar>'
    ).encode()


def row(kombika: str, hsa_id: str, since: str, till: str | None = None) -> str:
    end = f"<TillDatum>{till}</TillDatum>" if till else ""
    return (
        f"<Kombikakod>{kombika}</Kombikakod><HSAId>{hsa_id}</HSAId>"
        f"<FromDatum>{since}</FromDatum>{end}<SkapadDatum>{since}</SkapadDatum>"
    )


def test_a_kombika_with_several_rows_is_one_record_of_assignments_in_order() -> None:
    _, rows = read_mek(
        mek(
            row("11010046M30", "SE2321000016-B2", "2025-01-01T00:00:00+01:00"),
            row(
                "11010046M30",
                "SE2321000016-A1",
                "2020-01-01T00:00:00+01:00",
                "2024-12-31T23:59:59+01:00",
            ),
        )
    )
    [entry] = list(mappings(rows))

    assert entry.key == "11010046M30"
    assert entry.value is not None
    mapping = KombikaMapping.model_validate_json(entry.value)
    assert [(a.hsa_id, a.valid_from, a.valid_to) for a in mapping.assignments] == [
        ("SE2321000016-A1", date(2020, 1, 1), date(2025, 1, 1)),  # TillDatum is the last day
        ("SE2321000016-B2", date(2025, 1, 1), None),
    ]


def test_a_date_given_in_utc_is_the_swedish_day() -> None:
    _, [read] = read_mek(mek(row("11010046M30", "SE2321000016-A1", "2025-05-31T22:00:00Z")))
    assert read.assignment is not None
    assert read.assignment.valid_from == date(2025, 6, 1)


def test_unusable_rows_are_named_and_keep_what_the_topic_has() -> None:
    _, rows = read_mek(
        mek(
            row("1101004", "SE2321000016-A1", "2025-01-01T00:00:00+01:00"),
            row("11010046M31", "not-an-hsa-id", "2025-01-01T00:00:00+01:00"),
            row("11010046M32", "SE2321000016-A1", "soon"),
            row(
                "11010046M33",
                "SE2321000016-A1",
                "2025-01-01T00:00:00+01:00",
                "2024-01-01T00:00:00+01:00",
            ),
            row("11010046M34", "SE2321000016-A1", "2025-01-01T00:00:00+01:00"),
        )
    )
    entries = list(mappings(rows))

    keyless = [e for e in entries if e.key is None]
    assert len(keyless) == 1
    assert "mappning 1" in (keyless[0].problem or "")
    problems = {e.key: e.problem for e in entries if e.key and e.value is None}
    assert set(problems) == {"11010046M31", "11010046M32", "11010046M33"}
    assert "FromDatum" in (problems["11010046M32"] or "")
    assert "before FromDatum" in (problems["11010046M33"] or "")
    assert [e.key for e in entries if e.value is not None] == ["11010046M34"]


@pytest.mark.parametrize(
    "data",
    [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<mappningar><mappning><Kombikakod>&b;</Kombikakod></mappning></mappningar>",
    ],
)
def test_a_file_that_is_not_a_mek_file_is_refused_whole(data: bytes) -> None:
    with pytest.raises(UnreadableCodeFileError, match="not readable"):
        read_mek(data)


# ---- the index: the code server first, HSA's kombika attribute as the fallback ----------------


def unit(hsa_id: str, kombika: str | None = None, since: date = date(2020, 1, 1)) -> CareUnit:
    periods = (KombikaPeriod(kombika=kombika, valid_from=since),) if kombika else ()
    return hsa_unit(hsa_id=hsa_id, kombika=periods, county_code="01")


def test_the_code_server_answers_where_it_knows_the_kombika() -> None:
    index = CatalogIndex()
    index.put_unit(unit("SE2321000016-A1", "11010046M30"))  # HSA says A1
    index.put_unit(unit("SE2321000016-B2"))
    index.put_unit(unit("SE2321000016-C3", "11010046M31"))
    mapping = KombikaMapping.model_validate(
        {
            "kombika": "11010046M30",
            "assignments": [
                {"hsa_id": "SE2321000016-A1", "valid_from": "2020-01-01", "valid_to": "2025-01-01"},
                {"hsa_id": "SE2321000016-B2", "valid_from": "2025-01-01"},
            ],
        }
    )
    assert index.apply_kombika(b"11010046M30", mapping.model_dump_json().encode()) is None

    def found(kombika: str, day: date) -> str | None:
        view = index.unit_by_kombika(kombika, day)
        return view.hsa_id if view is not None else None

    assert found("11010046M30", date(2024, 6, 1)) == "SE2321000016-A1"
    assert found("11010 046 M30", date(2025, 6, 1)) == "SE2321000016-B2"  # the file, not HSA
    assert found("11010046M30", date(2019, 6, 1)) is None  # before the file's first period
    assert found("11010046M31", date(2025, 6, 1)) == "SE2321000016-C3"  # HSA: the file is silent
    assert index.stats().code_server_kombikas == 1

    assert index.apply_kombika(b"11010046M30", None) is None  # tombstoned: HSA answers again
    assert found("11010046M30", date(2025, 6, 1)) == "SE2321000016-A1"


def test_a_kombika_record_under_another_key_is_skipped() -> None:
    index = CatalogIndex()
    value = b'{"kombika": "11010046M30", "assignments": [{"hsa_id": "SE2321000016-A1", '
    value += b'"valid_from": "2020-01-01"}]}'
    skip = index.apply_kombika(b"11010046M99", value)
    assert skip is not None
    assert skip.reason == "key_mismatch"
    assert index.stats().skipped_by_reason == {"kombika_key_mismatch": 1}


# ---- an unknown kombika: retried for its grace, then a dead letter ------------------------------

POLICY = RetryPolicy.from_names(["30s", "5m", "1h", "6h"])
FIRST = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def retried(failures: int) -> Inbound:
    story = (
        (h.ATTEMPTS, str(failures).encode()),
        (h.FIRST_FAILURE_AT, FIRST.isoformat().encode()),
    )
    return Inbound("gvr.retry.5m", 0, 1, b"r1", b"{}", story, 0, from_retry=failures > 0)


def fate_at(inbound: Inbound, now: datetime, grace: timedelta) -> object:
    error = NotYetKnownError("kombika 11010046M30 unknown", grace=grace, final_class="unknown_unit")
    [fate] = decide([(inbound, Failed(error))], register_down=False, retry=POLICY, now=now)
    return fate


def test_an_unknown_kombika_is_retried_while_its_grace_lasts() -> None:
    fate = fate_at(retried(2), FIRST + timedelta(minutes=59), timedelta(hours=1))
    assert isinstance(fate, Retrying)
    assert fate.tier == "1h"


def test_an_unknown_kombika_past_its_grace_is_an_unknown_unit_dead_letter() -> None:
    fate = fate_at(retried(3), FIRST + timedelta(hours=1, minutes=6), timedelta(hours=1))
    assert isinstance(fate, DeadLettered)
    assert fate.error_class == "unknown_unit"
    assert "still so 1:06:00 after the first attempt" in fate.reason


def test_no_grace_is_a_dead_letter_at_the_first_attempt() -> None:
    fate = fate_at(retried(0), FIRST, timedelta(0))
    assert isinstance(fate, DeadLettered)
    assert fate.error_class == "unknown_unit"


def test_tiers_spent_before_the_grace_is_the_final_class_too() -> None:
    fate = fate_at(retried(4), FIRST + timedelta(hours=7), timedelta(days=2))
    assert isinstance(fate, DeadLettered)
    assert fate.error_class == "unknown_unit"


def test_the_grace_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GvrSettings().unknown_unit_grace_delta() == timedelta(hours=6)
    monkeypatch.setenv("REGBRIDGE_GVR_UNKNOWN_UNIT_GRACE", "0")
    assert GvrSettings().unknown_unit_grace_delta() == timedelta(0)
    monkeypatch.setenv("REGBRIDGE_GVR_UNKNOWN_UNIT_GRACE", "an hour")
    with pytest.raises(ValueError, match="unknown_unit_grace"):
        GvrSettings()
