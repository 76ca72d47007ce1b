"""CvrTransfer: CVR's file delivery over SFTP, with a client key and a pinned host key.

A file is written as ``<inbox>/<name>.part`` and renamed to ``<inbox>/<name>`` once whole, so
the register never reads half a file: a connection dropped mid-upload leaves a ``.part`` the
register ignores and the next upload overwrites. The register answers each file it read with a
receipt in its outbox, ``<outbox>/<name>.kvitto.json``; the transfer polls for it. A name the
register already has is never uploaded again: its stored receipt is the answer.

Errors are the delivery runtime's: an unknown or changed host key, a refused login, a key that
cannot be read, a receipt that is no receipt → `ConfigurationError` (pause and alarm, never a
retry); a connection refused, dropped or timed out, a receipt that does not come in time →
`RegisterUnavailableError` (tried again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import asyncssh

from shared.delivery.errors import ConfigurationError, DeliveryError, RegisterUnavailableError
from shared.files.register import Receipt, RowVerdict

REGISTER: Final = "CVR"
PART_SUFFIX: Final = ".part"
RECEIPT_SUFFIX: Final = ".kvitto.json"
RESPONSE_LIMIT: Final = 2000
STATUSES: Final[dict[str, Literal["accepted", "partly_accepted", "refused"]]] = {
    "godkand": "accepted",
    "delvis_godkand": "partly_accepted",
    "avvisad": "refused",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", re.ASCII)


class CvrTransfer:
    """Uploads CVR files by SFTP and reads the register's receipts; one SSH connection per call.

        transfer = CvrTransfer(
            host="sftp.cvr.example", port=22, username="regbridge",
            client_key=Path("/keys/cvr"), known_hosts=Path("/keys/cvr_known_hosts"),
        )
        receipt = await transfer.upload(name, content)

    `known_hosts` pins the register's host key: an OpenSSH ``known_hosts`` file (its entries
    for `host`; without a port, or ``[host]:port``) or a single public key file (``ssh-ed25519
    AAAA…``, trusted for whatever host this connects to). Both files are read at each connect.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 22,
        username: str,
        client_key: Path | str,
        known_hosts: Path | str,
        client_key_passphrase: str | None = None,
        receipt_timeout: float = 600.0,
        poll_interval: float = 2.0,
        connect_timeout: float = 30.0,
        keepalive_interval: float = 15.0,
        inbox: str = "/in",
        outbox: str = "/ut",
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.client_key = Path(client_key)
        self.known_hosts = Path(known_hosts)
        self._passphrase = client_key_passphrase
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.inbox = inbox
        self.outbox = outbox

    # ---- the register's operations ---------------------------------------------------------

    async def upload(self, name: str, content: AsyncIterator[bytes]) -> Receipt:
        """Deliver the file `name` (its bytes streamed from `content`) and wait for its receipt.

        A name whose receipt is in the outbox is not uploaded again: that receipt is the
        answer. A name already in the inbox without a receipt (an earlier upload got as far as
        the rename) is waited for, not uploaded again."""
        _check_name(name)
        try:
            async with self._sftp("deliver") as sftp:
                stored = await self._read_receipt(sftp, name)
                if stored is not None:
                    return stored
                if not await sftp.exists(self._inbox(name)):
                    await self._write(sftp, name, content)
                return await self._await_receipt(sftp, name)
        finally:
            aclose = getattr(content, "aclose", None)
            if aclose is not None:  # not consumed when the register had the file already
                with contextlib.suppress(Exception):
                    await aclose()

    async def receipt(self, name: str) -> Receipt | None:
        """The receipt of the file `name` in the register's outbox, or None (no such file, or
        not read yet): what a crash mid-delivery asks."""
        _check_name(name)
        async with self._sftp("lookup") as sftp:
            return await self._read_receipt(sftp, name)

    async def check(self) -> None:
        """Connect, log in and see the inbox and the outbox: the configuration works."""
        async with self._sftp("check") as sftp:
            for folder in (self.inbox, self.outbox):
                if not await sftp.isdir(folder):
                    raise ConfigurationError(
                        f"{REGISTER}'s SFTP server has no folder {folder}",
                        error_class="sftp_path_missing",
                    )

    # ---- the steps -------------------------------------------------------------------------

    async def _write(
        self, sftp: asyncssh.SFTPClient, name: str, content: AsyncIterator[bytes]
    ) -> None:
        """``<name>.part`` written (truncating a dropped upload's), then renamed to `name`."""
        part, final = self._inbox(name + PART_SUFFIX), self._inbox(name)
        async with sftp.open(part, "wb") as file:
            async for piece in content:
                if piece:
                    await file.write(piece)
        try:
            await sftp.rename(part, final)
        except asyncssh.SFTPError:
            # Another delivery of the same name (a replica, a retry racing a slow answer) has
            # put the file in place first: the register reads that one; ours is not needed.
            if not await sftp.exists(final):
                raise
            with contextlib.suppress(asyncssh.SFTPError):
                await sftp.remove(part)

    async def _await_receipt(self, sftp: asyncssh.SFTPClient, name: str) -> Receipt:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.receipt_timeout
        unreadable: ConfigurationError | None = None
        while True:
            try:
                receipt = await self._read_receipt(sftp, name)
            except ConfigurationError as exc:  # half written? look again until the deadline
                receipt, unreadable = None, exc
            if receipt is not None:
                return receipt
            if loop.time() >= deadline:
                if unreadable is not None:
                    raise unreadable
                raise RegisterUnavailableError(
                    f"{REGISTER} has not answered {name} within {self.receipt_timeout:g} s "
                    f"(no {self._outbox(name)})",
                    error_class="receipt_timeout",
                )
            await asyncio.sleep(min(self.poll_interval, max(deadline - loop.time(), 0.0)))

    async def _read_receipt(self, sftp: asyncssh.SFTPClient, name: str) -> Receipt | None:
        try:
            async with sftp.open(self._outbox(name), "rb") as file:
                data = await file.read()
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        raw = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
        return parse_receipt(raw, name)

    # ---- the connection --------------------------------------------------------------------

    @asynccontextmanager
    async def _sftp(self, operation: str) -> AsyncIterator[asyncssh.SFTPClient]:
        """A logged-in SFTP session; asyncssh's and the network's errors as DeliveryErrors."""
        key = self._client_key()
        trusted = self._trusted_host_keys()
        try:
            async with (
                asyncssh.connect(
                    self.host,
                    self.port,
                    username=self.username,
                    client_keys=[key],
                    known_hosts=trusted,
                    agent_path=None,
                    config=None,
                    preferred_auth="publickey",
                    connect_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive_interval,
                ) as connection,
                connection.start_sftp_client() as sftp,
            ):
                yield sftp
        except DeliveryError:
            raise
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            raise self._classify(exc, operation) from exc

    def _classify(self, exc: BaseException, operation: str) -> DeliveryError:
        where = f"{REGISTER} SFTP {self.host}:{self.port} ({operation})"
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return ConfigurationError(
                f"{where}: the server's host key is not the one pinned in {self.known_hosts} "
                f"({detail})",
                error_class="host_key_unknown",
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return ConfigurationError(
                f"{where}: login as {self.username} with {self.client_key} refused ({detail})",
                error_class="login_refused",
            )
        if isinstance(exc, asyncssh.SFTPPermissionDenied):
            return ConfigurationError(
                f"{where}: not allowed ({detail})", error_class="sftp_permission_denied"
            )
        if isinstance(exc, (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath)):
            return ConfigurationError(
                f"{where}: no such folder or file ({detail}); are {self.inbox} and "
                f"{self.outbox} the register's?",
                error_class="sftp_path_missing",
            )
        if isinstance(exc, TimeoutError):
            return RegisterUnavailableError(f"{where}: timed out ({detail})")
        return RegisterUnavailableError(f"{where}: {detail}")

    def _client_key(self) -> asyncssh.SSHKey:
        try:
            return asyncssh.read_private_key(self.client_key, self._passphrase)
        except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise ConfigurationError(
                f"{REGISTER} SFTP: the client key {self.client_key} cannot be used "
                f"({type(exc).__name__}: {exc})",
                error_class="client_key_unreadable",
            ) from exc

    def _trusted_host_keys(self) -> asyncssh.SSHKnownHosts:
        """The pinned host keys: a single public key file (trusted for any host) or a
        known_hosts file. A file that holds neither pins nothing: every host key is unknown."""
        try:
            text = self.known_hosts.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{REGISTER} SFTP: the pinned host key file {self.known_hosts} cannot be read "
                f"({type(exc).__name__}: {exc})",
                error_class="host_key_unknown",
            ) from exc
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith("#")]
        if len(lines) == 1:
            try:
                asyncssh.import_public_key(lines[0])
            except asyncssh.KeyImportError:
                pass
            else:
                return asyncssh.import_known_hosts(f"* {lines[0]}\n")
        try:
            return asyncssh.import_known_hosts(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"{REGISTER} SFTP: {self.known_hosts} is neither a public key nor a known_hosts "
                f"file ({exc})",
                error_class="host_key_unknown",
            ) from exc

    def _inbox(self, name: str) -> str:
        return posixpath.join(self.inbox, name)

    def _outbox(self, name: str) -> str:
        return posixpath.join(self.outbox, name + RECEIPT_SUFFIX)


