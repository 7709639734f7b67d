"""What a user sees is the same on SQLite and on PostgreSQL: lists of names come in one order
(by code point, as SQLite gives them) whatever the PostgreSQL cluster's locale, and durations
stay within the store's 64-bit times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from test_store import indicator

from tansiq.accounts import ratelimit
from tansiq.accounts.principal import Principal
from tansiq.accounts.sessions import session_account, start_session
from tansiq.accounts.store import enabled_admins, list_accounts
from tansiq.api.taxii import collections_of
from tansiq.api.taxii_http import Client
from tansiq.node import Node
from tansiq.settings import SETTINGS, SettingsError
from tansiq.sharing import add_group, add_partner, list_groups, list_partners
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import now_micros
from tansiq.store import taxii_query as tq
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


DURATIONS = ("taxii_status_days", "session_minutes", "login_window_seconds")


def test_durations_at_their_longest_work_alike_and_longer_ones_are_refused(
    node: Node, tmp_path: Path
) -> None:
    """A cut-off "now less the duration" below the 64-bit range of the store's times: SQLite
    refused to bind it (a 500 for every TAXII POST with ``taxii_status_days = 999999999``,
    "keep for ever"), PostgreSQL compared it as a numeric and went on.  Such durations are
    refused when the settings load; the longest allowed works on both engines."""
    longest = {s.name: s.maximum for s in SETTINGS if s.name in DURATIONS}
    assert all(longest.values()), longest
    for name, most in longest.items():
        with pytest.raises(SettingsError, match=f"{name}.*above the maximum"):
            make_settings(tmp_path, **{name: int(most or 0) + 1})
    with pytest.raises(SettingsError, match="taxii_status_days"):
        make_settings(tmp_path, taxii_status_days=999_999_999)
    days, minutes, seconds = (int(longest[n] or 0) for n in DURATIONS)
    status = {
        "id": "status--1",
        "status": "complete",
        "request_micros": now_micros(),
        "total_count": 0,
        "success_count": 0,
        "failure_count": 0,
        "pending_count": 0,
    }
    tq.save_status(node.db, "admin", status, days)
    assert tq.load_status(node.db, "status--1", "admin", days) is not None
    opened = start_session(node.db, "admin", minutes, idle_minutes=30)
    assert opened is not None
    found = session_account(node.db, opened[0], idle_minutes=30)
    assert found is not None and found[0].username == "admin"
    ratelimit.attempt(node.db, "admin", "192.0.2.1", 5, seconds)
    ratelimit.check(node.db, "admin", "192.0.2.1", 5, seconds)
    assert ratelimit.within_audit_quota(node.db, ratelimit.REJECTED_TOKENS, 100, seconds)
