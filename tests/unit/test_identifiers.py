"""Every test vector of the identifier handbook, valid and invalid, and the log mask."""

# The en dash of ranges ("61–91") is meant: the messages quote the handbook.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import pickle
import random
import re
from collections.abc import Callable

import pytest

from shared.identifiers import (
    InvalidIdentifierError,
    Kombika,
    PatientIdType,
    luhn_check_digit,
    mask_personal_ids,
    parse_kombika,
    validate_atc,
    validate_batch_number,
    validate_hsa_id,
    validate_icd10se,
    validate_kva,
    validate_npl_id,
    validate_nrid,
    validate_organisationsnummer,
    validate_patient_id,
    validate_personnummer,
    validate_reserve_sll,
    validate_reserve_vgr,
    validate_samordningsnummer,
)

# identifiers.md
PERSONNUMMER_VALID = [
    "191212121212",
    "201501010191",
    "200312242498",
    "196508313159",
    "201812313193",
    "198002292996",
    "202402291237",
]
SAMORDNINGSNUMMER_VALID = ["197010632391", "201501610198", "199003718195"]
NOT_12_DIGITS = "must be 12 digits without separator"


def _rejects(validate: Callable[[str], object], value: str) -> InvalidIdentifierError:
    with pytest.raises(InvalidIdentifierError) as caught:
        validate(value)
    return caught.value


def _other_check_digits(value: str) -> list[str]:
    return [value[:-1] + digit for digit in "0123456789" if digit != value[-1]]


# --- Luhn --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "check"),
    [("121212121", 2), ("811218987", 6), ("8100001", 0), ("232100001", 6), ("0", 0), ("1", 8)],
)
def test_luhn_check_digit_weights_two_one_from_the_right(payload: str, check: int) -> None:
    assert luhn_check_digit(payload) == check


@pytest.mark.parametrize("payload", ["", "12a4", "١٢٣"])
def test_luhn_check_digit_refuses_anything_but_ascii_digits(payload: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        luhn_check_digit(payload)


# --- personnummer ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", PERSONNUMMER_VALID)
def test_valid_personnummer_is_returned_unchanged(value: str) -> None:
    assert validate_personnummer(value) == value


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        # identifiers.md, and gvr.md likely rejections 1 and 2
        ("191212121213", "check digit (Luhn) does not match"),
        ("19121212-1212", f"{NOT_12_DIGITS}, got 13 characters"),
        ("1212121212", f"{NOT_12_DIGITS}, got 10 characters"),
        ("201513010191", "month must be 01–12"),
        ("202302291236", "birth date is not a real calendar date"),
        # the same date faults with a correct check digit: the date rule alone rejects them
        ("201513010197", "month must be 01–12"),
        ("202302291238", "birth date is not a real calendar date"),
        ("201501000199", "birth date is not a real calendar date"),
        ("1912121-1212", f"{NOT_12_DIGITS}, found a non-digit"),
        ("１９１２１２１２１２１２", f"{NOT_12_DIGITS}, found a non-digit"),
        ("197010632391", "day must be 01–31 (61–91 is a samordningsnummer)"),
    ],
)
def test_invalid_personnummer_names_the_rule_that_failed(value: str, rule: str) -> None:
    error = _rejects(validate_personnummer, value)
    assert (error.kind, error.rule) == ("personnummer", rule)
    assert str(error) == f"personnummer: {rule}"


@pytest.mark.parametrize("value", PERSONNUMMER_VALID)
def test_every_other_check_digit_is_rejected(value: str) -> None:
    for wrong in _other_check_digits(value):
        assert _rejects(validate_personnummer, wrong).rule == "check digit (Luhn) does not match"


# --- samordningsnummer -------------------------------------------------------------------------


@pytest.mark.parametrize("value", SAMORDNINGSNUMMER_VALID)
def test_valid_samordningsnummer_is_returned_unchanged(value: str) -> None:
    assert validate_samordningsnummer(value) == value
    for wrong in _other_check_digits(value):
        assert (
            _rejects(validate_samordningsnummer, wrong).rule == "check digit (Luhn) does not match"
        )


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("197010032391", "day must be 61–91"),  # gvr.md likely rejection 3
        ("201501610199", "check digit (Luhn) does not match"),
        ("197010032394", "day must be 61–91"),  # correct check digit: the day rule alone
        ("197010602391", "day must be 61–91"),
        ("197010922391", "day must be 61–91"),
        ("191212121212", "day must be 61–91"),
        ("202302891236", "birth date is not a real calendar date"),  # 29 Feb 2023 + 60
        ("19701063-2391", f"{NOT_12_DIGITS}, got 13 characters"),
    ],
)
def test_invalid_samordningsnummer_names_the_rule_that_failed(value: str, rule: str) -> None:
    error = _rejects(validate_samordningsnummer, value)
    assert (error.kind, error.rule) == ("samordningsnummer", rule)


