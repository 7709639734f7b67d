"""What a pull writes: the versions of each page and its cursor, the versions kept aside until
the withdrawal feed, the feed's deletions; each with its audit entries, in one transaction.

:func:`tansiq.federation.sync.sync_partner` drives it; this module never talks to the peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from tansiq import audit
from tansiq.federation import deferred
from tansiq.federation.peer import SHARED_COLLECTION, FeedItem, SyncError
from tansiq.federation.signing import BAD_SIGNATURE
from tansiq.node import Node
from tansiq.stix.timestamps import from_micros, now_micros, version_micros
from tansiq.store import deletions
from tansiq.store.ingest import (
    AFTER_REVOKED,
    CONFLICT,
    REVOKED_NOT_LAST,
    IngestError,
    IngestResult,
    ingest,
    same_json,
)

log = logging.getLogger("tansiq.sync")
rejections_log = logging.getLogger("tansiq.sync.rejected")
"""Each rejected version, at warning: what a server's operator sees of it.  ``tansiq sync``
lists rejections itself (the first few, the rest counted) and mutes this logger."""
WITHDRAWALS = "withdrawals"  # the feed's cursor (SHARED_COLLECTION: the pages')
KEPT, LINE = 100, 500
"""A report lists the first KEPT rejections, each cut at LINE characters (``rejected`` counts
them all, the audit log has each): a peer sending rejected versions without end, with ids of
a megabyte, must not grow a pull's memory page after page."""


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
    rejections: list[str] = field(default_factory=list)  # the first KEPT, each cut at LINE
    refused: int = 0  # versions of a page refused whole: none verifies under the enrolled key
    error: str = ""  # why the pull itself failed (:func:`sync_all`); "" when it ran
    skipped: str = ""  # why it was not pulled at all (:func:`sync_all`: suspended); "" when it ran
    # The audit entries of the rejections (:func:`reject`) of the page being stored, written in
    # its transaction (:func:`store_page`): a page that fails is pulled again, rejections and all.
    unrecorded: list[audit.Entry] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.partner}: skipped: {self.skipped}"
        return (
            f"{self.partner}: {self.received} received, {self.stored} stored, "
            f"{self.unchanged} unchanged, {self.rejected} rejected, {self.withdrawn} withdrawn, "
            f"{self.deleted} deleted"
        )


def cursor(node: Node, partner: str, collection: str) -> str | None:
    row = node.db.fetchone(
        "SELECT added_after FROM sync_cursors WHERE partner = ? AND collection = ?",
        (partner, collection),
    )
    return None if row is None else str(row[0])


def set_cursor(node: Node, partner: str, collection: str, value: str) -> None:
    node.db.execute(
        "INSERT INTO sync_cursors (partner, collection, added_after, updated) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (partner, collection) DO UPDATE"
        " SET added_after = excluded.added_after, updated = excluded.updated",
        (partner, collection, value, now_micros()),
    )


def finish_page(
    node: Node,
    report: SyncReport,
    objects: list[Any],
    last: str,
    checking: Callable[[], list[str | None]],
) -> None:
    """Store the versions of a page that passed *checking* (:mod:`tansiq.federation.verify`)
    and advance the cursor to *last*.

    A version older than the latest held here (and not held itself) is a replay, or the
    originator's: it deleted the later versions (the feed, read after the pages, deletes them
    here) and stored an earlier one, revoked perhaps.  It is kept aside
    (:func:`store_page`) and judged once the feed is applied (:func:`store_deferred`).

    A page none of whose versions verifies under the partner's enrolled key is refused whole
    (:func:`_refuse_key`): the cursor stays before it.  A version held here exactly as sent
    is no rejection, whatever its signature (:func:`_held_as_sent`)."""
    reasons = _held_as_sent(node, objects, checking())
    if reasons and all(r is not None and r.endswith(BAD_SIGNATURE) for r in reasons):
        _refuse_key(node, report, len(reasons))
    held, kept = _held_and_kept(node, objects)  # again: the previous page may have brought more
    good, aside = [], []
    for obj, reason in zip(objects, reasons, strict=True):
        if reason is not None:
            reject(node, report, obj, reason)
        elif _older(obj, held, kept):
            aside.append(obj)
        else:
            good.append(obj)
    store_page(node, report, good, last, aside=aside)


def _held_as_sent(node: Node, objects: list[Any], reasons: list[str | None]) -> list[str | None]:
    """*reasons*, but None for each version refused for its signature that this node holds
    exactly as sent (:func:`~tansiq.store.ingest.same_json`): the store counts it unchanged.

    It was verified when stored, under the key enrolled then: after the partner's new key is
    taken (`tansiq partner update`), the versions signed by its old one stay, and pulled again
    (`tansiq sync --from-start`) they were rejected and audited as forged, a page of nothing
    else refusing the pull as if the new key were not taken yet."""
    suspect = [i for i, r in enumerate(reasons) if r is not None and r.endswith(BAD_SIGNATURE)]
    if not suspect:
        return reasons
    ids = sorted({objects[i]["id"] for i in suspect})
    rows = node.db.fetch_in("SELECT id, version, json FROM objects WHERE id IN", ids)
    held = {(str(oid), int(version)): str(text) for oid, version, text in rows}
    out = list(reasons)
    for i in suspect:
        obj = objects[i]
        text = held.get((obj["id"], version_micros(obj)))
        if text is not None and same_json(orjson.loads(text), obj):
            out[i] = None
    return out


