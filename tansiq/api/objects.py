"""REST routes over STIX objects: list, get, ingest, export, stats."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from tansiq import audit, policy
from tansiq.accounts.principal import Principal
from tansiq.api.deps import Auth, current_auth, get_node, get_settings, principal
from tansiq.api.problems import Problem
from tansiq.api.writes import run_write
from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.sharing import SharingError, parse_spec, tlp_level
from tansiq.stix.bundles import parse_bytes, stream_bundle
from tansiq.stix.extensions import distribution_of
from tansiq.stix.timestamps import from_micros, now_micros, to_micros
from tansiq.store import query
from tansiq.store.query import Condition

router = APIRouter(prefix="/api", tags=["objects"])

NodeDep = Annotated[Node, Depends(get_node)]
PrincipalDep = Annotated[Principal, Depends(principal)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JSON = "application/json"
# Documented (not enforced: _ts says what is wrong in words) so that clients send STIX timestamps.
TIMESTAMP = {"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"}


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _ts(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return to_micros(value)
    except ValueError as exc:
        raise Problem(400, f"{name}: {exc} (got {value!r})") from None


@router.get("/objects", summary="List the latest version of each visible object")
def list_objects(
    node: NodeDep,
    who: PrincipalDep,
    type: Annotated[
        list[str] | None, Query(description="STIX type(s), repeat or comma-separate")
    ] = None,
    created_by: Annotated[
        list[str] | None, Query(description="created_by_ref identity id(s)")
    ] = None,
    created_from: Annotated[
        str | None, Query(description="created ≥ this timestamp", json_schema_extra=TIMESTAMP)
    ] = None,
    created_to: Annotated[
        str | None, Query(description="created ≤ this timestamp", json_schema_extra=TIMESTAMP)
    ] = None,
    modified_from: Annotated[
        str | None, Query(description="modified ≥ this timestamp", json_schema_extra=TIMESTAMP)
    ] = None,
    modified_to: Annotated[
        str | None, Query(description="modified ≤ this timestamp", json_schema_extra=TIMESTAMP)
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="page size")] = None,
    cursor: Annotated[
        str | None, Query(description="the 'next' value of the previous page")
    ] = None,
) -> Response:
    size = min(limit or node.settings.page_size, node.settings.max_page_size)
    flt = query.ObjectFilter(
        types=_split(type),
        created_by=_split(created_by),
        created_from=_ts("created_from", created_from),
        created_to=_ts("created_to", created_to),
        modified_from=_ts("modified_from", modified_from),
        modified_to=_ts("modified_to", modified_to),
    )
    page = query.list_latest(
        node.db, policy.condition(who, node.code), flt, limit=size, cursor=cursor
    )
    audit.record(node.db, who.username, "objects_listed", "", {"count": len(page.rows)})
    body = (
        b'{"objects":['
        + b",".join(t.encode() for t in page.texts)
        + b'],"next":'
        + orjson.dumps(page.next_cursor)
        + b"}"
    )
    return Response(body, media_type=JSON)


@router.get("/objects/{object_id}", summary="One object: its latest version, or all versions")
def get_object(
    object_id: str,
    node: NodeDep,
    settings: SettingsDep,
    who: PrincipalDep,
    versions: Annotated[
        str, Query(pattern="^(latest|all)$", description="latest or all")
    ] = "latest",
    limit: Annotated[
        int | None, Query(ge=1, description="with versions=all: versions per page")
    ] = None,
    cursor: Annotated[
        str | None, Query(description="with versions=all: the 'next' value of the previous page")
    ] = None,
) -> Response:
    """The latest version; with ``versions=all`` a page of versions, oldest first, as
    ``{"versions": [...], "next": C-or-null}`` (an object may have very many)."""
    latest = query.get_versions(
        node.db, policy.condition(who, node.code), object_id, all_versions=False
    )
    if not latest:  # no version is visible unless the latest is (tansiq.policy)
        raise Problem(404, f"no object {object_id!r}")
    if versions != "all":
        audit.record(node.db, who.username, "object_read", object_id, {"versions": versions})
        return Response(latest[-1].encode(), media_type=JSON)
    size = min(limit or settings.page_size, settings.max_page_size)
    page = query.versions_page(
        node.db,
        policy.condition(who, node.code, all_versions=True),
        object_id,
        limit=size,
        cursor=cursor,
    )
    detail = {"versions": versions, "count": len(page.rows)}
    audit.record(node.db, who.username, "object_read", object_id, detail)
    return Response(
        b'{"versions":['
        + b",".join(t.encode() for t in page.texts)
        + b'],"next":'
        + orjson.dumps(page.next_cursor)
        + b"}",
        media_type=JSON,
    )


@router.post("/bundles", status_code=201, summary="Ingest a STIX bundle (all or nothing)")
async def post_bundle(
    request: Request,
    node: NodeDep,
    who: PrincipalDep,
    distribution: Annotated[
        str | None,
        Query(description="own, all, or comma-separated partner codes and/or group names"),
    ] = None,
    tlp: Annotated[
        str | None,
        Query(
            description="TLP 2.0: clear, green, amber, amber+strict, red (any case; TLP:red too)"
        ),
    ] = None,
) -> Response:
    if not who.can("write"):
        raise Problem(403, f"role {who.role!r} may not write objects")
    ctype = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if ctype not in (JSON, "application/stix+json", "application/taxii+json"):
        raise Problem(415, f"send the bundle as {JSON}, not {ctype!r}")
    body = await request.body()
    objects = parse_bytes(body)
    try:
        spec = parse_spec(distribution)
        result = await run_write(
            request, node.ingest, objects, distribution=spec, tlp=tlp, actor=who.username
        )
    except SharingError as exc:
        raise Problem(400, str(exc)) from None
    return Response(orjson.dumps(result.as_dict()), status_code=201, media_type=JSON)


@router.get("/export", summary="Every visible object's latest version as one streamed bundle")
def export(request: Request, node: NodeDep, who: PrincipalDep) -> StreamingResponse:
    headers = {"Content-Disposition": 'attachment; filename="tansiq-export.json"'}
    if request.method == "HEAD":  # the headers only: no query for a body nobody will read
        return StreamingResponse(iter(()), media_type=JSON, headers=headers)
    texts = query.iterate_latest(node.db, policy.condition(who, node.code))
    # The query runs (and its first row is read) before the 200 is sent: a store error then
    # is a problem document (503 for a busy store), not a 200 whose body breaks off at once.
    # One after the first object can only cut the stream short (the status is sent).
    first = next(texts, None)
    audit.record(node.db, who.username, "export", "", {})
    rest = texts if first is None else itertools.chain((first,), texts)
    return StreamingResponse(
        iterate_in_threadpool(stream_bundle(rest)), media_type=JSON, headers=headers
    )


@router.get("/stats", summary="Counts of visible objects by type")
def stats(node: NodeDep, who: PrincipalDep) -> Response:
    counts = query.count_by_type(node.db, policy.condition(who, node.code))
    return Response(
        orjson.dumps({"by_type": counts, "total": sum(counts.values())}), media_type=JSON
    )


@router.get("/node", summary="This node's partner code, name and identity")
def node_info(node: NodeDep, who: PrincipalDep) -> Response:
    return Response(
        orjson.dumps({"partner": node.code, "name": node.name, "identity_id": node.identity_id}),
        media_type=JSON,
    )


@router.put(
    "/objects/{object_id}/distribution",
    summary="Change an object's distribution and TLP: a new version, by its originator only",
)
async def change_distribution(
    object_id: str,
    request: Request,
    node: NodeDep,
    who: PrincipalDep,
    distribution: Annotated[str, Query(description="own, all, or partner codes / group names")],
    tlp: Annotated[
        str | None,
        Query(description="TLP 2.0 level (any case; TLP:red too); default keeps the current"),
    ] = None,
) -> Response:
    return await run_write(request, _change_distribution, object_id, node, who, distribution, tlp)


def next_modified(latest: str) -> str:
    """The ``modified`` of a version this node makes of an object whose latest stored version
    has ``modified`` *latest*: now, in milliseconds as tansiq writes STIX timestamps, or 1 ms
    after *latest* when that is not earlier (two changes in one millisecond, or a latest
    version dated in the future): always strictly later, so never a conflict with it.
    Computed inside the write transaction that stores the version, which serialises changes."""
    stamp = max(now_micros(), to_micros(latest) + 1000)
    return from_micros(stamp)[:23] + "Z"  # (ValueError past 9999-12-31T23:59:59.999Z)


def _changeable(node: Node, who: Principal, visible: Condition, object_id: str) -> dict[str, Any]:
    """The latest version of *object_id*, if *who* may give it a new distribution."""
    texts = query.get_versions(node.db, visible, object_id, all_versions=False)
    if not texts:
        raise Problem(404, f"no object {object_id!r}")
    if not who.can("write"):
        raise Problem(403, f"role {who.role!r} may not change objects")
    current: dict[str, Any] = orjson.loads(texts[-1])
    dist = distribution_of(current) or {}
    if dist.get("origin") != node.code:
        raise Problem(
            403, f"only the originator ({dist.get('origin')}) can change the distribution"
        )
    if "modified" not in current:  # SCOs and marking definitions have no versions
        raise Problem(
            409,
            f"{current.get('type')} objects are not versioned (no 'modified'), so their "
            "distribution cannot be changed by a new version",
        )
    if current.get("revoked") is True:
        raise Problem(
            409,
            f"{object_id} is revoked: revocation is permanent (STIX 2.1, 3.6), so no new"
            " version may carry a new distribution",
        )
    return current


def _change_distribution(
    object_id: str, node: Node, who: Principal, distribution: str, tlp: str | None
) -> Response:
    try:
        tlp = None if tlp is None else tlp_level(tlp)  # (as audited, too)
    except SharingError as exc:
        raise Problem(400, str(exc)) from None
    visible = policy.condition(who, node.code)
    before: dict[str, object] = {}
    stored: list[str] = []

    _changeable(node, who, visible, object_id)  # (the answer before waiting for the lock)

    def new_version() -> Iterator[dict[str, Any]]:
        # Read by the ingest inside its write transaction, under the node write lock: the
        # version is made from the latest one then stored, and dated after it, so changes at
        # once are successive versions (the last to commit holds its distribution), none lost.
        current = _changeable(node, who, visible, object_id)
        dist = distribution_of(current) or {}
        try:
            modified = next_modified(current["modified"])
        except (ValueError, OverflowError):
            raise Problem(
                409, f"{object_id}'s latest version is dated {current['modified']}: none later"
            ) from None
        before["partners"] = dist.get("partners")
        yield {**current, "modified": modified}

    def record(_: object) -> None:
        # In the new version's transaction: recorded after it commits, an entry that could
        # not be (the store busy, full) answered 503 for a distribution changed all the same.
        stored[:] = query.get_versions(node.db, visible, object_id, all_versions=False)
        after = distribution_of(orjson.loads(stored[-1])) or {}
        audit.record_in(
            node.db,
            who.username,
            "distribution_changed",
            object_id,
            {"from": before.get("partners"), "to": after.get("partners"), "tlp": tlp or ""},
        )

    try:
        node.ingest(
            new_version(),
            distribution=parse_spec(distribution),
            tlp=tlp,
            actor=who.username,
            before_commit=record,
        )
    except SharingError as exc:
        raise Problem(400, str(exc)) from None
    return Response(stored[-1].encode(), media_type=JSON)


@router.get("/audit", summary="Page through the audit log (admins only)")
def audit_log(
    node: NodeDep,
    who: PrincipalDep,
    auth: Annotated[Auth, Depends(current_auth)],
    after: Annotated[int | None, Query(ge=0, description="last seq of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    if not who.can("admin") or "admin" not in auth.scopes:
        raise Problem(403, "only an admin (with the 'admin' scope) may read the audit log")
    entries = audit.page(node.db, after, limit)
    nxt = entries[-1]["seq"] if len(entries) == limit else None
    return Response(orjson.dumps({"entries": entries, "next": nxt}), media_type=JSON)