# --- reserve numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["991981000010", "992003000429", "991965950321"])
def test_valid_region_stockholm_reserve_number(value: str) -> None:
    assert validate_reserve_sll(value) == value
    for wrong in _other_check_digits(value):
        assert "check digit" in _rejects(validate_reserve_sll, wrong).rule


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("991981000011", "check digit (Luhn over positions 5–11) does not match"),  # gvr.md 4
        # Luhn over positions 3–11 would accept this one (check 5); 5–11 wants 9
        ("992003000425", "check digit (Luhn over positions 5–11) does not match"),
        ("981981000010", "must start with 99"),
        ("99198100001", f"{NOT_12_DIGITS}, got 11 characters"),
    ],
)
def test_invalid_region_stockholm_reserve_number(value: str, rule: str) -> None:
    error = _rejects(validate_reserve_sll, value)
    assert (error.kind, error.rule) == ("reservnummer (Region Stockholm)", rule)


# Public vectors of the pinefox/personnummer test suite: an independent check of K=5, M=7, X=8.
@pytest.mark.parametrize("value", ["19561110K064", "20121212M714", "20121212X803"])
def test_valid_vastra_gotaland_reserve_number(value: str) -> None:
    assert validate_reserve_vgr(value) == value
    for wrong in _other_check_digits(value):
        assert _rejects(validate_reserve_vgr, wrong).rule == "check digit (Luhn) does not match"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("19561110K065", "check digit (Luhn) does not match"),
        ("19561110M064", "check digit (Luhn) does not match"),  # M counts 7, not K's 5
        ("19561110A064", "9th character must be K, M or X"),
        ("195611105064", "9th character must be K, M or X"),
        ("19561310K064", "month must be 01–12"),
        ("20230229K064", "birth date is not a real calendar date"),
        ("1956111OK064", "must be yyyymmdd + K, M or X + 3 digits"),
        ("561110-K064", "must be 12 characters without separator, got 11"),
    ],
)
def test_invalid_vastra_gotaland_reserve_number(value: str, rule: str) -> None:
    error = _rejects(validate_reserve_vgr, value)
    assert (error.kind, error.rule) == ("reservnummer (Västra Götaland)", rule)


@pytest.mark.parametrize(
    "value",
    [
        "22800101AB12",  # born 1980-01-01 (19 + 3), known sex
        "23000229XY37",  # born 2000-02-29 (20 + 3): a leap day
        "97991231ZZ20",  # born 1999-12-31 (19 + 78), the last series
        "00992045ABC3",  # unknown birth date (running number), unknown sex
    ],
)
def test_valid_national_reserve_id(value: str) -> None:
    assert validate_nrid(value) == value


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("19121212AB12", "XX must be 00 (unknown birth date) or 22–98 (birth century + 3…78)"),
        ("99121212AB12", "XX must be 00 (unknown birth date) or 22–98 (birth century + 3…78)"),
        ("22000229AB12", "birth date is not a real calendar date"),  # 1900 was no leap year
        ("22801301AB12", "month must be 01–12"),
        ("00991245AB12", "with XX=00 (unknown birth date) MM must be 20–99 and DD 40–59"),
        ("00992060AB12", "with XX=00 (unknown birth date) MM must be 20–99 and DD 40–59"),
    ]
    + [
        (f"22800101{letters}12", "must be 8 digits + 2 letters (A–Z except I, O, Q, V, W) + ")
        for letters in ("AI", "OB", "QA", "VA", "AW", "ab", "A1")
    ]
    + [
        ("22800101ABI2", "must be 8 digits + 2 letters (A–Z except I, O, Q, V, W) + "),
        ("22800101AB1X", "must be 8 digits + 2 letters (A–Z except I, O, Q, V, W) + "),
        ("22800101-AB12", "must be 12 characters without separator, got 13"),
    ],
)
def test_invalid_national_reserve_id(value: str, rule: str) -> None:
    error = _rejects(validate_nrid, value)
    assert error.kind == "NRID"
    assert error.rule.startswith(rule)


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        (PatientIdType.PNR, "191212121212"),
        (PatientIdType.SNR, "197010632391"),
        (PatientIdType.RESERVE_SLL, "991981000010"),
        (PatientIdType.RESERVE_VGR, "19561110K064"),
        (PatientIdType.NRID, "22800101AB12"),
    ],
)
def test_patient_id_is_validated_by_its_declared_type(id_type: PatientIdType, value: str) -> None:
    assert validate_patient_id(id_type, value) == value
    assert validate_patient_id(PatientIdType(str(id_type)), value) == value


