"""The CVR register: waiting-list entries placed in their unit's reports, files rendered and sent
over SFTP, receipts read back from CVR's outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path

from services.cvr.format import file_name, render
from services.cvr.mapping import MappingRules, UnitCatalog, place
from services.cvr.settings import CvrSettings
from services.cvr.transfer import CvrTransfer
from shared.contracts import CareWaitEvent, ContractViolationError, parse_event
from shared.delivery.errors import ConfigurationError, InvalidEventError
from shared.delivery.worker import EventIdentity
from shared.files.register import FileHeader, FileKey, FileRow, Placement, Receipt

VERSION = "0.1.0"


def rules_from(settings: CvrSettings) -> MappingRules:
    return MappingRules(
        counties=frozenset(settings.counties),
        hsa_prefixes=settings.hsa_prefixes,
        grace=settings.unknown_unit_grace_delta(),
        cadence=settings.periods,
    )


def transfer_from(settings: CvrSettings) -> CvrTransfer:
    """The SFTP client of the settings; ConfigurationError when the key files are not set."""
    if not settings.sftp_key_file or not settings.sftp_known_hosts:
        raise ConfigurationError(
            "CVR over SFTP needs REGBRIDGE_CVR_SFTP_KEY_FILE (the account's private key) and "
            "REGBRIDGE_CVR_SFTP_KNOWN_HOSTS (CVR's pinned host key)",
            error_class="sftp_not_configured",
        )
    return CvrTransfer(
        host=settings.sftp_host,
        port=settings.sftp_port,
        username=settings.sftp_username,
        client_key=Path(settings.sftp_key_file),
        known_hosts=Path(settings.sftp_known_hosts),
        receipt_timeout=settings.receipt_timeout,
        poll_interval=settings.receipt_poll_interval,
        connect_timeout=settings.sftp_connect_timeout,
    )


class CvrRegister:
    """Parse → place (pure, through the catalog) → render (pure) → deliver / look up (SFTP).
    A `FileRegister`: the file runtime (`shared/files/`) does the rest."""

    name = "cvr"
    version = VERSION
    corrections_after_close = False  # each report says how things stand: no correction rows

    def __init__(
        self, transfer: CvrTransfer, catalog: UnitCatalog, rules: MappingRules | None = None
    ) -> None:
        self._transfer = transfer
        self._catalog = catalog
        self._rules = rules or MappingRules(grace=timedelta(hours=6))

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        try:
            event = parse_event(raw)
        except ContractViolationError as exc:
            raise InvalidEventError(str(exc)) from None
        if not isinstance(event, CareWaitEvent):
            raise InvalidEventError(f"event_type: expected care.wait, got {event.event_type}")
        identity = EventIdentity(
            str(event.event_id), event.record_id, event.record_version, str(event.operation)
        )
        return identity, event

    def place(self, event: object) -> Placement:
        assert isinstance(event, CareWaitEvent)  # parse() returned it
        return place(event, self._catalog, self._rules)

    def file_name(self, key: FileKey, sequence: int) -> str:
        return file_name(key, sequence)

    def render(self, header: FileHeader, rows: Iterable[FileRow]) -> Iterable[bytes]:
        return render(header, rows)

    async def deliver(self, header: FileHeader, content: AsyncIterator[bytes]) -> Receipt:
        return await self._transfer.upload(header.name, content)

    async def lookup(self, header: FileHeader) -> Receipt | None:
        return await self._transfer.receipt(header.name)

    async def aclose(self) -> None:
        """Nothing held open: one SSH connection per call."""
