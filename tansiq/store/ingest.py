"""The one write path: validate, version, store — a whole bundle or nothing.

Every way in (CLI, REST, TAXII, sync) ends in :func:`ingest`.  Objects stream through in batches
inside a single transaction; the first invalid object stops writing, validation goes on to list
every error (up to :data:`MAX_ERRORS`), and the transaction rolls back, so nothing is stored.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson

from tansiq.stix.timestamps import from_micros, now_micros
from tansiq.stix.validate import Problem, check_object
from tansiq.store import deletions
from tansiq.store.ahead import Lookahead, versions_queries
from tansiq.store.database import CopyStream, Database
from tansiq.store.rows import HOLDS_NUL, OBJECT_COLUMNS, build_row, nul_property

MAX_ERRORS = 1000
SWITCH_INTERVAL = 0.0005  # s, while a background writer runs (see _Background)
ANALYZE_AFTER = 10_000  # PostgreSQL: refresh planner statistics after storing this many


Prepare = Callable[[dict[str, Any]], dict[str, Any]]
"""Hook run on each valid object before it is stored (stamping, signing, origin checks).
It returns the object to store, or raises :class:`ObjectRejected`."""


class ObjectRejected(ValueError):
    """Raised by a :data:`Prepare` hook to reject one object."""

    def __init__(self, prop: str, reason: str) -> None:
        super().__init__(reason)
        self.prop = prop
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ObjectError:
    index: int
    id: str | None
    property: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "property": self.property,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        where = f"object {self.index}" + (f" ({self.id})" if self.id else "")
        prop = f" {self.property}:" if self.property else ""
        return f"{where}:{prop} {self.reason}"


CONFLICT = "conflict: a different object with the same id and modified is already stored"
FOREIGN = "another partner's object: only its originator publishes versions of it"
REVOKED_NOT_LAST = (
    "a later version of this object is stored: revocation is permanent, so a revoked version"
    " can only be the last"
)


AFTER_REVOKED = "revocation is permanent, no later version may be created"


def after_revoked(version: int) -> str:
    """Why a version later than the revoked *version* (µs) is refused (STIX 2.1, 3.6); it ends
    with :data:`AFTER_REVOKED`."""
    return f"the object was revoked in its version {from_micros(version)}: {AFTER_REVOKED}"


class IngestError(ValueError):
    """The bundle was rejected; nothing was stored."""

    def __init__(self, errors: list[ObjectError], truncated: bool = False) -> None:
        self.errors = errors
        self.truncated = truncated
        more = " (more not listed)" if truncated else ""
        super().__init__(f"{len(errors)} invalid object(s){more}; nothing stored")

    @property
    def only_conflicts(self) -> bool:
        return all(e.reason == CONFLICT for e in self.errors)


@dataclass(slots=True)
class IngestResult:
    total: int = 0
    stored: int = 0
    unchanged: int = 0
    stored_ids: list[str] = field(default_factory=list)
    first_added: int | None = None
    last_added: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "stored": self.stored, "unchanged": self.unchanged}


def _stored_versions(db: Database, ids: list[str]) -> Iterator[Any]:
    """(id, version, added, is_latest, origin, revoked) of every stored version of *ids*, as
    this thread's connection sees them (see :func:`~tansiq.store.ahead.versions_queries`)."""
    for sql, params in versions_queries(db.dialect, ids):
        yield from db.fetchall(sql, params)


