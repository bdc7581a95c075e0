"""The console's users file and the ``iqgate users`` command."""

from __future__ import annotations

import io
import json
import stat

import pytest

from iqgate.cli import main
from iqgate.node.console.users import Role, User, UsersFile, UsersFileError


def test_added_users_log_in_with_their_password_only(tmp_path):
    users = UsersFile(tmp_path / "users.json")
    users.add("ann", "correct horse", Role.ADMIN)
    users.add("bob", "battery staple", Role.TECHNOLOGIST)
    assert users.authenticate("ann", "correct horse") == User("ann", Role.ADMIN)
    assert users.authenticate("bob", "battery staple") == User("bob", Role.TECHNOLOGIST)
    assert users.authenticate("ann", "battery staple") is None
    assert users.authenticate("nobody", "correct horse") is None


def test_the_file_holds_salted_argon2_hashes_readable_by_its_owner_only(tmp_path):
    users = UsersFile(tmp_path / "users.json")
    users.add("ann", "same password", Role.TECHNOLOGIST)
    users.add("bob", "same password", Role.TECHNOLOGIST)
    stored = json.loads(users.path.read_text())["users"]
    assert stored["ann"]["hash"].startswith("$argon2id$")
    assert stored["ann"]["hash"] != stored["bob"]["hash"]
    assert "same password" not in users.path.read_text()
    assert stat.S_IMODE(users.path.stat().st_mode) == 0o600


def test_removed_users_are_gone_and_bad_changes_are_refused(tmp_path):
    users = UsersFile(tmp_path / "users.json")
    users.add("ann", "correct horse", Role.ADMIN)
    users.remove("ann")
    assert users.users() == [] and users.role_of("ann") is None
    with pytest.raises(UsersFileError, match="no user 'ann'"):
        users.remove("ann")
    with pytest.raises(UsersFileError, match="at least 8"):
        users.add("ann", "short", Role.ADMIN)
    with pytest.raises(UsersFileError, match="user name 'a b'"):
        users.add("a b", "long enough", Role.ADMIN)


def test_an_unreadable_file_says_how_to_recreate_it(tmp_path):
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(UsersFileError, match="iqgate users add"):
        UsersFile(path).users()


def test_iqgate_users_adds_lists_and_removes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "users.json"
    monkeypatch.setenv("IQGATE_CONSOLE_USERS_FILE", str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "ann", "--role", "admin", "--password-stdin"]) == 0
    assert UsersFile(path).authenticate("ann", "a long password") == User("ann", Role.ADMIN)
    assert main(["users", "list"]) == 0
    assert "ann\tadmin" in capsys.readouterr().out
    assert main(["users", "remove", "ann"]) == 0
    assert main(["users", "remove", "ann"]) == 1
