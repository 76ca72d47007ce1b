"""SSH keys for the CVR sandbox: its host key and the one client key it lets in, as files.

In production the provider makes its key pair and sends CVR the public half; CVR's host key is
pinned from what the region publishes. Here both are made together, the GVR sandbox's
certificates' way: kept in a directory, reused while complete, never committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

SERVER_HOSTS = ("127.0.0.1", "localhost")
KEY_TYPE = "ssh-ed25519"
FILES = {
    "host_key": "host_key",
    "host_key_pub": "host_key.pub",
    "client_key": "client_key",
    "client_key_pub": "client_key.pub",
    "known_hosts": "known_hosts",
}


@dataclass(frozen=True)
class CvrKeys:
    """The key files in `directory` (see `FILES` for their names).

    ``host_key`` / ``host_key.pub`` the server's key; ``known_hosts`` pins it for the server's
    hosts (``127.0.0.1,localhost ssh-ed25519 …``, any port); ``client_key`` (OpenSSH format,
    no passphrase) / ``client_key.pub`` the worker's key, the only one the sandbox accepts.
    A worker is configured with ``client_key`` and ``known_hosts`` (or ``host_key.pub``).
    """

    directory: Path
    host_key: Path
    host_key_pub: Path
    client_key: Path
    client_key_pub: Path
    known_hosts: Path

    @classmethod
    def at(cls, directory: Path | str) -> CvrKeys:
        """The file paths in `directory` (whether or not they exist)."""
        folder = Path(directory)
        return cls(folder, **{field: folder / name for field, name in FILES.items()})

    @classmethod
    def create(cls, directory: Path | str, hosts: Sequence[str] = SERVER_HOSTS) -> CvrKeys:
        """A new host key (pinned for `hosts`) and client key in `directory`; overwritten."""
        keys = cls.at(directory)
        keys.directory.mkdir(parents=True, exist_ok=True)
        (keys.directory / ".gitignore").write_text("# test keys: never committed\n*\n")
        write_key_pair(keys.host_key, keys.host_key_pub, "cvr-sandbox host key")
        write_key_pair(keys.client_key, keys.client_key_pub, "regbridge cvr worker")
        write_known_hosts(keys.known_hosts, hosts, keys.host_key_pub)
        return keys

    @classmethod
    def ensure(cls, directory: Path | str, hosts: Sequence[str] = SERVER_HOSTS) -> CvrKeys:
        """The keys in `directory` if all are there (a worker keeps working), else new ones.

        Reused keys keep the hosts their known_hosts names."""
        keys = cls.at(directory)
        return keys if keys.complete() else cls.create(directory, hosts)

    def complete(self) -> bool:
        return all(getattr(self, field).is_file() for field in FILES)

    def client_public_key(self) -> asyncssh.SSHKey:
        return asyncssh.read_public_key(self.client_key_pub)


def write_key_pair(private: Path, public: Path, comment: str) -> asyncssh.SSHKey:
    """A new Ed25519 key: the private half in OpenSSH format (mode 600), the public half."""
    key = asyncssh.generate_private_key(KEY_TYPE, comment=comment)
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.export_private_key("openssh"))
    private.chmod(0o600)
    public.write_bytes(key.export_public_key("openssh"))
    return key


def write_known_hosts(path: Path, hosts: Sequence[str], public_key: Path) -> None:
    """``<host>,<host> <key>``: the key pinned for `hosts` on any port."""
    key = public_key.read_text(encoding="ascii").strip()
    path.write_text(f"{','.join(hosts)} {key}\n", encoding="ascii")


def foreign_key_pair(directory: Path | str, name: str = "foreign") -> tuple[Path, Path]:
    """Another key pair (``<name>``, ``<name>.pub``) in `directory`: a client key the sandbox
    refuses, or — its public half pinned — a host key the sandbox does not have."""
    folder = Path(directory)
    private, public = folder / name, folder / f"{name}.pub"
    write_key_pair(private, public, f"not the cvr sandbox's ({name})")
    return private, public
