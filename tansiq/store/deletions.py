"""Removing stored versions, and the tombstones that tell partners' nodes to remove theirs.

When the originator deletes versions of an object it released to partners, their nodes hold
copies that pull sync would never touch again.  Each deleted version therefore leaves a
tombstone in ``deletions``: the id, the version, and the partners that version was released
to.  A version that becomes latest without some partners the previous latest was released to
withdraws the object from them: ``withdrawals`` records that event at the new version's
``added``.  Tombstones take their ``added`` from the node clock, so the withdrawal feed
(:mod:`tansiq.api.sync`) serves them in one order with withdrawals, after one cursor; a
partner's node applies them with :func:`remove`, the same code the originator's delete runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tansiq.policy import shown_to
from tansiq.stix.timestamps import now_micros
from tansiq.store.database import Database
from tansiq.store.query import MAX_ADDED, Condition
from tansiq.store.rows import partner_codes, partners_column

Version = tuple[int, int, str]
"""(added, version µs, partners column ``,DZ,EG,``) of one stored version"""


def remove(db: Database, object_id: str, origin: str, version: int | None = None) -> int:
    """Delete *object_id*'s versions originated by *origin* (one version, or all of them); the
    latest remaining version becomes ``is_latest``.  Returns how many rows went.  Call inside a
    write transaction.
    """
    sql = "DELETE FROM objects WHERE id = ? AND origin = ?"
    params: list[Any] = [object_id, origin]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    count = int(db.execute(sql, params).rowcount or 0)
    if count and version is not None:
        relatest(db, object_id)
    return count


def relatest(db: Database, object_id: str) -> None:
    """Mark the highest remaining version of *object_id* as the latest (no-op if none)."""
    top = db.fetchone("SELECT MAX(version) FROM objects WHERE id = ?", (object_id,))
    if top is not None and top[0] is not None:
        db.execute(
            "UPDATE objects SET is_latest = CASE WHEN version = ? THEN 1 ELSE 0 END WHERE id = ?",
            (int(top[0]), object_id),
        )


def record(
    db: Database, last_added: int, object_id: str, origin: str, doomed: Sequence[Version]
) -> int:
    """Write the tombstones for deleting *doomed* (inside the same write, before the rows go);
    return the clock.

    One tombstone per version, released to the partners that version was released to and was
    ever visible to (:func:`tansiq.policy.shown_to`), less the originator; versions released to
    no one else leave none.
    """
    top = db.fetchone("SELECT partners FROM objects WHERE id = ? AND is_latest = 1", (object_id,))
    latest = partner_codes(top[0]) if top is not None else []
    withdrawals = [
        (int(r[0]), partner_codes(r[1]))
        for r in db.fetchall(
            "SELECT since, partners FROM withdrawals WHERE id = ? AND origin = ?",
            (object_id, origin),
        )
    ]
    clock = max(last_added + 1, now_micros())
    rows = []
    for added, version, codes in doomed:
        shown = shown_to(added, partner_codes(codes), latest, withdrawals)
        partners = sorted(set(shown) - {origin})
        if partners:
            rows.append((clock, object_id, version, origin, partners_column(partners)))
            clock += 1
    if not rows:
        return last_added
    db.executemany(
        "INSERT INTO deletions (added, id, version, origin, partners) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    db.set_clock(clock - 1)
    return clock - 1


def record_withdrawals(
    db: Database, since: int, replaced: Sequence[tuple[int, tuple[int, str, str, str]]]
) -> None:
    """Record the partners each new latest version drops: *replaced* holds (``added`` of the
    stored version that stopped being latest, and the ``added``, id, origin and ``partners`` of
    the version that replaces it).  Call inside the write that stores the versions, whose first
    ``added`` is *since*: what it stores was never visible to the partners it withdraws."""
    olds = [old for old, _ in replaced]
    rows = db.fetch_in("SELECT added, partners FROM objects WHERE added IN", olds)
    found = {int(r[0]): str(r[1]) for r in rows}
    events = []
    for old, (added, oid, origin, partners) in replaced:
        dropped = set(partner_codes(found.get(old, ""))) - set(partner_codes(partners))
        if dropped:
            events.append((added, since, oid, origin, partners_column(sorted(dropped))))
    if events:
        db.executemany(
            "INSERT INTO withdrawals (added, since, id, origin, partners) VALUES (?, ?, ?, ?, ?)",
            events,
        )


def any_recorded(db: Database) -> bool:
    return db.fetchone("SELECT 1 FROM deletions LIMIT 1") is not None


def forget(db: Database, versions: Sequence[tuple[str, int, str]]) -> None:
    """Narrow the tombstones of (id, version, partners column)s stored again: a version deleted
    and then stored anew must not be deleted on the nodes of the partners it is released to
    now by the earlier deletion's tombstone.  (A node that applied the tombstone already gets
    the version again: it has a new date_added.)  Partners it is no longer released to keep the
    tombstone: their copies must still go."""
    now = {(oid, version): set(partner_codes(released)) for oid, version, released in versions}
    ids = list({oid for oid, _ in now})
    for added, oid, version, partners in db.fetch_in(
        "SELECT added, id, version, partners FROM deletions WHERE id IN", ids
    ):
        released = now.get((str(oid), int(version)))
        if released is not None:
            left = [p for p in partner_codes(partners) if p not in released]
            if left:
                db.execute(
                    "UPDATE deletions SET partners = ? WHERE added = ?",
                    (partners_column(left), added),
                )
            else:
                db.execute("DELETE FROM deletions WHERE added = ?", (added,))


def feed(
    db: Database, withdrawn: Condition, deleted: Condition, after: int, limit: int
) -> list[tuple[str, str, int | None, int]]:
    """(kind, id, version, added) of withdrawals and deletions after *after*, in clock order;
    *kind* is ``withdrawn`` (version None: every version goes) or ``deleted``.

    *withdrawn* and *deleted* are the policy's conditions (over ``withdrawals w`` and
    ``deletions``) for the reading partner; at most *limit* rows.
    """
    if after >= MAX_ADDED:
        return []  # (nothing comes after it; the database could not even bind it)
    rows = db.fetchall(
        "SELECT 'withdrawn', w.id, NULL, w.added FROM withdrawals w"
        f" WHERE ({withdrawn[0]}) AND w.added > ?"
        " UNION ALL SELECT 'deleted', id, version, added FROM deletions"
        f" WHERE ({deleted[0]}) AND added > ? ORDER BY 4 LIMIT ?",
        [*withdrawn[1], after, *deleted[1], after, limit],
    )
    return [(str(r[0]), str(r[1]), None if r[2] is None else int(r[2]), int(r[3])) for r in rows]
