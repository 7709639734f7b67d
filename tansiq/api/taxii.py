"""A TAXII 2.1 server (OASIS TAXII 2.1) over the node's store, every answer through the policy.

One API root, ``/taxii2/api/``.  Its collections, per principal:

* ``shared`` (id :data:`SHARED_ID`, alias ``shared``): everything the principal may see;
* one per distribution scope the principal can read, i.e. each distinct ``partners`` value of
  the visible latest versions (id :func:`scope_collection_id`, title "Released to DZ, EG"):
  the visible versions released to exactly those partners.

Writing (``POST .../objects/``) needs the ``write`` permission (and, with a token, the ``api``
scope); objects posted to a scope collection are released to that scope, to ``shared`` with the
default distribution.  Ingest is all or nothing and synchronous, so the status is ``complete`` at
once; it is stored in ``taxii_status`` and readable only by its requester.  ``DELETE`` removes
versions of objects this node originated (every version unless ``match[version]`` narrows it;
``match[spec_version]`` is its only other parameter).

Authentication, media types and the error format: :mod:`tansiq.api.taxii_http`.  Queries:
:mod:`tansiq.store.taxii_query`.  Audit: one ``taxii_read`` entry per request that returns
objects, manifests or versions (target the collection; detail ``object``, the object's id, when
one object or its versions were asked for), one ``objects_written`` per POST (by the write
path), one ``taxii_delete`` per DELETE.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match as RouteMatch

from tansiq import audit, policy
from tansiq.accounts.store import PartnerSuspended
from tansiq.api.head import answer_head
from tansiq.api.problems import problem_response, retry_after
from tansiq.api.taxii_http import (
    TAXII,
    Client,
    ClientDep,
    NodeDep,
    SettingsDep,
    TaxiiError,
    content_type_ok,
    error_response,
)
from tansiq.api.writes import run_write
from tansiq.node import TANSIQ_NAMESPACE, Node
from tansiq.settings import Settings
from tansiq.sharing import SharingError
from tansiq.stix import jsonstream
from tansiq.stix.timestamps import from_micros, now_micros, to_micros
from tansiq.store import taxii_query as tq
from tansiq.store.database import StoreUnavailable
from tansiq.store.ingest import IngestError
from tansiq.store.query import BadCursor, decode_cursor, encode_cursor

STIX = "application/stix+json;version=2.1"
PREFIX = "/taxii2"
API_ROOT = "/api/"
COLLECTION_NAMESPACE = uuid.uuid5(TANSIQ_NAMESPACE, "taxii2-collections")
SHARED_ID = str(uuid.uuid5(COLLECTION_NAMESPACE, "shared"))
SHARED_ALIAS = "shared"
NOT_STORED = "not stored: another object of the request was rejected (all or nothing)"

router = APIRouter(prefix=PREFIX, tags=["TAXII 2.1"])


def install(app: FastAPI) -> None:
    """Add the TAXII routes and answer their errors as TAXII error messages."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TaxiiError)
        return error_response(exc.status, exc.description, exc.headers)

    async def full(request: Request, exc: Exception) -> Response:
        """The store cannot grow, or SQLite stayed busy: 503, a TAXII error message under
        /taxii2/ (this handler replaces the REST one of tansiq.api.problems, which answers
        everywhere else)."""
        assert isinstance(exc, StoreUnavailable)
        path = request.url.path
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return error_response(503, str(exc), retry_after(exc))
        return problem_response(503, str(exc), retry_after(exc))

    async def suspended(request: Request, exc: Exception) -> Response:
        """A suspended partner's account (tansiq.accounts.store.admit): 403, a TAXII error
        message under /taxii2/ (replacing the REST handler, as for 503 above)."""
        assert isinstance(exc, PartnerSuspended)
        path = request.url.path
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return error_response(403, str(exc))
        return problem_response(403, str(exc))

    app.add_exception_handler(TaxiiError, handler)
    app.add_exception_handler(StoreUnavailable, full)
    app.add_exception_handler(PartnerSuspended, suspended)
    app.include_router(router)


