"""``tansiq serve`` is stateless: several processes serve one database."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from servers import Server
from test_store import indicator

from tansiq.settings import Settings


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
