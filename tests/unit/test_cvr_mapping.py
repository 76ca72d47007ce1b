"""Waiting-list entries → CVR's reports: which unit's file of which period, carried or not, and
whose entry it is not. Pure."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.cvr.mapping import MappingRules, place
from services.cvr.settings import CvrSettings
from services.cvr.worker import rules_from
from shared.catalog.index import CatalogIndex
from shared.catalog.models import CareUnit
from shared.contracts import CareWaitEvent, parse_event
from shared.contracts.examples import CARE_WAIT_EXAMPLES
from shared.delivery.errors import NotOursError, NotYetKnownError
from shared.files.register import FileKey
from shared.schedule import Period

STOCKHOLM_UNIT = "SE2321000016-14L1"
GOTHENBURG_UNIT = "SE2321000131-E000000000101"


def catalog() -> CatalogIndex:
    index = CatalogIndex()
    for hsa_id, county in ((STOCKHOLM_UNIT, "01"), (GOTHENBURG_UNIT, "14")):
        unit = CareUnit.model_validate(
            {
                "hsa_id": hsa_id,
                "name": "Mottagning",
                "care_giver_hsa_id": hsa_id.split("-")[0] + "-E000000000001",
                "care_giver_org_number": "2321000016",
                "county_code": county,
                "start_date": date(2010, 1, 1),
            }
        )
        index.put_unit(unit)
    return index


CATALOG, RULES = catalog(), MappingRules()


def event(
    example: str, occurred: str = "2025-03-20T10:00:00+01:00", **payload: Any
) -> CareWaitEvent:
    data = copy.deepcopy(CARE_WAIT_EXAMPLES[example])
    data["occurred_at"] = occurred
    data["payload"].update(payload)
    data["payload"] = {k: v for k, v in data["payload"].items() if v is not None}
    parsed = parse_event(json.dumps(data).encode())
    assert isinstance(parsed, CareWaitEvent)
    return parsed


def test_a_waiting_entry_is_carried_from_the_period_it_was_recorded_in() -> None:
    placement = place(event("waiting"), CATALOG, RULES)

    assert placement.key == FileKey(Period(2025, 3), "11010046M30")
    assert placement.carried
    assert placement.values["status"] == "V"
    assert placement.values["remissdatum"] == "2025-02-20"


def test_a_completed_entry_is_in_the_period_it_was_completed_in() -> None:
    placement = place(event("completed", occurred="2025-03-14T08:00:00+01:00"), CATALOG, RULES)

    assert placement.key.period == Period(2025, 3)
    assert not placement.carried
    assert placement.values["status"] == "G"
    assert placement.values["undantag"] == [
        {"kind": "medically_caused", "start": "2024-12-02", "end": "2025-01-10"}
    ]


def test_a_completion_recorded_after_its_month_goes_into_the_next_report() -> None:
    late = event("completed", occurred="2025-04-03T08:00:00+02:00")  # completed 13 March

    assert place(late, CATALOG, RULES).key.period == Period(2025, 4)


def test_daily_reports_place_an_entry_in_the_day_it_was_recorded_or_closed() -> None:
    daily = MappingRules(cadence="daily")
    # a waiting entry: carried from the day its event was recorded (Stockholm's clock)
    waiting = place(event("waiting", occurred="2025-03-20T23:30:00+00:00"), CATALOG, daily)
    assert (waiting.key.period, waiting.carried) == (Period(2025, 3, 21), True)
    # a completion on its day, or recorded later, on the day it was recorded
    on_time = event("completed", occurred="2025-03-13T18:00:00+01:00")  # completed 13 March
    assert place(on_time, CATALOG, daily).key.period == Period(2025, 3, 13)
    late = event("completed", occurred="2025-03-15T08:00:00+01:00")
    assert place(late, CATALOG, daily).key.period == Period(2025, 3, 15)


def test_a_unit_given_by_hsa_id_reports_when_it_is_in_the_regions_county() -> None:
    placement = place(event("patient_chosen"), CATALOG, RULES)

    assert placement.key.owner == STOCKHOLM_UNIT


def test_another_regions_unit_is_not_ours_and_an_unknown_one_of_ours_waits() -> None:
    with pytest.raises(NotOursError, match="county 14"):
        place(event("patient_chosen", unit_hsa_id=GOTHENBURG_UNIT), CATALOG, RULES)
    with pytest.raises(NotOursError, match="another region"):
        place(event("patient_chosen", unit_hsa_id="SE2321000222-X1"), CATALOG, RULES)
    with pytest.raises(NotYetKnownError) as unknown:
        place(event("patient_chosen", unit_hsa_id="SE2321000016-NEW1"), CATALOG, RULES)
    assert unknown.value.final_class == "unknown_unit"
    assert unknown.value.grace == timedelta(hours=6)


def test_cvrs_reports_are_daily_or_monthly_by_setting() -> None:
    daily = CvrSettings(periods="daily", close_at=time(10), daily_alarm_at=time(8))
    assert rules_from(daily).cadence == "daily"
    window = daily.window().window(Period(2025, 3, 20))
    assert window.closes_at == datetime(2025, 3, 21, 10, tzinfo=ZoneInfo("Europe/Stockholm"))
    assert window.alarm_at.hour == 8
    monthly = CvrSettings()
    assert rules_from(monthly).cadence == "monthly"
    assert monthly.window().window(Period(2025, 3)).closes_at.date() == date(2025, 4, 7)
