"""Region Stockholm's ERSMO sample records (our own fixtures carrying their facts) and what the
register answers to each: the table the unit and the integration tests both hold them to."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ersmo"
SAMPLE_KOMBIKAS = ("30216311002", "17101011M04", "10011101M03", "98156021M02")
"""The samples' units made known to the catalog and GVR; 12345678901, 70471000000 and
20130101999 stay unknown (the samples use them as units that do not exist)."""

EXPECTED: dict[tuple[str, str], str] = {
    ("ersmo-2013-09-08.xml", "12345678901234567890"): "register_rejected GVR-DATUM",
    ("ersmo-2013-09-09.xml", "12345678901234567890"): "accepted",
    ("ersmo-2014-01-01-vardansvar.xml", "191212121212_98156021M02_20090129"): "accepted",
    ("ersmo-2014-07-15-a.xml", "111"): "invalid_event payload.patient.id",
    ("ersmo-2014-07-15-a.xml", "444"): "accepted",
    ("ersmo-2014-07-15-a.xml", "777"): "unknown_unit 12345678901",
    ("ersmo-2014-07-15-a.xml", "888"): "register_duplicate",
    ("ersmo-2014-07-15-a.xml", "999"): "unknown_unit 12345678901",
    ("ersmo-2014-07-15-b.xml", "999"): "accepted",
    ("ersmo-2014-08-01.xml", "12345678901234567890"): "accepted",
    ("ersmo-2014-09-04.xml", "Duplicate_OrdnNr"): "refused",
    ("ersmo-2014-09-10.xml", "12345678901234567890"): "unknown_unit 70471000000",
    ("ersmo-2014-10-12.xml", "12345678901234567890"): "unknown_unit 20130101999",
    ("ersmo-2014-10-13.xml", "12345678901234567890"): "accepted",
    ("ersmo-2014-10-14.xml", "12345678901234567890"): "unknown_unit 70471000000",
}
"""(fixture, ERSMO id) → the first event's outcome; later events of a failed record follow it
(blocked_by_earlier). Every record not listed carries J250, which is not an ICD-10 code."""
J250 = "register_rejected GVR-KOD-OKAND J250"


def expected(fixture: str, ersmo_id: str) -> str:
    return EXPECTED.get((fixture, ersmo_id), J250)
