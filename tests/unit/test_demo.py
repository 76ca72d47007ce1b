"""The demo stream: realistic events that the contract takes, and the mistakes it promises."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import date

from services.gvr.dev import care_contacts
from services.nvr.dev import vaccinations
from services.nvr.profile import NvrProfile
from services.nvr.rules import ReportedVaccination, RuleContext, UnitOwner, VaccineFacts, check
from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.nvr.catalog import VaccineList
from shared.contracts import ContractViolationError, VaccinationEvent, parse_event

DIRECTORY = HsaDirectory(2000, seed=1)
VACCINES = VaccineList()  # the NVR sandbox's default list


def _vaccine(npl_id: str) -> VaccineFacts | None:
    return VACCINES.facts(npl_id)


def _owner(hsa_id: str) -> UnitOwner | None:
    unit = DIRECTORY.get(hsa_id)
    return UnitOwner(unit["careGiver"], unit["careGiverOrgNo"]) if unit else None


def test_good_vaccinations_pass_nvr_rules_and_the_bad_ones_break_the_rule_named() -> None:
    context = RuleContext(_vaccine, _owner, date(2026, 11, 21), NvrProfile())
    broken: Counter[str] = Counter()
    for label, raw in itertools.islice(vaccinations(1, DIRECTORY.iter_units()), 400):
        event = parse_event(json.dumps(raw).encode())
        assert isinstance(event, VaccinationEvent)
        reported = ReportedVaccination.from_event(
            event.payload, event.source_system, event.record_id, NvrProfile()
        )
        rules = [v.rule for v in check(reported, context)]
        if label.startswith("vaccination"):
            assert rules == [], (label, rules)
        else:
            assert rules, label
            broken[label] += 1
    assert set(broken) == {
        "batch not of the vaccine",
        "date in the future",
        "vaccine not on the list",
    }


def test_care_contacts_are_contract_valid_except_the_invalid_ones() -> None:
    labels: Counter[str] = Counter()
    for label, raw in itertools.islice(care_contacts(1, DIRECTORY.iter_units()), 400):
        labels[label] += 1
        data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        try:
            parse_event(data)
        except ContractViolationError:
            assert label in ("invalid personnummer", "not JSON"), label
    assert labels["visit"] > 250


def test_the_demo_interleaves_every_worker_with_a_demo_on_its_input_topic() -> None:
    from services.devstack.demo import rounds
    from services.registry import REGISTRY
    from shared.spec import DemoContext

    topics = [
        topic
        for topic, _ in itertools.islice(rounds(REGISTRY, DemoContext(1, DIRECTORY.iter_units)), 12)
    ]

    # a round: GVR's two care contacts, NVR's vaccination, VGPV's two VGR visits, CVR's entry
    contacts, vaccinations, waits = "care.contacts.v1", "care.vaccinations.v1", "care.waits.v1"
    assert topics == [contacts, contacts, vaccinations, contacts, contacts, waits] * 2