def scope_collection_id(partners: str) -> str:
    """The collection id of a distribution scope (``partners`` as stored, e.g. ",DZ,EG,")."""
    return str(uuid.uuid5(COLLECTION_NAMESPACE, partners))


# -- collections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    id: str
    scope: str | None  # None: "shared"

    @property
    def codes(self) -> list[str]:
        return [c for c in (self.scope or "").split(",") if c]

    def resource(self, who: Client) -> dict[str, Any]:
        if self.scope is None:
            title, alias = "Shared with you", {"alias": SHARED_ALIAS}
            description = "Every object version this node lets you see."
        else:
            names = ", ".join(self.codes)
            title, alias = f"Released to {names}", {}
            description = f"Object versions whose distribution is exactly {names}."
        return {
            "id": self.id,
            "title": title,
            "description": description,
            **alias,
            "can_read": True,
            "can_write": who.can_write,
            "media_types": [STIX],
        }


SHARED = Collection(SHARED_ID, None)
_scope_by_id: dict[str, str] = {}  # memo of scope_collection_id (deterministic)


def visibility(node: Node, who: Client) -> tq.Visibility:
    return tq.Visibility(
        policy.condition(who.principal, node.code),
        policy.condition(who.principal, node.code, all_versions=True),
    )


def collections_of(node: Node, who: Client) -> list[Collection]:
    found = [SHARED]
    for scope in tq.scopes(node.db, visibility(node, who)):
        cid = scope_collection_id(scope)
        _scope_by_id[cid] = scope
        found.append(Collection(cid, scope))
    return found


def find_collection(node: Node, who: Client, collection_id: str) -> Collection:
    """The collection, or 404 when it does not exist or the principal cannot see it."""
    if collection_id in (SHARED_ID, SHARED_ALIAS):
        return SHARED
    scope = _scope_by_id.get(collection_id)
    if scope is not None:
        if tq.scope_visible(node.db, visibility(node, who), scope):
            return Collection(collection_id, scope)
    else:
        for found in collections_of(node, who):
            if found.id == collection_id:
                return found
    raise TaxiiError(404, f"no collection {collection_id!r}")


# -- request parameters ----------------------------------------------------------------------


def _query(name: str, description: str) -> dict[str, Any]:
    """An OpenAPI query parameter: the routes read theirs from the request (:func:`_single`,
    :func:`_values`), to answer malformed ones as TAXII errors, so FastAPI cannot see them."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


OR = "comma-separated, no spaces: any of them (TAXII 2.1 3.4)"
ADDED_AFTER = _query("added_after", "Only what was added to this node after this timestamp")
LIMIT = _query("limit", "Items per page (default page_size, at most max_page_size)")
NEXT = _query("next", "The 'next' value of the previous page")
MATCH_ID = _query("match[id]", f"STIX ids, {OR}")
MATCH_TYPE = _query("match[type]", f"STIX types, {OR}")
MATCH_SPEC_VERSION = _query("match[spec_version]", f"STIX spec versions (2.1), {OR}")


def _match_version(default: str) -> dict[str, Any]:
    return _query("match[version]", f"first, last, all or STIX timestamps, {OR}; default {default}")


def _parameters(*parameters: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads *parameters* (in the order TAXII 2.1 lists them)."""
    return {"parameters": list(parameters)}


LIST_PARAMETERS = _parameters(
    ADDED_AFTER, LIMIT, NEXT, MATCH_ID, MATCH_TYPE, _match_version("last"), MATCH_SPEC_VERSION
)


def _single(request: Request, name: str) -> str:
    """The one value of parameter *name* ("" if absent); TAXII allows each at most once."""
    given = request.query_params.getlist(name)
    if len(given) > 1:
        raise TaxiiError(400, f"{name}: given {len(given)} times; give it once")
    return given[0] if given else ""


