"""Three nodes on loopback: the scenario lands exactly where its distribution says; bad versions
from a peer are rejected and audited; a node killed mid-sync converges without loss or duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from servers import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_store import indicator

from tansiq import audit
from tansiq.api.taxii import SHARED_ID
from tansiq.demo import CODES, DemoNode, serve, setup, sync_everyone
from tansiq.federation.enrol import Invitation, accept
from tansiq.federation.signing import sign
from tansiq.federation.sync import sync_partner
from tansiq.node import partner_identity_id
from tansiq.scenario import BORDER_REPORT_ID, DERNA_REPORT_ID, EG_ONLY_NOTE_ID, scenario_items
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import from_micros, now_micros, to_micros

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[dict[str, DemoNode]]:
    nodes = setup(tmp_path, [free_port() for _ in CODES], sync_interval=0)
    running = serve(nodes)
    try:
        yield {d.code: d for d in nodes}
    finally:
        for server, _ in running:
            server.should_exit = True
        for _, thread in running:
            thread.join(10)
        for d in nodes:
            d.node.close()


def holds(d: DemoNode, oid: str) -> bool:
    return d.node.db.fetchone("SELECT 1 FROM objects WHERE id = ?", (oid,)) is not None


def test_scenario_lands_exactly_where_distributed(fed: dict[str, DemoNode]) -> None:
    reports = sync_everyone(list(fed.values()))
    assert all(r.rejected == 0 and r.pages > 0 for r in reports), [str(r) for r in reports]
    checked = 0
    for item in scenario_items():
        if not item.originator:
            continue
        dist = item.distribution
        expected = (
            set(CODES) if dist == "all" else {item.originator} if dist == "own" else set(dist)
        )
        for code, d in fed.items():
            assert holds(d, item.obj["id"]) == (code in expected), (item.obj["id"], code)
            checked += 1
    assert checked > 100
    assert [c for c in CODES if holds(fed[c], EG_ONLY_NOTE_ID)] == ["EG"]
    assert [c for c in CODES if holds(fed[c], BORDER_REPORT_ID)] == ["DZ", "TN"]
    assert [c for c in CODES if holds(fed[c], DERNA_REPORT_ID)] == ["DZ", "EG", "TN"]
    # a second round brings nothing new and duplicates nothing
    again = sync_everyone(list(fed.values()))
    assert sum(r.stored for r in again) == 0


def test_narrowing_withdraws_from_the_dropped_partner(fed: dict[str, DemoNode]) -> None:
    sync_everyone(list(fed.values()))
    eg = fed["EG"].node
    current = orjson.loads(
        eg.db.fetchone("SELECT json FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,))[0]
    )
    newer = {**current, "modified": from_micros(now_micros())[:23] + "Z"}
    eg.ingest([newer], distribution=["DZ"])
    reports = sync_everyone(list(fed.values()))
    assert not holds(fed["TN"], DERNA_REPORT_ID)
    assert sum(r.withdrawn for r in reports if r.partner == "EG") == 1
    dz_latest = fed["DZ"].node.db.fetchone(
        "SELECT json FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,)
    )
    assert orjson.loads(dz_latest[0])["modified"] == newer["modified"]


class FakePeer:
    """A peer "LY" serving hand-made versions over the two endpoints sync reads."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.objects: list[dict[str, Any]] = []
        app = Starlette(
            routes=[
                Route("/taxii2/api/collections/shared/objects/", self.envelope),
                Route("/api/sync/withdrawals", self.withdrawals),
            ]
        )
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    async def envelope(self, request: Request) -> Response:
        # The fake serves its whole list every time: versions already stored are no-ops.
        body = {"more": False, "objects": self.objects}
        headers = {"X-TAXII-Date-Added-Last": from_micros(now_micros())} if self.objects else {}
        return Response(
            orjson.dumps(body), media_type="application/taxii+json;version=2.1", headers=headers
        )

    async def withdrawals(self, request: Request) -> Response:
        return Response(b'{"withdrawals": [], "more": false}', media_type="application/json")

    def invitation(self) -> Invitation:
        pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return Invitation(
            "LY",
            "Fake peer",
            partner_identity_id("LY"),
            f"http://127.0.0.1:{self.port}",
            pem,
            "tsq_fake",
        )

    def version(self, n: int, modified: str = "2015-02-20T10:00:00.000Z", **extra: Any) -> dict:  # type: ignore[type-arg]
        obj = {**indicator(n, modified), "created_by_ref": partner_identity_id("LY"), **extra}
        return sign(set_distribution(obj, "LY", ["DZ", "LY"]), self.key, "LY")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_bad_versions_are_rejected_and_audited(fed: dict[str, DemoNode]) -> None:
    dz = fed["DZ"].node
    peer = FakePeer()
    try:
        accept(dz, peer.invitation())
        good = peer.version(1, "2015-02-21T10:00:00.000Z")
        unsigned = set_distribution(
            {**indicator(2), "created_by_ref": partner_identity_id("LY")}, "LY", ["DZ", "LY"]
        )
        forged = sign(
            set_distribution(
                {**indicator(3), "created_by_ref": partner_identity_id("LY")}, "LY", ["DZ", "LY"]
            ),
            Ed25519PrivateKey.generate(),
            "LY",
        )
        tampered = {**peer.version(4), "name": "changed after signing"}
        widened = peer.version(5)
        widened["extensions"] = {**widened["extensions"]}
        foreign = peer.version(6, created_by_ref=partner_identity_id("EG"))
        not_for_us = sign(
            set_distribution(
                {**indicator(7), "created_by_ref": partner_identity_id("LY")}, "LY", ["LY", "TN"]
            ),
            peer.key,
            "LY",
        )
        peer.objects = [good, unsigned, forged, tampered, foreign, not_for_us]
        report = sync_partner(dz, "LY")
        assert (report.stored, report.rejected) == (1, 5), report.rejections
        assert holds(fed["DZ"], good["id"]) and not holds(fed["DZ"], indicator(2)["id"])
        # a replayed older version of what DZ already holds
        peer.objects = [peer.version(1, "2015-02-20T10:00:00.000Z")]
        report = sync_partner(dz, "LY")
        assert (report.stored, report.rejected) == (0, 1)
        rejected = [e for e in audit.page(dz.db, None, 1000) if e["action"] == "sync_rejected"]
        assert len(rejected) == 6
        replayed = rejected[-1]  # names the version refused, not only the object
        assert replayed["target"] == indicator(1)["id"], replayed
        assert replayed["detail"]["version"] == "2015-02-20T10:00:00.000Z", replayed
        assert audit.verify(dz.db).ok
    finally:
        peer.stop()


