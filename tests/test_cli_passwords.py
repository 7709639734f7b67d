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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_password_dash_at_a_terminal_is_typed_without_echo(
    data_dir: Path, database_url: str
) -> None:
    """At a terminal, `--password -` asks for the password twice, not shown as typed."""
    import os
    import pty
    import select
    import signal
    import sys
    import time

    args = ["account", "password", "admin", "--password", "-", "--data-dir", str(data_dir)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and controlling tty
        try:
            os.execv(sys.executable, [sys.executable, "-m", "tansiq", *args])
        finally:
            os._exit(127)  # never back into pytest
    seen = b""
    typed = answered = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child is gone: its end of the terminal closed
                    break
                if not chunk:
                    break
                seen += chunk
            if seen.endswith(b": ") and len(seen) != answered:  # a prompt, not answered yet
                os.write(fd, SECRET.encode() + b"\n")
                typed, answered = typed + 1, len(seen)
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert typed == 2 and SECRET.strip().encode() not in seen, seen
    assert _logs_in(data_dir, database_url, "admin", SECRET)
