"""Swedish identifiers and codes: pure validators, one error type, a mask for identity numbers."""

# The en dash of ranges ("61–91") is meant: messages and docs quote the handbook.
# ruff: noqa: RUF001, RUF002, RUF003

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import NoReturn

# Readings that are not in the registers' public material are marked "inferred" where applied.

_DIGITS = re.compile(r"[0-9]+")
KNOWN_IDS = 16_384
"""Valid HSA-ids, organisation numbers and kombikas remembered (they recur in every event of a
unit; not personal identity numbers, which are not kept)."""
_FIVE_DIGITS = re.compile(r"[0-9]{5}")
_HSA_ID = re.compile(r"SE(?:16)?(?P<org>[0-9]{10})-[A-Za-z0-9]+")
_KOMBIKA = re.compile(r"(?P<inr>[0-9]{5}) ?(?P<klin>[0-9]{3}) ?(?P<avd>.*)", re.DOTALL)
_AVDELNING = re.compile(r"[A-Za-z0-9]{1,3}")
_ICD10SE = re.compile(r"[A-Z][0-9]{2}[0-9A-Z]{0,3}")
_KVA = re.compile(r"[A-Z]{3}[0-9]{2}|[A-Z]{2}[0-9]{3}")
# ATC levels: A (1) · A01 (2) · A01A (3) · A01AB (4) · A01AB13 (5); first letter = anatomical group.
_ATC = re.compile(r"[ABCDGHJLMNPRSV](?:[0-9]{2}(?:[A-Z](?:[A-Z](?:[0-9]{2})?)?)?)?")
_NRID_LETTER = "[A-HJ-NPR-UX-Z]"  # A–Z except I, O, Q, V, W (21 letters)
_NRID = re.compile(rf"[0-9]{{8}}{_NRID_LETTER}{{2}}(?:[0-9]|{_NRID_LETTER})[0-9]")
_VGR_LETTER_VALUE = {"K": "5", "M": "7", "X": "8"}
_NOT_SEPARATOR = re.compile(r"[^-+ ]")

# A personnummer/samordningsnummer in free text: YY or YYYY, a plausible month and day (day + 60 for
# samordningsnummer), an optional -/+ separator, four digits; never part of a longer digit run. The
# check digit is deliberately not required: a mistyped number is still personal data.
_PERSONAL_ID_IN_TEXT = re.compile(
    r"(?<![0-9])"
    r"(?P<date>[0-9]{2}(?:[0-9]{2})?"
    r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]|6[1-9]|[78][0-9]|9[01]))"
    r"(?P<sep>[-+]?)[0-9]{4}"
    r"(?![0-9])"
)
_SIX_DIGITS = re.compile(r"[0-9]{6}")  # cheap pre-check: most log values hold no such run
_PERSONAL_ID_MASK = r"\g<date>\g<sep>****"

_PNR = "personnummer"
_SNR = "samordningsnummer"
_SLL = "reservnummer (Region Stockholm)"
_VGR = "reservnummer (Västra Götaland)"
_NRID_KIND = "NRID"
_PATIENT_ID = "patient id"
_PERSONAL_KINDS = frozenset({_PNR, _SNR, _SLL, _VGR, _NRID_KIND, _PATIENT_ID})


class InvalidIdentifierError(ValueError):
    """An identifier broke a format rule; `kind` names the identifier, `rule` the rule that failed.

    The message is ``"<kind>: <rule>"`` and never holds the value. `value` is the input with any
    personal identity number masked (birth date kept), so it is safe in logs and dead letters.
    """

    kind: str
    rule: str
    value: str

    def __init__(self, kind: str, rule: str, value: str) -> None:
        super().__init__(f"{kind}: {rule}")
        self.kind = kind
        self.rule = rule
        self.value = _mask_whole(value) if kind in _PERSONAL_KINDS else mask_personal_ids(value)

    def __reduce__(self) -> tuple[type[InvalidIdentifierError], tuple[str, str, str]]:
        return type(self), (self.kind, self.rule, self.value)


class PatientIdType(StrEnum):
    PNR = "PNR"
    SNR = "SNR"
    RESERVE_SLL = "RESERVE_SLL"
    RESERVE_VGR = "RESERVE_VGR"
    NRID = "NRID"


