"""The HTTP side of the TAXII 2.1 server: media types, error messages, authentication.

Authentication: ``Authorization: Bearer TOKEN`` (a token with the ``api`` or ``sync`` scope) or
HTTP Basic with an account's username and password (UTF-8, or ISO-8859-1 when not UTF-8: RFC
7617 leaves it to the client, and Python's requests sends ISO-8859-1), rate-limited like
``POST /login``.  argon2 is slow on purpose, so a successful Basic check is remembered in this
process for
:data:`BASIC_CACHE_SECONDS` (keyed by database, username and the password's sha256, with the
stored hash it matched).  The account itself is read on every request: once it is disabled or
its password changes (``tansiq account disable`` / ``password``), or its partner is suspended
(``tansiq partner suspend``), the next request is refused, in every server process.  Without
credentials the answer is 401 with ``WWW-Authenticate: Basic realm="tansiq", Bearer``.

Content negotiation: responses are ``application/taxii+json;version=2.1``.  ``Accept`` must
allow it: ``application/taxii+json`` with ``version=2.1`` or no version (the latest, 2.1 here),
``application/*`` or ``*/*``, the most specific matching range deciding (so
``application/taxii+json;q=0, */*`` refuses it); a request without ``Accept`` accepts anything
(RFC 9110 §12.5.1); otherwise 406.  A POST body must be ``application/taxii+json`` (version 2.1
or none), else 415.

Errors are TAXII error messages, ``{"title", "description", "http_status"}`` (``http_status`` is
a string in TAXII 2.1), with the TAXII media type.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tansiq import audit
from tansiq.accounts import ratelimit
from tansiq.accounts.principal import Principal
from tansiq.accounts.store import (
    ROLE_SCOPES,
    Account,
    PartnerSuspended,
    account_for_token,
    login_record,
    token_id,
    token_scopes,
    typed_username,
    verify_login,
)
from tansiq.api.deps import client_address, get_node, get_settings, refused, rejected
from tansiq.api.problems import TITLES
from tansiq.node import Node
from tansiq.settings import Settings

TAXII = "application/taxii+json;version=2.1"
BASIC_CACHE_SECONDS = 60.0
CHALLENGE = {"WWW-Authenticate": 'Basic realm="tansiq", Bearer'}

NodeDep = Annotated[Node, Depends(get_node)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# -- errors ----------------------------------------------------------------------------------


class TaxiiError(Exception):
    """Raise to answer with a TAXII error message."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def error_response(
    status: int, description: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "title": TITLES.get(status, "Error"),
        "description": description,
        "http_status": str(status),  # a string in TAXII 2.1's error message
    }
    return Response(orjson.dumps(body), status_code=status, media_type=TAXII, headers=headers)


# -- authentication and content negotiation ---------------------------------------------------


@dataclass(frozen=True)
class Client:
    """An authenticated TAXII client: who, how, and whether its credential may write."""

    principal: Principal
    via: str  # "token:<id>" or "basic"
    write_scope: bool

    @property
    def username(self) -> str:
        return self.principal.username

    @property
    def can_write(self) -> bool:
        return self.write_scope and self.principal.can("write")


# (database, username, sha256 of the password) -> (expiry, the stored hash it matched)
_basic_cache: dict[tuple[str, str, str], tuple[float, str]] = {}
_basic_lock = threading.Lock()


def _cached(key: tuple[str, str, str]) -> str | None:
    with _basic_lock:
        hit = _basic_cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            _basic_cache.pop(key, None)
            return None
        return hit[1]


def _remember(key: tuple[str, str, str], stored_hash: str) -> None:
    now = time.monotonic()
    with _basic_lock:
        if len(_basic_cache) > 1000:
            for k in [k for k, v in _basic_cache.items() if v[0] < now]:
                del _basic_cache[k]
        _basic_cache[key] = (now + BASIC_CACHE_SECONDS, stored_hash)


def _basic_login(node: Node, credentials: str) -> tuple[str, str, tuple[str, str, str]]:
    """(username, password, cache key) of Basic *credentials*."""
    try:
        raw = base64.b64decode(credentials, validate=True)
    except ValueError:  # binascii.Error, or text beyond ASCII (the header's latin-1)
        raise TaxiiError(401, "malformed Basic credentials", CHALLENGE) from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:  # ISO-8859-1, as Python requests (taxii2-client) sends a str
        decoded = raw.decode("latin-1")
    typed, _, password = decoded.partition(":")
    username = typed_username(typed)
    digest = hashlib.sha256(password.encode()).hexdigest()
    return username, password, (node.db.describe(), username, digest)


def _client_of(account: Account, own_code: str) -> Client:
    return Client(account.principal(own_code), "basic", "api" in ROLE_SCOPES.get(account.role, ()))


