"""The catalog index without Kafka: look-ups, replacement without leaks, bad values, memory."""

from __future__ import annotations

from datetime import date

import pytest

from shared.catalog.index import CatalogIndex
from shared.catalog.models import CareUnit
from shared.catalog.records import CareGiver
from shared.identifiers import InvalidIdentifierError
from tests.support.catalog_values import (
    PRIVATE,
    PRIVATE_ORG,
    care_unit,
    hsa,
    period,
    record,
    vaccine,
)

K1, K2 = "11010046M30", "11010046M31"


def loaded(*units: CareUnit) -> CatalogIndex:
    index = CatalogIndex()
    for unit in units:
        assert index.apply_unit(*record(unit)) is None
    return index


def test_a_unit_is_found_by_hsa_id_with_what_the_workers_need() -> None:
    index = loaded(care_unit(1, end_date=date(2030, 1, 1)))

    view = index.unit(hsa(1))

    assert view is not None
    assert (view.hsa_id, view.name, view.county_code) == (hsa(1), "Vårdcentralen 1", "01")
    assert (view.start_date, view.end_date) == (date(2020, 1, 1), date(2030, 1, 1))
    assert view.destination_indicators == ("03",)
    assert index.unit(hsa(2)) is None


def test_the_kombika_that_covers_a_day_names_the_unit() -> None:
    # Given K1 moved from unit 1 to unit 2 on 2023-01-01, and unit 1 took K2 that day
    index = loaded(
        care_unit(
            1,
            kombika=(period(K1, date(2019, 1, 1), date(2023, 1, 1)), period(K2, date(2023, 1, 1))),
        ),
        care_unit(2, kombika=(period(K1, date(2023, 1, 1)),)),
    )

    def owner(kombika: str, day: date) -> str | None:
        unit = index.unit_by_kombika(kombika, day)
        return unit.hsa_id if unit else None

    assert owner(K1, date(2018, 12, 31)) is None
    assert owner(K1, date(2019, 1, 1)) == hsa(1)
    assert owner("11010 046 M30", date(2022, 12, 31)) == hsa(1)
    assert owner(K1, date(2023, 1, 1)) == hsa(2)
    assert owner(K2, date(2022, 12, 31)) is None
    assert owner(K2, date(2030, 1, 1)) == hsa(1)
    assert owner("99999999X", date(2023, 1, 1)) is None
    unit1 = index.unit(hsa(1))
    assert unit1 is not None
    assert unit1.kombika_on(date(2022, 6, 1)) == K1
    assert unit1.kombika_periods[1] == (K2, date(2023, 1, 1), None)


def test_a_malformed_kombika_is_an_identifier_error_not_an_unknown_unit() -> None:
    with pytest.raises(InvalidIdentifierError):
        loaded().unit_by_kombika("1101", date(2023, 1, 1))


def test_an_update_replaces_the_old_kombika_entries_and_a_tombstone_removes_all() -> None:
    index = loaded(care_unit(1, kombika=(period(K1, date(2019, 1, 1)),)))

    index.apply_unit(*record(care_unit(1, kombika=(period(K2, date(2019, 1, 1)),))))

    assert index.unit_by_kombika(K1, date(2024, 1, 1)) is None
    assert index.unit_by_kombika(K2, date(2024, 1, 1)) is not None
    assert index.stats().kombika_entries == 1
    index.apply_unit(hsa(1).encode(), None)
    assert index.unit(hsa(1)) is None
    assert index.unit_by_kombika(K2, date(2024, 1, 1)) is None
    assert index.stats().kombika_entries == 0


def test_a_period_listed_twice_is_one_entry() -> None:
    twice = (period(K1, date(2019, 1, 1)), period(K1, date(2019, 1, 1)))
    index = loaded(care_unit(1, kombika=twice))

    index.apply_unit(hsa(1).encode(), None)

    assert index.stats().kombika_entries == 0
    assert index.unit_by_kombika(K1, date(2020, 1, 1)) is None


def test_active_and_care_giver_queries() -> None:
    private = {"care_giver_hsa_id": f"{PRIVATE}-1", "care_giver_org_number": PRIVATE_ORG}
    index = loaded(
        care_unit(1, end_date=date(2024, 1, 1)),
        care_unit(2, start_date=None, care_giver_name=None, **private),
        care_unit(3),
    )

    assert index.is_active(hsa(1), date(2023, 12, 31))
    assert not index.is_active(hsa(1), date(2024, 1, 1))
    assert not index.is_active(hsa(3), date(2019, 12, 31))
    assert index.is_active(hsa(2), date(1900, 1, 1))
    assert not index.is_active(hsa(9), date(2024, 1, 1))
    assert index.care_giver_of(hsa(2)) == CareGiver(f"{PRIVATE}-1", None, PRIVATE_ORG)
    assert index.care_giver_of(hsa(1)) is index.care_giver_of(hsa(3))  # one shared record
    assert index.care_giver_of(hsa(9)) is None
    assert "org_number='2321000016'" in repr(index.care_giver_of(hsa(1)))


