"""The VGPV register on one machine: its sandbox for `make run`, and VGR visits for the demo."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.contracts.examples import demo_event
from shared.identifiers import luhn_check_digit, synthetic_personnummer
from shared.schedule import Period
from shared.spec import DemoContext, DemoEvent, DevContext, Sandbox

PORT = 8096
STOCKHOLM = ZoneInfo("Europe/Stockholm")
VASTRA_GOTALAND = "14"
HEALTH_CENTRE = "02"  # HSA businessType: the units KIV puts in a Vårdval
REHAB_CODES = frozenset({"1300", "1301"})  # physiotherapy, rehab: Vårdval Rehab in KIV
OTHER_VARDVAL = frozenset({"1500", "1201", "1250"})  # dental, specialist: not VGPV's
PRIMARY_CARE_PROFESSIONS = ("LK", "LK", "SJ", "SJ", "KU", "PS", "BM")
REHAB_PROFESSIONS = ("FT", "AT")
DIAGNOSES = ("J069", "I109", "E119", "M545", "F329", "Z000", "J209")
REHAB_DIAGNOSES = ("M545", "M179", "S832", "M751")
PROCEDURES = ("AV100", "XS100", "DV051", "QX013")
VISIT_TYPES = ("1", "1", "1", "3", "4")


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The VGPV sandbox over mutual TLS; its clock stands inside the window of the month the demo
    fills (last month's), so `make run` can deliver it whatever today's date."""
    from services.sandboxes.vgpv import VgpvSandbox

    certs = dev.state_dir / "vgpv-certs"
    with VgpvSandbox(dev.units, seed=dev.seed, certs_dir=certs, port=dev.port(PORT)) as vgpv:
        window = vgpv.state.window.window(demo_month(datetime.now(UTC)))
        if not window.is_open(datetime.now(UTC)):
            vgpv.set_clock(window.opens_at + timedelta(hours=1))
        yield Sandbox(
            f"VGPV sandbox at {vgpv.base_url} (mutual TLS; its clock in {window.period}'s "
            f"window; test CA and the worker's client certificate in {certs})",
            {
                "REGBRIDGE_VGPV_BASE_URL": vgpv.base_url,
                "REGBRIDGE_VGPV_CLIENT_CERT": str(vgpv.certs.client_cert),
                "REGBRIDGE_VGPV_CLIENT_KEY": str(vgpv.certs.client_key),
                "REGBRIDGE_VGPV_CA_BUNDLE": str(vgpv.certs.ca_cert),
            },
        )


def try_next(_dev: DevContext, env: Mapping[str, str]) -> list[str]:
    """Deliver last month now and look at its files: the worker's settings (its database, the
    sandbox's address and certificates) exported first, as the dev stack set them."""
    names = (
        "REGBRIDGE_VGPV_DATABASE_URL",
        "REGBRIDGE_VGPV_BASE_URL",
        "REGBRIDGE_VGPV_CLIENT_CERT",
        "REGBRIDGE_VGPV_CLIENT_KEY",
        "REGBRIDGE_VGPV_CA_BUNDLE",
    )
    values = {name: env.get(name) or os.environ.get(name) for name in names}
    month = demo_month(datetime.now(UTC))
    return [
        "export " + " ".join(f"{name}={value}" for name, value in values.items() if value),
        f"regbridge vgpv deliver-now --month {month}   # build and deliver last month's files",
        f"regbridge vgpv files --month {month}         # each file, VGPV's answer, rows refused",
        "regbridge vgpv show <file>                  # one file: receipt, refused rows (--content)",
    ]


def demo(context: DemoContext) -> Iterator[DemoEvent]:
    return visits(context.seed, context.units(), demo_month(datetime.now(UTC)))


def demo_month(now: datetime) -> Period:
    """The month the demo's visits fall in: last month, Swedish time."""
    return Period.of(now.astimezone(STOCKHOLM).date()).previous()