def _basic(request: Request, node: Node, settings: Settings, credentials: str) -> Client:
    username, password, key = _basic_login(node, credentials)
    db = node.db
    record = login_record(db, username) if username else None
    usable = record is not None and not (record[1].disabled or record[1].suspended)
    if record is not None and usable and _cached(key) == record[0]:
        return _client_of(record[1], node.code)  # this password matched this stored hash lately
    # (a suspended partner's account goes on to verify_login: refused there, see store.admit)
    address = client_address(request)
    limit, window = settings.login_max_failures, settings.login_window_seconds
    try:
        seq = ratelimit.attempt(db, username, address, limit, window)
    except ratelimit.LockedOut as locked:
        raise TaxiiError(429, str(locked), {"Retry-After": str(locked.retry_after)}) from None
    try:
        account = verify_login(db, username, password) if username and password else None
    except PartnerSuspended as exc:  # the right password: the attempt's row stays, refused
        refused(request, db, exc, "basic")
        raise
    if account is None:  # the attempt's row stays: it is the failure
        audit.record(
            db,
            username[:64] or "-",
            "login_failed",
            username[:64],
            {"address": address, "via": "taxii"},
        )
        raise TaxiiError(401, "invalid username or password", CHALLENGE)
    ratelimit.succeeded(db, account.username, seq)
    if record is not None:
        _remember(key, record[0])
    return _client_of(account, node.code)


def _bearer(request: Request, node: Node, token: str) -> Client:
    try:
        account = account_for_token(node.db, token)
    except PartnerSuspended as exc:
        refused(request, node.db, exc, "token")
        raise
    scopes = token_scopes(node.db, token) if account is not None else None
    if account is None or scopes is None:
        rejected(request, node.db, token)
        raise TaxiiError(401, "the token is unknown, expired or revoked", CHALLENGE)
    if not scopes & {"api", "sync"}:
        raise TaxiiError(403, "this token lacks the 'api' or 'sync' scope")
    return Client(account.principal(node.code), f"token:{token_id(token)}", "api" in scopes)


QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
"""RFC 9110 §12.4.2: a weight is 0 to 1 with at most three decimals."""


def accepts_taxii(accept: str | None) -> bool:
    """Does an ``Accept`` header allow ``application/taxii+json;version=2.1``?

    The most specific media range that matches decides (RFC 9110 §12.5.1):
    ``application/taxii+json;version=2.1``, then ``application/taxii+json`` (no version: the
    latest, 2.1 here), ``application/*``, ``*/*``; it allows TAXII 2.1 unless its ``q`` is 0.
    So ``application/taxii+json;q=0, */*`` refuses it.  Items with a malformed ``q`` (not
    :data:`QVALUE`: ``q=2``, ``q=nan``, ``q=1e-9``) are ignored, as if not sent."""
    if accept is None or not accept.strip():
        return True
    best: tuple[int, float] | None = None  # (specificity, q) of the most specific match
    for item in accept.split(","):
        media, *raw = (part.strip() for part in item.split(";"))
        params = {}
        for p in raw:
            name, _, value = p.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        weight = params.pop("q", "1")
        if not QVALUE.fullmatch(weight):
            continue
        q = float(weight)
        media = media.lower()
        if media == "*/*":
            specificity = 0
        elif media == "application/*":
            specificity = 1
        elif media == "application/taxii+json" and "version" not in params:
            specificity = 2
        elif media == "application/taxii+json" and params["version"] == "2.1":
            specificity = 3
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
        elif specificity == best[0]:
            best = (specificity, max(q, best[1]))
    return best is not None and best[1] > 0


def _authenticate(
    request: Request, node: Node, settings: Settings, scheme: str, credentials: str
) -> Client:
    if scheme == "bearer" and credentials:
        return _bearer(request, node, credentials)
    if scheme == "basic" and credentials:
        return _basic(request, node, settings, credentials)
    raise TaxiiError(401, "authentication required: Basic or Bearer", CHALLENGE)


async def client(request: Request, node: NodeDep, settings: SettingsDep) -> Client:
    """The authenticated client of a TAXII request whose ``Accept`` allows TAXII 2.1.

    Checking credentials reads the database (and may run argon2), so it runs in the thread
    pool; ``Accept`` is checked here."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    who = await run_in_threadpool(_authenticate, request, node, settings, scheme, credentials)
    accept = request.headers.getlist("accept")  # several lines are one list (RFC 9110 §5.3)
    if not accepts_taxii(", ".join(accept) if accept else None):
        raise TaxiiError(406, f"this server answers {TAXII} only")
    return who


ClientDep = Annotated[Client, Depends(client)]


def content_type_ok(value: str) -> bool:
    """Is a request ``Content-Type`` the TAXII 2.1 media type (version 2.1 or none)?"""
    media, *raw = (part.strip() for part in value.split(";"))
    version: str | None = None
    for p in raw:
        name, _, val = p.partition("=")
        if name.strip().lower() == "version":
            version = val.strip().strip('"')
    return media.lower() == "application/taxii+json" and version in (None, "2.1")
