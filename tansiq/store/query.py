"""The read side of the store: every query takes the caller's visibility condition.

The condition comes from :mod:`tansiq.policy` as an SQL fragment over the ``objects`` columns and
is placed inside the query, before ``LIMIT``, so pages and counts never include hidden objects.
Stored JSON text is returned as-is: nothing is parsed and re-dumped on the read path.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tansiq.store.database import Database

Condition = tuple[str, Sequence[Any]]


ALL: Condition = ("1 = 1", ())


class BadCursor(ValueError):
    """A paging cursor that this node did not issue."""


MAX_ADDED = 2**63 - 1  # ``added`` is a signed 64-bit integer in both databases


ADDED, VERSION = "a", "v"
"""Cursor kinds: after an ``added`` (lists in date_added order), or after a ``version`` (one
object's versions, oldest first).  A cursor of one kind is refused where the other is due."""


def encode_cursor(value: int, kind: str = ADDED) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str = ADDED) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(kind):
            raise ValueError
        value = int(raw[len(kind) :])
        if not -MAX_ADDED <= value <= MAX_ADDED:  # beyond what the store holds (and can bind)
            raise ValueError
        if kind == ADDED and value < 0:
            raise ValueError
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(f"invalid cursor {cursor!r}") from None


@dataclass(frozen=True)
class ObjectFilter:
    types: Sequence[str] = ()
    ids: Sequence[str] = ()
    created_by: Sequence[str] = ()
    created_from: int | None = None
    created_to: int | None = None
    modified_from: int | None = None
    modified_to: int | None = None
    added_after: int | None = None
    added_before: int | None = None
    include_revoked: bool = True

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("type", self.types),
            ("id", self.ids),
            ("created_by_ref", self.created_by),
        ):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        for sql, value in (
            ("created >= ?", self.created_from),
            ("created <= ?", self.created_to),
            ("modified >= ?", self.modified_from),
            ("modified <= ?", self.modified_to),
            ("added > ?", self.added_after),
            ("added < ?", self.added_before),
        ):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        if not self.include_revoked:
            clauses.append("revoked = 0")
        return clauses, params


@dataclass(frozen=True)
class Page:
    rows: list[tuple[int, str]]  # (added, json text); (version, json text) for VERSION pages
    more: bool
    kind: str = ADDED

    @property
    def texts(self) -> list[str]:
        return [r[1] for r in self.rows]

    @property
    def next_cursor(self) -> str | None:
        return encode_cursor(self.rows[-1][0], self.kind) if self.more and self.rows else None


def list_latest(
    db: Database,
    visible: Condition,
    flt: ObjectFilter,
    *,
    limit: int,
    cursor: str | None = None,
    table: str = "latest_objects",
) -> Page:
    """One page of latest versions (or all versions with ``table="objects"``) in ``added`` order."""
    clauses, params = flt.where()
    if cursor is not None:
        clauses.append("added > ?")
        params.append(decode_cursor(cursor))
    clauses.append(f"({visible[0]})")
    params.extend(visible[1])
    rows = db.fetchall(
        f"SELECT added, json FROM {table} WHERE {' AND '.join(clauses)} ORDER BY added LIMIT ?",
        [*params, limit + 1],
    )
    more = len(rows) > limit
    return Page([(int(r[0]), r[1]) for r in rows[:limit]], more)


def get_versions(
    db: Database, visible: Condition, object_id: str, *, all_versions: bool
) -> list[str]:
    """The visible latest version of *object_id*, or every visible version oldest first."""
    table = "objects" if all_versions else "latest_objects"
    rows = db.fetchall(
        f"SELECT json FROM {table} WHERE id = ? AND ({visible[0]}) ORDER BY version",
        [object_id, *visible[1]],
    )
    return [r[0] for r in rows]


def versions_page(
    db: Database, visible: Condition, object_id: str, *, limit: int, cursor: str | None = None
) -> Page:
    """One page of the visible versions of *object_id*, oldest first, after *cursor* (a
    :data:`VERSION` cursor: ``(id, version)`` is unique, so paging never loses or repeats one).
    *visible* is the all-versions form of the rule."""
    clauses, params = ["id = ?", f"({visible[0]})"], [object_id, *visible[1]]
    if cursor is not None:
        clauses.append("version > ?")
        params.append(decode_cursor(cursor, VERSION))
    rows = db.fetchall(
        f"SELECT version, json FROM objects WHERE {' AND '.join(clauses)} ORDER BY version LIMIT ?",
        [*params, limit + 1],
    )
    more = len(rows) > limit
    return Page([(int(r[0]), r[1]) for r in rows[:limit]], more, VERSION)


def iterate_latest(
    db: Database, visible: Condition, flt: ObjectFilter | None = None
) -> Iterator[str]:
    """Every visible latest version, streamed in ``added`` order."""
    clauses, params = (flt or ObjectFilter()).where()
    clauses.append(f"({visible[0]})")
    params.extend(visible[1])
    for row in db.iterate(
        f"SELECT json FROM latest_objects WHERE {' AND '.join(clauses)} ORDER BY added", params
    ):
        yield row[0]


def count_by_type(db: Database, visible: Condition) -> dict[str, int]:
    rows = db.fetchall(
        f"SELECT type, COUNT(*) FROM latest_objects WHERE {visible[0]} GROUP BY type ORDER BY type",
        list(visible[1]),
    )
    return {r[0]: int(r[1]) for r in rows}


def count_versions(db: Database, visible: Condition) -> int:
    row = db.fetchone(f"SELECT COUNT(*) FROM objects WHERE {visible[0]}", list(visible[1]))
    return int(row[0]) if row else 0
