"""Enrolment: what two nodes exchange to federate, as a file or a paste-able string.

``tansiq partner invite DZ`` on node EG creates (or reuses) DZ's sync account on EG and prints an
invitation: EG's code, name, identity, URL, Ed25519 public key and the sync token DZ's node will
use to read EG; the tokens of DZ's earlier invitations are revoked.  ``tansiq partner add
--enrolment FILE-OR-STRING`` on DZ registers EG from it.  Each side invites the other.  The
invitation holds a secret: move it out of band (a file with mode 0600, or a paste), never
through an unauthenticated channel.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization

from tansiq import audit
from tansiq.accounts.store import (
    create_account,
    create_token,
    get_account,
    list_tokens,
    new_password,
    revoke_token,
)
from tansiq.federation import credentials
from tansiq.node import Node
from tansiq.ports import listen_url
from tansiq.sharing import PARTNER_CODE, Partner, add_partner, list_partners, update_partner

PREFIX = "tansiq-enrol:"


class EnrolmentError(ValueError):
    """An invitation that cannot be used."""


@dataclass(frozen=True)
class Invitation:
    code: str
    name: str
    identity_id: str
    url: str
    public_key: str
    token: str

    def encode(self) -> str:
        raw = orjson.dumps(self.__dict__)
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Invitation:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise EnrolmentError(f"not a tansiq invitation (it must start with {PREFIX!r})")
        body = text[len(PREFIX) :]
        try:
            data: dict[str, Any] = orjson.loads(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            )
            return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise EnrolmentError(
                f"damaged invitation ({exc}): it was cut short or changed on its way here; give"
                " the whole of what `tansiq partner invite` wrote on the partner's node, or ask"
                " for a new one"
            ) from None


def node_url(node: Node) -> str:
    """The URL partners reach this node at: public_url, else where it listens; refused for a
    server listening on every address (0.0.0.0, ::), which is no address to reach."""
    s = node.settings
    if s.public_url:
        return str(s.public_url).rstrip("/")
    try:
        everywhere = ipaddress.ip_address(s.host.strip("[]")).is_unspecified
    except ValueError:  # a host name
        everywhere = False
    if everywhere:
        raise EnrolmentError(
            f"this node listens on every address (host {s.host}), which partners cannot"
            " connect to: give the URL they reach it at, --public-url (or public_url in"
            " DATA_DIR/tansiq.toml); nothing handed out"
        )
    return listen_url(s.host, s.port, bool(s.certfile))


def sync_username(code: str) -> str:
    return f"sync-{code.lower()}"


def invitation_label(code: str) -> str:
    """The label of the sync-account tokens that invitations of partner *code* hand out."""
    return f"sync token for {code}"


def invite(node: Node, partner_code: str, days: int = 365) -> Invitation:
    """An invitation for *partner_code*'s node to read this one (its sync account's token).

    The live tokens earlier invitations of *partner_code* handed out are revoked (each audited
    as ``token_revoked``): only the newest invitation reads, so a leaked older one stops."""
    partner_code = partner_code.upper()
    if not PARTNER_CODE.match(partner_code):
        raise EnrolmentError(f"partner code {partner_code!r}: use 2–8 capital letters")
    if partner_code == node.code:
        raise EnrolmentError("a node does not invite itself")
    url = node_url(node)  # (before anything changes: each may refuse)
    pem = node.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    user = sync_username(partner_code)
    with node.db.bookkeeping():  # the account, its token and the audit entry commit together
        existing = get_account(node.db, user)
        if existing is None:
            secret = new_password() + new_password()
            create_account(node.db, user, secret, "sync", partner_code, allow_reserved=True)
        elif existing.role != "sync" or existing.partner != partner_code:
            # Its token would read as that account (another partner's reader, or staff), not
            # as partner_code's node: refuse rather than hand it out.
            raise EnrolmentError(
                f"account {user!r} exists as a {existing.role} of {existing.partner}, not as"
                f" {partner_code}'s sync account (that name is kept for it): nothing handed out"
            )
        label = invitation_label(partner_code)
        replaced = [
            t for t in list_tokens(node.db, user) if t.label == label and t.state() == "live"
        ]
        for old in replaced:  # a leaked earlier invitation must not keep reading
            revoke_token(node.db, old.hash, user)
            audit.record_in(
                node.db, "cli", "token_revoked", user, {"id": old.id, "reason": "re-invited"}
            )
        token = create_token(node.db, user, label, "api sync", days)
        audit.record_in(
            node.db,
            "cli",
            "partner_invited",
            partner_code,
            {"account": user, "revoked": [t.id for t in replaced]},
        )
    return Invitation(node.code, node.name, node.identity_id, url, pem.decode(), token)


def accept(node: Node, invitation: Invitation) -> Partner:
    """Register the inviting partner with its key and URL, and keep its token for pulling."""
    if invitation.code == node.code:
        raise EnrolmentError("this invitation is from this node itself")
    with node.db.write():
        partner = add_partner(
            node.db,
            invitation.code,
            invitation.name,
            invitation.identity_id,
            invitation.public_key,
            invitation.url,
        )
        credentials.save(node, invitation.code, invitation.token)
        audit.record_in(
            node.db,
            "cli",
            "partner_added",
            invitation.code,
            {"name": invitation.name, "url": invitation.url, "enrolment": True},
        )
    return partner


def renew(node: Node, invitation: Invitation) -> Partner:
    """Take a new invitation from a registered partner: its key, URL and token replace the
    ones held (a key or token the partner replaced, a node that moved).  The identity must be
    the one registered: another identity is another agency."""
    known = next((p for p in list_partners(node.db) if p.code == invitation.code), None)
    if known is None:
        raise EnrolmentError(f"no partner {invitation.code} yet: use `tansiq partner add`")
    if known.identity_id != invitation.identity_id:
        raise EnrolmentError(
            f"the invitation names identity {invitation.identity_id}, but {known.code} is"
            f" registered as {known.identity_id}: nothing changed"
        )
    with node.db.write():
        partner = update_partner(
            node.db,
            invitation.code,
            name=invitation.name,
            public_key=invitation.public_key,
            base_url=invitation.url,
        )
        node.db.execute("DELETE FROM peer_credentials WHERE partner = ?", (invitation.code,))
        credentials.save(node, invitation.code, invitation.token)
        audit.record_in(
            node.db,
            "cli",
            "partner_changed",
            invitation.code,
            {
                "name": invitation.name,
                "url": invitation.url,
                "key_changed": known.public_key != invitation.public_key,
                "enrolment": True,
            },
        )
    return partner
