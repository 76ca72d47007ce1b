"""Real Kafka → NVR worker (runtime, bundles, catalog pre-check, OAuth2) → NVR sandbox over HTTP."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest

from services.nvr.client import NvrClient
from services.nvr.profile import NvrProfile
from services.nvr.worker import NvrCall, NvrWorker
from services.sandboxes.hsa import HsaSandbox
from services.sandboxes.nvr import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, NvrSandbox, OAuthClient
from services.sandboxes.nvr.store import StoredImmunization
from services.sandboxes.nvr.vaccines import DEFAULT_VACCINES
from shared.catalog.view import CatalogView
from shared.contracts import EXAMPLES
from shared.delivery import headers as h
from shared.delivery.clock import ManualClock
from shared.delivery.errors import DeliveryError
from shared.delivery.guards import CircuitBreaker
from shared.delivery.ledger import Ledger
from shared.delivery.runtime import DeliveryRuntime
from shared.delivery.worker import Outcome
from shared.oauth2 import ClientCredentialsAuth
from shared.topics import dlq_topic, results_topic, retry_topic
from tests.support.catalog import SEED, UNITS, imported_catalog
from tests.support.runtime_harness import (
    create_topics,
    publish,
    read_topic,
    running_runtime,
    wait_for,
)

pytestmark = pytest.mark.integration
COMIRNATY, INFANRIX, PREVENAR = "20201214100018", "20090917100028", "20100401100013"
RESTRICTED_ID, RESTRICTED_SECRET = "regbridge-restricted", "restricted-secret"
TOKEN_LIFETIME_S = 300
# runtime options as NvrSettings has them (bundles of up to 100), with a shorter linger
BUNDLES = {"batch_size": 100, "batch_linger": 0.05, "max_in_flight": 400}

Unit = tuple[str, str, str]  # (unit HSA-id, care provider HSA-id, org number)


class Units(NamedTuple):
    main: Unit
    other: Unit  # another care provider's
    foreign: Unit  # a third provider's, which the restricted client may not report for


@pytest.fixture(scope="module")
def units() -> Units:
    """Open units of three care providers, as NvrSandbox (and HsaSandbox) generate them."""
    sandbox = NvrSandbox(UNITS, seed=SEED)  # not started: its directory is all that is needed
    found: list[Unit] = []
    for i in range(UNITS):
        unit = sandbox.unit_example(i)
        ended = (sandbox.directory.get(unit[0]) or {}).get("hsaEndDate")
        if not ended and unit[2] not in {known[2] for known in found}:
            found.append(unit)
        if len(found) == 3:
            return Units(*found)
    raise AssertionError("the generated directory has no three open units of three providers")


@pytest.fixture(scope="module")
def nvr_server(units: Units) -> Iterator[NvrSandbox]:
    """NVR with two clients: the default one (any care provider), and one that may report for
    the care providers of `units.main` and `units.other` only."""
    restricted = OAuthClient(
        RESTRICTED_ID,
        RESTRICTED_SECRET,
        allowed_caregivers=frozenset({units.main[2], units.other[2]}),
    )
    clients = [OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), restricted]
    with NvrSandbox(
        UNITS, seed=SEED, clients=clients, token_lifetime_s=TOKEN_LIFETIME_S
    ) as sandbox:
        yield sandbox


@pytest.fixture
def nvr(nvr_server: NvrSandbox) -> NvrSandbox:
    """The module's NVR, reset: no records, tokens or faults; tokens live TOKEN_LIFETIME_S."""
    nvr_server.reset()
    nvr_server.state.tokens.lifetime_s = TOKEN_LIFETIME_S
    return nvr_server


