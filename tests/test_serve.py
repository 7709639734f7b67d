"""``tansiq serve`` is stateless: several processes serve one database."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from servers import Server
from starlette.requests import Request
from starlette.responses import Response
from sync_peers import EPOCH, TAXII, OriginPeer, enrolled
from test_store import indicator

from tansiq.node import Node
from tansiq.settings import Settings
from tansiq.stix.timestamps import from_micros, to_micros


def test_two_server_processes_share_one_database(settings: Settings, admin_token: str) -> None:
    servers = [Server(settings.data_path), Server(settings.data_path)]
    auth = {"Authorization": f"Bearer {admin_token}"}
    try:

        def post(i: int) -> int:
            server = servers[i % 2]
            body = {
                "type": "bundle",
                "id": f"bundle--{uuid.uuid4()}",
                "objects": [indicator(1000 + i * 10 + k) for k in range(10)],
            }
            return httpx.post(
                server.url + "/api/bundles", json=body, headers=auth, timeout=60
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(post, range(40))) == {201}
        for server in servers:  # each process sees every write, whichever process made it
            r = httpx.get(server.url + "/api/stats", headers=auth, timeout=30)
            assert r.json()["by_type"]["indicator"] == 400
            r = httpx.get(server.url + "/api/objects/" + indicator(1005)["id"], headers=auth)
            assert r.status_code == 200
    finally:
        for server in servers:
            server.stop()


def test_sigterm_closes_the_database_cleanly(settings: Settings, admin_token: str) -> None:
    """uvicorn re-raises SIGTERM once it has stopped serving, which killed the process before
    ``serve`` stopped the scheduler and closed the database: the WAL was left behind, holding
    the last writes (a copy of tansiq.db made after `systemctl stop` missed them).  Now the
    app's shutdown closes the scheduler and every connection, so SQLite folds the WAL in."""
    if settings.database_url:
        return  # SQLite's WAL only
    server = Server(settings.data_path, "--sync-interval-seconds", "3600")
    try:
        body = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [indicator(7)]}
        auth = {"Authorization": f"Bearer {admin_token}"}
        r = httpx.post(server.url + "/api/bundles", json=body, headers=auth, timeout=30)
        assert r.status_code == 201, r.text
        assert settings.data_path.joinpath("tansiq.db-wal").exists()
    finally:
        server.stop()  # SIGTERM
    assert server.proc.returncode in (0, -15), server.log.read_text()
    assert "scheduler" not in server.log.read_text().lower()  # no error on the way out
    assert not settings.data_path.joinpath("tansiq.db-wal").exists(), "the WAL was left"


class OnePerPagePeer(OriginPeer):
    """Partner LY serving its versions one to a page, each page after 0.3 s: a long pull."""

    async def envelope(self, request: Request) -> Response:
        await asyncio.sleep(0.3)
        after = request.query_params.get("added_after")
        rows = [(a, v) for a, v in self.log if a > (to_micros(after) if after else 0)]
        headers = {"X-TAXII-Date-Added-Last": from_micros(rows[0][0])} if rows else {}
        body = {"more": len(rows) > 1, "objects": [v for _, v in rows[:1]]}
        return Response(orjson.dumps(body), media_type=TAXII, headers=headers)


def sigterm(server: Server) -> float:
    """Send *server* SIGTERM; the seconds it took to exit."""
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(15)
    return time.monotonic() - started


def stopped_promptly(server: Server, took: float) -> str:
    """Check *server* exited cleanly within 3 s of its SIGTERM (*took*); its log."""
    log = server.log.read_text()
    assert took < 3, f"serve took {took:.1f} s to stop: {log}"
    assert server.proc.returncode in (0, -15), log
    return log


def test_sigterm_during_a_scheduled_pull_stops_it_after_the_page_being_stored(
    settings: Settings,
) -> None:
    """The scheduler was told to stop but went on pulling page after page until ``serve``
    gave up waiting for it (10 s), then closed the connections under it.  Now the pull ends
    after the page it is storing: a prompt exit, and every page stored with its cursor."""
    node = Node(settings)
    try:
        with enrolled(node, OnePerPagePeer()) as peer:
            peer.store(*[peer.signed(9000 + i, "2016-01-01T00:00:00.000Z") for i in range(40)])
            server = Server(settings.data_path, "--sync-interval-seconds", "1")
            try:
                stored = "SELECT COUNT(*) FROM objects WHERE origin = 'LY'"
                deadline = time.monotonic() + 10
                while node.db.fetchone(stored) == (0,) and time.monotonic() < deadline:
                    time.sleep(0.05)
                took = sigterm(server)
            finally:
                server.stop()
            log = stopped_promptly(server, took)
            assert "Traceback" not in log and "scheduler" not in log.lower(), log
            (count,) = node.db.fetchone(stored) or (0,)
            assert 0 < count < 40, count  # it stopped mid-way
            row = node.db.fetchone("SELECT added_after FROM sync_cursors WHERE partner = 'LY'")
            assert row is not None and to_micros(str(row[0])) == EPOCH + count  # page and cursor
    finally:
        node.close()


