"""Suspending a partner (``tansiq partner suspend``) and resuming it.

While suspended, every account of the partner (its node's sync account, its liaison staff) is
refused on every path (REST, TAXII, the sync feed, the login form), and this node does not pull
from it; resuming restores it all, with the same tokens and cursors."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import BACKENDS
from fastapi.testclient import TestClient

from tansiq import audit
from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.cli import main
from tansiq.federation import sync
from tansiq.federation.enrol import Invitation, accept, invite
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import (
    SharingError,
    add_partner,
    list_partners,
    set_suspended,
    update_partner,
)

LIAISON_PASSWORD = "liaison-password-1"
SHARED = "/taxii2/api/collections/shared/objects/"
TAXII = {"Accept": "application/taxii+json;version=2.1"}


def run(node: Node, *args: str) -> tuple[int, str, str]:
    """``tansiq ARGS`` on *node*'s data directory (and database)."""
    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    result = CliRunner().invoke(main, [*args, *where], env={}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def entries(node: Node, action: str) -> list[dict[str, Any]]:
    return [e for e in audit.page(node.db, None, 1000) if e["action"] == action]


def note(node: Node, content: str) -> dict[str, Any]:
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": "2016-01-01T00:00:00.000Z",
        "modified": "2016-01-01T00:00:00.000Z",
        "content": content,
        "object_refs": [node.identity_id],
    }


# -- the command line ------------------------------------------------------------------------
def test_cli_suspend_list_resume_and_audit(node: Node) -> None:
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    status, out, err = run(node, "partner", "suspend", "dz", "--reason", "breach at DZ")
    assert status == 0 and "partner DZ (Algeria) suspended" in out, out + err
    status, out, _ = run(node, "partner", "list")
    line = next(x for x in out.splitlines() if x.startswith("DZ"))
    assert "SUSPENDED since" in line and line.endswith(": breach at DZ")
    status, out, _ = run(node, "partner", "list", "--json")
    [dz] = [p for p in json.loads(out) if p["code"] == "DZ"]
    assert dz["suspended"] and dz["suspended_reason"] == "breach at DZ"
    # twice: a no-op that says so, with no second audit entry
    status, out, _ = run(node, "partner", "suspend", "DZ", "--reason", "again")
    assert status == 0 and "already suspended: nothing changed" in out
    [entry] = entries(node, "partner_suspended")
    assert (entry["actor"], entry["target"], entry["detail"]) == (
        "cli",
        "DZ",
        {"reason": "breach at DZ"},
    )
    assert list_partners(node.db)[0].suspended_reason == "breach at DZ"  # not "again"

    status, out, err = run(node, "partner", "resume", "DZ")
    assert status == 0 and "partner DZ (Algeria) resumed" in out, out + err
    status, out, _ = run(node, "partner", "list")
    assert "SUSPENDED" not in out and "DZ" in out
    status, out, _ = run(node, "partner", "resume", "DZ")
    assert status == 0 and "already not suspended" in out
    [entry] = entries(node, "partner_resumed")
    assert (entry["actor"], entry["target"]) == ("cli", "DZ")
    assert audit.verify(node.db).ok


def test_cli_refuses_unknown_partners_and_this_node(node: Node) -> None:
    status, _, err = run(node, "partner", "suspend", "XX")
    assert status == 1 and "no partner XX" in err
    status, _, err = run(node, "partner", "resume", "XX")
    assert status == 1 and "no partner XX" in err
    status, _, err = run(node, "partner", "suspend", "EG")
    assert status == 1 and "this node's own partner code" in err
    assert entries(node, "partner_suspended") == []
    out = CliRunner().invoke(main, ["partner", "--help"]).stdout
    assert "suspend" in out and "resume" in out
    out = CliRunner().invoke(main, ["partner", "suspend", "--help"]).stdout
    assert "--reason" in out and "refused" in out


