"""A database that is not a node's: another application's, on either engine (a SQLite file
named by ``sqlite:///``, a PostgreSQL schema).  tansiq refuses it with a message and leaves it
as it found it: no table of tansiq's is made there, none of its own is changed."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servers import free_port

from tansiq.cli import main

OTHER_APP = [
    "CREATE TABLE invoices (n INTEGER PRIMARY KEY, customer TEXT NOT NULL)",
    "INSERT INTO invoices VALUES (1, 'ours')",
]


def _other_apps_database(tmp_path: Path, database_url: str) -> str:
    """The URL of a database holding another application's table (and nothing of tansiq's)."""
    if not database_url:
        with closing(sqlite3.connect(tmp_path / "other.db")) as conn:
            for statement in OTHER_APP:
                conn.execute(statement)
            conn.commit()
        return f"sqlite:///{tmp_path / 'other.db'}"
    with _pg(database_url) as conn:
        for statement in OTHER_APP:
            conn.execute(statement)
    return database_url


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _contents(url: str) -> dict[str, Any]:
    """Every table of the database (SQLite) or schema (PostgreSQL) *url* names, with its rows."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :])) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
    with _pg(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY table_name"
            )
        ]
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}


@pytest.mark.parametrize(
    "command",
    [["account", "list"], ["export"], ["audit", "verify"], ["stats"], ["serve"]],
    ids=" ".join,
)
def test_a_command_on_another_applications_database_changes_nothing(
    tmp_path: Path, database_url: str, command: list[str]
) -> None:
    """A wrong --database-url: the command says no node is there (exit 1), and the database
    holds what it held.  Each made tansiq's 18 tables there first (every migration), then
    said so, leaving them behind in the other application's database."""
    url = _other_apps_database(tmp_path, database_url)
    before = _contents(url)
    assert before == {"invoices": [(1, "ours")]}
    (tmp_path / "eg").mkdir()
    args = [*command, "--data-dir", str(tmp_path / "eg"), "--database-url", url]
    if command == ["serve"]:
        args += ["--port", str(free_port()), "--sync-interval-seconds", "0"]
    result = CliRunner().invoke(main, args, env={})
    assert result.exit_code == 1, result.output
    assert "holds no node; run `tansiq init` first" in result.stderr
    assert "Traceback" not in result.output
    assert _contents(url) == before