@pytest.mark.parametrize(
    ("id_type", "value", "kind"),
    [
        (PatientIdType.PNR, "197010632391", "personnummer"),  # a samordningsnummer
        (PatientIdType.SNR, "191212121212", "samordningsnummer"),  # a personnummer
        (PatientIdType.PNR, "991981000010", "personnummer"),  # a reserve number
        (PatientIdType.RESERVE_SLL, "191212121212", "reservnummer (Region Stockholm)"),
    ],
)
def test_patient_id_of_another_type_is_rejected(
    id_type: PatientIdType, value: str, kind: str
) -> None:
    assert _rejects(lambda v: validate_patient_id(id_type, v), value).kind == kind


def test_unknown_patient_id_type_is_an_identifier_error() -> None:
    error = _rejects(lambda v: validate_patient_id("PASSPORT", v), "191212121212")  # type: ignore[arg-type]
    assert error.kind == "patient id"
    assert error.value == "19121212****"


# --- errors never carry a personal identity number ---------------------------------------------


@pytest.mark.parametrize(
    ("validate", "value", "masked"),
    [
        (validate_personnummer, "191212121213", "19121212****"),
        (validate_personnummer, "19121212-1212", "19121212-****"),
        (validate_personnummer, "1212121212", "121212****"),
        (validate_samordningsnummer, "201501610199", "20150161****"),
        (validate_reserve_sll, "991981000011", "99198100****"),
        (validate_reserve_vgr, "19561110K065", "19561110****"),
        (validate_nrid, "19121212AB12", "19121212****"),
        (validate_organisationsnummer, "1212121212", "121212****"),
        (validate_hsa_id, "SE1912121212-1", "SE191212****-1"),
    ],
)
def test_error_masks_the_value_and_keeps_it_out_of_the_message(
    validate: Callable[[str], object], value: str, masked: str
) -> None:
    # Given an invalid identifier, When it is validated
    error = _rejects(validate, value)
    # Then neither the message nor the repr nor the pickled form holds the value
    assert error.value == masked
    assert value not in str(error)
    assert value not in repr(error)
    assert value.encode() not in pickle.dumps(error)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own object, just pickled
    assert (copy.kind, copy.rule, copy.value, str(copy)) == (
        error.kind,
        error.rule,
        error.value,
        str(error),
    )


def test_identifier_error_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifierError, ValueError)


# --- HSA-id and organisationsnummer ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "SE2321000016-14L1",
        "SE2321000131-E000000011111",
        "SE165565594230-1000",  # Inera's national HSA-id: organisation number with "16" prefix
        "SE2321000016-" + "a" * 18,  # 31 characters
    ],
)
def test_valid_hsa_id(value: str) -> None:
    assert validate_hsa_id(value) == value


HSA_FORMAT = "must be 'SE' + 10-digit organisation number + '-' + A–Z, a–z or 0–9"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("SE2321000016-" + "a" * 19, "must be at most 31 characters, got 32"),
        ("SE2321000016-", HSA_FORMAT),
        ("SE2321000016-14L1@", HSA_FORMAT),
        ("SE2321000016-14Lå", HSA_FORMAT),
        ("SE2321000016-14 L1", HSA_FORMAT),
        ("se2321000016-14L1", HSA_FORMAT),
        ("SE232100001-14L1", HSA_FORMAT),
        ("SE2321000016 14L1", HSA_FORMAT),
        ("2321000016-14L1", HSA_FORMAT),
        ("SE2321000017-14L1", "organisation number: check digit (Luhn) does not match"),
        ("SE2301000010-14L1", "organisation number: third digit must be 2 or higher"),
    ],
)
def test_invalid_hsa_id(value: str, rule: str) -> None:
    error = _rejects(validate_hsa_id, value)
    assert (error.kind, error.rule) == ("HSA-id", rule)