def _refuse_key(node: Node, report: SyncReport, count: int) -> NoReturn:
    """Refuse a page of *count* versions none of which verifies under the partner's enrolled
    key: audited once (``sync_refused``), and a :class:`SyncError` saying what to do.

    Rejecting each version instead moved the cursor past them all, for good, and said only
    "N rejected": a partner that changed its key (or was enrolled with a wrong one) lost
    everything it sent until the operator noticed and pulled ``--from-start``."""
    code = report.partner
    report.refused += count
    reason = f"none of the {count} versions on the page verifies under {code}'s enrolled key"
    audit.record(
        node.db, f"sync-{code}", "sync_refused", code, {"reason": reason, "versions": count}
    )
    raise SyncError(
        f"{reason}: if {code}'s node has a new key, take it with `tansiq partner update {code}"
        " --enrolment ...` (a new invitation) or `--public-key FILE`; nothing from this page on"
        " was stored, and the next pull starts there again"
    )


def _older(obj: dict[str, Any], held: dict[str, int], kept: set[tuple[str, int]]) -> bool:
    """Is *obj* older than the latest version held of its id, and not held itself?"""
    key = (obj["id"], version_micros(obj))
    return held.get(key[0], -1) > key[1] and key not in kept


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


def reject(node: Node, report: SyncReport, obj: Any, reason: str) -> None:
    oid = obj.get("id") if isinstance(obj, dict) else None
    report.rejected += 1
    if len(report.rejections) < KEPT:
        report.rejections.append(f"{oid}: {reason}"[:LINE])
    detail = {"partner": report.partner, "reason": reason}
    version = obj.get("modified", obj.get("created")) if isinstance(obj, dict) else None
    if isinstance(version, str):  # which version of the object (its id is the target)
        detail["version"] = version[:64]
    report.unrecorded.append((f"sync-{report.partner}", "sync_rejected", str(oid or ""), detail))
    rejections_log.warning("rejected %.200s from %s: %.500s", oid, report.partner, reason)


def store_page(
    node: Node,
    report: SyncReport,
    good: list[Any],
    last: str | None,
    *,
    aside: list[Any] | None = None,
    done: list[deferred.Key] | None = None,
) -> None:
    """Store a page's accepted versions and advance the cursor to *last* (if not None) in the
    same transaction.

    With *aside* (the first time a page is stored), the versions refused only for what this
    node holds until the withdrawal feed is applied go there, and are kept
    (:mod:`tansiq.federation.deferred`) in that same transaction: those older than the latest
    held (:func:`finish_page`) and those later than a revoked one held here.  The originator
    refuses the latter (revocation is permanent), so it stored it after deleting the revoked
    one, and the deletion comes in the feed.  :func:`store_deferred` offers them again once the
    feed is applied (*done*: the kept versions the call stores or rejects, forgotten in its
    transaction), and only what is refused then is rejected.

    A version this node holds with other content (same id and ``modified``) from the same
    originator is that originator's replacement (it deleted the version and stored it again:
    its own store never holds two): the held copy goes first, then the page is stored.  The
    originator's tombstone is no help there, since it no longer names the partners the version
    is released to again (:func:`tansiq.store.deletions.forget`).  A crash between the two
    leaves the cursor before the page, so it is pulled again.  Likewise, once the feed is
    applied, a revoked version refused because later ones are held goes in after them
    (:func:`_revoke`)."""
    replaced: set[tuple[str, int]] = set()
    defer = aside is not None
    aside = [] if aside is None else list(aside)
    while True:

        def commit(result: IngestResult) -> None:
            if last is not None:
                set_cursor(node, report.partner, SHARED_COLLECTION, last)
            deferred.keep(node.db, report.partner, aside)
            if done:
                deferred.drop(node.db, report.partner, done)
            detail = {**result.as_dict(), "added_last": last}
            if aside:
                detail["deferred"] = len(aside)
            audit.record_many_in(node.db, report.unrecorded)
            audit.record_in(
                node.db, f"sync-{report.partner}", "sync_received", report.partner, detail
            )

        try:
            result = ingest(node.db, good, before_commit=commit, validated=True)
        except IngestError as exc:  # e.g. a foreign version: reject those
            bad = set()
            renew: list[deferred.Key] = []
            revoking: list[deferred.Key] = []
            for e in exc.errors:
                obj = good[e.index]
                key = (obj["id"], version_micros(obj))
                if e.reason == CONFLICT and key not in replaced:
                    renew.append(key)  # stored again
                    replaced.add(key)
                elif defer and (e.reason.endswith(AFTER_REVOKED) or e.reason == REVOKED_NOT_LAST):
                    aside.append(obj)  # after the deletion feed (see above)
                    bad.add(e.index)
                elif e.reason == REVOKED_NOT_LAST and key not in replaced:
                    revoking.append(key)  # the later ones go (see above)
                    replaced.add(key)
                else:
                    bad.add(e.index)
                    reject(node, report, obj, f"{e.property}: {e.reason}")
            _replace(node, report, renew)
            _revoke(node, report, revoking)
            good = [o for i, o in enumerate(good) if i not in bad]
            continue
        report.stored += result.stored
        report.unchanged += result.unchanged
        report.unrecorded.clear()
        return