class _Writer:
    """Batches valid rows, resolves versions against the store, writes with the lock held."""

    def __init__(self, db: Database, last_added: int, now: int, keep_ids: bool) -> None:
        self.db = db
        self.beside_python = False  # set while a _Background thread writes
        self.tombstones = deletions.any_recorded(db)
        self.next_added = max(last_added + 1, now)
        self.first_added = self.next_added  # versions added from here on: this ingest's
        # id -> (added of its latest version committed before this ingest, and the added, id,
        # origin and partners of the version latest after it): its withdrawal, recorded once
        # every batch is written (see withdraw)
        self.replaced: dict[str, tuple[int, tuple[int, str, str, str]]] = {}
        self.result = IngestResult()
        self.keep_ids = keep_ids
        # hash() of every id written so far, while a Lookahead supplies committed versions
        self.written: set[int] | None = None
        # PostgreSQL: the COPY left open between batches (see CopyStream); every other
        # statement of the writer ends it first (self.end_stream()).
        self.stream: CopyStream | None = None

    def end_stream(self, error: BaseException | None = None) -> None:
        """End the open ``COPY``, if any (failing it with *error*)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close(error)

    def flush(
        self,
        rows: list[list[Any]],
        indexes: list[int],
        errors: list[ObjectError],
        committed: Future[list[Any]] | None = None,
    ) -> None:
        """Resolve versions of *rows* against the store and write them.

        *committed* (PostgreSQL, from a :class:`~tansiq.store.ahead.Lookahead`): the versions of
        *rows*' ids committed before this ingest; ids this ingest wrote already are asked here.
        """
        if not rows:
            return
        db = self.db
        # Existing versions of the ids in this batch, with which one is latest.
        ids = list({r[1] for r in rows})
        found: Iterable[Any]
        if committed is None or self.written is None:
            self.end_stream()
            found = _stored_versions(db, ids)
        else:
            written = self.written
            again = (
                [] if written.isdisjoint(map(hash, ids)) else [i for i in ids if hash(i) in written]
            )
            found = [r for r in committed.result() if hash(r[0]) not in written]
            if again:
                self.end_stream()
                found += _stored_versions(db, again)
        stored = list(found)
        out: list[list[Any]]
        demote: list[tuple[int]] = []
        if not stored and len(ids) == len(rows):
            # The common case of a bulk load: no id of the batch is stored or repeated, so every
            # row is a new object's only version (latest, as build_row made it).
            out = rows
            added = self.next_added
            for row in out:
                row[0] = added
                added += 1
            self.next_added = added
            if self.keep_ids:
                self.result.stored_ids += [row[1] for row in out]
        else:
            out = self._resolve(rows, indexes, stored, errors, demote)
        if errors or not out:
            return
        if demote:
            self.end_stream()
            db.executemany("UPDATE objects SET is_latest = 0 WHERE added = ?", demote)
        if db.dialect.is_sqlite:
            db.copy_rows("objects", OBJECT_COLUMNS, out, beside_python=self.beside_python)
        else:
            if self.stream is None:
                self.stream = CopyStream(db, "objects", OBJECT_COLUMNS)
            self.stream.write(out)
        if self.written is not None:
            self.written.update(hash(r[1]) for r in out)
        if self.tombstones:
            self.end_stream()
            deletions.forget(db, [(r[1], r[3], r[12]) for r in out])
        self.result.stored += len(out)
        if self.result.first_added is None:
            self.result.first_added = out[0][0]
        self.result.last_added = out[-1][0]

    def _resolve(
        self,
        rows: list[list[Any]],
        indexes: list[int],
        found: list[Any],
        errors: list[ObjectError],
        demote: list[tuple[int]],
    ) -> list[list[Any]]:
        """The rows of *rows* to write, given the stored versions *found* of their ids: each
        gets its ``added``; repeats are counted or reported as conflicts, and the ``added`` of
        stored versions that stop being latest go to *demote*, and what each replacement
        withdraws to :attr:`replaced`."""
        existing: dict[str, dict[int, Any]] = {}  # id -> version -> added, or pending row
        latest: dict[str, tuple[int, Any]] = {}  # id -> (version, added or pending row)
        origins: dict[str, str] = {}  # id -> the partner whose object it is
        revoked_at: dict[str, int] = {}  # id -> its first revoked version, stored or in *rows*
        for oid, ver, added, is_latest, origin, revoked in found:
            existing.setdefault(oid, {})[ver] = added
            origins[oid] = origin
            if is_latest:
                latest[oid] = (ver, added)
            if revoked and ver < revoked_at.get(oid, ver + 1):
                revoked_at[oid] = ver
        stored_top = {oid: v for oid, (v, _) in latest.items()}
        for row in rows:  # a revoked version anywhere in the batch: its order there is no matter
            oid, version, owner = row[1], row[3], origins.get(row[1])
            if owner and row[11] and row[11] != owner:
                continue  # refused as FOREIGN below
            if version in existing.get(oid, ()) or stored_top.get(oid, version) > version:
                continue  # stored already (counted above), or refused below: it revokes nothing
            if row[7] and version < revoked_at.get(oid, version + 1):
                revoked_at[oid] = version
        out: list[list[Any]] = []
        demoted_ids: list[str] = []
        for row, index in zip(rows, indexes, strict=True):
            oid, version, text = row[1], row[3], row[10]
            owner = origins.get(oid)
            if owner and row[11] and row[11] != owner:  # ("": stored before distributions)
                errors.append(ObjectError(index, oid, "id", f"{FOREIGN} ({owner})"))
                continue
            if not owner:
                origins[oid] = row[11]
            versions = existing.setdefault(oid, {})
            if version in versions:
                if self._same(versions[version], text):
                    self.result.unchanged += 1
                else:
                    errors.append(ObjectError(index, oid, "modified", CONFLICT))
                continue
            revoked = revoked_at.get(oid)
            if revoked is not None and version > revoked:
                errors.append(ObjectError(index, oid, "modified", after_revoked(revoked)))
                continue
            if row[7] and stored_top.get(oid, version) > version:
                errors.append(ObjectError(index, oid, "revoked", REVOKED_NOT_LAST))
                continue
            cur = latest.get(oid)
            if cur is None or version > cur[0]:
                if cur is not None:
                    if isinstance(cur[1], list):
                        cur[1][8] = 0  # an earlier version in this same batch
                    else:
                        demote.append((cur[1],))
                        demoted_ids.append(oid)
                latest[oid] = (version, row)
            else:
                row[8] = 0
            row[0] = self.next_added
            self.next_added += 1
            versions[version] = row
            out.append(row)
            if self.keep_ids:
                self.result.stored_ids.append(oid)
        for (old,), oid in zip(demote, demoted_ids, strict=True):
            row = latest[oid][1]
            if old >= self.first_added:  # written by an earlier batch of this ingest: never seen
                if oid not in self.replaced:
                    continue  # a new object: no version of it was ever latest for anyone
                old = self.replaced[oid][0]
            self.replaced[oid] = (old, (row[0], oid, row[11], row[12]))
        return out

    def withdraw(self) -> None:
        """Record the partners each object's new latest version drops, against the version
        that was latest before this ingest: one written by an earlier batch of it and replaced
        by a later one was never latest outside this transaction, so the partners it alone was
        released to saw nothing to withdraw.  Once, after the last batch."""
        if self.replaced:
            self.end_stream()
            deletions.record_withdrawals(self.db, self.first_added, list(self.replaced.values()))
            self.replaced = {}

    def _same(self, prior: Any, text: str) -> bool:
        """Is the stored (or pending, in this batch) version identical in content?"""
        if isinstance(prior, list):
            stored = prior[10]
        else:
            self.end_stream()
            row = self.db.fetchone("SELECT json FROM objects WHERE added = ?", (prior,))
            stored = row[0] if row else None
        return stored is not None and (
            stored == text or same_json(orjson.loads(stored), orjson.loads(text))
        )


def same_json(a: Any, b: Any) -> bool:
    """Are *a* and *b* (parsed JSON) the same JSON value?  As ``==`` (key order aside, ``1`` is
    ``1.0``), except that ``true`` and ``false`` are not the numbers ``1`` and ``0``."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_json(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_json, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


