"""Schema as named, ordered migrations; each runs in its own transaction and is recorded.

Add a step by appending to :data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

from tansiq import __version__
from tansiq.stix.timestamps import now_micros
from tansiq.store import dialect
from tansiq.store.database import (
    Database,
    StoreBusy,
    StoreError,
    commit_sqlite,
    no_directory,
    store_errors,
)
from tansiq.store.dialect import Dialect

log = logging.getLogger("tansiq.store")


def _m001_objects(d: Dialect) -> list[str]:
    return [
        "CREATE TABLE node_clock (id INTEGER PRIMARY KEY, last_added BIGINT NOT NULL)",
        "INSERT INTO node_clock (id, last_added) VALUES (1, 0)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # One row per stored version.  ``added`` is the node's date_added in microseconds: unique
        # and strictly increasing, so it doubles as the primary key and the paging cursor.
        f"""CREATE TABLE objects (
            added {d.int_pk},
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            version BIGINT NOT NULL,
            created BIGINT,
            modified BIGINT,
            created_by_ref TEXT,
            revoked INTEGER NOT NULL DEFAULT 0,
            is_latest INTEGER NOT NULL,
            spec_version TEXT,
            json TEXT NOT NULL,
            UNIQUE (id, version)
        )""",
        "CREATE INDEX objects_type ON objects (type, added)",
        "CREATE INDEX objects_creator ON objects (created_by_ref, added)",
        "CREATE INDEX objects_created ON objects (created)",
        "CREATE INDEX objects_modified ON objects (modified)",
        "CREATE INDEX objects_revoked ON objects (revoked) WHERE revoked = 1",
        "CREATE VIEW latest_objects AS SELECT * FROM objects WHERE is_latest = 1",
        """CREATE TABLE accounts (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            partner TEXT,
            created BIGINT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES accounts (username),
            label TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created BIGINT NOT NULL,
            expires BIGINT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        )""",
    ]


def _m002_sharing(d: Dialect) -> list[str]:
    return [
        # Who the version is released to (",DZ,EG,", originator included; groups expanded at the
        # time of the version) and which partner originated it.  Filled from the tansiq
        # distribution extension inside the JSON, which stays the source of truth.
        "ALTER TABLE objects ADD COLUMN origin TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE objects ADD COLUMN partners TEXT NOT NULL DEFAULT ''",
        # PostgreSQL expands ``*`` when a view is created: recreate it to see the new columns.
        "DROP VIEW latest_objects",
        "CREATE VIEW latest_objects AS SELECT * FROM objects WHERE is_latest = 1",
        """CREATE TABLE partners (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            identity_id TEXT NOT NULL,
            public_key TEXT NOT NULL DEFAULT '',
            base_url TEXT NOT NULL DEFAULT '',
            created BIGINT NOT NULL
        )""",
        "CREATE TABLE sharing_groups (name TEXT PRIMARY KEY, created BIGINT NOT NULL)",
        """CREATE TABLE group_members (
            group_name TEXT NOT NULL REFERENCES sharing_groups (name),
            partner TEXT NOT NULL,
            PRIMARY KEY (group_name, partner)
        )""",
        """CREATE TABLE sessions (
            session_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES accounts (username),
            csrf_token TEXT NOT NULL,
            created BIGINT NOT NULL,
            expires BIGINT NOT NULL
        )""",
        f"""CREATE TABLE login_failures (
            seq {d.int_pk},
            username TEXT NOT NULL,
            address TEXT NOT NULL,
            at BIGINT NOT NULL
        )""",
        "CREATE INDEX login_failures_user ON login_failures (username, at)",
        "CREATE INDEX login_failures_addr ON login_failures (address, at)",
        f"""CREATE TABLE audit (
            seq {d.int_pk},
            at BIGINT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
    ]