def parse_receipt(raw: str, name: str | None = None) -> Receipt:
    """CVR's receipt (``kvittoId``, ``filnamn``, ``mottagen``, ``status``, ``rader`` …) as a
    `Receipt`; ConfigurationError (`register_bad_answer`) when it is not one — or is another
    file's."""
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise TypeError(f"a receipt is a JSON object, not {type(body).__name__}")
        rows = tuple(
            RowVerdict(
                number=int(row["radnummer"]),
                accepted=row["status"] == "godkand",
                code=row.get("kod"),
                reason=row.get("orsak"),
            )
            for row in body.get("rader") or ()
        )
        reason = body.get("orsak")
        if body.get("orsakskod"):
            reason = f"{body['orsakskod']}: {reason}"
        received_at = datetime.fromisoformat(str(body["mottagen"]))
        if received_at.tzinfo is None:
            raise ValueError("mottagen has no zone")
        receipt = Receipt(
            file_name=str(body["filnamn"]),
            receipt_id=str(body["kvittoId"]),
            received_at=received_at,
            status=STATUSES[body["status"]],
            reason=reason,
            rows=rows,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{REGISTER}'s receipt could not be read ({type(exc).__name__}: {exc})",
            error_class="register_bad_answer",
            register_response=raw[:RESPONSE_LIMIT],
        ) from exc
    if name is not None and receipt.file_name != name:
        raise ConfigurationError(
            f"{REGISTER}'s receipt for {name} names {receipt.file_name}",
            error_class="register_bad_answer",
            register_response=raw[:RESPONSE_LIMIT],
        )
    return receipt


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name.endswith(PART_SUFFIX):
        raise ValueError(f"{name!r} is not a file name CVR takes")
