"""The sandbox's HSA directory: generated units under an overlay of edits, removals and bad rows."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from services.sandboxes.hsa.generator import (
    BLOCK_SIZE,
    MAX_UNITS,
    Unit,
    UnitGenerator,
    hsa_timestamp,
)
from shared.identifiers import validate_hsa_id

SWEDEN = ZoneInfo("Europe/Stockholm")
InvalidKind = Literal["bad_kombika", "bad_org", "not_json"]
INVALID_KINDS: tuple[str, ...] = get_args(InvalidKind)
BAD_KOMBIKA = "302163110022A"  # 4-character avdelning: GVR's own example of a broken kombika
_MOVE_SUFFIXES = (" Nord", " Syd", " Öst", " Väst", " City")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Upserted:
    """What `upsert` did: the unit as stored now, whether it is new, which attributes changed."""

    unit: Unit
    created: bool
    changed_attributes: tuple[str, ...]


class DirectorySnapshot:
    """The directory as of one moment, for an export: later edits do not show in it."""

    def __init__(
        self,
        generator: UnitGenerator,
        generated: int,
        overlay: dict[str, Unit],
        removed: frozenset[str],
        added: tuple[str, ...],
        invalid: dict[str, str],
    ) -> None:
        self._generator = generator
        self._generated = generated
        self._overlay = overlay
        self._removed = removed
        self._added = added
        self._invalid = invalid
        self.count = generated - len(removed) + len(added)

    def units(self) -> Iterator[Unit]:
        """Every unit in a stable order: generated ones by number, then added ones. Not copies."""
        for block in range((self._generated + BLOCK_SIZE - 1) // BLOCK_SIZE):
            first = block * BLOCK_SIZE
            for unit in self._generator.block(block)[: self._generated - first]:
                hsa_id = unit["hsaIdentity"]
                if hsa_id not in self._removed:
                    yield self._overlay.get(hsa_id, unit)
        for hsa_id in self._added:
            yield self._overlay[hsa_id]

    def export_lines(self) -> Iterator[bytes]:
        """One NDJSON line per unit (with its newline), spoilt where `inject_invalid` asked."""
        for unit in self.units():
            kind = self._invalid.get(unit["hsaIdentity"])
            yield (_json_line(unit) if kind is None else _invalid_line(unit, kind)) + b"\n"


class HsaDirectory:
    """A generated HSA directory of `units` units, deterministic by `seed`; thread-safe.

    Nothing is generated up front: unit i is computed from (seed, i) when it is read, so 300,000
    units cost no start-up time and little memory. Edits live in an overlay dict, removals in a
    set, and units added by `upsert` follow the generated ones in insertion order.
    """

    def __init__(
        self, units: int, seed: int = 0, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if not 0 <= units <= MAX_UNITS:
            raise ValueError(f"units must be 0 … {MAX_UNITS}, got {units}")
        self.seed = seed
        self._generated = units
        self.clock = clock
        self._generator = UnitGenerator(seed)
        self._lock = threading.RLock()
        self._overlay: dict[str, Unit] = {}
        self._removed: set[str] = set()
        self._added: dict[str, None] = {}  # an ordered set of units that were never generated
        self._invalid: dict[str, str] = {}

    @property
    def count(self) -> int:
        with self._lock:
            return self._generated - len(self._removed) + len(self._added)

    def hsa_id_of(self, index: int) -> str:
        """HSA-id of generated unit number `index` (0 … units-1), removed or not."""
        if not 0 <= index < self._generated:
            raise IndexError(f"unit number {index} outside 0 … {self._generated - 1}")
        return self._generator.hsa_id(index)

    def now_local(self) -> str:
        """Now as HSA writes it: ``YYYYMMDDhhmmss``, Swedish local time, no zone."""
        return hsa_timestamp(self.clock().astimezone(SWEDEN))

    def get(self, hsa_id: str) -> Unit | None:
        """A copy of the unit, or None when the directory does not hold it."""
        with self._lock:
            unit = self._current(hsa_id)
            return None if unit is None else _copy(unit)

    def iter_units(self) -> Iterator[Unit]:
        """Copies of every unit, in a stable order (as of the call)."""
        for unit in self.snapshot().units():
            yield _copy(unit)

    def snapshot(self) -> DirectorySnapshot:
        with self._lock:
            return DirectorySnapshot(
                self._generator,
                self._generated,
                dict(self._overlay),
                frozenset(self._removed),
                tuple(self._added),
                dict(self._invalid),
            )

    def upsert(self, unit: dict[str, Any]) -> Upserted:
        """Create the unit, or update the attributes given; always bumps modifyTimestamp.

        Raises `InvalidIdentifierError` (a ValueError) when ``hsaIdentity`` is not a valid HSA-id.
        """
        hsa_id = unit.get("hsaIdentity")
        if not isinstance(hsa_id, str):
            raise ValueError("hsaIdentity: required, a string")
        validate_hsa_id(hsa_id)
        with self._lock:
            existing = self._current(hsa_id)
            if existing is None:
                stored = _copy(unit)
                changed = tuple(sorted(k for k in unit if k != "hsaIdentity"))
                if self._generated_index(hsa_id) is None:
                    self._added[hsa_id] = None
                self._removed.discard(hsa_id)
            else:
                stored = existing | _copy(unit)
                changed = tuple(
                    sorted(
                        k for k, v in unit.items() if k != "hsaIdentity" and existing.get(k) != v
                    )
                )
            stored["modifyTimestamp"] = self.now_local()
            self._overlay[hsa_id] = stored
            return Upserted(_copy(stored), existing is None, changed)

    def remove(self, hsa_id: str) -> bool:
        """Remove the unit; False when it was not there."""
        with self._lock:
            if self._current(hsa_id) is None:
                return False
            self._overlay.pop(hsa_id, None)
            self._invalid.pop(hsa_id, None)
            if hsa_id in self._added:
                del self._added[hsa_id]
            else:
                self._removed.add(hsa_id)
            return True

    def change_random(self, share: float, rng: random.Random) -> list[str]:
        """Rename or move `share` of the generated units (for benchmarks); their HSA-ids."""
        return [hsa_id for hsa_id, _ in self.change_random_detailed(share, rng)]

    def change_random_detailed(
        self, share: float, rng: random.Random
    ) -> list[tuple[str, tuple[str, ...]]]:
        """As `change_random`, with the attributes changed on each unit."""
        if not 0 <= share <= 1:
            raise ValueError(f"share must be 0 … 1, got {share}")
        changes: list[tuple[str, tuple[str, ...]]] = []
        with self._lock:
            now = self.now_local()
            for index in rng.sample(range(self._generated), round(share * self._generated)):
                hsa_id = self._generator.hsa_id(index)
                unit = self._current(hsa_id)
                if unit is None:
                    continue
                changed = _moved(unit, rng) if rng.random() < 0.5 else _renamed(unit, rng)
                self._overlay[hsa_id] = unit | changed | {"modifyTimestamp": now}
                changes.append((hsa_id, tuple(sorted(k for k in changed if k != "hsaIdentity"))))
        return changes

    def inject_invalid(self, hsa_id: str, kind: str) -> None:
        """Spoil this unit's export row: bad_kombika, bad_org or not_json (lookups stay valid)."""
        if kind not in INVALID_KINDS:
            raise ValueError(f"kind must be one of {', '.join(INVALID_KINDS)}, got {kind!r}")
        with self._lock:
            if self._current(hsa_id) is None:
                raise KeyError(hsa_id)
            self._invalid[hsa_id] = kind

    def reset(self) -> None:
        """Back to the generated directory: no edits, removals, additions or bad rows."""
        with self._lock:
            self._overlay.clear()
            self._removed.clear()
            self._added.clear()
            self._invalid.clear()

    def _generated_index(self, hsa_id: str) -> int | None:
        index = self._generator.index_of(hsa_id)
        if index is None or index >= self._generated:
            return None
        return index

    def _current(self, hsa_id: str) -> Unit | None:
        """The stored unit (not a copy); call with the lock held."""
        if hsa_id in self._overlay:
            return self._overlay[hsa_id]
        if hsa_id in self._removed:
            return None
        index = self._generated_index(hsa_id)
        return None if index is None else self._generator.unit(index)