@pytest.fixture(scope="module")
async def catalog(
    kafka_bootstrap: str,
    hsa_sandbox: HsaSandbox,
    nvr_server: NvrSandbox,
    units: Units,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[CatalogView]:
    """The catalog as the worker reads it: HSA's units, and NVR's vaccine list (with a token)."""
    database = tmp_path_factory.mktemp("catalog") / "c.db"
    async with imported_catalog(
        kafka_bootstrap,
        hsa_sandbox.base_url,
        database,
        vaccines_url=nvr_server.base_url,
        vaccines_path=nvr_server.profile.vaccines_path,
        nvr_client_id=DEFAULT_CLIENT_ID,
        nvr_client_secret=DEFAULT_CLIENT_SECRET,
    ) as view:
        assert view.vaccine(COMIRNATY) is not None, "the vaccine list did not reach the catalog"
        for unit in units:
            known = view.unit(unit[0])
            assert known is not None, f"HSA and NVR units differ: {unit[0]} not in the catalog"
            assert (known.care_giver.hsa_id, known.care_giver.org_number) == unit[1:]
        yield view


WorkerFactory = Callable[..., tuple[NvrWorker, ClientCredentialsAuth]]


@pytest.fixture
async def make_worker(
    nvr: NvrSandbox, catalog: CatalogView, unique_name: str
) -> AsyncIterator[WorkerFactory]:
    """NvrWorker(s) with their own NvrClient and OAuth2 auth, closed after the test."""
    clients: list[NvrClient] = []

    def make(
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        secret: str = DEFAULT_CLIENT_SECRET,
        with_catalog: bool = True,
        base_url: str | None = None,
        worker_type: type[NvrWorker] = NvrWorker,
        auth_clock: Callable[[], float] = time.monotonic,
    ) -> tuple[NvrWorker, ClientCredentialsAuth]:
        base_url = base_url or nvr.base_url
        token_url = base_url + NvrProfile().token_path
        auth = ClientCredentialsAuth(token_url, client_id, secret, clock=auth_clock)
        client = NvrClient(base_url, auth=auth, profile=NvrProfile())
        clients.append(client)
        worker = worker_type(client, catalog if with_catalog else None, NvrProfile())
        worker.name = f"nvr{unique_name}"
        return worker, auth

    yield make
    for client in clients:
        await client.aclose()


def vaccination(
    record_id: str, unit: Unit, version: int = 1, op: str = "create", **changes: Any
) -> dict[str, Any]:
    """A valid COVID-19 vaccination at `unit` (a payload field set to None is left out)."""
    event = copy.deepcopy(EXAMPLES["vaccination"])
    event.update(
        event_id=str(uuid.uuid4()), record_id=record_id, record_version=version, operation=op
    )
    hsa_id, caregiver_hsa_id, org = unit
    payload = event["payload"]
    payload.update(
        performing_unit_hsa_id=hsa_id,
        care_provider={"hsa_id": caregiver_hsa_id, "organisation_number": org},
    )
    for name, value in changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return event


def childhood(record_id: str, unit: Unit, **changes: Any) -> dict[str, Any]:
    """Infanrix hexa for a child born 2017-01-01 (no dose number)."""
    fields: dict[str, Any] = {
        "patient": {"id_type": "PNR", "id": "201701012013"},
        "vaccine_npl_id": INFANRIX,
        "vaccine_name": "Infanrix hexa",
        "batch_number": "A21CE123A",
        "programme": "childhood",
        "vaccinated_on": "2017-03-05",
        "dose_number": None,
    }
    return vaccination(record_id, unit, **(fields | changes))


def live(nvr: NvrSandbox) -> dict[str, StoredImmunization]:
    """The register's live records by report identifier value (the journal's record_id)."""
    return {r.key[1]: r for r in nvr.records() if r.key is not None and not r.deleted}


@dataclass(frozen=True)
class Journal:
    """This test's journal topic on the real broker, and the ledger: what a worker reads and runs
    on (a 30 s retry tier, NVR's bundle options), and where its results and dead letters go."""

    bootstrap: str
    ledger: Ledger
    topic: str

    async def create_topics(self, worker: NvrWorker, partitions: int = 3) -> None:
        await create_topics(self.bootstrap, worker.name, self.topic, ["30s"], partitions)

    async def publish(self, events: Sequence[dict[str, Any] | bytes], **options: Any) -> None:
        await publish(self.bootstrap, self.topic, events, **options)

    def running(
        self, worker: NvrWorker, **options: Any
    ) -> AbstractAsyncContextManager[DeliveryRuntime]:
        """The delivery runtime of `worker` on the journal (`options`: clock, circuit)."""
        return running_runtime(
            self.bootstrap, worker, self.ledger, self.topic, tiers=("30s",), **BUNDLES, **options
        )

    async def retried(self, worker: NvrWorker, at_least: int) -> None:
        """Wait until the worker's 30 s retry tier holds at least `at_least` events."""
        await read_topic(self.bootstrap, retry_topic(worker.name, "30s"), at_least=at_least)

    async def dead_letters(
        self,
        worker: NvrWorker,
        at_least: int = 0,
        timeout: float = 2,  # noqa: ASYNC109
    ) -> dict[str, dict[str, str]]:
        """The worker's dead letters by record id (their headers as text)."""
        records = await read_topic(
            self.bootstrap, dlq_topic(worker.name), at_least=at_least, timeout=timeout
        )
        stories = [h.to_dict(r.headers) for r in records]
        return {story.get(h.RECORD_ID, ""): story for story in stories}

    async def results(self, worker: NvrWorker, at_least: int) -> list[dict[str, Any]]:
        records = await read_topic(self.bootstrap, results_topic(worker.name), at_least=at_least)
        return [json.loads(r.value) for r in records if r.value]


@pytest.fixture
def journal(kafka_bootstrap: str, unique_name: str, ledger: Ledger) -> Journal:
    return Journal(kafka_bootstrap, ledger, f"test.vaccinations.{unique_name}")


def reason(story: dict[str, str]) -> str:
    return story[h.ERROR_MESSAGE] + " " + story.get(h.REGISTER_RESPONSE, "")


def count_refusals(nvr: NvrSandbox, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one whenever NVR refuses a bearer token (answers 401)."""
    refused: list[int] = []
    client_of = nvr.state.tokens.client_of

    def checked(authorization: str | None) -> OAuthClient | None:
        client = client_of(authorization)
        if client is None:
            refused.append(1)
        return client

    monkeypatch.setattr(nvr.state.tokens, "client_of", checked)
    return refused


Sent = tuple[list[str], str | None]  # ("POST Immunization", "PUT Immunization/<id>" …), error


def spy_bundles(worker: NvrWorker, monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every bundle the worker's client sends: its entries' requests and the error class of the
    whole bundle (None: answered entry by entry)."""
    client: NvrClient = worker._client
    sent: list[Sent] = []
    send = client.send_bundle

    async def recording(entries: Sequence[dict[str, Any]]) -> list[Outcome] | DeliveryError:
        result = await send(entries)
        requests = [f"{e['request']['method']} {e['request']['url']}" for e in entries]
        sent.append((requests, result.error_class if isinstance(result, DeliveryError) else None))
        return result

    monkeypatch.setattr(client, "send_bundle", recording)
    return sent


async def drain(
    clock: ManualClock, done: Callable[[], bool], rounds: int = 30, what: str = "drained"
) -> None:
    """Move the runtime's clock past the 30 s tier until `done()` (retries then come due)."""
    for _ in range(rounds):
        if done():
            return
        clock.advance(31)
        await asyncio.sleep(0.3)
    await wait_for(done, 20, what)


# 1. report, change, delete


async def test_report_change_delete_of_one_record_arrive_in_order(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a report, a change (another batch) and a deletion of one vaccination
    worker, _ = make_worker()
    bundles = spy_bundles(worker, monkeypatch)
    await journal.create_topics(worker)
    record = f"vacc-{unique_name}"
    events = [
        vaccination(record, units.main),
        vaccination(record, units.main, 2, "correct", batch_number="GH5678"),
        vaccination(record, units.main, 3, "cancel"),
    ]
    # When they flow in one go
    async with journal.running(worker):
        await journal.publish(events)
        await wait_for(lambda: any(r.deleted for r in nvr.records()), 30, "the deletion")
        answers = await journal.results(worker, at_least=3)

    # Then NVR created one record, changed that record (a PUT entry to its id) and deleted it
    (held,) = nvr.records()
    report_identifier = (NvrProfile().report_system(events[0]["source_system"]), record)
    assert (held.key, held.version, held.deleted) == (report_identifier, 2, True)
    assert held.resource["lotNumber"] == "GH5678"
    assert bundles == [(["POST Immunization"], None), ([f"PUT Immunization/{held.id}"], None)]
    assert [a["status"] for a in answers] == ["accepted"] * 3
    assert {a["reference"] for a in answers} == {held.id}
    assert await journal.ledger.reference_of(worker.name, record) == held.id


async def test_report_change_delete_stay_in_order_when_the_report_is_retried(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
) -> None:
    # Given NVR in maintenance (503) when the report comes
    worker, _ = make_worker()
    await journal.create_topics(worker)
    clock = ManualClock()
    record = f"vacc-{unique_name}"
    events = [
        vaccination(record, units.main),
        vaccination(record, units.main, 2, "correct", dose_number=5),
        vaccination(record, units.main, 3, "cancel"),
    ]
    nvr.set_faults(maintenance=True)
    async with journal.running(worker, clock=clock):
        # When the report meets the 503 and goes to retry, and the change and deletion follow
        await journal.publish(events[:1])
        await journal.retried(worker, at_least=1)
        await journal.publish(events[1:])
        await journal.retried(worker, at_least=3)
        assert nvr.records() == []  # nothing overtook the failed report
        nvr.set_faults(maintenance=False)
        await drain(clock, lambda: any(r.deleted for r in nvr.records()), what="the deletion")
        dead = await journal.dead_letters(worker)

    # Then the report, the change (dose 5, PUT to NVR's id) and the deletion arrived in order
    (held,) = nvr.records()
    assert (held.version, held.deleted) == (2, True)
    assert held.resource["protocolApplied"] == [{"doseNumberPositiveInt": 5}]
    assert await journal.ledger.reference_of(worker.name, record) == held.id
    assert dead == {}


# 2. a bundle of good and bad entries


async def test_a_bundle_with_entries_only_nvr_refuses_dead_letters_just_those(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given NVR's vaccine list changed since the catalog read it: batch GH5678 and Prevenar 13
    # are gone, so the worker's pre-check passes what NVR then refuses
    changed = copy.deepcopy([v for v in DEFAULT_VACCINES if v["nplId"] != PREVENAR])
    changed[0]["batches"] = [b for b in changed[0]["batches"] if b["number"] != "GH5678"]
    nvr.set_vaccines(changed)
    worker, _ = make_worker()
    bundles = spy_bundles(worker, monkeypatch)
    await journal.create_topics(worker, partitions=1)
    r = lambda n: f"mix-{unique_name}-{n}"  # noqa: E731
    events = [vaccination(r(i), units.main) for i in range(20)]
    events[4] = vaccination(r(4), units.main, batch_number="GH5678")
    events[11] = vaccination(r(11), units.main, batch_number="GH5678")
    events[17] = vaccination(
        r(17),
        units.main,
        vaccine_npl_id=PREVENAR,
        vaccine_name="Prevenar 13",
        batch_number="LR4567",
        programme="pneumococcal_risk",
        dose_number=None,
    )
    # When the 20 go as one stream
    await journal.publish(events)
    async with journal.running(worker):
        dead = await journal.dead_letters(worker, at_least=3, timeout=30)
        await wait_for(lambda: len(live(nvr)) >= 17, 30, "17 accepted")

    # Then 17 are in NVR and the 3 are dead letters naming the field and NVR's rule
    assert sorted(live(nvr)) == sorted(r(i) for i in range(20) if i not in (4, 11, 17))
    assert sorted(dead) == sorted([r(4), r(11), r(17)])
    for n in (4, 11):
        assert dead[r(n)][h.ERROR_CLASS] == "register_rejected"
        assert dead[r(n)][h.REGISTER_STATUS] == "422"
        assert "Immunization.lotNumber [batch-not-for-vaccine]" in reason(dead[r(n)])
    assert "Immunization.vaccineCode.coding [vaccine-not-on-list]" in reason(dead[r(17)])
    assert [(len(requests), error) for requests, error in bundles] == [(20, None)]


async def test_what_the_pre_check_catches_never_leaves_the_worker(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
) -> None:
    # Given three vaccinations that break NVR's rules the catalog knows of
    worker, auth = make_worker()
    await journal.create_topics(worker)
    r = lambda n: f"pre-{unique_name}-{n}"  # noqa: E731
    cases = {
        r(1): (
            vaccination(r(1), units.main, batch_number="ZZ999"),
            "nvr_batch_not_for_vaccine",
            "Immunization.lotNumber: batch ZZ999 is not a batch of vaccine",
        ),
        r(2): (
            vaccination(r(2), units.main, vaccine_npl_id="12345678901234"),
            "nvr_vaccine_not_on_list",
            "Immunization.vaccineCode.coding: NPL-id 12345678901234 is not on",
        ),
        r(3): (
            vaccination(r(3), units.main, vaccinated_on="2019-03-14"),
            "nvr_date_before_programme",
            "Immunization.occurrenceDateTime: 2019-03-14 is before programme covid19",
        ),
    }
    # When they flow
    async with journal.running(worker):
        await journal.publish([case[0] for case in cases.values()])
        dead = await journal.dead_letters(worker, at_least=3, timeout=30)

    # Then each is a dead letter naming field and rule, and no request (not even a token) was made
    assert sorted(dead) == sorted(cases)
    for record, (_, error_class, text) in cases.items():
        assert dead[record][h.ERROR_CLASS] == error_class, dead[record]
        assert text in reason(dead[record]), dead[record]
        assert f"({error_class.removeprefix('nvr_').replace('_', '-')})" in reason(dead[record])
    assert auth.tokens_fetched == 0
    assert nvr.records() == []


# 3. every likely rejection of the handbook that an event can express


@pytest.mark.parametrize("pre_check", [True, False], ids=["pre-checked", "nvr-checked"])
async def test_every_likely_rejection_ends_as_a_dead_letter_naming_field_and_rule(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    pre_check: bool,
) -> None:
    # Given a worker whose credentials cover Region Stockholm only, with or without the catalog
    # for its pre-check (without it NVR alone applies its rules), and two of its reports that
    # NVR has since lost (the test environment was reset), to be changed and deleted
    main, other, foreign = units
    worker, _ = make_worker(
        client_id=RESTRICTED_ID, secret=RESTRICTED_SECRET, with_catalog=pre_check
    )
    await journal.create_topics(worker)
    r = lambda n: f"bad-{unique_name}-{n}"  # noqa: E731
    future = (date.today() + timedelta(days=30)).isoformat()
    contract = "invalid_event"
    cases: dict[str, tuple[dict[str, Any], str, tuple[str, ...]]] = {
        # the contract refuses these (journal systems get the same rules as JSON Schema)
        "personnummer with hyphen": (
            vaccination(r(1), main, patient={"id_type": "PNR", "id": "19650831-3159"}),
            contract,
            ("payload.patient.id", "12 digits without separator"),
        ),
        "personnummer of 10 digits": (
            vaccination(r(2), main, patient={"id_type": "PNR", "id": "6508313159"}),
            contract,
            ("payload.patient.id", "12 digits without separator"),
        ),
        "personnummer check digit": (
            vaccination(r(3), main, patient={"id_type": "PNR", "id": "196508313158"}),
            contract,
            ("payload.patient.id", "check digit (Luhn)"),
        ),
        "samordningsnummer as personnummer": (
            vaccination(r(4), main, patient={"id_type": "PNR", "id": "197010632391"}),
            contract,
            ("payload.patient.id", "61–91 is a samordningsnummer"),  # noqa: RUF001
        ),
        "personnummer as samordningsnummer": (
            vaccination(r(5), main, patient={"id_type": "SNR", "id": "196508313159"}),
            contract,
            ("payload.patient.id", "samordningsnummer: day must be 61–91"),  # noqa: RUF001
        ),
        "before the birth date given": (
            vaccination(r(6), main, vaccinated_on="1960-01-01"),
            contract,
            ("payload.vaccinated_on", "before the person's birth date"),
        ),
        "COVID-19 dose missing": (
            vaccination(r(7), main, dose_number=None),
            contract,
            ("payload.dose_number", "required when programme is covid19"),
        ),
        "COVID-19 dose 0": (
            vaccination(r(8), main, dose_number=0),
            contract,
            ("payload.dose_number", "greater than or equal to 1"),
        ),
        'COVID-19 dose "?"': (
            vaccination(r(9), main, dose_number="?"),
            contract,
            ("payload.dose_number", "valid integer"),
        ),
        "COVID-19 dose 100": (
            vaccination(r(10), main, dose_number=100),
            contract,
            ("payload.dose_number", "less than or equal to 99"),
        ),
        "dose outside the COVID-19 programme": (
            childhood(r(11), main, dose_number=1),
            contract,
            ("payload.dose_number", "only when programme is covid19"),
        ),
        # NVR's rules against the catalog (the worker's pre-check; the sandbox has the same)
        "NPL-id not on the vaccine list": (
            vaccination(r(20), main, vaccine_npl_id="12345678901234"),
            "nvr_vaccine_not_on_list",
            ("Immunization.vaccineCode.coding", "vaccine-not-on-list"),
        ),
        "batch of another vaccine": (
            vaccination(r(21), main, batch_number="LR4567"),
            "nvr_batch_not_for_vaccine",
            ("Immunization.lotNumber", "batch-not-for-vaccine"),
        ),
        "date in the future": (
            vaccination(r(22), main, vaccinated_on=future),
            "nvr_date_in_future",
            ("Immunization.occurrenceDateTime", "date-in-future"),
        ),
        "before the birth in the personnummer": (
            childhood(r(23), main, vaccinated_on="2016-06-01"),
            "nvr_date_before_birth",
            ("Immunization.occurrenceDateTime", "date-before-birth"),
        ),
        "before the programme began": (
            vaccination(
                r(24),
                main,
                vaccine_npl_id=PREVENAR,
                batch_number="LR4567",
                programme="pneumococcal_risk",
                vaccinated_on="2022-06-01",
                dose_number=None,
            ),
            "nvr_date_before_programme",
            ("Immunization.occurrenceDateTime", "date-before-programme"),
        ),
        "COVID-19 vaccine without dose (programme other)": (
            vaccination(r(25), main, programme="other", dose_number=None),
            "nvr_dose_missing",
            ("Immunization.protocolApplied.doseNumber", "dose-missing"),
        ),
        "dose on a vaccine that is not for COVID-19": (
            childhood(r(26), main, programme="covid19", dose_number=1, vaccinated_on="2025-03-14"),
            "nvr_dose_not_allowed",
            ("Immunization.protocolApplied.doseNumber", "dose-not-allowed"),
        ),
        "unknown HSA-id": (
            vaccination(r(27), (f"{main[1].split('-')[0]}-ZZZZZ", main[1], main[2])),
            "nvr_unit_unknown",
            ("Immunization.contained.ofType(Location).identifier", "unit-unknown"),
        ),
        "organisation number not the unit's": (
            vaccination(r(28), (main[0], main[1], other[2])),
            "nvr_unit_not_of_caregiver",
            ("Immunization.contained.ofType(Organization).identifier", "unit-not-of-caregiver"),
        ),
        "care provider HSA-id not the unit's": (
            vaccination(r(29), (main[0], other[1], main[2])),
            "nvr_unit_not_of_caregiver",
            ("Immunization.contained.ofType(Organization).identifier", "unit-not-of-caregiver"),
        ),
        # only NVR knows these
        "care provider not covered by the credentials (403)": (
            vaccination(r(40), foreign),
            "register_forbidden",
            ("Immunization.contained.ofType(Organization).identifier", "caregiver-not-allowed"),
        ),
        "change of an id NVR does not hold (404)": (
            vaccination(r(41), main, 2, "correct", dose_number=5),
            "register_not_found",
            ("Immunization.id", "unknown-id"),
        ),
        "deletion of an id NVR does not hold (404)": (
            vaccination(r(42), main, 2, "cancel"),
            "register_not_found",
            ("Immunization.id", "unknown-id"),
        ),
    }
    raw_cases = {
        f"raw-json-{unique_name}": (b'{"event_type": "vaccination", ', "(event): not valid JSON"),
        f"raw-utf8-{unique_name}": (
            json.dumps(vaccination("x", main)).replace("Comirnaty", "Comirnatyå").encode("latin-1"),
            "(event): not UTF-8 text",
        ),
    }
    async with journal.running(worker):
        await journal.publish([vaccination(r(41), main), vaccination(r(42), main)])
        await wait_for(lambda: len(live(nvr)) == 2, 30, "the two reports")
        nvr.reset()
        # When every case flows
        await journal.publish([case[0] for case in cases.values()])
        for key, (raw, _) in raw_cases.items():
            await journal.publish([raw], key=lambda _, k=key: k.encode())
        expected = len(cases) + len(raw_cases)
        dead = await journal.dead_letters(worker, at_least=expected, timeout=30)

    # Then each is a dead letter whose reason names the field and the rule
    for label, (event, error_class, parts) in cases.items():
        story = dead.get(event["record_id"])
        assert story is not None, f"{label}: no dead letter"
        if error_class.startswith("nvr_") and not pre_check:  # NVR's answer to the entry
            assert story.get(h.REGISTER_STATUS) == "422", f"{label}: {story}"
            error_class = "register_rejected"
        assert story[h.ERROR_CLASS] == error_class, f"{label}: {story[h.ERROR_CLASS]}"
        for part in parts:
            assert part in reason(story), f"{label}: {part!r} not in {reason(story)!r}"
        assert "196508313159" not in reason(story)
    for key, (_, text) in raw_cases.items():
        assert text in dead[key][h.ERROR_MESSAGE], dead[key]
    assert nvr.records() == []


# 4. tokens


@pytest.mark.parametrize("foreseen", [True, False], ids=["refreshed-early", "told-by-401"])
async def test_events_keep_flowing_while_short_lived_tokens_expire(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
    foreseen: bool,
) -> None:
    # Given tokens that live 1 s, and a worker that fetches a new one before its token expires
    # (foreseen), or one whose clock stands still, so that only NVR's 401 tells it
    nvr.state.tokens.lifetime_s = 1
    worker, auth = make_worker(auth_clock=time.monotonic if foreseen else lambda: 0.0)
    refused = count_refusals(nvr, monkeypatch)
    await journal.create_topics(worker)
    waves = [
        [vaccination(f"tok-{unique_name}-{w}-{i}", units.main) for i in range(5)] for w in range(5)
    ]
    # When events flow for longer than two token lifetimes
    async with journal.running(worker):
        for number, wave in enumerate(waves):
            await journal.publish(wave)
            await wait_for(lambda n=number: len(live(nvr)) == 5 * (n + 1), 30, f"wave {number}")
            await asyncio.sleep(0.5)
        dead = await journal.dead_letters(worker)

    # Then every event is in NVR, sent with fresh tokens as they expired; none dead-lettered
    assert len(live(nvr)) == 25
    assert dead == {}
    if foreseen:
        assert auth.tokens_fetched >= 3
    else:
        assert refused, "NVR never refused an expired token"
        assert auth.tokens_fetched >= 2


async def test_a_revoked_token_is_replaced_and_nothing_is_lost(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker with a token
    worker, auth = make_worker()
    refused = count_refusals(nvr, monkeypatch)
    await journal.create_topics(worker)
    events = [vaccination(f"rev-{unique_name}-{i}", units.main) for i in range(30)]
    nvr.set_faults(latency_ms=20)
    async with journal.running(worker):
        await journal.publish(events[:10])
        await wait_for(lambda: len(live(nvr)) == 10, 30, "the first ten")
        # When NVR revokes every token mid-stream
        publishing = asyncio.create_task(journal.publish(events[10:]))
        async with httpx.AsyncClient(base_url=nvr.base_url) as admin:
            revoked = (await admin.post("/admin/tokens/revoke")).json()
        await publishing
        await wait_for(lambda: len(live(nvr)) == 30, 30, "all thirty")
        dead = await journal.dead_letters(worker)

    # Then the worker fetched a new token and every event arrived, none dead-lettered
    assert revoked == {"revoked": 1}
    assert refused, "no request met the revoked token"
    assert auth.tokens_fetched == 2
    assert sorted(live(nvr)) == sorted(e["record_id"] for e in events)
    assert dead == {}


# 5. credentials refused


async def test_a_refused_client_secret_pauses_the_worker_with_an_alarm_and_loses_nothing(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
) -> None:
    # Given a worker with a wrong client secret
    worker, _ = make_worker(secret="not-the-secret")
    await journal.create_topics(worker)
    events = [vaccination(f"cred-{unique_name}-{i}", units.main) for i in range(5)]
    # When events flow
    async with journal.running(worker, clock=ManualClock()) as runtime:
        await journal.publish(events)
        await wait_for(lambda: runtime.status.paused_reason == "configuration", 30, "paused")
        dead = await journal.dead_letters(worker)

    # Then the worker pauses with an alarm naming the credentials; nothing is dead-lettered
    assert dead == {}
    assert nvr.records() == []
    assert "credentials refused" in runtime.status.alarms[-1]
    assert "not-the-secret" not in runtime.status.alarms[-1]

    # And once the secret is corrected, every event is delivered (none was committed as done)
    fixed, _ = make_worker()
    async with journal.running(fixed):
        await wait_for(lambda: len(live(nvr)) == len(events), 30, "all delivered")


# 6. an outage


async def test_a_maintenance_window_is_drained_without_dead_letters(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
) -> None:
    # Given NVR closed for maintenance for the next few seconds
    worker, _ = make_worker()
    await journal.create_topics(worker)
    clock = ManualClock()
    events = [vaccination(f"mw-{unique_name}-{i}", units.main) for i in range(40)]
    nvr.set_faults(maintenance_until=datetime.now(UTC) + timedelta(seconds=4))
    circuit = CircuitBreaker(min_calls=5, consecutive_failures=3)
    async with journal.running(worker, clock=clock, circuit=circuit) as runtime:
        # When 40 vaccinations meet the window
        await journal.publish(events)
        await wait_for(lambda: runtime.status.paused_reason == "circuit_open", 30, "circuit open")
        await wait_for(lambda: not nvr.faults.in_maintenance(datetime.now(UTC)), 10, "the end")
        await drain(clock, lambda: len(live(nvr)) == len(events))
        dead = await journal.dead_letters(worker)

    # Then once it ends every vaccination is delivered, and none is dead-lettered
    assert dead == {}
    assert sorted(live(nvr)) == sorted(e["record_id"] for e in events)
    assert len(nvr.records()) == len(events)


# 7. a bundle refused whole


class StructureBreakingWorker(NvrWorker):
    """Maps one record to an Immunization of invalid structure (dose 0), as a mapping bug would,
    after the worker's own FHIR validation: only NVR sees it, and refuses the whole bundle."""

    culprit = ""

    def map(self, event: object, reference: str | None) -> NvrCall:
        call = super().map(event, reference)
        if getattr(event, "record_id", None) == self.culprit and call.resource is not None:
            broken = {**call.resource, "protocolApplied": [{"doseNumberPositiveInt": 0}]}
            return NvrCall(call.operation, call.event_id, broken, call.nvr_id, call.identifier)
        return call


async def test_a_bundle_refused_whole_is_split_until_only_the_culprit_dead_letters(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 20 vaccinations of which one reaches NVR with an invalid structure
    worker, _ = make_worker(worker_type=StructureBreakingWorker)
    culprit = f"split-{unique_name}-13"
    StructureBreakingWorker.culprit = culprit
    bundles = spy_bundles(worker, monkeypatch)
    await journal.create_topics(worker, partitions=1)
    events = [vaccination(f"split-{unique_name}-{i}", units.main) for i in range(20)]
    # When they go as one bundle
    await journal.publish(events)
    async with journal.running(worker):
        dead = await journal.dead_letters(worker, at_least=1, timeout=30)
        await wait_for(lambda: len(live(nvr)) == 19, 30, "19 accepted")

    # Then NVR's 400 split the bundle until the culprit stood alone: it alone is dead-lettered
    assert list(dead) == [culprit]
    assert dead[culprit][h.ERROR_CLASS] == "register_rejected"
    assert dead[culprit][h.REGISTER_STATUS] == "400"
    assert "doseNumberPositiveInt" in reason(dead[culprit])
    assert culprit not in live(nvr)
    sizes = [(len(requests), error) for requests, error in bundles]
    assert sizes[0] == (20, "register_rejected"), sizes
    assert (1, "register_rejected") in sizes, sizes
    assert sum(size for size, error in sizes if error is None) == 19, sizes


async def test_a_bundle_larger_than_nvr_takes_is_split_and_all_delivered(
    journal: Journal,
    unique_name: str,
    units: Units,
    make_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an NVR that takes at most 8 entries per bundle, and a worker gathering up to 100
    profile = NvrProfile(max_bundle_entries=8)
    with NvrSandbox(UNITS, seed=SEED, profile=profile) as small:
        worker, _ = make_worker(base_url=small.base_url)
        bundles = spy_bundles(worker, monkeypatch)
        await journal.create_topics(worker, partitions=1)
        events = [vaccination(f"big-{unique_name}-{i}", units.main) for i in range(20)]
        # When 20 go at once
        await journal.publish(events)
        async with journal.running(worker):
            await wait_for(lambda: len(live(small)) == 20, 30, "all 20")
            dead = await journal.dead_letters(worker)

    # Then the 413 split the bundle into ones NVR takes; nothing is dead-lettered
    assert dead == {}
    sizes = [(len(requests), error) for requests, error in bundles]
    assert sizes[0] == (20, "register_payload_too_large"), sizes
    assert all(size <= 8 for size, error in sizes if error is None), sizes
    assert sum(size for size, error in sizes if error is None) == 20, sizes


# 8. a crash between submission and settlement


async def test_after_a_crash_the_report_is_found_by_identifier_not_reported_twice(
    journal: Journal,
    unique_name: str,
    nvr: NvrSandbox,
    units: Units,
    make_worker: WorkerFactory,
) -> None:
    # Given a worker that crashed after noting two reports in flight in its ledger, one of
    # which NVR had taken ("reached") and one it never got ("lost"); a report NVR took whose
    # answer timed out, so that its retry finds nothing in flight ("unnoted"); a record the
    # journal sends again as new, with another batch, that NVR holds already ("again"); and a
    # report made before regbridge (by hand), which the journal now changes ("by-hand")
    worker, _ = make_worker()
    await journal.create_topics(worker)
    clock = ManualClock()
    r = lambda n: f"crash-{unique_name}-{n}"  # noqa: E731
    reached = vaccination(r("reached"), units.main)
    lost = vaccination(r("lost"), units.main)
    unnoted = vaccination(r("unnoted"), units.main)
    again = vaccination(r("again"), units.main, 2, batch_number="GH5678")
    earlier = vaccination(r("again"), units.main)
    by_hand = vaccination(r("by-hand"), units.main)
    by_hand_change = vaccination(r("by-hand"), units.main, 2, "correct", dose_number=2)
    for event in (reached, lost):
        identity, _ = worker.parse(json.dumps(event).encode())
        await journal.ledger.begin(worker.name, identity, clock.now())
    calls = [
        worker.map(worker.parse(json.dumps(e).encode())[1], None)
        for e in (reached, unnoted, earlier, by_hand)
    ]
    answered = await worker._client.send_bundle([call.entry() for call in calls])
    assert isinstance(answered, list)
    assert all(not isinstance(a, DeliveryError) for a in answered), answered
    before = {key: record.id for key, record in live(nvr).items()}

    # When the worker is restarted and Kafka gives the events again
    async with journal.running(worker, clock=clock) as runtime:
        await journal.publish([reached, lost, unnoted, again, by_hand_change])
        answers = await journal.results(worker, at_least=5)
        # And a change of the reconciled report follows
        await journal.publish(
            [vaccination(r("reached"), units.main, 2, "correct", dose_number=3)],
        )
        await wait_for(lambda: live(nvr)[r("reached")].version == 2, 30, "the change")
        dead = await journal.dead_letters(worker)

    # Then each vaccination is held once, under the id NVR gave it first
    keys = [record.key[1] for record in nvr.records() if record.key is not None]
    assert sorted(keys) == sorted(r(n) for n in ("reached", "lost", "unnoted", "again", "by-hand"))
    held = live(nvr)
    for name in ("reached", "unnoted", "again", "by-hand"):
        assert held[r(name)].id == before[r(name)]
        assert await journal.ledger.reference_of(worker.name, r(name)) == before[r(name)]
    assert [a["status"] for a in answers] == ["accepted"] * 5
    labels = {"worker": worker.name}
    reconciled = runtime.metrics.registry.get_sample_value("regbridge_reconciled_total", labels)
    assert reconciled == 1  # "reached", found by its identifier instead of sent again
    # the report re-sent as new carries its new content (the identifier is the idempotency key)
    assert held[r("again")].resource["lotNumber"] == "GH5678"
    assert held[r("reached")].resource["protocolApplied"] == [{"doseNumberPositiveInt": 3}]
    assert held[r("by-hand")].resource["protocolApplied"] == [{"doseNumberPositiveInt": 2}]
    assert dead == {}
