"""The tokens this node uses to read its partners' nodes, encrypted at rest.

A token lets whoever holds it read everything the partner releases to this node, so the database
(a PostgreSQL server, its dumps and backups) never holds one in clear: each is sealed with
Fernet (AES-128-CBC + HMAC-SHA256) under a key derived by HKDF from this node's Ed25519 private
key, which lives only in the data directory (mode 0600) beside the other node secrets.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tansiq.stix.timestamps import now_micros

if TYPE_CHECKING:
    from tansiq.node import Node

SEALED = "fernet:"  # prefix of a sealed token; rows without it predate encryption


class CredentialError(RuntimeError):
    """A stored token cannot be opened (e.g. the data directory's key is not this database's)."""


def _fernet(node: Node) -> Fernet:
    secret = node.private_key().private_bytes_raw()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tansiq peer tokens v1")
    return Fernet(base64.urlsafe_b64encode(key.derive(secret)))


def seal(node: Node, token: str, fernet: Fernet | None = None) -> str:
    return SEALED + (fernet or _fernet(node)).encrypt(token.encode()).decode()


def save(node: Node, partner: str, token: str) -> None:
    """Keep *token* for reading *partner*'s node (inside the caller's write transaction)."""
    node.db.execute(
        "INSERT INTO peer_credentials (partner, token, created) VALUES (?, ?, ?)",
        (partner, seal(node, token), now_micros()),
    )


def load(node: Node, partner: str) -> str | None:
    """The token for reading *partner*'s node, or None when there is none."""
    row = node.db.fetchone("SELECT token FROM peer_credentials WHERE partner = ?", (partner,))
    if row is None:
        return None
    stored = str(row[0])
    if not stored.startswith(SEALED):
        return stored  # not sealed yet: :func:`seal_legacy` does it when the node opens
    try:
        return _fernet(node).decrypt(stored[len(SEALED) :].encode()).decode()
    except InvalidToken:
        raise CredentialError(
            f"the stored token for {partner} does not open with this data directory's key: is "
            f"{node.data_dir} the directory this database was created with?"
        ) from None


def seal_legacy(node: Node) -> int:
    """Seal tokens stored in clear by earlier versions; how many were."""
    rows = node.db.fetchall(
        "SELECT partner, token FROM peer_credentials WHERE token NOT LIKE ?", (SEALED + "%",)
    )
    if not rows:
        return 0
    fernet = _fernet(node)  # reads the key file once for all rows
    with node.db.write():
        for partner, token in rows:
            node.db.execute(
                "UPDATE peer_credentials SET token = ? WHERE partner = ? AND token = ?",
                (seal(node, str(token), fernet), partner, token),
            )
    return len(rows)
