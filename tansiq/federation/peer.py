"""What pull sync asks of a peer's node over HTTP, and what it accepts as an answer.

The client carries the token this node reads the peer with (:mod:`tansiq.federation.credentials`)
and never over plain HTTP to another host unless allowed; every answer is read whole within
:class:`Limits` (settings), and anything but a well-formed 200 is a
:class:`SyncError` that says what the peer answered.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tansiq.federation import credentials, deadline
from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.sharing import Partner
from tansiq.stix import jsonstream
from tansiq.stix.timestamps import to_micros

TAXII = "application/taxii+json;version=2.1"
SHARED_COLLECTION = "shared"
FEED = "/api/sync/withdrawals"


class SyncError(RuntimeError):
    """A pull from a peer failed; the message says what to check."""


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def peer_token(node: Node, code: str) -> str | None:
    try:
        return credentials.load(node, code)
    except credentials.CredentialError as exc:
        raise SyncError(str(exc)) from None


def client_for(node: Node, partner: Partner) -> httpx.Client:
    token = peer_token(node, partner.code)
    if not partner.base_url or token is None or not partner.public_key:
        raise SyncError(
            f"partner {partner.code} is not enrolled for sync (URL, key and token needed): run"
            f" `tansiq partner update --enrolment` with the invitation {partner.code}'s node made"
            f" for this one (`tansiq partner invite {node.code}` there)"
        )
    url = partner.base_url
    scheme = urlsplit(url).scheme.lower()  # "HTTP://" is plain HTTP too
    if scheme not in ("http", "https"):
        raise SyncError(f"{partner.code}'s URL {url} is not an http(s) URL")
    if scheme == "http" and not _loopback(url) and not node.settings.allow_plain_http:
        raise SyncError(
            f"{partner.code}'s URL {url} is plain HTTP: the sync token would travel in clear. "
            "Use https, or set allow_plain_http if the network is protected otherwise."
        )
    limits = Limits.of(node.settings)
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}", "Accept": TAXII},
        timeout=httpx.Timeout(limits.read, connect=limits.connect),
        transport=deadline.Transport(),  # no wait past the answer's deadline, headers included
    )


@dataclass(frozen=True)
class Limits:
    """How long and how much a pull waits for and reads from a peer (settings ``sync_*``)."""

    connect: float = 10.0
    read: float = 60.0
    response: float = 600.0
    """Longest a peer may take over one answer: the read timeout bounds each wait for bytes
    only, and a peer trickling them would hold the pull lock, and every other partner's pull,
    for good."""
    max_mb: int = 512
    """Largest answer read: the scheduler pulls inside ``tansiq serve``, so a peer sending
    without end must not exhaust the server's memory."""

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.sync_connect_timeout_seconds,
            settings.sync_read_timeout_seconds,
            settings.sync_response_seconds,
            settings.sync_max_response_mb,
        )


@dataclass
class Answer:
    """A peer's 200 answer, read whole."""

    content: bytes
    headers: httpx.Headers


def get(client: httpx.Client, path: str, params: dict[str, Any], limits: Limits) -> Answer:
    ends = time.monotonic() + limits.response
    where = f"{client.base_url}{path}"
    late = SyncError(
        f"{where} took more than {limits.response:g} s to answer (sync_response_seconds)"
    )
    try:
        with deadline.until(ends), client.stream("GET", path, params=params) as r:
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > limits.max_mb * 2**20:
                    raise SyncError(
                        f"{where} answered more than {limits.max_mb} MiB (sync_max_response_mb)"
                    )
                if time.monotonic() > ends:
                    raise late
                chunks.append(chunk)
            status = r.status_code
            headers = r.headers
            moved = r.url.join(headers["location"]) if r.is_redirect else None
    except httpx.TimeoutException as exc:
        if time.monotonic() >= ends:  # the deadline cut the wait short (tansiq.federation.deadline)
            raise late from None
        if isinstance(exc, httpx.ConnectTimeout):
            raise SyncError(
                f"cannot reach {client.base_url}: no connection within {limits.connect:g} s"
                " (sync_connect_timeout_seconds)"
            ) from None
        if isinstance(exc, httpx.ReadTimeout):
            raise SyncError(
                f"{where} sent nothing for {limits.read:g} s (sync_read_timeout_seconds)"
            ) from None
        raise SyncError(f"cannot reach {client.base_url}: {exc}") from None
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot reach {client.base_url}: {exc}") from None
    content = b"".join(chunks)
    if moved is not None:
        raise SyncError(
            f"{where} redirects to {moved} ({status}): not followed, as the sync token goes to"
            " the URL enrolled only; if the partner's node moved, take its new URL with"
            " `tansiq partner update CODE --url URL`"
        )
    if status == 401:  # e.g. it invited this node again, which revokes the earlier tokens
        raise SyncError(
            f"{where} answered 401: {_error_text(content)}: the partner's node no longer"
            " takes this node's sync token; ask it for a new invitation and take it with"
            " `tansiq partner update CODE --enrolment ...`"
        )
    if status != 200:
        raise SyncError(f"{where} answered {status}: {_error_text(content)}")
    return Answer(content, headers)


