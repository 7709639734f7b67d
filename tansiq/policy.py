"""Who may see what: the one decision every read path asks.

Two forms of one rule, tested to agree: :func:`may_see` (one object, one principal) and
:func:`condition` (an SQL fragment placed inside list queries, before ``LIMIT``, so pages and
counts never include hidden objects).

The rule, for a principal of partner P on the node of partner N:

* anonymous principals see nothing;
* a version is visible only if P is among the partners it is released to (the ``partners`` of
  the tansiq distribution extension) and P is also among the partners of the object's *latest*
  version — narrowing the distribution in a new version withdraws every version from P;
* a peer's sync account sees only what node N itself originated (each node publishes its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tansiq.accounts.principal import Principal
from tansiq.stix.extensions import distribution_of
from tansiq.store.query import Condition

NOTHING: Condition = ("1 = 0", ())


def condition(principal: Principal, node_code: str, *, all_versions: bool = False) -> Condition:
    """SQL over ``objects`` columns selecting exactly what *principal* may see on this node.

    With ``all_versions`` the fragment also checks the latest version (for queries over every
    stored version rather than the ``latest_objects`` view).
    """
    if principal.partner is None:
        return NOTHING
    like = f"%,{principal.partner},%"
    sql = "partners LIKE ?"
    params: list[Any] = [like]
    if principal.is_sync:
        sql += " AND origin = ?"
        params.append(node_code)
    if all_versions:
        sql += (
            " AND EXISTS (SELECT 1 FROM objects cur WHERE cur.id = objects.id"
            " AND cur.is_latest = 1 AND cur.partners LIKE ?)"
        )
        params.append(like)
    return sql, tuple(params)


def may_see(
    principal: Principal,
    node_code: str,
    obj: dict[str, Any],
    latest: dict[str, Any] | None = None,
) -> bool:
    """The same rule for one stored version *obj*; *latest* is the object's latest version."""
    if principal.partner is None:
        return False
    for version in (obj, obj if latest is None else latest):
        dist = distribution_of(version)
        if dist is None:
            return False
        partners = dist.get("partners")
        if not isinstance(partners, list) or principal.partner not in partners:
            return False
    if principal.is_sync:
        dist = distribution_of(obj)
        return dist is not None and dist.get("origin") == node_code
    return True


def withdrawn_condition(principal: Principal, node_code: str) -> Condition:
    """SQL over ``withdrawals w``: this node's objects withdrawn from the principal's partner by
    a version that became latest without it (what a peer must delete), while no later version
    released it to that partner again.  Only ids and the withdrawing version's ``added`` are
    served: later versions hidden from the partner change nothing it can see."""
    if principal.partner is None or not principal.is_sync:
        return NOTHING
    like = f"%,{principal.partner},%"
    return (
        "w.origin = ? AND w.partners LIKE ?"
        " AND EXISTS (SELECT 1 FROM latest_objects cur"
        " WHERE cur.id = w.id AND cur.partners NOT LIKE ?)"
        " AND NOT EXISTS (SELECT 1 FROM withdrawals later"
        " WHERE later.id = w.id AND later.partners LIKE ? AND later.added > w.added)",
        (node_code, like, like, like),
    )


def shown_to(
    added: int,
    released: Iterable[str],
    latest: Iterable[str],
    withdrawals: Iterable[tuple[int, Iterable[str]]],
) -> list[str]:
    """The partners a stored version (stored at *added*, released to *released*) of this node's
    object has been visible to, so whose nodes may hold it: those the object's latest version is
    released to as well (*latest*), or was until a withdrawal (``(since, partners)`` of the
    object's *withdrawals*, *since* the first ``added`` of the write that recorded it) by a
    later write than the version's.  A version stored after a newer one that excludes a
    partner, or by the very write that withdrew the object from it (a bundle holding both),
    was never visible to it: its tombstone must not name the object."""
    now = set(latest)
    events = [(when, set(codes)) for when, codes in withdrawals]
    return sorted(
        p
        for p in set(released)
        if p in now or any(when > added and p in codes for when, codes in events)
    )


def deleted_condition(principal: Principal, node_code: str) -> Condition:
    """SQL over ``deletions``: tombstones of this node's objects released to the principal's
    partner (what a peer must delete).  Only ids and versions are served."""
    if principal.partner is None or not principal.is_sync:
        return NOTHING
    return "origin = ? AND partners LIKE ?", (node_code, f"%,{principal.partner},%")
