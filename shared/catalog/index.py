"""The catalog in memory: compact records of units and vaccines, indexed for O(1) look-ups. Pure."""

from __future__ import annotations

import sys
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from operator import itemgetter
from typing import Literal, TypeVar

from pydantic import ValidationError

from shared.catalog.models import (
    CARE_UNIT_SCHEMA,
    KOMBIKA_SCHEMA,
    VACCINE_SCHEMA,
    CareUnit,
    KombikaMapping,
    Vaccine,
)
from shared.catalog.records import OPEN_END, CareGiver, Regional, UnitView, VaccineView
from shared.identifiers import parse_kombika

_MEMORY_SAMPLE = 256
_KombikaEntry = tuple[int, int, str]  # (valid_from ordinal, valid_to ordinal or OPEN_END, hsa_id)
_from_ordinal = itemgetter(0)
_T = TypeVar("_T")
_Kind = Literal["unit", "vaccine", "kombika"]
_Model = CareUnit | Vaccine | KombikaMapping
_MODELS: dict[_Kind, tuple[type[_Model], int]] = {
    "unit": (CareUnit, CARE_UNIT_SCHEMA),
    "vaccine": (Vaccine, VACCINE_SCHEMA),
    "kombika": (KombikaMapping, KOMBIKA_SCHEMA),
}


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a catalog record was not taken; `first` is True the first time its key goes bad."""

    reason: str
    detail: str
    first: bool


@dataclass(frozen=True)
class CatalogStats:
    """What the readiness and metrics endpoints show about a catalog view."""

    units: int
    vaccines: int
    kombika_entries: int  # kombika periods of HSA's units
    care_givers: int
    skipped: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    caught_up: bool = False
    lag: int = 0
    approx_memory_bytes: int = 0
    code_server_kombikas: int = 0  # kombikas the code server's file assigns


class CatalogIndex:
    """Care units by HSA-id, units by kombika and day, vaccines by NPL-id; nothing else held.

    A record that is not valid replaces the key's previous value, as compaction will: the key then
    reads as absent, so a replica that started after compaction and one that saw the old value
    agree. Every such record is counted by reason; `Skip.first` says when to log it.
    """

    def __init__(self) -> None:
        self._units: dict[str, UnitView] = {}
        self._vaccines: dict[str, VaccineView] = {}
        # kombika → its periods sorted by valid-from; a tuple (48 bytes for one) not a list (88)
        self._by_kombika: dict[str, tuple[_KombikaEntry, ...]] = {}
        self._kombika_entries = 0
        # the code server's assignments, kombika → (valid_from, valid_to, hsa_id) sorted; where
        # it knows a kombika, it answers instead of HSA's kombika attribute
        self._code_server: dict[str, tuple[_KombikaEntry, ...]] = {}
        self._care_givers: weakref.WeakValueDictionary[tuple[str, str | None, str], CareGiver] = (
            weakref.WeakValueDictionary()
        )
        # Bounded pools of shared immutable values: distinct days, distinct indicator tuples.
        self._days: dict[int, int] = {}
        self._tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._skipped: Counter[str] = Counter()
        self._bad_keys: set[tuple[str, str]] = set()

    # ---- writes -------------------------------------------------------------------------------

    def apply_unit(self, key: bytes | None, value: bytes | None) -> Skip | None:
        """Apply one record of the care-unit topic (a null value removes the unit)."""
        return self._apply("unit", key, value)

    def apply_vaccine(self, key: bytes | None, value: bytes | None) -> Skip | None:
        """Apply one record of the vaccine topic (a null value removes the vaccine)."""
        return self._apply("vaccine", key, value)

    def apply_kombika(self, key: bytes | None, value: bytes | None) -> Skip | None:
        """Apply one record of the code server's kombika topic (a null value removes it)."""
        return self._apply("kombika", key, value)

    def _apply(self, kind: _Kind, key: bytes | None, value: bytes | None) -> Skip | None:
        ident, skip = self._key(kind, key)
        if skip is not None:
            return skip
        if value is None:
            self._remove(kind, ident)
            self._bad_keys.discard((kind, ident))
            return None
        model, schema = _MODELS[kind]
        try:
            parsed = model.model_validate_json(value)
        except ValidationError as error:
            return self._reject(kind, ident, _validation_reason(error), _summary(error))
        if _key_of(parsed) != ident:
            return self._reject(kind, ident, "key_mismatch", "the key is not the value's id")
        if parsed.schema_version != schema:
            return self._reject(kind, ident, "schema_version", str(parsed.schema_version))
        if isinstance(parsed, CareUnit):
            self.put_unit(parsed)
        elif isinstance(parsed, Vaccine):
            self.put_vaccine(parsed)
        else:
            self.put_kombika(parsed)
        self._bad_keys.discard((kind, ident))
        return None

    def put_unit(self, unit: CareUnit) -> None:
        """Store `unit` as a compact record, replacing (and unindexing) any previous one."""
        old = self._units.get(unit.hsa_id)
        # the same period listed twice is one entry
        periods = dict.fromkeys(
            (p.kombika, self._day(p.valid_from), self._end(p.valid_to)) for p in unit.kombika
        )
        giver_key = (
            sys.intern(unit.care_giver_hsa_id),
            sys.intern(unit.care_giver_name) if unit.care_giver_name is not None else None,
            sys.intern(unit.care_giver_org_number),
        )
        giver = self._care_givers.get(giver_key)
        if giver is None:
            giver = CareGiver(*giver_key)
            self._care_givers[giver_key] = giver
        record = UnitView(
            hsa_id=old.hsa_id if old is not None else unit.hsa_id,  # the dict's key object
            name=unit.name,
            care_giver=giver,
            start=self._day(unit.start_date) if unit.start_date is not None else 0,
            end=self._end(unit.end_date),
            municipality_code=_intern(unit.municipality_code),
            county_code=_intern(unit.county_code),
            destination_indicators=self._tuple(unit.destination_indicators),
            kombika=periods,
            regional=_regional(unit),
        )
        # Replace in place: popping and re-inserting would leave dummies that double the dict.
        self._units[record.hsa_id] = record
        if old is not None and old.kombika_storage == record.kombika_storage:
            return
        if old is not None:
            self._unindex(old)
        for code, valid_from, valid_to in record.kombika_entries:
            entry = (valid_from, valid_to, record.hsa_id)
            entries = self._by_kombika.get(code, ())
            at = bisect_right(entries, entry)
            # the first unit's string stays the key: one string object per kombika
            self._by_kombika[code] = (*entries[:at], entry, *entries[at:])
            self._kombika_entries += 1

    def remove_unit(self, hsa_id: str) -> bool:
        """Forget the unit and its kombika entries; False when it was not there."""
        record = self._units.pop(hsa_id, None)
        if record is not None:
            self._unindex(record)
        return record is not None

    def _unindex(self, record: UnitView) -> None:
        for code, valid_from, valid_to in record.kombika_entries:
            entry = (valid_from, valid_to, record.hsa_id)
            remaining = tuple(e for e in self._by_kombika[code] if e != entry)
            self._kombika_entries -= 1
            if remaining:
                self._by_kombika[code] = remaining
            else:
                del self._by_kombika[code]

    def put_vaccine(self, vaccine: Vaccine) -> None:
        batches: dict[str, int] = {}
        for batch in vaccine.batches:  # a number listed twice counts with its latest expiry
            expiry = self._end(batch.expires_on)
            batches[batch.number] = max(expiry, batches.get(batch.number, 0))
        self._vaccines[vaccine.npl_id] = VaccineView(
            npl_id=vaccine.npl_id,
            name=vaccine.name,
            atc_code=_intern(vaccine.atc_code),
            covid19=vaccine.covid19,
            batches=batches,
        )

    def put_kombika(self, mapping: KombikaMapping) -> None:
        """Store the code server's assignments of one kombika, replacing earlier ones."""
        code = sys.intern(str(parse_kombika(mapping.kombika)))
        self._code_server[code] = tuple(
            sorted(
                dict.fromkeys(
                    (self._day(a.valid_from), self._end(a.valid_to), sys.intern(a.hsa_id))
                    for a in mapping.assignments
                )
            )
        )

    # ---- queries ------------------------------------------------------------------------------

    def unit(self, hsa_id: str) -> UnitView | None:
        return self._units.get(hsa_id)

    def unit_by_kombika(self, kombika: str, day: date) -> UnitView | None:
        """The unit whose kombika period covers `day` (the latest-starting one if several do):
        the code server's assignments where it knows the kombika, else HSA's kombika attribute.

        `kombika` may be compact or spaced; a malformed one raises `InvalidIdentifierError`.
        """
        code = str(parse_kombika(kombika))
        entries = self._code_server.get(code) or self._by_kombika.get(code)
        if not entries:
            return None
        ordinal = day.toordinal()
        for index in range(bisect_right(entries, ordinal, key=_from_ordinal) - 1, -1, -1):
            if ordinal < entries[index][1]:
                return self._units.get(entries[index][2])
        return None

    def knows_kombika(self, kombika: str) -> bool:
        """Whether the code server or HSA has ever assigned `kombika` (on any day)."""
        code = str(parse_kombika(kombika))
        return bool(self._code_server.get(code) or self._by_kombika.get(code))

    def is_active(self, hsa_id: str, day: date) -> bool:
        record = self._units.get(hsa_id)
        return record is not None and record.active_on(day)

    def care_giver_of(self, hsa_id: str) -> CareGiver | None:
        record = self._units.get(hsa_id)
        return record.care_giver if record is not None else None

    def vaccine(self, npl_id: str) -> VaccineView | None:
        return self._vaccines.get(npl_id)

    def is_current_batch(self, npl_id: str, batch: str, day: date) -> bool:
        vaccine = self._vaccines.get(npl_id)
        return vaccine is not None and vaccine.has_current_batch(batch, day)

    def stats(self, *, caught_up: bool = True, lag: int = 0) -> CatalogStats:
        return CatalogStats(
            units=len(self._units),
            vaccines=len(self._vaccines),
            kombika_entries=self._kombika_entries,
            code_server_kombikas=len(self._code_server),
            care_givers=len(self._care_givers),
            skipped=self._skipped.total(),
            skipped_by_reason=dict(self._skipped),
            caught_up=caught_up,
            lag=lag,
            approx_memory_bytes=self.approx_memory_bytes(),
        )

    def approx_memory_bytes(self) -> int:
        """Bytes held, estimated: the containers' own `sys.getsizeof`, plus the mean deep size of
        the first `_MEMORY_SAMPLE` records of each kind times their count. Shared values (interned
        codes, care givers, pooled days and tuples) are counted once, in their pools. Allocator
        overhead is not seen, so the process's RSS grows somewhat more (see the module report)."""
        size = sys.getsizeof(self._units) + sys.getsizeof(self._by_kombika)
        size += _scaled(self._units.values(), len(self._units), UnitView.approx_bytes)
        size += _scaled(self._by_kombika.items(), len(self._by_kombika), _kombika_bytes)
        size += sys.getsizeof(self._code_server)
        size += _scaled(self._code_server.items(), len(self._code_server), _kombika_bytes)
        size += sys.getsizeof(self._vaccines)
        size += sum(vaccine.approx_bytes() for vaccine in self._vaccines.values())
        size += sys.getsizeof(getattr(self._care_givers, "data", {}))
        size += _scaled(self._care_givers.values(), len(self._care_givers), CareGiver.approx_bytes)
        size += sys.getsizeof(self._days) + sum(map(sys.getsizeof, self._days))
        size += sys.getsizeof(self._tuples) + sum(map(sys.getsizeof, self._tuples))
        return size

    # ---- helpers ------------------------------------------------------------------------------

    def _key(self, kind: _Kind, key: bytes | None) -> tuple[str, Skip | None]:
        if key is None:
            return "", self._count(kind, "", "missing_key", "record has no key")
        try:
            return key.decode(), None
        except UnicodeDecodeError:
            return "", self._count(kind, "", "bad_key", "key is not UTF-8")

    def count_failure(self, kind: _Kind) -> None:
        """Count a record whose handling raised (a defect, not a bad value)."""
        self._skipped[f"{kind}_failed"] += 1

    def _remove(self, kind: _Kind, ident: str) -> None:
        if kind == "unit":
            self.remove_unit(ident)
        elif kind == "vaccine":
            self._vaccines.pop(ident, None)
        else:
            self._code_server.pop(ident, None)

    def _reject(self, kind: _Kind, ident: str, reason: str, detail: str) -> Skip:
        self._remove(kind, ident)
        return self._count(kind, ident, reason, detail)

    def _count(self, kind: _Kind, ident: str, reason: str, detail: str) -> Skip:
        """Count the skip; it is `first` until the key is valid again (keyless ones: once)."""
        self._skipped[f"{kind}_{reason}"] += 1
        first = (kind, ident) not in self._bad_keys
        self._bad_keys.add((kind, ident))
        return Skip(reason=reason, detail=detail, first=first)

    def _day(self, day: date) -> int:
        ordinal = day.toordinal()
        return self._days.setdefault(ordinal, ordinal)

    def _end(self, day: date | None) -> int:
        return OPEN_END if day is None else self._day(day)

    def _tuple(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            return ()
        return self._tuples.setdefault(values, tuple(map(sys.intern, values)))


def _regional(unit: CareUnit) -> Regional | None:
    """The regional directory's attributes the workers read, when one lists the unit."""
    attributes = unit.regional
    if attributes is None:
        return None
    return Regional(
        _intern(attributes.unit_code), attributes.vardval, _intern(attributes.vardval_area)
    )


def _intern(value: str | None) -> str | None:
    return sys.intern(value) if value is not None else None


def _validation_reason(error: ValidationError) -> str:
    return "invalid_json" if any(e["type"] == "json_invalid" for e in error.errors()) else "invalid"


def _summary(error: ValidationError) -> str:
    """Where and what failed, never the input (a value could hold anything)."""
    parts = [
        f"{'.'.join(map(str, e['loc'])) or '<value>'}: {e['type']}"
        for e in error.errors(include_input=False, include_url=False)[:3]
    ]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _key_of(value: _Model) -> str:
    if isinstance(value, CareUnit):
        return value.hsa_id
    if isinstance(value, Vaccine):
        return value.npl_id
    return value.kombika


def _scaled(items: Iterable[_T], count: int, measure: Callable[[_T], int]) -> int:
    """`count` times the mean size of the first `_MEMORY_SAMPLE` items."""
    sample = list(islice(items, _MEMORY_SAMPLE))
    return count * sum(map(measure, sample)) // len(sample) if sample else 0


def _kombika_bytes(item: tuple[str, tuple[_KombikaEntry, ...]]) -> int:
    code, entries = item
    return sys.getsizeof(code) + sys.getsizeof(entries) + sum(map(sys.getsizeof, entries))
