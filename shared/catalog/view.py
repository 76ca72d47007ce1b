"""CatalogView: every replica reads the compacted catalog topics into memory and follows them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict
from datetime import date
from types import TracebackType
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.catalog.index import CatalogIndex, CatalogStats
from shared.catalog.records import CareGiver, UnitView, VaccineView
from shared.kafka import kafka_client_options
from shared.logging import get_logger
from shared.settings import KafkaSettings, TopicSettings

log = get_logger(__name__)

_POLL_MS = 500
_MAX_RECORDS = 1_000  # about 30 ms of validation between yields to the event loop
_METADATA_ATTEMPTS = 10
_RETRY_PAUSE_S = 0.5


class CatalogTopicMissingError(LookupError):
    """A catalog topic does not exist (or shows no partitions), so the view cannot start."""


class CatalogView:
    """Units, vaccines and the code server's kombikas from `catalog.care-units.v1`,
    `catalog.vaccines.v1` and `catalog.kombikas.v1`, in memory.

    One consumer without a group reads every partition of the topics from the beginning. The
    view is `ready` once each partition has reached the end offset seen at `start`; it then keeps
    following changes until `stop`. Queries are synchronous dictionary look-ups on the index.
    Partitions added to a topic after `start` are read only after a restart.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        units_topic: str,
        vaccines_topic: str,
        kombikas_topic: str | None = None,
        index: CatalogIndex | None = None,
    ) -> None:
        self._kafka = kafka
        self._kinds: dict[str, Literal["unit", "vaccine", "kombika"]] = {
            units_topic: "unit",
            vaccines_topic: "vaccine",
        }
        if kombikas_topic is not None:
            self._kinds[kombikas_topic] = "kombika"
        self.index = index if index is not None else CatalogIndex()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._end_at_start: dict[TopicPartition, int] = {}
        self._behind: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._started = False
        self._started_at = 0.0
        self._appliers = {
            "unit": self.index.apply_unit,
            "vaccine": self.index.apply_vaccine,
            "kombika": self.index.apply_kombika,
        }

    @classmethod
    def following(cls, kafka: KafkaSettings, topics: TopicSettings) -> CatalogView:
        """A view of the catalog topics named in the settings (what every worker reads)."""
        return cls(
            kafka,
            units_topic=topics.care_units,
            vaccines_topic=topics.vaccines,
            kombikas_topic=topics.kombikas,
        )

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Assign every partition of the topics, from the beginning, and start following."""
        if self._started:
            raise RuntimeError("a CatalogView starts once; make a new one to read again")
        self._started, self._started_at = True, time.monotonic()
        partitions = await self._partitions()
        consumer = AIOKafkaConsumer(
            **kafka_client_options(self._kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            begin = await consumer.beginning_offsets(partitions)
            self._end_at_start = await consumer.end_offsets(partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._positions = dict(begin)
        self._behind = {tp for tp in partitions if self._end_at_start[tp] > begin[tp]}
        self._mark_ready_if_caught_up()
        self._task = asyncio.create_task(self._follow(consumer), name="catalog-view")

    async def stop(self) -> None:
        """Stop following; the index keeps what it holds. Safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> CatalogView:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        """True once every partition has been read up to the end offset seen at start."""
        return self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once ready; raise `TimeoutError` after `timeout` seconds."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # ---- queries ------------------------------------------------------------------------------

    def unit(self, hsa_id: str) -> UnitView | None:
        return self.index.unit(hsa_id)

    def unit_by_kombika(self, kombika: str, day: date) -> UnitView | None:
        """The unit whose kombika period covers `day`; `kombika` compact or with spaces."""
        return self.index.unit_by_kombika(kombika, day)

    def knows_kombika(self, kombika: str) -> bool:
        """Whether `kombika` denotes a unit on some day (not necessarily an open one)."""
        return self.index.knows_kombika(kombika)

    def is_active(self, hsa_id: str, day: date) -> bool:
        return self.index.is_active(hsa_id, day)

    def care_giver_of(self, hsa_id: str) -> CareGiver | None:
        return self.index.care_giver_of(hsa_id)

    def vaccine(self, npl_id: str) -> VaccineView | None:
        return self.index.vaccine(npl_id)

    def is_current_batch(self, npl_id: str, batch: str, day: date) -> bool:
        return self.index.is_current_batch(npl_id, batch, day)

    def describe(self) -> dict[str, Any]:
        """For a worker's /status: readiness and the stats (counts, lag, memory)."""
        return {"ready": self.ready, **asdict(self.stats())}

    def stats(self) -> CatalogStats:
        """Counts, skips, lag in records (highwater or start-time end minus position), memory."""
        lag = 0
        for tp, position in self._positions.items():
            highwater = self._consumer.highwater(tp) if self._consumer is not None else None
            end = highwater if highwater is not None else self._end_at_start.get(tp, 0)
            lag += max(0, end - position)
        return self.index.stats(caught_up=self.ready, lag=lag)

    # ---- reading ------------------------------------------------------------------------------

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the topics, from the cluster's metadata (retried briefly).

        Only topics the cluster lists are described: describing a missing topic would create it
        on a broker with `auto.create.topics.enable`, uncompacted.
        """
        topics = list(self._kinds)
        found: dict[str, list[TopicPartition]] = {}
        admin = AIOKafkaAdminClient(**kafka_client_options(self._kafka))
        await admin.start()
        try:
            for _attempt in range(_METADATA_ATTEMPTS):
                existing = set(await admin.list_topics())
                wanted = [t for t in topics if t in existing]
                described = await admin.describe_topics(wanted) if wanted else []
                found = {
                    d["topic"]: _partitions_of(d)
                    for d in described
                    if d["error_code"] == 0 and d["partitions"]
                }
                if all(topic in found for topic in topics):
                    return sorted(tp for topic in topics for tp in found[topic])
                await asyncio.sleep(_RETRY_PAUSE_S)
        finally:
            await admin.close()
        missing = ", ".join(t for t in topics if t not in found)
        raise CatalogTopicMissingError(f"catalog topic(s) not found: {missing}")

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
                for tp, records in batch.items():
                    for record in records:
                        self._apply(tp, record)
                for tp in self._positions:
                    self._positions[tp] = await consumer.position(tp)
            except KafkaError as exc:
                log.warning("catalog_view_read_failed", error=repr(exc))
                await asyncio.sleep(_RETRY_PAUSE_S)
                continue
            except Exception:  # the view must go on following: a dead task would go stale quietly
                log.exception("catalog_view_read_failed")
                await asyncio.sleep(_RETRY_PAUSE_S)
                continue
            ends = self._end_at_start
            self._behind = {tp for tp in self._behind if self._positions[tp] < ends[tp]}
            self._mark_ready_if_caught_up()
            await asyncio.sleep(0)  # a prefetched batch returns at once: let other tasks run

    def _apply(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record; a bad value is counted and logged (once per key), never raised."""
        kind = self._kinds[tp.topic]
        try:
            skip = self._appliers[kind](record.key, record.value)
        except Exception:  # a defect must not stop every replica's catalog: count it, go on
            self.index.count_failure(kind)
            log.exception(
                "catalog_record_failed",
                topic=tp.topic,
                partition=tp.partition,
                offset=record.offset,
            )
            return
        if skip is not None and skip.first:
            log.warning(
                "catalog_record_skipped",
                topic=tp.topic,
                partition=tp.partition,
                offset=record.offset,
                key=(record.key or b"").decode("utf-8", "replace"),
                reason=skip.reason,
                detail=skip.detail,
            )

    def _mark_ready_if_caught_up(self) -> None:
        if self._behind or self._ready.is_set():
            return
        self._ready.set()
        stats = self.index.stats(caught_up=True)
        log.info(
            "catalog_view_ready",
            units=stats.units,
            vaccines=stats.vaccines,
            skipped=stats.skipped,
            seconds=round(time.monotonic() - self._started_at, 3),
        )


def _partitions_of(described: dict[str, Any]) -> list[TopicPartition]:
    return [TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]]
