"""NvrWorker's answer to a 409 on a report: the record is ours, so it is changed, not refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import httpx

from services.nvr.client import NvrClient
from services.nvr.profile import NvrProfile
from services.nvr.worker import NvrCall, NvrWorker
from shared.contracts import EXAMPLES
from shared.delivery.errors import RegisterRejectedError, RegisterUnavailableError
from shared.delivery.worker import Accepted, Submission

SEARCH = "/fhir/Immunization"


def conflict_then(search: httpx.Response, requests: list[httpx.Request]) -> NvrWorker:
    """A worker whose NVR answers a report 409, a search with `search`, a PUT with 200."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "POST":
            entry = {"response": {"status": "409 Conflict"}}
            bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [entry]}
            return httpx.Response(200, json=bundle)
        if request.method == "GET" and request.url.path == SEARCH:
            return search
        return httpx.Response(200, json=json.loads(request.content))

    client = NvrClient("https://nvr.test", auth=None, transport=httpx.MockTransport(handler))
    return NvrWorker(client, None, NvrProfile())


def report(worker: NvrWorker) -> Submission[NvrCall]:
    raw = json.dumps(copy.deepcopy(EXAMPLES["vaccination"])).encode()
    identity, event = worker.parse(raw)
    return Submission(identity, worker.map(event, None), None)


def found(record_id: str) -> httpx.Response:
    hit = {"resource": {"resourceType": "Immunization", "id": record_id}}
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": [hit]})


async def submit_one(make: Callable[[list[httpx.Request]], NvrWorker]) -> tuple[object, list[str]]:
    requests: list[httpx.Request] = []
    worker = make(requests)
    (outcome,) = await worker.submit([report(worker)])
    return outcome, [f"{r.method} {r.url.path}" for r in requests]


async def test_a_report_nvr_already_holds_is_changed_to_this_content() -> None:
    # Given NVR holds the record under our report identifier (409), as nvr-1
    # When the report is submitted
    outcome, sent = await submit_one(lambda requests: conflict_then(found("nvr-1"), requests))
    # Then the record is found and replaced by this event's content
    assert outcome == Accepted("nvr-1")
    assert sent == ["POST /fhir", f"GET {SEARCH}", "PUT /fhir/Immunization/nvr-1"]


async def test_a_409_whose_lookup_fails_is_retried_not_dead_lettered() -> None:
    # Given NVR answers the report 409, but the search 503
    # When the report is submitted
    outcome, _ = await submit_one(lambda requests: conflict_then(httpx.Response(503), requests))
    # Then the event is retried later (the 409 alone would have dead-lettered a valid event)
    assert isinstance(outcome, RegisterUnavailableError)


async def test_a_409_with_no_record_found_stays_a_refusal() -> None:
    # Given NVR answers the report 409, yet finds no record under the identifier
    empty = httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    # When the report is submitted
    outcome, _ = await submit_one(lambda requests: conflict_then(empty, requests))
    # Then the 409 stands: a dead letter
    assert isinstance(outcome, RegisterRejectedError)
    assert outcome.error_class == "register_duplicate"
