"""Values on the compacted catalog topics (version 1): a care unit, a vaccine and its batches, a
kombika's assignments from Region Stockholm's code server.

Readers ignore fields they do not know, so a catalog sync that adds an optional field can be
deployed before the workers that read it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.types import HsaId, KombikaCode, OrganisationNumber

CARE_UNIT_SCHEMA = 1
VACCINE_SCHEMA = 1
KOMBIKA_SCHEMA = 1

Source = Literal["hsa", "kiv"]


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class KombikaPeriod(_Value):
    """A kombika that denotes this unit from `valid_from` (inclusive) to `valid_to` (exclusive)."""

    kombika: KombikaCode
    valid_from: date
    valid_to: date | None = None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class RegionalAttributes(_Value):
    """What a regional directory keeps about a unit beside HSA (Västra Götaland's KIV)."""

    directory: Literal["kiv"] = "kiv"
    unit_code: str | None = None  # vgrAnsvarsnummer: the region's number for the unit
    responsibility_area: str | None = None  # vgrAO3kod
    care_type: str | None = None  # vgrCareType
    vardval: bool = False  # vgrVardVal: a unit in the region's patient-choice system (Vårdval)
    # vgrVardValOmrade: which Vårdval the unit is in — "primarvard" (primary care), "rehab" …;
    # a plain string, so a reader takes values it does not know yet (docs/catalog.md)
    vardval_area: str | None = None


class Address(_Value):
    lines: tuple[str, ...] = ()
    postal_code: str | None = None
    city: str | None = None


class CareUnit(_Value):
    """A care unit as regbridge's workers need it; key on `catalog.care-units.v1` is `hsa_id`."""

    schema_version: int = CARE_UNIT_SCHEMA
    hsa_id: HsaId
    name: str = Field(min_length=1)
    public_name: str | None = None
    care_giver_hsa_id: HsaId
    care_giver_name: str | None = None
    care_giver_org_number: OrganisationNumber
    parent_hsa_id: HsaId | None = None
    business_classification_codes: tuple[str, ...] = ()
    business_types: tuple[str, ...] = ()
    care_types: tuple[str, ...] = ()
    destination_indicators: tuple[str, ...] = ()
    municipality_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    municipality_name: str | None = None
    county_code: str | None = Field(default=None, pattern=r"^\d{2}$")
    county_name: str | None = None
    postal_address: Address | None = None
    latitude: float | None = Field(default=None, ge=55.0, le=69.1)
    longitude: float | None = Field(default=None, ge=10.9, le=24.2)
    start_date: date | None = None
    end_date: date | None = None
    kombika: tuple[KombikaPeriod, ...] = ()
    source_updated_at: AwareDatetime | None = None
    # where the unit's attributes came from: HSA alone, or HSA and KIV merged (each attribute
    # from its owner: docs/catalog.md, "KIV beside HSA")
    sources: tuple[Source, ...] = ("hsa",)
    regional: RegionalAttributes | None = None

    def active_on(self, day: date) -> bool:
        """Open on `day`: started (if a start is known) and not yet ended (end date exclusive)."""
        started = self.start_date is None or self.start_date <= day
        return started and (self.end_date is None or day < self.end_date)


class KombikaAssignment(_Value):
    """The code server's word: the kombika denotes unit `hsa_id` from `valid_from` (inclusive)
    to `valid_to` (exclusive; None: open)."""

    hsa_id: HsaId
    valid_from: date
    valid_to: date | None = None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class KombikaMapping(_Value):
    """A kombika and the units it has denoted, from Region Stockholm's code server (the MEK
    file); key on `catalog.kombikas.v1` is `kombika`. Where it knows a kombika, it is the
    workers' answer; HSA's kombika attribute is the fallback."""

    schema_version: int = KOMBIKA_SCHEMA
    kombika: KombikaCode
    assignments: tuple[KombikaAssignment, ...] = Field(min_length=1)


class Batch(_Value):
    number: str = Field(min_length=1, max_length=80)
    expires_on: date | None = None


class Vaccine(_Value):
    """A vaccine on the vaccination register's current list; key on `catalog.vaccines.v1` is
    `npl_id`."""

    schema_version: int = VACCINE_SCHEMA
    npl_id: str = Field(pattern=r"^\d{1,14}$")
    name: str = Field(min_length=1)
    atc_code: str | None = None
    covid19: bool = False
    batches: tuple[Batch, ...] = ()
    listed_at: datetime | None = None

    def has_current_batch(self, number: str, day: date) -> bool:
        return any(
            b.number == number and (b.expires_on is None or day <= b.expires_on)
            for b in self.batches
        )
