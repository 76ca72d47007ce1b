"""Realistic care contacts and vaccinations for the demo: corrections, cancellations, mistakes."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from services.sandboxes.hsa.directory import HsaDirectory
from shared.identifiers import luhn_check_digit
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings, TopicSettings

PROFESSIONS = ("LK", "SJ", "AS", "FT", "KU", "PS")
DIAGNOSES = ("J069", "I050", "B341A", "J189", "Z000")
PROCEDURES = ("AQ014", "NHP09", "TNF00")


def personnummer(rng: random.Random, born: date) -> str:
    """A valid 12-digit personnummer for `born` (random serial, Luhn check digit)."""
    serial = f"{rng.randrange(1, 999):03d}"
    ten = born.strftime("%y%m%d") + serial
    return born.strftime("%Y") + ten[2:] + str(luhn_check_digit(ten))


def stockholm_kombikas(directory: HsaDirectory, limit: int) -> tuple[list[str], list[str]]:
    """Kombikas of open and of closed units in the sandbox's directory (same seed = same units)."""
    open_: list[str] = []
    closed: list[str] = []
    for unit in directory.iter_units():
        codes = [k["code"] for k in unit.get("kombika") or []]
        if not codes:
            continue
        (closed if unit.get("hsaEndDate") else open_).append(codes[-1])
        if len(open_) >= limit and closed:
            break
    return open_, closed


def _envelope(
    record_id: str,
    version: int,
    operation: str,
    payload: dict[str, Any],
    event_type: str = "care.contact",
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source_system": "demo-journal",
        "record_id": record_id,
        "record_version": version,
        "operation": operation,
        "payload": payload,
    }