def _values(request: Request, name: str) -> list[str]:
    """The comma-separated values of parameter *name*, in order, each once.

    TAXII 2.1 3.4: "Multiple values are separated by a comma (U+002C COMMA, ",") without any
    spaces.  If multiple values are present, the match is treated as a logical OR": a value
    given twice asks nothing more (it is kept once); an empty value or spaces are malformed."""
    raw = _single(request, name)
    if not raw:
        return []
    out = raw.split(",")
    for value in out:
        if not value or value != value.strip():
            raise TaxiiError(400, f"{name}: an empty value or spaces in {raw!r}")
    return list(dict.fromkeys(out))


def _timestamp(name: str, value: str) -> int:
    try:
        return to_micros(value)
    except ValueError as exc:
        raise TaxiiError(400, f"{name}: {exc} (got {value!r})") from None


def _version_match(request: Request, default: str = "last") -> tq.VersionMatch:
    """``match[version]``: ``first``, ``last``, ``all`` and STIX timestamps, ORed (TAXII 2.1
    3.4.1), so that ``all`` with anything else is every version; each timestamp is checked."""
    words = _values(request, "match[version]") or [default]
    at = tuple(_timestamp("match[version]", w) for w in words if w not in ("first", "last", "all"))
    if "all" in words:
        return tq.ALL_VERSIONS
    return tq.VersionMatch(False, "first" in words, "last" in words, at)


def _match(
    request: Request,
    *,
    default_version: str = "last",
    version: tq.VersionMatch | None = None,
    ids: bool = True,
    paged: bool = True,
) -> tq.Match:
    after: int | None = None
    added_after = _single(request, "added_after") if paged else ""
    if added_after:
        after = _timestamp("added_after", added_after)
    token = _single(request, "next") if paged else ""
    if token:
        try:
            cursor = decode_cursor(token)
        except BadCursor as exc:
            raise TaxiiError(400, f"next: {exc}") from None
        after = cursor if after is None else max(after, cursor)
    return tq.Match(
        ids=_values(request, "match[id]") if ids else (),
        types=_values(request, "match[type]") if ids else (),
        spec_versions=_values(request, "match[spec_version]"),
        version=version or _version_match(request, default_version),
        added_after=after,
    )


def _limit(request: Request, settings: Settings) -> int:
    raw = _single(request, "limit")
    if not raw:
        return int(settings.page_size)
    if not raw.isascii() or not raw.isdigit():  # int() takes "٢", "1_0", "+2", " 2"
        raise TaxiiError(400, f"limit: not an integer (got {raw!r})")
    digits = raw.lstrip("0")
    if not digits:
        raise TaxiiError(400, "limit: must be at least 1")
    most = int(settings.max_page_size)
    # (int() refuses more than 4,300 digits: any limit that long is above the most anyway)
    return most if len(digits) > len(str(most)) else min(int(digits), most)


# -- responses -------------------------------------------------------------------------------


def taxii_response(body: bytes | dict[str, Any], status: int = 200, **headers: str) -> Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(data, status_code=status, media_type=TAXII, headers=headers or None)


AnyPage = tq.Page | tq.ObjectsPage
LAST_INSTANT = to_micros("9999-12-31T23:59:59.999999Z")
"""The last instant a timestamp can name: ``added_after`` may be one µs later (a leap second
ending 9999) and ``next`` any cursor the store can bind, but no row is added after it."""


def _page_headers(page: AnyPage, after: int | None) -> dict[str, str]:
    """``X-TAXII-Date-Added-First/Last``, which every 200 carries: the first and last date_added
    of the page; of an empty page, the point it starts after (*after*, the request's
    ``added_after`` or ``next``; else the epoch; at most :data:`LAST_INSTANT`), so that
    resuming from it misses nothing."""
    first, last = page.first_added, page.last_added
    if first is None or last is None:
        first = last = min(after or 0, LAST_INSTANT)
    return {
        "X-TAXII-Date-Added-First": from_micros(first),
        "X-TAXII-Date-Added-Last": from_micros(last),
    }


