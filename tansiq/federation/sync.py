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
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tansiq import audit
from tansiq.federation import credentials, deferred
from tansiq.federation.signing import SignatureError
from tansiq.federation.verify import PageVerifier
from tansiq.node import Node
from tansiq.sharing import Partner, list_partners
from tansiq.stix.timestamps import from_micros, now_micros, to_micros, version_micros
from tansiq.store import deletions
from tansiq.store.database import StoreError
from tansiq.store.dialect import connect_postgresql
from tansiq.store.ingest import AFTER_REVOKED, CONFLICT, IngestError, IngestResult, ingest

log = logging.getLogger("tansiq.sync")
TAXII = "application/taxii+json;version=2.1"
SHARED_COLLECTION = "shared"
WITHDRAWALS = "withdrawals"


class SyncError(RuntimeError):
    """A pull from a peer failed; the message says what to check."""


@dataclass
class SyncReport:
    partner: str
    received: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: int = 0
    withdrawn: int = 0
    deleted: int = 0
    pages: int = 0
    rejections: list[str] = field(default_factory=list)
    error: str = ""  # why the pull itself failed (:func:`sync_all`); "" when it ran
    skipped: str = ""  # why it was not pulled at all (:func:`sync_all`: suspended); "" when it ran

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.partner}: skipped: {self.skipped}"
        return (
            f"{self.partner}: {self.received} received, {self.stored} stored, "
            f"{self.unchanged} unchanged, {self.rejected} rejected, {self.withdrawn} withdrawn, "
            f"{self.deleted} deleted"
        )


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def peer_token(node: Node, code: str) -> str | None:
    try:
        return credentials.load(node, code)
    except credentials.CredentialError as exc:
        raise SyncError(str(exc)) from None


def client_for(node: Node, partner: Partner) -> httpx.Client:
    token = peer_token(node, partner.code)
    if not partner.base_url or token is None or not partner.public_key:
        raise SyncError(
            f"partner {partner.code} is not enrolled for sync (URL, key and token needed): "
            f"run `tansiq partner add --enrolment` with {partner.code}'s invitation"
        )
    url = partner.base_url
    scheme = urlsplit(url).scheme.lower()  # "HTTP://" is plain HTTP too
    if scheme not in ("http", "https"):
        raise SyncError(f"{partner.code}'s URL {url} is not an http(s) URL")
    if scheme == "http" and not _loopback(url) and not node.settings.allow_plain_http:
        raise SyncError(
            f"{partner.code}'s URL {url} is plain HTTP: the sync token would travel in clear. "
            "Use https, or set allow_plain_http if the network is protected otherwise."
        )
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}", "Accept": TAXII},
        timeout=httpx.Timeout(60.0, connect=10.0),
    )


def _cursor(node: Node, partner: str, collection: str) -> str | None:
    row = node.db.fetchone(
        "SELECT added_after FROM sync_cursors WHERE partner = ? AND collection = ?",
        (partner, collection),
    )
    return None if row is None else str(row[0])


def _set_cursor(node: Node, partner: str, collection: str, value: str) -> None:
    node.db.execute(
        "INSERT INTO sync_cursors (partner, collection, added_after, updated) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (partner, collection) DO UPDATE"
        " SET added_after = excluded.added_after, updated = excluded.updated",
        (partner, collection, value, now_micros()),
    )


MAX_RESPONSE_BYTES = 512 * 2**20
"""Largest answer read from a peer: the scheduler pulls inside ``tansiq serve``, so a peer
sending without end must not exhaust the server's memory."""
RESPONSE_SECONDS = 600.0
"""Longest a peer may take over one answer: the read timeout bounds each wait for bytes only,
and a peer trickling them would hold the pull lock, and every other partner's pull, for good."""


