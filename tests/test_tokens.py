"""API tokens at the command line and over REST: what an admin is told, what is recorded."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_accounts import PASSWORD, cli

from tansiq import audit
from tansiq.accounts.store import (
    create_account,
    create_token,
    get_account,
    token_hash,
    token_id,
)
from tansiq.node import Node
from tansiq.settings import Settings


def _revocations(node: Node, tid: str) -> int:
    entries = audit.page(node.db, None, 1000)
    return sum(1 for e in entries if e["action"] == "token_revoked" and e["detail"]["id"] == tid)


def test_revoking_a_revoked_token_changes_and_records_nothing(
    settings: Settings, node: Node, client: TestClient
) -> None:
    """The second revocation says the token was revoked already (exit 0: what was asked
    holds), and the audit log keeps one revocation, not two."""
    run = cli(settings)
    token = create_token(node.db, "admin", "ci")
    tid = token_id(token)
    code, out, _ = run("token", "revoke", tid)
    assert code == 0 and out.startswith(f"revoked token {tid}")
    code, out, err = run("token", "revoke", tid)
    assert code == 0, err
    assert f"token {tid} of 'admin' was revoked already; nothing changed" in out
    assert _revocations(node, tid) == 1

    other = token_id(create_token(node.db, "admin", "ui"))
    for _ in range(2):  # DELETE is idempotent: the token as it stands, recorded once
        r = client.delete(f"/api/tokens/{other}")
        assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert _revocations(node, other) == 1


def test_token_days_out_of_range_is_a_usage_error(settings: Settings) -> None:
    run = cli(settings)
    for days in ("0", "-5", "3651"):
        code, out, err = run("token", "create", "admin", "--days", days)
        assert code == 2 and "--days" in err and "1<=x<=3650" in err, (days, err)
        assert "tsq_" not in out
    code, out, _ = run("token", "create", "admin", "--days", "3650")
    assert code == 0 and out.startswith("tsq_")


def test_no_token_for_a_disabled_account(settings: Settings, node: Node) -> None:
    """It could not be used (POST /api/tokens refuses alike): the admin is told, not handed a
    token that silently fails."""
    run = cli(settings)
    create_account(node.db, "bob", PASSWORD, "reader", "EG")
    assert run("account", "disable", "bob")[0] == 0
    code, out, err = run("token", "create", "bob")
    assert code == 1 and "account 'bob' is disabled" in err and "account enable bob" in err
    assert "tsq_" not in out
    assert node.db.fetchall("SELECT COUNT(*) FROM tokens WHERE username = 'bob'") == [(0,)]


@pytest.mark.parametrize("via", ["cli", "api"])
def test_a_token_made_while_its_account_is_demoted_keeps_no_scope_of_the_old_role(
    settings: Settings, node: Node, client: TestClient, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """`token create` and POST /api/tokens read the account (its role, whether it is
    disabled) under the lock that a role change takes: a demotion committing meanwhile either
    comes first (the 'admin' scope is refused) or after (and revokes the token); never an
    editor's live 'admin' token."""
    import tansiq.api.auth
    from tansiq.accounts import store

    create_account(node.db, "amira", PASSWORD, "admin", "EG")
    real = store.get_account
    demotion: list[threading.Thread] = []

    def slow(db: Any, username: str) -> Any:
        account = real(db, username)
        if not demotion:  # the token's creation: the demotion starts meanwhile
            demote = threading.Thread(target=store.set_role, args=(node.db, "amira", "editor"))
            demotion.append(demote)
            demote.start()
            time.sleep(0.5)  # it commits now, unless the creation holds the lock
        return account

    monkeypatch.setattr(store, "get_account", slow)
    monkeypatch.setattr(tansiq.api.auth, "get_account", slow)
    if via == "cli":
        code, out, err = cli(settings)("token", "create", "amira", "--scopes", "api admin")
        made, refusal = (out.strip() if code == 0 else None), err
    else:
        r = client.post("/api/tokens", json={"username": "amira", "scopes": "api admin"})
        made, refusal = (r.json()["token"] if r.status_code == 201 else None), r.text
    demotion[0].join(30)
    monkeypatch.undo()
    amira = get_account(node.db, "amira")
    assert amira is not None and amira.role == "editor"
    if made is not None:
        assert store.token_grant(node.db, made) is None, "an editor's live admin token"
    else:
        assert "may not hold scope 'admin'" in refusal


def test_token_list_shows_a_stored_label_s_control_characters_escaped(
    settings: Settings, node: Node
) -> None:
    """A label stored before labels were checked (POST /api/tokens took any text) reached
    ``tansiq token list`` as is: a line break in it forged a row, an escape sequence drove the
    admin's terminal."""
    token = create_token(node.db, "admin", "ci")
    forged = "ci\n0123456789abcdef  admin  live\x1b[8m"
    node.db.execute("UPDATE tokens SET label = ? WHERE token_hash = ?", (forged, token_hash(token)))
    code, out, err = cli(settings)("token", "list")
    assert code == 0, err
    assert "\x1b" not in out and not out.splitlines()[-1].startswith("0123456789abcdef"), out
    assert (
        f"{token_id(token)}  admin" in out and "ci\\n0123456789abcdef  admin  live\\x1b[8m" in out
    )
