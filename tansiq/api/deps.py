"""Request dependencies: the node and the authenticated principal."""

from __future__ import annotations

from fastapi import Request

from tansiq.accounts.principal import ANONYMOUS, Principal
from tansiq.accounts.store import account_for_token
from tansiq.api.problems import Problem
from tansiq.node import Node


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def optional_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if not header:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "use 'Authorization: Bearer TOKEN'", {"WWW-Authenticate": "Bearer"})
    account = account_for_token(get_node(request).db, token.strip())
    if account is None:
        raise Problem(
            401, "the token is unknown, expired or revoked", {"WWW-Authenticate": "Bearer"}
        )
    return account.principal()


def principal(request: Request) -> Principal:
    p = optional_principal(request)
    if p.is_anonymous:
        raise Problem(401, "authentication required: send 'Authorization: Bearer TOKEN'",
                      {"WWW-Authenticate": "Bearer"})
    return p
