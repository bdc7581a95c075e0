"""The console's users file: names, roles and salted argon2 password hashes.

The file is JSON (``{"users": {"name": {"role": "admin", "hash": "$argon2id$..."}}}``),
written with mode 0600 and replaced atomically; ``iqgate users add/remove/list`` manage
it. Hashes use argon2id with the library's defaults (a random salt per hash).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from iqgate.errors import IqgateError

USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")
"""Verified against when the user is unknown, so a wrong name costs as long as a wrong
password (no user enumeration by timing)."""


class UsersFileError(IqgateError):
    """The users file cannot be read or the change asked for is invalid."""


class Role(str, Enum):
    """What a console user may do: technologists review and give feedback; admins also
    export and run the spool operations."""

    TECHNOLOGIST = "technologist"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    """A console user as the pages see it."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """Whether the user may reach the admin pages."""
        return self.role is Role.ADMIN


class UsersFile:
    """The users file at ``path`` (read on each call, so changes apply without restart)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _entries(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            entries = loaded["users"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsersFileError(
                f"cannot read the console users file {str(self.path)!r} ({exc}); "
                "recreate it with `iqgate users add NAME`"
            ) from exc
        if not isinstance(entries, dict):
            raise UsersFileError(f"{self.path}: 'users' must be a mapping of name to entry")
        return entries

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"users": entries}, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def users(self) -> list[User]:
        """Every user, by name."""
        return [User(name, Role(e["role"])) for name, e in sorted(self._entries().items())]

    def role_of(self, name: str) -> Role | None:
        """The role of ``name``; None when the file does not list it."""
        entry = self._entries().get(name)
        return None if entry is None else Role(entry["role"])

    def add(self, name: str, password: str, role: Role) -> None:
        """Add ``name`` or replace its password and role."""
        if not USER_NAME.match(name):
            raise UsersFileError(f"user name {name!r} must be 1 to 64 letters, digits or . _ @ -")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UsersFileError(
                f"the password of {name!r} has {len(password)} characters; "
                f"use at least {MIN_PASSWORD_LENGTH}"
            )
        entries = self._entries()
        entries[name] = {"role": role.value, "hash": _HASHER.hash(password)}
        self._write(entries)

    def remove(self, name: str) -> None:
        """Remove ``name``."""
        entries = self._entries()
        if entries.pop(name, None) is None:
            raise UsersFileError(f"no user {name!r} in {self.path}")
        self._write(entries)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is right for ``name``; None otherwise."""
        entry = self._entries().get(name)
        try:
            _HASHER.verify(entry["hash"] if entry else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return None if entry is None else User(name, Role(entry["role"]))
