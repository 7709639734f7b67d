"""What a user sees is the same on SQLite and on PostgreSQL, whatever the PostgreSQL cluster's
locale: lists of names come in one order (by code point), as SQLite gives them."""

from __future__ import annotations

from typing import Any

from test_store import indicator

from tansiq.accounts.principal import Principal
from tansiq.accounts.store import enabled_admins, list_accounts
from tansiq.api.taxii import collections_of
from tansiq.api.taxii_http import Client
from tansiq.node import Node
from tansiq.sharing import add_group, add_partner, list_groups, list_partners
from tansiq.stix.extensions import set_distribution
from tansiq.store.ingest import ingest

# Text columns users see lists of, by table (PostgreSQL's objects.partners sits under a view).
LISTED = {
    "accounts": ["username"],
    "sharing_groups": ["name"],
    "group_members": ["group_name", "partner"],
    "partners": ["code"],
    "objects": ["partners"],
}


def english(node: Node) -> None:
    """PostgreSQL: give the listed columns the collation they get in a database made with an
    English locale (glibc's en_US.UTF-8: case and punctuation count last), as on many servers;
    the test database's is C.  (ICU's ``en-u-ka-shifted`` orders as glibc's does.)"""
    db = node.db
    if db.dialect.is_sqlite:
        return
    db.execute("CREATE COLLATION english (provider = icu, locale = 'en-u-ka-shifted')")
    db.execute("DROP VIEW latest_objects")
    for table, columns in LISTED.items():
        alter = ", ".join(f"ALTER COLUMN {c} TYPE TEXT COLLATE english" for c in columns)
        db.execute(f"ALTER TABLE {table} {alter}")
    db.execute("CREATE VIEW latest_objects AS SELECT * FROM objects WHERE is_latest = 1")


def _accounts(node: Node, names: list[str], role: str = "reader") -> None:
    for name in names:
        node.db.execute(
            "INSERT INTO accounts (username, password_hash, role, partner, created)"
            " VALUES (?, 'x', ?, 'EG', 0)",
            (name, role),
        )


def test_accounts_are_listed_by_code_point(node: Node) -> None:
    english(node)
    _accounts(node, ["alice", "Bob", "a.c", "ab", "_x", "Éa", "zed"])
    _accounts(node, ["root", "Ops"], role="admin")
    names = [a.username for a in list_accounts(node.db)]
    assert names == sorted(names)
    assert names[:2] == ["Bob", "Ops"]
    admins = enabled_admins(node.db)
    assert admins == sorted(admins) == ["Ops", "admin", "root"]


def test_groups_and_partners_are_listed_by_code_point(node: Node) -> None:
    english(node)
    for code in ("DZA", "DZ", "TN"):
        add_partner(node.db, code, code, f"identity--{code.lower()}")
    for name in ("north_3", "north.1", "northa", "north-2"):
        add_group(node.db, name, ["DZA", "DZ"], "EG")
    assert list(list_groups(node.db)) == ["north-2", "north.1", "north_3", "northa"]
    assert all(members == ["DZ", "DZA"] for members in list_groups(node.db).values())
    assert [p.code for p in list_partners(node.db)] == ["DZ", "DZA", "TN"]


def test_taxii_collections_come_in_one_order(node: Node) -> None:
    """A collection per distribution: ``,DZ,EG,`` sorts before ``,DZA,EG,`` as bytes; with
    punctuation ignored (``DZEG``, ``DZAEG``) PostgreSQL listed them the other way round."""
    english(node)
    objects: list[dict[str, Any]] = [
        set_distribution(indicator(1), "EG", ["DZA", "EG"]),
        set_distribution(indicator(2), "EG", ["DZ", "EG"]),
        set_distribution(indicator(3), "EG", ["EG", "TN"]),
    ]
    ingest(node.db, objects, prepare=lambda o: o)

    admin = Client(Principal("admin", "admin", "EG"), "basic", False)
    found = [c.scope for c in collections_of(node, admin)]
    assert found[1:] == sorted(found[1:])
    assert {",DZ,EG,", ",DZA,EG,", ",EG,TN,"} <= set(found)
