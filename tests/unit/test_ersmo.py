"""ERSMOIndata → care.contact: the converter, the contract's new content, its GVR mapping, and
what the GVR sandbox's checks say to every record of the ERSMO sample fixtures."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.gvr.cli import gvr_app
from services.gvr.ersmo import convert
from services.gvr.mapping import GvrPaths, lookup_request, to_gvr_request
from services.gvr.units import event_day
from services.sandboxes.gvr.kombika import KombikaRegistry, KombikaState
from services.sandboxes.gvr.validation import RESOURCES
from shared.contracts import CARE_CONTACT_EXAMPLES, ContractViolationError, parse_event
from tests.support.ersmo_samples import FIXTURES, SAMPLE_KOMBIKAS, UPSTREAM_FILES, expected

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def converted(name: str, prefix: str = "") -> Any:
    return convert(
        (FIXTURES / name).read_bytes(), source_system="ersmo", now=NOW, record_prefix=prefix
    )


def record(body: str, attributes: str = "", unit: str = "30216311002") -> bytes:
    return (
        '<ERSMOIndata Källa="GVR" ID="1"><Ersättningshändelse ID="R1" Startdatum="2014-02-03" '
        f'Startverksamhet="{unit}" {attributes}><Patient ID="191212121212"/>'
        f"<Händelseklass>{body}</Händelseklass></Ersättningshändelse></ERSMOIndata>"
    ).encode()


# --- the converter ---------------------------------------------------------------------------


def test_a_full_record_carries_every_element_to_the_contract() -> None:
    # Given the full contact of 2014-02-02 (an ATC code among its diagnoses)
    events = converted("ersmo-2014-02-02.xml").events
    # Then one event carries every element, rows in order and links resolved
    payload = events[0]["payload"]
    assert payload["kind"] == "outpatient_visit"
    assert payload["visited_on"] == "2014-02-02"
    assert "visited_at" not in payload
    assert payload["patient"] == {
        "id_type": "PNR",
        "id": "191212121212",
        "lkf": "010203",
        "base_area": "1210151",
        "birth_date": "1912-12-12",
        "sex": "M",
    }
    assert (payload["visit_type"], payload["patient_fee"], payload["patient_fee_class"]) == (
        "1",
        "12",
        "006",
    )
    assert payload["professions"] == ["01", "02"]
    assert payload["diagnoses"] == ["I050", "J250", "K570"]
    assert payload["conditions"] == [
        {"code": "ASA6", "code_class": "010", "recorded_on": "2008-03-11", "diagnosis_index": 0}
    ]
    assert [p["code"] for p in payload["procedures"]] == ["NHP09", "PE009", "AQ014"]
    assert payload["procedures"][2]["diagnosis_index"] == 1
    assert payload["medications"] == [
        {"atc": "A01AB13"},
        {"atc": "A01AB13", "given_on": "2014-02-02", "condition_index": 0},
    ]
    assert payload["products"][1] == {"code": "K1235", "code_class": "005", "quantity": 2}
    assert payload["resource_groups"] == [{"code": "1234", "code_class": "012"}]
    assert (payload["stay_before"], payload["care_before"]) == ("1", "3")
    assert (payload["referring_kombika"], payload["referred_to_unit"]) == (
        "17101011M04",
        "10011101M03",
    )
    assert payload["commission"] == "1234"
    assert "end_unit" not in payload


def test_rows_follow_their_ordnnr_and_a_link_to_no_row_is_left_out_with_a_warning() -> None:
    result = converted("ersmo-2014-09-04.xml")
    by_id = {e["record_id"]: e["payload"] for e in result.events}
    assert by_id["OrdnNr_Diagnoser"]["diagnoses"][0] == "J250"  # OrdnNr 1
    assert [p["code"] for p in by_id["OrdnNr_Åtgärder"]["procedures"]] == [
        "NHP09",
        "PE009",
        "AQ014",
    ]
    every = by_id["OrdnNr_Samtliga"]  # professions, conditions, diagnoses, procedures all shuffled
    assert every["professions"] == ["01", "02"]
    assert [(c["code"], c["recorded_on"]) for c in every["conditions"]] == [
        ("ASA4", "2008-03-11"),
        ("ASA5", "2008-03-14"),
        ("ASA6", "2008-03-15"),
    ]
    assert every["diagnoses"] == ["I050", "K570", "J250"]
    assert [p["code"] for p in every["procedures"]] == ["PE009", "AQ014", "NHP09"]
    assert any("TillståndNr=90 names no row" in str(w) for w in result.warnings)
    assert [str(r) for r in result.refusals] == [
        "Duplicerade_OrdnNr: Diagnoser: OrdnNr 1 is given twice, so the order is unknown"
    ]


def test_an_id_sent_again_in_a_file_is_a_correction_and_ids_are_stable() -> None:
    result = converted("ersmo-2014-04-04.xml", prefix="f/")
    ops = [(e["record_id"], e["operation"], e["record_version"]) for e in result.events]
    assert ops[0] == ("f/STOR3.1", "create", 1)
    assert ops[5] == ("f/STOR3.1", "correct", 2)
    assert [e["event_id"] for e in result.events] == [
        e["event_id"] for e in converted("ersmo-2014-04-04.xml", prefix="f/").events
    ]


@pytest.mark.parametrize(
    ("body", "attributes", "reason"),
    [
        ('<Vårdkontakt Händelseform="Slutenvårdstillfälle"/>', "", "admission and discharge"),
        ('<Vårdkontakt Händelseform="Öppenvårdskontakt" Typ="1"/>', "", "table is unknown"),
        ('<Vårdkontakt Händelseform="Tandvård"/>', "", "unknown Händelseform"),
        ('<Vårdansvar Händelseform="Hemsjukvårdsansvar" Händelsetyp="Mycket"/>', "", "Mycket"),
        ("<Okänd/>", "", "unknown Händelseklass"),
    ],
)
def test_a_record_the_contract_cannot_carry_is_refused_by_name(
    body: str, attributes: str, reason: str
) -> None:
    result = convert(record(body, attributes), source_system="s", now=NOW)
    assert result.events == []
    assert result.refusals[0].record_id == "R1"
    assert reason in result.refusals[0].reason


def test_event_type_014_is_the_contact_type_makulerad_a_cancel_and_hsa_ids_units() -> None:
    body = '<Vårdkontakt Händelseform="Hemsjukvårdskontakt" Händelsetyp="014" Typ="7"/>'
    xml = record(body, 'Makulerad="true" Slutverksamhet="11010046M30"', unit="SE2321000016-14L1")
    event = convert(xml, source_system="s", now=NOW).events[0]
    payload = event["payload"]
    assert event["operation"] == "cancel"
    assert payload["contact_type"] == "7"
    assert "visit_type" not in payload
    assert payload["contact_form"] == "home_care"
    assert payload["unit_hsa_id"] == "SE2321000016-14L1"
    assert "kombika" not in payload
    assert payload["end_unit"] == "11010046M30"


def test_the_other_event_classes_become_their_kinds() -> None:
    for element, kind in (
        ("Vårdperiod", "care_period"),
        ("Undersökning", "examination"),
        ("Expediering", "dispatch"),
    ):
        event = convert(record(f"<{element}/>"), source_system="s", now=NOW).events[0]
        assert event["payload"]["kind"] == kind
        assert isinstance(parse_event(json.dumps(event).encode()), object)


def test_the_command_prints_events_and_names_refusals() -> None:
    runner = CliRunner()
    result = runner.invoke(gvr_app, ["import", "ersmo", str(FIXTURES / "ersmo-2014-09-04.xml")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 3
    assert "refused Duplicerade_OrdnNr" in result.stderr


def test_the_command_fails_only_when_nothing_converted(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(record('<Vårdkontakt Händelseform="Slutenvårdstillfälle"/>'))
    result = CliRunner().invoke(gvr_app, ["import", "ersmo", str(bad)])
    assert result.exit_code == 1
    assert "refused R1" in result.stderr


# --- every sample record, as the contract and GVR's checks judge it ---------------------------

PROVENANCE = re.compile(r"<!-- regbridge fixture: facts of upstream (.*?) -->", re.DOTALL)
UPSTREAM_NAME = re.compile(r"\b(?:ERSMO|Vardkontakt|Vardansvar)_[0-9T:.+-]+\.xml")


def test_every_upstream_sample_file_is_carried_by_a_fixture_and_every_fixture_names_one() -> None:
    named: dict[str, set[str]] = {}
    for path in sorted(FIXTURES.glob("*.xml")):
        text = path.read_text(encoding="utf-8")
        comment = PROVENANCE.search(text)
        assert comment is not None, f"{path.name}: no provenance comment"
        assert comment.start() == text.index("<!--"), f"{path.name}: not its first comment"
        names = set(UPSTREAM_NAME.findall(comment.group(1)))
        assert names, f"{path.name} names no upstream file"
        assert names <= set(UPSTREAM_FILES), f"{path.name}: {names - set(UPSTREAM_FILES)}"
        named[path.name] = names
    covered = set().union(*named.values())
    assert sorted(set(UPSTREAM_FILES) - covered) == []
    assert len(UPSTREAM_FILES) == len(set(UPSTREAM_FILES))


def judge_fixture(name: str) -> dict[str, list[str]]:
    """record id → the outcome of each of its events, judged in-process as the worker and the
    sandbox would (contract, the worker's unit check on the event's day, GVR's checks, GVR's
    key)."""
    registry = KombikaRegistry()
    for code, (first, last) in SAMPLE_KOMBIKAS.items():
        registry.add(code, first, last)
    resources = {resource.name: resource for resource in RESOURCES}
    result = converted(name)
    outcomes: dict[str, list[str]] = {note.record_id: ["refused"] for note in result.refusals}
    keys: dict[Any, str] = {}
    failed: set[str] = set()
    for event in result.events:
        rid = event["record_id"]
        found = outcomes.setdefault(rid, [])
        if rid in failed:
            found.append("blocked_by_earlier")
            continue
        try:
            parsed = parse_event(json.dumps(event).encode())
        except ContractViolationError as error:
            found.append(f"invalid_event {error.violations[0].path}")
            failed.add(rid)
            continue
        request = to_gvr_request(parsed, "GVR-0000001" if found else None, GvrPaths())
        assert request.json is not None
        # the worker's catalog check: a kombika names a unit only on the days of its period
        day = event_day(parsed)
        units = [request.json["enhet"], *(request.json.get(k) for k in ("remitterandeEnhet",))]
        states = [
            (registry.state("".join(u.values()), day), "".join(u.values())) for u in units if u
        ]
        refused = [(state, code) for state, code in states if state is not KombikaState.OPEN]
        if refused:
            state, code = refused[0]
            found.append(
                f"{'unknown_unit' if state is KombikaState.UNKNOWN else 'closed_unit'} {code}"
            )
            failed.add(rid)
            continue
        checked = resources[request.resource].validate(request.json, registry)
        if checked.errors:
            error = checked.errors[0]
            code = error.meddelande.split("'")[1] if "'" in error.meddelande else ""
            found.append(f"register_rejected {error.kod} {code}".strip())
            failed.add(rid)
        elif request.operation == "create" and keys.get(checked.key, rid) != rid:
            found.append("register_duplicate")
            failed.add(rid)
        else:
            keys[checked.key] = rid
            found.append("accepted")
    return outcomes


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.xml")))
def test_every_sample_record_meets_the_registers_answer(name: str) -> None:
    outcomes = judge_fixture(name)
    for rid, found in outcomes.items():
        first = expected(name, rid)
        assert found[0] == first, f"{name} {rid}: {found}"
        assert all(later in (first, "blocked_by_earlier") for later in found[1:]), found


# --- the contract's new content and its mapping -----------------------------------------------


def visit(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
    event["payload"].update(changes)
    return event


def rejected(event: dict[str, Any]) -> str:
    with pytest.raises(ContractViolationError) as caught:
        parse_event(json.dumps(event).encode())
    return str(caught.value)


def test_todays_producers_still_validate_unchanged() -> None:
    for example in CARE_CONTACT_EXAMPLES.values():
        parse_event(json.dumps(example).encode())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"diagnoses": ["J069"] * 51}, "payload.diagnoses"),
        ({"products": [{"code": "K1", "quantity": 1}] * 51}, "payload.products"),
        ({"products": [{"code": "K" * 11, "quantity": 1}]}, "payload.products.0.code"),
        ({"products": [{"code": "K1", "quantity": 0}]}, "payload.products.0.quantity"),
        ({"commission": "12345678"}, "payload.commission"),
        ({"belongs_to_contact": "x" * 34}, "payload.belongs_to_contact"),
        ({"care_before": "ab"}, "payload.care_before"),
        ({"akut": "3"}, "payload.akut"),
        ({"end_unit": "SE123"}, "payload.end_unit"),
        ({"resource_groups": [{"code": "12345"}]}, "payload.resource_groups.0.code"),
    ],
)
def test_every_new_list_and_string_is_bounded_and_named_when_broken(
    changes: dict[str, Any], field: str
) -> None:
    assert field in rejected(visit(**changes))


def test_unit_time_links_and_dates_are_checked_together() -> None:
    both = rejected(visit(unit_hsa_id="SE2321000016-14L1"))
    assert "exactly one" in both
    assert "exactly one" in rejected(visit(visited_on="2025-03-14"))
    assert "before" in rejected(visit(ends_on="2025-03-13"))
    dangling = [{"code": "ASA6", "recorded_on": "2025-03-01", "diagnosis_index": 5}]
    assert "diagnosis_index 5" in rejected(visit(conditions=dangling))
    linked = [{"code": "NHP09", "condition_index": 0, "performed_on": "2025-03-14"}]
    assert "condition_index 0" in rejected(visit(procedures=linked))


def test_a_date_only_visit_maps_without_a_time_and_keys_on_the_day() -> None:
    event = visit(visited_at=None, visited_on="2014-02-03", ends_on="2014-02-04")
    event["payload"].pop("visited_at")
    parsed = parse_event(json.dumps(event).encode())
    request = to_gvr_request(parsed, None, GvrPaths())
    assert request.json is not None
    assert request.json["besoksdatum"] == "2014-02-03"
    assert "besokstid" not in request.json
    assert request.json["slutdatum"] == "2014-02-04"
    assert request.key[1:3] == ("2014-02-03", "")
    assert ("besokstid", "") not in lookup_request(parsed, GvrPaths()).params


def test_new_content_maps_to_the_documented_gvr_fields() -> None:
    event = visit(
        professions=[],
        patient={
            **CARE_CONTACT_EXAMPLES["outpatient_visit"]["payload"]["patient"],
            "lkf": "010203",
        },
        conditions=[{"code": "ASA6", "code_class": "010", "recorded_on": "2025-03-01"}],
        procedures=[{"code": "NHP09", "condition_index": 0, "performed_on": "2025-03-14"}],
        medications=[{"atc": "A01AB13", "given_on": "2025-03-14", "diagnosis_index": 1}],
        products=[{"code": "K1234", "quantity": 2}],
        patient_fee="12",
        patient_fee_class="006",
        referred_to_unit="SE2321000016-14L1",
        stay_before="1",
        commission="1234",
        belongs_to_care_responsibility="vardansvar-1",
    )
    body = to_gvr_request(parse_event(json.dumps(event).encode()), None, GvrPaths()).json
    assert body is not None
    assert body["yrkeskategorier"] == []
    assert body["patientLkf"] == "010203"
    assert body["tillstand"] == [
        {"kod": "ASA6", "klass": "010", "datum": "2025-03-01", "ordning": 1}
    ]
    assert body["atgarder"] == [{"kod": "NHP09", "tillstandRad": 1, "datum": "2025-03-14"}]
    assert body["lakemedel"][-1] == {"atc": "A01AB13", "diagnosRad": 2, "datum": "2025-03-14"}
    assert body["produkter"] == [{"kod": "K1234", "antal": 2}]
    assert body["patientavgift"] == {"kod": "12", "klass": "006"}
    assert body["remitteradTill"] == {"hsaId": "SE2321000016-14L1"}
    assert (body["visteFore"], body["ersUppdrag"], body["tillhorVardansvar"]) == (
        "1",
        "1234",
        "vardansvar-1",
    )


def test_a_care_responsibility_at_an_hsa_id_goes_to_its_own_resource() -> None:
    event = copy.deepcopy(CARE_CONTACT_EXAMPLES["admission"])
    event["payload"] = {
        "kind": "care_responsibility",
        "patient": {"id_type": "PNR", "id": "191212121212"},
        "unit_hsa_id": "SE2321000016-14L1",
        "starts_on": "2014-01-01",
        "form": "home_care",
        "level": "basic",
    }
    parsed = parse_event(json.dumps(event).encode())
    request = to_gvr_request(parsed, None, GvrPaths())
    assert request.path == "/vardhandelse/vardansvar"
    assert request.json is not None
    assert request.json["enhet"] == {"hsaId": "SE2321000016-14L1"}
    assert (request.json["vardansvarsform"], request.json["niva"]) == ("HEMSJUKVARD", "BASAL")
    assert ("enhet.hsaId", "SE2321000016-14L1") in lookup_request(parsed, GvrPaths()).params
    vardansvar = {r.name: r for r in RESOURCES}["vardansvar"]
    assert vardansvar.validate(request.json, KombikaRegistry()).errors == []


class _Unit:
    def __init__(self, hsa_id: str, open_: bool, county_code: str | None = "01") -> None:
        self.hsa_id, self._open, self.county_code = hsa_id, open_, county_code

    def active_on(self, _day: date) -> bool:
        return self._open


class _Catalog:
    """Units by HSA-id only: a kombika is unknown."""

    def __init__(self, **units: bool) -> None:
        self._units = {hsa_id.replace("_", "-"): _Unit(hsa_id, o) for hsa_id, o in units.items()}

    def unit_by_kombika(self, _kombika: str, _day: date) -> _Unit | None:
        return None

    def knows_kombika(self, _kombika: str) -> bool:
        return False

    def unit(self, hsa_id: str) -> _Unit | None:
        return self._units.get(hsa_id)


def episode(kind: str, **unit: str) -> Any:
    event = copy.deepcopy(CARE_CONTACT_EXAMPLES["admission"])
    event["payload"] = {
        "kind": kind,
        "patient": {"id_type": "PNR", "id": "191212121212"},
        "starts_on": "2014-01-01",
        **unit,
    }
    return parse_event(json.dumps(event).encode())


def test_a_contact_at_another_countys_unit_is_not_gvrs_but_a_referral_from_one_is() -> None:
    from services.gvr.units import check_units
    from shared.delivery.errors import NotOursError

    catalog = _Catalog(SE2321000016_OPEN=True)
    catalog._units["SE2321000131-E000000000001"] = _Unit("SE2321000131-E000000000001", True, "14")
    catalog._units["SE2321000016-NONE"] = _Unit("SE2321000016-NONE", True, None)

    with pytest.raises(NotOursError, match="SE2321000131-E000000000001 is a unit of county 14"):
        check_units(episode("care_period", unit_hsa_id="SE2321000131-E000000000001"), catalog)
    referred = episode(
        "care_period",
        unit_hsa_id="SE2321000016-OPEN",
        end_unit="SE2321000131-E000000000001",
    )
    check_units(referred, catalog)  # Stockholm's contact, ended at a unit in Västra Götaland
    check_units(episode("care_period", unit_hsa_id="SE2321000016-NONE"), catalog)  # no county
    check_units(  # a region configured to report both counties
        episode("care_period", unit_hsa_id="SE2321000131-E000000000001"),
        catalog,
        counties=frozenset({"01", "14"}),
    )


def test_a_unit_named_by_hsa_id_is_checked_in_the_catalog_by_its_hsa_id() -> None:
    from services.gvr.units import ClosedUnitError, check_units
    from shared.delivery.errors import NotYetKnownError

    closed = episode("dispatch", unit_hsa_id="SE2321000016-CLOS")
    check_units(
        episode("care_period", unit_hsa_id="SE2321000016-OPEN"), _Catalog(SE2321000016_OPEN=True)
    )
    with pytest.raises(ClosedUnitError, match="HSA-id SE2321000016-CLOS"):
        check_units(closed, _Catalog(SE2321000016_CLOS=False))
    with pytest.raises(NotYetKnownError, match="kombika 11010046M30 is not a known unit"):
        check_units(episode("examination", kombika="11010046M30"), _Catalog())


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("care_period", "/vardhandelse/vardperiod"),
        ("examination", "/vardhandelse/undersokning"),
        ("dispatch", "/vardhandelse/expediering"),
    ],
)
def test_the_episode_kinds_go_to_their_resources_keyed_by_the_start_date(
    kind: str, path: str
) -> None:
    request = to_gvr_request(episode(kind, kombika="11010046M30"), None, GvrPaths())
    assert request.path == path
    assert request.key == ("191212121212", "2014-01-01", "", "11010046M30")