def test_sigkill_mid_sync_converges_without_loss_or_duplicates(fed: dict[str, DemoNode]) -> None:
    sync_everyone(list(fed.values()))
    eg, dz = fed["EG"], fed["DZ"]
    objs = [{**indicator(10_000 + i), "created_by_ref": eg.node.identity_id} for i in range(3000)]
    eg.node.ingest(objs, distribution=["DZ"])
    cmd = [
        sys.executable,
        "-m",
        "tansiq",
        "sync",
        "--data-dir",
        str(dz.data_dir),
        "--partner",
        "EG",
        "--limit",
        "50",
    ]
    before = dz.node.db.fetchone("SELECT added_after FROM sync_cursors WHERE partner = 'EG'")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until at least one page has committed
        now = dz.node.db.fetchone("SELECT added_after FROM sync_cursors WHERE partner = 'EG'")
        if now != before:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = dz.node.db.fetchone("SELECT COUNT(*) FROM objects WHERE type = 'indicator'")[0]
    assert 0 < partial < 3000, partial  # it really died mid-way
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = dz.node.db.fetchall("SELECT id, version FROM objects WHERE type = 'indicator'")
    assert len(rows) == len(set(rows)) == 3000
    assert {r[0] for r in rows} == {o["id"] for o in objs}


