"""The CVR register on one machine: its SFTP sandbox for `make run`, and waiting-list entries for
the demo."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.contracts.examples import demo_event
from shared.identifiers import synthetic_personnummer
from shared.schedule import Period
from shared.spec import DemoContext, DemoEvent, DevContext, Sandbox

PORT = 8222
STOCKHOLM = ZoneInfo("Europe/Stockholm")
STOCKHOLM_COUNTY = "01"
CODES = ("F101", "F102", "B220", "T340", "U110")
KINDS = ("first_visit", "first_visit", "examination", "treatment", "operation")
REASONS = ("treated_elsewhere", "declined", "no_longer_needed")


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The CVR sandbox: an SFTP server with its host key and the worker's client key in the
    stack's state folder."""
    from services.sandboxes.cvr import CvrSandbox

    keys = dev.state_dir / "cvr-keys"
    with CvrSandbox(certs_dir=keys, root=dev.state_dir / "cvr-root", port=dev.port(PORT)) as cvr:
        host, _, port = cvr.address.rpartition(":")
        yield Sandbox(
            f"CVR sandbox at sftp://{cvr.address} (user {cvr.username}; its host key and the "
            f"worker's client key in {keys})",
            {
                "REGBRIDGE_CVR_SFTP_HOST": host,
                "REGBRIDGE_CVR_SFTP_PORT": port,
                "REGBRIDGE_CVR_SFTP_USERNAME": cvr.username,
                "REGBRIDGE_CVR_SFTP_KEY_FILE": str(cvr.keys.client_key),
                "REGBRIDGE_CVR_SFTP_KNOWN_HOSTS": str(cvr.keys.known_hosts),
            },
        )


def try_next(_dev: DevContext, env: Mapping[str, str]) -> list[str]:
    """Report this period's waiting list now: the worker's settings exported first."""
    names = (
        "REGBRIDGE_CVR_DATABASE_URL",
        "REGBRIDGE_CVR_SFTP_HOST",
        "REGBRIDGE_CVR_SFTP_PORT",
        "REGBRIDGE_CVR_SFTP_KEY_FILE",
        "REGBRIDGE_CVR_SFTP_KNOWN_HOSTS",
    )
    values = {name: env.get(name) or os.environ.get(name) for name in names}
    daily = (env.get("REGBRIDGE_CVR_PERIODS") or os.environ.get("REGBRIDGE_CVR_PERIODS")) == "daily"
    period = Period.of(datetime.now(STOCKHOLM).date(), "daily" if daily else "monthly")
    return [
        "export " + " ".join(f"{name}={value}" for name, value in values.items() if value),
        f"regbridge cvr deliver-now --period {period}    # this period's waiting-list report",
        f"regbridge cvr files --period {period}          # each report, CVR's receipt",
    ]


def demo(context: DemoContext) -> Iterator[DemoEvent]:
    return waits(context.seed, context.units())


def stockholm_units(units: Iterable[Mapping[str, Any]], limit: int) -> list[str]:
    found = []
    for unit in units:
        if unit.get("countyCode") == STOCKHOLM_COUNTY and not unit.get("hsaEndDate"):
            found.append(str(unit["hsaIdentity"]))
            if len(found) >= limit:
                break
    return found


def waits(seed: int, units: Iterable[Mapping[str, Any]]) -> Iterator[DemoEvent]:
    """(label, event) forever: waiting-list entries at Region Stockholm's units — referred,
    some with a patient-chosen wait, some completed or removed a little later."""
    rng = random.Random(f"cvr-demo:{seed}")  # noqa: S311 - demo data, not secrets
    stockholm = stockholm_units(units, 30)
    if not stockholm:
        return
    today = datetime.now(UTC).astimezone(STOCKHOLM).date()
    n = 0
    while True:
        n += 1
        record_id = f"demo-cvr-{seed}-{n:07d}"
        referral = today - timedelta(days=rng.randrange(5, 150))
        kind = rng.choice(KINDS)
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 30000))
        payload: dict[str, Any] = {
            "patient": {"id_type": "PNR", "id": synthetic_personnummer(rng, born)},
            "unit_hsa_id": rng.choice(stockholm),
            "cvr_code": rng.choice(CODES),
            "wait_kind": kind,
            "priority": str(rng.randrange(1, 5)),
            "guarantee_applies": rng.random() < 0.9,
            "referral_received": referral.isoformat(),
        }
        if kind in ("treatment", "operation"):
            payload["decided_on"] = (referral + timedelta(days=rng.randrange(1, 4))).isoformat()
        yield "waiting", demo_event("care.wait", record_id, 1, "create", payload)
        roll = rng.random()
        if roll < 0.2:
            start = referral + timedelta(days=rng.randrange(4, 10))
            chosen = {"kind": "patient_chosen", "start": start.isoformat(),
                      "end": (start + timedelta(days=14)).isoformat()}  # fmt: skip
            yield (
                "patient-chosen wait",
                demo_event(
                    "care.wait", record_id, 2, "correct", payload | {"exceptions": [chosen]}
                ),
            )
        elif roll < 0.45:
            done = {"completed_on": min(today, referral + timedelta(days=rng.randrange(10, 90)))}
            yield (
                "completed",
                demo_event(
                    "care.wait",
                    record_id,
                    2,
                    "correct",
                    payload | {k: v.isoformat() for k, v in done.items()},
                ),
            )
        elif roll < 0.55:
            removed = {"removed_on": today.isoformat(), "removed_reason": rng.choice(REASONS)}
            yield "removed", demo_event("care.wait", record_id, 2, "correct", payload | removed)