@pytest.mark.parametrize("value", ["2321000016", "5566778899", "2021005505"])
def test_valid_organisationsnummer(value: str) -> None:
    assert validate_organisationsnummer(value) == value
    for wrong in _other_check_digits(value):
        assert (
            _rejects(validate_organisationsnummer, wrong).rule
            == "check digit (Luhn) does not match"
        )


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2321000017", "check digit (Luhn) does not match"),
        ("1212121212", "third digit must be 2 or higher"),  # a personnummer, check digit right
        ("2301000010", "third digit must be 2 or higher"),
        ("232100-0016", "must be 10 digits without separator, got 11 characters"),
        ("232100001", "must be 10 digits without separator, got 9 characters"),
        ("232100001A", "must be 10 digits without separator, found a non-digit"),
    ],
)
def test_invalid_organisationsnummer(value: str, rule: str) -> None:
    error = _rejects(validate_organisationsnummer, value)
    assert (error.kind, error.rule) == ("organisationsnummer", rule)


# --- kombika -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010 046 M30", Kombika(inr="11010", klin="046", avd="M30")),
        ("11010046M30", Kombika(inr="11010", klin="046", avd="M30")),
        ("19108011M04", Kombika(inr="19108", klin="011", avd="M04")),
        ("19108 011M04", Kombika(inr="19108", klin="011", avd="M04")),
        ("110100461", Kombika(inr="11010", klin="046", avd="1")),
        ("11010046AB", Kombika(inr="11010", klin="046", avd="AB")),
    ],
)
def test_kombika_is_parsed_and_normalised(value: str, expected: Kombika) -> None:
    kombika = parse_kombika(value)
    assert kombika == expected
    assert str(kombika) == value.replace(" ", "")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("302163110022A", "avdelning must be 1–3 alphanumerics"),  # gvr.md likely rejection 6
        ("11010046M300", "avdelning must be 1–3 alphanumerics"),
        ("11010 046 M300", "avdelning must be 1–3 alphanumerics"),
        ("11010 046", "avdelning must be 1–3 alphanumerics"),
        ("11010 046 M3Ö", "avdelning must be 1–3 alphanumerics"),
        ("11010 046 M30 ", "avdelning must be 1–3 alphanumerics"),
        ("11010 046 M-3", "avdelning must be 1–3 alphanumerics"),
        ("1101A046M30", "inrättning must be 5 digits"),
        ("1101", "inrättning must be 5 digits"),
        ("11010 04 M30", "klinik must be 3 digits"),
        ("11010-046-M30", "klinik must be 3 digits"),
        ("11010  046 M30", "klinik must be 3 digits"),
    ],
)
def test_invalid_kombika(value: str, rule: str) -> None:
    error = _rejects(parse_kombika, value)
    assert (error.kind, error.rule) == ("kombika", rule)


# --- codes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["J069", "I050", "B341A", "U071", "S7200", "Z538", "J06"])
def test_valid_icd10se(value: str) -> None:
    assert validate_icd10se(value) == value


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("j06.9", "must be written without the dot (J069, not J06.9)"),  # gvr.md 7
        ("J06.9", "must be written without the dot (J069, not J06.9)"),
        ("j069", "must be upper case"),
        ("J6", "must be a letter + 2 digits + up to 3 digits or letters"),
        ("0J69", "must be a letter + 2 digits + up to 3 digits or letters"),
        ("JJ69", "must be a letter + 2 digits + up to 3 digits or letters"),
        ("J069ABC", "must be a letter + 2 digits + up to 3 digits or letters"),
        ("J06 9", "must be a letter + 2 digits + up to 3 digits or letters"),
    ],
)
def test_invalid_icd10se(value: str, rule: str) -> None:
    error = _rejects(validate_icd10se, value)
    assert (error.kind, error.rule) == ("ICD-10-SE", rule)


@pytest.mark.parametrize("value", ["NHP09", "AQ014", "ZXA10", "DV036"])
def test_valid_kva(value: str) -> None:
    assert validate_kva(value) == value


@pytest.mark.parametrize("value", ["AQ14", "nhp09", "NHP009", "A0014", "NH09", "AQ0144", "ÅQ014"])
def test_invalid_kva(value: str) -> None:
    error = _rejects(validate_kva, value)
    assert error.kind == "KVÅ"
    assert error.rule == "must be 3 letters + 2 digits (NHP09) or 2 letters + 3 digits (AQ014)"


@pytest.mark.parametrize("value", ["A01AB13", "J07BX03", "A", "A01", "A01A", "A01AB", "V03AB"])
def test_valid_atc_at_every_level(value: str) -> None:
    assert validate_atc(value) == value