def test_the_change_and_its_audit_entry_commit_together(node: Node) -> None:
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))

    def fail(_: object) -> None:
        raise RuntimeError("audit failed")

    with pytest.raises(RuntimeError):
        set_suspended(node.db, "DZ", node.code, True, "x", fail)
    assert not list_partners(node.db)[0].suspended
    with pytest.raises(SharingError, match="own partner code"):
        set_suspended(node.db, "EG", node.code, True)


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
def test_a_suspension_beside_a_partner_update_does_not_deadlock(node: Node) -> None:
    """A partner's row is bookkeeping's since suspension (013): an update of the partner in a
    write transaction (``partner update``, ``renew``) that then appends its audit entry must
    not hold the row while waiting for the bookkeeping lock a suspension holds (waiting for
    the row): PostgreSQL would abort one of the two as a deadlock."""
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    updated, failed = threading.Event(), []

    def update() -> None:
        try:
            with node.db.write():
                update_partner(node.db, "DZ", name="Algeria (new name)")
                updated.set()
                time.sleep(0.5)  # the suspension takes the bookkeeping lock meanwhile
                audit.record_in(node.db, "cli", "partner_changed", "DZ", {})
        except BaseException as exc:
            failed.append(exc)
            updated.set()

    thread = threading.Thread(target=update, daemon=True)
    thread.start()
    assert updated.wait(10)
    set_suspended(node.db, "DZ", node.code, True, "x")
    thread.join(30)
    assert not failed, failed
    (dz,) = list_partners(node.db)
    assert dz.suspended and dz.name == "Algeria (new name)"


# -- access ----------------------------------------------------------------------------------
@pytest.fixture
def dz(node: Node) -> dict[str, str]:
    """DZ enrolled on EG: its node's sync token, a liaison reader's token; one note for DZ."""
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    sync_token = invite(node, "DZ").token
    create_account(node.db, "dz-liaison", LIAISON_PASSWORD, "reader", "DZ")
    liaison = create_token(node.db, "dz-liaison", "liaison")
    node.ingest([note(node, "for DZ")], distribution=["DZ"])
    return {"sync": sync_token, "liaison": liaison}


@pytest.fixture
def web(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node.settings, node), base_url="http://127.0.0.1") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def answers(c: TestClient, tokens: dict[str, str]) -> list[httpx.Response]:
    """What each credential of DZ gets on REST, TAXII and the sync feed."""
    out = []
    for kind, token in tokens.items():
        out.append(c.get("/api/objects", params={"type": "note"}, headers=bearer(token)))
        out.append(c.get(SHARED, headers={**TAXII, **bearer(token)}))
        if kind == "sync":
            out.append(c.get("/api/sync/withdrawals", headers=bearer(token)))
    out.append(c.get(SHARED, headers={**TAXII, **basic("dz-liaison", LIAISON_PASSWORD)}))
    return out


def login(c: TestClient, username: str, password: str) -> httpx.Response:
    c.get("/login")
    csrf = c.cookies.get("tansiq_login_csrf_eg")
    return c.post("/login", data={"username": username, "password": password, "csrf": csrf})


