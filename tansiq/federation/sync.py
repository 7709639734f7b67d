"""Pull sync: each node pulls what its peers originated and released to it, over TAXII 2.1.

For each enrolled peer the node pages through the peer's ``shared`` collection with
``match[version]=all`` and ``added_after`` = the last ``date_added`` it stored.  Every version is
verified (:func:`tansiq.federation.signing.receive_hook`); rejected ones are audited and skipped.
The accepted versions of a page and the advanced cursor are written in one transaction, so a crash
at any point resumes from the last committed page: no loss, and re-sent versions are no-ops.
Withdrawals (a later version that no longer releases an object to this node) and deletions (the
peer deleted versions it had released to this node) arrive from the peer's
``/api/sync/withdrawals`` feed and delete the local copies.  A version refused only for what
this node holds until that feed is applied is kept aside with the cursor that passes it and
offered again after the feed (:mod:`tansiq.federation.deferred`), in this pull or the next.

A suspended partner (``tansiq partner suspend``) is not pulled from: :func:`sync_all` (and so
the scheduler) skips it, :func:`sync_partner` refuses it.  Its cursors stay as they were, so
after ``tansiq partner resume`` the next pull continues where the last one ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tansiq.federation import credentials, peer
from tansiq.federation.peer import SHARED_COLLECTION, Page, SyncError, client_for, peer_token
from tansiq.federation.received import (
    WITHDRAWALS,
    SyncReport,
    apply_feed,
    cursor,
    finish_page,
    set_cursor,
    store_deferred,
)
from tansiq.federation.signing import SignatureError
from tansiq.federation.verify import PageVerifier, check
from tansiq.node import Node
from tansiq.sharing import Partner, list_partners
from tansiq.stix.timestamps import from_micros, is_timestamp
from tansiq.store.database import StoreError
from tansiq.store.dialect import connect_postgresql

__all__ = [
    "SHARED_COLLECTION",
    "Scheduler",
    "SyncError",
    "SyncReport",
    "client_for",
    "peer_token",
    "pull_lock",
    "sync_all",
    "sync_partner",
]
_cursor, _set_cursor = cursor, set_cursor  # (tests read and move cursors by hand)
log = logging.getLogger("tansiq.sync")


def sync_partner(
    node: Node,
    code: str,
    *,
    page_size: int = 1000,
    progress: Callable[[SyncReport], None] | None = None,
    client: httpx.Client | None = None,
    from_start: bool = False,
    stop: threading.Event | None = None,
    report: SyncReport | None = None,
) -> SyncReport:
    """Pull everything new from partner *code* (with *from_start*, everything it releases to
    this node, again: what was rejected before is offered once more); return what happened.
    A *report* given is filled in as the pull goes, so that it still tells what was stored
    and rejected when the pull fails part way (:func:`sync_all`, ``tansiq sync``).

    Once *stop* is set (``tansiq serve`` shutting down) the pull ends after the page it is
    checking or storing: each page commits with its cursor, so the next pull resumes there.

    Pulls on one database run one at a time (:func:`pull_lock`): a scheduled pull and a
    ``tansiq sync`` that overlapped could store a page of the first after the second applied a
    withdrawal covering it, and the object would stay for good."""
    partners = list_partners(node.db)
    partner = next((p for p in partners if p.code == code), None)
    if partner is None:
        raise SyncError(f"no partner {code}; see `tansiq partner list`")
    if partner.suspended:
        raise SyncError(f"{code}: {suspended(partner)}; `tansiq partner resume {code}` first")
    others = frozenset({node.identity_id, *(p.identity_id for p in partners if p.code != code)})
    credentials.seal_legacy(node)  # tokens an earlier version stored in clear
    report = SyncReport(code) if report is None else report
    with contextlib.ExitStack() as stack:
        if not stack.enter_context(pull_lock(node, stop)):
            return report  # told to stop while another pull held the lock
        # (first: a partner added by hand, with no key, URL or token, is told how to enrol)
        http = client or stack.enter_context(client_for(node, partner))
        try:
            verifier = stack.enter_context(PageVerifier(node.code, partner, others))
        except SignatureError as exc:
            raise SyncError(f"{code}: {exc}") from None
        start = None if from_start else cursor(node, code, SHARED_COLLECTION)
        if start is not None and not is_timestamp(start):
            # An earlier tansiq stored a peer's bad X-TAXII-Date-Added-Last as the cursor;
            # asked added_after=<it>, the peer refuses every pull.  Pages are idempotent: a
            # pull from the start (as --from-start) takes what is missing, and moves past it.
            log.warning(
                "%s: the sync cursor %.100r is no timestamp: pulling from the start", code, start
            )
            start = None
        limits = peer.Limits.of(node.settings)
        pages = _prefetch(peer.pages(http, start, page_size, limits), stop)
        # Pipeline: the workers check page n+1 while this process stores page n.
        pending: tuple[list[Any], str, Callable[[], list[str | None]]] | None = None

        def finish() -> None:  # store the pending page: it counts from then on
            assert pending is not None
            report.pages += 1
            report.received += len(pending[0])
            finish_page(node, report, *pending)
            if progress is not None:
                progress(report)

        fault: SyncError | None = None
        while True:
            try:
                objects, last, raw = next(pages)
            except StopIteration:
                break
            except SyncError as exc:  # the peer failed on the next page: store the one before
                fault = exc
                break
            if stopping(stop):
                break  # (this page is not stored: fetched again next time)
            # (no replay check there: finish_page judges older versions against the store)
            checking = verifier.submit(raw, objects, {})
            if pending is not None:
                finish()
            pending = (objects, last, checking)
        if pending is not None:
            finish()
        if fault is not None:
            raise fault
        if stopping(stop):
            return report
        _withdrawals(node, report, http, limits, progress, stop)
        if stopping(stop):
            return report
        store_deferred(node, report, lambda obj: check(obj, verifier.hook))
    return report


def stopping(stop: threading.Event | None) -> bool:
    """Has the pull been told to stop (see :func:`sync_partner`)?"""
    return stop is not None and stop.is_set()


def _prefetch(pages: Iterator[Page], told: threading.Event | None = None) -> Iterator[Page]:
    """Fetch the next page on a thread while the caller works on the current one.

    If the caller stops early (an error while storing), the fetching thread is told to stop too
    and is not left blocked on a full queue.  Once *told* is set (``tansiq serve`` shutting
    down), no page comes any more: the pull does not wait for a peer slow to send the next one
    (up to ``sync_response_seconds``), nor for the fetching thread, left to end by itself.
    """
    box: queue.Queue[Page | BaseException | None] = queue.Queue(1)
    stop = threading.Event()

    def offer(item: Page | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for page in pages:
                if not offer(page):
                    return
            offer(None)
        except BaseException as exc:
            offer(exc)

    thread = threading.Thread(target=run, name="tansiq-sync-fetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = box.get(timeout=0.2)
            except queue.Empty:
                if stopping(told):
                    break
                continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(0 if stopping(told) else 30)


def _withdrawals(
    node: Node,
    report: SyncReport,
    http: httpx.Client,
    limits: peer.Limits,
    progress: Callable[[SyncReport], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Apply the peer's withdrawal feed from this node's cursor, page by page."""
    after = int(cursor(node, report.partner, WITHDRAWALS) or "0")
    for items in peer.feed_pages(http, after, limits):
        if stopping(stop):
            return
        apply_feed(node, report, items)
        if progress is not None:
            progress(report)