def _paged(page: AnyPage, key: str, items: list[bytes], after: int | None) -> Response:
    """``{"more", "next", key: [...]}``: *items* are JSON texts, joined as they are."""
    parts = [b'{"more":', b"true" if page.more else b"false"]
    if page.more and page.last_added is not None:
        parts += [b',"next":', orjson.dumps(encode_cursor(page.last_added))]
    if items:  # TAXII lists are never empty: an empty result omits the key
        parts += [b',"', key.encode(), b'":[', b",".join(items), b"]"]
    parts.append(b"}")
    return Response(b"".join(parts), media_type=TAXII, headers=_page_headers(page, after))


def _read(
    node: Node, who: Client, coll: Collection, endpoint: str, page: AnyPage, object_id: str = ""
) -> None:
    detail = {"endpoint": endpoint, "count": page.count, "via": who.via}
    if object_id:  # (the object or versions endpoint: which object was read)
        detail["object"] = object_id
    audit.record(node.db, who.username, "taxii_read", coll.id, detail)


# -- endpoints -------------------------------------------------------------------------------


def api_root_url(base: str) -> str:
    """The API root's URL for discovery, under *base* (``public_url`` or the request's).

    TAXII 2.1 4.1.1: API root URLs "MUST be HTTPS absolute URLs or relative URLs", relative
    ones "MUST begin with a single / character and MUST NOT begin with //" (which would name a
    host), and none "MUST contain a URL query component": *base*'s query and fragment are
    dropped, its path's empty segments too; without https, the path alone."""
    parts = urlsplit(base)
    path = "".join(f"/{segment}" for segment in parts.path.split("/") if segment)
    path += PREFIX + API_ROOT
    if parts.scheme.lower() == "https" and parts.netloc:
        return f"https://{parts.netloc}{path}"
    return path