def _m003_federation(d: Dialect) -> list[str]:
    return [
        # TAXII 2.1 status resources (one per POST to a collection).
        """CREATE TABLE taxii_status (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            status TEXT NOT NULL,
            request_timestamp BIGINT NOT NULL,
            total_count INTEGER NOT NULL,
            success_count INTEGER NOT NULL,
            failure_count INTEGER NOT NULL,
            pending_count INTEGER NOT NULL,
            details TEXT NOT NULL
        )""",
        # Pull-sync position per peer and collection, advanced in the same transaction as the
        # objects it covers.
        """CREATE TABLE sync_cursors (
            partner TEXT NOT NULL,
            collection TEXT NOT NULL,
            added_after TEXT NOT NULL,
            updated BIGINT NOT NULL,
            PRIMARY KEY (partner, collection)
        )""",
        # Tokens this node uses to read each peer (the peer's sync account on the peer's node).
        """CREATE TABLE peer_credentials (
            partner TEXT PRIMARY KEY,
            token TEXT NOT NULL,
            created BIGINT NOT NULL
        )""",
    ]


def _m004_deletions(d: Dialect) -> list[str]:
    return [
        # Tombstones of deleted versions this node originated, for partners' nodes to apply
        # (see tansiq.store.deletions), one per deleted version.  ``added`` comes from the
        # node clock, so the withdrawal feed orders them with withdrawals.
        """CREATE TABLE deletions (
            added BIGINT PRIMARY KEY,
            id TEXT NOT NULL,
            version BIGINT NOT NULL,
            origin TEXT NOT NULL,
            partners TEXT NOT NULL
        )""",
        "CREATE INDEX deletions_version ON deletions (id, version)",
    ]


def _m005_json_lz4(d: Dialect) -> list[str]:
    """PostgreSQL: compress large JSON (over ~2 KB, a tenth of ATT&CK's objects) with lz4.

    The default, pglz, costs the server more CPU than the rest of each such row: raw ``COPY`` of
    200k ICS ATT&CK objects ran 51-56k objects/s with pglz and 68-70k with lz4 (same size on
    disk), and ``Node.ingest`` 22.8-24.3k -> 27k.  Rows stored earlier keep pglz; reads handle
    both.  A server built without lz4 (or older than 14) keeps pglz and says so in its log.
    """
    if d.is_sqlite:
        return []
    return [
        """DO $$
        BEGIN
            EXECUTE 'ALTER TABLE objects ALTER COLUMN json SET COMPRESSION lz4';
        EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
            RAISE NOTICE 'tansiq: lz4 is not available, objects.json stays pglz (%)', SQLERRM;
        END $$"""
    ]


def _m006_ids_bytewise(d: Dialect) -> list[str]:
    """PostgreSQL: compare ``objects.id``, ``type`` and ``created_by_ref`` byte by byte
    (``COLLATE "C"``), as SQLite does.

    They are ASCII STIX identifiers and type names, so no order a reader sees changes; but with
    the database's collation (even C.UTF-8) every comparison in their indexes (the unique
    ``(id, version)``, ``(type, added)``, ``(created_by_ref, added)``) went through ``strcoll``.
    Writing 200k prebuilt rows by ``COPY``: 71.3-72.1k -> 74.5-76.2k rows/s.  The view that
    selects ``*`` from the table is recreated around the change (PostgreSQL refuses otherwise).
    """
    if d.is_sqlite:
        return []
    return [
        "DROP VIEW latest_objects",
        'ALTER TABLE objects ALTER COLUMN id TYPE TEXT COLLATE "C",'
        ' ALTER COLUMN type TYPE TEXT COLLATE "C",'
        ' ALTER COLUMN created_by_ref TYPE TEXT COLLATE "C"',
        "CREATE VIEW latest_objects AS SELECT * FROM objects WHERE is_latest = 1",
    ]