_switching_lock = threading.Lock()
_switching_users = 0
_switching_saved = 0.0


def _switch_often(on: bool) -> None:
    """Enter (*on*) or leave the :data:`SWITCH_INTERVAL` regime; concurrent ingests (server
    threads) nest: the first in saves the interpreter's interval, the last out restores it."""
    global _switching_users, _switching_saved
    with _switching_lock:
        if on:
            if _switching_users == 0:
                _switching_saved = sys.getswitchinterval()
                sys.setswitchinterval(min(_switching_saved, SWITCH_INTERVAL))
            _switching_users += 1
        else:
            _switching_users -= 1
            if _switching_users == 0:
                sys.setswitchinterval(_switching_saved)


_CANCELLED = RuntimeError("the ingest was abandoned")  # ends an open COPY of a cancelled ingest


_Item = tuple[list[list[Any]], list[int], Future[list[Any]] | None]
"""A batch for the writer thread: rows, their object indexes, their ids' committed versions."""


class _Background:
    """Writes batches on a second thread while the caller validates the next one.

    SQLite and psycopg release the GIL while the database works, so on a machine with two or
    more cores parsing/validation and index maintenance overlap.  The thread uses the caller's
    connection (inside the caller's transaction); batches are written strictly in order.

    When the caller validates in Python meanwhile (``busy_caller``), each time the database hands
    control back the thread needs the GIL, which the caller holds: CPython makes it wait up to
    the switch interval (5 ms by default), once per row with ``executemany``.  So the thread then
    binds many rows per statement (``beside_python``) and the interpreter switches every
    :data:`SWITCH_INTERVAL` seconds while it runs (measured on ICS ATT&CK, ``Node.ingest``:
    26k -> 29-30k objects/s; without it the thread barely overlaps the caller at all).  A caller
    that mostly waits on worker processes (file ingest) leaves the GIL free: plain
    ``executemany`` is faster there.
    """

    def __init__(self, db: Database, writer: _Writer, busy_caller: bool = False) -> None:
        self.db = db
        self.writer = writer
        writer.beside_python = busy_caller
        if busy_caller:
            _switch_often(True)
        self.conn = db.connection()
        self.queue: queue.Queue[_Item | None] = queue.Queue(2)
        self.errors: list[ObjectError] = []
        self.failure: BaseException | None = None
        self.cancelled = False  # set by the caller's thread: write no more
        self.thread = threading.Thread(target=self._run, name="tansiq-ingest-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.db.adopt(self.conn)
        try:
            while (item := self.queue.get()) is not None:
                if self.failure is None and not self.errors and not self.cancelled:
                    try:
                        self.writer.flush(item[0], item[1], self.errors, item[2])
                    except BaseException as exc:  # re-raised in the caller's thread
                        self.failure = exc
            try:
                self.writer.end_stream(self.failure or (_CANCELLED if self.cancelled else None))
            except BaseException as exc:
                self.failure = self.failure or exc
        finally:
            self.db.release()

    def submit(
        self,
        rows: list[list[Any]],
        indexes: list[int],
        committed: Future[list[Any]] | None = None,
    ) -> None:
        self.queue.put((rows, indexes, committed))

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.failure is not None

    def finish(self, cancel: bool = False) -> None:
        """Wait until the thread has written every submitted batch and ended; re-raise its
        failure.  *cancel* (the caller is failing already): let it end the batch it writes,
        drop the others, and raise nothing.

        The thread writes in the caller's transaction: until it has ended, that transaction
        must not end (rolled back under it, what it writes next would be stored, outside any
        transaction, as the connections are in autocommit mode).  So an interruption (Ctrl-C)
        does not stop this wait: it cancels, and is raised once the thread has ended.
        """
        interrupted: BaseException | None = None
        self.cancelled = self.cancelled or cancel
        for step in ("put", "join"):
            while True:
                try:
                    if step == "put":
                        self.queue.put(None)
                    else:
                        self.thread.join()
                    break
                except KeyboardInterrupt as exc:
                    interrupted, self.cancelled = exc, True
        if self.writer.beside_python:
            _switch_often(False)
            self.writer.beside_python = False
        if cancel:
            return
        if interrupted is not None:
            raise interrupted
        if self.failure is not None:
            raise self.failure


Batch = tuple[list[list[Any]], list[int], list[ObjectError], int, bool]
"""(rows, their object indexes, errors, objects read so far, error list truncated)"""


def prepare_batches(
    objects: Iterable[Any],
    prepare: Prepare | None,
    batch_size: int,
    share: tuple[int, int] | None = None,
    validated: bool = False,
) -> Iterator[Batch]:
    """Validate and prepare *objects* into row batches; after the first error, only validate.

    With ``share=(k, n)`` only every n-th chunk of *batch_size* objects, starting at chunk k, is
    validated and prepared (one batch per such chunk); the others are skipped.
    """
    if share is not None:
        yield from _shared_batches(objects, prepare, batch_size, *share)
        return
    rows: list[list[Any]] = []
    indexes: list[int] = []
    errors: list[ObjectError] = []
    n_errors = 0
    index = -1
    for index, obj in enumerate(objects):
        problems = [] if validated else check_object(obj)
        if not problems and prepare is not None:
            try:
                obj = prepare(obj)
            except ObjectRejected as exc:
                problems = [Problem(exc.prop, exc.reason)]
        row: list[Any] = []
        if not problems:
            row = build_row(obj)
            nul = nul_property(obj, row)
            if nul is not None:  # (validated or not: sync's pages too)
                problems = [Problem(nul, HOLDS_NUL)]
        if problems:
            oid = obj.get("id") if isinstance(obj, dict) else None
            oid = oid if isinstance(oid, str) else None
            errors.extend(ObjectError(index, oid, p.property, p.reason) for p in problems)
            n_errors += len(problems)
            if n_errors >= MAX_ERRORS:
                yield rows, indexes, errors, index + 1, True
                return
            continue
        if n_errors:
            continue  # keep validating to report every error; nothing will be written
        rows.append(row)
        indexes.append(index)
        if len(rows) >= batch_size:
            yield rows, indexes, errors, index + 1, False
            rows, indexes, errors = [], [], []
    yield rows, indexes, errors, index + 1, False


def _shared_batches(
    objects: Iterable[Any], prepare: Prepare | None, batch_size: int, k: int, n: int
) -> Iterator[Batch]:
    def mine(index: int) -> bool:
        return (index // batch_size) % n == k

    chunk: list[Any] = []
    start = 0
    for index, obj in enumerate(objects):
        if index % batch_size == 0:
            if chunk:
                yield from _one_batch(chunk, start, prepare)
                chunk = []
            start = index
        if mine(index):
            chunk.append(obj)
    if chunk:
        yield from _one_batch(chunk, start, prepare)


def _one_batch(chunk: list[Any], start: int, prepare: Prepare | None) -> Iterator[Batch]:
    """The chunk's objects as exactly one batch, indexes counted from *start*."""
    rows: list[list[Any]] = []
    indexes: list[int] = []
    errors: list[ObjectError] = []
    for batch_rows, batch_indexes, batch_errors, _, cut in prepare_batches(
        chunk, prepare, len(chunk) + 1
    ):
        rows += batch_rows
        indexes += [start + i for i in batch_indexes]
        errors += [ObjectError(start + e.index, e.id, e.property, e.reason) for e in batch_errors]
        if cut:
            yield rows, indexes, errors, start + len(chunk), True
            return
    yield rows, indexes, errors, start + len(chunk), False


def ingest(
    db: Database,
    objects: Iterable[Any],
    *,
    prepare: Prepare | None = None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    keep_ids: bool = False,
    now: int | None = None,
    before_commit: Callable[[IngestResult], None] | None = None,
    validated: bool = False,
) -> IngestResult:
    """Validate and store *objects* (dicts) in one transaction; raise :class:`IngestError`.

    ``validated=True`` is for callers that ran :func:`check_object` on every object already
    (sync checks pages in worker processes); nothing else may skip validation.
    """
    return store_batches(
        db,
        prepare_batches(objects, prepare, batch_size, validated=validated),
        busy_caller=True,
        progress=progress,
        keep_ids=keep_ids,
        now=now,
        before_commit=before_commit,
    )


def store_batches(
    db: Database,
    batches: Iterable[Batch],
    *,
    progress: Callable[[int], None] | None = None,
    keep_ids: bool = False,
    now: int | None = None,
    before_commit: Callable[[IngestResult], None] | None = None,
    busy_caller: bool = False,
) -> IngestResult:
    """Store prepared batches in one transaction (all or nothing); raise :class:`IngestError`.

    ``busy_caller``: computing *batches* keeps this thread busy in Python (validation here
    rather than in worker processes); see :class:`_Background`.
    """
    # Ingest allocates millions of short-lived containers and frees them promptly; the cyclic
    # collector would only re-scan them (measured: ~15% of ingest time on ICS ATT&CK).
    _collect_cycles(False)
    try:
        return _store(db, batches, progress, keep_ids, now, before_commit, busy_caller)
    finally:
        _collect_cycles(True)


_collecting_lock = threading.Lock()
_collecting_off = 0  # ingests running with the cyclic collector off
_collecting_was = True


def _collect_cycles(on: bool) -> None:
    """Turn the cyclic collector off for an ingest (*on* False) or back (*on* True) once the
    last of the ingests running at once ends (server threads).  Each saving and restoring it
    alone left it off for good when one began (saw it off) as another ended (turned it on)."""
    global _collecting_off, _collecting_was
    with _collecting_lock:
        if not on:
            if _collecting_off == 0:
                _collecting_was = gc.isenabled()
                gc.disable()
            _collecting_off += 1
        else:
            _collecting_off -= 1
            if _collecting_off == 0 and _collecting_was:
                gc.enable()


def _store(
    db: Database,
    batches: Iterable[Batch],
    progress: Callable[[int], None] | None,
    keep_ids: bool,
    now: int | None,
    before_commit: Callable[[IngestResult], None] | None,
    busy_caller: bool,
) -> IngestResult:
    errors: list[ObjectError] = []
    truncated = False
    count = 0
    # Only as the outermost transaction: the look-ahead cannot see what an enclosing one wrote.
    look_ahead = not db.in_transaction()
    with db.write() as last_added:
        writer = _Writer(db, last_added, now_micros() if now is None else now, keep_ids)
        background: _Background | None = None
        lookahead: Lookahead | None = None
        pending: tuple[list[list[Any]], list[int]] | None = None  # written inline if alone

        def submit(rows: list[list[Any]], indexes: list[int]) -> None:
            assert background is not None
            background.submit(rows, indexes, lookahead.committed(rows) if lookahead else None)

        read_all = False  # (else an exception is on its way: the writer thread writes no more)
        try:
            for rows, indexes, batch_errors, count, cut in batches:
                errors.extend(batch_errors)
                if cut or len(errors) >= MAX_ERRORS:  # (batches computed apart are not cut)
                    truncated = True
                    break
                if not errors and rows:
                    if pending is not None:
                        if background is None:
                            background = _Background(db, writer, busy_caller)
                            if look_ahead:
                                lookahead = Lookahead(db)
                                writer.written = set()
                        submit(*pending)
                    pending = (rows, indexes)
                if progress is not None:
                    progress(count)
            read_all = True
        finally:
            try:
                if background is not None:
                    try:
                        if (
                            read_all
                            and pending is not None
                            and not errors
                            and not background.failed
                        ):
                            submit(*pending)
                            pending = None
                    except BaseException:
                        read_all = False
                        raise
                    finally:
                        # before commit or rollback: it writes on this connection
                        background.finish(cancel=not read_all)
            finally:
                if lookahead is not None:
                    lookahead.close()
        if background is not None:
            errors.extend(background.errors)
        if pending is not None and not errors:
            try:
                writer.flush(pending[0], pending[1], errors)
            except BaseException as exc:
                writer.end_stream(exc)  # before the rollback: the COPY holds the connection
                raise
            writer.end_stream()
        if not errors:
            writer.withdraw()
        if errors:
            errors.sort(key=lambda e: e.index)
            raise IngestError(errors[:MAX_ERRORS], truncated)
        writer.result.total = count
        if writer.result.last_added is not None:
            db.set_clock(writer.result.last_added)
        if before_commit is not None:
            before_commit(writer.result)  # e.g. the audit entry, in the same transaction
    if not db.dialect.is_sqlite and writer.result.stored >= ANALYZE_AFTER:
        # A bulk load leaves PostgreSQL's planner statistics describing a much smaller table
        # (until autovacuum catches up), and it would scan instead of using the indexes.
        db.execute("ANALYZE objects")
    return writer.result
