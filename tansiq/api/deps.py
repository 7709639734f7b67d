"""Request dependencies: the node and the authenticated principal.

A request authenticates with ``Authorization: Bearer TOKEN`` or with the session cookie
(``tansiq_session_<code>``, e.g. ``tansiq_session_eg``; ``__Host-tansiq_session_eg`` over
https, see :func:`node_cookie`) set by ``POST /login``; the header wins
when both are present.  A cookie is sent by the browser on its own, so every state-changing
request (not GET/HEAD/OPTIONS) authenticated by it must also carry the session's CSRF token: the
``X-CSRF-Token`` header, or a ``csrf`` field of an ``application/x-www-form-urlencoded`` body.
Bearer requests need no CSRF token.

Token scopes: :func:`principal` (the REST API) needs a token with the ``api`` scope;
:func:`scoped_principal` builds the dependency for another scope.  A session holds every scope
its role may hold.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request

from tansiq import audit
from tansiq.accounts import ratelimit
from tansiq.accounts.principal import ANONYMOUS, Principal
from tansiq.accounts.sessions import session_account
from tansiq.accounts.store import (
    ROLE_SCOPES,
    PartnerSuspended,
    account_for_token,
    token_grant,
    token_id,
)
from tansiq.api.problems import Problem
from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.store.database import Database

SESSION_COOKIE = "tansiq_session"  # + "_" + the node's code: see session_cookie
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
FORM = "application/x-www-form-urlencoded"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FAILED = "CSRF token missing or wrong"
BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Auth:
    """How the request authenticated: ``via`` is "token", "session" or "none"."""

    principal: Principal
    via: str
    scopes: frozenset[str]
    csrf: str | None = None  # the session's CSRF token
    stale_session: bool = False  # a session cookie came but is unknown or expired
    expires: int | None = None  # the token's expiry (µs): a token it creates expires no later


NO_AUTH = Auth(ANONYMOUS, "none", frozenset())


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def cookie_secure(request: Request) -> bool:
    """Are this request's cookies ``Secure``: always, except for plain http to a loopback host
    (``127.0.0.1``, ``::1``, ``localhost``), so a node tried out on one machine works without
    a certificate."""
    host = (request.url.hostname or "").lower()
    loopback = host in LOOPBACK_HOSTS or host.endswith(".localhost")
    return not (request.url.scheme == "http" and loopback)


def node_cookie(request: Request, prefix: str) -> str:
    """*prefix* + ``_`` + the node's code in lower case, e.g. ``tansiq_session_eg``, and
    ``__Host-`` before it when the cookie is ``Secure`` (:func:`cookie_secure`).

    Browsers keep cookies per host, not per port: nodes on one host (the demo's three on
    127.0.0.1) would otherwise overwrite and log out each other's sessions.  ``__Host-``: a
    browser takes such a cookie only from this very host over https, with ``Path=/`` and no
    ``Domain``; without it, a neighbouring host of the domain (or anyone answering for this
    host on plain http) could plant a login CSRF cookie or a session of its choosing, which
    this node would take for its own."""
    name = f"{prefix}_{node_of(request).code.lower()}"
    return f"__Host-{name}" if cookie_secure(request) else name


def session_cookie(request: Request) -> str:
    return node_cookie(request, SESSION_COOKIE)


def settings_of(request: Request) -> Settings:
    """The settings the app was built with (``node.settings`` unless overridden)."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings if settings is not None else node_of(request).settings


# These two dependencies only read attributes, so they are coroutines: FastAPI runs a plain
# function dependency in its thread pool, and each such hop cost ~5% of a paged TAXII GET.
async def get_node(request: Request) -> Node:
    return node_of(request)


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


def authenticate(request: Request) -> Auth:
    """Resolve the bearer token or session cookie (no CSRF check here); cached per request."""
    cached: Auth | None = getattr(request.state, "auth", None)
    if cached is not None:
        return cached
    auth = _resolve(request)
    request.state.auth = auth
    return auth


def client_address(request: Request) -> str:
    """The TCP peer's address as the server sees it (a proxy's, behind one)."""
    return request.client.host if request.client else "unknown"


def _audit_refusal(
    request: Request, db: Database, key: str, actor: str, action: str, target: str, **detail: str
) -> None:
    """Audit a refused request, up to ``audit_rejected_tokens`` of kind *key* per login window
    (see :func:`~tansiq.accounts.ratelimit.within_audit_quota`)."""
    s = settings_of(request)
    if ratelimit.within_audit_quota(db, key, s.audit_rejected_tokens, s.login_window_seconds):
        where = {"method": request.method, "path": request.url.path}
        detail = {**detail, **where, "address": client_address(request)}
        audit.record(db, actor, action, target, detail)


