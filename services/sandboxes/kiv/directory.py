"""KIV's directory: one record per Västra Götaland unit of the HSA sandbox, LDAP attribute names."""

# S311: a seeded PRNG makes made-up test data reproducible; nothing here is a secret.
# ruff: noqa: S311

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from services.sandboxes.hsa.directory import SWEDEN, HsaDirectory, utc_now
from services.sandboxes.hsa.generator import Unit, hsa_timestamp, ymd
from shared.identifiers import validate_hsa_id

KivRecord = dict[str, Any]
"""One KIV record as KIV's LDAP names its attributes (hsaIdentity, ou, vgr…), JSON-shaped."""

VASTRA_GOTALAND = "14"  # county code
HEALTH_CENTRE = "02"  # HSA businessType of a vårdcentral: the units in VG's vårdval
# vgrVardValOmrade of a Vårdval unit, by its HSA businessClassificationCode (illustrative):
# physiotherapy and rehab units are in Vårdval Rehab, dental care and specialist clinics in
# Vårdval areas of their own, every other health-centre unit in VG Primärvård.
VARDVAL_AREAS = {"1300": "rehab", "1301": "rehab", "1500": "tandvard", "1201": "specialist"}
VARDVAL_AREAS |= {"1250": "specialist"}
PRIMARY_CARE = "primarvard"
ENDED_SHARE = 0.05
# End dates are drawn from fixed spans, not from the clock, so a seed always gives the same data:
# the past ones lie before any test runs, the future ones far enough ahead to stay future.
_PAST_ENDS = (date(2015, 1, 1), date(2024, 12, 31))
_FUTURE_ENDS = (date(2031, 1, 1), date(2035, 12, 31))
_FIRST_MODIFY, _LAST_MODIFY = datetime(2018, 1, 1, 7), datetime(2025, 6, 30, 18)


def generate(hsa_units: int, seed: int) -> tuple[KivRecord, ...]:
    """KIV's records for the HSA sandbox's directory (`hsa_units`, `seed`): its county-14 units."""
    hsa = HsaDirectory(hsa_units, seed)
    units = (unit for unit in hsa.iter_units() if unit.get("countyCode") == VASTRA_GOTALAND)
    return tuple(_record(unit, seed, index) for index, unit in enumerate(units))


class KivDirectory:
    """KIV as generated from the HSA sandbox's directory (same `hsa_units`, same `seed`), editable.

    Records are built up front (a fifth or so of the HSA units); `upsert` and `remove` edit them,
    `reset` brings back the generated ones. Thread-safe: the server's loop and a test share it.
    """

    def __init__(
        self, hsa_units: int, seed: int = 0, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.seed = seed
        self.clock = clock
        self._generated = generate(hsa_units, seed)
        self._lock = threading.RLock()
        self._units: dict[str, KivRecord] = {}
        self.reset()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._units)

    def hsa_id_of(self, index: int) -> str:
        """HSA-id of generated KIV unit number `index` (0 … generated-1), removed or not."""
        if not 0 <= index < len(self._generated):
            raise IndexError(f"KIV unit number {index} outside 0 … {len(self._generated) - 1}")
        return str(self._generated[index]["hsaIdentity"])

    def now_local(self) -> str:
        """Now as KIV writes it: ``YYYYMMDDhhmmss``, Swedish local time, no zone."""
        return hsa_timestamp(self.clock().astimezone(SWEDEN))

    def get(self, hsa_id: str) -> KivRecord | None:
        """A copy of the record, or None when KIV does not hold it."""
        with self._lock:
            unit = self._units.get(hsa_id)
            return None if unit is None else dict(unit)

    def iter_units(self) -> Iterator[KivRecord]:
        """Copies of every record as of the call: generated ones in HSA's order, then added ones."""
        for unit in self.snapshot():
            yield dict(unit)

    def snapshot(self) -> list[KivRecord]:
        """The records as of now; not copies, but never changed in place (edits replace them)."""
        with self._lock:
            return list(self._units.values())

    def upsert(self, unit: dict[str, Any]) -> tuple[KivRecord, bool]:
        """Merge the attributes given into the record (a None value drops one), or create it;
        always bumps modifyTimestamp. The record as stored now, and whether it is new.

        Raises `InvalidIdentifierError` (a ValueError) when ``hsaIdentity`` is not a valid HSA-id.
        """
        hsa_id = unit.get("hsaIdentity")
        if not isinstance(hsa_id, str):
            raise ValueError("hsaIdentity: required, a string")
        validate_hsa_id(hsa_id)
        with self._lock:
            existing = self._units.get(hsa_id)
            merged = (existing or {}) | copy.deepcopy(unit)
            stored = {key: value for key, value in merged.items() if value is not None}
            stored["modifyTimestamp"] = self.now_local()
            self._units[hsa_id] = stored
            return dict(stored), existing is None

    def remove(self, hsa_id: str) -> bool:
        """Remove the record; False when it was not there."""
        with self._lock:
            return self._units.pop(hsa_id, None) is not None

    def reset(self) -> None:
        """Back to the generated records: no edits, removals or additions."""
        with self._lock:
            self._units = {str(unit["hsaIdentity"]): dict(unit) for unit in self._generated}


def _record(unit: Unit, seed: int, index: int) -> KivRecord:
    """KIV's record of HSA unit `unit`, the `index`-th Västra Götaland unit; pure."""
    rng = random.Random(f"kiv-sandbox:{seed}:{index}")
    span = int((_LAST_MODIFY - _FIRST_MODIFY).total_seconds())
    record: KivRecord = {
        "hsaIdentity": unit["hsaIdentity"],
        "ou": unit["name"],
        "vgrAnsvarsnummer": f"{rng.randrange(100_000):05d}",
        "vgrAO3kod": f"{rng.randrange(1000):03d}",
        "vgrCareType": f"{rng.randrange(1, 6):02d}",
        "vgrVardVal": HEALTH_CENTRE in (unit.get("businessType") or []),
    }
    if record["vgrVardVal"]:
        codes = unit.get("businessClassificationCode") or []
        areas = [VARDVAL_AREAS[code] for code in codes if code in VARDVAL_AREAS]
        record["vgrVardValOmrade"] = areas[0] if areas else PRIMARY_CARE
    if rng.random() < ENDED_SHARE:
        first, last = _PAST_ENDS if rng.random() < 0.5 else _FUTURE_ENDS
        record["hsaEndDate"] = ymd(first + timedelta(days=rng.randrange((last - first).days + 1)))
    modified = _FIRST_MODIFY + timedelta(seconds=rng.randrange(span))
    record["modifyTimestamp"] = hsa_timestamp(modified)
    return record
