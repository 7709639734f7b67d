"""The SQL behind the TAXII 2.1 server: collections, filtered pages, delete, status resources.

Every query takes the caller's :class:`Visibility` (two forms of the one rule in
:mod:`tansiq.policy`) and places it inside the ``WHERE`` clause, before ``LIMIT``.  Pages are
ordered by the unique ``added`` column (date_added in µs) and continue after the last ``added``
of the previous page, so paging never loses or repeats a row.

``match[version]`` only ``last`` (the default) on the ``shared`` collection reads the
``latest_objects`` view; everything else reads every stored version through the all-versions
form of the rule.  ``first`` and ``last`` are the first and last version *the principal may see*
in the collection: a per-scope collection holds the versions that carry exactly its scope, so
there they are the first and last of those (TAXII 2.1 3.4.1: the latest version of each object
"matching the remainder of the request").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from tansiq.stix.timestamps import DAY_US, now_micros
from tansiq.store import deletions
from tansiq.store.database import Database
from tansiq.store.query import Condition
from tansiq.store.rows import partner_codes

VERSION_TS = "(CASE WHEN created IS NULL AND modified IS NULL THEN added ELSE version END)"
"""An object's version in µs: ``modified`` (else ``created``); date_added for objects with
neither (SCOs), as TAXII manifests report them."""


class NotVisible(LookupError):
    """Nothing matching is visible to the principal in this collection."""


class NotOriginator(PermissionError):
    """A version to delete was originated by another partner's node."""


class WouldReshare(PermissionError):
    """Deleting the latest version would make current an earlier version released to other
    partners: ``wider`` would see the object again after a narrowing withdrew it, ``narrower``
    would lose it without their nodes being told (they hold copies).  Publishing a new version
    with the wanted distribution does it properly (withdrawals reach the dropped partners)."""

    def __init__(self, wider: list[str], narrower: list[str]) -> None:
        super().__init__(wider, narrower)
        self.wider = wider
        self.narrower = narrower


@dataclass(frozen=True)
class Visibility:
    """The policy as SQL: ``one`` judges a single row (as over ``latest_objects``), ``versions``
    also requires the object's latest version to be visible (for queries over ``objects``)."""

    one: Condition
    versions: Condition


@dataclass(frozen=True)
class VersionMatch:
    """``match[version]``: any of ``first``, ``last``, ``all`` and timestamps (µs)."""

    every: bool = False
    first: bool = False
    last: bool = True
    at: tuple[int, ...] = ()

    @property
    def only_last(self) -> bool:
        return self.last and not (self.every or self.first or self.at)


ALL_VERSIONS = VersionMatch(every=True, last=False)


@dataclass(frozen=True)
class Match:
    """The filters of one TAXII request."""

    ids: Sequence[str] = ()
    types: Sequence[str] = ()
    spec_versions: Sequence[str] = ()
    version: VersionMatch = field(default_factory=VersionMatch)
    added_after: int | None = None


class Row(NamedTuple):  # a tuple: a page builds a thousand of them
    added: int
    id: str
    version: int  # see VERSION_TS
    spec_version: str
    stamp: str | None  # the version as the object writes it: its modified (else created)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    more: bool

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def first_added(self) -> int | None:
        return self.rows[0].added if self.rows else None

    @property
    def last_added(self) -> int | None:
        return self.rows[-1].added if self.rows else None


@dataclass(frozen=True)
class ObjectsPage:
    """A page of stored JSON texts only, for the objects endpoints: no per-row tuple is built
    and only two columns are read (a :class:`Page`'s rows cost ~25% of a 1000-object GET)."""

    objects: list[bytes]
    first_added: int | None
    last_added: int | None
    more: bool

    @property
    def count(self) -> int:
        return len(self.objects)