def rejected(request: Request, db: Database, token: str) -> None:
    """Audit a rejected bearer token (``token_rejected``), boundedly."""
    _audit_refusal(request, db, ratelimit.REJECTED_TOKENS, "-", "token_rejected", token_id(token))


def refused(request: Request, db: Database, exc: PartnerSuspended, via: str) -> None:
    """Audit a suspended partner's account refused (``access_refused``), boundedly, counted
    apart from rejected tokens."""
    _audit_refusal(
        request,
        db,
        ratelimit.REFUSED_ACCOUNTS,
        exc.username,
        "access_refused",
        exc.username,
        partner=exc.partner,
        via=via,
    )


def _resolve(request: Request) -> Auth:
    db = node_of(request).db
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "use 'Authorization: Bearer TOKEN'", BEARER)
        try:
            account = account_for_token(db, token)
        except PartnerSuspended as exc:
            refused(request, db, exc, "token")
            raise
        grant = token_grant(db, token) if account is not None else None
        if account is None or grant is None:
            rejected(request, db, token)
            raise Problem(401, "the token is unknown, expired or revoked", BEARER)
        audit.record(
            db,
            account.username,
            "token_used",
            token_id(token),
            {"method": request.method, "path": request.url.path},
        )
        return Auth(account.principal(node_of(request).code), "token", grant[0], expires=grant[1])
    cookie = request.cookies.get(session_cookie(request))
    if cookie:
        try:
            found = session_account(db, cookie, settings_of(request).session_idle_minutes)
        except PartnerSuspended as exc:  # (suspending ends its sessions: only in a race)
            refused(request, db, exc, "session")
            raise
        if found is None:
            return Auth(ANONYMOUS, "none", frozenset(), stale_session=True)
        account, csrf = found
        return Auth(
            account.principal(node_of(request).code),
            "session",
            ROLE_SCOPES.get(account.role, frozenset()),
            csrf,
        )
    return NO_AUTH


async def submitted_csrf(request: Request) -> str:
    """The CSRF token the request carries: header first, then an urlencoded form field."""
    value = request.headers.get(CSRF_HEADER)
    if value:
        return value
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == FORM:
        body = await request.body()  # cached: the route can still read it
        fields = parse_form(body, max_fields=100)
        return fields.get(CSRF_FIELD, [""])[0]
    return ""


def parse_form(body: bytes, max_fields: int, keep_blank: bool = False) -> dict[str, list[str]]:
    """An urlencoded form's fields; 400 (not parse_qs's ValueError, a 500) over *max_fields*."""
    try:
        return parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=keep_blank, max_num_fields=max_fields
        )
    except ValueError:
        raise Problem(400, f"the form has more than {max_fields} fields") from None


def csrf_matches(expected: str | None, given: str) -> bool:
    return (
        bool(expected)
        and bool(given)
        and hmac.compare_digest(str(expected).encode(), given.encode())
    )


async def check_csrf(request: Request, auth: Auth) -> None:
    """403 unless a cookie-authenticated unsafe request carries the session's CSRF token."""
    if auth.via != "session" or request.method in SAFE_METHODS:
        return
    if not csrf_matches(auth.csrf, await submitted_csrf(request)):
        raise Problem(403, CSRF_FAILED)


async def current_auth(request: Request, auth: Annotated[Auth, Depends(authenticate)]) -> Auth:
    """The request's authentication, CSRF-checked."""
    await check_csrf(request, auth)
    return auth


async def optional_principal(auth: Annotated[Auth, Depends(current_auth)]) -> Principal:
    return auth.principal


def _require(auth: Auth, scope: str) -> Principal:
    if auth.principal.is_anonymous:
        if auth.stale_session:
            raise Problem(401, "the session has expired or ended: log in again at /login", BEARER)
        raise Problem(
            401,
            "authentication required: send 'Authorization: Bearer TOKEN' or log in at /login",
            BEARER,
        )
    if scope not in auth.scopes:
        raise Problem(403, f"this token lacks the {scope!r} scope")
    return auth.principal


async def principal(auth: Annotated[Auth, Depends(current_auth)]) -> Principal:
    """An authenticated principal allowed to use the REST API (scope ``api``)."""
    return _require(auth, "api")


def scoped_principal(scope: str) -> Callable[[Auth], Awaitable[Principal]]:
    """A dependency like :func:`principal` for another scope, e.g. ``sync``."""

    async def dependency(auth: Annotated[Auth, Depends(current_auth)]) -> Principal:
        return _require(auth, scope)

    return dependency
