"""The GVR worker on one machine: its sandbox for `make run`, and care contacts for the demo."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts.examples import demo_event
from shared.identifiers import synthetic_personnummer
from shared.spec import DemoContext, DemoEvent, DevContext, Sandbox

PROFESSIONS = ("LK", "SJ", "AS", "FT", "KU", "PS")
DIAGNOSES = ("J069", "I050", "B341A", "J189", "Z000")
PROCEDURES = ("AQ014", "NHP09", "TNF00")
PORT = 8443


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The GVR sandbox over mutual TLS; its test CA and the worker's client certificate are kept
    in the stack's state folder."""
    from services.sandboxes.gvr import GvrSandbox

    certs = dev.state_dir / "gvr-certs"
    with GvrSandbox(dev.units, seed=dev.seed, certs_dir=certs, port=dev.port(PORT)) as gvr:
        yield Sandbox(
            f"GVR sandbox at {gvr.base_url} (mutual TLS; its test CA and the worker's client "
            f"certificate in {certs})",
            {
                "REGBRIDGE_GVR_BASE_URL": gvr.base_url,
                "REGBRIDGE_GVR_CLIENT_CERT": str(gvr.certs.client_cert),
                "REGBRIDGE_GVR_CLIENT_KEY": str(gvr.certs.client_key),
                "REGBRIDGE_GVR_CA_BUNDLE": str(gvr.certs.ca_cert),
            },
        )


def demo(context: DemoContext) -> Iterator[DemoEvent]:
    return care_contacts(context.seed, context.units())


def stockholm_kombikas(
    units: Iterable[Mapping[str, Any]], limit: int
) -> tuple[list[str], list[str]]:
    """Kombikas of open and of closed units in the directory (same seed = same units)."""
    open_: list[str] = []
    closed: list[str] = []
    for unit in units:
        codes = [k["code"] for k in unit.get("kombika") or []]
        if not codes:
            continue
        (closed if unit.get("hsaEndDate") else open_).append(codes[-1])
        if len(open_) >= limit and closed:
            break
    return open_, closed


def _contact(
    record_id: str, version: int, operation: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return demo_event("care.contact", record_id, version, operation, payload)


def care_contacts(seed: int, units: Iterable[Mapping[str, Any]]) -> Iterator[DemoEvent]:
    """(label, event) forever: mostly good visits, some corrected or cancelled, a few bad ones."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    open_units, closed_units = stockholm_kombikas(units, 200)
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
            "patient": {"id_type": "PNR", "id": synthetic_personnummer(rng, born)},
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
            yield "invalid personnummer", _contact(record_id, 1, "create", bad)
            continue
        if roll < 0.05 and closed_units:
            yield (
                "closed unit",
                _contact(record_id, 1, "create", dict(payload, kombika=rng.choice(closed_units))),
            )
            continue
        if roll < 0.07:
            yield "expired tariff", _contact(record_id, 1, "create", dict(payload, tariff="T2018"))
            continue
        if roll < 0.08:
            yield "not JSON", b"{this is not json"
            continue
        yield "visit", _contact(record_id, 1, "create", payload)
        if roll > 0.85:
            fixed = dict(payload, diagnoses=[rng.choice(DIAGNOSES), "Z000"])
            yield "correction", _contact(record_id, 2, "correct", fixed)
        if roll > 0.95:
            yield "cancellation", _contact(record_id, 3, "cancel", payload)
