"""Generated HSA units: unit i is a pure function of (seed, i), built eight at a time (a block)."""

# S311: seeded PRNGs make made-up test data reproducible; nothing here is a secret.
# ruff: noqa: S311

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.sandboxes.hsa import ids
from services.sandboxes.hsa.vocabulary import (
    BRAND_WORDS,
    CLINICS,
    HOSPITALS,
    LOCAL_UNITS,
    LOCAL_WEIGHTS,
    MUNICIPALITIES,
    MUNICIPALITY_BY_CODE,
    REGION_WEIGHTS,
    REGIONS,
    STREET_ENDS,
    STREET_STEMS,
    SUB_UNITS,
    SURNAMES,
    Municipality,
    Region,
)
from shared.identifiers import luhn_check_digit

Unit = dict[str, Any]
"""One unit as GetHsaUnit names its attributes (camelCase), JSON-shaped."""

BLOCK_SIZE = 8  # units that share a site: a hospital clinic and its wards, or local units
MAX_UNITS = 1_000_000
_PRIVATE_PROVIDERS = 1500
_FIRST_START, _LAST_START = date(1995, 1, 1), date(2023, 12, 31)
_LAST_END = date(2024, 12, 31)  # every generated end date lies in the past
_FIRST_MODIFY, _LAST_MODIFY = datetime(2018, 1, 1, 7), datetime(2025, 6, 30, 18)
ENDED_SHARE = 0.025  # sub-units of an ended unit end with it: about 3 % in all
TWO_KOMBIKA_SHARE = 0.12


@dataclass(frozen=True)
class CareGiver:
    hsa_id: str
    name: str
    org_no: str


@dataclass(frozen=True)
class _Site:
    municipality: Municipality
    street: str
    postal_code: str
    lat: float
    lon: float


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def hsa_timestamp(moment: datetime) -> str:
    """HSA's ``YYYYMMDDhhmmss`` (Swedish local time, no zone); `moment` is already local."""
    return moment.strftime("%Y%m%d%H%M%S")


