"""A store this process may not write (a SQLite file of another user, a read-only mount; a
PostgreSQL standby): one clear message, at start-up for the server, and a 503 or exit 1 (not a
traceback or a 500) for a write, with nothing stored."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result
from conftest import make_settings
from fastapi.testclient import TestClient
from test_store import count, indicator

from tansiq.cli import main
from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.store import database, dialect
from tansiq.store.database import StoreReadOnly

READ_ONLY = "read-only for this process"


def fix(settings: Settings) -> str:
    """What the message tells the operator to do, on the engine of *settings*."""
    return "primary server" if settings.database_url else "writable by the user tansiq runs as"


@pytest.fixture
def read_only(node: Node, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings opening *node*'s store read-only from now on: SQLite with ``mode=ro`` (as a
    file this process may not write opens), PostgreSQL with read-only transactions (as a
    standby's)."""
    node.db.close()
    if database_url:
        return make_settings(
            node.settings.data_path, database_url + quote(" -cdefault_transaction_read_only=on")
        )

    def opened_read_only(path: Path, cache_mb: int = 128) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={dialect.SQLITE_BUSY_TIMEOUT_S * 1000}")
        return conn

    monkeypatch.setattr(database, "connect_sqlite", opened_read_only)
    return node.settings


def _cli(settings: Settings, *args: str) -> Result:
    flags = ["--data-dir", str(settings.data_path), "--database-url", settings.database_url]
    return CliRunner().invoke(main, [*args, *flags], env={})


def test_a_write_on_a_read_only_store_says_so(
    node: Node, read_only: Settings, admin_token: str
) -> None:
    before = count(node)
    result = _cli(read_only, "account", "add", "bob", "--role", "reader")
    assert result.exit_code == 1, result.output
    assert READ_ONLY in result.stderr and "nothing was stored" in result.stderr
    assert fix(read_only) in result.stderr
    assert "Traceback" not in result.output
    if not read_only.database_url:  # (PostgreSQL: a standby's schema cannot be checked)
        from tansiq.api.app import create_app

        opened = Node(read_only)
        try:
            app = create_app(read_only, opened)
            headers = {"Authorization": f"Bearer {admin_token}"}
            with TestClient(app, headers=headers) as client:
                r = client.post("/api/bundles", json=_bundle([indicator(1)]))
            assert r.status_code == 503, r.text
            assert READ_ONLY in r.json()["detail"]
        finally:
            opened.close()
    node.db.close()
    assert count(node) == before
    assert all(a.username != "bob" for a in _accounts(node))


def test_the_server_refuses_to_start_on_a_read_only_store(
    read_only: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: it started, and every login and write answered an error."""
    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    with socket.socket() as s:  # a free port: the check comes after the port's
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    result = _cli(read_only, "serve", "--port", port, "--sync-interval-seconds", "0")
    assert result.exit_code == 1, result.output
    assert READ_ONLY in result.stderr and fix(read_only) in result.stderr
    assert "Traceback" not in result.output
    assert started == []


def test_the_start_up_check_passes_a_writable_store_without_changing_it(node: Node) -> None:
    clock = node.db.fetchall("SELECT last_added FROM node_clock")
    node.db.check_writable()
    assert node.db.fetchall("SELECT last_added FROM node_clock") == clock
    assert not node.db.in_transaction()


def test_the_start_up_check_does_not_wait_for_another_writer(node: Node) -> None:
    """SQLite: another connection's long write does not hold the check up (the busy timeout);
    PostgreSQL takes no lock."""
    other = node.db.side_connection()
    try:
        if node.db.dialect.is_sqlite:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE node_clock SET last_added = last_added")
            node.db.check_writable()
            other.execute("ROLLBACK")
        else:
            with other.transaction():
                other.execute("SELECT 1 FROM node_clock FOR UPDATE")
                node.db.check_writable()
    finally:
        other.close()


def test_read_only_is_recognised(read_only: Settings) -> None:
    db = database.Database(read_only.database_url, read_only.data_path)
    try:
        with pytest.raises(StoreReadOnly, match=READ_ONLY):
            db.check_writable()
    finally:
        db.close()


def _bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-000000000001",
        "objects": objects,
    }


def _accounts(node: Node) -> list[Any]:
    from tansiq.accounts.store import list_accounts

    return list_accounts(node.db)


@pytest.mark.parametrize(
    "command", [["stats"], ["export"], ["audit", "verify"], ["account", "list"]], ids=" ".join
)
def test_a_read_on_a_read_only_store_works(read_only: Settings, command: list[str]) -> None:
    """Reading a store of the current schema changes nothing, so a read-only one serves it
    (an export or an audit check on a PostgreSQL standby).  On PostgreSQL every command was
    refused: each start re-created the table of applied migrations ("IF NOT EXISTS"), which
    a read-only transaction may not even attempt."""
    result = _cli(read_only, *command)
    assert result.exit_code == 0, result.output
    assert READ_ONLY not in result.output