@router.get("/", summary="TAXII server discovery")
def discovery(request: Request, node: NodeDep, settings: SettingsDep, who: ClientDep) -> Response:
    root = api_root_url(settings.public_url or str(request.base_url))
    return taxii_response(
        {
            "title": f"tansiq node {node.code}",
            "description": f"TAXII 2.1 server of {node.name}",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(API_ROOT, summary="TAXII API root")
def api_root(node: NodeDep, settings: SettingsDep, who: ClientDep) -> Response:
    return taxii_response(
        {
            "title": f"tansiq {node.code}",
            "description": "Objects shared with you, whole and by distribution scope.",
            "versions": [TAXII],
            "max_content_length": int(settings.max_body_bytes),
        }
    )


def _status_resource(status: dict[str, Any]) -> dict[str, Any]:
    """The TAXII status resource; empty lists are left out (TAXII lists are never empty)."""
    out: dict[str, Any] = {
        "id": status["id"],
        "status": status["status"],
        "request_timestamp": from_micros(status["request_micros"]),
    }
    for count, items in (
        ("total_count", None),
        ("success_count", "successes"),
        ("failure_count", "failures"),
        ("pending_count", "pendings"),
    ):
        out[count] = status[count]
        if items is not None and status.get(items):
            out[items] = status[items]
    return out


@router.get(API_ROOT + "status/{status_id}/", summary="TAXII status of an add-objects request")
def get_status(status_id: str, node: NodeDep, settings: SettingsDep, who: ClientDep) -> Response:
    status = tq.load_status(node.db, status_id, who.username, settings.taxii_status_days)
    if status is None:
        raise TaxiiError(404, f"no status {status_id!r}")
    return taxii_response(_status_resource(status))


@router.get(API_ROOT + "collections/", summary="TAXII collections you can read")
def get_collections(node: NodeDep, who: ClientDep) -> Response:
    found = collections_of(node, who)
    return taxii_response({"collections": [c.resource(who) for c in found]})


@router.get(API_ROOT + "collections/{collection_id}/", summary="One TAXII collection")
def get_collection(collection_id: str, node: NodeDep, who: ClientDep) -> Response:
    return taxii_response(find_collection(node, who, collection_id).resource(who))


@router.get(
    API_ROOT + "collections/{collection_id}/manifest/",
    summary="Object manifests",
    openapi_extra=LIST_PARAMETERS,
)
def get_manifest(
    collection_id: str, request: Request, node: NodeDep, settings: SettingsDep, who: ClientDep
) -> Response:
    coll = find_collection(node, who, collection_id)
    match = _match(request)
    page = tq.page(
        node.db, visibility(node, who), coll.scope, match, limit=_limit(request, settings)
    )
    _read(node, who, coll, "manifest", page)
    items = [
        orjson.dumps(
            {
                "id": r.id,
                "date_added": from_micros(r.added),
                "version": r.stamp or from_micros(r.version),
                "media_type": f"application/stix+json;version={r.spec_version}",
            }
        )
        for r in page.rows
    ]
    return _paged(page, "objects", items, match.added_after)


OBJECTS = API_ROOT + "collections/{collection_id}/objects/"


@router.get(OBJECTS, summary="Objects of a collection (an envelope)", openapi_extra=LIST_PARAMETERS)
def get_objects(
    collection_id: str, request: Request, node: NodeDep, settings: SettingsDep, who: ClientDep
) -> Response:
    coll = find_collection(node, who, collection_id)
    match = _match(request)
    page = tq.objects_page(
        node.db, visibility(node, who), coll.scope, match, limit=_limit(request, settings)
    )
    _read(node, who, coll, "objects", page)
    return _paged(page, "objects", page.objects, match.added_after)


@router.get(
    OBJECTS + "{object_id}/",
    summary="One object of a collection (an envelope)",
    openapi_extra=_parameters(ADDED_AFTER, LIMIT, NEXT, _match_version("last"), MATCH_SPEC_VERSION),
)
def get_object(
    collection_id: str,
    object_id: str,
    request: Request,
    node: NodeDep,
    settings: SettingsDep,
    who: ClientDep,
) -> Response:
    coll = find_collection(node, who, collection_id)
    vis = visibility(node, who)
    match = _match(request, ids=False)
    page = tq.objects_page(
        node.db, vis, coll.scope, match, limit=_limit(request, settings), object_id=object_id
    )
    if not page.objects and not tq.object_visible(node.db, vis, coll.scope, object_id):
        raise TaxiiError(404, f"no object {object_id!r} in collection {coll.id}")
    _read(node, who, coll, "object", page, object_id)
    return _paged(page, "objects", page.objects, match.added_after)


@router.get(
    OBJECTS + "{object_id}/versions/",
    summary="The versions of one object",
    openapi_extra=_parameters(ADDED_AFTER, LIMIT, NEXT, MATCH_SPEC_VERSION),
)
def get_object_versions(
    collection_id: str,
    object_id: str,
    request: Request,
    node: NodeDep,
    settings: SettingsDep,
    who: ClientDep,
) -> Response:
    coll = find_collection(node, who, collection_id)
    vis = visibility(node, who)
    match = _match(request, version=tq.ALL_VERSIONS, ids=False)  # no match[version] here
    page = tq.page(
        node.db,
        vis,
        coll.scope,
        match,
        limit=_limit(request, settings),
        object_id=object_id,
    )
    if not page.rows and not tq.object_visible(node.db, vis, coll.scope, object_id):
        raise TaxiiError(404, f"no object {object_id!r} in collection {coll.id}")
    _read(node, who, coll, "versions", page, object_id)
    versions = [orjson.dumps(r.stamp or from_micros(r.version)) for r in page.rows]
    return _paged(page, "versions", versions, match.added_after)


@router.delete(
    OBJECTS + "{object_id}/",
    summary="Delete versions of an object you originated",
    openapi_extra=_parameters(_match_version("all"), MATCH_SPEC_VERSION),
)
async def delete_object(
    collection_id: str, object_id: str, request: Request, node: NodeDep, who: ClientDep
) -> Response:
    """Without ``match[version]`` every version (in this collection) is deleted.  Its other
    parameter is ``match[spec_version]``; ``added_after``, ``limit``, ``next``, ``match[id]``
    and ``match[type]`` are refused (400), and nothing is deleted."""
    return await run_write(request, _delete_object, collection_id, object_id, request, node, who)


def _delete_object(
    collection_id: str, object_id: str, request: Request, node: Node, who: Client
) -> Response:
    coll = find_collection(node, who, collection_id)
    vis = visibility(node, who)
    _only_delete_parameters(request)
    match = _match(request, default_version="all", ids=False, paged=False)
    if not who.can_write:  # the collection's can_write, whatever the object: reveals nothing
        raise TaxiiError(403, f"role {who.principal.role!r} may not delete objects")
    if not tq.object_visible(node.db, vis, coll.scope, object_id):
        raise TaxiiError(404, f"no object {object_id!r} in collection {coll.id}")

    def record(count: int) -> None:
        audit.record_in(
            node.db,
            who.username,
            "taxii_delete",
            object_id,
            {"collection": coll.id, "versions": count, "via": who.via},
        )

    try:
        tq.delete(node.db, vis, coll.scope, object_id, match, node.code, record)
    except tq.NotVisible:
        raise TaxiiError(404, f"no matching version of {object_id!r}") from None
    except tq.NotOriginator as exc:
        raise TaxiiError(403, f"originated by {exc}: only that node may delete it") from None
    except tq.WouldReshare as exc:
        raise TaxiiError(409, _reshare_message(exc)) from None
    return Response(b"", media_type=TAXII)


DELETE_PARAMETERS = ("match[version]", "match[spec_version]")


def _only_delete_parameters(request: Request) -> None:
    """TAXII 2.1 5.7 gives DELETE two URL parameters, ``match[version]`` and
    ``match[spec_version]``.  The ones that narrow other requests (``added_after``, ``limit``,
    ``next``, any other ``match[...]``) are refused: applied, they would narrow a delete as no
    other server does; ignored, they would delete more than the client asked for."""
    given = request.query_params.keys()
    narrowing = sorted(
        {n for n in given if n in ("added_after", "limit", "next") or n.startswith("match[")}
        - set(DELETE_PARAMETERS)
    )
    if narrowing:
        raise TaxiiError(
            400,
            f"{', '.join(narrowing)}: not a parameter of DELETE, which takes"
            f" {' and '.join(DELETE_PARAMETERS)} only (TAXII 2.1 5.7); nothing was deleted",
        )


def _reshare_message(exc: tq.WouldReshare) -> str:
    effects = []
    if exc.wider:
        effects.append(f"released to {', '.join(exc.wider)}, who may not see the current one")
    if exc.narrower:
        effects.append(
            f"not released to {', '.join(exc.narrower)}, whose nodes hold the current one and"
            " would not be told"
        )
    return (
        "deleting the current version would make an earlier one current again, "
        + " and ".join(effects)
        + "; publish a new version with the distribution you want, or delete every version"
    )


@router.post(OBJECTS, status_code=202, summary="Add objects (all or nothing; a status)")
async def add_objects(
    collection_id: str, request: Request, node: NodeDep, settings: SettingsDep, who: ClientDep
) -> Response:
    if not content_type_ok(request.headers.get("content-type", "")):
        raise TaxiiError(415, f"send an envelope as {TAXII}")
    coll = await run_in_threadpool(find_collection, node, who, collection_id)
    if not who.can_write:
        raise TaxiiError(403, f"role {who.principal.role!r} may not add objects")
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise TaxiiError(413, f"request body exceeds {settings.max_body_bytes} bytes")
    try:
        envelope = jsonstream.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TaxiiError(400, f"not valid JSON: {exc}") from None
    objects = envelope.get("objects", []) if isinstance(envelope, dict) else None
    if not isinstance(objects, list):
        raise TaxiiError(400, "expected an envelope: an object with an 'objects' list")
    status = await run_write(request, _add, node, who, coll, objects, settings.taxii_status_days)
    return taxii_response(_status_resource(status), 202)


def _detail(obj: Any, fallback: str, message: str | None = None) -> dict[str, str]:
    item = obj if isinstance(obj, dict) else {}
    oid, version = item.get("id"), item.get("modified", item.get("created"))
    out = {
        "id": oid if isinstance(oid, str) else "",
        "version": version if isinstance(version, str) else fallback,
    }
    if message:
        out["message"] = message
    return out


def _unversioned(node: Node, objects: list[Any]) -> dict[str, str]:
    """id -> the version this server serves (its date_added) of each stored object without
    ``created`` or ``modified`` (SCOs), so that a status names the version a client can ask
    for (TAXII 2.1 4.3.1: "a value for the version that is consistent to the server")."""
    ids = [o["id"] for o in objects if "created" not in o and "modified" not in o]
    rows = node.db.fetch_in(
        "SELECT id, added FROM objects WHERE created IS NULL AND modified IS NULL AND id IN", ids
    )
    return {str(r[0]): from_micros(int(r[1])) for r in rows}


def _add(
    node: Node, who: Client, coll: Collection, objects: list[Any], keep_days: int
) -> dict[str, Any]:
    """Ingest *objects* (all or nothing) and store the status resource of the request: in the
    ingest's transaction when it stores them (saved after its commit, a status that could not
    be saved - the store busy, full - would answer 503 for objects stored), after the rollback
    when it does not."""
    requested = now_micros()
    stamp = from_micros(requested)
    distribution = coll.codes if coll.scope is not None else None

    def status(successes: list[dict[str, str]], failures: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "status": "complete",
            "request_micros": requested,
            "total_count": len(objects),
            "success_count": len(successes),
            "successes": successes,
            "failure_count": len(failures),
            "failures": failures,
            "pending_count": 0,
        }

    stored: list[dict[str, Any]] = []

    def save(_: object) -> None:  # in the ingest's transaction, just before it commits
        served = _unversioned(node, objects)
        stored.append(status([_detail(o, served.get(o.get("id"), stamp)) for o in objects], []))
        tq.save_status(node.db, who.username, stored[0], keep_days)

    try:
        node.ingest(objects, distribution=distribution, actor=who.username, before_commit=save)
        return stored[0]
    except (IngestError, SharingError) as exc:
        reasons: dict[int, list[str]] = {}
        for e in exc.errors if isinstance(exc, IngestError) else ():
            reasons.setdefault(e.index, []).append(f"{e.property}: {e.reason}".lstrip(": "))
        default = NOT_STORED if reasons else str(exc)
        failures = [
            _detail(obj, stamp, "; ".join(reasons.get(i, [])) or default)
            for i, obj in enumerate(objects)
        ]
    refused = status([], failures)
    tq.save_status(node.db, who.username, refused, keep_days)
    return refused


answer_head(router)  # before the catch-all below

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar (and "/") but "%": a literal one is "%25"


@router.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
def not_found(rest: str, request: Request) -> Response:
    """Unknown TAXII paths (404) and known ones with another method (405), as TAXII errors;
    a known path without its trailing "/" (every TAXII URL ends in one) is redirected to it
    with 307, which keeps the method and body (Starlette answers ``/taxii2`` so itself)."""
    slashed = {**request.scope, "path": request.scope["path"] + "/"}
    if not request.url.path.endswith("/") and any(
        route.matches(slashed)[0] is not RouteMatch.NONE
        for route in router.routes
        if getattr(route, "endpoint", None) is not not_found
    ):
        # The Location is relative (right behind a TLS proxy too), and the path percent-encoded
        # again: decoded, a "%E2%98%83" or "%0D%0A" in it could not be a header (500).
        query = request.url.query  # as sent: printable ASCII, or latin-1 text of its bytes
        path = quote(request.url.path, safe=PATH_SAFE)
        location = path + "/" + (f"?{query}" if query else "")
        return Response(status_code=307, headers={"Location": location})
    allowed: set[str] = set()
    for route in router.routes:
        if route.matches(request.scope)[0] is RouteMatch.PARTIAL:
            allowed |= getattr(route, "methods", set())
    if allowed:
        raise TaxiiError(
            405,
            f"{request.method} is not allowed on {request.url.path}",
            {"Allow": ", ".join(sorted(allowed))},
        )
    raise TaxiiError(404, f"no TAXII resource at {request.url.path}")
