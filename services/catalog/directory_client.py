"""DirectoryClient: one unit by HSA-id, and the streamed full export, over httpx — HSA's, and
KIV's, which answers in the same shape (GetHsaUnit-style look-ups, an NDJSON export with a header
and a trailer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.delivery.classify import classify_exception, classify_response
from shared.delivery.errors import DeliveryError, RegisterUnavailableError
from shared.http import RegisterClient


class TruncatedExportError(RegisterUnavailableError):
    """The export ended without its trailer (or with the wrong count): it cannot be trusted."""

    error_class = "export_truncated"


@dataclass(frozen=True)
class ExportRow:
    """One line of the export: a unit record, or why the line could not be read."""

    line_number: int
    unit: dict[str, Any] | None
    problem: str | None = None


class DirectoryClient:
    """One directory's API; `name` ("HSA", "KIV") is the register named in errors."""

    def __init__(self, base_url: str, *, name: str = "HSA", timeout: float = 10.0) -> None:
        self.name = name
        self._client = RegisterClient(
            base_url=base_url, timeout=httpx.Timeout(timeout, read=max(timeout, 60.0))
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_unit(self, hsa_id: str) -> dict[str, Any] | None:
        """The unit, or None when the directory does not know it (GetHsaUnit answers empty)."""
        try:
            response = await self._client.get(f"/units/{hsa_id}")
        except httpx.HTTPError as exc:
            raise classify_exception(exc, register=self.name) from exc
        error = classify_response(
            response.status_code, response.text, headers=response.headers, register=self.name
        )
        if error is not None:
            raise error
        body = response.json()
        return body if isinstance(body, dict) and body else None

    async def export(
        self, on_header: Callable[[dict[str, Any]], None] | None = None
    ) -> AsyncIterator[ExportRow]:
        """Every unit of the full export, in order; raises TruncatedExportError at the end unless
        the trailer arrived with the count of unit lines actually read. `on_header` is given the
        export's header (``generatedAt``, ``asOf``, ``count``) before the first unit."""
        expected: int | None = None
        count = 0
        complete = False
        try:
            async with self._client.stream("GET", "/export") as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _status_error(response, self.name)
                line_number = 0
                async for line in response.aiter_lines():
                    line_number += 1
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError as exc:
                        count += 1
                        yield ExportRow(line_number, None, f"line {line_number}: not JSON ({exc})")
                        continue
                    if isinstance(item, dict) and "export" in item:
                        expected = int(item["export"].get("count", -1))
                        if on_header is not None:
                            on_header(item["export"])
                    elif isinstance(item, dict) and "end" in item:
                        complete = int(item["end"].get("count", -1)) == count
                    else:
                        count += 1
                        unit = item if isinstance(item, dict) else None
                        problem = None if unit else f"line {line_number}: not a JSON object"
                        yield ExportRow(line_number, unit, problem)
        except httpx.HTTPError as exc:
            raise TruncatedExportError(
                f"{self.name} export broke off after {count} units: {exc}"
            ) from exc
        if not complete:
            raise TruncatedExportError(
                f"{self.name} export ended after {count} units without a matching trailer"
                + (f" (announced {expected})" if expected is not None else "")
            )


def _status_error(response: httpx.Response, name: str) -> DeliveryError:
    error = classify_response(response.status_code, response.text, register=name)
    return error or RegisterUnavailableError(f"{name} export answered {response.status_code}")
