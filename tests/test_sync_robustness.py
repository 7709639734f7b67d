"""Pull sync under hostile or broken peers and concurrent pulls (found by a review; each test
fails without its fix)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import test_federation as tf
from conftest import PG_SKIP_REASON, PG_URL
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response

from tansiq.demo import sync_everyone
from tansiq.federation.enrol import EnrolmentError, Invitation, accept, renew
from tansiq.federation.signing import sign
from tansiq.federation.sync import SyncError, client_for, pull_lock, sync_all, sync_partner
from tansiq.node import Node, partner_identity_id
from tansiq.scenario import DERNA_REPORT_ID
from tansiq.sharing import list_partners
from tansiq.stix.extensions import distribution_of, set_distribution
from tansiq.stix.timestamps import from_micros, now_micros

fed = tf.fed  # the three-node loopback federation fixture
FakePeer = tf.FakePeer
holds = tf.holds
TAXII = tf.TAXII


def test_plain_http_in_any_case_is_refused(node: Node) -> None:
    """HTTP:// is plain HTTP too: without allow_plain_http, no client (and no token) for it."""
    assert node.settings.allow_plain_http is False
    for code, url in (
        ("DZ", "HTTP://192.0.2.2:8400"),
        ("TN", "Http://peer.example"),
        ("LY", "ftp://peer.example"),
    ):
        accept(node, Invitation(code, code, partner_identity_id(code), url, "PEM", "tsq_x"))
        partner = next(p for p in list_partners(node.db) if p.code == code)
        with pytest.raises(SyncError, match=r"plain HTTP|not an http"):
            client_for(node, partner)


def test_unopenable_token_of_one_partner_stops_every_other(fed: dict) -> None:  # type: ignore[type-arg]
    dz = fed["DZ"].node
    with dz.db.write():
        dz.db.execute("UPDATE peer_credentials SET token = 'fernet:garbage' WHERE partner = 'EG'")
    reports = sync_all(dz)  # documented: "a failing partner does not stop the others"
    assert [r.partner for r in reports] == ["EG", "TN"]
    assert next(r for r in reports if r.partner == "TN").pages > 0


class BadFeedPeer(FakePeer):
    async def withdrawals(self, request: Request) -> Response:
        return Response(b"<html>proxy error</html>", media_type="text/html")


def test_peer_with_non_json_withdrawal_feed_stops_every_other(fed: dict) -> None:  # type: ignore[type-arg]
    dz = fed["DZ"].node
    peer = BadFeedPeer()
    try:
        accept(dz, peer.invitation())  # "LY": sorted between EG and TN
        reports = sync_all(dz)
        assert [r.partner for r in reports] == ["EG", "LY", "TN"]
    finally:
        peer.stop()


def test_peer_cannot_publish_newer_version_of_another_partners_object(fed: dict) -> None:  # type: ignore[type-arg]
    sync_everyone(list(fed.values()))
    dz = fed["DZ"].node
    held = orjson.loads(
        dz.db.fetchone("SELECT json FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,))[0]
    )
    assert distribution_of(held)["origin"] == "EG"
    peer = FakePeer()
    try:
        accept(dz, peer.invitation())
        forged = {k: v for k, v in held.items() if k != "extensions"}
        forged["modified"] = from_micros(now_micros())[:23] + "Z"
        forged["revoked"] = True
        forged["created_by_ref"] = partner_identity_id("LY")  # "its own" creator
        forged = sign(set_distribution(forged, "LY", ["DZ", "LY"]), peer.key, "LY")
        peer.objects = [forged]
        report = sync_partner(dz, "LY")
        latest = dz.db.fetchone(
            "SELECT origin, revoked FROM latest_objects WHERE id = ?", (DERNA_REPORT_ID,)
        )
        assert (report.rejected, latest) == (1, ("EG", 0)), (str(report), latest)
    finally:
        peer.stop()


def _delete_all(eg: Any, oid: str) -> None:
    token = eg.accounts["admin"]["token"]
    objects = f"{eg.url}/taxii2/api/collections/{tf.SHARED_ID}/objects/"
    with httpx.Client(headers={"Authorization": f"Bearer {token}", "Accept": TAXII}) as http:
        r = http.delete(f"{objects}{oid}/")
        assert r.status_code == 200, r.text


def test_sco_deleted_and_readded_narrower_stays_at_dropped_partner(fed: dict) -> None:  # type: ignore[type-arg]
    nodes = list(fed.values())
    sync_everyone(nodes)
    eg = fed["EG"]
    value = "198.51.100.77"
    ns = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": f"ipv4-addr--{uuid.uuid5(ns, orjson.dumps({'value': value}).decode())}",
        "value": value,
    }
    eg.node.ingest([sco], distribution=["DZ", "TN"])
    sync_everyone(nodes)
    assert holds(fed["DZ"], sco["id"]) and holds(fed["TN"], sco["id"])
    # An SCO has one version: narrowing it means deleting it and adding it again.
    from tansiq.store.ingest import IngestError

    with pytest.raises(IngestError, match="invalid"):
        eg.node.ingest([sco], distribution=["TN"])  # re-releasing in place is a conflict
    _delete_all(eg, sco["id"])
    eg.node.ingest([sco], distribution=["TN"])
    reports = sync_everyone(nodes)
    tn = [str(r) for r in reports if r.partner == "EG"]
    assert not holds(fed["DZ"], sco["id"]), ("DZ keeps the SCO EG no longer releases to it", tn)


