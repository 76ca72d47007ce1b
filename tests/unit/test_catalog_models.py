"""The catalog values' date rules: a unit's active days, a kombika's period, a batch's expiry."""

from __future__ import annotations

from datetime import date

import pytest

from tests.support.catalog_values import care_unit, period, vaccine


@pytest.mark.parametrize(
    ("start", "end", "day", "active"),
    [
        (None, None, date(1990, 1, 1), True),
        (date(2020, 1, 1), None, date(2019, 12, 31), False),
        (date(2020, 1, 1), None, date(2020, 1, 1), True),
        (date(2020, 1, 1), date(2024, 1, 1), date(2023, 12, 31), True),
        (date(2020, 1, 1), date(2024, 1, 1), date(2024, 1, 1), False),
        (None, date(2024, 1, 1), date(2024, 6, 1), False),
    ],
)
def test_a_unit_is_active_from_its_start_until_before_its_end(
    start: date | None, end: date | None, day: date, active: bool
) -> None:
    unit = care_unit(1, start_date=start, end_date=end)

    assert unit.active_on(day) is active


@pytest.mark.parametrize(
    ("valid_to", "day", "covered"),
    [
        (None, date(2021, 12, 31), False),
        (None, date(2022, 1, 1), True),
        (None, date(2099, 1, 1), True),
        (date(2023, 1, 1), date(2022, 12, 31), True),
        (date(2023, 1, 1), date(2023, 1, 1), False),
    ],
)
def test_a_kombika_period_covers_from_inclusive_to_exclusive(
    valid_to: date | None, day: date, covered: bool
) -> None:
    kombika = period("11010046M30", date(2022, 1, 1), valid_to)

    assert kombika.covers(day) is covered


def test_a_kombika_given_with_spaces_is_stored_compact() -> None:
    assert period("11010 046 M30", date(2022, 1, 1)).kombika == "11010046M30"


@pytest.mark.parametrize(
    ("number", "day", "current"),
    [
        ("AB123", date(2025, 6, 30), True),  # the expiry day itself still counts
        ("AB123", date(2025, 7, 1), False),
        ("NOEXP", date(2099, 1, 1), True),
        ("UNKNOWN", date(2025, 1, 1), False),
        ("TWICE", date(2026, 6, 1), True),  # listed twice: the later expiry is current
    ],
)
def test_a_batch_is_current_until_its_expiry_day(number: str, day: date, current: bool) -> None:
    product = vaccine(
        "20210107000015",
        ("AB123", date(2025, 6, 30)),
        ("NOEXP", None),
        ("TWICE", date(2025, 1, 1)),
        ("TWICE", date(2026, 12, 31)),
    )

    assert product.has_current_batch(number, day) is current
