"""Passwords given to the CLI out of other local users' sight: `--password -` reads stdin."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import make_settings

from tansiq.accounts.store import verify_login
from tansiq.cli import main
from tansiq.node import Node

SECRET = "  a secret, spaces kept  "  # only the line end is taken off


def _run(data_dir: Path, database_url: str, args: list[str], stdin: str | None) -> Result:
    where = ["--data-dir", str(data_dir), "--database-url", database_url]
    return CliRunner().invoke(main, [*args, *where], input=stdin, env={})


def _where(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A new data dir for `init`, else a node's (`tansiq init` made it)."""
    return tmp_path / "new" if command == "init" else Path(request.getfixturevalue("data_dir"))


def _logs_in(data_dir: Path, database_url: str, username: str, password: str) -> bool:
    node = Node(make_settings(data_dir, database_url))
    try:
        return verify_login(node.db, username, password) is not None
    finally:
        node.close()


COMMANDS = {
    "init": (["init", "--partner", "EG", "--name", "Egypt", "--admin-password", "-"], "admin"),
    "account add": (["account", "add", "sami", "--role", "editor", "--password", "-"], "sami"),
    "account password": (["account", "password", "admin", "--password", "-"], "admin"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_password_from_standard_input(
    command: str, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    """`--password VALUE` puts the password in the process's arguments, which every local
    user reads with `ps`; `--password -` takes it from standard input, and it is not printed."""
    args, username = COMMANDS[command]
    where = _where(command, tmp_path, request)
    result = _run(where, database_url, args, SECRET + "\r\n")
    assert result.exit_code == 0, result.output
    assert SECRET.strip() not in result.output
    assert _logs_in(where, database_url, username, SECRET)
    assert not _logs_in(where, database_url, username, "-")


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_password_dash_with_nothing_on_standard_input_is_a_usage_error(
    command: str, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    args, _ = COMMANDS[command]
    where = _where(command, tmp_path, request)
    result = _run(where, database_url, args, "")
    assert result.exit_code == 2, result.output
    assert "standard input" in result.stderr and "password" in result.stderr.lower()
    assert command != "init" or not where.exists()  # nothing made


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_says_a_password_flag_value_is_seen_in_ps(command: str) -> None:
    result = CliRunner().invoke(main, [*command.split(), "--help"])
    text = " ".join(result.output.split())
    assert "`ps`" in text and "reads it from standard input" in text, text