def test_revocation_propagates(fed: dict[str, DemoNode]) -> None:
    sync_everyone(list(fed.values()))
    eg = fed["EG"].node
    current = orjson.loads(
        eg.db.fetchone("SELECT json FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,))[0]
    )
    revoked = {**current, "modified": from_micros(now_micros())[:23] + "Z", "revoked": True}
    eg.ingest([revoked])  # keeps the distribution it carries
    sync_everyone(list(fed.values()))
    for code in ("DZ", "TN"):
        row = fed[code].node.db.fetchone(
            "SELECT revoked FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,)
        )
        assert row == (1,), code


def test_deletion_propagates_to_the_partners_holding_copies(fed: dict[str, DemoNode]) -> None:
    """Deleting versions on the originator deletes them on the nodes they were released to;
    a partner they were not released to is never told the id."""
    sync_everyone(list(fed.values()))
    eg = fed["EG"]
    first = {**indicator(901), "created_by_ref": eg.node.identity_id}
    second = {**first, "modified": "2015-02-21T10:00:00.000Z"}
    eg.node.ingest([first], distribution=["DZ"])
    eg.node.ingest([second], distribution=["DZ"])
    sync_everyone(list(fed.values()))
    versions = "SELECT modified, is_latest FROM objects WHERE id = ? ORDER BY version"
    v1, v2 = to_micros(first["modified"]), to_micros(second["modified"])
    assert fed["DZ"].node.db.fetchall(versions, (first["id"],)) == [(v1, 0), (v2, 1)]
    assert not holds(fed["TN"], first["id"])
    assert holds(fed["TN"], DERNA_REPORT_ID) and holds(fed["DZ"], DERNA_REPORT_ID)

    token = eg.accounts["admin"]["token"]
    objects = f"{eg.url}/taxii2/api/collections/{SHARED_ID}/objects/"
    with httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": TAXII}) as http:
        r = http.delete(f"{objects}{first['id']}/", params={"match[version]": "first"})
        assert r.status_code == 200, r.text
        assert http.delete(f"{objects}{DERNA_REPORT_ID}/").status_code == 200  # every version
    reports = sync_everyone(list(fed.values()))
    assert sum(r.deleted for r in reports if r.partner == "EG") == 3  # 1 at DZ, 1 + 1 (Derna)
    # DZ keeps the second version, now the latest; the Derna report is gone from DZ and TN
    assert fed["DZ"].node.db.fetchall(versions, (first["id"],)) == [(v2, 1)]
    assert not holds(fed["DZ"], DERNA_REPORT_ID) and not holds(fed["TN"], DERNA_REPORT_ID)
    deleted = [
        e for e in audit.page(fed["DZ"].node.db, None, 1000) if e["action"] == "object_deleted"
    ]
    assert {e["target"] for e in deleted} == {first["id"], DERNA_REPORT_ID}
    # TN was never released the indicator: its feed does not name it
    tn_token = fed["EG"].sync_tokens["TN"]
    with httpx.Client(headers={"Authorization": f"Bearer {tn_token}"}) as http:
        feed = http.get(f"{eg.url}/api/sync/withdrawals").json()["withdrawals"]
    assert [(i["id"], i["reason"]) for i in feed] == [(DERNA_REPORT_ID, "deleted")]
    # deleting the last version leaves DZ nothing
    with httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": TAXII}) as http:
        assert http.delete(f"{objects}{first['id']}/").status_code == 200
    sync_everyone(list(fed.values()))
    assert not holds(fed["DZ"], first["id"])
    again = sync_everyone(list(fed.values()))  # the cursor moved past every tombstone
    assert sum(r.deleted + r.withdrawn for r in again) == 0