def _where(
    vis: Visibility, scope: str | None, match: Match, object_id: str | None
) -> tuple[str, list[str], list[Any]]:
    """``(table, clauses, params)`` selecting what *match* asks for and the principal may see."""
    clauses: list[str] = []
    params: list[Any] = []
    if match.version.only_last and scope is None:
        table = "latest_objects"
        clauses.append(f"({vis.one[0]})")
        params.extend(vis.one[1])
    else:
        table = "objects"
        clauses.append(f"({vis.versions[0]})")
        params.extend(vis.versions[1])
        v = match.version
        if not v.every:
            alternatives: list[str] = []
            if v.last and scope is None:
                alternatives.append("is_latest = 1")
            # Unqualified columns in the condition name o2's: the first or last version it may
            # see (in this scope's collection).
            in_scope, scope_params = (
                ("", []) if scope is None else (" AND o2.partners = ?", [scope])
            )
            for wanted, extreme in ((v.last and scope is not None, "MAX"), (v.first, "MIN")):
                if wanted:
                    alternatives.append(
                        f"version = (SELECT {extreme}(o2.version) FROM objects o2"
                        f" WHERE o2.id = objects.id AND ({vis.one[0]}){in_scope})"
                    )
                    params.extend([*vis.one[1], *scope_params])
            if v.at:
                alternatives.append(f"{VERSION_TS} IN ({','.join('?' * len(v.at))})")
                params.extend(v.at)
            clauses.append("(" + " OR ".join(alternatives) + ")")
    if scope is not None:
        clauses.append("partners = ?")
        params.append(scope)
    if object_id is not None:
        clauses.append("id = ?")
        params.append(object_id)
    for column, values in (("id", match.ids), ("type", match.types)):
        if values:
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if match.spec_versions:
        marks = ",".join("?" * len(match.spec_versions))
        clauses.append(f"COALESCE(spec_version, '2.1') IN ({marks})")
        params.extend(match.spec_versions)
    if match.added_after is not None:
        clauses.append("added > ?")
        params.append(match.added_after)
    return table, clauses, params


def _keyset_page(
    db: Database,
    columns: str,
    vis: Visibility,
    scope: str | None,
    match: Match,
    limit: int,
    object_id: str | None,
) -> tuple[list[Any], bool]:
    """Up to *limit* rows of *columns* in ``added`` order, and whether more follow."""
    table, clauses, params = _where(vis, scope, match, object_id)
    rows = db.fetchall(
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(clauses)} ORDER BY added LIMIT ?",
        [*params, limit + 1],
    )
    more = len(rows) > limit
    if more:
        del rows[limit:]
    return rows, more


def page(
    db: Database,
    vis: Visibility,
    scope: str | None,
    match: Match,
    *,
    limit: int,
    object_id: str | None = None,
) -> Page:
    """One page in ``added`` order, without the JSON (manifests, versions); ``scope`` None is
    the whole visible set ("shared")."""
    d = db.dialect
    stamp = f"COALESCE({d.json_text('json', 'modified')}, {d.json_text('json', 'created')})"
    columns = f"added, id, {VERSION_TS}, COALESCE(spec_version, '2.1'), {stamp}"
    rows, more = _keyset_page(db, columns, vis, scope, match, limit, object_id)
    # Both drivers return Row's types (int, str): rows are taken as they come.
    return Page(list(map(Row._make, rows)), more)


def objects_page(
    db: Database,
    vis: Visibility,
    scope: str | None,
    match: Match,
    *,
    limit: int,
    object_id: str | None = None,
) -> ObjectsPage:
    """Like :func:`page`, the stored JSON of each row only, as UTF-8 bytes: the envelope is
    joined without a decode/encode round trip per object."""
    columns = f"added, {db.dialect.json_bytes('json')}"
    rows, more = _keyset_page(db, columns, vis, scope, match, limit, object_id)
    if not rows:
        return ObjectsPage([], None, None, more)
    return ObjectsPage([r[1] for r in rows], rows[0][0], rows[-1][0], more)


def object_visible(db: Database, vis: Visibility, scope: str | None, object_id: str) -> bool:
    """Does the collection hold any version of *object_id* the principal may see?"""
    _, clauses, params = _where(vis, scope, Match(version=ALL_VERSIONS), object_id)
    row = db.fetchone(f"SELECT 1 FROM objects WHERE {' AND '.join(clauses)} LIMIT 1", params)
    return row is not None


def scopes(db: Database, vis: Visibility) -> list[str]:
    """The distinct ``partners`` values of the latest versions the principal may see."""
    rows = db.fetchall(
        f"SELECT DISTINCT {db.dialect.bytewise('partners')} FROM latest_objects"
        f" WHERE ({vis.one[0]}) ORDER BY 1",
        list(vis.one[1]),
    )
    return [str(r[0]) for r in rows if r[0]]