def test_writers_waiting_for_the_write_lock_leave_reads_a_thread(
    settings: Settings, admin_token: str
) -> None:
    """Writes behind a long write (here the write lock held by another connection, as a
    `tansiq ingest` holds it) each took a thread of the pool every request shares (40): with
    45 of them waiting, reads, which on PostgreSQL need no write lock, hung too.  Now writers
    wait on a few threads of their own."""
    if not settings.database_url:
        return  # on SQLite reads write their audit entries: they wait for the lock anyway
    import psycopg

    server = Server(settings.data_path, "--sync-interval-seconds", "0")
    auth = {"Authorization": f"Bearer {admin_token}"}
    waiting = (
        "SELECT COUNT(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )

    def post(i: int) -> int:
        body = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [indicator(100 + i)]}
        return httpx.post(
            server.url + "/api/bundles", json=body, headers=auth, timeout=60
        ).status_code

    try:
        with psycopg.connect(settings.database_url) as conn, ThreadPoolExecutor(45) as pool:
            conn.execute("SELECT last_added FROM node_clock WHERE id = 1 FOR UPDATE")
            posts = [pool.submit(post, i) for i in range(45)]
            with psycopg.connect(settings.database_url, autocommit=True) as watch:
                deadline = time.monotonic() + 3  # until 40 wait (or, with the fix, 3 s)
                while time.monotonic() < deadline and watch.execute(waiting).fetchone() < (40,):
                    time.sleep(0.05)
            started = time.monotonic()
            try:
                r = httpx.get(server.url + "/api/objects", headers=auth, timeout=3)
            except httpx.TimeoutException:
                r = None
            took = time.monotonic() - started
            conn.rollback()  # the long write ends: the writers go on
            assert [p.result() for p in posts] == [201] * 45
        assert r is not None and r.status_code == 200, f"the read waited {took:.1f} s"
        r = httpx.get(server.url + "/api/stats", headers=auth, timeout=30)
        assert r.json()["by_type"]["indicator"] == 45, r.json()
    finally:
        server.stop()


def test_sigterm_while_the_scheduler_waits_for_another_pull(settings: Settings) -> None:
    """A scheduled pull waiting for the pull lock (a `tansiq sync` holds it) waited on
    regardless of the shutdown: ``serve`` took 10 s to stop, then left it waiting."""
    from tansiq.federation.sync import pull_lock

    node = Node(settings)
    try:
        with enrolled(node, OriginPeer()) as peer, pull_lock(node):
            peer.store(peer.signed(9000, "2016-01-01T00:00:00.000Z"))
            server = Server(settings.data_path, "--sync-interval-seconds", "1")
            try:
                deadline = time.monotonic() + 10
                while "waiting for it to end" not in server.log.read_text():
                    assert time.monotonic() < deadline, server.log.read_text()
                    time.sleep(0.05)
                took = sigterm(server)
            finally:
                server.stop()
            stopped_promptly(server, took)
            assert node.db.fetchone("SELECT COUNT(*) FROM objects WHERE origin = 'LY'") == (0,)
    finally:
        node.close()


class StallingPeer(OnePerPagePeer):
    """Partner LY answering its first page (of one version) at once, the next once released."""

    def __init__(self) -> None:
        self.asked, self.release = threading.Event(), threading.Event()
        super().__init__()

    async def envelope(self, request: Request) -> Response:
        if request.query_params.get("added_after"):
            self.asked.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return await super().envelope(request)


def test_sigterm_while_a_scheduled_pull_waits_for_a_slow_peer(settings: Settings) -> None:
    """A scheduled pull waiting for a peer's next page (which may take up to
    sync_response_seconds) held up ``serve``'s shutdown 10 s, then had its connections closed
    under it.  Now it stops waiting, and stores the page it had (with its cursor) first."""
    node = Node(settings)
    peer = StallingPeer()
    try:
        with enrolled(node, peer):
            peer.store(*[peer.signed(9000 + i, "2016-01-01T00:00:00.000Z") for i in range(3)])
            server = Server(settings.data_path, "--sync-interval-seconds", "1")
            try:
                assert peer.asked.wait(10), server.log.read_text()
                time.sleep(0.2)  # (the pull now waits for the second page)
                took = sigterm(server)
            finally:
                peer.release.set()
                server.stop()
            log = stopped_promptly(server, took)
            assert "Traceback" not in log, log
            stored = "SELECT COUNT(*) FROM objects WHERE origin = 'LY'"
            assert node.db.fetchone(stored) == (1,)  # the page fetched before is stored
            row = node.db.fetchone("SELECT added_after FROM sync_cursors WHERE partner = 'LY'")
            assert row is not None and to_micros(str(row[0])) == EPOCH + 1
    finally:
        node.close()


def test_the_scheduler_moves_to_another_server_when_its_process_is_killed(
    settings: Settings,
) -> None:
    """Two server processes on one PostgreSQL database: one holds the scheduler lock; when it
    is SIGKILLed (no shutdown, no unlock), the other takes the lock at its next round."""
    if not settings.database_url:
        return  # (SQLite: a flock, released by the kernel with the process)
    import os

    import psycopg

    from tansiq.federation.sync import Scheduler

    holder = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objsubid = 2"
        " AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295) AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def holders(conn: psycopg.Connection[Any], other_than: set[int], within: float) -> set[int]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pids = {r[0] for r in conn.execute(holder, (Scheduler.LOCK_KEY,)).fetchall()}
            if pids and not pids & other_than:
                return pids
            time.sleep(0.05)
        return set()

    first = Server(settings.data_path, "--sync-interval-seconds", "1")
    second = None
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            held = holders(conn, set(), 10)
            assert len(held) == 1, held
            second = Server(settings.data_path, "--sync-interval-seconds", "1")
            time.sleep(1.5)  # a round of the second: the lock is taken, it does not pull
            assert holders(conn, set(), 1) == held
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(10)
            taken = holders(conn, held, 5)
            assert len(taken) == 1, "no server took the scheduler lock"
    finally:
        first.stop()
        if second is not None:
            second.stop()