@pytest.mark.parametrize("value", ["A01AB1", "A01AB133", "E01AB13", "a01ab13", "A1", "A01A1", ""])
def test_invalid_atc(value: str) -> None:
    assert _rejects(validate_atc, value).kind == "ATC"


@pytest.mark.parametrize("value", ["1", "20010101000027", "123456"])
def test_valid_npl_id(value: str) -> None:
    assert validate_npl_id(value) == value


@pytest.mark.parametrize("value", ["", "123456789012345", "2001010100002A", " 123", "-1"])
def test_invalid_npl_id(value: str) -> None:
    error = _rejects(validate_npl_id, value)
    assert (error.kind, error.rule) == ("NPL-id", "must be 1–14 digits")


@pytest.mark.parametrize("value", ["", "AB1234", "x" * 80])
def test_batch_number_of_0_to_80_characters_is_valid(value: str) -> None:
    assert validate_batch_number(value) == value


def test_batch_number_over_80_characters_is_rejected() -> None:
    error = _rejects(validate_batch_number, "x" * 81)
    assert (error.kind, error.rule) == ("batch number", "must be at most 80 characters, got 81")


# --- mask_personal_ids -------------------------------------------------------------------------


def _display_forms(value: str) -> list[tuple[str, str]]:
    """Every written form of a 12-digit number, each with its expected mask."""
    date8, date6, tail = value[:8], value[2:8], value[8:]
    return [
        (value, f"{date8}****"),
        (f"{date8}-{tail}", f"{date8}-****"),
        (f"{date6}-{tail}", f"{date6}-****"),
        (f"{date6}+{tail}", f"{date6}+****"),
        (f"{date6}{tail}", f"{date6}****"),
    ]


ALL_FORMS = [
    form for value in PERSONNUMMER_VALID + SAMORDNINGSNUMMER_VALID for form in _display_forms(value)
]
SENTENCES = [
    "§",
    "Patient § checked in at 11010 046 M30.",
    "pnr=§ kombika=19108011M04",
    '{"patientId": "§", "hsaId": "SE2321000016-14L1"}',
    "(§)",
    "ids: §,§; done",
    "patient_§_x",
]


@pytest.mark.parametrize(("written", "masked"), ALL_FORMS)
@pytest.mark.parametrize("sentence", SENTENCES)
def test_mask_hides_every_valid_vector_in_a_sentence(
    written: str, masked: str, sentence: str
) -> None:
    # Given a sentence holding a personal identity number in one of its written forms
    text = sentence.replace("§", written)
    # When it is masked
    result = mask_personal_ids(text)
    # Then the number is replaced by its birth date and stars, and nothing else changes
    assert result == sentence.replace("§", masked)
    assert written not in result
    assert mask_personal_ids(result) == result


@pytest.mark.parametrize(
    "text",
    [
        "inrättning 11010, klinik 046",
        "2026-11-21T10:00:00",
        "2026-11-21T10:00:00.123456+00:00",
        "offset=123456 partition=3",
        "organisationsnummer 2321000016 and 5566778899",
        "hsa SE2321000016-14L1 SE165565594230-1000",
        "kombika 19108011M04 302163110022A",
        "epoch ms 1732183200000, epoch s 1790000000",
        "npl 20010101000027",
        "compact timestamp 20261121100000",
        "gtin 7350012121212",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "phone 070-123 45 67",
        "reserve 991981000010",
        "month 13: 201513010191",
        "",
    ],
)
def test_mask_leaves_text_without_personal_ids_alone(text: str) -> None:
    assert mask_personal_ids(text) == text


def test_mask_property_random_sentences() -> None:
    # Given random text with numbers that cannot be personal ids, and ids in random forms
    rng = random.Random(20261121)
    noise = ["visit", "gvr.visit.v1", "11010", "046", "M30", "2026-11-21T10:00", "3", "AB12", "Ö"]
    for _ in range(300):
        plain, expected = [], []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.3:
                written, masked = rng.choice(ALL_FORMS)
                plain.append(written)
                expected.append(masked)
            else:
                word = rng.choice(noise)
                plain.append(word)
                expected.append(word)
        separator = rng.choice([" ", ", ", "; ", " | ", "\n"])
        # When the text is masked
        result = mask_personal_ids(separator.join(plain))
        # Then exactly the ids are masked
        assert result == separator.join(expected)
        assert not re.search(r"(?<![0-9])[0-9]{6}(?:[0-9]{2})?[-+]?[0-9]{4}(?![0-9])", result)
