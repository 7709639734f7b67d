"""One ``Database`` class over SQLite or PostgreSQL: connections, transactions, the write lock.

Each thread gets its own connection.  Every write of objects (versions, deletions,
withdrawals: anything that takes ``date_added`` values or must be ordered with them) runs inside
:meth:`Database.write`, which takes the node write lock first (``BEGIN IMMEDIATE`` on SQLite, a
row lock on ``node_clock`` on PostgreSQL).  Serialising writers keeps ``date_added`` in commit
order, so a TAXII reader paging by ``added_after`` can never skip an object that commits late
with an earlier ``date_added``.  A bulk ingest holds that lock for the whole bundle.

The node's bookkeeping - accounts, tokens, web sessions, the audit log - runs inside
:meth:`Database.bookkeeping` instead: a short transaction under the *bookkeeping* lock (a row
lock on ``bookkeeping_lock`` on PostgreSQL), which serialises such changes among themselves
(audit ``seq``, a login against a password change, the last admin) but not with object writes,
so logins and reads go on during an ingest.  Lock order: the write lock, then the bookkeeping
lock (an object write may append its audit entry); never the other way round.  On SQLite every
write transaction is exclusive, so bookkeeping waits for an ingest there all the same, at most
the busy timeout (:data:`tansiq.store.dialect.SQLITE_BUSY_TIMEOUT_S`), and then raises
:class:`StoreBusy`; an object write waiting for the write lock on PostgreSQL does the same.
(Login rate-limit rows, session ends and a session's ``last_used``, written at most once a
minute, are single statements that commit alone.)

A database that cannot grow raises :class:`StorageFull` from any statement, in :meth:`write`
or not: the API answers 503, the CLI exits 1.  None of those writes is skipped instead, as
none can safely be: a login attempt not recorded would escape the rate limit.  A database
locked by another writer past the busy timeout raises :class:`StoreBusy`: 503 too.
A database that refuses this process's writes (a SQLite file it may not write, a PostgreSQL
standby) raises :class:`StoreReadOnly`: 503, or exit 1; ``tansiq serve`` checks at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tansiq.store import dialect
from tansiq.store.dialect import (
    Dialect,
    connect_postgresql,
    connect_sqlite,
    dialect_for,
    sqlite_path,
    without_password,
)

Row = tuple[Any, ...]
ROWS_PER_INSERT = 500  # SQLite rows per INSERT statement when binding beside another thread
IN_CHUNK = 500  # values per ``IN (...)`` list (SQLite limits the parameters of a statement)

log = logging.getLogger("tansiq.store")


class StoreError(RuntimeError):
    """The database cannot be opened or used."""


class StoreUnavailable(StoreError):
    """The store cannot take this write now; nothing was stored (the API answers 503)."""

    retry_after: int | None = None


class StorageFull(StoreUnavailable):
    """The database cannot grow (a full disk, a quota, SQLite's ``max_page_count``); the write
    was rolled back."""


class StoreReadOnly(StoreUnavailable):
    """The database refuses this process's writes: a SQLite file (or its ``-wal``/``-shm``, or
    their directory) it may not write, a read-only mount; a PostgreSQL standby, or a role or
    database whose transactions are read-only."""


class StoreBusy(StoreUnavailable):
    """Another connection (a long ingest, say) held the write lock past the busy timeout; the
    statement was not run."""

    retry_after = 30


STORAGE_FULL = (
    "storage is full: the database cannot grow (the disk, a quota or a size limit); "
    "nothing was stored. Free space on the database's storage and try again"
)
DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full (psycopg.errors.DiskFull)


def is_storage_full(exc: BaseException) -> bool:
    """Is *exc* the database saying it cannot grow (SQLite SQLITE_FULL, PostgreSQL DiskFull)?"""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return type(exc).__module__.startswith("psycopg") and (
        getattr(exc, "sqlstate", None) == DISK_FULL_SQLSTATE
    )


STORE_READ_ONLY = "the database is read-only for this process ({}); nothing was stored. {}"
READ_ONLY_FIX_SQLITE = (
    "Make the database file, its -wal and -shm files and their directory writable by the user"
    " tansiq runs as"
)
READ_ONLY_FIX_POSTGRESQL = (
    "Point the database URL at the primary server, as a role whose transactions may write"
)
READ_ONLY_SQLSTATE = "25006"  # PostgreSQL's read_only_sql_transaction


def no_directory(path: Path) -> str:
    """Why SQLite file *path* cannot be opened, its directory missing, and what to do."""
    return (
        f"cannot open SQLite {path}: the directory {path.parent} does not exist (create it,"
        " or check --data-dir and --database-url)"
    )


def is_read_only(exc: BaseException) -> bool:
    """Is *exc* the database refusing a write because it is read-only for this process?"""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF == sqlite3.SQLITE_READONLY
    return type(exc).__module__.startswith("psycopg") and (
        getattr(exc, "sqlstate", None) == READ_ONLY_SQLSTATE
    )


STORE_BUSY = (
    "the database is busy with another write (a long ingest?) and this request waited {}s for"
    " it; nothing was stored. Try again later"
)


LOCK_NOT_AVAILABLE_SQLSTATE = "55P03"  # PostgreSQL's lock_not_available (lock_timeout)


def is_busy(exc: BaseException) -> bool:
    """Is *exc* SQLite's SQLITE_BUSY (another connection holds the lock past the timeout)?"""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` that database error *exc* stands for, if any."""
    if is_storage_full(exc):
        return StorageFull(STORAGE_FULL)
    if is_busy(exc):
        return StoreBusy(STORE_BUSY.format(dialect.SQLITE_BUSY_TIMEOUT_S))
    if is_read_only(exc):
        fix = READ_ONLY_FIX_SQLITE if isinstance(exc, sqlite3.Error) else READ_ONLY_FIX_POSTGRESQL
        return StoreReadOnly(STORE_READ_ONLY.format(str(exc).strip(), fix))
    return None


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the :class:`StoreUnavailable` a database error stands for (the statement or
    transaction was undone: a 503 or a one-line CLI error, not a 500 or a traceback)."""
    try:
        yield
    except Exception as exc:
        if (mapped := unavailable(exc)) is not None:
            raise mapped from exc
        raise


_open_databases: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for db in list(_open_databases):
        db._forget_the_parent()


class Database:
    """A node's database.  Thread-safe: one connection per thread.

    In a child forked from the process (file ingest's workers, :mod:`tansiq.store.parallel`)
    every ``Database`` starts over: the parent's connections are never used there (each could
    be inside a transaction of the parent's, and a PostgreSQL one shares its socket) and
    ``_lock`` is a new lock, as another thread of the parent may have held the old one at the
    moment of the fork: held in the child for ever, as that thread does not exist there.
    """

    def __init__(self, url: str, data_dir: Path, cache_mb: int = 128) -> None:
        self.url = url
        self.cache_mb = cache_mb
        self.dialect: Dialect = dialect_for(url)
        self.path: Path | None = None
        if self.dialect.is_sqlite:
            self.path = sqlite_path(url, data_dir)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._types: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        self._inherited: list[Any] = []
        _open_databases.add(self)

    def _forget_the_parent(self) -> None:
        """In a child just forked: no connection, lock or thread of the parent's."""
        # Kept, never closed: closing would act on the parent's open files and sessions.
        self._inherited.append((self._all, self._local))
        self._all = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._checkpointer = None
        self._stop_checkpoints = threading.Event()

    def describe(self) -> str:
        if self.path is not None:
            return f"SQLite {self.path}"
        return "PostgreSQL " + without_password(self.url).split("@")[-1]

    # -- connections -------------------------------------------------------------------------
    def _open(self) -> Any:
        try:
            if self.path is not None:
                if not self.path.parent.is_dir():
                    raise StoreError(no_directory(self.path))
                conn = connect_sqlite(self.path, self.cache_mb)
                if self._checkpointer is not None:
                    conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer does it
                return conn
            return connect_postgresql(self.url)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open {self.describe()}: {self._masked(str(exc))}") from exc

    def _masked(self, text: str) -> str:
        """*text* without the URL's password: psycopg quotes what it cannot parse ("unexpected
        spaces found in "pass word"")."""
        try:
            secret = urlsplit(self.url).password if self.path is None else None
        except ValueError:
            secret = None
        for form in {secret, unquote(secret or "")} - {None, ""}:
            text = text.replace(str(form), "********")
        return text

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._lost(conn) and not getattr(self._local, "depth", 0):
            # PostgreSQL: the server ended this session (a restart, a timeout, an administrator).
            # A new one, but never inside a transaction: its statements would commit alone.
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """SQLite: move WAL checkpoints off the writers' path, onto a thread of their own.

        By default the connection that commits past 1,000 WAL pages copies them into the database
        file before its write returns; a server instead lets writers return and checkpoints every
        *interval* seconds (``PASSIVE``: it never blocks readers or writers).  Connections opened
        from now on stop checkpointing themselves.  No-op on PostgreSQL.
        """
        if self.path is None or self._checkpointer is not None:
            return
        path = self.path

        def run() -> None:
            conn = connect_sqlite(path)
            try:
                while not self._stop_checkpoints.wait(interval):
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except sqlite3.Error:  # a full disk, say: the next round tries again
                        log.exception("WAL checkpoint of %s failed", path)
            finally:
                conn.close()

        self._checkpointer = threading.Thread(target=run, name="tansiq-checkpoint", daemon=True)
        self._checkpointer.start()
        with self._lock:
            for conn in self._all:
                conn.execute("PRAGMA wal_autocheckpoint=0")

    def check_writable(self) -> None:
        """Raise :class:`StoreReadOnly` if this process cannot write to the database; change
        nothing.  (``tansiq serve`` asks at start-up: a server that cannot record a login or
        store an object should say so then, not answer each request with an error.)  Never
        waits: SQLite's write lock held by another connection passes."""
        if self.path is None:
            row = self.fetchone("SHOW transaction_read_only")
            if row is not None and row[0] == "on":
                why = "its transactions are read-only: a standby?"
                raise StoreReadOnly(STORE_READ_ONLY.format(why, READ_ONLY_FIX_POSTGRESQL))
            return
        conn = self.side_connection()
        try:
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE node_clock SET last_added = last_added WHERE id = 1")
        except sqlite3.Error as exc:
            if not is_busy(exc):
                with store_errors():
                    raise
        finally:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            conn.close()

    def in_transaction(self) -> bool:
        """Is this thread's connection inside a transaction already?"""
        conn = self.connection()
        if self.dialect.is_sqlite:
            return bool(conn.in_transaction)
        from psycopg import pq

        return bool(conn.info.transaction_status != pq.TransactionStatus.IDLE)

    def reader(self) -> Any:
        """This thread's second connection (autocommit), kept until :meth:`close`: it sees
        committed data only, and may query while the first is inside a write (even a ``COPY``
        on PostgreSQL, which allows no other statement on its connection)."""
        pid, conn = getattr(self._local, "reader", (0, None))
        if conn is not None and pid == os.getpid() and self._lost(conn):
            self._drop(conn)
            conn = None
        if conn is None or pid != os.getpid():  # never a connection inherited through fork
            conn = self._open()
            self._local.reader = (os.getpid(), conn)
            with self._lock:
                self._all.append(conn)
        return conn

    def side_connection(self) -> Any:
        """A new connection (autocommit), not this thread's: it sees only committed data.
        The caller closes it."""
        return self._open()

    def adopt(self, conn: Any) -> None:
        """Make this thread use *conn* (a worker inside another thread's transaction)."""
        self._local.conn = conn
        self._local.depth = 1

    def release(self) -> None:
        """Undo :meth:`adopt` in this thread."""
        self._local.conn = None
        self._local.depth = 0

    def _lost(self, conn: Any) -> bool:
        """Has the server ended *conn*'s session?  (PostgreSQL only.)"""
        return self.path is None and bool(conn.closed)

    def _drop(self, conn: Any) -> None:
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    @contextmanager
    def transaction_depth(self) -> Iterator[None]:
        """Count this thread's open transactions (see :meth:`connection`); every transaction
        on this thread's connection is opened inside one."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def close(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join(10)
            self._checkpointer = None
            self._stop_checkpoints.clear()
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):  # closing is best effort
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- statements --------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a store that cannot grow raises :class:`StorageFull` here too,
        also for the writes made outside :meth:`write` (login bookkeeping, sessions)."""
        with store_errors():
            return self.connection().execute(self.dialect.sql(sql), params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.execute(sql, params).fetchall())

    def fetch_in(self, sql: str, values: Sequence[Any]) -> list[Row]:
        """The rows of *sql*, which ends in ``IN``, for every value of *values*: one statement
        per :data:`IN_CHUNK` values."""
        rows: list[Row] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = list(values[start : start + IN_CHUNK])
            rows += self.fetchall(f"{sql} ({', '.join('?' for _ in chunk)})", chunk)
        return rows

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn = self.connection()
        with store_errors():
            if self.dialect.is_sqlite:
                conn.executemany(sql, rows)
            else:
                with conn.cursor() as cur:
                    cur.executemany(self.dialect.sql(sql), list(rows))

    def iterate(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[Row]:
        """Stream rows on a connection of its own (safe to resume from any thread)."""
        conn = self._open()
        try:
            if self.dialect.is_sqlite:
                conn.execute("BEGIN")
                cur = conn.execute(sql, params)
                while batch := cur.fetchmany(size):
                    yield from batch
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor(name="tansiq_stream") as cur:
                    cur.itersize = size
                    cur.execute(self.dialect.sql(sql), params)
                    yield from cur
        finally:
            conn.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[int]:
        """A write transaction holding the node write lock; yields the last ``date_added``.

        For writes of objects and what must be ordered with their ``date_added``; the node's
        bookkeeping uses :meth:`bookkeeping`, which an ingest does not hold up on PostgreSQL."""
        if getattr(self._local, "bookkeeping", False):
            raise RuntimeError(
                "db.write() inside db.bookkeeping(): the write lock is taken first, never after"
            )
        conn = self.connection()
        with self.transaction_depth(), store_errors():  # rolled back: a 503, not a 500
            yield from self._write(conn)

    @contextmanager
    def bookkeeping(self) -> Iterator[None]:
        """A short write transaction for accounts, tokens, sessions and audit entries: it takes
        the bookkeeping lock, not the node write lock, so on PostgreSQL it does not wait for an
        ingest (on SQLite every write transaction is exclusive: it waits, at most the busy
        timeout).  Inside a transaction this thread has open already (a :meth:`write`, another
        :meth:`bookkeeping`) it joins that one, taking the bookkeeping lock there.  Never open a
        :meth:`write` inside it (see the lock order in this module's doc)."""
        conn = self.connection()
        if getattr(self._local, "depth", 0) and self.in_transaction():
            self.lock_bookkeeping()
            yield
            return
        with self.transaction_depth():
            self._local.bookkeeping = True
            try:
                with store_errors():
                    yield from self._bookkeeping(conn)
            finally:
                self._local.bookkeeping = False

    def _bookkeeping(self, conn: Any) -> Iterator[None]:
        if self.dialect.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            commit_sqlite(conn)
        else:
            with conn.transaction():
                self.lock_bookkeeping()
                yield

    def lock_bookkeeping(self) -> None:
        """Take the bookkeeping lock inside this thread's open write transaction (held until
        it ends; taking it again is a no-op).  PostgreSQL only: on SQLite the open write
        transaction is exclusive already."""
        if not self.dialect.is_sqlite:
            self.execute("SELECT id FROM bookkeeping_lock WHERE id = 1 FOR UPDATE")

    def _write(self, conn: Any) -> Iterator[int]:
        if self.dialect.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT last_added FROM node_clock WHERE id = 1").fetchone()
                yield int(row[0]) if row else 0
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    conn.execute("ROLLBACK")
                raise
            commit_sqlite(conn)
        else:
            with conn.transaction():
                yield self._lock_node_clock(conn)

    def _lock_node_clock(self, conn: Any) -> int:
        """PostgreSQL: take the node write lock (the ``node_clock`` row) in *conn*'s open
        transaction, waiting at most the busy timeout, as a SQLite writer does
        (:class:`StoreBusy` then); the transaction's own ``lock_timeout`` is restored after."""
        waited = dialect.SQLITE_BUSY_TIMEOUT_S
        prior = conn.execute(
            "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
            (f"{int(waited * 1000)}ms",),
        ).fetchone()[0]
        try:
            row = conn.execute(
                "SELECT last_added FROM node_clock WHERE id = 1 FOR UPDATE"
            ).fetchone()
        except Exception as exc:
            if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE_SQLSTATE:
                raise StoreBusy(STORE_BUSY.format(waited)) from exc
            raise
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (prior,))
        return int(row[0]) if row else 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """A consistent snapshot for multi-statement reads."""
        conn = self.connection()
        with self.transaction_depth():
            if self.dialect.is_sqlite:
                conn.execute("BEGIN")
                try:
                    yield
                finally:
                    conn.execute("COMMIT")
            else:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield

    def set_clock(self, last_added: int) -> None:
        """Record the last ``date_added`` handed out (call inside :meth:`write`)."""
        self.execute("UPDATE node_clock SET last_added = ? WHERE id = 1", (last_added,))

    def copy_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        beside_python: bool = False,
    ) -> None:
        """Bulk insert: PostgreSQL ``COPY``, SQLite ``executemany``.

        ``beside_python``: the caller is a thread whose rows are being prepared by another
        Python thread meanwhile.  ``executemany`` would need the GIL back after every row and
        wait for it behind that thread (up to the switch interval, each row); instead SQLite
        gets statements of up to :data:`ROWS_PER_INSERT` rows, so the GIL is needed only to bind
        them and the insert itself runs while the other thread works.

        On an error some of *rows* may be stored already: call this inside a transaction that
        the error rolls back (as :meth:`write` does).  SQLite inserts with ``OR FAIL`` for that
        reason: with the default ``ABORT`` a statement of several rows may have to undo itself
        alone, so SQLite copies every page it is about to change into a statement journal first
        (a temporary file past 64 KiB).  Storing 200k prebuilt ICS ATT&CK rows 500 to a
        statement took 6.7-7.3 s with ``ABORT`` and 5.2-5.3 s with ``FAIL`` (``executemany``,
        one row to a statement, 4.4-4.9 s either way).
        """
        if self.dialect.is_sqlite:
            conn = self.connection()
            head = f"INSERT OR FAIL INTO {table} ({', '.join(columns)}) VALUES "
            one = "(" + ", ".join("?" for _ in columns) + ")"
            if not beside_python:
                conn.executemany(head + one, rows)
                return
            limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns)
            per = max(1, min(ROWS_PER_INSERT, limit))
            batch = rows if isinstance(rows, list) else list(rows)
            full = head + ", ".join([one] * per)
            for start in range(0, len(batch), per):
                chunk = batch[start : start + per]
                sql = full if len(chunk) == per else head + ", ".join([one] * len(chunk))
                conn.execute(sql, list(chain.from_iterable(chunk)))
        else:
            stream = CopyStream(self, table, columns)
            try:
                stream.write(rows)
            except BaseException as exc:
                stream.close(exc)
                raise
            stream.close()

    def _column_types(self, table: str, columns: tuple[str, ...]) -> list[str]:
        """PostgreSQL: the types of *columns* of *table*, as binary ``COPY`` needs them.

        Binary ``COPY`` spares both sides the text format's escaping and parsing of every value
        (JSON is full of backslashes): raw ``COPY`` of 200k ICS ATT&CK objects went from 43-50k
        to 59-82k objects/s."""
        key = (table, columns)
        types = self._types.get(key)
        if types is None:
            found: dict[str, str] = dict(
                self.fetchall(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                    " WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped",
                    (table,),
                )
            )
            types = self._types[key] = [found[c] for c in columns]
        return types