@dataclass
class Answer:
    """A peer's 200 answer, read whole."""

    content: bytes
    headers: httpx.Headers


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> Answer:
    deadline = time.monotonic() + RESPONSE_SECONDS
    where = f"{client.base_url}{path}"
    try:
        with client.stream("GET", path, params=params) as r:
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise SyncError(f"{where} answered more than {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise SyncError(f"{where} took more than {RESPONSE_SECONDS:g} s to answer")
                chunks.append(chunk)
            status = r.status_code
            headers = r.headers
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot reach {client.base_url}: {exc}") from None
    content = b"".join(chunks)
    if status != 200:
        raise SyncError(f"{where} answered {status}: {_error_text(content)}")
    return Answer(content, headers)


def _error_text(content: bytes) -> str:
    """What a peer's error answer says: a TAXII error's description, a problem's detail,
    else the start of the body."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        for key in ("description", "detail", "title"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:300]
    return content[:300].decode("utf-8", "replace")


Page = tuple[list[Any], str, bytes]  # objects, X-TAXII-Date-Added-Last, the envelope's bytes


def _pages(client: httpx.Client, cursor: str | None, limit: int) -> Iterator[Page]:
    path = f"/taxii2/api/collections/{SHARED_COLLECTION}/objects/"
    while True:
        params: dict[str, Any] = {"limit": limit, "match[version]": "all"}
        if cursor:
            params["added_after"] = cursor
        r = _get(client, path, params)
        try:
            body = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            raise SyncError(f"{client.base_url}{path} answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise SyncError(f"{client.base_url}{path} answered with no TAXII envelope")
        objects = body.get("objects") or []
        last = r.headers.get("X-TAXII-Date-Added-Last")
        if not objects or not last:
            return
        if cursor and _micros(last, client) <= _micros(cursor, client):
            raise SyncError(
                f"{client.base_url}{path} answered a page that does not advance past {cursor}"
            )
        yield objects, last, r.content
        cursor = last
        if not body.get("more"):
            return


def _micros(stamp: str, client: httpx.Client) -> int:
    try:
        return to_micros(stamp)
    except ValueError:
        bad = f"{client.base_url} sent a bad X-TAXII-Date-Added-Last: {stamp!r}"
        raise SyncError(bad) from None


def sync_partner(
    node: Node,
    code: str,
    *,
    page_size: int = 1000,
    progress: Callable[[SyncReport], None] | None = None,
    client: httpx.Client | None = None,
    from_start: bool = False,
) -> SyncReport:
    """Pull everything new from partner *code* (with *from_start*, everything it releases to
    this node, again: what was rejected before is offered once more); return what happened.

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
    report = SyncReport(code)
    with contextlib.ExitStack() as stack:
        stack.enter_context(pull_lock(node))
        try:
            verifier = stack.enter_context(PageVerifier(node.code, partner, others))
        except SignatureError as exc:
            raise SyncError(f"{code}: {exc}") from None
        http = client or stack.enter_context(client_for(node, partner))
        cursor = None if from_start else _cursor(node, code, SHARED_COLLECTION)
        pages = _prefetch(_pages(http, cursor, page_size))
        # Pipeline: the workers check page n+1 while this process stores page n.
        pending: tuple[list[Any], str, Callable[[], list[str | None]]] | None = None
        for objects, last, raw in pages:
            report.pages += 1
            report.received += len(objects)
            checking = verifier.submit(raw, objects, _replay_check(node, objects))
            if pending is not None:
                _finish_page(node, report, *pending)
                if progress is not None:
                    progress(report)
            pending = (objects, last, checking)
        if pending is not None:
            _finish_page(node, report, *pending)
            if progress is not None:
                progress(report)
        _withdrawals(node, report, http)
        _store_deferred(node, report)
    return report


def _finish_page(
    node: Node,
    report: SyncReport,
    objects: list[Any],
    last: str,
    checking: Callable[[], list[str | None]],
) -> None:
    held, kept = _held_and_kept(node, objects)  # again: the previous page may have brought more
    good = []
    for obj, reason in zip(objects, checking(), strict=True):
        version = (obj["id"], version_micros(obj)) if reason is None else None
        if version is not None and held.get(version[0], -1) > version[1] and version not in kept:
            reason = "modified: older than the version already held (replay)"
        if reason is None:
            good.append(obj)
        else:
            _reject(node, report, obj, reason)
    _store_page(node, report, good, last, defer=True)


def _prefetch(pages: Iterator[Page]) -> Iterator[Page]:
    """Fetch the next page on a thread while the caller works on the current one.

    If the caller stops early (an error while storing), the fetching thread is told to stop too
    and is not left blocked on a full queue.
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
            item = box.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(30)


def _held(node: Node, objects: list[Any]) -> dict[str, int]:
    """The latest version this node holds of each object of a page."""
    ids = list({o["id"] for o in objects if isinstance(o, dict) and isinstance(o.get("id"), str)})
    rows = node.db.fetch_in("SELECT id, version FROM latest_objects WHERE id IN", ids)
    return {oid: int(version) for oid, version in rows}


def _held_and_kept(node: Node, objects: list[Any]) -> tuple[dict[str, int], set[tuple[str, int]]]:
    """The latest version held of each object of a page (:func:`_held`), and which of the
    page's versions older than that this node holds already, as (id, version µs).

    Those are no replays (a pull ``--from-start`` brings them all again): ingest counts each
    unchanged, or replaces it if its originator changed it."""
    held = _held(node, objects)
    older = set()
    for obj in objects:
        try:
            if held.get(obj["id"], -1) > version_micros(obj):
                older.add(obj["id"])
        except (KeyError, TypeError, ValueError):
            continue  # not a valid version: the checks reject it
    if not older:
        return held, set()
    rows = node.db.fetch_in("SELECT id, version FROM objects WHERE id IN", sorted(older))
    return held, {(str(oid), int(version)) for oid, version in rows}


def _replay_check(node: Node, objects: list[Any]) -> dict[str, int]:
    """What the page's checks take as held (they reject older versions as replays): the
    latest versions held, less the ids of which the page brings versions held already
    (:func:`_finish_page` decides on those, knowing which)."""
    held, kept = _held_and_kept(node, objects)
    if kept:
        mentioned = {oid for oid, _ in kept}
        held = {oid: v for oid, v in held.items() if oid not in mentioned}
    return held


def _reject(node: Node, report: SyncReport, obj: Any, reason: str) -> None:
    oid = obj.get("id") if isinstance(obj, dict) else None
    report.rejected += 1
    report.rejections.append(f"{oid}: {reason}")
    audit.record(
        node.db,
        f"sync-{report.partner}",
        "sync_rejected",
        str(oid or ""),
        {"partner": report.partner, "reason": reason},
    )
    log.warning("rejected %s from %s: %s", oid, report.partner, reason)


def _store_page(
    node: Node,
    report: SyncReport,
    good: list[Any],
    last: str | None,
    *,
    defer: bool = False,
    done: list[deferred.Key] | None = None,
) -> None:
    """Store a page's accepted versions and advance the cursor to *last* (if not None) in the
    same transaction.

    With *defer*, a version later than a revoked one held here is kept aside
    (:mod:`tansiq.federation.deferred`, in that same transaction) rather than rejected: the
    originator refuses such a version (revocation is permanent), so it stored it after deleting
    the revoked one, and the deletion comes in the withdrawal feed, read after the pages.
    :func:`_store_deferred` offers them again once the feed is applied (*done*: the kept
    versions this call stores or rejects, forgotten in its transaction), and only what is
    refused then is rejected.

    A version this node holds with other content (same id and ``modified``) from the same
    originator is that originator's replacement (it deleted the version and stored it again:
    its own store never holds two): the held copy goes first, then the page is stored.  The
    originator's tombstone is no help there, since it no longer names the partners the version
    is released to again (:func:`tansiq.store.deletions.forget`).  A crash between the two
    leaves the cursor before the page, so it is pulled again."""
    replaced: set[tuple[str, int]] = set()
    aside: list[Any] = []
    while True:

        def commit(result: IngestResult) -> None:
            if last is not None:
                _set_cursor(node, report.partner, SHARED_COLLECTION, last)
            deferred.keep(node.db, report.partner, aside)
            if done:
                deferred.drop(node.db, report.partner, done)
            detail = {**result.as_dict(), "added_last": last}
            if aside:
                detail["deferred"] = len(aside)
            audit.record_in(
                node.db, f"sync-{report.partner}", "sync_received", report.partner, detail
            )

        try:
            result = ingest(node.db, good, before_commit=commit, validated=True)
        except IngestError as exc:  # e.g. a foreign version: reject those
            bad = set()
            renew = []
            for e in exc.errors:
                obj = good[e.index]
                key = (obj["id"], version_micros(obj))
                if e.reason == CONFLICT and key not in replaced:
                    renew.append(key)  # stored again
                    replaced.add(key)
                elif defer and e.reason.endswith(AFTER_REVOKED):
                    aside.append(obj)  # after the deletion feed (see above)
                    bad.add(e.index)
                else:
                    bad.add(e.index)
                    _reject(node, report, obj, f"{e.property}: {e.reason}")
            _replace(node, report, renew)
            good = [o for i, o in enumerate(good) if i not in bad]
            continue
        report.stored += result.stored
        report.unchanged += result.unchanged
        return


def _store_deferred(node: Node, report: SyncReport) -> None:
    """Offer again the versions kept aside from the partner (by this pull, or by one that
    ended before doing this), the withdrawal feed applied: stored now, or rejected."""
    kept = deferred.kept(node.db, report.partner)
    if kept:
        done = [(o["id"], version_micros(o)) for o in kept]
        _store_page(node, report, kept, None, done=done)


def _replace(node: Node, report: SyncReport, versions: list[tuple[str, int]]) -> None:
    """Delete the held copies of the sender's *versions* (id, version µs) it stored anew."""
    if not versions:
        return
    entries: list[audit.Entry] = []
    with node.db.write():
        for oid, version in versions:
            if deletions.remove(node.db, oid, report.partner, version):
                detail = {"partner": report.partner, "version": from_micros(version)}
                why = "stored again by its originator, changed"
                entries.append(
                    (f"sync-{report.partner}", "object_deleted", oid, {**detail, "reason": why})
                )
        audit.record_many_in(node.db, entries)  # last: see _withdrawals