def sync_all(
    node: Node,
    progress: Callable[[SyncReport], None] | None = None,
    page_size: int = 1000,
    stop: threading.Event | None = None,
) -> list[SyncReport]:
    """Pull from every enrolled partner; a failing partner does not stop the others.  Once
    *stop* is set, no other partner is pulled from (see :func:`sync_partner`).

    A partner whose pull failed gets a report with its ``error``, for the caller to show (the
    CLI prints it, the scheduler logs it): logged here only at debug, or it would be said twice.
    It keeps the counts of the pages stored (and versions rejected) before the failure.
    An unexpected error (neither the peer's nor the store's) is logged with its traceback."""
    reports = []
    for p in list_partners(node.db):
        if stopping(stop):
            break
        if p.suspended:
            reports.append(SyncReport(p.code, skipped=suspended(p)))
            continue
        report = SyncReport(p.code)
        try:
            if peer_token(node, p.code) is None:
                continue
            sync_partner(
                node, p.code, progress=progress, page_size=page_size, stop=stop, report=report
            )
        except Exception as exc:  # whatever one partner does, the others go on
            if isinstance(exc, SyncError | StoreError):
                log.debug("sync from %s failed: %s", p.code, exc)
            else:
                log.exception("sync from %s failed", p.code)
            report.error = str(exc)
        reports.append(report)
    return reports


def suspended(partner: Partner) -> str:
    """What a suspended *partner* is told as: "suspended" and the operator's reason, if any."""
    why = f" ({partner.suspended_reason})" if partner.suspended_reason else ""
    return f"the partnership is suspended since {from_micros(partner.suspended)}{why}"