def scope_visible(db: Database, vis: Visibility, scope: str) -> bool:
    row = db.fetchone(
        f"SELECT 1 FROM latest_objects WHERE partners = ? AND ({vis.one[0]}) LIMIT 1",
        [scope, *vis.one[1]],
    )
    return row is not None


def delete(
    db: Database,
    vis: Visibility,
    scope: str | None,
    object_id: str,
    match: Match,
    own_code: str,
    before_commit: Callable[[int], None] | None = None,
) -> int:
    """Delete the matching visible versions of *object_id*, all or none; return how many.

    Raises :class:`NotVisible` when none match, :class:`NotOriginator` when one of them was
    originated elsewhere and :class:`WouldReshare` when the version that would become current is
    released to other partners than the current one.  The latest remaining version becomes
    ``is_latest``.  Versions partners may hold leave tombstones for their nodes
    (:mod:`tansiq.store.deletions`).
    """
    with db.write() as last_added:
        table, clauses, params = _where(vis, scope, match, object_id)
        rows = db.fetchall(
            f"SELECT added, origin FROM {table} WHERE {' AND '.join(clauses)}", params
        )
        if not rows:
            raise NotVisible(object_id)
        foreign = sorted({str(r[1]) for r in rows if r[1] != own_code})
        if foreign:
            raise NotOriginator(", ".join(foreign) or "unknown")
        doomed = {int(r[0]) for r in rows}
        versions = db.fetchall(
            "SELECT added, version, is_latest, partners FROM objects WHERE id = ?"
            " ORDER BY version",  # tombstones oldest first: a peer never re-crowns one it drops
            (object_id,),
        )
        _refuse_resharing(versions, doomed)
        gone = [(int(v[0]), int(v[1]), str(v[3])) for v in versions if int(v[0]) in doomed]
        deletions.record(db, last_added, object_id, own_code, gone)
        db.executemany("DELETE FROM objects WHERE added = ?", [(a,) for a in doomed])
        deletions.relatest(db, object_id)
        if before_commit is not None:
            before_commit(len(rows))
        return len(rows)


def _refuse_resharing(versions: list[Any], doomed: set[int]) -> None:
    current = next((v for v in versions if v[2]), None)
    remaining = [v for v in versions if int(v[0]) not in doomed]
    if current is None or int(current[0]) not in doomed or not remaining:
        return
    successor = max(remaining, key=lambda v: int(v[1]))
    before = set(partner_codes(current[3]))
    after = set(partner_codes(successor[3]))
    if before != after:
        raise WouldReshare(sorted(after - before), sorted(before - after))


# -- status resources ------------------------------------------------------------------------


def save_status(db: Database, username: str, status: dict[str, Any], keep_days: int) -> None:
    """Store a status resource; delete those whose request is more than *keep_days* old."""
    details = {k: status[k] for k in ("successes", "failures", "pendings") if k in status}
    db.execute(
        "DELETE FROM taxii_status WHERE request_timestamp < ?",
        (now_micros() - keep_days * DAY_US,),
    )
    db.execute(
        "INSERT INTO taxii_status (id, username, status, request_timestamp, total_count,"
        " success_count, failure_count, pending_count, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            status["id"],
            username,
            status["status"],
            status["request_micros"],
            status["total_count"],
            status["success_count"],
            status["failure_count"],
            status["pending_count"],
            orjson.dumps(details).decode(),
        ),
    )


def load_status(
    db: Database, status_id: str, username: str, keep_days: int
) -> dict[str, Any] | None:
    """The status resource *username* created, or None (also for another user's, and for one
    older than *keep_days*, deleted or not yet)."""
    row = db.fetchone(
        "SELECT id, status, request_timestamp, total_count, success_count, failure_count,"
        " pending_count, details FROM taxii_status"
        " WHERE id = ? AND username = ? AND request_timestamp >= ?",
        (status_id, username, now_micros() - keep_days * DAY_US),
    )
    if row is None:
        return None
    out: dict[str, Any] = {
        "id": row[0],
        "status": row[1],
        "request_micros": int(row[2]),
        "total_count": int(row[3]),
        "success_count": int(row[4]),
        "failure_count": int(row[5]),
        "pending_count": int(row[6]),
    }
    out.update(orjson.loads(row[7]))
    return out