def test_sqlite_url_shared_by_two_data_dirs_gets_one_scheduler(tmp_path: Path) -> None:
    """The SQLite scheduler lock sits beside the database file, not in the data directory:
    two data directories pointing at one database through sqlite:/// get one scheduler."""
    from tansiq.federation.sync import Scheduler
    from tansiq.node import init_node
    from tansiq.settings import load

    init_node(load({"data_dir": str(tmp_path / "n")}, env={}), "EG", "Egypt", "admin-password-1")
    url = f"sqlite:///{tmp_path / 'n' / 'tansiq.db'}"
    others = []
    for name in ("p1", "p2"):
        (tmp_path / name).mkdir()
        others.append(Node(load({"data_dir": str(tmp_path / name), "database_url": url}, env={})))
    first, second = Scheduler(others[0]), Scheduler(others[1])
    try:
        assert first._acquire() is True
        assert second._acquire() is False, "two schedulers on one SQLite database"
    finally:
        first.close()
        second.close()
        for o in others:
            o.close()


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
def test_nodes_in_two_schemas_of_one_postgresql_database_each_get_a_scheduler(
    tmp_path: Path,
) -> None:
    """PostgreSQL advisory locks are per database: keyed by the node's schema too, two nodes
    in two schemas of one database each get their scheduler and pull lock, while a second
    scheduler of the same node still gets none."""
    from conftest import PgSchema

    from tansiq.federation.sync import Scheduler
    from tansiq.node import init_node
    from tansiq.settings import load

    schemas = [PgSchema(), PgSchema()]
    nodes: list[Node] = []
    schedulers: list[Scheduler] = []
    try:
        for code, schema in zip(("EG", "DZ"), schemas, strict=True):
            s = load({"data_dir": str(tmp_path / code), "database_url": schema.url}, env={})
            init_node(s, code, code, "admin-password-1")
            nodes.append(Node(s))
        schedulers = [Scheduler(nodes[0]), Scheduler(nodes[1]), Scheduler(nodes[0])]
        assert schedulers[0]._acquire() is True
        assert schedulers[1]._acquire() is True, "the other schema's node got no scheduler"
        assert schedulers[2]._acquire() is False, "two schedulers for one node"
        with pull_lock(nodes[0]) as first, pull_lock(nodes[1]) as second:
            assert first and second
    finally:
        for sched in schedulers:
            sched.close()
        for n in nodes:
            n.close()
        for schema in schemas:
            schema.drop()


