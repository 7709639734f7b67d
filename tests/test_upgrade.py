"""Upgrades: a store made by any earlier tansiq (its schema after any migration from 001 to
the last but one) reaches the current schema on both engines with its data kept and the derived
columns and tables right; a migration that fails midway leaves the store as it was, and the
next start finishes it."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from conftest import BACKENDS, PgSchema, make_settings
from test_store import indicator

import tansiq.node
from tansiq import policy
from tansiq.accounts.principal import Principal
from tansiq.accounts.sessions import session_account
from tansiq.accounts.store import account_for_token, token_hash
from tansiq.cli import main
from tansiq.federation import credentials
from tansiq.node import InitResult, Node, open_database
from tansiq.settings import Settings
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import MINUTE_US, now_micros
from tansiq.store import deletions, dialect, migrations, query
from tansiq.store.database import Database, StoreBusy
from tansiq.store.ingest import ingest
from tansiq.store.migrations import MIGRATIONS, NewerSchema, applied, migrate
from tansiq.store.query import ObjectFilter
from tansiq.store.rows import build_row

NAMES = [name for name, _ in MIGRATIONS]
EARLIER = range(1, len(MIGRATIONS))  # a store made by the first n migrations
V1, V2 = "2016-01-01T00:00:00.000Z", "2016-02-01T00:00:00.000Z"
X, Y = indicator(1)["id"], indicator(2)["id"]
TOKEN, COOKIE = "tsq_upgrade-token", "upgrade-cookie"
T0 = now_micros()
HOUR_US = 60 * MINUTE_US
USED = T0 - 5 * MINUTE_US  # a session's last use recorded by tansiq at 014 or later
SUSPENDED = T0 - HOUR_US


class Crash(Exception):
    """Stands for the process dying in the middle of a migration."""


def _row(n: int, modified: str, partners: list[str], added: int, latest: int) -> dict[str, Any]:
    values = build_row(set_distribution(indicator(n, modified), "EG", partners))
    values[0], values[8] = added, latest
    return dict(zip(("added", "id", "type", "version", "created", "modified", "created_by_ref",
                     "revoked", "is_latest", "spec_version", "json", "origin", "partners"),
                    values, strict=True))  # fmt: skip


# What an earlier tansiq wrote, table by table, in an order its foreign keys accept.  Each store
# gets the tables and columns its schema has (:func:`_seed`).
SEED: dict[str, list[dict[str, Any]]] = {
    "meta": [
        {"key": "partner", "value": "EG"},
        {"key": "name", "value": "Egypt"},
        {"key": "identity_id", "value": "identity--eg"},
    ],
    "accounts": [
        {"username": u, "password_hash": "x", "role": r, "partner": "EG", "created": T0}
        for u, r in (("admin", "admin"), ("ann", "reader"))
    ],
    "tokens": [
        {
            "token_hash": token_hash(TOKEN),
            "username": "ann",
            "label": "l",
            "scopes": "api",
            "created": T0,
            "expires": T0 + HOUR_US,
        }
    ],
    "partners": [
        {"code": "DZ", "name": "Algeria", "identity_id": "identity--dz", "created": T0},
        {
            "code": "TN",
            "name": "Tunisia",
            "identity_id": "identity--tn",
            "created": T0,
            "suspended": SUSPENDED,
            "suspended_reason": "audit",
        },
    ],
    "sharing_groups": [{"name": "north", "created": T0}],
    "group_members": [{"group_name": "north", "partner": p} for p in ("DZ", "TN")],
    "sessions": [
        {
            "session_hash": token_hash(COOKIE),
            "username": "ann",
            "csrf_token": "c",
            "created": T0 - HOUR_US,
            "expires": T0 + HOUR_US,
            "last_used": USED,
        }
    ],
    "audit": [
        {
            "seq": 1,
            "at": T0,
            "actor": "cli",
            "action": "node_initialised",
            "target": "EG",
            "detail": "{}",
            "prev_hash": "",
            "hash": "h",
        }
    ],
    # X: released to DZ, then narrowed to EG (withdrawn from DZ); Y: released to DZ.
    "objects": [
        _row(1, V1, ["DZ", "EG"], 1001, 0),
        _row(1, V2, ["EG"], 1002, 1),
        _row(2, V1, ["DZ", "EG"], 1003, 1),
    ],
    "withdrawals": [{"added": 1002, "id": X, "origin": "EG", "partners": ",DZ,"}],
    "deletions": [{"added": 1004, "id": Y, "version": 7, "origin": "EG", "partners": ",DZ,"}],
    "taxii_status": [
        {
            "id": "s1",
            "username": "ann",
            "status": "complete",
            "request_timestamp": T0,
            "total_count": 1,
            "success_count": 1,
            "failure_count": 0,
            "pending_count": 0,
            "details": "{}",
        }
    ],
    "sync_cursors": [{"partner": "DZ", "collection": "shared", "added_after": "9", "updated": T0}],
    "peer_credentials": [{"partner": "DZ", "token": "fernet:abc", "created": T0}],
}


def _columns(db: Database) -> dict[str, list[str]]:
    """Every table and view of the store, with its columns."""
    if db.dialect.is_sqlite:
        names = db.fetchall(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite_%'"
        )
        return {n: [str(c[1]) for c in db.fetchall(f"PRAGMA table_info({n})")] for (n,) in names}
    out: dict[str, list[str]] = {}
    for table, column in db.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        out.setdefault(str(table), []).append(str(column))
    return out


def schema(db: Database) -> dict[str, Any]:
    """Tables, views, columns (name, type, nullability, default, collation) and indexes."""
    if db.dialect.is_sqlite:
        tables = {
            n: sorted(tuple(c[1:5]) for c in db.fetchall(f"PRAGMA table_info({n})"))
            for n in _columns(db)
        }
        indexes = db.fetchall(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        )
        return {"tables": tables, "indexes": indexes}
    (here,) = db.fetchone("SELECT current_schema()") or ("",)
    tables = {}
    for table in _columns(db):
        tables[table] = sorted(
            db.fetchall(
                "SELECT column_name, data_type, is_nullable, column_default, collation_name"
                " FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
        )
    indexes = [
        (name, str(sql).replace(f" {here}.", " "))
        for name, sql in db.fetchall(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() ORDER BY indexname"
        )
    ]
    compression = db.fetchall(
        "SELECT a.attname, a.attcompression FROM pg_attribute a JOIN pg_class c"
        " ON c.oid = a.attrelid AND c.relname = 'objects' AND a.attname = 'json'"
        " WHERE c.relnamespace = current_schema()::regnamespace"
    )
    return {"tables": tables, "indexes": indexes, "json compression": compression}


def _migrate_first(db: Database, n: int) -> list[str]:
    """Apply the first *n* migrations, as the tansiq that shipped migration *n* did."""
    everything = migrations.MIGRATIONS
    migrations.MIGRATIONS = everything[:n]
    try:
        return migrate(db)
    finally:
        migrations.MIGRATIONS = everything


def _seeded_store(data_dir: Path, database_url: str, n: int) -> Path:
    """A new data dir (and its database) holding a seeded store of schema *n*."""
    data_dir.mkdir()
    db = Database(database_url, data_dir)
    try:
        _migrate_first(db, n)
        _seed(db)
    finally:
        db.close()
    return data_dir


def _seed(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Write :data:`SEED` into the tables and columns the store has; return what was written,
    as rows of the columns written, by table."""
    have = _columns(db)
    written: dict[str, list[tuple[Any, ...]]] = {}
    if "node_clock" not in have:
        return written
    with db.write():
        for table, rows in SEED.items():
            if table not in have:
                continue
            for row in rows:
                kept = {k: v for k, v in row.items() if k in have[table]}
                db.execute(
                    f"INSERT INTO {table} ({', '.join(kept)})"
                    f" VALUES ({', '.join('?' for _ in kept)})",
                    list(kept.values()),
                )
                written.setdefault(table, []).append(tuple(kept.items()))
        db.set_clock(1004)
    return written


