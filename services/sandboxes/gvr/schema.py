"""The GVR sandbox's HTTP shapes: request bodies, answers and error codes (documented in OpenAPI).

The bodies are checked by `validation` (every failing field listed), not by FastAPI; these models
name the fields, say which are required, and document the rules in the OpenAPI.
"""

# The en dash of ranges ("1–3") is meant: descriptions quote the handbook.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_FORBID = ConfigDict(extra="forbid")
ICD_PATTERN = r"^[A-Z][0-9]{2}[0-9A-Z]{0,3}$"
KVA_PATTERN = r"^([A-Z]{3}[0-9]{2}|[A-Z]{2}[0-9]{3})$"
ATC_PATTERN = r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$"
REGION_CODE_PATTERN = r"^[0-9A-Za-z]{1,10}$"
CARE_PERIOD_PATTERN = r"^[0-9A-Za-z]{1,40}$"
SOURCE_PATTERN = r"^\S.{0,63}$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_EVENT_DATE = "valid on this date: codes and kombikas are checked as of it"


class FelKod(StrEnum):
    """The `kod` of an error (the sandbox's own codes; the register's list is not public)."""

    SAKNAS = "GVR-SAKNAS"  # a required field is missing or null
    FORMAT = "GVR-FORMAT"  # wrong JSON type, date, time or length; body not a JSON object
    OKANT_FALT = "GVR-OKANT-FALT"  # a field the resource does not have
    PATIENTID = "GVR-PATIENTID"  # not 12 digits, bad date, check digit, wrong for patientIdTyp
    KOMBIKA_FORMAT = "GVR-KOMBIKA-FORMAT"  # inr 5 digits, klin 3 digits, avd 1–3 alphanumerics
    KOMBIKA_OKAND = "GVR-KOMBIKA-OKAND"  # not in the kombika registry
    KOMBIKA_STANGD = "GVR-KOMBIKA-STANGD"  # not open on the event date (the whole call fails)
    KOD_FORMAT = "GVR-KOD-FORMAT"  # ICD-10-SE, KVÅ or ATC structure
    KOD_OKAND = "GVR-KOD-OKAND"  # not in the code table
    KOD_EJ_GILTIG = "GVR-KOD-EJ-GILTIG"  # in the table, but not valid on the event date
    ANNAN_KLINIK = "GVR-ANNAN-KLINIK"  # discharging unit outside the admitting unit's clinic
    ORDNING = "GVR-ORDNING"  # diagnosis order 1…n, procedure linked to a missing diagnosis
    DATUM = "GVR-DATUM"  # a date after the event date (a procedure's datum)
    MATCHAR_EJ = "GVR-MATCHAR-EJ"  # DELETE: patientId/enhet are not those of the record
    OKANT_ID = "GVR-OKANT-ID"  # 404
    DUBBLETT = "GVR-DUBBLETT"  # 409: a record with the same key exists
    MAKULERAD = "GVR-MAKULERAD"  # 409: the record is cancelled
    BEHORIGHET = "GVR-BEHORIGHET"  # 403: the certificate has no permission (fault)
    STRYPT = "GVR-STRYPT"  # 429
    UNDERHALL = "GVR-UNDERHALL"  # 503
    INTERNT = "GVR-INTERNT"  # 500


class Fel(BaseModel):
    falt: str = Field(description="The field, dot notation (enhet.inr, diagnoser[0].kod).")
    kod: FelKod = Field(description="What is wrong, as a code.")
    meddelande: str = Field(description="What is wrong, in Swedish, precise.")


class FelSvar(BaseModel):
    fel: list[Fel] = Field(description="Every failing field of the call.")
    id: str | None = Field(
        default=None, description="409: the id of the record that has the same key."
    )


class Kvitto(BaseModel):
    id: str = Field(description='The register\'s id: "GVR-" + 7 digits.', examples=["GVR-0000001"])
    status: Literal["REGISTRERAD", "RATTAD", "MAKULERAD"]


class Traffar(BaseModel):
    traffar: list[dict[str, Any]] = Field(
        description="Records with the key asked for, makulerade too: id, status, the record."
    )


class Enhet(BaseModel):
    """A kombika: inrättning + klinik + avdelning; must exist and be open on the event date."""

    model_config = _FORBID

    inr: str = Field(pattern=r"^[0-9]{5}$", description="Inrättning, 5 digits.")
    klin: str = Field(pattern=r"^[0-9]{3}$", description="Klinik, 3 digits.")
    avd: str = Field(pattern=r"^[A-Za-z0-9]{1,3}$", description="Avdelning, 1–3 alphanumerics.")