def test_scheduler_stops_pulling_after_losing_the_advisory_lock(
    node: Node, monkeypatch: Any
) -> None:
    """A fake lock connection: the lock is granted, then the session dies (server restart,
    idle timeout, failover): PostgreSQL releases a session advisory lock with its session, so
    another process takes it.  This scheduler should stop pulling until it holds it again."""
    import psycopg

    from tansiq.federation import sync as sync_mod
    from tansiq.store.dialect import POSTGRESQL

    def no_server(*args: Any, **kwargs: Any) -> Any:  # the server is still down
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(psycopg, "connect", no_server)

    class FakeConn:
        alive = True

        def execute(self, sql: str, params: Any = ()) -> Any:
            if not self.alive:
                raise RuntimeError("server closed the connection unexpectedly")
            granted = "pg_try_advisory_lock" in sql

            class R:
                def fetchone(self_inner) -> Any:
                    return (granted,)

            return R()

        def close(self) -> None:
            pass

    sched = sync_mod.Scheduler(node)
    conn = FakeConn()
    sched._lock_conn = conn
    monkeypatch.setattr(node.db, "dialect", POSTGRESQL)
    pulls: list[bool] = []

    def fake_sync_all(n: Any, *a: Any, **k: Any) -> list[Any]:
        pulls.append(conn.alive)
        conn.alive = False  # the lock's session dies after the first round
        return []

    monkeypatch.setattr(sync_mod, "sync_all", fake_sync_all)
    monkeypatch.setattr(
        node.settings, "_values", {**node.settings._values, "sync_interval_seconds": 0}
    )
    rounds = [0]

    def fake_wait(timeout: Any = None) -> bool:
        rounds[0] += 1
        if rounds[0] >= 3:
            sched.stop.set()
        return sched.stop.is_set()

    monkeypatch.setattr(sched.stop, "wait", fake_wait)
    sched._run()
    assert pulls == [True], f"pulled {len(pulls)} times, {pulls.count(False)} without the lock"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scheduler_logs_a_failed_pull_once_as_an_error(
    node: Node, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """sync_all no longer logs a failed pull itself (the CLI said it twice): the scheduler,
    whose log is all a server's operator sees of it, says it once, at error."""
    import logging

    from tansiq.federation import sync as sync_mod

    sched = sync_mod.Scheduler(node)
    failed = sync_mod.SyncReport("DZ", error="cannot reach http://127.0.0.1:1: refused")
    monkeypatch.setattr(sync_mod, "sync_all", lambda *a, **k: [failed])
    monkeypatch.setattr(sched.stop, "wait", lambda timeout=None: sched.stop.set() or True)
    try:
        with caplog.at_level(logging.INFO, "tansiq.sync"):
            sched._run()
    finally:
        sched.close()  # (its lock file)
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert said == [
        (logging.ERROR, "sync from DZ failed: cannot reach http://127.0.0.1:1: refused")
    ]


class StuckPeer(FakePeer):
    """A buggy peer: always the same page, always ``more: true``, the same date_added."""

    async def envelope(self, request: Request) -> Response:
        body = {"more": True, "objects": self.objects}
        headers = {"X-TAXII-Date-Added-Last": "2020-01-01T00:00:00.000000Z"}
        return Response(orjson.dumps(body), media_type=TAXII, headers=headers)


def test_peer_repeating_a_page_does_not_hang_sync(fed: dict) -> None:  # type: ignore[type-arg]
    """A peer answering the same page with more: true forever (its cursor never advances) is an
    error after one page, not an endless loop that holds up every other partner."""
    dz = fed["DZ"].node
    peer = StuckPeer()
    try:
        accept(dz, peer.invitation())
        peer.objects = [peer.version(1, "2015-02-21T10:00:00.000Z")]
        started = time.monotonic()
        with pytest.raises(SyncError, match="does not advance"):
            sync_partner(dz, "LY")
        assert time.monotonic() - started < 15
        report = next(r for r in sync_all(dz) if r.partner == "LY")
        assert "does not advance" in report.error
    finally:
        peer.stop()


def test_pulls_on_one_database_run_one_at_a_time(
    fed: dict,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pull waits for another in progress (scheduled, or `tansiq sync` in another process):
    overlapping, one could store a page after the other applied a withdrawal covering it."""
    dz = fed["DZ"].node
    done = threading.Event()

    def pull() -> None:
        other = Node(dz.settings)  # as `tansiq sync` would, on its own connections
        try:
            sync_partner(other, "EG")
        finally:
            other.close()
            done.set()

    with pull_lock(dz):
        t = threading.Thread(target=pull, daemon=True)
        t.start()
        assert not done.wait(1.5), "a second pull ran while the first held the lock"
    assert done.wait(30)
    t.join(5)
    assert "waiting for it to end" in caplog.text  # says why it waits


def test_invitation_cannot_claim_another_partners_identity(node: Node) -> None:
    """An invitation names the identity its node's objects are created by.  One claiming
    another partner's identity (or this node's) would let that peer publish objects whose
    created_by_ref is that partner's and pass the foreign-originator check of every pull."""
    from tansiq.federation.enrol import EnrolmentError
    from tansiq.sharing import SharingError

    accept(node, Invitation("DZ", "Algeria", partner_identity_id("DZ"), "https://dz", "PEM", "t"))
    for code, claimed in (("LY", partner_identity_id("DZ")), ("MA", node.identity_id)):
        with pytest.raises((EnrolmentError, SharingError), match="identity"):
            accept(node, Invitation(code, "Fake", claimed, "https://x", "PEM", "tsq_x"))
        assert code not in {p.code for p in list_partners(node.db)}


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


@pytest.mark.parametrize("workers", [False, True])
def test_peer_cannot_publish_another_partners_identity_object(
    node: Node, workers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer serving, signed as its own, the identity object of another partner (one this
    node does not hold yet) would own that identity here: this node would show the peer's
    version as that agency, and reject the agency's own identity object as a foreign version."""
    from tansiq.federation import verify
    from tansiq.node import identity_object
    from tansiq.sharing import add_partner

    if workers:  # pages checked by the worker processes, as large ones are
        monkeypatch.setattr(verify, "PROCESS_PAGE_MIN", 1)

    with node.db.write():
        add_partner(node.db, "TN", "Tunisia", partner_identity_id("TN"))
    peer = FakePeer()
    try:
        accept(node, peer.invitation())
        fake_tn = {**identity_object("TN", "Tunisia"), "description": "contact: evil.example"}
        fake_own = identity_object(node.code, "Egypt (LY's version)")
        fake_own["modified"] = "2030-01-01T00:00:00.000Z"
        peer.objects = [  # no created_by_ref (optional): only the signed origin says whose
            sign(set_distribution(without(o, "created_by_ref"), "LY", ["EG", "LY"]), peer.key, "LY")
            for o in (fake_tn, fake_own)
        ]
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (0, 2), report.rejections
        assert not node.db.fetchone(
            "SELECT 1 FROM objects WHERE origin = 'LY' AND type = 'identity'"
        )
    finally:
        peer.stop()


@pytest.mark.parametrize("workers", [False, True])
def test_peer_cannot_publish_a_tlp_marking_definition(
    node: Node, workers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TLP marking definitions are OASIS's, fixed, and no partner's: a node holds its own
    (the demo loads them, "own").  A peer serving one signed as its own had it stored here when
    this node held none (as after `tansiq init`): TLP:AMBER's id defined as TLP:CLEAR, shown by
    TAXII and export to whoever reads it; and this node's own load of the OASIS definitions
    then failed ("a different object with the same id and modified is already stored")."""
    from tansiq.federation import verify
    from tansiq.stix.markings import TLP_EXTENSION_ID, tlp_object

    if workers:  # pages checked by the worker processes, as large ones are
        monkeypatch.setattr(verify, "PROCESS_PAGE_MIN", 1)
    forged = tlp_object("amber")
    forged["name"], forged["extensions"][TLP_EXTENSION_ID]["tlp_2_0"] = "TLP:CLEAR", "clear"
    peer = FakePeer()
    try:
        accept(node, peer.invitation())
        note = {**tf.indicator(1, "2016-01-01T00:00:00.000Z")}
        note["created_by_ref"] = partner_identity_id("LY")
        peer.objects = [
            sign(set_distribution(o, "LY", ["EG", "LY"]), peer.key, "LY")
            for o in (forged, tlp_object("green"), note)
        ]
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (1, 2), report.rejections
        assert all("TLP marking definition" in r for r in report.rejections), report.rejections
        assert not node.db.fetchone("SELECT 1 FROM objects WHERE type = 'marking-definition'")
        node.ingest([tlp_object(level) for level in ("amber", "green")], distribution=["own"])
    finally:
        peer.stop()


def test_version_deleted_and_stored_again_changed_reaches_partners(fed: dict) -> None:  # type: ignore[type-arg]
    """The originator deletes a version and stores it again, changed (same id and modified:
    nothing else can revise an SCO or correct a version in place).  The partner holding the old
    copy must end up with the new one, not keep the old one and reject the new as a conflict."""
    nodes = list(fed.values())
    sync_everyone(nodes)
    eg, dz = fed["EG"], fed["DZ"].node
    first = {**tf.indicator(950), "created_by_ref": eg.node.identity_id, "name": "first"}
    eg.node.ingest([first], distribution=["DZ"])
    sync_everyone(nodes)
    assert holds(fed["DZ"], first["id"])
    _delete_all(eg, first["id"])
    eg.node.ingest([{**first, "name": "corrected"}], distribution=["DZ"])
    reports = [r for r in sync_everyone(nodes) if r.partner == "EG"]
    rows = dz.db.fetchall("SELECT json FROM objects WHERE id = ?", (first["id"],))
    names = [orjson.loads(r[0])["name"] for r in rows]
    assert names == ["corrected"], [r.rejections for r in reports]
    again = [r for r in sync_everyone(nodes) if r.partner == "EG"]
    assert sum(r.stored + r.rejected + r.deleted for r in again) == 0


class EndlessPeer(FakePeer):
    """A peer whose answer never ends: bytes keep coming, slowly or in bulk."""

    def __init__(self, pause: float, chunk: bytes) -> None:
        self.pause, self.chunk = pause, chunk
        super().__init__()

    async def envelope(self, request: Request) -> Response:
        import asyncio

        from starlette.responses import StreamingResponse

        async def body() -> Any:
            yield b'{"more": false, "objects": []'
            for _ in range(200):
                await asyncio.sleep(self.pause)
                yield self.chunk
            yield b"}"

        return StreamingResponse(body(), media_type=TAXII)


@pytest.mark.parametrize("kind", ["trickle", "flood"])
def test_peer_answering_without_end_cannot_hold_the_pull(
    node: Node, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pull runs in the server (the scheduler) under the pull lock: a peer trickling its
    answer would hold every other partner's pull for good, one sending without end would exhaust
    the server's memory.  Both limits (settings) are lowered here to keep the test short."""
    lowered = node.settings.with_overrides(sync_response_seconds=1, sync_max_response_mb=1)
    monkeypatch.setattr(node, "settings", lowered)
    # trickle: 200 x 20 ms = 4 s, each wait far below the read timeout; flood: 12.5 MiB
    peer = EndlessPeer(0.02, b" ") if kind == "trickle" else EndlessPeer(0, b" " * 65536)
    try:
        accept(node, peer.invitation())
        started = time.monotonic()
        with pytest.raises(SyncError, match=r"took more than 1 s|more than 1 MiB"):
            sync_partner(node, "LY")
        assert time.monotonic() - started < 3.5
    finally:
        peer.stop()


class CursorPeer(FakePeer):
    """A peer that honours ``added_after``: its objects come once, then only from the start."""

    stamp = "2026-01-01T00:00:00.000000Z"

    async def envelope(self, request: Request) -> Response:
        if request.query_params.get("added_after", "") >= self.stamp:
            return Response(b'{"more": false, "objects": []}', media_type=TAXII)
        body = {"more": False, "objects": self.objects}
        headers = {"X-TAXII-Date-Added-Last": self.stamp}
        return Response(orjson.dumps(body), media_type=TAXII, headers=headers)


def _pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_versions_refused_under_a_wrong_key_are_taken_after_the_update(fed: dict) -> None:  # type: ignore[type-arg]
    """A partner enrolled with a wrong key: its page, none of which verifies, is refused whole
    and the cursor stays before it (it used to reject each version and move past them all, for
    a pull --from-start to take again).  `partner update` with its real invitation, then a
    plain pull, takes it all; a pull --from-start counts what is held as unchanged, older
    versions included (no replays)."""
    dz = fed["DZ"].node
    peer = CursorPeer()
    try:
        invitation = peer.invitation()
        accept(dz, dataclasses.replace(invitation, public_key=_pem(Ed25519PrivateKey.generate())))
        peer.objects = [
            peer.version(1),
            peer.version(1, "2015-03-20T10:00:00.000Z"),
            peer.version(2),
        ]
        with pytest.raises(SyncError, match=r"none of the 3 versions .* LY's enrolled key"):
            sync_partner(dz, "LY")
        renew(dz, invitation)
        again = sync_partner(dz, "LY")
        assert (again.received, again.stored, again.rejected) == (3, 3, 0), again.rejections
        twice = sync_partner(dz, "LY", from_start=True)
        assert (twice.stored, twice.unchanged, twice.rejected) == (0, 3, 0), twice.rejections
        changes = dz.db.fetchall("SELECT detail FROM audit WHERE action = 'partner_changed'")
        assert len(changes) == 1 and orjson.loads(changes[0][0])["key_changed"] is True
    finally:
        peer.stop()


def test_partner_update_keeps_the_identity(fed: dict) -> None:  # type: ignore[type-arg]
    dz = fed["DZ"].node
    peer = CursorPeer()
    try:
        invitation = peer.invitation()
        with pytest.raises(EnrolmentError, match="no partner LY"):
            renew(dz, invitation)
        accept(dz, invitation)
        with pytest.raises(EnrolmentError, match="registered as"):
            renew(dz, dataclasses.replace(invitation, identity_id=partner_identity_id("XX")))
        renew(dz, dataclasses.replace(invitation, url="http://127.0.0.1:1", name="Moved"))
        ly = next(p for p in list_partners(dz.db) if p.code == "LY")
        assert (ly.name, ly.base_url, ly.identity_id) == (
            "Moved",
            "http://127.0.0.1:1",
            partner_identity_id("LY"),
        )
    finally:
        peer.stop()


def test_cli_partner_update_and_sync_from_start(fed: dict) -> None:  # type: ignore[type-arg]
    from click.testing import CliRunner

    from tansiq.cli import main

    dz = fed["DZ"].node
    where = ["--data-dir", str(dz.settings.data_path)]
    runner = CliRunner()
    r = runner.invoke(main, ["sync", "--from-start", *where])
    assert r.exit_code == 2 and "--from-start needs --partner" in r.output
    r = runner.invoke(main, ["partner", "update", "EG", *where])
    assert r.exit_code == 2 and "--public-key, --url or --name" in r.output
    eg_url = next(p for p in list_partners(dz.db) if p.code == "EG").base_url
    r = runner.invoke(main, ["partner", "update", "eg", "--name", "Egypt (MOI)", *where])
    assert r.exit_code == 0, r.output
    eg = next(p for p in list_partners(dz.db) if p.code == "EG")
    assert (eg.name, eg.base_url) == ("Egypt (MOI)", eg_url)
    r = runner.invoke(main, ["partner", "update", "QQ", "--name", "x", *where])
    assert r.exit_code == 1 and "no partner QQ" in r.output
    r = runner.invoke(main, ["sync", "--partner", "EG", "--from-start", *where])
    assert r.exit_code == 0, r.output


class RefusingPeer(FakePeer):
    """A peer that has suspended this node: a TAXII error message, as tansiq answers it."""

    async def envelope(self, request: Request) -> Response:
        body = {
            "title": "Forbidden",
            "description": "the partnership with DZ is suspended on this node",
            "http_status": "403",
        }
        return Response(orjson.dumps(body), 403, media_type=TAXII)


def test_a_peers_refusal_is_said_in_its_own_words(fed: dict) -> None:  # type: ignore[type-arg]
    """`tansiq sync` printed a refusing peer's TAXII error as raw JSON ({"title": ...,
    "http_status": "403"}): it says the error's description."""
    dz = fed["DZ"].node
    peer = RefusingPeer()
    try:
        accept(dz, peer.invitation())
        with pytest.raises(SyncError) as exc:
            sync_partner(dz, "LY")
    finally:
        peer.stop()
    assert str(exc.value).endswith(
        "/objects/ answered 403: the partnership with DZ is suspended on this node"
    ), str(exc.value)