FeedItem = tuple[str, str, int | None, int]  # id, reason, version µs or None, after


def _feed_item(item: Any) -> FeedItem:
    """(id, reason, version or None, after) of one withdrawal-feed item; SyncError if
    malformed."""
    try:
        oid, version = item["id"], item.get("version")
        after = int(item["after"])
        if not isinstance(oid, str) or not (version is None or type(version) is int):
            raise TypeError
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SyncError(f"the peer sent a malformed withdrawal item: {item!r:.200}") from None
    return oid, str(item.get("reason", "withdrawn")), version, after


def _withdrawals(node: Node, report: SyncReport, http: httpx.Client) -> None:
    """Apply the peer's withdrawal feed from its cursor, which moves in the same transactions.

    Each page's transaction deletes first and appends its audit entries last, in one statement: the
    audit log's lock (which logins and every token request take) is held only from there to the
    commit, not over the deletions (:mod:`tansiq.store.database`)."""
    after = _cursor(node, report.partner, WITHDRAWALS) or "0"
    while True:
        r = _get(http, "/api/sync/withdrawals", {"after": after, "limit": 1000})
        try:
            body = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            raise SyncError(f"{http.base_url}'s withdrawal feed is not JSON") from None
        items = body.get("withdrawals") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise SyncError(f"{http.base_url}'s withdrawal feed has no 'withdrawals' list")
        if not items:
            return
        parsed = [_feed_item(item) for item in items]
        if parsed[-1][3] <= int(after):
            raise SyncError(f"{http.base_url}'s withdrawal feed does not advance past {after}")
        after = _apply_feed(node, report, parsed)
        if not body.get("more"):
            return


