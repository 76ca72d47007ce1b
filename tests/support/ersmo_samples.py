"""Region Stockholm's ERSMO sample records (our own fixtures carrying their facts) and what the
register answers to each: the table the unit and the integration tests both hold them to."""

from __future__ import annotations

from datetime import date
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ersmo"
UPSTREAM = "SLL-RTP/sll-rtjp.gvradapter"
UPSTREAM_FOLDER = "reimbursementadapter/getadmincareevent-core/src/test/resources/test-files/gvr/"
UPSTREAM_FILES = (
    "ERSMO_2013-09-08T080000.000+0000.xml",
    "ERSMO_2013-09-09T080000.000+0000.xml",
    "ERSMO_2014-01-01T090000.000+0000.xml",
    "ERSMO_2014-02-01T080000.000+0000.xml",
    "ERSMO_2014-02-02T080000.000+0000.xml",
    "ERSMO_2014-02-03T080000.000+0000.xml",
    "ERSMO_2014-02-04T080000.000+0000.xml",
    "ERSMO_2014-02-05T080000.000+0000.xml",
    "ERSMO_2014-02-06T080000.000+0000.xml",
    "ERSMO_2014-04-04T080000.000+0000.xml",
    "ERSMO_2014-07-01T080000.000+0000.xml",
    "ERSMO_2014-07-15T080000.000+0000.xml",
    "ERSMO_2014-07-15T090000.000+0000.xml",
    "ERSMO_2014-08-01T080000.000+0000.xml",
    "ERSMO_2014-09-04T080000.000+0000.xml",
    "ERSMO_2014-09-10T080000.000+0000.xml",
    "ERSMO_2014-10-12T080000.000+0000.xml",
    "ERSMO_2014-10-13T080000.000+0000.xml",
    "ERSMO_2014-10-14T080000.000+0000.xml",
    "Vardansvar_2014-01-01T090000.xml",
    "Vardkontakt_2014-02-01T100000.xml",
    "Vardkontakt_2014-02-02T100000.xml",
    "Vardkontakt_2014-02-03T100000.xml",
    "Vardkontakt_2014-02-04T100000.xml",
    "Vardkontakt_2014-02-05T100000.xml",
    "Vardkontakt_2014-02-06T100000.xml",
    "Vardkontakt_2014-04-04T100000.xml",
)
"""Every sample file the upstream folder has held (`UPSTREAM`, `UPSTREAM_FOLDER`, all branches):
the Vardansvar_/Vardkontakt_ names are the files' names until 2014-06-23, when they were renamed
to ERSMO_… (same content; ERSMO_2014-01-01 and ERSMO_2014-02-02 changed later), and
ERSMO_2014-09-04 lives on branch 234-atc-and-dates only. Each fixture's first comment names the
upstream file(s) whose facts it carries, in their newest version."""

OPEN_SINCE = date(2009, 1, 1)  # the four sample units' validity: before every sample date

SAMPLE_KOMBIKAS: dict[str, tuple[date, date | None]] = {
    "30216311002": (OPEN_SINCE, None),
    "17101011M04": (OPEN_SINCE, None),
    "10011101M03": (OPEN_SINCE, None),
    "98156021M02": (OPEN_SINCE, None),
    "70471000000": (date(2001, 9, 1), None),
    "20130101999": (date(2011, 9, 1), date(2013, 1, 1)),
}
"""The samples' units made known to the catalog and GVR: kombika → (first open day, last open day
or None = still open), both inclusive as GVR's registry reads them (the catalog's `valid_to` is the
day after the last). The first four are open since 2009. 70471000000 and 20130101999 carry their
periods in upstream's test code server, `AVD-REL-test.xml` in `UPSTREAM`'s `…/test-files/` (not a
sample file; newest version, commit 1c4da44): 70471000000 begindate 2001-09-01T00:00:01,
expirationdate 2099-12-31T23:59:59 (the code server's "no end"), 20130101999 begindate
2011-09-01T00:00:01, expirationdate 2013-01-01T23:59:59. 12345678901 stays unknown: upstream's
"bad kombika", a unit that does not exist."""

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
    ("ersmo-2014-09-04.xml", "Duplicerade_OrdnNr"): "refused",
    ("ersmo-2014-09-10.xml", "12345678901234567890"): "accepted",
    ("ersmo-2014-10-12.xml", "12345678901234567890"): "closed_unit 20130101999",
    ("ersmo-2014-10-13.xml", "12345678901234567890"): "accepted",
    ("ersmo-2014-10-14.xml", "12345678901234567890"): "closed_unit 20130101999",
}
"""(fixture, ERSMO id) → the first event's outcome; later events of a failed record follow it
(blocked_by_earlier). Every record not listed carries J250, which is not an ICD-10 code."""
J250 = "register_rejected GVR-KOD-OKAND J250"


def expected(fixture: str, ersmo_id: str) -> str:
    return EXPECTED.get((fixture, ersmo_id), J250)