def _still_there(db: Database, written: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, rows in written.items():
        for row in rows:
            where = " AND ".join(f"{k} = ?" for k, _ in row)
            found = db.fetchall(f"SELECT 1 FROM {table} WHERE {where}", [v for _, v in row])
            assert found == [(1,)], (table, row)


@pytest.fixture
def fresh(tmp_path: Path, database_url: str) -> Iterator[Callable[[], dict[str, Any]]]:
    """The schema of a store made now, by every migration (on the engine of the test)."""
    made: list[Any] = []

    def make() -> dict[str, Any]:
        url = ""
        if database_url:
            made.append(PgSchema())
            url = made[-1].url
        db = Database(url, tmp_path / "fresh")
        (tmp_path / "fresh").mkdir()
        try:
            migrate(db)
            return schema(db)
        finally:
            db.close()

    yield make
    for s in made:
        s.drop()


@pytest.mark.parametrize("n", EARLIER)
def test_a_store_of_every_earlier_schema_upgrades_with_its_data(
    tmp_path: Path, database_url: str, fresh: Callable[[], dict[str, Any]], n: int
) -> None:
    db = Database(database_url, tmp_path)
    try:
        assert _migrate_first(db, n) == NAMES[:n]
        written = _seed(db)
        assert migrate(db) == NAMES[n:]
        assert applied(db) == NAMES
        _still_there(db, written)
        assert schema(db) == fresh()

        # Columns added since: their values for the rows that were there.
        origins = db.fetchall("SELECT DISTINCT origin FROM latest_objects")
        assert origins == [("EG",) if n >= 2 else ("",)]
        assert db.fetchall("SELECT code, suspended, suspended_reason FROM partners") == (
            [("DZ", 0, ""), ("TN", SUSPENDED, "audit")] if n >= 13 else
            [("DZ", 0, ""), ("TN", 0, "")] if n >= 2 else []
        )  # fmt: skip
        last_used = db.fetchall("SELECT last_used FROM sessions")
        if n >= 14:
            assert last_used == [(USED,)]
        elif n >= 2:
            assert last_used[0][0] >= T0  # used at the upgrade (014)
        assert db.fetchall("SELECT id FROM bookkeeping_lock") == [(1,)]
        assert db.fetchall("SELECT COUNT(*) FROM sync_deferred") == [(0,)]

        # Tables derived from the data: X's withdrawal from DZ, whether 009 found it or the
        # write path had recorded it.
        withdrawals = db.fetchall("SELECT added, id, origin, partners FROM withdrawals")
        assert withdrawals == ([(1002, X, "EG", ",DZ,")] if n >= 2 else [])

        # The upgraded store at work: a session and a token sign ann in, DZ sees Y and is told
        # to drop X, and a new version narrowing Y withdraws it from DZ.
        if n >= 2:
            found = session_account(db, COOKIE, idle_minutes=30)
            assert found is not None and found[0].username == "ann"
        token_account = account_for_token(db, TOKEN)
        assert token_account is not None and token_account.username == "ann"
        dz = Principal("dz-reader", "reader", "DZ")
        page = query.list_latest(db, policy.condition(dz, "EG"), ObjectFilter(), limit=10)
        assert len(page.rows) == (1 if n >= 2 else 0)
        sync_dz = Principal("sync-DZ", "sync", "DZ")
        owed = deletions.feed(
            db,
            policy.withdrawn_condition(sync_dz, "EG"),
            policy.deleted_condition(sync_dz, "EG"),
            0,
            10,
        )
        assert [r[:2] for r in owed] == (
            [("withdrawn", X), ("deleted", Y)] if n >= 4 else
            [("withdrawn", X)] if n >= 2 else []
        )  # fmt: skip
        stored = ingest(db, [set_distribution(indicator(2, V2), "EG", ["EG"])], prepare=None)
        assert stored.stored == 1
        narrowed = db.fetchall("SELECT id, partners FROM withdrawals WHERE id = ?", (Y,))
        assert narrowed == ([(Y, ",DZ,")] if n >= 2 else [])
    finally:
        db.close()


# A store as tansiq at commit 9200e8b (schema 009) wrote it: see its "made_by".
STORE_009 = Path(__file__).parent / "data" / "store_009_eg.json.gz"


def test_a_store_written_by_an_earlier_tansiq_reads_as_it_did_there(
    tmp_path: Path, database_url: str
) -> None:
    """Not rows made up for the test: every row of a node's store that tansiq at schema 009
    wrote (a demo's EG node, synced with DZ and TN, then a revoked object, a withdrawal, an
    account and a token), put in a store of that schema on the test's engine.  Opened by this
    tansiq: the export is that tansiq's, the audit chain it wrote verifies, every token it
    issued signs its account in, the peer tokens it sealed open with the node's key, and the
    objects (date_added and all), sync cursors, clock and audit rows are as they were."""
    fixture = orjson.loads(gzip.decompress(STORE_009.read_bytes()))
    tables: dict[str, dict[str, list[Any]]] = fixture["tables"]
    data_dir = tmp_path / "eg"
    data_dir.mkdir()
    key = data_dir / tansiq.node.KEY_FILE
    key.write_text(fixture["private_key"], encoding="utf-8")
    key.chmod(0o600)
    db = Database(database_url, data_dir)
    try:
        _migrate_first(db, 9)
        with db.write():
            db.execute("DELETE FROM node_clock")
            for table in sorted(tables, key=lambda t: t not in ("accounts", "sharing_groups")):
                t = tables[table]  # (the tables others' foreign keys name first)
                marks = ", ".join("?" for _ in t["columns"])
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(t['columns'])}) VALUES ({marks})", t["rows"]
                )
    finally:
        db.close()

    flags = ["--data-dir", str(data_dir), "--database-url", database_url]
    exported = CliRunner().invoke(main, ["export", *flags], env={})
    assert exported.exit_code == 0, exported.output
    assert orjson.loads(exported.stdout)["objects"] == fixture["export"]
    verified = CliRunner().invoke(main, ["audit", "verify", *flags], env={})
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact" in verified.stdout
    node = Node(make_settings(data_dir, database_url))
    try:
        assert applied(node.db) == NAMES
        for token, username in fixture["tokens"].items():
            account = account_for_token(node.db, token)
            assert account is not None and account.username == username, username
        for partner, token in fixture["peer_tokens"].items():
            assert credentials.load(node, partner) == token
        for table in ("objects", "sync_cursors", "node_clock", "audit", "tokens", "withdrawals"):
            columns = ", ".join(tables[table]["columns"])
            rows = node.db.fetchall(f"SELECT {columns} FROM {table}")
            assert sorted(map(list, rows)) == sorted(tables[table]["rows"]), table
    finally:
        node.close()


