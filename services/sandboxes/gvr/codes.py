"""The sandbox's code server: small GVR code tables whose codes are valid between two dates."""

# The en dash of date ranges is meant: messages quote the handbook's style.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

# The real tables live on Region Stockholm's code server and are not in our sources. The codes
# named in gvr.md (J069, I050, B341A, NHP09, AQ014, A01AB13, akut J/N, a tariff valid until
# 2018-12-31) are here; the other codes and every text are the sandbox's own (inferred).


class CodeState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    NOT_VALID_ON_DATE = "not_valid_on_date"


@dataclass(frozen=True)
class Code:
    code: str
    text: str
    valid_from: date | None = None
    valid_to: date | None = None  # inclusive; None = open

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def period(self) -> str:
        start = self.valid_from.isoformat() if self.valid_from else "…"
        end = self.valid_to.isoformat() if self.valid_to else "…"
        return f"{start}–{end}"


class CodeTable:
    """One code table (BTYP, TAXA …): `state(code, day)` says whether `code` is usable on `day`."""

    def __init__(self, name: str, description: str, codes: list[Code]) -> None:
        self.name = name
        self.description = description
        self._codes = {code.code: code for code in codes}

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def codes(self) -> list[Code]:
        return list(self._codes.values())

    def get(self, code: str) -> Code | None:
        return self._codes.get(code)

    def state(self, code: str, day: date | None) -> CodeState:
        """VALID, UNKNOWN, or NOT_VALID_ON_DATE; with no `day` only existence is checked."""
        known = self._codes.get(code)
        if known is None:
            return CodeState.UNKNOWN
        if day is not None and not known.valid_on(day):
            return CodeState.NOT_VALID_ON_DATE
        return CodeState.VALID


def _d(text: str) -> date:
    return date.fromisoformat(text)


_OPEN_2010 = _d("2010-01-01")

BTYP = CodeTable(
    "BTYP",
    "besökstyp",
    [
        Code("1", "Besök på mottagning", _OPEN_2010),
        Code("2", "Hembesök", _OPEN_2010),
        Code("3", "Distanskontakt (video)", _d("2016-01-01")),
        Code("4", "Telefonkontakt", _OPEN_2010),
        Code("5", "Gruppbesök", _OPEN_2010),
    ],
)

VDG = CodeTable(
    "VDG",
    "yrkeskategori",
    [
        # Region Stockholm's two-digit codes, as ERSMO files carry them (gvr.md: 01 physician,
        # 02 nurse); the rest of that table is not in our sources.
        Code("01", "Läkare", _OPEN_2010),
        Code("02", "Sjuksköterska", _OPEN_2010),
        Code("LK", "Läkare", _OPEN_2010),
        Code("SJ", "Sjuksköterska", _OPEN_2010),
        Code("AS", "Undersköterska", _OPEN_2010),
        Code("FT", "Fysioterapeut", _OPEN_2010),
        Code("KU", "Kurator", _OPEN_2010),
        Code("PS", "Psykolog", _OPEN_2010),
        Code("AT", "Arbetsterapeut", _OPEN_2010),
        Code("DI", "Dietist", _OPEN_2010),
        Code("LO", "Logoped", _OPEN_2010),
        Code("BM", "Barnmorska", _OPEN_2010),
    ],
)

AKUT = CodeTable(
    "AKUT",
    "akut",
    [
        Code("J", "Ja, akut"),
        Code("N", "Nej, planerad"),
        Code("1", "Akut (ERSMO)"),
        Code("2", "Planerad (ERSMO)"),
    ],
)

TAXA = CodeTable(
    "TAXA",
    "taxa",
    [
        Code("A101", "Läkarbesök, normaltaxa", _OPEN_2010),
        Code("A102", "Läkarbesök, avgiftsfri", _OPEN_2010),
        Code("B201", "Sjukvårdande behandling", _OPEN_2010),
        Code("T2018", "Övergångstaxa 2018", _d("2018-01-01"), _d("2018-12-31")),
        # ERSMO's Patientavgift of Avgiftsklass 006 (TAXA), as the sample files carry it
        Code("12", "Patientavgift 12 (ERSMO-exempel)", _OPEN_2010),
    ],
)

