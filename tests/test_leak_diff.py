"""Differential leak test: two stores that differ only in what is hidden from partner DZ answer
DZ's accounts byte for byte alike, on every route DZ's accounts can reach.

Node EG holds objects released to DZ in some versions and not in others (``o``: v1 to DZ, v2 to
TN only, v3 to all), plus, in the second store only, objects and versions DZ may not see:
released to TN only, kept to EG, another partner's, an SCO, versions released to DZ but stored
behind a newer one that is not, a hidden version in the middle of a visible object's history,
one older than its first visible version, and a hidden version deleted again.  Every write runs
at a fixed clock, the hidden ones at instants of their own, so the rows DZ may see get the same
``added`` in both stores (the known gap of one transaction's consecutive ``added`` values is
:mod:`test_leak_clock`'s).

DZ's sync account (bearer) and DZ's liaison reader (bearer; Basic on TAXII) then read every REST
route (lists paged and filtered, each object by id, its versions paged and with crafted
cursors, export, stats, the withdrawal feed) and every TAXII route (collections, hidden scopes'
ids, manifest, objects, one object, versions; each ``match[version]`` form and combination,
``match[id]``, ``match[type]``, ``match[spec_version]``, ``added_after``, paging by ``next``;
paths without their trailing slash; HEAD), and try the writes they may not do (DELETE with
and without its parameters, POST, PUT distribution).  Status, headers and body must be the
same bytes; and the versions the answers show must be exactly those a model of the policy
allows (so what both stores would show alike is checked too).
"""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from conftest import PgSchema, make_settings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tansiq import node as node_module
from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.api.taxii import SHARED_ID, scope_collection_id
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.sharing import add_partner
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import from_micros, to_micros
from tansiq.store import deletions, ingest
from tansiq.store.query import encode_cursor

T0 = 1_600_000_000_000_000
STEP = 10**9
CODES = ("DZ", "EG", "LY", "TN")
SCO = "ipv4-addr"  # versionless: its TAXII version is its date_added
TAXII = "application/taxii+json;version=2.1"
COLLECTIONS = "/taxii2/api/collections/"
PASSWORD = "a-long-password-1"
EG = partner_identity_id("EG")


def day(n: int) -> str:
    return f"2016-01-{n:02d}T00:00:00.000Z"


def oid(key: str, kind: str = "note") -> str:
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def version(key: str, modified: str, kind: str = "note") -> dict[str, Any]:
    """A version of EG's object *key*; an SCO (``ipv4-addr``) has one, without timestamps."""
    if kind == SCO:
        return {"type": kind, "spec_version": "2.1", "id": oid(key, kind), "value": modified[:10]}
    obj: dict[str, Any] = {
        "type": kind,
        "spec_version": "2.1",
        "id": oid(key, kind),
        "created": day(1),
        "modified": modified,
        "created_by_ref": EG,
    }
    if kind == "note":
        obj.update(content=f"{key} {modified}", object_refs=[EG])
    else:
        obj.update(pattern="[ipv4-addr:value = '198.51.100.1']", pattern_type="stix")
        obj.update(valid_from=day(1))
    return obj


# (hidden, what): each step is one transaction at its own instant; "hidden" steps run only in
# the second store.  ``what`` is (key, modified, kind, distribution) for EG's own objects, or
# ("foreign", key, modified, origin, partners) for another partner's version as sync stores it.
Step = tuple[bool, tuple[Any, ...]]
STEPS: list[Step] = [
    (False, ("a", day(2), "note", ["DZ"])),
    (True, ("h-tn", day(2), "note", ["TN"])),  # never released to DZ
    (False, ("b", day(2), "indicator", ["all"])),
    (True, ("h-own", day(2), "indicator", ["own"])),  # kept to EG
    (False, ("o", day(2), "note", ["DZ"])),  # o: DZ, then TN only (hidden), then all
    (True, ("o", day(3), "note", ["TN"])),
    (False, ("o", day(4), "note", ["all"])),
    (False, ("c", day(3), "note", ["DZ", "TN"])),
    (True, ("c", day(2), "note", ["TN"])),  # older than c's first visible version: hidden
    (False, ("c", day(4), "note", ["DZ"])),
    (True, ("h-late", day(5), "note", ["TN"])),  # latest from the start ...
    (True, ("h-late", day(2), "note", ["DZ"])),  # ... so this one was never DZ's
    (False, ("w", day(2), "note", ["DZ", "TN"])),  # withdrawn from DZ: the same in both
    (False, ("w", day(3), "note", ["TN"])),
    (True, ("foreign", "h-ly", day(2), "LY", ["EG", "LY"])),  # another partner's, not DZ's
    (False, ("foreign", "t", day(2), "TN", ["DZ", "EG", "TN"])),  # TN's, released to DZ
    (False, ("d", day(2), "note", ["DZ"])),  # d: DZ, TN only (hidden, deleted again), all
    (True, ("d", day(3), "note", ["TN"])),
    (False, ("d", day(4), "note", ["all"])),
    (True, ("delete", "d", day(3))),
    (False, ("e", day(2), "note", ["DZ"])),  # e: a visible version deleted: a tombstone
    (False, ("e", day(3), "note", ["all"])),
    (False, ("delete", "e", day(2))),
    (True, ("delete", "h-tn", None)),  # a hidden object deleted whole
    (False, ("sco", day(2), SCO, ["DZ"])),
    (True, ("h-sco", day(2), SCO, ["TN"])),
]