def _m007_no_created_index(d: Dialect) -> list[str]:
    """Drop the index on ``objects.created``: no query filters or orders by that column (the
    REST filters are on ``modified``, TAXII's on ``added`` and ``version``), and every stored
    version paid for it.  Writing 200k prebuilt rows into SQLite: 0.7 s of the writer's ~5.5 s.
    A mistake: the store promises that index, and 008 puts it back.
    """
    return ["DROP INDEX IF EXISTS objects_created"]


def _m008_created_index(d: Dialect) -> list[str]:
    """Index ``objects.created`` again: the store's contract has indexed columns for type,
    ``created_by_ref``, ``created``, ``modified`` and ``revoked``, and 007 broke it.  The REST
    list filters on ``created`` (``created_from``/``created_to``) as on ``modified``, through
    this index.
    """
    return ["CREATE INDEX IF NOT EXISTS objects_created ON objects (created)"]


def _m009_withdrawals(d: Dialect) -> list[str]:
    """Withdrawals as events, recorded when a new latest version drops partners.

    The feed used to derive them from the current state (latest version not released to P, some
    version released to P), positioned at the latest version's ``added``: every later version
    hidden from P announced the id to P again, with its date_added, and a version released to P
    stored after a newer one that excludes P announced an object P could never see.  An event
    keeps the ``added`` of the version that withdrew the partners.  Existing stores get one event
    per (object, known partner) the partner may have seen, at the latest version's ``added``: a
    version released to it that was the latest once (no newer version was stored before it).  A
    version stored after a newer one that excludes the partner was never visible to it, so the
    old rule's announcing such an object is not kept.
    """
    return [
        """CREATE TABLE withdrawals (
            added BIGINT NOT NULL,
            id TEXT NOT NULL,
            origin TEXT NOT NULL,
            partners TEXT NOT NULL
        )""",
        "CREATE INDEX withdrawals_added ON withdrawals (added)",
        "CREATE INDEX withdrawals_id ON withdrawals (id)",
        """INSERT INTO withdrawals (added, id, origin, partners)
        SELECT l.added, l.id, l.origin, ',' || p.code || ','
        FROM latest_objects l JOIN partners p ON l.partners NOT LIKE '%,' || p.code || ',%'
        WHERE EXISTS (SELECT 1 FROM objects o
                      WHERE o.id = l.id AND o.partners LIKE '%,' || p.code || ',%'
                      AND NOT EXISTS (SELECT 1 FROM objects newer WHERE newer.id = o.id
                                      AND newer.version > o.version AND newer.added < o.added))""",
    ]


def _m010_status_age(d: Dialect) -> list[str]:
    """Index TAXII status resources by request time: they are deleted once older than
    ``taxii_status_days`` (each POST deletes what has expired), and the table grew for ever."""
    return ["CREATE INDEX taxii_status_age ON taxii_status (request_timestamp)"]


# A version that was the latest once: no newer version of its id was stored before it.
_LATEST_ONCE = """NOT EXISTS (SELECT 1 FROM objects newer WHERE newer.id = o.id
                      AND newer.version > o.version AND newer.added < o.added)"""


def _m011_unseen_withdrawals(d: Dialect) -> list[str]:
    """Delete the withdrawal events 009 made, as first shipped, for objects a partner never saw.

    009 (fixed since) recorded an event for every (object, partner) where some version was
    released to the partner and the latest is not, including a version stored after a newer
    one that excludes the partner: never visible to it, yet the feed announced the object's id
    to its sync account.  A single-partner event is kept only if a version released to that
    partner was the latest once; every event the write path makes passes that test, and
    multi-partner events only come from the write path.
    """
    return [
        f"""DELETE FROM withdrawals
        WHERE partners NOT LIKE ',%,%,'
        AND NOT EXISTS (SELECT 1 FROM objects o
                        WHERE o.id = withdrawals.id
                        AND o.partners LIKE '%' || withdrawals.partners || '%'
                        AND {_LATEST_ONCE})"""
    ]


