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
HSA_PATTERN = r"^SE(16)?[0-9]{10}-[A-Za-z0-9]+$"
CLASS_PATTERN = r"^[0-9]{1,3}$"
ERSMO_CODE_PATTERN = r"^[0-9A-Za-z]{1,10}$"
SINGLE_PATTERN = r"^[0-9A-Za-z]$"
LINK = "1-based row it is linked to"
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
    """A unit: a kombika (inrättning + klinik + avdelning; must exist and be open on the event
    date), or an HSA-id (`hsaId` alone; the sandbox checks its format only)."""

    model_config = _FORBID

    inr: str | None = Field(
        default=None, pattern=r"^[0-9]{5}$", description="Inrättning, 5 digits."
    )
    klin: str | None = Field(default=None, pattern=r"^[0-9]{3}$", description="Klinik, 3 digits.")
    avd: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9]{1,3}$", description="Avdelning, 1–3 alphanumerics."
    )
    hsaId: str | None = Field(
        default=None, pattern=HSA_PATTERN, description="HSA-id, instead of inr + klin + avd."
    )


class Diagnos(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=ICD_PATTERN, description="ICD-10-SE without the dot (J069, B341A).")
    ordning: int = Field(ge=1, description="1 = main diagnosis; the rows are numbered 1…n.")


class Atgard(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=KVA_PATTERN, description="KVÅ: NHP09 or AQ014.")
    diagnosRad: int | None = Field(
        default=None, ge=1, description="`ordning` of the diagnosis it belongs to (optional)."
    )
    tillstandRad: int | None = Field(
        default=None, ge=1, description="`ordning` of the condition it belongs to (optional)."
    )
    datum: date = Field(
        description="Performed on (YYYY-MM-DD), not after the event's last date (slutdatum, "
        "else the event date)."
    )


class Lakemedel(BaseModel):
    model_config = _FORBID

    atc: str = Field(pattern=ATC_PATTERN, description="ATC substance level (J01CE02).")
    datum: date | None = Field(default=None, description="Given on (YYYY-MM-DD), optional.")
    diagnosRad: int | None = Field(default=None, ge=1, description=f"Diagnosis: {LINK}.")
    tillstandRad: int | None = Field(default=None, ge=1, description=f"Condition: {LINK}.")


class Tillstand(BaseModel):
    """A condition (e.g. ASA class) from the condition table, dated."""

    model_config = _FORBID

    kod: str = Field(pattern=ERSMO_CODE_PATTERN, description="Condition code (ASA1–ASA6).")
    klass: str | None = Field(default=None, pattern=CLASS_PATTERN, description="Table number.")
    datum: date = Field(description="Applies from (YYYY-MM-DD).")
    ordning: int = Field(ge=1, description="Rows numbered 1…n.")
    diagnosRad: int | None = Field(default=None, ge=1, description=f"Diagnosis: {LINK}.")


class Produkt(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=ERSMO_CODE_PATTERN, description="Product code; format only.")
    klass: str | None = Field(default=None, pattern=CLASS_PATTERN, description="Table number.")
    antal: int = Field(ge=1, le=9999, description="Quantity.")


class Resursgrupp(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=r"^[0-9A-Za-z]{1,4}$", description="Resource group; format only.")
    klass: str | None = Field(default=None, pattern=CLASS_PATTERN, description="Table number.")


class Patientavgift(BaseModel):
    model_config = _FORBID

    kod: str = Field(pattern=r"^[0-9A-Za-z]{1,2}$", description="Fee code (TAXA when klass 006).")
    klass: str | None = Field(default=None, pattern=CLASS_PATTERN, description="Table number.")


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
    patientLkf: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z]{6}$", description="County + municipality + parish."
    )
    patientBasomrade: str | None = Field(default=None, pattern=r"^[0-9]{7}$")
    patientFodelsedatum: date | None = None
    patientKon: Literal["K", "M"] | None = None


class Period(Gemensamt):
    """Fields of every ERSMO-shaped event: the last date, the last unit, the commission."""

    slutdatum: date | None = Field(default=None, description="Last date; not before the start.")
    slutenhet: Enhet | None = Field(default=None, description="Unit at the end, if another.")
    ersUppdrag: str | None = Field(
        default=None, pattern=r"^\S{1,7}$", description="Commission (ERSUPPDRAG), ≤ 7 characters."
    )


class Besok(Period):
    """An outpatient visit. Key: patientId + besoksdatum + besokstid ("" without) + enhet."""

    besoksdatum: date = Field(description=f"Visit date; {_EVENT_DATE}.")
    besokstid: str | None = Field(
        default=None, pattern=TIME_PATTERN, description="HH:MM; optional (date-only contacts)."
    )
    besokstyp: str | None = Field(default=None, description="BTYP code.")
    yrkeskategorier: list[Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]] = Field(
        default_factory=list, description="VDG codes, 2 characters each (01, 02 …); may be empty."
    )
    akut: Literal["J", "N", "1", "2"] | None = None
    taxa: str | None = Field(default=None, description="TAXA code.")
    patientavgift: Patientavgift | None = None
    kontaktform: Literal["OPPENVARD", "HEMSJUKVARD"] | None = None
    tillstand: list[Tillstand] = Field(default_factory=list)
    produkter: list[Produkt] = Field(default_factory=list)
    resursgrupper: list[Resursgrupp] = Field(default_factory=list)
    remitteradTill: Enhet | None = None
    visteFore: str | None = Field(default=None, pattern=SINGLE_PATTERN)
    vardFore: str | None = Field(default=None, pattern=SINGLE_PATTERN)
    visteEfter: str | None = Field(default=None, pattern=SINGLE_PATTERN)
    vardEfter: str | None = Field(default=None, pattern=SINGLE_PATTERN)
    tillhorVardansvar: str | None = Field(default=None, pattern=SOURCE_PATTERN)
    tillhorVardkontakt: str | None = Field(default=None, pattern=SOURCE_PATTERN)
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
    akut: Literal["J", "N", "1", "2"]
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
    """Availability data: a booking. Key: patientId + bokningsdatum + enhet + kallsystem +
    kallId (the source's booking: two of one patient at one unit on one day are two records)."""

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


class Vardansvar(Period):
    """A care responsibility (vårdansvar). Key: patientId + startdatum + enhet."""

    startdatum: date = Field(description=f"Start date; {_EVENT_DATE}.")
    vardansvarsform: Literal["HEMSJUKVARD", "OKANT"]
    niva: Literal["BASAL", "AVANCERAD", "OKANT"] | None = None
    diagnoser: list[Diagnos] = Field(default_factory=list)
    tillstand: list[Tillstand] = Field(default_factory=list)


class Vardhandelse(Period):
    """A care period, an examination or a dispatch (vårdperiod, undersökning, expediering):
    dates and unit only. Key: patientId + startdatum + enhet."""

    startdatum: date = Field(description=f"Start date; {_EVENT_DATE}.")
