"""Never a 500 for bad input, on either engine (PostgreSQL refuses what SQLite takes)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tansiq.accounts.store import create_account, create_token
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import add_partner

PROBLEM = "application/problem+json"
TAXII = "application/taxii+json;version=2.1"


def sync_headers(node: Node) -> dict[str, str]:
    """The bearer header of partner DZ's sync account."""
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    create_account(node.db, "sync-dz", "sync-password-1", "sync", "DZ", allow_reserved=True)
    return {"Authorization": "Bearer " + create_token(node.db, "sync-dz", "t", "api sync")}


def test_withdrawals_after_beyond_64_bits_is_an_empty_page(client: TestClient, node: Node) -> None:
    # As GET /api/audit's 'after': nothing can come after it (SQLite could not even bind it).
    headers = sync_headers(node)
    for after in (2**63 - 1, 2**63, 10**40):
        r = client.get("/api/sync/withdrawals", params={"after": after}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"withdrawals": [], "more": False}
