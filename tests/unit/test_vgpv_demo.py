"""The VGPV demo: VGR visits of last month at KIV's Vårdval units, with the mistakes it promises."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime

from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.kiv.directory import KivDirectory
from services.vgpv.dev import demo_month, visits
from shared.contracts import CareContactEvent, ContractViolationError, OutpatientVisit, parse_event
from shared.schedule import Period

UNITS = 2000
SEED = 1


def test_demo_visits_fall_in_the_month_at_vgpvs_units() -> None:
    kiv = {u["hsaIdentity"]: u for u in KivDirectory(UNITS, SEED).iter_units()}
    month = Period(2027, 1)
    labels: Counter[str] = Counter()
    for label, raw in itertools.islice(
        visits(SEED, HsaDirectory(UNITS, SEED).iter_units(), month), 400
    ):
        labels[label] += 1
        if isinstance(raw, bytes):
            continue
        try:
            event = parse_event(json.dumps(raw).encode())
        except ContractViolationError:
            raise AssertionError(label) from None
        assert isinstance(event, CareContactEvent)
        visit = event.payload
        assert isinstance(visit, OutpatientVisit)
        assert visit.unit_hsa_id is not None
        assert kiv[visit.unit_hsa_id]["vgrVardValOmrade"] in ("primarvard", "rehab")
        assert Period.of(visit.day) == month
    assert {"visit", "correction", "cancellation", "no profession", "unknown profession"} <= set(
        labels
    )
    assert labels["not JSON"] > 0


def test_the_demo_month_is_last_month_in_swedish_time() -> None:
    assert demo_month(datetime(2026, 12, 5, 13, 0, tzinfo=UTC)) == Period(2026, 11)
    assert demo_month(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == Period(2026, 12)  # 1 Jan 00:30