PULL_LOCK_KEY = 7263
# PostgreSQL advisory locks are per database; a node's tables are in the schema its URL's
# search_path names first.  The locks of a node are keyed (key, hash of that schema), so nodes
# in two schemas of one database (as the tests run, or a shared server) each have their own.
TRY_NODE_LOCK = "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))"
WAITING = "another pull on this database is running (the scheduler's?): waiting for it to end"


def lock_path(node: Node, name: str) -> Path:
    """SQLite: the file whose ``flock`` stands for lock *name* of the node's database (beside
    the database file, which several data directories may share through ``sqlite:///``)."""
    assert node.db.path is not None
    return Path(f"{node.db.path}.{name}.lock")


@contextlib.contextmanager
def pull_lock(node: Node, stop: threading.Event | None = None) -> Iterator[bool]:
    """Hold the database's pull lock (waiting for it): an exclusive ``flock`` on SQLite, a
    session advisory lock on a connection of its own on PostgreSQL.  Yields ``True``; or
    ``False``, not holding it, if *stop* was set while it waited (``tansiq serve`` shutting
    down while a ``tansiq sync`` pulls: the shutdown waited for that pull's end)."""
    db = node.db
    if db.dialect.is_sqlite:
        with lock_path(node, "pull").open("w") as f:

            def take() -> bool:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when f closes
                    return True
                except OSError:
                    return False

            yield _wait_for(take, stop)
        return
    with contextlib.closing(connect_postgresql(db.url)) as conn:

        def try_lock() -> bool:
            row = conn.execute(TRY_NODE_LOCK, (PULL_LOCK_KEY,)).fetchone()
            return bool(row and row[0])

        yield _wait_for(try_lock, stop)  # the lock goes with the session


PULL_LOCK_POLL_S = 0.2


def _wait_for(take: Callable[[], bool], stop: threading.Event | None) -> bool:
    """Call *take* until it returns ``True`` (then ``True``), or *stop* is set (``False``)."""
    if take():
        return True
    log.warning(WAITING)
    while not (stop is not None and stop.wait(PULL_LOCK_POLL_S)):
        if stop is None:
            time.sleep(PULL_LOCK_POLL_S)
        if take():
            return True
    return False


class Scheduler:
    """Pulls from every partner every ``sync_interval_seconds``; one per database.

    Several server processes may share a database: only the one holding the scheduler lock (a
    PostgreSQL advisory lock, re-checked every round; or an exclusive lock on a file beside the
    SQLite database) pulls.  :meth:`close` ends a pull in progress after the page it is storing.
    """

    LOCK_KEY = 7262

    def __init__(self, node: Node) -> None:
        self.node = node
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tansiq-sync", daemon=True)
        self._lock_file: Any = None
        self._lock_conn: Any = None

    def start(self) -> None:
        self.thread.start()

    def _acquire(self) -> bool:
        db = self.node.db
        if db.dialect.is_sqlite:
            if self._lock_file is None:
                self._lock_file = lock_path(self.node, "sync").open("w")
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            return True
        if self._lock_conn is None:
            self._lock_conn = connect_postgresql(db.url)
        row = self._lock_conn.execute(TRY_NODE_LOCK, (self.LOCK_KEY,)).fetchone()
        return bool(row and row[0])

    def _still_holding(self) -> bool:
        """PostgreSQL: is the session holding the advisory lock still alive?  (The lock dies
        with it: a restart, an idle timeout, a failover; another process may then take it.)"""
        if self.node.db.dialect.is_sqlite or self._lock_conn is None:
            return self.node.db.dialect.is_sqlite
        try:
            self._lock_conn.execute("SELECT 1")
            return True
        except Exception:
            log.warning("the scheduler lock's connection is gone; taking the lock again")
            with contextlib.suppress(Exception):
                self._lock_conn.close()
            self._lock_conn = None
            return False

    def _run(self) -> None:
        interval = max(1, int(self.node.settings.sync_interval_seconds))
        holding = False
        while not self.stop.is_set():
            try:
                holding = (holding and self._still_holding()) or self._acquire()
                if holding:
                    for report in sync_all(self.node, stop=self.stop):
                        if report.error:
                            log.error("sync from %s failed: %s", report.partner, report.error)
                        elif (
                            report.received
                            or report.withdrawn
                            or report.deleted
                            or report.rejections
                        ):
                            log.info("%s", report)
            except Exception:  # keep the scheduler alive; the error is logged
                log.exception("scheduled sync failed")
            self.stop.wait(interval)

    def close(self) -> None:
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join(10)
        if self._lock_conn is not None:
            self._lock_conn.close()
        if self._lock_file is not None:
            self._lock_file.close()
