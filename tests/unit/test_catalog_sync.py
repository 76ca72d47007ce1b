"""Pure parts of the catalog sync: HSA normalisation and the import schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.catalog.normalise import (
    InvalidUnitError,
    hsa_date,
    hsa_timestamp,
    normalise_hsa_unit,
)
from shared.schedule import DailySlots, parse_times, slot_id

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TIMES = parse_times(["22:30", "11:30", "15:30"])
IMPORTS = DailySlots(TIMES, STOCKHOLM)


def hsa_unit(**changes: Any) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "hsaIdentity": "SE2321000016-14L1",
        "name": "Vårdcentral Tallkrogen",
        "careGiver": "SE2321000016-1000",
        "careGiverName": "Region Stockholm",
        "careGiverOrgNo": "2321000016",
        "businessType": ["02"],
        "hsaDestinationIndicator": ["03"],
        "municipalityCode": "0180",
        "countyCode": "01",
        "postalAddress": "Tallkrogsvägen 1$122 60 Enskede",
        "postalCode": "12260",
        "geographicalCoordinates": {"lat": 59.27, "lon": 18.08},
        "hsaStartDate": "20150101",
        "kombika": [
            {"code": "19108011M04", "validFrom": "20240101"},
            {"code": "11010046M30", "validFrom": "20150101"},
        ],
        "modifyTimestamp": "20260315103000",
    }
    unit.update(changes)
    return unit


def test_an_hsa_record_becomes_a_catalog_unit() -> None:
    unit = normalise_hsa_unit(hsa_unit())

    assert unit.hsa_id == "SE2321000016-14L1"
    assert unit.care_giver_org_number == "2321000016"
    assert unit.postal_address is not None
    assert unit.postal_address.lines == ("Tallkrogsvägen 1", "122 60 Enskede")
    # the newer kombika ends the older one's validity
    assert [(k.kombika, k.valid_from, k.valid_to) for k in unit.kombika] == [
        ("11010046M30", date(2015, 1, 1), date(2024, 1, 1)),
        ("19108011M04", date(2024, 1, 1), None),
    ]
    # HSA's local timestamp without a zone is Swedish time (CET in March)
    assert unit.source_updated_at == datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
    assert unit.active_on(date(2026, 1, 1))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hsaIdentity": None}, "hsaIdentity: required"),
        ({"careGiverOrgNo": "2321000017"}, "care_giver_org_number"),
        ({"kombika": [{"code": "302163110022A", "validFrom": "20200101"}]}, "kombika"),
        ({"hsaStartDate": "2015-01-01"}, "hsaStartDate: expected YYYYMMDD"),
        ({"modifyTimestamp": "20261301000000"}, "modifyTimestamp: expected YYYYMMDDhhmmss"),
        ({"geographicalCoordinates": {"lat": 40.0, "lon": 18.0}}, "latitude"),
    ],
)
def test_an_invalid_record_is_refused_with_the_field_named(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidUnitError, match=message):
        normalise_hsa_unit(hsa_unit(**changes))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 22, 9, 0, tzinfo=UTC), datetime(2026, 11, 22, 11, 30)),
        (datetime(2026, 11, 22, 10, 30, tzinfo=UTC), datetime(2026, 11, 22, 15, 30)),
        (datetime(2026, 11, 22, 21, 30, tzinfo=UTC), datetime(2026, 11, 23, 11, 30)),
        # summer time: 11:30 in Stockholm is 09:30 UTC
        (datetime(2026, 7, 1, 9, 29, tzinfo=UTC), datetime(2026, 7, 1, 11, 30)),
    ],
)
def test_the_next_slot_is_local_stockholm_time(now: datetime, expected: datetime) -> None:
    assert IMPORTS.next_after(now) == expected.replace(tzinfo=STOCKHOLM)


def test_slot_ids_name_the_local_time() -> None:
    at = datetime(2026, 11, 22, 11, 30, tzinfo=STOCKHOLM)
    assert slot_id("hsa-full-import", at) == "hsa-full-import/2026-11-22T11:30+01:00"
    assert (time(11, 30), time(15, 30), time(22, 30)) == TIMES


@pytest.mark.parametrize(
    "text",
    [
        "20150101",
        "20240229",
        "20230229",
        "20151301",
        "20150132",
        "2015011",
        "201511",
        "0000101",
        "00000101",
        "2015 101",
        "2015-1-1",
        "\uff12\uff10\uff11\uff15\uff10\uff11\uff10\uff11",  # full-width digits
        "20150101000000",
        "20260315103000",
        "20261301000000",
        "20260315246000",
        "20260315235960",
        "20260315235959",
        "2026031523595",
        "202603152359599",
        "2026315235959",
    ],
)
def test_hsa_dates_and_times_read_as_strptime_reads_them(text: str) -> None:
    """The direct reading of eight or fourteen digits agrees with strptime on every shape."""

    def expected(layout: str) -> datetime | None:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            return None

    def read(parse: Any) -> Any:
        try:
            return parse(text, "field")
        except InvalidUnitError:
            return None

    day = expected("%Y%m%d")
    assert read(hsa_date) == (day.date() if day else None)
    moment = expected("%Y%m%d%H%M%S")
    assert read(hsa_timestamp) == (moment.replace(tzinfo=STOCKHOLM) if moment else None)
