"""The store after failures and beside other writers: connections, transactions, the clock."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from conftest import BACKENDS, PG_URL, make_settings
from test_store import count, indicator

from tansiq.node import Node
from tansiq.store.ingest import IngestError, ingest


def _terminate(pid: int) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


ON_POSTGRESQL = pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)


@ON_POSTGRESQL
def test_postgresql_session_lost_between_requests_is_opened_again(node: Node) -> None:
    """PostgreSQL: when the server ends a thread's session (a restart, an idle timeout, an
    administrator), the request that meets the dead connection fails, and the next one on that
    thread opens a new session instead of failing the same way for ever."""
    before = count(node)
    for conn in (node.db.connection(), node.db.reader()):
        _terminate(int(conn.execute("SELECT pg_backend_pid()").fetchone()[0]))
    with pytest.raises(Exception, match=r"(?i)terminat|closed|server"):
        ingest(node.db, [indicator(900)])
    assert ingest(node.db, [indicator(900), indicator(901)]).stored == 2
    assert count(node) == before + 2
    with pytest.raises(Exception, match=r"(?i)terminat|closed|server"):
        node.db.reader().execute("SELECT 1").fetchone()
    assert node.db.reader().execute("SELECT 1").fetchone()[0] == 1


@ON_POSTGRESQL
def test_postgresql_session_lost_inside_a_write_is_not_replaced_there(node: Node) -> None:
    """A session lost in the middle of a write transaction stays lost until the transaction
    ends: a new session there would run the rest of the transaction's statements each in a
    transaction of its own, without the write lock."""
    before = count(node)
    lost = r"(?i)terminat|closed|lost|server"
    with pytest.raises(Exception, match=lost), node.db.write():
        _terminate(int(node.db.fetchone("SELECT pg_backend_pid()")[0]))
        with pytest.raises(Exception, match=lost):
            node.db.execute("DELETE FROM objects")
        node.db.execute("DELETE FROM objects")
    assert count(node) == before


@pytest.mark.parametrize(("stored", "posted"), [(1, True), (0, False), ([1], [True])])
def test_a_boolean_is_not_the_same_as_a_number(node: Node, stored: Any, posted: Any) -> None:
    """A version that differs from the stored one only by ``true`` for ``1`` (JSON values of
    different types, equal in Python) is a conflict, not an identical no-op that is dropped;
    within one bundle as well as against a committed version."""
    ingest(node.db, [indicator(910, x_flag=stored)])
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(910, x_flag=posted)])
    assert exc.value.only_conflicts
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(911, x_flag=stored), indicator(911, x_flag=posted)])
    assert exc.value.only_conflicts
    same = ingest(node.db, [indicator(910, x_flag=stored), indicator(912, x_n=1.0)])
    assert (same.stored, same.unchanged) == (1, 1)
    assert ingest(node.db, [indicator(912, x_n=1)]).unchanged == 1  # one JSON number


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_commit_that_fails_leaves_no_transaction_open(node: Node) -> None:
    """SQLite: when ``COMMIT`` itself fails (here a deferred foreign key; a full disk or an I/O
    error alike) the transaction stays open unless rolled back: the write's changes would then
    be committed by whatever statement ends it later, and every later write on the thread
    failed with 'cannot start a transaction within a transaction'."""
    db = node.db
    db.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TEMP TABLE child (parent INTEGER"
        " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    before = count(node)
    with pytest.raises(Exception, match=r"(?i)foreign key"), db.write():
        db.execute("INSERT INTO child (parent) VALUES (1)")
        db.execute("DELETE FROM objects")
    assert not db.connection().in_transaction
    assert count(node) == before
    assert ingest(db, [indicator(920)]).stored == 1


def test_checkpointer_survives_a_failed_checkpoint(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One failed ``wal_checkpoint`` (a full disk, an I/O error) ended the checkpointer thread
    for good; with every connection's own autocheckpoint off, the WAL then grew without end."""
    from tansiq.store import database as dbmod

    real = dbmod.connect_sqlite
    calls = []

    class Flaky:
        def __init__(self, conn):  # type: ignore[no-untyped-def]
            self.conn = conn

        def execute(self, sql, *args):  # type: ignore[no-untyped-def]
            if "wal_checkpoint" in sql:
                calls.append(sql)
                if len(calls) == 1:
                    raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

        def close(self) -> None:
            self.conn.close()

    monkeypatch.setattr(dbmod, "connect_sqlite", lambda *a, **k: Flaky(real(*a, **k)))
    db = dbmod.Database("", tmp_path)
    try:
        db.checkpoint_in_background(interval=0.05)
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) >= 3, "the checkpointer stopped after its first failure"
    finally:
        db.close()


def test_opening_a_database_that_holds_no_node_closes_it(
    tmp_path: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node() refusing a database with no node (an init that failed, a wrong URL) closes the
    connections it opened: nobody else holds them (on PostgreSQL each is a server session)."""
    import tansiq.node

    opened: list[Any] = []
    closed: list[Any] = []

    def spying(settings: Any) -> Any:
        db = real(settings)
        opened.append(db)
        close = db.close
        db.close = lambda: (closed.append(db), close())[1]  # type: ignore[method-assign]
        return db

    real = tansiq.node.open_database
    monkeypatch.setattr(tansiq.node, "open_database", spying)
    (tmp_path / "eg").mkdir()
    with pytest.raises(tansiq.node.NodeError, match="no node"):
        Node(make_settings(tmp_path / "eg", database_url))
    assert len(opened) == 1 and closed == opened


def test_an_interrupt_while_the_writer_thread_writes_stores_nothing(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (KeyboardInterrupt) while the caller waits for the writer thread to write the
    last batches: the thread writes on the caller's connection, in the caller's transaction, so
    the rollback must wait for it; rolled back under it, its rows would be written outside any
    transaction (the connections are in autocommit mode), and stored."""
    import os
    import signal
    import threading

    from tansiq.store.ingest import _Writer

    flush = _Writer.flush

    def slow_flush(self: _Writer, *args: Any) -> None:
        if threading.current_thread().name == "tansiq-ingest-writer":
            time.sleep(0.4)
        flush(self, *args)

    monkeypatch.setattr(_Writer, "flush", slow_flush)
    before = count(node)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):  # three batches: the caller is waiting by 0.2 s
        ingest(node.db, [indicator(i) for i in range(21)], batch_size=7)
    timer.join()
    time.sleep(1.5)  # whatever the thread would still write
    assert count(node) == before
    assert ingest(node.db, [indicator(77)]).stored == 1
