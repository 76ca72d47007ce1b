"""Compact read-only records the catalog view keeps per unit and vaccine (no pydantic objects)."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterable, KeysView
from datetime import date
from itertools import chain
from typing import Any

OPEN_END = date.max.toordinal() + 1
"""The ordinal of an end that never comes (no end date, no expiry)."""


def _day(ordinal: int) -> date | None:
    return None if ordinal in (0, OPEN_END) else date.fromordinal(ordinal)


class _Slotted:
    """Equality, hashing and repr from the slots, for records that are never changed."""

    __slots__ = ()

    def _fields(self) -> dict[str, Any]:
        names: tuple[str, ...] = getattr(type(self), "__slots__", ())
        return {n: getattr(self, n) for n in names if n != "__weakref__"}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Slotted)
            and type(other) is type(self)
            and (self._fields() == other._fields())
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{n.lstrip('_')}={v!r}" for n, v in self._fields().items())
        return f"{type(self).__name__}({fields})"


class CareGiver(_Slotted):
    """The care provider (vårdgivare) of a unit; one shared record per distinct provider."""

    __slots__ = ("__weakref__", "hsa_id", "name", "org_number")

    def __init__(self, hsa_id: str, name: str | None, org_number: str) -> None:
        self.hsa_id = hsa_id
        self.name = name
        self.org_number = org_number

    def approx_bytes(self) -> int:
        """The record, its strings, and the pool's key tuple and weak reference."""
        strings = (self.hsa_id, self.name, self.org_number)
        pooled = sys.getsizeof(strings) + sys.getsizeof(weakref.ref(self))
        return sys.getsizeof(self) + sum(sys.getsizeof(s) for s in strings if s) + pooled


class Regional(_Slotted):
    """What a regional directory (KIV) adds to a unit: the region's number for it, whether it is
    in the region's Vårdval and which one."""

    __slots__ = ("unit_code", "vardval", "vardval_area")

    def __init__(self, unit_code: str | None, vardval: bool, vardval_area: str | None) -> None:
        self.unit_code = unit_code
        self.vardval = vardval
        self.vardval_area = vardval_area


class UnitView(_Slotted):
    """A care unit as the workers read it: dates as ordinals, shared strings interned."""

    __slots__ = (
        "_end",
        "_kombika",
        "_start",
        "care_giver",
        "county_code",
        "destination_indicators",
        "hsa_id",
        "municipality_code",
        "name",
        "regional",
    )

    def __init__(
        self,
        *,
        hsa_id: str,
        name: str,
        care_giver: CareGiver,
        start: int,
        end: int,
        municipality_code: str | None,
        county_code: str | None,
        destination_indicators: tuple[str, ...],
        kombika: Iterable[tuple[str, int, int]],
        regional: Regional | None = None,
    ) -> None:
        self.hsa_id = hsa_id
        self.name = name
        self.care_giver = care_giver
        self._start = start  # ordinal; 0 when no start date is known
        self._end = end  # ordinal, exclusive; OPEN_END when the unit has no end date
        self.municipality_code = municipality_code
        self.county_code = county_code
        self.destination_indicators = destination_indicators
        # flat (kombika, valid_from ordinal, valid_to ordinal or OPEN_END, …): one small tuple
        self._kombika: tuple[Any, ...] = tuple(chain.from_iterable(kombika))
        self.regional = regional  # None: no regional directory lists the unit

    @property
    def start_date(self) -> date | None:
        return _day(self._start)

    @property
    def end_date(self) -> date | None:
        return _day(self._end)

    @property
    def kombika_entries(self) -> tuple[tuple[str, int, int], ...]:
        """Each kombika with its valid-from and valid-to ordinals (OPEN_END when open)."""
        flat = self._kombika
        return tuple(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))

    @property
    def kombika_storage(self) -> tuple[Any, ...]:
        return self._kombika

    def approx_bytes(self) -> int:
        """What this record alone holds; its care giver, codes and days are shared (pooled)."""
        own = sum(map(sys.getsizeof, (self, self.hsa_id, self.name, self._kombika)))
        return own + (sys.getsizeof(self.regional) if self.regional is not None else 0)

    @property
    def kombika_periods(self) -> tuple[tuple[str, date, date | None], ...]:
        """Each kombika with its valid-from (inclusive) and valid-to (exclusive, None = open)."""
        return tuple((k, date.fromordinal(f), _day(t)) for k, f, t in self.kombika_entries)

    def active_on(self, day: date) -> bool:
        """As `CareUnit.active_on`: started (if a start is known), end date exclusive."""
        return self._start <= day.toordinal() < self._end

    def kombika_on(self, day: date) -> str | None:
        """The unit's own kombika on `day` (the latest-starting covering period), if any."""
        ordinal = day.toordinal()
        covering = [(f, k) for k, f, t in self.kombika_entries if f <= ordinal < t]
        return max(covering)[1] if covering else None


class VaccineView(_Slotted):
    """A vaccine on the vaccination register's list, with its batch numbers and their expiry
    (inclusive)."""

    __slots__ = ("_batches", "atc_code", "covid19", "name", "npl_id")

    def __init__(
        self,
        *,
        npl_id: str,
        name: str,
        atc_code: str | None,
        covid19: bool,
        batches: dict[str, int],
    ) -> None:
        self.npl_id = npl_id
        self.name = name
        self.atc_code = atc_code
        self.covid19 = covid19
        self._batches = batches  # number → expiry ordinal (inclusive) or OPEN_END

    @property
    def batches(self) -> dict[str, date | None]:
        """Batch number → expiry date (None: no expiry given)."""
        return {number: _day(expiry) for number, expiry in self._batches.items()}

    @property
    def batch_numbers(self) -> KeysView[str]:
        """The batch numbers listed, expired or not (a view: nothing is copied)."""
        return self._batches.keys()

    def approx_bytes(self) -> int:
        own = (self, self.npl_id, self.name, self._batches, *self._batches)
        return sum(map(sys.getsizeof, own))

    def has_current_batch(self, number: str, day: date) -> bool:
        """As `Vaccine.has_current_batch`: the batch is listed and not expired on `day`."""
        expiry = self._batches.get(number)
        return expiry is not None and day.toordinal() <= expiry
