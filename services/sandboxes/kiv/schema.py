"""The KIV sandbox's HTTP shapes: a record as KIV's LDAP names its attributes, admin answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.types import HsaId

# Only hsaIdentity is checked: the sandbox stores what an administrator gives it, so that a
# consumer can be tested against odd data too.


class KivUnit(BaseModel):
    """One KIV record; dates YYYYMMDD, times YYYYMMDDhhmmss Swedish local time. Extra attributes
    are kept; null drops an attribute from the record."""

    model_config = ConfigDict(extra="allow")

    hsaIdentity: HsaId = Field(description="HSA-id of the unit, the key shared with HSA.")
    ou: str | None = Field(default=None, description="The unit's name.")
    vgrAnsvarsnummer: str | None = Field(default=None, description="Ansvarsnummer, 5 digits.")
    vgrAO3kod: str | None = Field(default=None, description="AO3 code, 3 digits.")
    vgrCareType: str | None = Field(default=None, description="01 … 05.")
    vgrVardVal: bool | None = Field(default=None, description="In Västra Götaland's vårdval.")
    vgrVardValOmrade: str | None = Field(
        default=None,
        description="Which Vårdval: primarvard (VG Primärvård), rehab (Vårdval Rehab), tandvard, "
        "specialist.",
    )
    hsaEndDate: str | None = Field(default=None, description="Last day, YYYYMMDD; absent: open.")
    modifyTimestamp: str | None = Field(
        default=None, description="Last change, YYYYMMDDhhmmss Swedish local time (set by KIV)."
    )


class UpsertAnswer(BaseModel):
    unit: dict[str, Any] = Field(description="The record as KIV holds it now.")
    created: bool


class RemoveAnswer(BaseModel):
    removed: bool


class ResetAnswer(BaseModel):
    count: int = Field(description="Records after the reset: the generated ones.")


class ErrorAnswer(BaseModel):
    error: str