class UnitGenerator:
    """Deterministic units for one seed; no state but a cache of private care providers."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        offsets = random.Random(f"hsa-sandbox:{seed}:offsets")
        self._id_offset = offsets.randrange(ids.ID_SPACE)
        self._inr_offset = offsets.randrange(90_000)
        self._providers: dict[int, CareGiver] = {}

    # identities

    def region_of_block(self, block: int) -> Region:
        return self._block_rng(block).choices(REGIONS, REGION_WEIGHTS)[0]

    def hsa_id(self, index: int, region: Region | None = None) -> str:
        """HSA-id of unit `index`; `region` (of its block) saves drawing it again."""
        region = region or self.region_of_block(index // BLOCK_SIZE)
        return ids.encode(index, region, self._id_offset)

    def index_of(self, hsa_id: str) -> int | None:
        """The unit number whose HSA-id this is, or None (the caller checks it against count)."""
        decoded = ids.decode(hsa_id, self._id_offset)
        if decoded is None:
            return None
        index, region = decoded
        if index >= MAX_UNITS or self.region_of_block(index // BLOCK_SIZE) != region:
            return None
        return index

    def care_giver(self, private: int | None, region: Region) -> CareGiver:
        if private is None:
            return CareGiver(region.care_giver_hsa_id, region.name, region.org_no)
        if private not in self._providers:
            self._providers[private] = self._private_provider(private)
        return self._providers[private]

    # units

    def unit(self, index: int) -> Unit:
        return self.block(index // BLOCK_SIZE)[index % BLOCK_SIZE]

    def block(self, block: int) -> list[Unit]:
        """The eight units numbered 8·block … 8·block+7 (callers drop those ≥ count)."""
        rng = self._block_rng(block)
        region = rng.choices(REGIONS, REGION_WEIGHTS)[0]
        inr = f"{10_000 + (block * 7919 + self._inr_offset) % 90_000}"  # unique per block
        first = block * BLOCK_SIZE
        if rng.random() < 0.2:
            return self._hospital_block(rng, region, inr, first)
        return self._local_block(rng, region, inr, first)

    def _hospital_block(
        self, rng: random.Random, region: Region, inr: str, first: int
    ) -> list[Unit]:
        hospital = rng.choice(HOSPITALS[region.county_code])
        place = random.Random(hospital.name)  # a hospital sits in one place, whatever the seed
        municipality = MUNICIPALITY_BY_CODE[hospital.municipality]
        site = _Site(
            municipality,
            hospital.street,
            _postal_code(place, municipality),
            round(municipality.lat + place.uniform(-0.03, 0.03), 6),
            round(municipality.lon + place.uniform(-0.05, 0.05), 6),
        )
        clinic, outpatient, code = rng.choice(CLINICS)
        giver = self.care_giver(None, region)
        ward = rng.randrange(10, 80)
        top = self._unit(rng, first, region, giver, site, inr, 0, None)
        top |= _kinds(f"{clinic} {hospital.name}", code, "01", ["01", "02"], ["03"])
        units = [top]
        for position in range(1, BLOCK_SIZE):
            unit = self._unit(rng, first + position, region, giver, site, inr, position, top)
            if position == 1:
                unit |= _kinds(f"{outpatient} {hospital.name}", code, "01", ["01"], ["03"])
            else:
                name = f"Avdelning {ward + position} {hospital.name}"
                unit |= _kinds(name, code, "01", ["02"], [])
            units.append(unit)
        return units

    def _local_block(self, rng: random.Random, region: Region, inr: str, first: int) -> list[Unit]:
        municipality = rng.choice(MUNICIPALITIES[region.county_code])
        units: list[Unit] = []
        top: Unit | None = None
        site = giver = None
        locality = ""
        for position in range(BLOCK_SIZE):
            if top is None or site is None or giver is None or rng.random() < 0.65:
                kind = rng.choices(LOCAL_UNITS, LOCAL_WEIGHTS)[0][0]
                private = None if rng.random() < 0.55 else self._draw_provider(rng)
                giver = self.care_giver(private, region)
                locality = rng.choice(municipality.localities)
                site = _Site(
                    municipality,
                    f"{rng.choice(STREET_STEMS)}{rng.choice(STREET_ENDS)} {rng.randrange(1, 60)}",
                    _postal_code(rng, municipality),
                    round(municipality.lat + rng.uniform(-0.06, 0.06), 6),
                    round(municipality.lon + rng.uniform(-0.1, 0.1), 6),
                )
                parent = None
            else:
                kind = rng.choice(SUB_UNITS)
                parent = top
            unit = self._unit(rng, first + position, region, giver, site, inr, position, parent)
            unit |= _kinds(
                f"{kind.name} {locality}",
                kind.business_classification,
                kind.business_type,
                [kind.care_type],
                ["03"] if kind.public else [],
            )
            if kind.public and rng.random() < 0.1:
                unit["hsaDestinationIndicator"] = ["03", "04"]
            units.append(unit)
            top = unit if parent is None else top
        return units

    def _unit(
        self,
        rng: random.Random,
        index: int,
        region: Region,
        giver: CareGiver,
        site: _Site,
        inr: str,
        position: int,
        parent: Unit | None,
    ) -> Unit:
        start = _FIRST_START + timedelta(days=rng.randrange((_LAST_START - _FIRST_START).days))
        if parent is not None:  # a sub-unit starts with or after its parent
            start = max(start, date.fromisoformat(parent["hsaStartDate"]))
        parent_end = parent["hsaEndDate"] if parent else None
        end: date | None = None
        if parent_end is not None:
            end = date.fromisoformat(parent_end)
            start = min(start, end - timedelta(days=30))
        elif rng.random() < ENDED_SHARE:
            end = start + timedelta(days=rng.randrange(30, (_LAST_END - start).days + 1))
        if end is not None:
            modified = datetime.combine(end, datetime.min.time()) + timedelta(
                seconds=rng.randrange(8 * 3600, 17 * 3600)
            )
        else:
            earliest = max(_FIRST_MODIFY, datetime.combine(start, datetime.min.time()))
            span = int((_LAST_MODIFY - earliest).total_seconds())
            modified = earliest + timedelta(seconds=rng.randrange(span))
        kombika: list[dict[str, str]] = []
        if region.county_code == "01":  # kombika is Region Stockholm's (GVR) unit code
            klin = f"{position}{rng.randrange(100):02d}"
            avd = f"{rng.choice('ABCDEFGHKLMNPRSTUVXY')}{rng.randrange(100):02d}"
            if rng.random() < TWO_KOMBIKA_SHARE:
                replaced = start + timedelta(days=rng.randrange(1, (_LAST_END - start).days))
                kombika.append(
                    {"code": f"{inr}{klin}{rng.randrange(1, 10)}", "validFrom": ymd(start)}
                )
                kombika.append({"code": f"{inr}{klin}{avd}", "validFrom": ymd(replaced)})
            else:
                kombika.append({"code": f"{inr}{klin}{avd}", "validFrom": ymd(start)})
        municipality = site.municipality
        return {
            "hsaIdentity": self.hsa_id(index, region),
            "name": "",
            "publicName": None,
            "careGiver": giver.hsa_id,
            "careGiverName": giver.name,
            "careGiverOrgNo": giver.org_no,
            "parentHsaIdentity": parent["hsaIdentity"] if parent else None,
            "businessClassificationCode": [],
            "businessType": [],
            "careType": [],
            "hsaDestinationIndicator": [],
            "municipalityCode": municipality.code,
            "municipalityName": municipality.name,
            "countyCode": region.county_code,
            "countyName": region.county_name,
            "postalAddress": f"{site.street}${site.postal_code[:3]} {site.postal_code[3:]} "
            f"{municipality.name}",
            "postalCode": site.postal_code,
            "geographicalCoordinates": {"lat": site.lat, "lon": site.lon},
            "hsaStartDate": ymd(start),
            "hsaEndDate": ymd(end) if end else None,
            "kombika": kombika,
            "modifyTimestamp": hsa_timestamp(modified),
        }

    def _draw_provider(self, rng: random.Random) -> int:
        return int(_PRIVATE_PROVIDERS * rng.random() ** 2.5)  # a few chains, many small ones

    def _private_provider(self, number: int) -> CareGiver:
        rng = random.Random(f"hsa-sandbox:{self.seed}:provider:{number}")
        serial = (number * 7919 + self._inr_offset) % 10**6  # unique per provider
        org = f"556{serial:06d}"
        org += str(luhn_check_digit(org))
        pattern = rng.randrange(4)
        if pattern == 0:
            name = f"{rng.choice(SURNAMES)}s Läkarmottagning AB"
        elif pattern == 1:
            name = f"{rng.choice(BRAND_WORDS)}hälsan AB"
        elif pattern == 2:
            name = f"Vårdbolaget {rng.choice(BRAND_WORDS)} AB"
        else:
            name = f"{rng.choice(SURNAMES)} & {rng.choice(SURNAMES)} Medicin AB"
        return CareGiver(f"SE{org}-1000", name, org)

    def _block_rng(self, block: int) -> random.Random:
        return random.Random(f"hsa-sandbox:{self.seed}:{block}")


def _kinds(name: str, code: str, business: str, care: list[str], destination: list[str]) -> Unit:
    return {
        "name": name,
        "publicName": name,
        "businessClassificationCode": [code],
        "businessType": [business],
        "careType": care,
        "hsaDestinationIndicator": destination,
    }


def _postal_code(rng: random.Random, municipality: Municipality) -> str:
    prefix = municipality.postal_prefix
    return prefix + "".join(str(rng.randrange(10)) for _ in range(5 - len(prefix)))
