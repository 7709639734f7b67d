"""Versions a pull keeps aside until the peer's withdrawal feed is applied.

A pull reads the peer's pages first, then its withdrawal feed.  Some versions a page brings are
refused only for what this node holds until the feed is applied: a version later than a revoked
one held here (the originator refuses it too, so it deleted the revoked one first, and that
deletion is in the feed).  Such a version is kept here, in ``sync_deferred``, in the same
transaction as the cursor that moves past its page; :func:`tansiq.federation.sync.sync_partner`
offers what is kept again once the feed is applied, and drops each in the transaction that
stores or rejects it.  A crash anywhere in between leaves it here for the next pull: nothing
is lost, and the cursor never brings it twice.  A feed item deletes the kept versions it names
as it deletes stored ones (the originator deleted them after sending them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from tansiq.stix.timestamps import version_micros
from tansiq.store.database import Database

Key = tuple[str, int]  # (id, version µs)


def keep(db: Database, partner: str, objects: Iterable[dict[str, Any]]) -> None:
    """Keep *objects* from *partner* aside (inside the caller's write transaction); a version
    kept already is replaced (the latest copy the peer sent wins)."""
    rows = [(partner, o["id"], version_micros(o), orjson.dumps(o).decode()) for o in objects]
    if rows:
        db.executemany(
            "INSERT INTO sync_deferred (partner, id, version, json) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (partner, id, version) DO UPDATE SET json = excluded.json",
            rows,
        )


def kept(db: Database, partner: str) -> list[dict[str, Any]]:
    """The versions kept aside from *partner*, by id and version."""
    rows = db.fetchall(
        "SELECT json FROM sync_deferred WHERE partner = ? ORDER BY id, version", (partner,)
    )
    return [orjson.loads(r[0]) for r in rows]


def drop(db: Database, partner: str, keys: Iterable[Key]) -> None:
    """Forget the kept versions *keys* (inside the caller's write transaction)."""
    db.executemany(
        "DELETE FROM sync_deferred WHERE partner = ? AND id = ? AND version = ?",
        [(partner, oid, version) for oid, version in keys],
    )


def remove(db: Database, partner: str, object_id: str, version: int | None) -> int:
    """Forget the kept versions of *object_id* (one *version*, or all), as a feed item deletes
    the stored ones; how many went."""
    sql = "DELETE FROM sync_deferred WHERE partner = ? AND id = ?"
    params: list[Any] = [partner, object_id]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    return int(db.execute(sql, params).rowcount or 0)