class Diagnos(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=ICD_PATTERN, description="ICD-10-SE without the dot (J069, B341A).")
    ordning: int = Field(ge=1, description="1 = main diagnosis; the rows are numbered 1…n.")


class Atgard(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=KVA_PATTERN, description="KVÅ: NHP09 or AQ014.")
    diagnosRad: int = Field(ge=1, description="`ordning` of the diagnosis it belongs to.")
    datum: date = Field(description="Performed on (YYYY-MM-DD), not after the event date.")


class Lakemedel(BaseModel):
    model_config = _FORBID

    atc: str = Field(pattern=ATC_PATTERN, description="ATC substance level (J01CE02).")


class Gemensamt(BaseModel):
    """Fields every resource has."""

    model_config = _FORBID

    patientId: str = Field(
        pattern=r"^[0-9]{12}$", description="12 digits, no separator, checked per patientIdTyp."
    )
    patientIdTyp: Literal["PNR", "SNR", "RESERV"] = Field(
        description="PNR personnummer, SNR samordningsnummer, RESERV Region Stockholm reserve."
    )
    enhet: Enhet = Field(description="The reporting unit (kombika).")
    kallsystem: str = Field(pattern=SOURCE_PATTERN, description="The reporting system.")
    kallId: str = Field(pattern=SOURCE_PATTERN, description="The source record's id.")


class Besok(Gemensamt):
    """An outpatient visit. Key: patientId + besoksdatum + besokstid + enhet."""

    besoksdatum: date = Field(description=f"Visit date; {_EVENT_DATE}.")
    besokstid: str = Field(pattern=TIME_PATTERN, description="HH:MM.")
    besokstyp: str = Field(description="BTYP code.")
    yrkeskategorier: list[Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]] = Field(
        min_length=1, description="VDG codes, 2 characters each; at least one."
    )
    akut: Literal["J", "N"]
    taxa: str = Field(description="TAXA code.")
    vardperiodkod: str | None = Field(default=None, pattern=CARE_PERIOD_PATTERN)
    kontakttyp: str | None = Field(
        default=None, pattern=REGION_CODE_PATTERN, description="Format only."
    )
    diagnoser: list[Diagnos] = Field(default_factory=list)
    atgarder: list[Atgard] = Field(default_factory=list)
    lakemedel: list[Lakemedel] = Field(default_factory=list)
    remitterandeEnhet: Enhet | None = None


class Inskrivning(Gemensamt):
    """An admission. Key: patientId + inskrivningsdatum + inskrivningstid + enhet."""

    inskrivningsdatum: date = Field(description=f"Admission date; {_EVENT_DATE}.")
    inskrivningstid: str = Field(pattern=TIME_PATTERN, description="HH:MM.")
    inskrivningskod: str = Field(description="IKOD code.")
    akut: Literal["J", "N"]
    remitterandeEnhet: Enhet | None = None
    psykiatriskVardform: str | None = Field(
        default=None, pattern=REGION_CODE_PATTERN, description="Format only."
    )
    vardperiodkod: str = Field(pattern=CARE_PERIOD_PATTERN)


class Utskrivning(Gemensamt):
    """A discharge. Key: patientId + utskrivningsdatum + utskrivningstid + enhet (discharging)."""

    inskrivandeEnhet: Enhet = Field(description="Admitting unit: same inr + klin as `enhet`.")
    utskrivningsdatum: date = Field(description=f"Discharge date; {_EVENT_DATE}.")
    utskrivningstid: str = Field(pattern=TIME_PATTERN, description="HH:MM.")
    utskrivningskod: str = Field(description="UKOD code.")
    utskrivenTill: Enhet | None = None
    dodstid: AwareDatetime | None = Field(default=None, description="ISO 8601 with zone.")
    diagnoser: list[Diagnos] = Field(default_factory=list)
    atgarder: list[Atgard] = Field(default_factory=list)
    vardperiodkod: str = Field(pattern=CARE_PERIOD_PATTERN)


class Tillganglighet(Gemensamt):
    """Availability data. Key: patientId + bokningsdatum + enhet."""

    kontaktkategori: Literal["OPPENVARD", "SLUTENVARD", "REHABKOORDINATOR"]
    vardgaranti: bool
    bokningsdatum: date = Field(description=f"Booking date; {_EVENT_DATE}.")
    besokstid: AwareDatetime | None = Field(default=None, description="ISO 8601 with zone.")
    remissdatum: date | None = None
    beslutsdatum: date | None = None
    remisstyp: str | None = Field(
        default=None, pattern=REGION_CODE_PATTERN, description="Format only."
    )
    undantagskod: str | None = Field(
        default=None, pattern=REGION_CODE_PATTERN, description="Format only."
    )