def store_deferred(
    node: Node, report: SyncReport, checking: Callable[[dict[str, Any]], str | None]
) -> None:
    """Offer again the versions kept aside from the partner (by this pull, or by one that
    ended before doing this), the withdrawal feed applied: stored now, or rejected.

    Each is checked again by *checking* (:func:`tansiq.federation.verify.check` with this
    pull's hook: why to reject it, or None): the partner's key may have changed since it was
    kept (`tansiq partner update`), and what is stored now verifies under the key enrolled now.
    One still older than the latest held is a replay, unless it is revoked: then the
    originator's store holds a version later than a revoked one (written before revocation
    was permanent), and revocation wins here (:func:`_revoke`) whatever order the pages
    brought them in."""
    versions = deferred.kept(node.db, report.partner)
    if not versions:
        return
    held, kept = _held_and_kept(node, versions)
    good = []
    for obj in versions:
        reason = checking(obj)
        if reason is not None:
            reject(node, report, obj, reason)
        elif _older(obj, held, kept) and obj.get("revoked") is not True:
            reject(node, report, obj, "modified: older than the version already held (replay)")
        else:
            good.append(obj)
    done = [(o["id"], version_micros(o)) for o in versions]
    store_page(node, report, good, None, done=done)


def _revoke(node: Node, report: SyncReport, versions: list[tuple[str, int]]) -> None:
    """Delete the held versions later than the sender's revoked *versions* (id, version µs),
    which it holds too: revocation is permanent (STIX 2.1, 3.6), the later ones are void."""
    if not versions:
        return
    actor = f"sync-{report.partner}"
    entries: list[audit.Entry] = []
    with node.db.write():
        for oid, version in versions:
            why = f"later than its revoked version {from_micros(version)}: {AFTER_REVOKED}"
            for (later,) in node.db.fetchall(
                "SELECT version FROM objects WHERE id = ? AND origin = ? AND version > ?",
                (oid, report.partner, version),
            ):
                deletions.remove(node.db, oid, report.partner, int(later))
                detail = {"partner": report.partner, "version": from_micros(int(later))}
                entries.append((actor, "object_deleted", oid, {**detail, "reason": why}))
        audit.record_many_in(node.db, entries)  # last: see apply_feed
    report.deleted += len(entries)


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
        audit.record_many_in(node.db, entries)  # last: see apply_feed


def apply_feed(node: Node, report: SyncReport, items: list[FeedItem]) -> str:
    """Apply *items* and move the feed cursor past them, in one transaction; the new cursor.

    Only what an item removes (versions stored from the partner, or kept aside) is counted
    and audited as withdrawn or deleted: an item naming an object not held here from it (one
    withdrawn before this node pulled it) changes nothing, and one naming an object held here
    from another originator, or this node's own, is rejected (audited): a node's feed names
    only objects it originated."""
    actor = f"sync-{report.partner}"
    entries: list[audit.Entry] = []
    withdrawn = deleted = 0
    with node.db.write():
        for oid, reason, version, _ in items:
            gone = deletions.remove(node.db, oid, report.partner, version)
            gone += deferred.remove(node.db, report.partner, oid, version)
            if not gone:
                other = node.db.fetchone(
                    "SELECT origin FROM objects WHERE id = ? AND origin <> ? LIMIT 1",
                    (oid, report.partner),
                )
                if other is not None:
                    why = f"the withdrawal feed names an object of {other[0]}, not {report.partner}"
                    reject(node, report, {"id": oid}, f"id: {why}")
                continue
            detail: dict[str, Any] = {"partner": report.partner}
            if version is not None:
                detail["version"] = from_micros(version)
            if reason == "deleted":
                entries.append((actor, "object_deleted", oid, detail))
                deleted += 1
            else:
                entries.append((actor, "object_withdrawn", oid, detail))
                withdrawn += 1
        after = str(items[-1][3])
        set_cursor(node, report.partner, WITHDRAWALS, after)
        audit.record_many_in(node.db, [*report.unrecorded, *entries])  # last: see above
    report.unrecorded.clear()
    report.deleted += deleted
    report.withdrawn += withdrawn
    return after
