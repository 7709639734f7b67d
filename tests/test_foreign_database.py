"""A database that is not a node's: another application's, on either engine (a SQLite file
named by ``sqlite:///``, a PostgreSQL schema).  tansiq refuses it with a message and leaves it
as it found it: no table of tansiq's is made there, none of its own is changed."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PG_SKIP_REASON, PG_URL
from servers import free_port
from test_init import schema_rows

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
    """Every table of the database (SQLite) or schema (PostgreSQL) *url* names, with its rows;
    a SQLite file's journal mode too (tansiq's WAL is set in the file, for good)."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :])) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            found = {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
            return {**found, "journal_mode": conn.execute("PRAGMA journal_mode").fetchall()}
    with _pg(url) as conn:
        return schema_rows(conn)


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
    said so, leaving them behind in the other application's database; a SQLite file was
    left in WAL mode."""
    url = _other_apps_database(tmp_path, database_url)
    before = _contents(url)
    assert before["invoices"] == [(1, "ours")]
    (tmp_path / "eg").mkdir()
    args = [*command, "--data-dir", str(tmp_path / "eg"), "--database-url", url]
    if command == ["serve"]:
        args += ["--port", str(free_port()), "--sync-interval-seconds", "0"]
    result = CliRunner().invoke(main, args, env={})
    assert result.exit_code == 1, result.output
    assert "holds no node; run `tansiq init` first" in result.stderr
    assert "Traceback" not in result.output
    assert _contents(url) == before


# Another application's table or index named as one of tansiq's: (that name, how it is made)
CLASHES = {
    "table": ("accounts", ["CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT)"]),
    "index": ("objects_type", ["CREATE INDEX objects_type ON invoices (customer)"]),
    # Rails' and golang-migrate's table of applied migrations
    "schema_migrations": (
        "schema_migrations",
        [
            "CREATE TABLE schema_migrations (version VARCHAR(20) PRIMARY KEY)",
            "INSERT INTO schema_migrations VALUES ('20240101120000')",
        ],
    ),
}


@pytest.mark.parametrize("clash", sorted(CLASHES))
def test_init_on_a_database_holding_tables_by_tansiqs_names_is_refused_unchanged(
    tmp_path: Path, database_url: str, clash: str
) -> None:
    """Another application's table or index by the name of one of tansiq's: init says so,
    exit 1, and leaves the database as it was.  It was a traceback (``relation "accounts"
    already exists``; ``column "name" does not exist``), and on SQLite the other
    application's file kept a ``schema_migrations`` table of tansiq's, and WAL mode."""
    url = _other_apps_database(tmp_path, database_url)
    name, statements = CLASHES[clash]
    if database_url:
        with _pg(url) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        with closing(sqlite3.connect(tmp_path / "other.db")) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
    before = _contents(url)
    d = tmp_path / "eg"
    args = ["init", "--partner", "EG", "--name", "Egypt", "--data-dir", str(d)]
    result = CliRunner().invoke(main, [*args, "--database-url", url], env={})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "holds another application's" in result.stderr, result.stderr
    assert f"named as tansiq's own ({name}); nothing was changed" in result.stderr
    assert _contents(url) == before
    assert not d.exists()


def test_init_in_a_schema_that_does_not_exist_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL: a URL whose search_path names no schema that exists (a typo, a schema not
    made yet): init says so, exit 1.  It was a traceback ("no schema has been selected to
    create in"), then a message, after a warning that another process was upgrading the
    schema (the migration lock, keyed by no schema, was not taken)."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3Dno_such_schema_{uuid.uuid4().hex[:8]}"
    d = tmp_path / "eg"
    args = ["init", "--partner", "EG", "--name", "Egypt", "--data-dir", str(d)]
    result = CliRunner().invoke(main, [*args, "--database-url", url], env={})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "has no schema to make tansiq's tables in: its search_path (no_such_schema_" in (
        result.stderr
    )
    assert "nothing was changed. Create it first (CREATE SCHEMA name)" in result.stderr
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "another process" in m], said  # (it said so, of no one)
    assert not d.exists()


def test_init_beside_another_applications_tables_leaves_them_alone(
    tmp_path: Path, database_url: str
) -> None:
    """A database (or schema) holding another application's tables of other names: the node
    is made beside them, and they hold what they held."""
    url = _other_apps_database(tmp_path, database_url)
    d = tmp_path / "eg"
    args = ["init", "--partner", "EG", "--name", "Egypt", "--data-dir", str(d)]
    result = CliRunner().invoke(main, [*args, "--database-url", url], env={})
    assert result.exit_code == 0, result.output
    after = _contents(url)
    assert after["invoices"] == [(1, "ours")]
    result = CliRunner().invoke(main, ["account", "list", "--data-dir", str(d)], env={})
    assert result.exit_code == 0 and result.stdout.split()[:3] == ["admin", "admin", "EG"]