os.register_at_fork(after_in_child=_after_fork_in_child)


def commit_sqlite(conn: sqlite3.Connection) -> None:
    """``COMMIT``, or roll back if it fails: SQLite leaves the transaction open then (a
    deferred constraint, a full disk), and a later statement would commit it."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class CopyStream:
    """PostgreSQL: one binary ``COPY`` into *table* kept open across several writes.

    Ending a ``COPY`` is a round trip in which the server finishes the rows it was sent and
    then idles until the next statement; a stream left open lets the server go on inserting
    what it was sent while the writer prepares the next rows.  While it is open, nothing else
    may use this thread's connection (psycopg holds the connection's lock): :meth:`close` it
    first, with the exception when ending because of one (the ``COPY`` then fails).
    """

    def __init__(self, db: Database, table: str, columns: Sequence[str]) -> None:
        types = db._column_types(table, tuple(columns))  # (a query: before the COPY starts)
        self._stack = contextlib.ExitStack()
        try:
            cur = self._stack.enter_context(db.connection().cursor())
            self._copy = self._stack.enter_context(
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)")
            )
            self._copy.set_types(types)
        except BaseException:
            self._stack.close()
            raise

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        write_row = self._copy.write_row
        for row in rows:
            write_row(row)

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            self._stack.close()
        else:
            self._stack.__exit__(type(error), error, error.__traceback__)