def _m012_bookkeeping_lock(d: Dialect) -> list[str]:
    """A row for :meth:`tansiq.store.database.Database.bookkeeping` to lock on PostgreSQL:
    accounts, tokens, sessions and audit entries serialise on it, not on ``node_clock``, which
    an ingest holds for the whole bundle.  (SQLite does not use it.)"""
    return [
        "CREATE TABLE bookkeeping_lock (id INTEGER PRIMARY KEY)",
        "INSERT INTO bookkeeping_lock (id) VALUES (1)",
    ]


def _m013_partner_suspension(d: Dialect) -> list[str]:
    """A partner may be suspended (``tansiq partner suspend``): ``suspended`` is when (µs; 0:
    not suspended), ``suspended_reason`` the operator's words.  Its enrolment stays."""
    return [
        "ALTER TABLE partners ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE partners ADD COLUMN suspended_reason TEXT NOT NULL DEFAULT ''",
    ]


def _m014_session_last_used(d: Dialect) -> list[str]:
    """When a web session was last used (µs, recorded at most once a minute): one unused for
    ``session_idle_minutes`` ends.  Sessions open at the upgrade count as used then."""
    return [
        "ALTER TABLE sessions ADD COLUMN last_used BIGINT NOT NULL DEFAULT 0",
        f"UPDATE sessions SET last_used = {now_micros()}",
    ]


def _m015_sync_deferred(d: Dialect) -> list[str]:
    """Versions a pull keeps aside until the peer's withdrawal feed is applied
    (:mod:`tansiq.federation.deferred`), written with the cursor that moves past them."""
    return [
        """CREATE TABLE sync_deferred (
            partner TEXT NOT NULL,
            id TEXT NOT NULL,
            version BIGINT NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (partner, id, version)
        )""",
    ]


def _m016_withdrawal_since(d: Dialect) -> list[str]:
    """The ``added`` at which the transaction that recorded each withdrawal began (``since``):
    a version stored by that same transaction, even before the version that withdrew its
    partners, was never visible to them, so its tombstone must not name them
    (:func:`tansiq.policy.shown_to`).  Events recorded before this was kept get their own
    ``added``, as that rule read them until now."""
    return [
        "ALTER TABLE withdrawals ADD COLUMN since BIGINT NOT NULL DEFAULT 0",
        "UPDATE withdrawals SET since = added",
    ]


MIGRATIONS: list[tuple[str, Callable[[Dialect], list[str]]]] = [
    ("001_objects", _m001_objects),
    ("002_sharing", _m002_sharing),
    ("003_federation", _m003_federation),
    ("004_deletions", _m004_deletions),
    ("005_json_lz4", _m005_json_lz4),
    ("006_ids_bytewise", _m006_ids_bytewise),
    ("007_no_created_index", _m007_no_created_index),
    ("008_created_index", _m008_created_index),
    ("009_withdrawals", _m009_withdrawals),
    ("010_status_age", _m010_status_age),
    ("011_unseen_withdrawals", _m011_unseen_withdrawals),
    ("012_bookkeeping_lock", _m012_bookkeeping_lock),
    ("013_partner_suspension", _m013_partner_suspension),
    ("014_session_last_used", _m014_session_last_used),
    ("015_sync_deferred", _m015_sync_deferred),
    ("016_withdrawal_since", _m016_withdrawal_since),
]


# PostgreSQL advisory lock: one process at a time migrates the schema tansiq's tables are in.
# Keyed (MIGRATION_LOCK, hash of that schema), as the pull lock (tansiq.federation.sync): an
# upgrade of a node in one schema holds up no node in another schema of the database.
MIGRATION_LOCK = 7261
LOCK_KEY = "?, hashtext(current_schema())"
# PostgreSQL: how long a step waits for a table lock another session holds (a long ingest or
# read, of a tansiq still running, say) before giving up; every query on that table would
# queue behind it meanwhile.  SQLite waits its busy timeout for the write lock.
LOCK_TIMEOUT_S = 60
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's lock_not_available
UPGRADE_WAITING = "another process is upgrading the schema of %s: waiting for it to end"
UPGRADE_BUSY = (
    "{} needs its schema upgraded ({}), and another connection (a long ingest or transaction,"
    " perhaps of a tansiq still running) held a lock the upgrade needs for {}s; nothing was"
    " changed. Start again once it ends"
)


