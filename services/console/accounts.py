"""Local accounts: a name, a role and a scrypt hash of the password (hashlib, no extra library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# scrypt's cost: 2**14 * 8 * 128 bytes = 16 MiB and some 50 ms per check (OWASP's minimum)
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything, identity numbers masked
    OPERATOR = "operator"  # and may reveal one identity number with a reason, and replay


class AccountsError(ValueError):
    """An accounts line that cannot be read."""


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    password_hash: str


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), for an accounts line."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` hashes to `stored` (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


_DUMMY = hash_password("not a password", salt=b"regbridge-dummy!")


def parse_accounts(text: str) -> dict[str, Account]:
    """Accounts from lines (or ';'-separated entries) of ``NAME ROLE HASH``; # starts a comment."""
    found: dict[str, Account] = {}
    for number, entry in enumerate(text.replace(";", "\n").splitlines(), start=1):
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        parts = entry.split()
        if len(parts) != 3:
            raise AccountsError(f"accounts entry {number}: expected NAME ROLE HASH")
        name, role, password_hash = parts
        if role not in set(Role):
            raise AccountsError(f"accounts entry {number}: role must be viewer or operator")
        if not password_hash.startswith("scrypt$"):
            raise AccountsError(f"accounts entry {number}: not a scrypt hash")
        found[name] = Account(name, Role(role), password_hash)
    return found


def load_accounts(inline: str, file: str | None) -> dict[str, Account]:
    """The settings' accounts and the accounts file's (the file's win on a shared name)."""
    accounts = parse_accounts(inline)
    if file:
        accounts.update(parse_accounts(Path(file).read_text(encoding="utf-8")))
    return accounts


def authenticate(accounts: dict[str, Account], name: str, password: str) -> Account | None:
    """The account when the password is right; an unknown name costs as much as a wrong one."""
    account = accounts.get(name)
    ok = verify_password(password, account.password_hash if account else _DUMMY)
    return account if ok and account is not None else None
