"""The VGPV register: visits placed in their unit's month, files rendered and uploaded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from zoneinfo import ZoneInfo

from services.vgpv.client import VgpvClient
from services.vgpv.format import file_name, render
from services.vgpv.mapping import MappingRules, place
from services.vgpv.settings import VgpvSettings
from services.vgpv.units import UnitCatalog, UnitRules
from shared.contracts import CareContactEvent, ContractViolationError, parse_event
from shared.delivery.errors import InvalidEventError
from shared.delivery.worker import EventIdentity
from shared.files.register import FileHeader, FileKey, FileRow, Placement, Receipt

VERSION = "0.1.0"


def rules_from(settings: VgpvSettings) -> MappingRules:
    """What the settings decide about placing a visit."""
    units = UnitRules(
        areas=frozenset(settings.vardval_areas),
        default_area=settings.default_vardval_area,
        hsa_prefixes=settings.hsa_prefixes,
        grace=settings.unknown_unit_grace_delta(),
    )
    return MappingRules(units, dict(settings.visit_types), ZoneInfo(settings.zone))


class VgpvRegister:
    """Parse → place (pure, through the catalog) → render (pure) → deliver / look up (the
    client). A `FileRegister`: the file runtime (`shared/files/`) does the rest."""

    name = "vgpv"
    version = VERSION
    corrections_after_close = True  # VGPV pays from correction and cancellation rows next month

    def __init__(
        self,
        client: VgpvClient,
        catalog: UnitCatalog,
        rules: MappingRules | None = None,
        encoding: str = "utf-8",
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._rules = rules or MappingRules()
        self._encoding = encoding

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if not isinstance(event, CareContactEvent):
            raise InvalidEventError(f"event_type: expected care.contact, got {event.event_type}")
        identity = EventIdentity(
            str(event.event_id), event.record_id, event.record_version, str(event.operation)
        )
        return identity, event

    def place(self, event: object) -> Placement:
        assert isinstance(event, CareContactEvent)  # parse() returned it
        return place(event, self._catalog, self._rules)

    def file_name(self, key: FileKey, sequence: int) -> str:
        """The name the register knows a file by (docs/vgpv-file.md): the runtime names its
        headers with it."""
        return file_name(key, sequence)

    def render(self, header: FileHeader, rows: Iterable[FileRow]) -> Iterable[bytes]:
        return render(header, rows, self._encoding)

    async def deliver(self, header: FileHeader, content: AsyncIterator[bytes]) -> Receipt:
        return await self._client.upload(header.name, content)

    async def lookup(self, header: FileHeader) -> Receipt | None:
        return await self._client.receipt(header.name)

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self._client.aclose()