class NewerSchema(StoreError):
    """The database holds migrations this tansiq does not know: a newer one upgraded it.

    Its code may rely on columns, tables or meanings this one ignores (and would break by
    writing as it knows how), so this one neither opens nor changes it."""


def relations(db: Database) -> set[str]:
    """The names of the tables, views and indexes where tansiq makes its own: in the SQLite
    file; on PostgreSQL in the schema it creates in (``current_schema()``: the first of the
    ``search_path`` that exists).  Reads only."""
    if db.dialect.is_sqlite:
        return {str(r[0]) for r in _peek(db, "SELECT name FROM sqlite_master")}
    sql = (
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema()"
    )
    return {str(r[0]) for r in db.fetchall(sql)}


def _peek(db: Database, sql: str) -> list[Any]:
    """SQLite: the rows of *sql* read on a connection that leaves the file as it is
    (:func:`~tansiq.store.dialect.peek_sqlite`): before the file is known to be a node's."""
    assert db.path is not None
    if not db.path.parent.is_dir():
        raise StoreError(no_directory(db.path))
    try:
        with closing(dialect.peek_sqlite(db.path)) as conn, store_errors():
            return list(conn.execute(sql).fetchall())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open {db.describe()}: {exc}") from exc


def holds_schema(db: Database) -> bool:
    """Does *db* hold a tansiq schema, of any level?  (Asked before :func:`migrate`, which
    would make one in any database it is given.)  Reads only."""
    return "schema_migrations" in relations(db)


