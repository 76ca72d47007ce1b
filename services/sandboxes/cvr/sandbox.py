"""`CvrSandbox`: CVR's SFTP drop box — an asyncssh server in a thread of its own, the register
behind it reading every file renamed into its inbox and answering in its outbox.

    with CvrSandbox(certs_dir=tmp / "cvr-keys") as cvr:
        transfer = cvr.transfer(receipt_timeout=10)
        receipt = await transfer.upload(name, content)
        cvr.holding()

The root holds ``in/`` (the provider writes ``<name>.part`` there and renames it to ``<name>``;
only the rename delivers) and ``ut/`` (``<name>.kvitto.json``, read-only to the provider). Only
user `username` with the client key of `keys` logs in. Faults (`CvrFaults`, `set_faults`): a
refused login, a connection dropped after so many bytes of an upload, a slow disk, a slow
register.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import asyncssh

from services.cvr.transfer import PART_SUFFIX, RECEIPT_SUFFIX, CvrTransfer
from services.sandboxes.cvr.keys import SERVER_HOSTS, CvrKeys
from services.sandboxes.cvr.store import FileStore, StoredFile, receipt_body
from services.sandboxes.cvr.validation import judge
from services.sandboxes.server import StartStop
from shared.schedule import Period

USERNAME = "regbridge"
INBOX = "in"
OUTBOX = "ut"
_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
_WRITE_ACCESS = asyncssh.ACE4_WRITE_DATA | asyncssh.ACE4_APPEND_DATA


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CvrFaults:
    """What goes wrong, until changed.

    `refuse_login`: every login is refused (a key the region has revoked). `drop_after_bytes`:
    an upload's connection is cut once it has written this many bytes of a file — the next
    `drop_uploads` uploads (None: every upload while set; it switches itself off when counted
    down). `write_delay_ms`: each write waits this long (a slow disk). `receipt_delay_s`: the
    register reads a file this long after its rename (a slow register: the receipt comes late).
    """

    refuse_login: bool = False
    drop_after_bytes: int | None = None
    drop_uploads: int | None = None
    write_delay_ms: float = 0.0
    receipt_delay_s: float = 0.0


class CvrSandbox(StartStop):
    """CVR's SFTP server on `host`:`port` (0 picks a free port), its keys in `certs_dir` (a
    temporary directory if None; reused while complete unless `new_keys`), its folders under
    `root` (a temporary directory if None; an existing root's files are read back at start)."""

    def __init__(
        self,
        *,
        certs_dir: Path | str | None = None,
        new_keys: bool = False,
        key_hosts: Sequence[str] = SERVER_HOSTS,
        root: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = USERNAME,
        faults: CvrFaults | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._temporary: list[tempfile.TemporaryDirectory[str]] = []
        if certs_dir is None:
            certs_dir = self._temporary_dir("cvr-keys-")
        make = CvrKeys.create if new_keys else CvrKeys.ensure
        self.keys: CvrKeys = make(certs_dir, hosts=key_hosts)
        self.root = Path(root) if root is not None else Path(self._temporary_dir("cvr-root-"))
        self.inbox = self.root / INBOX
        self.outbox = self.root / OUTBOX
        self.host = host
        self.port = port
        self.username = username
        self.clock = clock
        self.store = FileStore()
        self._faults = faults or CvrFaults()
        self._faults_lock = threading.Lock()
        self._read_lock = threading.Lock()  # the register reads one file at a time
        self._client_key = self.keys.client_public_key()
        self._host_key = asyncssh.read_private_key(self.keys.host_key)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _temporary_dir(self, prefix: str) -> str:
        folder = tempfile.TemporaryDirectory(prefix=prefix)
        self._temporary.append(folder)
        return folder.name

    # ---- start and stop --------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("the CVR sandbox is already started")
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._read_back()
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self.port = loop.run_until_complete(self._listen())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="cvr-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the CVR sandbox did not start within {timeout:g} s")
        if failure:
            self._thread.join()
            self._thread, self._loop = None, None
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self._loop, self._thread = None, None
        for folder in self._temporary:
            folder.cleanup()
        self._temporary.clear()

    async def _listen(self) -> int:
        self._acceptor = await asyncssh.listen(
            self.host,
            self.port,
            server_host_keys=[self._host_key],
            server_factory=lambda: _Server(self),
            sftp_factory=lambda channel: _Sftp(channel, self),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            config=None,
        )
        return self._acceptor.get_port()

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            connection.abort()
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    # ---- what tests and the CLI use ---------------------------------------------------------

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` (the address the known_hosts pins, wherever it listens)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"{host}:{self.port}"

    @property
    def faults(self) -> CvrFaults:
        with self._faults_lock:
            return self._faults

    def set_faults(self, **changes: Any) -> CvrFaults:
        """Change the faults named (`CvrFaults`' fields), keep the others."""
        with self._faults_lock:
            self._faults = dataclasses.replace(self._faults, **changes)
            return self._faults

    def transfer(self, **settings: Any) -> CvrTransfer:
        """A `CvrTransfer` to this sandbox with its client key and pinned host key; `settings`
        override any of its arguments (``receipt_timeout=…``, ``known_hosts=…`` …)."""
        host = self.address.rsplit(":", 1)[0]
        arguments: dict[str, Any] = {
            "host": host,
            "port": self.port,
            "username": self.username,
            "client_key": self.keys.client_key,
            "known_hosts": self.keys.known_hosts,
            "poll_interval": 0.05,
        }
        return CvrTransfer(**(arguments | settings))

    def holding(
        self, owner: str | None = None, period: Period | None = None
    ) -> list[dict[str, Any]]:
        """The latest file held per reporting unit and period, with its accepted rows."""
        return self.store.holding(owner, period)

    def deliveries(self) -> dict[str, int]:
        """Files renamed into the inbox, per name (a dropped upload is none)."""
        return self.store.deliveries()

    def receipt(self, name: str) -> dict[str, Any] | None:
        """The receipt the register wrote for `name`, or None."""
        stored = self.store.get(name)
        return stored.receipt if stored is not None else None

    def reset(self) -> None:
        """No files (the folders emptied), no deliveries, no faults."""
        with self._read_lock:
            self.store.reset()
            for folder in (self.inbox, self.outbox):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True, exist_ok=True)
        with self._faults_lock:
            self._faults = CvrFaults()

    # ---- the register ----------------------------------------------------------------------

    def _arrived(self, name: str) -> None:
        """A file renamed into the inbox (in the server's loop): read it, now or after the
        receipt delay."""
        self.store.count_delivery(name)
        task = asyncio.get_running_loop().create_task(self._read_later(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_later(self, name: str) -> None:
        delay = self.faults.receipt_delay_s
        if delay > 0:
            await asyncio.sleep(delay)
        await asyncio.get_running_loop().run_in_executor(None, self._read, name)

    def _read(self, name: str, stored_receipt: dict[str, Any] | None = None) -> None:
        """Judge `name` against what the register holds, keep it, write its receipt (after
        keeping it: whoever sees the receipt sees the holding)."""
        with self._read_lock:
            try:
                content = (self.inbox / name).read_bytes()
            except FileNotFoundError:  # reset while it waited
                return
            judgement = judge(name, content, holding=self.store)
            receipt = stored_receipt or receipt_body(
                self.store.next_receipt_id(), name, content, self.clock(), judgement
            )
            header = judgement.file.header if judgement.file is not None else None
            self.store.add(StoredFile(name, receipt, header, judgement))
            if stored_receipt is None:
                _write_atomically(
                    self.outbox / (name + RECEIPT_SUFFIX),
                    json.dumps(receipt, ensure_ascii=False, indent=2).encode() + b"\n",
                )

    def _read_back(self) -> None:
        """An existing root: its files read again in the order they came (their stored
        receipts kept), and any file renamed in without a receipt read now."""
        if not self.inbox.is_dir():
            return
        arrived = sorted(
            (path for path in self.inbox.iterdir() if _delivered(path.name) and path.is_file()),
            key=lambda path: (path.stat().st_mtime_ns, path.name),
        )
        for path in arrived:
            self.store.count_delivery(path.name)
            receipt_path = self.outbox / (path.name + RECEIPT_SUFFIX)
            stored: dict[str, Any] | None = None
            if receipt_path.is_file():
                with contextlib.suppress(ValueError, OSError):
                    stored = json.loads(receipt_path.read_text(encoding="utf-8"))
            self._read(path.name, stored if isinstance(stored, dict) else None)

    def _consume_drop(self) -> int | None:
        """The byte count after which this upload's connection is cut, or None (one of the
        counted drops used up)."""
        with self._faults_lock:
            faults = self._faults
            if faults.drop_after_bytes is None:
                return None
            if faults.drop_uploads is not None:
                left = faults.drop_uploads - 1
                self._faults = dataclasses.replace(
                    faults,
                    drop_uploads=left if left > 0 else None,
                    drop_after_bytes=faults.drop_after_bytes if left > 0 else None,
                )
            return faults.drop_after_bytes


class _Server(asyncssh.SSHServer):
    """Public-key login for the sandbox's user and client key only."""

    def __init__(self, sandbox: CvrSandbox) -> None:
        self._sandbox = sandbox
        self._connection: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._sandbox._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._sandbox._connections.discard(self._connection)

    def begin_auth(self, username: str) -> bool:
        return True  # every login authenticates

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        sandbox = self._sandbox
        if sandbox.faults.refuse_login:
            return False
        return username == sandbox.username and key.public_data == sandbox._client_key.public_data


class _Sftp(asyncssh.SFTPServer):
    """The provider's view of the root: it writes ``in/<name>.part`` and renames it to
    ``in/<name>``; it reads anything; it changes nothing else."""

    def __init__(self, channel: asyncssh.SSHServerChannel[bytes], sandbox: CvrSandbox) -> None:
        super().__init__(channel, chroot=os.fsencode(sandbox.root))
        self._sandbox = sandbox
        self._drop_after: dict[int, int | None] = {}  # id(open file) → its upload's drop
        self._dropped = False

    # -- writing: .part files in the inbox only

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        writing = bool(pflags & _WRITE_FLAGS)
        if writing:
            self._check_writable(path)
        file = super().open(path, pflags, attrs)
        if writing:
            self._drop_after[id(file)] = self._sandbox._consume_drop()
        return file

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        writing = bool(desired_access & _WRITE_ACCESS)
        if writing:
            self._check_writable(path)
        file = super().open56(path, desired_access, flags, attrs)
        if writing:
            self._drop_after[id(file)] = self._sandbox._consume_drop()
        return file

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if self._dropped:
            raise asyncssh.SFTPConnectionLost("the connection was dropped")
        delay = self._sandbox.faults.write_delay_ms
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        limit = self._drop_after.get(id(file_obj))
        if limit is not None and offset + len(data) > limit:
            keep = max(0, limit - offset)
            if keep:
                super().write(file_obj, offset, data[:keep])
            self._dropped = True
            self.channel.get_connection().abort()  # the network goes away mid-upload
            raise asyncssh.SFTPConnectionLost("the connection was dropped")
        written = super().write(file_obj, offset, data)
        assert isinstance(written, int)
        return written

    def close(self, file_obj: object) -> None:
        self._drop_after.pop(id(file_obj), None)
        super().close(file_obj)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        old, new = _inbox_name(oldpath), _inbox_name(newpath)
        if old is None or new is None or not old.endswith(PART_SUFFIX) or not _delivered(new):
            raise asyncssh.SFTPPermissionDenied(
                f"only {INBOX}/<name>{PART_SUFFIX} → {INBOX}/<name> is renamed here"
            )
        super().rename(oldpath, newpath)  # refuses a name that is there already
        self._sandbox._arrived(new)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        """As `rename`: a delivered file is never replaced, under any rename."""
        self.rename(oldpath, newpath)

    def remove(self, path: bytes) -> None:
        name = _inbox_name(path)
        if name is None or not name.endswith(PART_SUFFIX):
            raise asyncssh.SFTPPermissionDenied(f"only {INBOX}/<name>{PART_SUFFIX} is removed")
        super().remove(path)

    def _check_writable(self, path: bytes) -> None:
        name = _inbox_name(path)
        if (
            name is None
            or not name.endswith(PART_SUFFIX)
            or not _delivered(name[: -len(PART_SUFFIX)])
        ):
            raise asyncssh.SFTPPermissionDenied(
                f"files are written as {INBOX}/<name>{PART_SUFFIX} only"
            )

    # -- nothing else changes

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("no new folders")

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("the folders stay")

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("attributes are the register's")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("no links")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("no links")


def _inbox_name(path: bytes) -> str | None:
    """The file name of a path directly in the inbox, or None."""
    normal = posixpath.normpath(posixpath.join("/", os.fsdecode(path)))
    folder, name = posixpath.split(normal)
    return name if folder == f"/{INBOX}" and name else None


def _delivered(name: str) -> bool:
    """A name the register reads when it lands in the inbox (not a .part, not hidden)."""
    return bool(name) and not name.startswith(".") and not name.endswith(PART_SUFFIX)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