IKOD = CodeTable(
    "IKOD",
    "inskrivningskod",
    [
        Code("1", "Från hemmet", _OPEN_2010),
        Code("2", "Från annan klinik, samma sjukhus", _OPEN_2010),
        Code("3", "Från annat sjukhus", _OPEN_2010),
        Code("4", "Från särskilt boende", _OPEN_2010),
    ],
)

UKOD = CodeTable(
    "UKOD",
    "utskrivningskod",
    [
        Code("1", "Till hemmet", _OPEN_2010),
        Code("2", "Till annan klinik, samma sjukhus", _OPEN_2010),
        Code("3", "Till annat sjukhus", _OPEN_2010),
        Code("4", "Till särskilt boende", _OPEN_2010),
        Code("5", "Avliden", _OPEN_2010),
    ],
)

ICD10SE = CodeTable(
    "ICD-10-SE",
    "diagnos",
    [
        Code("J069", "Akut övre luftvägsinfektion, ospecificerad", _d("1997-01-01")),
        Code("I050", "Mitralisstenos", _d("1997-01-01")),
        Code("B341A", "Enterovirusinfektion, ospecificerad (svensk tilläggskod)", _d("1997-01-01")),
        Code("J189", "Pneumoni, ospecificerad", _d("1997-01-01")),
        Code("I219", "Akut hjärtinfarkt, ospecificerad", _d("1997-01-01")),
        Code("S7200", "Collumfraktur, sluten", _d("1997-01-01")),
        Code("Z000", "Allmän medicinsk undersökning", _d("1997-01-01")),
        Code("E119", "Typ 2-diabetes utan komplikationer", _d("1997-01-01")),
        Code("I109", "Essentiell hypertoni", _d("1997-01-01")),
        Code("J459", "Astma, ospecificerad", _d("1997-01-01")),
        Code("M545", "Lumbago", _d("1997-01-01")),
        Code("U071", "covid-19, virus identifierat", _d("2020-02-01")),
        # From ERSMO's sample files. Their third code, J250, is not in ICD-10 (no category J25
        # exists): it stays out, and GVR answers GVR-KOD-OKAND for it, as the register would.
        Code(
            "K570", "Divertikelsjukdom i tunntarmen med perforation och abscess", _d("1997-01-01")
        ),
    ],
)

KVA = CodeTable(
    "KVÅ",
    "åtgärd",
    [
        Code("NHP09", "Sandboxåtgärd NHP09", _OPEN_2010),
        Code("AQ014", "Sandboxåtgärd AQ014", _OPEN_2010),
        Code("TNF00", "Sandboxåtgärd TNF00", _OPEN_2010),
        Code("XS100", "Sandboxåtgärd XS100", _OPEN_2010),
        Code("DV030", "Sandboxåtgärd DV030", _OPEN_2010),
        Code("AF021", "Sandboxåtgärd AF021", _OPEN_2010),
        Code("PE009", "Åtgärd PE009 (ur ERSMO:s exempelfiler)", _OPEN_2010),
    ],
)

ATC = CodeTable(
    "ATC",
    "läkemedel",
    [
        Code("J01CE02", "Fenoximetylpenicillin", _OPEN_2010),
        Code("N02BE01", "Paracetamol", _OPEN_2010),
        Code("A01AB13", "Tetracyklin", _OPEN_2010),
        Code("B01AC06", "Acetylsalicylsyra", _OPEN_2010),
        Code("C07AB02", "Metoprolol", _OPEN_2010),
        Code("R03AC02", "Salbutamol", _OPEN_2010),
        Code("H02AB06", "Prednisolon", _OPEN_2010),
    ],
)

TILLSTAND = CodeTable(
    "TILLSTAND",
    "tillstånd (ASA-klass, ERSMO klass 010)",
    [Code(f"ASA{n}", f"ASA-klass {n}", _OPEN_2010) for n in range(1, 7)],
)

KONTAKTKATEGORI = CodeTable(
    "KONTAKTKATEGORI",
    "kontaktkategori",
    [
        Code("OPPENVARD", "Öppenvårdskontakt"),
        Code("SLUTENVARD", "Slutenvårdskontakt"),
        Code("REHABKOORDINATOR", "Kontakt med rehabkoordinator"),
    ],
)

TABLES: dict[str, CodeTable] = {
    table.name: table for table in (BTYP, VDG, AKUT, TAXA, IKOD, UKOD, ICD10SE, KVA, ATC, TILLSTAND)
}