def care_contacts(
    seed: int, directory: HsaDirectory
) -> Iterator[tuple[str, dict[str, Any] | bytes]]:
    """(label, event) forever: mostly good visits, some corrected or cancelled, a few bad ones."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    open_units, closed_units = stockholm_kombikas(directory, 200)
    n = 0
    while True:
        n += 1
        record_id = f"demo-besok-{seed}-{n:07d}"
        visited = datetime(2026, 11, 2, 8, 0, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(0, 20000)
        )
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 30000))
        payload: dict[str, Any] = {
            "kind": "outpatient_visit",
            "patient": {"id_type": "PNR", "id": personnummer(rng, born)},
            "kombika": rng.choice(open_units),
            "visited_at": visited.isoformat(),
            "visit_type": "1",
            "professions": [rng.choice(PROFESSIONS)],
            "akut": rng.choice("JN"),
            "tariff": "A101",
            "contact_type": "1",
            "diagnoses": [rng.choice(DIAGNOSES)],
            "procedures": [
                {
                    "code": rng.choice(PROCEDURES),
                    "diagnosis_index": 0,
                    "performed_on": visited.date().isoformat(),
                }
            ],
        }
        roll = rng.random()
        if roll < 0.03:
            bad = dict(payload, patient={"id_type": "PNR", "id": "191212121213"})
            yield "invalid personnummer", _envelope(record_id, 1, "create", bad)
            continue
        if roll < 0.05 and closed_units:
            yield (
                "closed unit",
                _envelope(record_id, 1, "create", dict(payload, kombika=rng.choice(closed_units))),
            )
            continue
        if roll < 0.07:
            yield "expired tariff", _envelope(record_id, 1, "create", dict(payload, tariff="T2018"))
            continue
        if roll < 0.08:
            yield "not JSON", b"{this is not json"
            continue
        yield "visit", _envelope(record_id, 1, "create", payload)
        if roll > 0.85:
            fixed = dict(payload, diagnoses=[rng.choice(DIAGNOSES), "Z000"])
            yield "correction", _envelope(record_id, 2, "correct", fixed)
        if roll > 0.95:
            yield "cancellation", _envelope(record_id, 3, "cancel", payload)


# (NPL-id, batch, programme) from the NVR sandbox's default vaccine list
VACCINES = (
    ("20201214100018", "FN1234", "covid19"),
    ("20090917100028", "A21CE123A", "childhood"),
    ("20100401100013", "LR4567", "pneumococcal_risk"),
    ("19750101100019", "119039B", "tuberculosis_child"),
)


def vaccination_units(directory: HsaDirectory, limit: int) -> list[tuple[str, str, str]]:
    """(unit HSA-id, care provider HSA-id, org number) of open units in the directory."""
    found = []
    for unit in directory.iter_units():
        if unit.get("hsaEndDate") or not (unit.get("careGiver") and unit.get("careGiverOrgNo")):
            continue
        found.append((unit["hsaIdentity"], unit["careGiver"], unit["careGiverOrgNo"]))
        if len(found) >= limit:
            break
    return found


def vaccinations(seed: int, directory: HsaDirectory) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, event) forever: mostly good vaccinations, some changed or deleted, a few that
    NVR's rules refuse (caught before sending) or that break the contract."""
    rng = random.Random(seed + 7919)  # noqa: S311 - demo data, not secrets
    units = vaccination_units(directory, 200)
    n = 0
    while True:
        n += 1
        record_id = f"demo-vacc-{seed}-{n:07d}"
        npl_id, batch, programme = rng.choice(VACCINES)
        given = date(2026, 11, 2) + timedelta(days=rng.randrange(0, 14))
        if programme in ("childhood", "tuberculosis_child"):
            born = given - timedelta(days=rng.randrange(60, 2000))
        else:
            born = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 25000))
        unit, care_giver, org_number = rng.choice(units)
        payload: dict[str, Any] = {
            "patient": {"id_type": "PNR", "id": personnummer(rng, born)},
            "vaccinated_on": given.isoformat(),
            "vaccine_npl_id": npl_id,
            "batch_number": batch,
            "programme": programme,
            "performing_unit_hsa_id": unit,
            "care_provider": {"hsa_id": care_giver, "organisation_number": org_number},
        }
        if programme == "covid19":
            payload["dose_number"] = rng.choice((1, 2, 3, 4))
        roll = rng.random()
        if roll < 0.03:
            bad = dict(payload, batch_number="NOT-A-BATCH")
            yield "batch not of the vaccine", _vaccination(record_id, 1, "create", bad)
            continue
        if roll < 0.05:
            bad = dict(payload, vaccinated_on="2031-01-01")
            yield "date in the future", _vaccination(record_id, 1, "create", bad)
            continue
        if roll < 0.06:
            bad = dict(payload, vaccine_npl_id="19990101100099")
            yield "vaccine not on the list", _vaccination(record_id, 1, "create", bad)
            continue
        yield "vaccination", _vaccination(record_id, 1, "create", payload)
        if roll > 0.9:
            yield (
                "vaccination changed",
                _vaccination(
                    record_id,
                    2,
                    "correct",
                    dict(payload, vaccinated_on=(given - timedelta(days=1)).isoformat()),
                ),
            )
        if roll > 0.97:
            yield "vaccination deleted", _vaccination(record_id, 3, "cancel", payload)


def _vaccination(
    record_id: str, version: int, operation: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return _envelope(record_id, version, operation, payload, "vaccination")


async def publish_demo(
    kafka: KafkaSettings,
    topics: TopicSettings,
    *,
    count: int,
    rate: float,
    seed: int,
    units: int,
) -> dict[str, int]:
    """Publish `count` events at `rate` per second, keyed by record id; counts per label.
    Two care contacts to every vaccination, each on its own topic."""
    directory = HsaDirectory(units, seed=1)
    contacts, vaccines = care_contacts(seed, directory), vaccinations(seed, directory)
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all")
    await producer.start()
    counts: dict[str, int] = {}
    try:
        for published in range(count):
            topic = topics.vaccinations if published % 3 == 2 else topics.care_contacts
            label, event = next(vaccines if topic == topics.vaccinations else contacts)
            value = event if isinstance(event, bytes) else json.dumps(event).encode()
            key = b"garbage" if isinstance(event, bytes) else event["record_id"].encode()
            await producer.send_and_wait(topic, value, key=key)
            counts[label] = counts.get(label, 0) + 1
            if rate > 0:
                await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()
    return counts
