"""NvrClient over httpx.MockTransport: failure shapes the NVR sandbox cannot easily make."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.nvr.client import NvrClient
from services.nvr.mapping import change_entry, create_entry, to_immunization
from services.nvr.profile import NvrProfile
from shared.contracts import EXAMPLES, parse_event
from shared.contracts.vaccination import VaccinationEvent
from shared.delivery.classify import is_permanent, is_transient, pauses_worker
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    RegisterRejectedError,
    RegisterUnavailableError,
    ThrottledError,
)
from shared.delivery.worker import Accepted, Outcome
from shared.oauth2 import ClientCredentialsAuth

PROFILE = NvrProfile()
PNR = "196508313159"
Handler = Callable[[httpx.Request], httpx.Response]


def event() -> VaccinationEvent:
    parsed = parse_event(json.dumps(copy.deepcopy(EXAMPLES["vaccination"])).encode())
    assert isinstance(parsed, VaccinationEvent)
    return parsed


NEW = create_entry("00000000-0000-4000-8000-000000000001", to_immunization(event(), PROFILE))
CHANGED = change_entry(
    "00000000-0000-4000-8000-000000000002", to_immunization(event(), PROFILE, nvr_id="imm-7")
)


def outcome(rule: str, text: str, field: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "business-rule",
                "details": {
                    "coding": [{"system": "urn:regbridge:nvr:rule", "code": rule}],
                    "text": text,
                },
                "expression": [field],
            }
        ],
    }


def batch_response(*responses: dict[str, Any]) -> httpx.Response:
    entries = [{"response": response} for response in responses]
    return httpx.Response(
        200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    )


def outcomes(result: list[Outcome] | DeliveryError) -> list[Outcome]:
    assert isinstance(result, list), result
    return result


def nvr(handler: Handler, *, auth: httpx.Auth | None = None) -> NvrClient:
    return NvrClient("https://nvr.test", auth=auth, transport=httpx.MockTransport(handler))


async def test_bundle_outcomes_per_entry_in_order() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        duplicate = outcome("duplicate-report", "already reported", "Immunization.identifier")
        batch = outcome(
            "batch-not-for-vaccine", "batch LR4567 is not a batch", "Immunization.lotNumber"
        )
        return batch_response(
            {"status": "201 Created", "location": "Immunization/a1/_history/1"},
            {"status": "422 Unprocessable Entity", "outcome": batch},
            {"status": "409 Conflict", "outcome": duplicate},
            {"status": "200 OK"},
        )

    async with nvr(handler) as client:
        created, refused, duplicate, changed = outcomes(
            await client.send_bundle([NEW, NEW, NEW, CHANGED])
        )

    (request,) = sent
    assert (request.method, request.url.path) == ("POST", "/fhir")
    assert request.headers["content-type"] == "application/fhir+json"
    assert request.headers["accept"] == "application/fhir+json"
    assert json.loads(request.content)["type"] == "batch"
    assert created == Accepted("a1")
    assert changed == Accepted("imm-7")  # a PUT entry without location keeps the id it was PUT to
    assert isinstance(refused, RegisterRejectedError)
    assert is_permanent(refused)
    assert refused.register_status == 422
    assert refused.error_class == "register_rejected"
    assert "Immunization.lotNumber [batch-not-for-vaccine]: batch LR4567 is not a batch" in str(
        refused
    )
    assert isinstance(duplicate, RegisterRejectedError)
    assert (duplicate.register_status, duplicate.error_class) == (409, "register_duplicate")


@pytest.mark.parametrize(
    ("status", "kind", "error_class"),
    [
        ("403 Forbidden", RegisterRejectedError, "register_forbidden"),
        ("404 Not Found", RegisterRejectedError, "register_not_found"),
        ("400 Bad Request", RegisterRejectedError, "register_rejected"),
        ("500 Internal Server Error", RegisterUnavailableError, "register_unavailable"),
        ("429 Too Many Requests", ThrottledError, "throttled"),
    ],
)
async def test_entry_statuses(status: str, kind: type[DeliveryError], error_class: str) -> None:
    async with nvr(lambda _: batch_response({"status": status})) as client:
        (result,) = outcomes(await client.send_bundle([CHANGED]))

    assert type(result) is kind
    assert result.error_class == error_class


async def test_accepted_create_without_location_is_a_bad_answer() -> None:
    async with nvr(lambda _: batch_response({"status": "201 Created"})) as client:
        (result,) = outcomes(await client.send_bundle([NEW]))

    assert isinstance(result, ConfigurationError)


@pytest.mark.parametrize(
    "response",
    [
        batch_response({"status": "201 Created", "location": "Immunization/a/_history/1"}),
        httpx.Response(200, text="<html>proxy login</html>"),
        httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"}),
    ],
)
async def test_an_answer_not_matching_the_bundle_pauses_the_worker(
    response: httpx.Response,
) -> None:
    async with nvr(lambda _: response) as client:
        result = await client.send_bundle([NEW, NEW])

    assert isinstance(result, ConfigurationError)
    assert result.error_class == "register_bad_answer"


@pytest.mark.parametrize(
    ("response", "kind", "error_class"),
    [
        (httpx.Response(413), RegisterRejectedError, "register_payload_too_large"),
        (httpx.Response(429, headers={"retry-after": "7"}), ThrottledError, "throttled"),
        (httpx.Response(500), RegisterUnavailableError, "register_unavailable"),
        (httpx.Response(503), RegisterUnavailableError, "register_maintenance"),
        (httpx.Response(403), ConfigurationError, "register_forbidden"),
        (httpx.Response(404), ConfigurationError, "register_bad_answer"),
        (httpx.Response(415), ConfigurationError, "register_bad_answer"),
    ],
)
async def test_whole_request_answers(
    response: httpx.Response, kind: type[DeliveryError], error_class: str
) -> None:
    async with nvr(lambda _: response) as client:
        result = await client.send_bundle([NEW])

    assert type(result) is kind
    assert isinstance(result, DeliveryError)
    assert result.error_class == error_class
    if isinstance(result, ThrottledError):
        assert result.retry_after == 7


async def test_whole_bundle_rejection_reads_the_outcome_and_masks_identity_numbers() -> None:
    body = outcome("structure", f"entry 3: Patient {PNR} is not valid", "Bundle.entry[3].resource")

    async with nvr(lambda _: httpx.Response(400, json=body)) as client:
        result = await client.send_bundle([NEW])

    assert isinstance(result, RegisterRejectedError)
    assert "Bundle.entry[3].resource [structure]: entry 3" in str(result)
    assert PNR not in str(result)
    assert PNR not in (result.register_response or "")


async def test_more_than_100_entries_are_not_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with nvr(handler) as client:
        result = await client.send_bundle([NEW] * 101)

    assert isinstance(result, ConfigurationError)
    assert pauses_worker(result)
    assert sent == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
    ],
)
async def test_transport_failures_are_transient(failure: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with nvr(handler) as client:
        result = await client.send_bundle([NEW])

    assert isinstance(result, DeliveryError)
    assert is_transient(result)


class TokenRegister:
    """A token endpoint plus an API answering `api_status` (counting both)."""

    def __init__(self, api_status: int, token_status: int = 200) -> None:
        self.api_status, self.token_status = api_status, token_status
        self.tokens = 0
        self.api_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.tokens += 1
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client"})
            return httpx.Response(200, json={"access_token": f"t{self.tokens}", "expires_in": 300})
        self.api_calls += 1
        return httpx.Response(self.api_status)


def auth() -> ClientCredentialsAuth:
    return ClientCredentialsAuth("https://nvr.test/oauth2/token", "regbridge", "secret-x")


async def test_401_after_the_auths_retry_pauses_the_worker() -> None:
    register = TokenRegister(api_status=401)
    async with nvr(register, auth=auth()) as client:
        result = await client.send_bundle([NEW])

    assert isinstance(result, ConfigurationError)
    assert result.error_class == "register_unauthorized"
    assert (register.tokens, register.api_calls) == (2, 2)


async def test_403_on_the_whole_request_pauses_the_worker_without_retry() -> None:
    register = TokenRegister(api_status=403)
    async with nvr(register, auth=auth()) as client:
        result = await client.put("imm-7", CHANGED["resource"])

    assert isinstance(result, ConfigurationError)
    assert (register.tokens, register.api_calls) == (1, 1)


async def test_refused_credentials_are_a_configuration_error_not_an_exception() -> None:
    register = TokenRegister(api_status=200, token_status=401)
    async with nvr(register, auth=auth()) as client:
        result = await client.delete("imm-7")
        with pytest.raises(ConfigurationError, match="credentials refused"):
            await client.find("urn:x", "1")

    assert isinstance(result, ConfigurationError)
    assert result.error_class == "credentials_refused"
    assert "secret-x" not in str(result)
    assert register.api_calls == 0


async def test_put_sends_the_resource_with_its_id() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=json.loads(request.content))

    resource = to_immunization(event(), PROFILE)
    async with nvr(handler) as client:
        result = await client.put("imm/7", resource)

    assert result == Accepted("imm/7")
    (request,) = sent
    assert (request.method, request.url.raw_path) == ("PUT", b"/fhir/Immunization/imm%2F7")
    assert request.headers["content-type"] == "application/fhir+json"
    assert json.loads(request.content)["id"] == "imm/7"
    async with nvr(handler) as client:
        with pytest.raises(ValueError, match="not the id"):
            await client.put("other", CHANGED["resource"])


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, RegisterRejectedError), (422, RegisterRejectedError), (503, RegisterUnavailableError)],
)
async def test_put_failures(status: int, kind: type[DeliveryError]) -> None:
    body = outcome(
        "dose-not-allowed", "dose number on a non-COVID vaccine", "Immunization.protocolApplied"
    )
    async with nvr(lambda _: httpx.Response(status, json=body)) as client:
        result = await client.put("imm-7", CHANGED["resource"])

    assert type(result) is kind
    assert "Immunization.protocolApplied [dose-not-allowed]" in str(result)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(204, Accepted("imm-7")), (200, Accepted("imm-7")), (410, Accepted("imm-7"))],
)
async def test_delete(status: int, expected: Accepted) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status)

    async with nvr(handler) as client:
        assert await client.delete("imm-7") == expected

    assert (sent[0].method, sent[0].url.path) == ("DELETE", "/fhir/Immunization/imm-7")


async def test_delete_of_an_id_nvr_does_not_hold_is_refused_not_retried() -> None:
    # the id is NVR's own (from the create or a search): no retry brings the record back
    body = outcome(
        "unknown-id", "Immunization/imm-7 is not held by the register", "Immunization.id"
    )
    async with nvr(lambda _: httpx.Response(404, json=body)) as client:
        result = await client.delete("imm-7")

    assert isinstance(result, RegisterRejectedError)
    assert (result.error_class, result.register_status) == ("register_not_found", 404)
    assert "Immunization.id [unknown-id]" in str(result)


async def test_find_by_identifier() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        hits = (
            []
            if "missing" in str(request.url)
            else [{"resource": {"resourceType": "Immunization", "id": "imm-9"}}]
        )
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "searchset", "entry": hits}
        )

    async with nvr(handler) as client:
        assert await client.find("urn:regbridge:nvr:source/tc", "vacc-1") == "imm-9"
        assert await client.find("urn:regbridge:nvr:source/tc", "missing") is None

    assert sent[0].url.path == "/fhir/Immunization"
    assert sent[0].url.params["identifier"] == "urn:regbridge:nvr:source/tc|vacc-1"


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(500), RegisterUnavailableError),
        (httpx.Response(200, text="nope"), ConfigurationError),
        (httpx.Response(401), ConfigurationError),
    ],
)
async def test_find_raises_the_classified_error(
    response: httpx.Response, kind: type[DeliveryError]
) -> None:
    async with nvr(lambda _: response) as client:
        with pytest.raises(kind):
            await client.find("urn:x", "1")


async def test_vaccines() -> None:
    listed = [{"resourceType": "Medication", "id": "1", "code": {"text": "Comirnaty"}}]
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        entries = [{"resource": r} for r in [*listed, {"resourceType": "Basic"}]] + ["junk"]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "collection", "entry": entries}
        )

    async with nvr(handler) as client:
        assert await client.vaccines() == listed

    assert sent[0].url.path == "/vaccines"
    assert sent[0].headers["accept"] == "application/fhir+json"
    async with nvr(lambda _: httpx.Response(200, json={"vaccines": []})) as client:
        with pytest.raises(ConfigurationError):
            await client.vaccines()