def _apply_feed(node: Node, report: SyncReport, items: list[FeedItem]) -> str:
    """Apply *items* and move the feed cursor past them, in one transaction; the new cursor."""
    actor = f"sync-{report.partner}"
    entries: list[audit.Entry] = []
    with node.db.write():
        for oid, reason, version, _ in items:
            deletions.remove(node.db, oid, report.partner, version)
            deferred.remove(node.db, report.partner, oid, version)
            detail: dict[str, Any] = {"partner": report.partner}
            if version is not None:
                detail["version"] = from_micros(version)
            action = "object_deleted" if reason == "deleted" else "object_withdrawn"
            entries.append((actor, action, oid, detail))
        after = str(items[-1][3])
        _set_cursor(node, report.partner, WITHDRAWALS, after)
        audit.record_many_in(node.db, entries)  # last: see above
    deleted = sum(1 for item in items if item[1] == "deleted")
    report.deleted += deleted
    report.withdrawn += len(items) - deleted
    return after


def sync_all(
    node: Node,
    progress: Callable[[SyncReport], None] | None = None,
    page_size: int = 1000,
) -> list[SyncReport]:
    """Pull from every enrolled partner; a failing partner does not stop the others.

    A partner whose pull failed gets a report with its ``error``, for the caller to show (the
    CLI prints it, the scheduler logs it): logged here only at debug, or it would be said twice.
    An unexpected error (neither the peer's nor the store's) is logged with its traceback."""
    reports = []
    for p in list_partners(node.db):
        if p.suspended:
            reports.append(SyncReport(p.code, skipped=suspended(p)))
            continue
        try:
            if peer_token(node, p.code) is None:
                continue
            reports.append(sync_partner(node, p.code, progress=progress, page_size=page_size))
        except Exception as exc:  # whatever one partner does, the others go on
            if isinstance(exc, SyncError | StoreError):
                log.debug("sync from %s failed: %s", p.code, exc)
            else:
                log.exception("sync from %s failed", p.code)
            reports.append(SyncReport(p.code, error=str(exc)))
    return reports


