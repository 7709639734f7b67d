"""Web sessions that ended (past ``session_minutes``, or unused for ``session_idle_minutes``)
leave the sessions table; live ones stay."""

from __future__ import annotations

import pytest
from test_auth import PASSWORD, login, web

from tansiq.accounts import sessions
from tansiq.accounts.store import create_account
from tansiq.node import Node
from tansiq.stix.timestamps import MINUTE_US, now_micros


def _sessions(node: Node) -> list[str]:
    return [r[0] for r in node.db.fetchall("SELECT username FROM sessions ORDER BY username")]


def test_a_login_purges_the_sessions_that_ended(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each login deletes every session that can no longer be used, idle ones too (before,
    only those past their lifetime went, and an idle one stayed for up to session_minutes):
    the table holds no more than the sessions that ended since the last login."""
    for name in ("idris", "lina", "maha"):
        create_account(node.db, name, PASSWORD, "reader", "EG")
    clock = [now_micros()]
    monkeypatch.setattr(sessions, "now_micros", lambda: clock[0])
    overrides = {"session_idle_minutes": 30, "session_minutes": 60}
    with web(node, **overrides) as i, web(node, **overrides) as li, web(node, **overrides) as m:
        assert login(i, "idris", PASSWORD).status_code == 200
        clock[0] += 20 * MINUTE_US
        assert login(li, "lina", PASSWORD).status_code == 200
        clock[0] += 15 * MINUTE_US  # idris' session is idle for 35 minutes, lina's for 15
        assert _sessions(node) == ["idris", "lina"]
        assert login(m, "maha", PASSWORD).status_code == 200
        assert _sessions(node) == ["lina", "maha"]

        for _ in range(2):  # maha's session, in use, outlives lina's idle one ...
            clock[0] += 29 * MINUTE_US
            assert m.get("/api/session").json()["username"] == "maha"
        clock[0] += 2 * MINUTE_US  # ... until session_minutes after the login
        assert m.get("/api/session").status_code == 401
        assert login(i, "idris", PASSWORD).status_code == 200
        assert _sessions(node) == ["idris"]