def test_a_suspended_partner_reads_nothing_until_resumed(
    node: Node, dz: dict[str, str], web: TestClient
) -> None:
    before = answers(web, dz)
    assert [r.status_code for r in before] == [200] * 6
    assert before[0].json()["objects"][0]["content"] == "for DZ"
    assert login(web, "dz-liaison", LIAISON_PASSWORD).status_code == 200
    assert web.get("/api/session").status_code == 200  # the session cookie reads

    set_suspended(node.db, "DZ", node.code, True, "breach")
    # a new version may still name DZ: served after resume
    node.ingest([note(node, "while suspended")], distribution=["DZ"])
    for r in answers(web, dz):
        assert r.status_code == 403, r.text
        body = r.json()
        message = body.get("detail") or body.get("description")
        assert "partnership with DZ is suspended" in message
        if r.url.path.startswith("/taxii2/"):
            assert body["http_status"] == "403"  # a TAXII error message
    assert web.get("/api/session").status_code == 401  # its web session was ended
    r = login(web, "dz-liaison", LIAISON_PASSWORD)
    assert r.status_code == 403 and "suspended" in r.json()["detail"]
    r = login(web, "dz-liaison", "a-wrong-password")
    assert r.status_code == 401  # no hint without the right password
    assert web.get("/api/objects", headers=bearer(admin(node))).status_code == 200  # EG's own

    set_suspended(node.db, "DZ", node.code, False)
    after = answers(web, dz)
    assert [r.status_code for r in after] == [200] * 6  # the same tokens and password
    seen = sorted(o["content"] for o in after[0].json()["objects"])
    assert seen == ["for DZ", "while suspended"]
    assert login(web, "dz-liaison", LIAISON_PASSWORD).status_code == 200


def admin(node: Node) -> str:
    return create_token(node.db, "admin", "test")


def test_a_cached_basic_login_is_refused_once_suspended(
    node: Node, dz: dict[str, str], web: TestClient
) -> None:
    """TAXII remembers a Basic password check for a while: not past a suspension."""
    auth = {**TAXII, **basic("dz-liaison", LIAISON_PASSWORD)}
    assert web.get(SHARED, headers=auth).status_code == 200
    set_suspended(node.db, "DZ", node.code, True)
    assert web.get(SHARED, headers=auth).status_code == 403
    set_suspended(node.db, "DZ", node.code, False)
    assert web.get(SHARED, headers=auth).status_code == 200


def test_a_refused_account_is_audited_up_to_the_limit(node: Node, dz: dict[str, str]) -> None:
    """A token or TAXII Basic request of a suspended partner's account was refused with no
    audit entry (only the login form wrote one): each is ``access_refused`` (account, partner,
    path), at most ``audit_rejected_tokens`` per login window - counted apart from rejected
    tokens, so a flood of bad tokens hides no refusal, nor the other way round."""
    set_suspended(node.db, "DZ", node.code, True)
    settings = node.settings.with_overrides(audit_rejected_tokens=3)
    with TestClient(create_app(settings, node), base_url="http://127.0.0.1") as c:
        assert c.get("/api/objects", headers=bearer("not-a-token")).status_code == 401
        requests = [
            ("/api/objects", bearer(dz["liaison"])),
            (SHARED, {**TAXII, **basic("dz-liaison", LIAISON_PASSWORD)}),
            (SHARED, {**TAXII, **bearer(dz["sync"])}),
            ("/api/sync/withdrawals", bearer(dz["sync"])),
            ("/api/objects", bearer(dz["liaison"])),
        ]
        for path, headers in requests:
            assert c.get(path, headers=headers).status_code == 403
        assert c.get("/api/objects", headers=bearer("not-a-token-2")).status_code == 401
    refused = entries(node, "access_refused")
    assert [(e["actor"], e["target"], e["detail"]["path"]) for e in refused] == [
        ("dz-liaison", "dz-liaison", "/api/objects"),
        ("dz-liaison", "dz-liaison", SHARED),
        ("sync-dz", "sync-dz", SHARED),
    ]
    assert [(e["detail"]["partner"], e["detail"]["via"]) for e in refused] == [
        ("DZ", "token"),
        ("DZ", "basic"),
        ("DZ", "token"),
    ]
    assert len(entries(node, "token_rejected")) == 2
    assert audit.verify(node.db).ok


def test_account_list_shows_suspended_partners_accounts(node: Node, dz: dict[str, str]) -> None:
    set_suspended(node.db, "DZ", node.code, True)
    _, out, _ = run(node, "account", "list")
    lines = {x.split()[0]: x for x in out.splitlines()}
    assert lines["dz-liaison"].endswith("(partner suspended)")
    assert lines["sync-dz"].endswith("(partner suspended)")
    assert "suspended" not in lines["admin"]