@dataclass(frozen=True)
class Kombika:
    """A kombika, Region Stockholm's unit code: inrättning (5 digits) + klinik (3 digits) +
    avdelning (1–3 alphanumerics)."""

    inr: str
    klin: str
    avd: str

    def __str__(self) -> str:
        return f"{self.inr}{self.klin}{self.avd}"


def luhn_check_digit(digits: str) -> int:
    """The Luhn (mod 10) check digit for `digits`: weights 2, 1, 2, … from the rightmost digit."""
    if not _DIGITS.fullmatch(digits):
        raise ValueError("luhn_check_digit: expected one or more ASCII digits")
    doubled = digits[-1::-2].translate(_LUHN_DOUBLED)  # the rightmost and every other
    return -sum(map(int, doubled + digits[-2::-2])) % 10


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")
"""A digit doubled, its two digits summed (7 → 14 → 5)."""


def synthetic_personnummer(rng: random.Random, born: date) -> str:
    """A valid 12-digit personnummer for `born` (random serial, Luhn check digit): test data."""
    serial = f"{rng.randrange(1, 999):03d}"
    ten = born.strftime("%y%m%d") + serial
    return born.strftime("%Y") + ten[2:] + str(luhn_check_digit(ten))


def validate_personnummer(value: str) -> str:
    """12 digits ``YYYYMMDDNNNC``: a real birth date, Luhn over ``YYMMDDNNN``."""
    _require_digits(_PNR, value, 12)
    if 61 <= int(value[6:8]) <= 91:
        _fail(_PNR, "day must be 01–31 (61–91 is a samordningsnummer)", value)
    _require_date(_PNR, value, value[:8], day_offset=0)
    _require_luhn(_PNR, value, value[2:11], value[11], "")
    return value


def validate_samordningsnummer(value: str) -> str:
    """As a personnummer, with the day written as day + 60 (61–91)."""
    _require_digits(_SNR, value, 12)
    if not 61 <= int(value[6:8]) <= 91:
        _fail(_SNR, "day must be 61–91", value)
    _require_date(_SNR, value, value[:8], day_offset=60)
    _require_luhn(_SNR, value, value[2:11], value[11], "")
    return value


def validate_reserve_sll(value: str) -> str:
    """Region Stockholm: ``99`` + ``yyyy`` + ``NNNNN`` + ``C``, Luhn over positions 5–11 only."""
    _require_digits(_SLL, value, 12)
    if not value.startswith("99"):
        _fail(_SLL, "must start with 99", value)
    _require_luhn(_SLL, value, value[4:11], value[11], " over positions 5–11")
    return value


def validate_reserve_vgr(value: str) -> str:
    """Västra Götaland: ``yyyymmdd`` + G∈{K,M,X} + ``gg`` + ``C``.

    Luhn over ``YYMMDD`` + G + ``gg`` as for a personnummer, G counted as K=5, M=7, X=8. The birth
    date must be real (inferred from "yyyymmdd"); parity of ``gg`` per sex is not checked.
    """
    if len(value) != 12:
        _fail(_VGR, f"must be 12 characters without separator, got {len(value)}", value)
    if not (_DIGITS.fullmatch(value[:8]) and _DIGITS.fullmatch(value[9:])):
        _fail(_VGR, "must be yyyymmdd + K, M or X + 3 digits", value)
    letter = _VGR_LETTER_VALUE.get(value[8])
    if letter is None:
        _fail(_VGR, "9th character must be K, M or X", value)
    _require_date(_VGR, value, value[:8], day_offset=0)
    _require_luhn(_VGR, value, value[2:8] + letter + value[9:11], value[11], "")
    return value