def kinds(steps: list[Step]) -> dict[str, str]:
    """key -> STIX type of every object the steps make."""
    out = {w[0]: w[2] for _, w in steps if w[0] not in ("foreign", "delete")}
    out.update({w[1]: "note" for _, w in steps if w[0] == "foreign"})
    return out


def ids_of(steps: list[Step], scos: bool = True) -> list[str]:
    """The ids the steps make (those of SCOs too, unless not *scos*)."""
    return sorted(oid(k, t) for k, t in kinds(steps).items() if scos or t != SCO)


def stamps_of(steps: list[Step]) -> list[str]:
    """Every version's modified (and the shared created)."""
    found = {w[2] if w[0] == "foreign" else w[1] for _, w in steps if w[0] != "delete"}
    return sorted(found | {day(1)})


def model(steps: list[Step], hidden: bool) -> dict[str, list[tuple[str, set[str], str]]]:
    """id -> its stored versions (modified, partners, origin) once every step ran."""
    out: dict[str, list[tuple[str, set[str], str]]] = {}
    types = kinds(steps)
    for secret, what in steps:
        if secret and not hidden:
            continue
        if what[0] == "foreign":
            _, key, modified, origin, partners = what
            out.setdefault(oid(key), []).append((modified, set(partners), origin))
        elif what[0] == "delete":
            _, key, modified = what
            i = oid(key, types[key])
            out[i] = [v for v in out[i] if modified is not None and v[0] != modified]
        else:
            key, modified, _, spec = what
            partners = {"EG"} | (set(CODES) if spec == ["all"] else set(spec) - {"own"})
            out.setdefault(oid(key, types[key]), []).append((modified, partners, "EG"))
    return out


def visible(versions: dict[str, list[tuple[str, set[str], str]]], sync: bool) -> set[Any]:
    """(id, modified) of every version DZ's sync account (or liaison reader) may see."""
    out = set()
    for i, stored in versions.items():
        if stored and "DZ" in max(stored)[1]:
            out |= {(i, m) for m, p, o in stored if "DZ" in p and (o == "EG" or not sync)}
    return out


def seen(answers: list[tuple[Any, ...]], ids: list[str]) -> set[Any]:
    """(id, version) of every object version of *ids* an answer shows."""
    out: set[Any] = set()

    def walk(item: Any, url: str) -> None:
        if isinstance(item, dict):
            if item.get("id") in ids and "reason" not in item:  # (feed items: ids)
                stamp = item.get("modified", item.get("version"))
                if stamp is not None:
                    out.add((item["id"], stamp))
            if "versions" in item and "/versions/" in url:
                i = url.split("/objects/")[1].split("/")[0]
                out.update((i, v) for v in item["versions"] if i in ids)
            for value in item.values():
                walk(value, url)
        elif isinstance(item, list):
            for value in item:
                walk(value, url)

    for method, url, status, _, body in answers:
        if status == 200 and body and method != "HEAD":
            walk(orjson.loads(body), url)
    return out


