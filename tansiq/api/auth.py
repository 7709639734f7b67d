"""Logging in and out of the web interface, and managing API tokens.

``GET /login`` renders the form with a CSRF token bound to a short-lived pre-session cookie
(double submit: ``POST /login`` must bring the same value in the form and the cookie, which a
foreign site can neither read nor set).  A successful login sets ``tansiq_session_<code>``.
Both cookies are ``HttpOnly; SameSite=Strict; Path=/`` plus ``Secure`` - always, except for
plain-http requests to a loopback host (``127.0.0.1``, ``::1``, ``localhost``), so a node tried
out on one machine works without a certificate.  A ``Secure`` cookie's name starts with
``__Host-`` (``__Host-tansiq_session_eg``): browsers take it only from this host over https,
so no neighbouring host of the domain, nor anyone answering for this one on plain http, can
plant one (see :func:`tansiq.api.deps.node_cookie`).  Behind a TLS-terminating proxy, uvicorn
takes the scheme from ``X-Forwarded-Proto`` sent by a trusted (loopback) proxy, so the cookies
stay ``Secure``.

Failed logins answer one generic message and are rate-limited per account and per client
address (:mod:`tansiq.accounts.ratelimit`); while locked out the answer is 429 + Retry-After.
The login form is read up to :data:`LOGIN_FORM_BYTES` only (413 beyond).
"""

from __future__ import annotations

import html
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tansiq import audit
from tansiq.accounts import ratelimit
from tansiq.accounts.sessions import end_session, start_session
from tansiq.accounts.store import (
    MAX_TOKEN_DAYS,
    AccountError,
    PartnerSuspended,
    TokenInfo,
    TokenNotFound,
    create_token,
    find_token,
    get_account,
    list_tokens,
    match_login,
    parse_scopes,
    revoke_token,
    typed_username,
)
from tansiq.api.deps import (
    CSRF_FAILED,
    CSRF_FIELD,
    FORM,
    Auth,
    authenticate,
    client_address,
    cookie_secure,
    csrf_matches,
    current_auth,
    get_node,
    node_cookie,
    parse_form,
    principal,
    session_cookie,
    settings_of,
    submitted_csrf,
)
from tansiq.api.problems import Problem, problem_response, retry_after
from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.store.database import StoreUnavailable

router = APIRouter(tags=["authentication"])

LOGIN_CSRF_COOKIE = "tansiq_login_csrf"  # + "_" + the node's code, like the session cookie
LOGIN_CSRF_SECONDS = 3600
LOGIN_FAILED = "invalid username or password"
LOGIN_FORM_BYTES = 16 * 1024  # a username, a password, the CSRF token and next fit many times
AFTER_LOGIN = "/docs"  # the web page of the node (the API docs, where "Try it out" runs)
JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}

NodeDep = Annotated[Node, Depends(get_node)]
AuthDep = Annotated[Auth, Depends(current_auth)]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in — tansiq node {code}</title>
</head><body>
<main class="login">
<h1>tansiq node {code}</h1>
<p dir="auto">{name}</p>
{error}<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<p><label for="username">Username</label><br>
<input id="username" name="username" value="{username}" autocomplete="username" required
 autofocus maxlength="64"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" required>
</p>
<p><button type="submit">Log in</button></p>
</form>
</main>
</body></html>
"""

LOGOUT_STALE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not logged out — tansiq node {code}</title>
</head><body>
<main>
<h1>You are not logged out</h1>
<p role="alert">The page you logged out from was out of date (its CSRF token is not this
session's), so your session was not ended.</p>
<p><a href="{back}">Open the node's page</a> afresh and log out from there.</p>
</main>
</body></html>
"""