def test_a_care_giver_no_unit_refers_to_is_forgotten() -> None:
    index = loaded(care_unit(1), care_unit(2))

    index.apply_unit(*record(care_unit(1, care_giver_name="Region Stockholm (nytt namn)")))
    index.apply_unit(*record(care_unit(2, care_giver_name="Region Stockholm (nytt namn)")))

    assert index.stats().care_givers == 1


def test_vaccines_batches_and_their_expiry() -> None:
    index = CatalogIndex()
    index.apply_vaccine(*record(vaccine("123", ("AB1", date(2025, 6, 30)), ("CD2", None))))

    assert index.is_current_batch("123", "AB1", date(2025, 6, 30))
    assert not index.is_current_batch("123", "AB1", date(2025, 7, 1))
    assert index.is_current_batch("123", "CD2", date(2099, 1, 1))
    assert not index.is_current_batch("123", "XX9", date(2025, 1, 1))
    assert not index.is_current_batch("456", "AB1", date(2025, 1, 1))
    product = index.vaccine("123")
    assert product is not None
    assert product.batches == {"AB1": date(2025, 6, 30), "CD2": None}
    index.apply_vaccine(b"123", None)
    assert index.vaccine("123") is None


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (hsa(1).encode(), b"{not json", "invalid_json"),
        (hsa(1).encode(), b'{"hsa_id": "SE123"}', "invalid"),
        (hsa(2).encode(), record(care_unit(1))[1], "key_mismatch"),
        (hsa(1).encode(), record(care_unit(1, schema_version=2))[1], "schema_version"),
        (None, record(care_unit(1))[1], "missing_key"),
        (b"\xff\xfe", record(care_unit(1))[1], "bad_key"),
    ],
)
def test_a_bad_unit_record_is_skipped_counted_and_reads_as_absent(
    key: bytes | None, value: bytes, reason: str
) -> None:
    index = loaded(care_unit(1), care_unit(2), care_unit(3))

    skip = index.apply_unit(key, value)

    assert skip is not None
    assert (skip.reason, skip.first) == (reason, True)
    assert "Vårdcentralen" not in skip.detail  # a summary of what failed, never the input
    assert index.stats().skipped_by_reason == {f"unit_{reason}": 1}
    assert index.unit(hsa(3)) is not None
    if key is not None and key.startswith(b"SE"):
        # as compaction will leave it: the key's last value is bad, so the key holds nothing
        assert index.unit(key.decode()) is None


def test_a_bad_key_is_first_once_until_it_is_valid_again() -> None:
    index = CatalogIndex()
    bad = (hsa(1).encode(), b"{}")

    firsts = [index.apply_unit(*bad).first for _ in range(3)]  # type: ignore[union-attr]
    index.apply_unit(*record(care_unit(1)))
    again = index.apply_unit(*bad)

    assert firsts == [True, False, False]
    assert again is not None
    assert again.first
    assert index.stats().skipped == 4


def test_a_bad_vaccine_record_is_skipped() -> None:
    index = CatalogIndex()

    skip = index.apply_vaccine(b"123", record(vaccine("124"))[1])

    assert skip is not None
    assert skip.reason == "key_mismatch"
    assert index.stats().skipped_by_reason == {"vaccine_key_mismatch": 1}


def test_updating_every_unit_many_times_keeps_counts_and_memory_bounded() -> None:
    units = 300
    index = loaded(
        *(care_unit(n, kombika=(period(f"{n:05d}046A", date(2020, 1, 1)),)) for n in range(units))
    )
    first = index.stats()

    for round_ in range(1, 6):
        for n in range(units):
            kombika = period(f"{n:05d}046{'AB'[round_ % 2]}", date(2020, 1, round_))
            index.apply_unit(*record(care_unit(n, name=f"v{round_}", kombika=(kombika,))))

    last = index.stats()
    assert (last.units, last.kombika_entries, last.care_givers) == (units, units, 1)
    assert last.approx_memory_bytes <= first.approx_memory_bytes * 1.1
    assert first.approx_memory_bytes > units * 200  # the estimate counts the records


def test_records_compare_by_value() -> None:
    one, other = loaded(care_unit(1)), loaded(care_unit(1))

    assert one.unit(hsa(1)) == other.unit(hsa(1))
    assert one.unit(hsa(1)) != loaded(care_unit(1, name="Annat namn")).unit(hsa(1))