def suspended(partner: Partner) -> str:
    """What a suspended *partner* is told as: "suspended" and the operator's reason, if any."""
    why = f" ({partner.suspended_reason})" if partner.suspended_reason else ""
    return f"the partnership is suspended since {from_micros(partner.suspended)}{why}"


PULL_LOCK_KEY = 7263
WAITING = "another pull on this database is running (the scheduler's?): waiting for it to end"


def lock_path(node: Node, name: str) -> Path:
    """SQLite: the file whose ``flock`` stands for lock *name* of the node's database (beside
    the database file, which several data directories may share through ``sqlite:///``)."""
    assert node.db.path is not None
    return Path(f"{node.db.path}.{name}.lock")


@contextlib.contextmanager
def pull_lock(node: Node) -> Iterator[None]:
    """Hold the database's pull lock (waiting for it): an exclusive ``flock`` on SQLite, a
    session advisory lock on a connection of its own on PostgreSQL."""
    db = node.db
    if db.dialect.is_sqlite:
        with lock_path(node, "pull").open("w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                log.warning(WAITING)
                fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            yield
        return
    with contextlib.closing(connect_postgresql(db.url)) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (PULL_LOCK_KEY,)).fetchone()
        if not (row and row[0]):
            log.warning(WAITING)
            conn.execute("SELECT pg_advisory_lock(%s)", (PULL_LOCK_KEY,))
        yield  # the lock goes with the session


class Scheduler:
    """Pulls from every partner every ``sync_interval_seconds``; one per database.

    Several server processes may share a database: only the one holding the scheduler lock (a
    PostgreSQL advisory lock, re-checked every round; or an exclusive lock on a file beside the
    SQLite database) pulls.
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
        row = self._lock_conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (self.LOCK_KEY,)
        ).fetchone()
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
                    for report in sync_all(self.node):
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
