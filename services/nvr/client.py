"""NvrClient: NVR's FHIR API over one pooled httpx client with OAuth2 client credentials."""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry.trace import TracerProvider

from services.nvr.mapping import RESOURCE_TYPE, build_bundle
from services.nvr.outcomes import (
    EntryResponse,
    MalformedResponseError,
    describe,
    parse_batch_response,
    parse_outcome,
)
from services.nvr.profile import NvrProfile
from services.nvr.settings import NvrSettings
from shared.delivery.classify import (
    RESPONSE_LIMIT,
    bad_answer,
    classify_exception,
    classify_response,
)
from shared.delivery.errors import ConfigurationError, DeliveryError, RegisterRejectedError
from shared.delivery.worker import Accepted, Outcome
from shared.http import RegisterClient, RegisterTransport, json_object
from shared.identifiers import mask_personal_ids
from shared.oauth2 import ClientCredentialsAuth, TokenRequestError
from shared.tracing import instrument_http_client

REGISTER = "NVR"
FHIR_JSON = "application/fhir+json"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)

# What a request can raise that classify_exception knows; anything else is a bug and surfaces.
_REQUEST_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, TokenRequestError)
# A whole bundle answered so: the URL or content type is wrong, not the events (pause, alarm).
_NOT_NVR = {404: "no FHIR endpoint there", 405: "POST not allowed", 415: "content type refused"}
# A refused entry: the error class per status (4xx other than these: "register_rejected").
_ENTRY_CLASSES = {403: "register_forbidden", 404: "register_not_found", 409: "register_duplicate"}


