"""API tokens at the command line and over REST: what an admin is told, what is recorded."""

from __future__ import annotations

from fastapi.testclient import TestClient
from test_accounts import cli

from tansiq import audit
from tansiq.accounts.store import create_token, token_id
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