def applied(db: Database) -> list[str]:
    """The migrations applied to *db*, making their table first if it has none.  (Only then:
    a read-only store of the current schema, a PostgreSQL standby's, refuses even ``CREATE
    TABLE IF NOT EXISTS`` of a table it has.)"""
    if not holds_schema(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name TEXT PRIMARY KEY, applied BIGINT NOT NULL)"
        )
    return [r[0] for r in db.fetchall("SELECT name FROM schema_migrations ORDER BY name")]


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; return the names applied now.  A full or busy store raises
    :class:`~tansiq.store.database.StoreUnavailable` (a message and exit 1, not a traceback)."""
    try:
        with store_errors():  # the step was rolled back
            if db.dialect.is_sqlite:
                return _migrate(db)
            # Several server processes may start at once on one PostgreSQL database.
            _check_somewhere(db)
            row = db.fetchone(f"SELECT pg_try_advisory_lock({LOCK_KEY})", (MIGRATION_LOCK,))
            if not (row and row[0]):
                log.warning(UPGRADE_WAITING, db.describe())
                db.execute(f"SELECT pg_advisory_lock({LOCK_KEY})", (MIGRATION_LOCK,))
            try:
                return _migrate(db)
            finally:
                db.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})", (MIGRATION_LOCK,))
    except Exception as exc:
        locked = getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE
        if not (locked or isinstance(exc, StoreBusy)):
            raise
        pending = [name for name, _ in MIGRATIONS if name not in applied(db)]
        waited = LOCK_TIMEOUT_S if locked else dialect.SQLITE_BUSY_TIMEOUT_S
        raise StoreBusy(UPGRADE_BUSY.format(db.describe(), ", ".join(pending), waited)) from exc


@contextmanager
def all_or_nothing(db: Database) -> Iterator[None]:
    """PostgreSQL: one transaction around :func:`migrate` and what follows it (``tansiq
    init``), holding the migration lock until it ends.  Schema changes are transactional
    there, so an error inside leaves the database as it was: none of its tables, rows or
    accounts.  Migration steps, ``db.write()`` and ``db.bookkeeping()`` nest in it (as
    savepoints, or joining it).  SQLite: nothing (its transactions each begin with ``BEGIN
    IMMEDIATE`` and do not nest); a failed init removes the database file it made instead."""
    if db.dialect.is_sqlite:
        yield
        return
    with db.transaction_depth(), store_errors(), db.connection().transaction():
        db.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})", (MIGRATION_LOCK,))
        yield


def made(d: Dialect) -> set[str]:
    """The names of every table, view and index the migrations make (on *d*)."""
    statements = " ".join(s for _, step in MIGRATIONS for s in step(d))
    return {"schema_migrations", *_MADE.findall(statements)}


_MADE = re.compile(r"CREATE (?:TABLE|VIEW|INDEX) (?:IF NOT EXISTS )?(\w+)")
NOWHERE = (
    "{} has no schema to make tansiq's tables in: its search_path ({}) names none that exists;"
    " nothing was changed. Create it first (CREATE SCHEMA name), or name one that exists"
)
NOT_OURS = (
    "{} holds another application's {} named as tansiq's own ({}); nothing was changed."
    " Give tansiq a database of its own, or a schema of its own in a PostgreSQL one (a URL"
    " ending ?options=-csearch_path%3DSCHEMA, once CREATE SCHEMA made it)"
)


def _check_somewhere(db: Database) -> None:
    """PostgreSQL: refuse (:class:`StoreError`) a ``search_path`` naming no schema that exists,
    before the migration lock, which is keyed by that schema."""
    row = db.fetchone("SELECT current_schema(), current_setting('search_path')")
    if row is None or row[0] is None:
        raise StoreError(NOWHERE.format(db.describe(), row[1] if row else "?"))


def _check_not_anothers(db: Database) -> None:
    """Refuse (:class:`StoreError`, changing nothing) a store tansiq cannot make or read its
    schema in: another application's tables or indexes by the names of tansiq's, a
    ``schema_migrations`` of its own (Rails', golang-migrate's: a ``version`` column)."""
    have = relations(db)
    if "schema_migrations" not in have:
        clash = sorted(have & made(db.dialect))
        if clash:
            raise StoreError(NOT_OURS.format(db.describe(), "tables or indexes", ", ".join(clash)))
        return
    if db.dialect.is_sqlite:
        columns = {str(r[1]) for r in _peek(db, "PRAGMA table_info(schema_migrations)")}
    else:
        columns = {
            str(r[0])
            for r in db.fetchall(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
            )
        }
    if columns != {"name", "applied"}:
        raise StoreError(NOT_OURS.format(db.describe(), "a table", "schema_migrations"))


def _migrate(db: Database) -> list[str]:
    _check_not_anothers(db)
    done = set(applied(db))
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        raise NewerSchema(
            f"{db.describe()} was upgraded by a newer tansiq: its schema has"
            f" {', '.join(unknown)}, and this tansiq ({__version__}) knows the migrations up to"
            f" {MIGRATIONS[-1][0]} only. Run the newer tansiq, or restore the backup taken"
            " before the upgrade; nothing was changed"
        )
    new: list[str] = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        conn = db.connection()
        if db.dialect.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if db.fetchone("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)):
                    conn.execute("ROLLBACK")  # another process applied it meanwhile
                    continue
                for statement in step(db.dialect):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (name, applied) VALUES (?, ?)",
                    (name, now_micros()),
                )
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    conn.execute("ROLLBACK")
                raise
            commit_sqlite(conn)
        else:
            with db.transaction_depth(), conn.transaction():
                lock_timeout = f"{int(LOCK_TIMEOUT_S * 1000)}ms"
                db.execute("SELECT set_config('lock_timeout', ?, true)", (lock_timeout,))
                for statement in step(db.dialect):
                    conn.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (name, applied) VALUES (?, ?)",
                    (name, now_micros()),
                )
        new.append(name)
    return new
