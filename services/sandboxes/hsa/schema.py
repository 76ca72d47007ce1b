"""The HSA sandbox's HTTP shapes: a unit as GetHsaUnit names its attributes, and admin bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.types import HsaId

# Only hsaIdentity is checked: the sandbox stores what an administrator gives it, as HSA would,
# so that a consumer can be tested against odd data too.


class KombikaPeriod(BaseModel):
    code: str = Field(description="inrättning (5 digits) + klinik (3) + avdelning (1–3 alnum).")  # noqa: RUF001
    validFrom: str = Field(description="First day the kombika denotes this unit, YYYYMMDD.")


class Coordinates(BaseModel):
    lat: float = Field(description="Latitude, WGS 84.")
    lon: float = Field(description="Longitude, WGS 84.")


class HsaUnit(BaseModel):
    """One unit, attributes as GetHsaUnit names them; dates YYYYMMDD, times YYYYMMDDhhmmss local."""

    model_config = ConfigDict(extra="allow")

    hsaIdentity: HsaId = Field(description="HSA-id of the unit, e.g. SE2321000016-14L1.")
    name: str | None = None
    publicName: str | None = Field(default=None, description="Name shown to the public.")
    careGiver: str | None = Field(default=None, description="HSA-id of the care provider.")
    careGiverName: str | None = None
    careGiverOrgNo: str | None = Field(default=None, description="Organisation number, 10 digits.")
    parentHsaIdentity: str | None = Field(
        default=None, description="HSA-id of the unit above; null for a top-level unit."
    )
    businessClassificationCode: list[str] | None = Field(
        default=None, description="Verksamhetskod (OID 1.2.752.129.2.2.1.3)."
    )
    businessType: list[str] | None = Field(
        default=None, description="01 hospital, 02 health centre, 03 remote unit."
    )
    careType: list[str] | None = Field(default=None, description="OID 1.2.752.129.2.2.1.13.")
    hsaDestinationIndicator: list[str] | None = Field(
        default=None, description="03: shown to the public (1177)."
    )
    municipalityCode: str | None = Field(default=None, description="4 digits, e.g. 0180.")
    municipalityName: str | None = None
    countyCode: str | None = Field(default=None, description="2 digits, e.g. 01.")
    countyName: str | None = None
    postalAddress: str | None = Field(default=None, description="Address lines joined by '$'.")
    postalCode: str | None = None
    geographicalCoordinates: Coordinates | None = None
    hsaStartDate: str | None = Field(default=None, description="YYYYMMDD.")
    hsaEndDate: str | None = Field(default=None, description="YYYYMMDD; null while active.")
    kombika: list[KombikaPeriod] | None = Field(
        default=None, description="GVR unit codes with valid-from dates; the latest applies."
    )
    modifyTimestamp: str | None = Field(
        default=None, description="Last change, YYYYMMDDhhmmss Swedish local time (set by HSA)."
    )


class UpsertAnswer(BaseModel):
    unit: dict[str, Any] = Field(description="The unit as the directory holds it now.")
    created: bool
    changed_attributes: list[str]
    record_version: int = Field(description="Version carried by the notification.")
    notified: bool = Field(description="Whether a notification went to Kafka.")


class RemoveAnswer(BaseModel):
    removed: str
    record_version: int
    notified: bool


class ExportCut(BaseModel):
    """The export frozen by `POST /admin/export/cut`: as of when, how many units."""

    as_of: datetime
    count: int


class ChangesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(default=0.01, ge=0, le=1, description="Share of the generated units.")
    notify: bool = Field(default=False, description="Publish a notification per changed unit.")


class ChangesAnswer(BaseModel):
    changed: int
    hsa_ids: list[str]
    notified: bool


class InvalidRowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hsa_id: str
    kind: Literal["bad_kombika", "bad_org", "not_json"]


class ErrorAnswer(BaseModel):
    error: str