def validate_nrid(value: str) -> str:
    """National reserve id ``XXYYMMDDNNGC`` (Inera format, OID 1.2.752.74.9.1).

    XX is 00 for an unknown birth date (then YYMMDD is a running number with MM 20–99 and DD 40–59),
    otherwise the birth century + 3, 6, … 78, i.e. 22–98 (01–21 are reserved or unused). NN are
    two letters A–Z except I, O, Q, V, W. G is a digit (sex, as in a personnummer) or, for an
    unknown sex, such a letter (inferred from HL7 Sweden's NRID pattern). C is a digit; its
    algorithm is not public in our sources, so it is not verified (inferred gap).
    """
    if len(value) != 12:
        _fail(_NRID_KIND, f"must be 12 characters without separator, got {len(value)}", value)
    if not _NRID.fullmatch(value):
        rule = "must be 8 digits + 2 letters (A–Z except I, O, Q, V, W) + digit or letter + digit"
        _fail(_NRID_KIND, rule, value)
    series, month, day = int(value[:2]), int(value[4:6]), int(value[6:8])
    if series == 0:
        if not (20 <= month <= 99 and 40 <= day <= 59):
            _fail(
                _NRID_KIND, "with XX=00 (unknown birth date) MM must be 20–99 and DD 40–59", value
            )
    elif 22 <= series <= 98:
        century = 18 + (series - 18) % 3  # 18, 19 or 20: series - century is a multiple of 3
        _require_date(_NRID_KIND, value, f"{century}{value[2:8]}", day_offset=0)
    else:
        _fail(
            _NRID_KIND, "XX must be 00 (unknown birth date) or 22–98 (birth century + 3…78)", value
        )
    return value


_PATIENT_ID_VALIDATORS: dict[PatientIdType, Callable[[str], str]] = {
    PatientIdType.PNR: validate_personnummer,
    PatientIdType.SNR: validate_samordningsnummer,
    PatientIdType.RESERVE_SLL: validate_reserve_sll,
    PatientIdType.RESERVE_VGR: validate_reserve_vgr,
    PatientIdType.NRID: validate_nrid,
}


def validate_patient_id(id_type: PatientIdType, value: str) -> str:
    """Validate `value` by the rules of its declared type; the type is never guessed."""
    try:
        validator = _PATIENT_ID_VALIDATORS[PatientIdType(id_type)]
    except ValueError:
        _fail(_PATIENT_ID, f"type must be one of {', '.join(PatientIdType)}", value)
    return validator(value)


@lru_cache(maxsize=KNOWN_IDS)
def validate_organisationsnummer(value: str) -> str:
    """10 digits, third digit ≥ 2, Luhn over the first 9 (the valid ones remembered)."""
    kind = "organisationsnummer"
    _require_digits(kind, value, 10)
    if int(value[2]) < 2:
        _fail(kind, "third digit must be 2 or higher", value)
    _require_luhn(kind, value, value[:9], value[9], "")
    return value


@lru_cache(maxsize=KNOWN_IDS)
def validate_hsa_id(value: str) -> str:
    """``SE`` + organisation number + ``-`` + one or more of A–Z a–z 0–9, at most 31 characters
    (the valid ones remembered).

    The organisation number is 10 digits, or 12 with the "16" prefix that Inera's own ids use
    (``SE165565594230-1000``): an extension of the handbook rule, from public RIV/Inera material.
    """
    kind = "HSA-id"
    if len(value) > 31:
        _fail(kind, f"must be at most 31 characters, got {len(value)}", value)
    match = _HSA_ID.fullmatch(value)
    if match is None:
        _fail(kind, "must be 'SE' + 10-digit organisation number + '-' + A–Z, a–z or 0–9", value)
    try:
        validate_organisationsnummer(match["org"])
    except InvalidIdentifierError as error:
        _fail(kind, f"organisation number: {error.rule}", value)
    return value


@lru_cache(maxsize=KNOWN_IDS)
def parse_kombika(value: str) -> Kombika:
    """5 + 3 digits + 1–3 alphanumerics; one space between the parts is accepted and dropped
    (each valid one parsed once: `Kombika` is frozen)."""
    kind = "kombika"
    match = _KOMBIKA.fullmatch(value)
    if match is None:
        part = "klinik must be 3" if _FIVE_DIGITS.match(value) else "inrättning must be 5"
        _fail(kind, f"{part} digits", value)
    if not _AVDELNING.fullmatch(match["avd"]):
        _fail(kind, "avdelning must be 1–3 alphanumerics", value)
    return Kombika(inr=match["inr"], klin=match["klin"], avd=match["avd"])


