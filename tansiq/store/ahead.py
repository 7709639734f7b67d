"""Bulk ingest: stored versions looked up before the writer thread needs them.

With a background writer (:class:`tansiq.store.ingest._Background`) the database is the slowest
stage of an ingest, so a lookup the writer makes itself is lost time: on PostgreSQL it must wait
for the previous batch's ``COPY`` to finish, and the server works on nothing else meanwhile
(measured on 200k ICS ATT&CK objects: 1.65 s of an 8.5 s ingest); on SQLite it took 1.4 s of
the writer's 5.8 s.  :class:`Lookahead` asks on a second connection instead, from a thread of
its own, while the writer is still writing the previous batch; the writer waits for the answer
only if it is not there yet.  (Asked from the caller's thread, the lookup held up validation for
13% of an ingest; moving it and leaving PostgreSQL's ``COPY`` open between batches took a
200k-object ingest from 33-35k to 41-44k objects/s; on SQLite, 27-28k -> 28-31.5k.)

That connection sees only committed rows, which cannot change under the node write lock the
ingest holds.  Rows written earlier by the same ingest are invisible to it, so the writer asks its
own connection about ids it has written already (``_Writer.written``).  The unique
``(id, version)`` key stays the last word.

(Formatting the rows for ``COPY`` on the caller's thread as well was tried and measured slower:
26.6k against 28.8k objects/s; the caller then becomes the slowest stage.)
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tansiq.store.database import Database
from tansiq.store.dialect import Dialect

# The stored versions of some ids, with which is latest and which are revoked (revocation is
# permanent: the writer refuses later versions); the caller completes the condition.
VERSIONS_OF_IDS = "SELECT id, version, added, is_latest, origin, revoked FROM objects WHERE id"
# PostgreSQL: the ids travel as one comma-separated text (STIX ids hold no commas) that the
# server splits.  A Python list parameter goes through psycopg's array dumper, which is pure
# Python: 3.7 µs per id, 12% of the caller's time in a 200k-object ingest.
ANY_OF_IDS = " = ANY(string_to_array(?, ','))"


def ids_parameter(ids: list[str]) -> str:
    """The parameter of :data:`ANY_OF_IDS` for *ids* (valid STIX identifiers)."""
    return ",".join(ids)


def versions_queries(dialect: Dialect, ids: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(SQL with ``?`` placeholders, parameters) asking (id, version, added, is_latest, origin,
    revoked) of every stored version of *ids*: one query on PostgreSQL (see
    :data:`ANY_OF_IDS`), one per 500 ids on SQLite (its limit on parameters)."""
    if not dialect.is_sqlite:
        yield VERSIONS_OF_IDS + ANY_OF_IDS, [ids_parameter(ids)]
        return
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        yield f"{VERSIONS_OF_IDS} IN ({','.join('?' * len(chunk))})", chunk


class Lookahead:
    """Committed versions of each batch's ids, asked on a connection and a thread of their own
    (the caller goes on validating while the server looks them up: 13% of its time before)."""

    def __init__(self, db: Database) -> None:
        self.dialect = db.dialect
        self.conn = db.side_connection()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="tansiq-lookahead")

    def committed(self, rows: list[list[Any]]) -> Future[list[Any]]:
        """(id, version, added, is_latest, origin, revoked) of every committed version of *rows*'
        ids."""
        return self.pool.submit(self._committed, rows)

    def _committed(self, rows: list[list[Any]]) -> list[Any]:
        found: list[Any] = []
        for sql, params in versions_queries(self.dialect, list({r[1] for r in rows})):
            found += self.conn.execute(self.dialect.sql(sql), params).fetchall()
        return found

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.conn.close()
