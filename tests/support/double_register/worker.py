"""A RegisterWorker for the register double: JSON test events in, HTTP through one pooled client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from shared.delivery.classify import classify_exception, classify_response
from shared.delivery.errors import (
    DeliveryError,
    InvalidEventError,
    PermanentError,
    RegisterUnavailableError,
)
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission
from shared.http import json_object

OPERATIONS = ("create", "correct", "cancel")
MAX_BATCH = 100  # the double's /records/batch limit, as NVR's bundles

Request = dict[str, Any]


@dataclass(frozen=True)
class DoubleEvent:
    """The test event: `{"event_id", "record_id", "record_version", "operation", "payload"}`."""

    event_id: str
    record_id: str
    record_version: int
    operation: str
    payload: dict[str, Any]


def parse_double_event(raw: bytes) -> DoubleEvent:
    """Bytes → DoubleEvent; InvalidEventError names the first thing wrong."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEventError(f"event is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEventError(f"event must be a JSON object, got {type(data).__name__}")
    for name in ("event_id", "record_id", "record_version", "operation", "payload"):
        if name not in data:
            raise InvalidEventError(f"event has no {name!r}")
    for name in ("event_id", "record_id"):
        if not isinstance(data[name], str) or not data[name]:
            raise InvalidEventError(f"{name!r} must be a non-empty string, got {data[name]!r}")
    version = data["record_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidEventError(f"'record_version' must be an integer >= 1, got {version!r}")
    if data["operation"] not in OPERATIONS:
        raise InvalidEventError(
            f"'operation' must be one of {list(OPERATIONS)}, got {data['operation']!r}"
        )
    if not isinstance(data["payload"], dict):
        kind = type(data["payload"]).__name__
        raise InvalidEventError(f"'payload' must be a JSON object, got {kind}")
    return DoubleEvent(
        data["event_id"], data["record_id"], version, data["operation"], data["payload"]
    )


class DoubleWorker:
    """Talks to a RegisterDouble: one request per submission (concurrent), or batches of ≤ 100."""

    name = "double"
    version = "0.0.0-test"

    def __init__(
        self,
        base_url: str,
        *,
        batch: bool = False,
        timeout: httpx.Timeout | float = httpx.Timeout(5.0, pool=None),  # noqa: B008 - immutable
        max_connections: int = 100,
        register: str = "double",
    ) -> None:
        self.batch = batch
        self.register = register
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> DoubleWorker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def parse(self, raw: bytes) -> tuple[EventIdentity, DoubleEvent]:
        event = parse_double_event(raw)
        identity = EventIdentity(
            event.event_id, event.record_id, event.record_version, event.operation
        )
        return identity, event

    def map(self, event: object, reference: str | None) -> Request:
        """The register keys records by record_id, so the reference is not sent."""
        if not isinstance(event, DoubleEvent):
            raise PermanentError(f"cannot map {type(event).__name__}: not a DoubleEvent")
        return {
            "record_id": event.record_id,
            "record_version": event.record_version,
            "event_id": event.event_id,
            "operation": event.operation,
            "payload": event.payload,
        }

    async def submit(self, batch: Sequence[Submission[Request]]) -> list[Outcome]:
        """One outcome per submission, same order; httpx errors become outcomes, per request.

        Only what `classify_exception` refuses to classify (a bug, not a register's failure) is
        raised, as the project's one classification policy wants.
        """
        if not self.batch:
            return list(await asyncio.gather(*(self._submit_one(s) for s in batch)))
        chunks = [batch[i : i + MAX_BATCH] for i in range(0, len(batch), MAX_BATCH)]
        answers = await asyncio.gather(*(self._submit_chunk(chunk) for chunk in chunks))
        return [outcome for answer in answers for outcome in answer]

    async def lookup(self, submission: Submission[Request]) -> Accepted | None:
        """Accepted when the register holds this record at this version or later.

        Raises the classified DeliveryError when the register cannot say.
        """
        identity = submission.identity
        try:
            response = await self._client.get(f"/records/{quote(identity.record_id, safe='')}")
        except httpx.HTTPError as exc:
            raise self._classify_exception(exc, identity.operation) from exc
        if response.status_code == 404:
            return None
        error = self._classify(
            response.status_code, response.text, response.headers, identity.operation
        )
        if error is not None:
            raise error
        body = json_object(response)
        version, reference = body.get("record_version"), body.get("reference")
        if not isinstance(version, int) or not isinstance(reference, str):
            raise RegisterUnavailableError(f"lookup answer without version/reference: {body!r}")
        return Accepted(reference) if version >= identity.record_version else None

    async def _submit_one(self, submission: Submission[Request]) -> Outcome:
        operation = submission.identity.operation
        try:
            response = await self._client.post("/records", json=submission.request)
        except httpx.HTTPError as exc:
            return self._classify_exception(exc, operation)
        error = self._classify(response.status_code, response.text, response.headers, operation)
        if error is not None:
            return error
        return _accepted(json_object(response), submission)

    async def _submit_chunk(self, chunk: Sequence[Submission[Request]]) -> list[Outcome]:
        body = {"entries": [s.request for s in chunk]}
        try:
            response = await self._client.post("/records/batch", json=body)
        except httpx.HTTPError as exc:
            return [self._classify_exception(exc, s.identity.operation) for s in chunk]
        outcomes: list[Outcome] = []
        for submission in chunk:  # the whole call failed: the same fate, one error each
            error = self._classify(
                response.status_code, response.text, response.headers, submission.identity.operation
            )
            if error is None:
                break
            outcomes.append(error)
        if outcomes:
            return outcomes
        entries = json_object(response).get("entries")
        if not isinstance(entries, list) or len(entries) != len(chunk):
            count = len(entries) if isinstance(entries, list) else "no"
            message = f"batch answer had {count} entries for {len(chunk)} requests"
            return [RegisterUnavailableError(message) for _ in chunk]
        for submission, entry in zip(chunk, entries, strict=True):
            status = entry.get("status") if isinstance(entry, dict) else None
            if not isinstance(status, int):
                outcomes.append(RegisterUnavailableError(f"batch entry without status: {entry!r}"))
                continue
            text = json.dumps({k: v for k, v in entry.items() if k != "status"})
            error = self._classify(status, text, None, submission.identity.operation)
            outcomes.append(error if error is not None else _accepted(entry, submission))
        return outcomes

    def _classify(
        self, status: int, body: str, headers: httpx.Headers | None, operation: str
    ) -> DeliveryError | None:
        return classify_response(
            status, body, headers=headers, operation=operation, register=self.register
        )

    def _classify_exception(self, exc: httpx.HTTPError, operation: str) -> DeliveryError:
        """Transport, timeout and status errors become outcomes; an unknown one is re-raised."""
        return classify_exception(exc, operation=operation, register=self.register)


def _accepted(body: dict[str, Any], submission: Submission[Request]) -> Outcome:
    reference = body.get("reference") or submission.reference
    if not isinstance(reference, str):
        return RegisterUnavailableError(f"register accepted without a reference: {body!r}")
    return Accepted(reference)