# -- pulling ---------------------------------------------------------------------------------
@pytest.fixture
def pulls(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DZ and TN enrolled on EG (as their invitations would); the partners pulled from."""
    for code in ("DZ", "TN"):
        url = "http://127.0.0.1:9"  # never reached: the pull is faked
        accept(node, Invitation(code, code, partner_identity_id(code), url, "PEM", "tsq_x"))
    calls: list[str] = []

    def fake(node: Node, code: str, **_: Any) -> sync.SyncReport:
        calls.append(code)
        return sync.SyncReport(code)

    monkeypatch.setattr(sync, "sync_partner", fake)
    return calls


def test_sync_all_skips_a_suspended_partner(node: Node, pulls: list[str]) -> None:
    set_suspended(node.db, "DZ", node.code, True, "dispute")
    reports = sync.sync_all(node)
    assert pulls == ["TN"]
    [skipped] = [r for r in reports if r.partner == "DZ"]
    assert "suspended" in str(skipped) and "dispute" in str(skipped) and not skipped.error
    set_suspended(node.db, "DZ", node.code, False)
    pulls.clear()
    sync.sync_all(node)
    assert pulls == ["DZ", "TN"]


def test_the_scheduler_skips_a_suspended_partner(
    node: Node, pulls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_suspended(node.db, "DZ", node.code, True)
    done = threading.Event()
    real = sync.sync_all

    def one_round(n: Node, *args: Any, **kwargs: Any) -> list[sync.SyncReport]:
        try:
            return real(n, *args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(sync, "sync_all", one_round)
    scheduler = sync.Scheduler(node)
    scheduler.start()
    try:
        assert done.wait(30)
    finally:
        scheduler.close()
    assert "DZ" not in pulls and "TN" in pulls


def test_sync_of_a_suspended_partner_is_refused_and_its_cursor_kept(node: Node) -> None:
    url = "http://127.0.0.1:9"
    accept(node, Invitation("DZ", "DZ", partner_identity_id("DZ"), url, "PEM", "tsq_x"))
    with node.db.write():
        sync._set_cursor(node, "DZ", sync.SHARED_COLLECTION, "2024-01-01T00:00:00.000000Z")
    set_suspended(node.db, "DZ", node.code, True, "breach")
    with pytest.raises(sync.SyncError, match=r"DZ: the partnership is suspended .*breach"):
        sync.sync_partner(node, "DZ")
    status, out, err = run(node, "sync", "--partner", "DZ")
    assert status == 1 and "suspended" in err and "partner resume DZ" in err
    status, out, err = run(node, "sync")
    assert status == 0 and "DZ: skipped: the partnership is suspended" in out, out + err
    set_suspended(node.db, "DZ", node.code, False)
    assert sync._cursor(node, "DZ", sync.SHARED_COLLECTION) == "2024-01-01T00:00:00.000000Z"


def test_migration_keeps_partners_active(tmp_path: Path, database_url: str) -> None:
    """Partners enrolled before the suspension migration are not suspended after it."""
    from tansiq.store import migrations
    from tansiq.store.database import Database

    db = Database(database_url, tmp_path)
    everything = migrations.MIGRATIONS
    migrations.MIGRATIONS = everything[:12]
    try:
        migrations.migrate(db)
        with db.write():
            db.execute(
                "INSERT INTO partners (code, name, identity_id, created)"
                " VALUES ('DZ', 'DZ', 'i', 0)"
            )
    finally:
        migrations.MIGRATIONS = everything
    try:
        applied = migrations.migrate(db)
        assert applied == [name for name, _ in everything[12:]]
        assert applied[0] == "013_partner_suspension"
        assert [(p.code, p.suspended) for p in list_partners(db)] == [("DZ", 0)]
    finally:
        db.close()
