"""Every difference between SQLite and PostgreSQL lives here.

SQL elsewhere is written once, with ``?`` placeholders and the portable subset both engines share;
this module converts placeholders, opens connections and names the few types that differ.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"
    # SQLite makes ``INTEGER PRIMARY KEY`` the rowid (free, append-only); PostgreSQL needs 64 bits.
    int_pk: str
    without_rowid: str

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    def json_bytes(self, column: str) -> str:
        """SQL reading a TEXT column as its UTF-8 bytes (no decoding in the driver)."""
        return f"CAST({column} AS BLOB)" if self.is_sqlite else f"convert_to({column}, 'UTF8')"

    def json_text(self, column: str, key: str) -> str:
        """SQL reading the string member *key* of the JSON object in TEXT *column* (NULL if
        absent), exactly as written there."""
        if self.is_sqlite:
            return f"json_extract({column}, '$.{key}')"
        return f"(CAST({column} AS json) ->> '{key}')"

    def bytewise(self, expr: str) -> str:
        """SQL ordering text *expr* by its bytes (code points), as SQLite does: PostgreSQL
        would use the database's collation, whose order depends on how the cluster was made
        (``en_US.UTF-8``: ``alice`` before ``Bob``, punctuation ignored), and an operator would
        see another order than on SQLite or on the next server."""
        return expr if self.is_sqlite else f'{expr} COLLATE "C"'

    def is_unique_violation(self, exc: BaseException) -> bool:
        """Is *exc* the driver's error for a row breaking a UNIQUE or PRIMARY KEY constraint?"""
        if self.is_sqlite:
            return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
        return getattr(exc, "sqlstate", None) == "23505"  # unique_violation

    def sql(self, query: str) -> str:
        """Convert ``?`` placeholders to the driver's style."""
        return query if self.is_sqlite else _to_pyformat(query)


SQLITE = Dialect("sqlite", "INTEGER PRIMARY KEY", " WITHOUT ROWID")
POSTGRESQL = Dialect("postgresql", "BIGINT PRIMARY KEY", "")


@lru_cache(maxsize=1024)
def _to_pyformat(query: str) -> str:
    return query.replace("%", "%%").replace("?", "%s")


# libpq's connection parameters that are secrets, which a URL may carry in its query too.
SECRET_PARAMETERS = ("password", "sslpassword")


def without_password(url: str) -> str:
    """*url* with its passwords masked: the user part's (``user:password@``) and the
    ``password`` and ``sslpassword`` parameters of its query (libpq takes both forms)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:********@{host}"
    query = "&".join(
        f"{item.partition('=')[0]}=********"
        if unquote_plus(item.partition("=")[0]).lower() in SECRET_PARAMETERS
        else item
        for item in parts.query.split("&")
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # as given (urlunsplit would make sqlite:///x sqlite:/x)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def dialect_for(url: str) -> Dialect:
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRESQL
    if url.startswith("sqlite:///") or url == "":
        return SQLITE
    raise ValueError(
        f"unsupported database URL {url!r}: use postgresql://… or leave empty for SQLite"
    )


def sqlite_path(url: str, data_dir: Path) -> Path:
    """The SQLite database file of *url*: ``tansiq.db`` in the data dir for an empty URL;
    ``sqlite:///PATH``'s PATH, taken relative to the data dir (not to the directory a command
    runs in, which may differ from one command to the next); ``sqlite:////abs/path`` is
    absolute."""
    if url.startswith("sqlite:///"):
        return data_dir / url[len("sqlite:///") :]  # (an absolute path replaces data_dir)
    return data_dir / "tansiq.db"


# Page size of a new SQLite database (an existing one keeps its own).  Objects average ~1.5 KB
# of JSON, so SQLite's default 4 KiB page holds two and wastes a third of itself; at 8 KiB the
# 200k-object ingest bench went 30.9k -> 39.9k objects/s (file: 29.2k -> 35.0k), and POST onto
# a 1M-object store stayed at 14.2k -> 14.5k objects/s.  16 KiB ingested about as fast but slowed
# that POST to 11.1k: each random index insert then dirties (and writes to the WAL) 16 KiB.
SQLITE_PAGE_SIZE = 8192


SQLITE_BUSY_TIMEOUT_S = 60  # how long a write waits for another connection's write lock


def connect_sqlite(path: Path, cache_mb: int = 128) -> sqlite3.Connection:
    """A connection in autocommit mode; transactions are explicit (``BEGIN IMMEDIATE``)."""
    timeout = SQLITE_BUSY_TIMEOUT_S
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: it fixes the page size
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # in KiB
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


def peek_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to ask *path* what it holds, changing nothing in the file: not its page
    size nor its journal mode, as :func:`connect_sqlite` does for good (a file that is not a
    node's database may be another application's).  The caller closes it."""
    return sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S)


def connect_postgresql(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)
