"""HSA-ids of generated units: unit number ↔ HSA-id, a bijection that depends on the seed."""

from __future__ import annotations

from services.sandboxes.hsa.vocabulary import REGIONS, Region

ID_SPACE = 2**24  # unit numbers are scrambled bijectively in [0, 2**24) into HSA-id suffixes
_MULTIPLIER = 0x9E3779  # odd, hence invertible modulo 2**24
_INVERSE = pow(_MULTIPLIER, -1, ID_SPACE)
_DIGITS = "0123456789"
_BASE36 = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Suffix shapes per directory owner; none can equal the region's own care-giver id
# (SE2321000016-1000, SE2321000131-E000000000001, SE2321000255-O00001):
#   Region Stockholm   SE2321000016-<5 base-36 characters>   SE2321000016-4L1F2
#   Västra Götaland    SE2321000131-E<12 digits>             SE2321000131-E100004172215
#   Region Skåne       SE2321000255-O<8 digits>              SE2321000255-O14172215


def encode(number: int, region: Region, offset: int) -> str:
    """HSA-id of unit `number` (0 ≤ number < 2**24) in `region`'s directory."""
    x = (number * _MULTIPLIER + offset) % ID_SPACE
    if region.county_code == "01":
        suffix = _base36(x + 36**4)  # always 5 characters
    elif region.county_code == "14":
        suffix = f"E{10**11 + x:012d}"
    else:
        suffix = f"O{10**7 + x}"
    return f"SE{region.org_no}-{suffix}"


def decode(hsa_id: str, offset: int) -> tuple[int, Region] | None:
    """(unit number, region) of an HSA-id `encode` could have made, else None."""
    prefix, _, suffix = hsa_id.partition("-")
    region = next((r for r in REGIONS if prefix == f"SE{r.org_no}"), None)
    x = _decode_suffix(region.county_code, suffix) if region else None
    if region is None or x is None or not 0 <= x < ID_SPACE:
        return None
    return ((x - offset) * _INVERSE) % ID_SPACE, region


def _base36(number: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
    return digits or "0"


def _decode_suffix(county: str, suffix: str) -> int | None:
    if county == "01":
        if len(suffix) != 5 or any(c not in _BASE36 for c in suffix):
            return None
        return int(suffix, 36) - 36**4
    letter, width, base = ("E", 12, 10**11) if county == "14" else ("O", 8, 10**7)
    digits = suffix[1:]
    if not suffix.startswith(letter) or len(digits) != width or digits.strip(_DIGITS):
        return None
    return int(digits) - base