def vardval_units(units: Iterable[Mapping[str, Any]], limit: int) -> tuple[list[str], list[str]]:
    """HSA-ids of county-14 units in VG Primärvård and in Vårdval Rehab (as the KIV sandbox
    places them), at most `limit` of each."""
    primary: list[str] = []
    rehab: list[str] = []
    for unit in units:
        if unit.get("countyCode") != VASTRA_GOTALAND:
            continue
        if HEALTH_CENTRE not in (unit.get("businessType") or []) or unit.get("hsaEndDate"):
            continue
        codes = set(unit.get("businessClassificationCode") or [])
        if codes & OTHER_VARDVAL:
            continue
        chosen = rehab if codes & REHAB_CODES else primary
        if len(chosen) < limit:
            chosen.append(str(unit["hsaIdentity"]))
        if len(primary) >= limit and len(rehab) >= limit:
            break
    return primary, rehab


def reserve_number(rng: random.Random, born: date) -> str:
    """A Västra Götaland reserve number: yyyymmdd + K/M/X + 2 digits + check digit."""
    letter, value = rng.choice((("K", "5"), ("M", "7"), ("X", "8")))
    digits = f"{rng.randrange(100):02d}"
    check = luhn_check_digit(born.strftime("%y%m%d") + value + digits)
    return f"{born:%Y%m%d}{letter}{digits}{check}"


def _visit(record_id: str, version: int, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    return demo_event("care.contact", record_id, version, operation, payload)


def visits(seed: int, units: Iterable[Mapping[str, Any]], month: Period) -> Iterator[DemoEvent]:
    """(label, event) forever: VGR visits of `month`, some corrected or cancelled, a few that
    the worker or the register refuses."""
    rng = random.Random(f"vgpv-demo:{seed}")  # noqa: S311 - demo data, not secrets
    primary, rehab = vardval_units(units, 40)
    if not primary and not rehab:
        return
    first = datetime.combine(month.first_day, datetime.min.time(), STOCKHOLM)
    minutes = (month.last_day - month.first_day).days * 24 * 60 + 24 * 60
    n = 0
    while True:
        n += 1
        record_id = f"demo-vgpv-{seed}-{n:07d}"
        is_rehab = bool(rehab) and (not primary or rng.random() < 0.25)
        visited = first + timedelta(minutes=rng.randrange(7 * 60, minutes - 7 * 60, 15))
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 30000))
        reserve = rng.random() < 0.03
        patient = (
            {"id_type": "RESERVE_VGR", "id": reserve_number(rng, born)}
            if reserve
            else {"id_type": "PNR", "id": synthetic_personnummer(rng, born)}
        )
        payload: dict[str, Any] = {
            "kind": "outpatient_visit",
            "patient": patient,
            "unit_hsa_id": rng.choice(rehab if is_rehab else primary),
            "visited_at": visited.isoformat(),
            "visit_type": rng.choice(VISIT_TYPES),
            "professions": [
                rng.choice(REHAB_PROFESSIONS if is_rehab else PRIMARY_CARE_PROFESSIONS)
            ],
            "akut": "J" if rng.random() < 0.1 else "N",
            "diagnoses": [rng.choice(REHAB_DIAGNOSES if is_rehab else DIAGNOSES)],
            "procedures": [
                {"code": rng.choice(PROCEDURES), "performed_on": visited.date().isoformat()}
            ],
        }
        roll = rng.random()
        if roll < 0.02:
            yield "no profession", _visit(record_id, 1, "create", dict(payload, professions=[]))
            continue
        if roll < 0.04:
            bad = dict(payload, professions=["XX"])  # the register refuses the row
            yield "unknown profession", _visit(record_id, 1, "create", bad)
            continue
        if roll < 0.05:
            yield "not JSON", b"{this is not json"
            continue
        yield "visit", _visit(record_id, 1, "create", payload)
        if roll > 0.85:
            fixed = dict(payload, diagnoses=[*payload["diagnoses"], "Z000"])
            yield "correction", _visit(record_id, 2, "correct", fixed)
        if roll > 0.96:
            yield "cancellation", _visit(record_id, 3, "cancel", payload)