def _moved(unit: Unit, rng: random.Random) -> Unit:
    """The unit at a new street number (the rest of its address kept): postalAddress changes."""
    street, _, rest = str(unit.get("postalAddress") or "").partition("$")
    name, _, _ = street.rpartition(" ")
    return {
        "hsaIdentity": unit["hsaIdentity"],
        "postalAddress": f"{name or street or 'Nygatan'} {rng.randrange(60, 200)}${rest}",
    }


def _renamed(unit: Unit, rng: random.Random) -> Unit:
    """The unit under a new name and public name (a district suffix)."""
    name = str(unit.get("name") or "")
    for suffix in _MOVE_SUFFIXES:
        name = name.removesuffix(suffix)
    name += rng.choice([s for s in _MOVE_SUFFIXES if not str(unit.get("name")).endswith(s)])
    return {"hsaIdentity": unit["hsaIdentity"], "name": name, "publicName": name}


def _copy(unit: Unit) -> Unit:
    """A copy deep enough for JSON-shaped units (lists of strings or of flat dicts, flat dicts)."""
    return {
        key: [dict(v) if isinstance(v, dict) else v for v in value]
        if isinstance(value, list)
        else dict(value)
        if isinstance(value, dict)
        else value
        for key, value in unit.items()
    }


def _json_line(unit: Unit) -> bytes:
    return json.dumps(unit, ensure_ascii=False, separators=(",", ":")).encode()


def _invalid_line(unit: Unit, kind: str) -> bytes:
    if kind == "not_json":
        return f'{{"hsaIdentity": "{unit["hsaIdentity"]}", name: <cut off'.encode()
    spoilt = _copy(unit)
    if kind == "bad_kombika":
        spoilt["kombika"] = [{"code": BAD_KOMBIKA, "validFrom": unit.get("hsaStartDate")}]
    else:  # bad_org: the check digit no longer matches
        org = str(unit.get("careGiverOrgNo") or "0000000000")
        spoilt["careGiverOrgNo"] = org[:-1] + str((int(org[-1]) + 1) % 10)
    return _json_line(spoilt)