# -- cookies ---------------------------------------------------------------------------------
def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set cookie *name* (from :func:`~tansiq.api.deps.node_cookie`) for the whole node."""
    expires = datetime.now(UTC) + timedelta(seconds=max_age)
    parts = [
        f"{name}={value}",
        f"Max-Age={max_age}",
        f"Expires={format_datetime(expires, usegmt=True)}",
        "Path=/",  # (a __Host- cookie must say so)
        "HttpOnly",
        "SameSite=Strict",
    ]
    if cookie_secure(request):
        parts.append("Secure")
    response.headers.append("Set-Cookie", "; ".join(parts))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    set_cookie(response, request, name, "", 0)


# -- login page ------------------------------------------------------------------------------
def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _safe_next(value: str) -> str:
    """Only a local path: no scheme, no host, no ``//`` or ``/\\`` (open-redirect guard)."""
    if value.startswith("/") and not value.startswith(("//", "/\\")) and value.isprintable():
        return value
    return AFTER_LOGIN


def login_cookie(request: Request) -> str:
    return node_cookie(request, LOGIN_CSRF_COOKIE)


def _login_csrf(request: Request) -> str:
    value = request.cookies.get(login_cookie(request), "")
    return value if 20 <= len(value) <= 100 and value.isalnum() else secrets.token_hex(32)


def _page(node: Node, csrf: str, next_path: str, username: str = "", error: str = "") -> str:
    return PAGE.format(
        code=html.escape(node.code),
        name=html.escape(node.name),
        csrf=html.escape(csrf),
        next=html.escape(next_path),
        username=html.escape(username),
        error=f'<p class="error" role="alert">{html.escape(error)}</p>\n' if error else "",
    )


def _login_page(
    request: Request,
    node: Node,
    status: int = 200,
    username: str = "",
    error: str = "",
    next_path: str = AFTER_LOGIN,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    csrf = _login_csrf(request)
    page = _page(node, csrf, next_path, username, error)
    response = HTMLResponse(page, status, headers={**NO_STORE, **(headers or {})})
    set_cookie(response, request, login_cookie(request), csrf, LOGIN_CSRF_SECONDS)
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, node: NodeDep, next: str = AFTER_LOGIN) -> HTMLResponse:
    return _login_page(request, node, next_path=_safe_next(next))


def _fail(
    request: Request,
    node: Node,
    status: int,
    detail: str,
    username: str = "",
    next_path: str = AFTER_LOGIN,
    headers: dict[str, str] | None = None,
) -> Response:
    if _wants_html(request):
        return _login_page(request, node, status, username, detail, next_path, headers)
    return problem_response(status, detail, headers)


