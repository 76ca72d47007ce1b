"""The NVR worker on one machine: its sandbox for `make run`, and vaccinations for the demo."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from shared.contracts.examples import demo_event
from shared.identifiers import synthetic_personnummer
from shared.spec import DemoContext, DemoEvent, DevContext, Sandbox

PORT = 8092


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The NVR sandbox (OAuth2 with its well-known test client; its vaccine list is the one the
    catalog reads too)."""
    from services.sandboxes.nvr import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, NvrSandbox

    with NvrSandbox(dev.units, seed=dev.seed, port=dev.port(PORT)) as nvr:
        expires = date.today() + timedelta(days=365)
        yield Sandbox(
            f"NVR sandbox at {nvr.base_url} (OAuth2 client {DEFAULT_CLIENT_ID} / "
            f"{DEFAULT_CLIENT_SECRET}; its vaccine list feeds the catalog)",
            {
                "REGBRIDGE_NVR_BASE_URL": nvr.base_url,
                "REGBRIDGE_NVR_CLIENT_ID": DEFAULT_CLIENT_ID,
                "REGBRIDGE_NVR_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
                "REGBRIDGE_NVR_CLIENT_SECRET_EXPIRES_ON": expires.isoformat(),
                # the catalog reads NVR's vaccine list
                "REGBRIDGE_CATALOG_VACCINES_URL": nvr.base_url,
                "REGBRIDGE_CATALOG_NVR_CLIENT_ID": DEFAULT_CLIENT_ID,
                "REGBRIDGE_CATALOG_NVR_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            },
        )


def demo(context: DemoContext) -> Iterator[DemoEvent]:
    return vaccinations(context.seed, context.units())


# (NPL-id, batch, programme) from the NVR sandbox's default vaccine list
VACCINES = (
    ("20201214100018", "FN1234", "covid19"),
    ("20090917100028", "A21CE123A", "childhood"),
    ("20100401100013", "LR4567", "pneumococcal_risk"),
    ("19750101100019", "119039B", "tuberculosis_child"),
)


def vaccination_units(units: Iterable[Mapping[str, Any]], limit: int) -> list[tuple[str, str, str]]:
    """(unit HSA-id, care provider HSA-id, org number) of open units in the directory."""
    found = []
    for unit in units:
        if unit.get("hsaEndDate") or not (unit.get("careGiver") and unit.get("careGiverOrgNo")):
            continue
        found.append((unit["hsaIdentity"], unit["careGiver"], unit["careGiverOrgNo"]))
        if len(found) >= limit:
            break
    return found


def vaccinations(seed: int, units: Iterable[Mapping[str, Any]]) -> Iterator[DemoEvent]:
    """(label, event) forever: mostly good vaccinations, some changed or deleted, a few that
    NVR's rules refuse (caught before sending) or that break the contract."""
    rng = random.Random(seed + 7919)  # noqa: S311 - demo data, not secrets
    reporting = vaccination_units(units, 200)
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
        unit, care_giver, org_number = rng.choice(reporting)
        payload: dict[str, Any] = {
            "patient": {"id_type": "PNR", "id": synthetic_personnummer(rng, born)},
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
    return demo_event("vaccination", record_id, version, operation, payload)