def build(
    tmp: Path, url: str, steps: list[Step], hidden: bool, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The store (with or without the hidden steps): its node, and DZ's credentials."""
    clock = {"now": T0}
    for module in (ingest, deletions):
        monkeypatch.setattr(module, "now_micros", lambda: clock["now"])
    settings = make_settings(tmp, url)
    editor = init_node(settings, "EG", "Egypt", admin_password="admin-password-1").admin_token
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # both stores sign alike
    (tmp / node_module.KEY_FILE).unlink()
    node_module._write_private_key(tmp / node_module.KEY_FILE, key)
    node = Node(settings)
    for code in CODES:
        if code != "EG":
            add_partner(node.db, code, code, partner_identity_id(code))
    create_account(node.db, "sync-dz", PASSWORD, "sync", "DZ", allow_reserved=True)
    create_account(node.db, "dz-liaison", PASSWORD, "reader", "DZ")
    creds = {
        "sync": {"Authorization": "Bearer " + create_token(node.db, "sync-dz", "t", "api sync")},
        "liaison": {"Authorization": "Bearer " + create_token(node.db, "dz-liaison", "t", "api")},
        "basic": {
            "Authorization": "Basic "
            + base64.b64encode(b"dz-liaison:" + PASSWORD.encode()).decode()
        },
    }
    app = create_app(node.settings, node)
    with TestClient(app, headers={"Authorization": f"Bearer {editor}"}) as admin:
        types = kinds(steps)
        for i, (secret, what) in enumerate(steps):
            clock["now"] = T0 + (2 * i + (1 if secret else 2)) * STEP
            if secret and not hidden:
                continue
            if what[0] == "foreign":
                _, key_, modified, origin, partners = what
                obj = {**version(key_, modified), "created_by_ref": partner_identity_id(origin)}
                ingest.ingest(
                    node.db, [set_distribution(obj, origin, partners)], prepare=lambda o: o
                )
            elif what[0] == "delete":
                _, key_, modified = what
                path = f"{COLLECTIONS}{SHARED_ID}/objects/{oid(key_, types[key_])}/"
                params = {"match[version]": modified} if modified else {}
                r = admin.delete(path, params=params, headers={"Accept": TAXII})
                assert r.status_code == 200, r.text
            else:
                key_, modified, kind, spec = what
                node.ingest([version(key_, modified, kind)], distribution=spec)
    clock["now"] = T0 + 1000 * STEP
    return {"node": node, "creds": creds}


def taxii_requests(
    collection_ids: list[str], ids: list[str], stamps: list[str], instants: int, full: bool
) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, params) of the TAXII reads, given the collections DZ's account lists;
    not *full*: the collections, and their manifests and objects by ``match[version]``."""
    out: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/taxii2/", {}),
        ("GET", "/taxii2/api/", {}),
        ("GET", COLLECTIONS, {}),
        ("GET", "/taxii2/api/status/" + str(uuid.uuid5(uuid.NAMESPACE_URL, "status")) + "/", {}),
    ]
    listed = [SHARED_ID, "shared", *collection_ids]
    for cid in dict.fromkeys(
        scope_collection_id("," + ",".join(c) + ",")
        for n in range(1, len(CODES) + 1)
        for c in itertools.combinations(CODES, n)
    ):
        if cid not in listed:  # a scope DZ sees no latest version of: as no collection at all
            base = f"{COLLECTIONS}{cid}/"
            out += [("GET", base, {}), ("GET", base.rstrip("/"), {})]
            out += [("GET", base + e, {"match[version]": "all"}) for e in ENDPOINTS]
            out += [("GET", f"{base}objects/{i}/versions/", {}) for i in ids]
            out.append(("POST", base + "objects/", {}))
    versions = ["first", "last", "all", "all,last", "first,last", "last,first", "first,all"]
    versions += [*stamps, f"first,{day(3)}", f"last,{day(3)}", f"{day(2)},{day(3)},{day(4)}"]
    versions += ["last,last", "first,first"]
    for cid in listed:
        base = f"{COLLECTIONS}{cid}/"
        out.append(("GET", base, {}))
        for endpoint in ENDPOINTS:
            out.append(("GET", base + endpoint, {}))
            for v in versions:
                out.append(("GET", base + endpoint, {"match[version]": v}))
            for v in PAGED_VERSIONS:
                paged = {"match[version]": v, "limit": "1", "next": "page"}
                out.append(("GET", base + endpoint, paged))
        if not full or cid == "shared":  # (the alias: as SHARED_ID, whose answers follow)
            continue
        for endpoint in ENDPOINTS:
            for i in ids:
                out.append(("GET", base + endpoint, {"match[id]": i, "match[version]": "all"}))
            out.append(("GET", base + endpoint, {"match[id]": ",".join(ids)}))
            for t in ("note", "indicator", "note,indicator", "identity"):
                out.append(("GET", base + endpoint, {"match[type]": t, "match[version]": "all"}))
            for sv in ("2.1", "2.0", "2.0,2.1"):
                out.append(("GET", base + endpoint, {"match[spec_version]": sv}))
            for n in range(0, instants, 5):
                after = from_micros(T0 + n * STEP)
                out.append(("GET", base + endpoint, {"added_after": after}))
                out.append(
                    ("GET", base + endpoint, {"added_after": after, "match[version]": "all"})
                )
        for i in ids:
            one = f"{base}objects/{i}/"
            out.append(("GET", one, {}))
            for v in versions:
                out.append(("GET", one, {"match[version]": v}))
            if i.startswith(SCO) and cid == SHARED_ID:  # its version: a step's instant
                for n in range(instants):
                    out.append(("GET", one, {"match[version]": from_micros(T0 + n * STEP)}))
            out.append(("GET", one, {"match[version]": "all", "limit": "1", "next": "page"}))
            out.append(("GET", one + "versions/", {}))
            out.append(("GET", one + "versions/", {"limit": "1", "next": "page"}))
            out.append(("GET", one + "versions/", {"match[spec_version]": "2.1"}))
            out.append(("GET", one + "versions/", {"added_after": from_micros(T0 + 20 * STEP)}))
            out.append(("DELETE", one, {}))
            out.append(("DELETE", one, {"match[version]": day(3)}))
            out.append(("DELETE", one, {"match[version]": "first,last"}))
            out.append(("DELETE", one, {"added_after": day(1)}))
            out.append(("GET", one.rstrip("/"), {"match[version]": "all"}))
            out.append(("GET", one + "versions", {}))
            out.append(("HEAD", one, {"match[version]": "all"}))
            out.append(("HEAD", one + "versions/", {}))
        out.append(("POST", base + "objects/", {}))
        out.append(("GET", base.rstrip("/"), {}))
        out.append(("GET", base + "manifest", {"match[version]": "all"}))
        out.append(("HEAD", base + "manifest/", {"match[version]": "all"}))
    return out


ENDPOINTS = ("manifest/", "objects/")
PAGED_VERSIONS = ("first", "last", "all", "all,last", "first,last", f"first,{day(3)}")


def rest_requests(ids: list[str], stamps: list[str]) -> list[tuple[str, str, dict[str, str]]]:
    out: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/api/objects", {}),
        ("GET", "/api/objects", {"limit": "1", "cursor": "page"}),
        ("GET", "/api/objects", {"type": "note"}),
        ("GET", "/api/objects", {"type": "indicator,identity"}),
        ("GET", "/api/objects", {"created_by": EG}),
        ("GET", "/api/objects", {"modified_from": day(3)}),
        ("GET", "/api/objects", {"modified_to": day(3)}),
        ("GET", "/api/export", {}),
        ("HEAD", "/api/export", {}),
        ("GET", "/api/stats", {}),
        ("GET", "/api/node", {}),
        ("GET", "/api/sync/withdrawals", {}),
        ("GET", "/api/sync/withdrawals", {"limit": "1", "after": "page"}),
    ]
    for n in range(0, 60, 3):
        out.append(("GET", "/api/sync/withdrawals", {"after": str(T0 + n * STEP)}))
        out.append(("GET", "/api/objects", {"cursor": encode_cursor(T0 + n * STEP)}))
    for i in ids:
        path = f"/api/objects/{i}"
        out.append(("GET", path, {}))
        out.append(("HEAD", path, {}))
        out.append(("GET", path, {"versions": "all"}))
        out.append(("GET", path, {"versions": "all", "limit": "1", "cursor": "page"}))
        out.append(("GET", path, {"versions": "latest", "cursor": "not-a-cursor"}))
        out.append(("GET", path, {"versions": "all", "cursor": "not-a-cursor"}))
        out.append(("GET", path, {"versions": "all", "cursor": encode_cursor(5)}))
        for stamp in stamps:
            micros = to_micros(stamp)
            for at in (micros - 1, micros):
                for limit in ("1", "2"):
                    cursor = encode_cursor(at, "v")
                    out.append(("GET", path, {"versions": "all", "limit": limit, "cursor": cursor}))
        out.append(("PUT", path + "/distribution", {"distribution": "all"}))
    out.append(("POST", "/api/bundles", {}))
    return out


def answer(client: TestClient, method: str, path: str, params: dict[str, str]) -> tuple[Any, ...]:
    url = path + ("?" + urlencode(params) if params else "")
    body: dict[str, Any] = {}
    if method == "POST":  # DZ's accounts may not write: what tells them that must not vary
        media = TAXII if path.startswith("/taxii2/") else "application/json"
        envelope = {"objects": [version("posted", day(9))]}
        body = {"content": orjson.dumps(envelope), "headers": {"Content-Type": media}}
    r = client.request(method, url, follow_redirects=False, **body)
    headers = sorted((k.lower(), v) for k, v in r.headers.items())
    content = r.content
    if path == "/api/export":  # a new bundle id each time
        content = re.sub(rb'"bundle--[0-9a-f-]{36}"', b'"bundle--"', content, count=1)
    return (method, url, r.status_code, headers, content)


def walk(
    client: TestClient, method: str, path: str, params: dict[str, str]
) -> list[tuple[Any, ...]]:
    """One request, or (with a "page" placeholder) every page of it, following next/cursor."""
    paged = [k for k, v in params.items() if v == "page"]
    if not paged:
        return [answer(client, method, path, params)]
    name = paged[0]
    given = {k: v for k, v in params.items() if k != name}
    out = []
    for _ in range(100):
        got = answer(client, method, path, given)
        out.append(got)
        if got[2] != 200:
            break
        body = orjson.loads(got[4])
        nxt = body.get("next") if isinstance(body, dict) else None
        if nxt is None and isinstance(body, dict) and body.get("withdrawals"):
            nxt = str(body["withdrawals"][-1]["after"]) if body.get("more") else None
        if not nxt:
            break
        given = {**given, name: str(nxt)}
    return out


def reads(
    store: dict[str, Any], steps: list[Step], stride: int = 1
) -> dict[str, list[tuple[Any, ...]]]:
    """DZ's accounts' answers to every read (*stride* n: every n-th of them)."""
    node: Node = store["node"]
    app = create_app(node.settings, node)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with TestClient(app) as client:
        for who, auth in store["creds"].items():
            client.headers.clear()
            client.headers.update({"Accept": TAXII, **auth})
            listed = orjson.loads(client.get(COLLECTIONS).content)["collections"]
            ids, stamps = ids_of(steps), stamps_of(steps)
            instants = 2 * len(steps) + 3  # the steps' clock: T0 + n * STEP
            full = who != "basic"  # (Basic: the same account as "liaison", another way in)
            todo = taxii_requests([c["id"] for c in listed], ids, stamps, instants, full)
            if full:
                todo += rest_requests(ids, stamps)
            got: list[tuple[Any, ...]] = []
            for method, path, params in todo[::stride]:
                got += walk(client, method, path, params)
            out[who] = got
    return out


def compare(
    tmp: Path,
    urls: list[str],
    steps: list[Step],
    monkeypatch: pytest.MonkeyPatch,
    stride: int = 1,
) -> int:
    """Build both stores of *steps*, read them as DZ's accounts; assert that every answer is
    the same and shows exactly the model's versions (with a *stride*, no version outside
    them).  Returns how many requests were compared."""
    plain = build(tmp / "plain", urls[0], steps, False, monkeypatch)
    secret = build(tmp / "secret", urls[1], steps, True, monkeypatch)
    try:
        shown, other = reads(plain, steps, stride), reads(secret, steps, stride)
    finally:
        plain["node"].close()
        secret["node"].close()
    ids = ids_of(steps, scos=False)  # (an SCO's version is its date_added: not modelled)
    for store, hidden in ((shown, False), (other, True)):
        for who, answers in store.items():
            want = {v for v in visible(model(steps, hidden), who == "sync") if v[0] in ids}
            got = seen(answers, ids)
            assert got == want if stride == 1 else got <= want, (hidden, who, got ^ want)
    differ = []
    for who in shown:
        assert len(shown[who]) == len(other[who]), who
        differ += [(who, a, b) for a, b in zip(shown[who], other[who], strict=True) if a != b]
    for who, a, b in differ[:20]:
        print(who, a[:3], "\n  ", a[3:], "\n  ", b[3:])
    assert not differ, f"{len(differ)} answers differ"
    return sum(map(len, shown.values()))


def test_hidden_objects_change_nothing_dz_reads(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read on SQLite; on PostgreSQL, which runs the same SQL at half the speed here, every
    fourth (the same policy conditions; what differs is the engine answering them)."""
    schemas = [PgSchema(), PgSchema()] if database_url else []  # a schema per store
    stride = 4 if database_url else 1
    try:
        urls = [s.url for s in schemas] or ["", ""]
        count = compare(tmp_path, urls, STEPS, monkeypatch, stride)
    finally:
        for s in schemas:
            s.drop()
    print(f"differential leak test: {count} requests compared, twice")