def validate_icd10se(value: str) -> str:
    """ICD-10-SE in upper case without the dot: letter + 2 digits + up to 3 more (J069, B341A)."""
    kind = "ICD-10-SE"
    if "." in value:
        _fail(kind, "must be written without the dot (J069, not J06.9)", value)
    if value != value.upper():
        _fail(kind, "must be upper case", value)
    if not _ICD10SE.fullmatch(value):
        _fail(kind, "must be a letter + 2 digits + up to 3 digits or letters", value)
    return value


def validate_kva(value: str) -> str:
    """KVÅ procedure code: 3 letters + 2 digits (NHP09) or 2 letters + 3 digits (AQ014)."""
    if not _KVA.fullmatch(value):
        _fail("KVÅ", "must be 3 letters + 2 digits (NHP09) or 2 letters + 3 digits (AQ014)", value)
    return value


def validate_atc(value: str) -> str:
    """An ATC code at any of its five levels: A, A01, A01A, A01AB or the substance A01AB13.

    Every level is accepted; a mapping that needs the substance checks for 7 characters itself.
    """
    if not _ATC.fullmatch(value):
        rule = (
            "must be A01AB13 or its level A, A01, A01A or A01AB (group A B C D G H J L M N P R S V)"
        )
        _fail("ATC", rule, value)
    return value


def validate_npl_id(value: str) -> str:
    """NPL-id (medicinal product): numeric, 1–14 digits, as the vaccination register states
    (real ones have 14)."""
    if len(value) > 14 or not _DIGITS.fullmatch(value):
        _fail("NPL-id", "must be 1–14 digits", value)
    return value


def validate_batch_number(value: str) -> str:
    """Batch number as the vaccination register takes it: 0–80 characters, as on the batch
    list."""
    if len(value) > 80:
        _fail("batch number", f"must be at most 80 characters, got {len(value)}", value)
    return value


def mask_personal_ids(text: str) -> str:
    """Replace each personnummer/samordningsnummer in `text` by its birth date + ``****``.

    ``19121212-1212`` → ``19121212-****``, ``191212121212`` → ``19121212****``, ``121212-1212`` →
    ``121212-****``. Longer digit runs, timestamps and numbers whose month/day cannot be a birth
    date (e.g. organisation numbers, whose "month" is ≥ 20) are left alone.
    """
    if _SIX_DIGITS.search(text) is None:
        return text
    return _PERSONAL_ID_IN_TEXT.sub(_PERSONAL_ID_MASK, text)


def personal_id_spans(text: str) -> list[tuple[int, int]]:
    """Where `mask_personal_ids` would mask: the (start, end) of each identity number in `text`."""
    if _SIX_DIGITS.search(text) is None:
        return []
    return [match.span() for match in _PERSONAL_ID_IN_TEXT.finditer(text)]


def _mask_whole(value: str) -> str:
    """Keep at most the first 8 characters (the birth date) and never the last 4."""
    keep = max(0, min(8, len(value) - 4))
    return value[:keep] + _NOT_SEPARATOR.sub("*", value[keep:])


def _fail(kind: str, rule: str, value: str) -> NoReturn:
    raise InvalidIdentifierError(kind, rule, value)


def _require_digits(kind: str, value: str, length: int) -> None:
    if len(value) != length:
        _fail(
            kind, f"must be {length} digits without separator, got {len(value)} characters", value
        )
    if not _DIGITS.fullmatch(value):
        _fail(kind, f"must be {length} digits without separator, found a non-digit", value)


def _require_date(kind: str, value: str, yyyymmdd: str, *, day_offset: int) -> None:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]) - day_offset
    if not 1 <= month <= 12:
        _fail(kind, "month must be 01–12", value)
    try:
        date(year, month, day)
    except ValueError:
        _fail(kind, "birth date is not a real calendar date", value)


def _require_luhn(kind: str, value: str, payload: str, check: str, where: str) -> None:
    if luhn_check_digit(payload) != int(check):
        _fail(kind, f"check digit (Luhn{where}) does not match", value)