def _crashing(step: Callable[..., list[str]]) -> Callable[..., Iterator[str]]:
    """*step*, dying once half its statements (rounded up) have run."""

    def run(d: Any) -> Iterator[str]:
        statements = step(d)
        yield from statements[: (len(statements) + 1) // 2]
        raise Crash(step.__name__)

    return run


@pytest.mark.parametrize("n", range(len(MIGRATIONS)))
def test_a_migration_that_dies_midway_leaves_the_store_as_it_was(
    tmp_path: Path,
    database_url: str,
    fresh: Callable[[], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    n: int,
) -> None:
    """Migration n+1 dies after some of its statements: the store stays at schema n, data and
    all, and the next start applies it (and the rest)."""
    db = Database(database_url, tmp_path)
    try:
        _migrate_first(db, n)
        written = _seed(db)
        before = schema(db)
        with monkeypatch.context() as m:
            name, step = MIGRATIONS[n]
            broken = [*MIGRATIONS[:n], (name, _crashing(step)), *MIGRATIONS[n + 1 :]]
            m.setattr(migrations, "MIGRATIONS", broken)
            with pytest.raises(Crash):
                migrate(db)
        assert applied(db) == NAMES[:n]
        assert schema(db) == before
        _still_there(db, written)
        assert not db.in_transaction()
        assert migrate(db) == NAMES[n:]  # the next start
        _still_there(db, written)
        assert schema(db) == fresh()
    finally:
        db.close()


def test_a_store_upgraded_by_a_newer_tansiq_is_refused(
    initialised: tuple[Settings, InitResult],
) -> None:
    """A downgrade: the store's schema has a migration this tansiq does not know.  Opening it
    is refused, saying which and what to do (it opened as if nothing were wrong, and wrote to
    a schema whose meaning had changed), and nothing is changed."""
    settings = initialised[0]
    db = open_database(settings)
    try:
        db.execute(
            "INSERT INTO schema_migrations (name, applied) VALUES ('016_from_the_future', 1)"
        )
        before = schema(db), applied(db)
    finally:
        db.close()
    with pytest.raises(NewerSchema, match="newer tansiq") as exc:
        Node(settings)
    assert "016_from_the_future" in str(exc.value)
    assert MIGRATIONS[-1][0] in str(exc.value)
    result = CliRunner().invoke(
        main, ["account", "list", "--data-dir", str(settings.data_path)], env={}
    )
    assert result.exit_code == 1, result.output
    assert "upgraded by a newer tansiq" in result.stderr
    assert "Traceback" not in result.output
    db = open_database(settings)
    try:
        assert (schema(db), applied(db)) == before
    finally:
        db.close()


def test_two_nodes_starting_at_once_on_an_older_schema_migrate_it_once(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two server processes (here two ``Node``s, each with its own connections) start at once
    on a store of schema 008.  Each step runs once; on PostgreSQL one process applies them all
    while the other waits on the migration lock, then finds nothing left to do.  Both work."""
    data_dir = _seeded_store(tmp_path / "node", database_url, 8)
    name, step = MIGRATIONS[9]

    def slow(d: Any) -> Iterator[str]:  # holds the migration lock a while
        time.sleep(0.5)
        yield from step(d)

    monkeypatch.setattr(migrations, "MIGRATIONS", [*MIGRATIONS[:9], (name, slow), *MIGRATIONS[10:]])
    results: list[list[str]] = []
    real = tansiq.node.migrate
    monkeypatch.setattr(tansiq.node, "migrate", lambda db: results.append(real(db)))
    settings = make_settings(data_dir, database_url)
    start = threading.Barrier(3)
    nodes: list[Node] = []
    errors: list[BaseException] = []

    def serve() -> None:
        start.wait()
        try:
            nodes.append(Node(settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    start.wait()
    waiting = False
    if database_url:  # the other process's session waits on the advisory lock
        with psycopg_connect(database_url) as watch:
            deadline = time.monotonic() + 5
            while not waiting and time.monotonic() < deadline:
                waiting = bool(
                    watch.execute(
                        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                        " AND objsubid = 2 AND NOT granted",
                        (migrations.MIGRATION_LOCK,),
                    ).fetchone()
                )
                time.sleep(0.01)
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        assert len(nodes) == 2
        assert sorted(n for r in results for n in r) == NAMES[8:]  # each step once
        if database_url:
            assert waiting
            assert sorted(results, key=len) == [[], NAMES[8:]]
            said = [r.getMessage() for r in caplog.records if r.name == "tansiq.store"]
            assert said == [
                migrations.UPGRADE_WAITING % Database(database_url, data_dir).describe()
            ]
        for i, node in enumerate(nodes):
            assert applied(node.db) == NAMES
            assert ingest(node.db, [indicator(100 + i)]).stored == 1
        assert nodes[0].db.fetchall("SELECT id FROM withdrawals") == [(X,)]
    finally:
        for node in nodes:
            node.close()


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_an_upgrade_behind_another_connections_lock_gives_up_and_says_so(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of schema 013 whose ``sessions`` another connection holds (a long transaction:
    an ingest, a read of a tansiq still running) when a node starts: the upgrade waits the lock
    timeout, then ends with a message naming what it could not apply, changing nothing.  On
    PostgreSQL it waited for ever (and every query on the table queued behind it)."""
    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.5)  # connections opened from now on
    monkeypatch.setattr(migrations, "LOCK_TIMEOUT_S", 0.5)
    data_dir = _seeded_store(tmp_path / "node", database_url, 13)
    settings = make_settings(data_dir, database_url)
    other = Database(database_url, data_dir).side_connection()
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            Node(settings).close()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    try:
        if database_url:
            other.execute("BEGIN")
            other.execute("SELECT COUNT(*) FROM sessions")  # holds it until the transaction ends
        else:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE node_clock SET last_added = last_added")
        starting = threading.Thread(target=start, daemon=True)
        starting.start()
        starting.join(20)
        hung = starting.is_alive()
    finally:
        other.execute("ROLLBACK")
    starting.join(20)
    other.close()
    assert not hung, "the upgrade waited for the other connection's lock without end"
    assert len(outcome) == 1 and isinstance(outcome[0], StoreBusy), outcome
    message = str(outcome[0])
    assert (
        "needs its schema upgraded (014_session_last_used, 015_sync_deferred, 016_withdrawal_since)"
        in message
    )
    assert "nothing was changed" in message
    db = Database(database_url, data_dir)
    try:
        assert applied(db) == NAMES[:13]
    finally:
        db.close()
    Node(settings).close()  # the next start, the lock released


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
def test_an_upgrade_in_one_schema_holds_up_no_node_in_another(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: two nodes in two schemas of one database.  While one upgrades its schema
    (slowly: a large store), the other starts at once.  The migration lock was one per
    database: the other waited for the whole upgrade of a schema not its own (with no time
    limit), saying another process was upgrading its schema."""
    other = PgSchema()
    try:
        data_dir = _seeded_store(tmp_path / "other", other.url, 8)
        name, step = MIGRATIONS[8]
        started, done = threading.Event(), threading.Event()

        def slow(d: Any) -> Iterator[str]:  # a long upgrade, holding the migration lock
            started.set()
            done.wait(20)
            yield from step(d)

        monkeypatch.setattr(
            migrations, "MIGRATIONS", [*MIGRATIONS[:8], (name, slow), *MIGRATIONS[9:]]
        )
        upgrading = threading.Thread(
            target=lambda: Node(make_settings(data_dir, other.url)).close(), daemon=True
        )
        upgrading.start()
        assert started.wait(20)
        begun = time.monotonic()
        try:
            Node(settings).close()  # the node in the first schema
            took = time.monotonic() - begun
        finally:
            done.set()
            upgrading.join(20)
        assert took < 5, f"the node waited {took:.1f}s for another schema's upgrade"
    finally:
        other.drop()