def _error_text(content: bytes) -> str:
    """What a peer's error answer says: a TAXII error's description, a problem's detail,
    else the start of the body; what is not printable (a line break, a terminal escape) as
    its Python escape, since it ends in a terminal (`tansiq sync`) or a log line (the
    scheduler's), where it could forge lines or clear the screen."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    text = content[:300].decode("utf-8", "replace")
    if isinstance(body, dict):
        for key in ("description", "detail", "title"):
            if isinstance(body.get(key), str) and body[key]:
                text = str(body[key])[:300]
                break
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


Page = tuple[list[Any], str, bytes]  # objects, X-TAXII-Date-Added-Last, the envelope's bytes


def pages(client: httpx.Client, cursor: str | None, limit: int, limits: Limits) -> Iterator[Page]:
    """The peer's ``shared`` collection, every version, page by page after *cursor*."""
    path = f"/taxii2/api/collections/{SHARED_COLLECTION}/objects/"
    seen: set[bytes] = set()  # each answer's digest: pages of one pull never repeat
    while True:
        params: dict[str, Any] = {"limit": limit, "match[version]": "all"}
        if cursor:
            params["added_after"] = cursor
        r = get(client, path, params, limits)
        try:
            body = jsonstream.loads(r.content)  # (as every way in: no integer beyond 64 bits)
        except orjson.JSONDecodeError as exc:
            raise SyncError(f"{client.base_url}{path} answered with invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise SyncError(f"{client.base_url}{path} answered with no TAXII envelope")
        objects = body.get("objects") or []
        last = r.headers.get("X-TAXII-Date-Added-Last")
        if not isinstance(objects, list):
            raise SyncError(
                f"{client.base_url}{path} answered an envelope whose 'objects' is not a list"
            )
        if not objects:
            return
        if not last:
            raise SyncError(
                f"{client.base_url}{path} answered {len(objects)} object(s) with no"
                " X-TAXII-Date-Added-Last header: this node cannot say where the next pull starts"
            )
        # Parsed on every page, the first too: the cursor is stored as sent, and one that is no
        # timestamp would make every later pull ask the peer for added_after=<it>, for good.
        stamp = _micros(last, client)
        if cursor and stamp <= _micros(cursor, client):
            raise SyncError(
                f"{client.base_url}{path} answered a page that does not advance past {cursor}"
            )
        # A peer that ignores added_after and stamps each answer anew (its clock, say) sends
        # the same page over and over, each advancing: the pull never ended.
        digest = hashlib.blake2b(r.content, digest_size=16).digest()
        if digest in seen:
            raise SyncError(
                f"{client.base_url}{path} answered a page it answered before in this pull, as if"
                f" it were later (X-TAXII-Date-Added-Last {last}): it does not honour added_after"
            )
        seen.add(digest)
        yield objects, last, r.content
        cursor = last
        if not body.get("more"):
            return


def _micros(stamp: str, client: httpx.Client) -> int:
    try:
        return to_micros(stamp)
    except ValueError:
        bad = f"{client.base_url} sent a bad X-TAXII-Date-Added-Last: {stamp!r:.200}"
        raise SyncError(bad) from None


FeedItem = tuple[str, str, int | None, int]  # id, reason, version µs or None, after


def _feed_item(item: Any) -> FeedItem:
    """(id, reason, version or None, after) of one withdrawal-feed item; SyncError if
    malformed."""
    try:
        oid, version, after = item["id"], item.get("version"), item["after"]
        if not isinstance(oid, str) or not (version is None or _int64(version)):
            raise TypeError
        if not (_int64(after) and after >= 0):  # a float, 1e30 say, became the feed's cursor
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        raise SyncError(f"the peer sent a malformed withdrawal item: {item!r:.200}") from None
    return oid, str(item.get("reason", "withdrawn")), version, after


def _int64(value: Any) -> bool:
    """Is *value* an integer a node's clock or a version (µs) can be: one the store holds?
    (Larger ones failed on SQLite with an OverflowError, not a SyncError, and matched nothing
    on PostgreSQL; as the feed's cursor, they made every later pull ask for nothing.)"""
    return type(value) is int and -(2**63) <= value < 2**63


def feed_pages(client: httpx.Client, after: int, limits: Limits) -> Iterator[list[FeedItem]]:
    """The peer's withdrawal feed for this node, page by page after *after*."""
    while True:
        r = get(client, FEED, {"after": after, "limit": 1000}, limits)
        try:
            body = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            raise SyncError(f"{client.base_url}'s withdrawal feed is not JSON") from None
        items = body.get("withdrawals") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise SyncError(f"{client.base_url}'s withdrawal feed has no 'withdrawals' list")
        if not items:
            return
        parsed = [_feed_item(item) for item in items]
        if parsed[-1][3] <= after:
            raise SyncError(f"{client.base_url}'s withdrawal feed does not advance past {after}")
        yield parsed
        after = parsed[-1][3]
        if not body.get("more"):
            return
