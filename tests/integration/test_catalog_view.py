"""CatalogView on a real broker: ready only when caught up, then following every change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from structlog.testing import capture_logs

from shared.catalog.view import CatalogTopicMissingError, CatalogView
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, ensure_topics
from tests.support.catalog_values import (
    PRIVATE,
    PRIVATE_ORG,
    care_unit,
    hsa,
    period,
    record,
    vaccine,
)
from tests.support.runtime_harness import wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 4
READY_TIMEOUT = 60.0
K1, K2 = "11010046M30", "11010046M31"

Records = Sequence[tuple[bytes | None, bytes | None]]


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    units: str
    vaccines: str

    def view(self) -> CatalogView:
        return CatalogView(
            KafkaSettings(bootstrap_servers=self.bootstrap),
            units_topic=self.units,
            vaccines_topic=self.vaccines,
        )


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: str) -> Topics:
    made = Topics(kafka_bootstrap, f"test.care-units.{unique_name}", f"test.vaccines.{unique_name}")
    await ensure_topics(
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        [
            TopicSpec(made.units, "units", compacted=True),
            TopicSpec(made.vaccines, "vaccines", compacted=True),
        ],
        partitions=PARTITIONS,
        replication_factor=1,
    )
    return made


@pytest.fixture
async def view(topics: Topics) -> AsyncIterator[CatalogView]:
    """A view started on the topics as they are when the test asks for it."""
    catalog = topics.view()
    yield catalog
    await catalog.stop()


async def send(bootstrap: str, topic: str, records: Records) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_ready_only_after_every_partition_is_caught_up(
    topics: Topics, view: CatalogView
) -> None:
    # Given 5,000 units already on the topic
    await send(topics.bootstrap, topics.units, [record(care_unit(n)) for n in range(5_000)])

    # When the view starts
    await view.start()
    ready_at_once = view.ready
    await view.wait_ready(READY_TIMEOUT)

    # Then it was not ready before reading them, and every unit is there once it is
    assert not ready_at_once
    stats = view.stats()
    assert (stats.units, stats.caught_up, stats.lag, stats.skipped) == (5_000, True, 0, 0)
    assert all(view.unit(hsa(n)) is not None for n in range(5_000))
    assert stats.approx_memory_bytes > 5_000 * 200


async def test_empty_topics_are_ready_at_once(view: CatalogView) -> None:
    await view.start()

    assert view.ready
    await view.wait_ready(0.1)
    assert view.stats().units == 0


async def test_follows_updates_new_units_and_tombstones(topics: Topics, view: CatalogView) -> None:
    await send(topics.bootstrap, topics.units, [record(care_unit(n)) for n in range(10)])
    await view.start()
    await view.wait_ready(READY_TIMEOUT)

    await send(
        topics.bootstrap,
        topics.units,
        [record(care_unit(0, name="Nytt namn")), (hsa(1).encode(), None), record(care_unit(10))],
    )

    await wait_for(lambda: view.unit(hsa(10)) is not None, 30, "the new unit")
    await wait_for(lambda: view.unit(hsa(1)) is None, 30, "the tombstone")
    renamed = view.unit(hsa(0))
    assert renamed is not None
    assert renamed.name == "Nytt namn"
    assert view.stats().units == 10


async def test_kombika_by_date_when_a_kombika_was_superseded(
    topics: Topics, view: CatalogView
) -> None:
    # Given unit 1 had K1 until 2023, then K2; K1 went to unit 2 from 2023
    first = (period(K1, date(2019, 1, 1), date(2023, 1, 1)), period(K2, date(2023, 1, 1)))
    await send(
        topics.bootstrap,
        topics.units,
        [
            record(care_unit(1, kombika=first)),
            record(care_unit(2, kombika=(period(K1, date(2023, 1, 1)),))),
        ],
    )
    await view.start()
    await view.wait_ready(READY_TIMEOUT)

    def owner(kombika: str, day: date) -> str | None:
        unit = view.unit_by_kombika(kombika, day)
        return unit.hsa_id if unit else None

    assert owner(K1, date(2022, 12, 31)) == hsa(1)
    assert owner("11010 046 M30", date(2023, 1, 1)) == hsa(2)
    assert owner(K2, date(2022, 12, 31)) is None
    assert owner(K2, date(2024, 5, 1)) == hsa(1)
    # When unit 1's history loses K1, no stale entry is left behind
    await send(topics.bootstrap, topics.units, [record(care_unit(1, kombika=first[1:]))])
    await wait_for(lambda: owner(K1, date(2022, 12, 31)) is None, 30, "K1 history removed")
    assert view.stats().kombika_entries == 2


async def test_active_units_and_their_care_givers(topics: Topics, view: CatalogView) -> None:
    private = {"care_giver_hsa_id": f"{PRIVATE}-1", "care_giver_org_number": PRIVATE_ORG}
    await send(
        topics.bootstrap,
        topics.units,
        [
            record(care_unit(1, end_date=date(2024, 1, 1))),
            record(care_unit(2, care_giver_name="Vårdbolaget AB", **private)),
        ],
    )
    await view.start()
    await view.wait_ready(READY_TIMEOUT)

    assert view.is_active(hsa(1), date(2023, 12, 31))
    assert not view.is_active(hsa(1), date(2024, 1, 1))
    assert view.is_active(hsa(2), date(2024, 1, 1))
    assert not view.is_active(hsa(3), date(2024, 1, 1))
    giver = view.care_giver_of(hsa(2))
    assert giver is not None
    assert (giver.hsa_id, giver.name, giver.org_number) == (
        f"{PRIVATE}-1",
        "Vårdbolaget AB",
        PRIVATE_ORG,
    )
    assert view.care_giver_of(hsa(3)) is None


async def test_vaccines_and_current_batches(topics: Topics, view: CatalogView) -> None:
    await send(
        topics.bootstrap,
        topics.vaccines,
        [
            record(vaccine("20210107000015", ("EX1", date(2025, 6, 30)), ("OPEN", None))),
            record(vaccine("20210107000016", ("EX2", None))),
        ],
    )
    await view.start()
    await view.wait_ready(READY_TIMEOUT)

    assert view.is_current_batch("20210107000015", "EX1", date(2025, 6, 30))
    assert not view.is_current_batch("20210107000015", "EX1", date(2025, 7, 1))
    assert view.is_current_batch("20210107000015", "OPEN", date(2040, 1, 1))
    assert not view.is_current_batch("20210107000015", "EX2", date(2025, 1, 1))
    product = view.vaccine("20210107000016")
    assert product is not None
    assert product.name == "Vaccin 20210107000016"
    await send(topics.bootstrap, topics.vaccines, [(b"20210107000016", None)])
    await wait_for(lambda: view.vaccine("20210107000016") is None, 30, "vaccine tombstone")
    assert view.stats().vaccines == 1


async def test_bad_values_are_skipped_counted_and_logged_once_per_key(
    topics: Topics, view: CatalogView
) -> None:
    bad_key = hsa(99).encode()
    await send(
        topics.bootstrap,
        topics.units,
        [
            record(care_unit(1)),
            (bad_key, b"{not json"),
            (bad_key, b'{"hsa_id": "nope"}'),
            (hsa(98).encode(), record(care_unit(2))[1]),  # key and value disagree
            record(care_unit(2)),
        ],
    )
    await send(topics.bootstrap, topics.vaccines, [(b"123", b"[]")])

    with capture_logs() as logs:
        await view.start()
        await view.wait_ready(READY_TIMEOUT)

    stats = view.stats()
    assert stats.skipped == 4
    assert stats.skipped_by_reason == {
        "unit_invalid_json": 1,
        "unit_invalid": 1,
        "unit_key_mismatch": 1,
        "vaccine_invalid": 1,
    }
    skipped = [e for e in logs if e["event"] == "catalog_record_skipped"]
    assert sorted(e["key"] for e in skipped) == sorted([hsa(99), hsa(98), "123"])
    assert "nope" not in str(skipped)  # what failed, never the value itself
    assert view.unit(hsa(1)) is not None
    assert view.unit(hsa(99)) is None
    # a later valid value for the bad key is taken
    await send(topics.bootstrap, topics.units, [record(care_unit(99))])
    await wait_for(lambda: view.unit(hsa(99)) is not None, 30, "the repaired unit")


async def test_updating_each_unit_many_times_keeps_the_count_and_memory(
    topics: Topics, view: CatalogView
) -> None:
    units, rounds = 500, 5

    def version(round_: int) -> list[tuple[bytes, bytes]]:
        return [
            record(
                care_unit(
                    n,
                    name=f"v{round_}",
                    kombika=(period(f"{n:05d}046{'AB'[round_ % 2]}", date(2020, 1, round_ + 1)),),
                )
            )
            for n in range(units)
        ]

    await send(topics.bootstrap, topics.units, version(0))
    await view.start()
    await view.wait_ready(READY_TIMEOUT)
    loaded = view.stats()

    for round_ in range(1, rounds + 1):
        await send(topics.bootstrap, topics.units, version(round_))
    last = f"v{rounds}"
    await wait_for(
        lambda: all((u := view.unit(hsa(n))) is not None and u.name == last for n in range(units)),
        60,
        "the last round",
    )

    stats = view.stats()
    assert (stats.units, stats.kombika_entries, stats.care_givers) == (units, units, 1)
    assert stats.approx_memory_bytes <= loaded.approx_memory_bytes * 1.1
    await wait_for(lambda: view.stats().lag == 0, 30, "no lag")


async def test_a_missing_topic_stops_the_start(kafka_bootstrap: str, unique_name: str) -> None:
    view = Topics(kafka_bootstrap, f"test.none.{unique_name}", f"test.none2.{unique_name}").view()

    with pytest.raises(CatalogTopicMissingError, match=unique_name):
        await view.start()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert not [t for t in await admin.list_topics() if unique_name in t]  # none created
    finally:
        await admin.close()