class NvrClient:
    """Sends bundles, changes and deletions to NVR and finds records by report identifier.

    `send_bundle`, `put` and `delete` never raise for HTTP, transport or token problems: they
    return outcomes (`Accepted` or the `DeliveryError` that decides the event's fate). `find` and
    `vaccines` raise that error instead. A 401 left after the auth's one refresh and retry, or a
    403 on a whole request, is a ConfigurationError (pause and alarm).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        profile: NvrProfile | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.profile = profile or NvrProfile()
        self._fhir = self.profile.fhir_path.rstrip("/")
        self._client = RegisterClient(
            base_url=base_url,
            auth=auth,
            verify=ssl_context if ssl_context is not None else True,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport
            or RegisterTransport(ssl_context=ssl_context, max_connections=max_connections),
            headers={"accept": FHIR_JSON},
            follow_redirects=False,
        )
        instrument_http_client(self._client, tracer_provider)  # CLIENT spans, when tracing is on

    @classmethod
    def from_settings(cls, settings: NvrSettings) -> NvrClient:
        profile = settings.profile
        auth = ClientCredentialsAuth(
            settings.base_url.rstrip("/") + profile.token_path,
            settings.client_id,
            settings.secret(),
        )
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        )
        context = (
            ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else None
        )
        return cls(
            settings.base_url,
            auth=auth,
            profile=profile,
            timeout=timeout,
            max_connections=settings.max_connections,
            ssl_context=context,
        )

    async def send_bundle(self, entries: Sequence[dict[str, Any]]) -> list[Outcome] | DeliveryError:
        """POST a bundle of `entries` (`create_entry`/`change_entry`): one outcome per entry, in
        order, or the DeliveryError of the whole request. Per entry: 2xx → Accepted(NVR's id);
        4xx → RegisterRejectedError with the entry's status and the precise reason (a 409 has
        error_class "register_duplicate": look the record up); 5xx/429 → transient. A
        batch-response of another length than the bundle is a ConfigurationError."""
        creates = all(entry.get("request", {}).get("method") == "POST" for entry in entries)
        operation = "create" if creates else "correct"
        try:
            body = build_bundle(entries, self.profile)
        except ConfigurationError as exc:
            return exc
        response = await self._call("POST", self._fhir or "/", operation, content=body)
        if isinstance(response, DeliveryError):
            return response
        if response.status_code in _NOT_NVR:
            return bad_answer(REGISTER, response, _NOT_NVR[response.status_code])
        error = _error(response, operation)
        if error is not None:
            return error
        try:
            results = parse_batch_response(response.content)
        except MalformedResponseError as exc:
            return bad_answer(REGISTER, response, str(exc))
        if len(results) != len(entries):
            return bad_answer(
                REGISTER, response, f"{len(results)} entries for a bundle of {len(entries)}"
            )
        return [
            _entry_outcome(position, entry, result)
            for position, (entry, result) in enumerate(zip(entries, results, strict=True))
        ]

    async def put(self, nvr_id: str, resource: dict[str, Any]) -> Outcome:
        """Replace record `nvr_id` with `resource` (PUT Immunization/<id>): Accepted(nvr_id)."""
        if resource.get("id", nvr_id) != nvr_id:
            raise ValueError("the resource's id is not the id it is PUT to")
        body = json.dumps({**resource, "id": nvr_id}, ensure_ascii=False, separators=(",", ":"))
        response = await self._call("PUT", self._record(nvr_id), "correct", content=body.encode())
        if isinstance(response, DeliveryError):
            return response
        return _not_held(response, nvr_id) or _error(response, "correct") or Accepted(nvr_id)

    async def delete(self, nvr_id: str) -> Outcome:
        """Delete record `nvr_id`: 204/200 (and 410, already gone) → Accepted(nvr_id); 404 → a
        RegisterRejectedError (`register_not_found`), as for a PUT entry of a bundle."""
        response = await self._call("DELETE", self._record(nvr_id), "cancel")
        if isinstance(response, DeliveryError):
            return response
        if response.status_code == 410:
            return Accepted(nvr_id)
        return _not_held(response, nvr_id) or _error(response, "cancel") or Accepted(nvr_id)

    async def find(self, system: str, value: str) -> str | None:
        """NVR's id of the live record whose identifier is `system|value`, or None. Raises the
        classified DeliveryError when NVR cannot be asked."""
        params = {"identifier": f"{system}|{value}"}
        response = await self._call("GET", f"{self._fhir}/{RESOURCE_TYPE}", "lookup", params=params)
        if isinstance(response, DeliveryError):
            raise response
        error = _error(response, "lookup")
        if error is not None:
            raise error
        bundle = json_object(response)
        entries = bundle.get("entry", [])
        if bundle.get("resourceType") != "Bundle" or not isinstance(entries, list):
            raise bad_answer(REGISTER, response, "no searchset Bundle")
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == RESOURCE_TYPE:
                record_id = resource.get("id")
                if isinstance(record_id, str) and record_id:
                    return record_id
        return None

    async def vaccines(self) -> list[dict[str, Any]]:
        """NVR's current vaccine list: the Medications of its Bundle (one per batch,
        docs/nvr-api.md). Raises the classified DeliveryError."""
        response = await self._call("GET", self.profile.vaccines_path, "lookup", accept=FHIR_JSON)
        if isinstance(response, DeliveryError):
            raise response
        error = _error(response, "lookup")
        if error is not None:
            raise error
        body = json_object(response)
        listed = body.get("entry", []) if body.get("resourceType") == "Bundle" else None
        if not isinstance(listed, list):
            raise bad_answer(REGISTER, response, "no Bundle of Medications")
        resources = [entry.get("resource") for entry in listed if isinstance(entry, dict)]
        return [
            resource
            for resource in resources
            if isinstance(resource, dict) and resource.get("resourceType") == "Medication"
        ]

    async def probe(self) -> DeliveryError | None:
        """Are our credentials taken? A token and the vaccine list: None, or why not."""
        try:
            await self.vaccines()
        except DeliveryError as exc:
            return exc
        return None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> NvrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _record(self, nvr_id: str) -> str:
        return f"{self._fhir}/{RESOURCE_TYPE}/{quote(nvr_id, safe='')}"

    async def _call(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        accept: str = FHIR_JSON,
    ) -> httpx.Response | DeliveryError:
        headers = {"accept": accept}
        if content is not None:
            headers["content-type"] = FHIR_JSON
        try:
            return await self._client.request(
                method, url, content=content, params=params, headers=headers
            )
        except _REQUEST_ERRORS as exc:
            return classify_exception(exc, operation=operation, register=REGISTER)


def _entry_outcome(position: int, entry: dict[str, Any], result: EntryResponse) -> Outcome:
    request = entry.get("request", {})
    method = request.get("method")
    operation = "create" if method == "POST" else "correct"
    reason = result.reason
    error = classify_response(result.status, reason, operation=operation, register=REGISTER)
    if error is None:  # 2xx
        record_id = result.id
        if record_id is None and method == "PUT":
            record_id = str(request.get("url", "")).rsplit("/", 1)[-1] or None
        if record_id is None:
            return ConfigurationError(
                f"{REGISTER} accepted entry {position} ({result.status}) without a location; "
                "is base_url NVR?",
                error_class="register_bad_answer",
                register_status=result.status,
            )
        return Accepted(record_id)
    if 400 <= result.status <= 499 and result.status not in (401, 408, 429):
        return RegisterRejectedError(
            f"{REGISTER} refused entry {position} ({method} {result.status}): {reason}",
            error_class=_ENTRY_CLASSES.get(result.status, "register_rejected"),
            register_status=result.status,
            register_response=reason[:RESPONSE_LIMIT],
        )
    return error


def _not_held(response: httpx.Response, nvr_id: str) -> RegisterRejectedError | None:
    """A 404 to a change or deletion by id: NVR does not hold `nvr_id`. The id is one NVR gave
    (the ledger kept it from the create, or a search found it), so no retry can bring the record
    back (unlike GVR's 404 before a create has arrived): a dead letter naming field and rule."""
    if response.status_code != 404:
        return None
    issues = parse_outcome(response.content)
    raw = mask_personal_ids(response.text[:RESPONSE_LIMIT])
    return RegisterRejectedError(
        f"{REGISTER} does not hold Immunization/{nvr_id} (404): "
        f"{describe(issues) if issues else raw or '(no body)'}",
        error_class=_ENTRY_CLASSES[404],
        register_status=404,
        register_response=raw,
    )


def _error(response: httpx.Response, operation: str) -> DeliveryError | None:
    """The classified error of a non-2xx answer, its message the OperationOutcome's reason."""
    if response.is_success:
        return None
    issues = parse_outcome(response.content)
    raw = mask_personal_ids(response.text[:RESPONSE_LIMIT])
    error = classify_response(
        response.status_code,
        describe(issues) if issues else raw,
        headers=response.headers,
        operation=operation,
        register=REGISTER,
    )
    if error is not None:
        error.register_response = raw
    return error