async def _form(request: Request) -> dict[str, str]:
    """The login form's fields, read up to :data:`LOGIN_FORM_BYTES` (413 beyond): anyone may
    post it, and a body of ``max_body_bytes`` held and parsed per request is a lot of memory."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise Problem(415, f"send the form as {FORM}")
    too_large = Problem(413, f"a login form is at most {LOGIN_FORM_BYTES} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > LOGIN_FORM_BYTES:
        raise too_large
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > LOGIN_FORM_BYTES:
            raise too_large
    fields = parse_form(body, max_fields=20, keep_blank=True)
    return {k: v[0] for k, v in fields.items()}


@router.post("/login", include_in_schema=False)
async def login(request: Request, node: NodeDep) -> Response:
    form = await _form(request)
    username = typed_username(form.get("username", "").strip())
    next_path = _safe_next(form.get("next", AFTER_LOGIN))
    if not csrf_matches(request.cookies.get(login_cookie(request)), form.get(CSRF_FIELD, "")):
        return _fail(request, node, 403, CSRF_FAILED, username, next_path)
    address = client_address(request)
    s = settings_of(request)
    try:
        username_ok, session, csrf = await run_in_threadpool(
            _check_login, node, s, username, form.get("password", ""), address
        )
    except ratelimit.LockedOut as locked:
        retry = {"Retry-After": str(locked.retry_after)}
        return _fail(request, node, 429, str(locked), username, next_path, retry)
    except PartnerSuspended as exc:  # the right password, of a suspended partner's account
        return _fail(request, node, 403, str(exc), username, next_path)
    except StoreUnavailable as exc:  # SQLite busy past its timeout, or a full store: a page
        return _fail(request, node, 503, str(exc), username, next_path, retry_after(exc))
    if username_ok is None:
        return _fail(request, node, 401, LOGIN_FAILED, username, next_path)
    old = request.cookies.get(session_cookie(request))
    if old:
        await run_in_threadpool(end_session, node.db, old)
    response: Response
    if _wants_html(request):
        response = RedirectResponse(next_path, 303, headers=NO_STORE)
    else:
        body = {"username": username_ok, "csrf": csrf, "expires_in": s.session_minutes * 60}
        response = Response(orjson.dumps(body), media_type=JSON, headers=NO_STORE)
    set_cookie(response, request, session_cookie(request), session, s.session_minutes * 60)
    clear_cookie(response, request, login_cookie(request))
    return response


def _check_login(
    node: Node, s: Settings, username: str, password: str, address: str
) -> tuple[str | None, str, str]:
    """Rate limit, verify, record: ``(username, session, csrf)``; username None on failure."""
    seq = ratelimit.attempt(
        node.db, username, address, s.login_max_failures, s.login_window_seconds
    )
    try:
        matched = match_login(node.db, username, password) if username and password else None
    except PartnerSuspended:  # the attempt's row stays: it is refused
        detail = {"address": address, "reason": "partner suspended"}
        audit.record(node.db, username[:64], "login_failed", username[:64], detail)
        raise
    # Only while the password just checked is still the account's (not changed meanwhile).
    started = None
    if matched is not None:
        started = start_session(
            node.db,
            matched[0].username,
            s.session_minutes,
            matched[1],
            idle_minutes=s.session_idle_minutes,
        )
    if matched is None or started is None:  # the attempt's row stays: it is the failure
        audit.record(
            node.db, username[:64] or "-", "login_failed", username[:64], {"address": address}
        )
        return None, "", ""
    account = matched[0]
    session, csrf = started
    ratelimit.succeeded(node.db, account.username, seq)
    audit.record(node.db, account.username, "login", account.username, {"address": address})
    return account.username, session, csrf


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request, node: NodeDep, auth: Annotated[Auth, Depends(authenticate)]
) -> Response:
    """End the session (needs its CSRF token); without a live session just clear the cookie.

    A wrong CSRF token is 403: a problem, or for a browser (``Accept: text/html``) a page
    saying the session was not ended (a stale page's form; not a redirect to /login, which
    would look like a logout while the session lives on)."""
    cookie = request.cookies.get(session_cookie(request))
    if auth.via == "session" and cookie:
        if not csrf_matches(auth.csrf, await submitted_csrf(request)):
            if _wants_html(request):  # a stale page's form: a page, the session left as is
                page = LOGOUT_STALE.format(code=html.escape(node.code), back=AFTER_LOGIN)
                return HTMLResponse(page, 403, headers=NO_STORE)
            raise Problem(403, CSRF_FAILED)
        await run_in_threadpool(end_session, node.db, cookie)
    response: Response = (
        RedirectResponse("/login", 303) if _wants_html(request) else Response(status_code=204)
    )
    clear_cookie(response, request, session_cookie(request))
    return response


@router.get("/api/session", summary="Who the request is authenticated as (and its CSRF token)")
def whoami(auth: AuthDep, _: Annotated[Any, Depends(principal)]) -> Response:
    p = auth.principal
    body: dict[str, Any] = {
        "username": p.username,
        "role": p.role,
        "partner": p.partner,
        "via": auth.via,
        "scopes": sorted(auth.scopes),
    }
    if auth.csrf:
        body["csrf"] = auth.csrf
    return Response(orjson.dumps(body), media_type=JSON, headers=NO_STORE)


# -- API tokens ------------------------------------------------------------------------------
class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        "", max_length=200, description="What the token is for (no control characters)"
    )
    days: int | None = Field(None, ge=1, le=MAX_TOKEN_DAYS, description="Lifetime (token_days)")
    scopes: str | list[str] = Field("api", description="Space-separated: api, admin, sync")
    username: str | None = Field(None, description="Whose token (admins only; default: yours)")


def _is_admin(auth: Auth) -> bool:
    return auth.principal.can("admin") and "admin" in auth.scopes


def _require_admin(auth: Auth, what: str) -> None:
    if not _is_admin(auth):
        raise Problem(403, f"only an admin (with the 'admin' scope) may {what}")


@router.post("/api/tokens", status_code=201, summary="Create an API token (shown once)")
def create_api_token(
    request: Request,
    spec: TokenRequest,
    node: NodeDep,
    auth: AuthDep,
    _: Annotated[Any, Depends(principal)],
) -> Response:
    me = auth.principal.username
    target = spec.username or me
    if target != me:
        _require_admin(auth, "create tokens for other accounts")
    own_token = target == me and auth.via == "token"
    days = spec.days or settings_of(request).token_days
    not_after = auth.expires if own_token else None  # nor one that outlives it
    # The account as it is under the lock a role change or a disable takes (and with the
    # token's audit entry: no token without it).
    with node.db.bookkeeping():
        account = get_account(node.db, target)
        if account is None or account.disabled:
            raise Problem(404, f"no active account {target!r}")
        try:
            scopes = parse_scopes(spec.scopes, account.role)
            if own_token and not set(scopes.split()) <= auth.scopes:
                raise Problem(403, "a token cannot create a token with scopes it does not have")
            token = create_token(node.db, target, spec.label, scopes, days, not_after)
        except AccountError as exc:
            raise Problem(400, str(exc)) from None
        info = find_token(node.db, token, target)
        audit.record_in(node.db, me, "token_created", target, {"id": info.id, "scopes": scopes})
    body = {"token": token, **info.as_dict()}
    return Response(orjson.dumps(body), 201, media_type=JSON, headers=NO_STORE)


@router.get("/api/tokens", summary="List API tokens (yours; an admin may ask for others')")
def list_api_tokens(
    node: NodeDep,
    auth: AuthDep,
    _: Annotated[Any, Depends(principal)],
    username: Annotated[str | None, Query(description="Whose tokens (admins only)")] = None,
    every: Annotated[
        bool, Query(alias="all", description="Every account's tokens (admins only)")
    ] = False,
) -> Response:
    me = auth.principal.username
    if every or (username and username != me):
        _require_admin(auth, "list other accounts' tokens")
    if not every and username and get_account(node.db, username) is None:
        raise Problem(404, f"no account {username!r}")  # not an empty list: a typo says so
    tokens = list_tokens(node.db, None if every else username or me)
    body = {"tokens": [t.as_dict() for t in tokens]}
    return Response(orjson.dumps(body), media_type=JSON, headers=NO_STORE)


@router.delete("/api/tokens/{token}", summary="Revoke a token by its id (or a unique prefix)")
def revoke_api_token(
    token: str, node: NodeDep, auth: AuthDep, _: Annotated[Any, Depends(principal)]
) -> Response:
    """Revoke the token (a revoked one: it stands, and nothing more is recorded)."""
    me = auth.principal.username
    owner = None if _is_admin(auth) else me

    def record(info: TokenInfo) -> None:  # in the revocation's transaction
        audit.record_in(node.db, me, "token_revoked", info.username, {"id": info.id})

    try:
        info, _revoked = revoke_token(node.db, token, owner, record)
    except TokenNotFound as exc:
        raise Problem(404, str(exc)) from None
    except AccountError as exc:
        raise Problem(400, str(exc)) from None
    return Response(orjson.dumps(info.as_dict()), media_type=JSON, headers=NO_STORE)
